// A faithful fake of the OpenAI Realtime WebSocket API (GA shape, optionally beta), for tests and for
// trying the elements without an account. It follows the checklist in docs/openai-realtime.md §9:
// strict session.update validation, an energy VAD, responses with deterministic audio sent faster
// than real time, cancel, truncate validation, tool calls, expiry, dropped connections and an
// oversized frame.
//
// The server runs on its own thread with its own GMainContext, so a test's main thread may block
// while the elements under test talk to it. Every accessor is thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace fake_realtime {

struct ToolCallScript {
  std::string name;       // the function the model "calls"
  std::string arguments;  // JSON text of the arguments
};

struct Config {
  // "ga" serves the GA names and rejects an OpenAI-Beta header (error beta_api_shape_disabled, close
  // 4000); "beta" serves beta names and requires the header.
  std::string shape = "ga";
  std::string required_api_key;     // when set, a handshake without "Bearer <key>" (or api-key header) gets 401
  double vad_threshold_dbfs = -40;  // energy VAD: a 20 ms frame louder than this is speech
  int vad_silence_ms = 300;         // speech_stopped after this much silence (the session's silence_duration_ms wins when sent)
  int reply_duration_ms = 1000;     // length of each response's audio
  double reply_tone_hz = 440;       // the reply is a sine at this frequency…
  double reply_amplitude = 0.3;     // …and this peak (0..1)
  int delta_ms = 100;               // audio per response.output_audio.delta
  double speed = 10.0;              // send audio this many times faster than real time (0: all at once)
  bool echo_input = false;          // reply with the caller's last committed turn instead of a tone
  int session_lifetime_s = 3600;    // expires_at = now + this; at expiry: error session_expired, then close (0: never; expires_at then says now + 1 day)
  bool clamp_bad_truncate = false;  // after the "already shorter" error, also apply a clamped truncate (observed behaviour)
  std::vector<ToolCallScript> tool_calls;  // each response first emits these function calls, once each
  bool send_large_frame_on_connect = false;  // a conversation.item.retrieved of more than 2 MiB after session.created
  bool record = true;  // keep ConnectionLog events and audio (the standalone server turns it off to run for hours)
};

// What the server saw from one client connection.
struct ConnectionLog {
  std::vector<std::string> events;  // every client event as received (JSON text), in order…
  std::vector<std::string> types;   // …and its "type"
  std::vector<uint8_t> input_audio; // every appended byte, decoded, in order
  std::string authorization;        // the Authorization header (or "api-key: …" for the api-key header)
  std::string model;                // the ?model= query parameter
  std::string beta_header;          // OpenAI-Beta header, if any
  bool closed = false;
};

struct TruncateRecord {
  std::string item_id;
  int64_t audio_end_ms = 0;
  int64_t item_audio_ms = 0;        // how much audio the server had sent for that item
  bool accepted = false;
};

class Server {
 public:
  explicit Server(Config config = {});
  ~Server();
  Server(const Server &) = delete;
  Server &operator=(const Server &) = delete;

  // Listens on 127.0.0.1 (port 0 picks a free one) and starts the server thread.
  bool start(uint16_t port = 0, std::string *error = nullptr);
  void stop();
  uint16_t port() const;
  std::string url() const;  // "ws://127.0.0.1:<port>/v1/realtime"

  // Observations (thread-safe copies).
  int connection_count() const;              // connections accepted so far
  ConnectionLog connection(int index) const; // index in accept order
  std::vector<uint8_t> all_input_audio() const;  // appended audio across every connection
  std::vector<TruncateRecord> truncates() const;
  std::vector<std::string> deleted_items() const;
  std::vector<std::string> errors_sent() const;  // error codes sent to clients
  int responses_started() const;
  int responses_cancelled() const;
  int speech_started_count() const;
  std::vector<std::string> function_outputs() const;  // "call_id=output" per function_call_output item
  std::vector<std::string> response_instructions() const;  // per started response, "" when none were given
  std::vector<std::string> rejected_handshakes() const;  // Authorization (or "api-key: …") of each 401

  // Wait (bounded) until pred() is true, polling; returns pred()'s final value.
  bool wait_for(const std::function<bool()> &pred, int timeout_ms) const;

  // Actions on the live connections (run on the server thread).
  void drop_connections();                  // closes every connection abruptly (no close frame)
  void start_response(const std::string &instructions = {});  // as if the model spoke unprompted
  void emit_speech_started();               // as if the VAD heard the caller (barge-in) now
  void expire_sessions();                   // error session_expired, then close
  void set_config(const Config &config);    // applies to new responses and connections

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fake_realtime
