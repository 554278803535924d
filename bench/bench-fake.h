// bench::FakeRealtime — a deliberately cheap stand-in for the OpenAI Realtime WebSocket API, for
// benchmarks only (tests/fake-realtime is the faithful one; it validates every session.update, keeps
// the whole conversation and builds each event with json-glib, which is right for tests but would
// make the fake itself the bottleneck of a 40-call run on 2 cores).
//
// What makes it cheap:
//   - the reply audio is base64-encoded once per reply length; a delta is a string concatenation;
//   - client events are read with a string scan ("type", "audio", "instructions"), never parsed
//     into a tree; appended audio is base64-decoded into a reused buffer;
//   - one 10 ms pacing timer for all connections instead of one per response;
//   - nothing is recorded except counters (and, in latency mode, the onsets it detects).
//
// Turn-taking is the Realtime server's: an energy VAD over the appended audio (20 ms frames) sends
// speech_started / speech_stopped / committed, and the end of a turn starts a response of
// reply_ms of tone (continuous, so a caller can hear any gap in it) sent faster than real time.
// Speech during a response cancels it (interrupt_response), as the real server does.
//
// Latency mode (detect_marks): every onset of sound in the appended audio (a sample above the mark
// threshold after mark_quiet_ms below it) is recorded with the time its append arrived; and the
// program drives replies and speech_started itself (start_response, speech_started), each returning
// the moment the event was handed to libsoup.
//
// Runs on its own thread and GMainContext; every public method is thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace bench {

struct FakeConfig {
  bool vad = true;                 // energy VAD and server turn-taking (off: only explicit actions)
  double vad_threshold_dbfs = -40; // a 20 ms frame whose RMS is above this is speech
  int vad_silence_ms = 300;        // end of turn after this much silence
  int reply_ms = 3000;             // length of an automatic reply
  double reply_hz = 440;
  double reply_peak_dbfs = -12;
  int delta_ms = 100;              // audio per response.output_audio.delta
  double speed = 10;               // replies are sent this many times faster than real time (0: at once)
  bool detect_marks = false;       // latency mode: record onsets in the appended audio
  double mark_threshold_dbfs = -30;  // an onset is a sample whose |value| is above this…
  int mark_quiet_ms = 150;           // …after at least this long below it
};

// An onset found in a connection's appended audio.
struct UpMark {
  int64_t recv_us = 0;     // g_get_monotonic_time() when the append carrying it arrived
  int64_t sample = 0;      // its index in the connection's appended audio (24 kHz)
};

struct FakeStats {
  int connections = 0;        // accepted so far
  int open = 0;               // open now
  uint64_t appends = 0;
  uint64_t append_bytes = 0;
  uint64_t speech_frames = 0; // 20 ms frames the VAD called speech
  uint64_t frames = 0;        // 20 ms frames appended
  uint64_t responses = 0;
  uint64_t responses_cancelled = 0;
  uint64_t deltas = 0;
  uint64_t reply_bytes_sent = 0;  // model audio sent (24 kHz S16)
  uint64_t speech_started = 0;
  uint64_t truncates = 0;
  uint64_t unknown_events = 0;
};

class FakeRealtime {
 public:
  explicit FakeRealtime(FakeConfig config = {});
  ~FakeRealtime();
  FakeRealtime(const FakeRealtime &) = delete;
  FakeRealtime &operator=(const FakeRealtime &) = delete;

  bool start(uint16_t port, std::string *error);  // 127.0.0.1; 0 picks a free port
  void stop();
  uint16_t port() const;
  std::string url() const;  // ws://127.0.0.1:PORT/v1/realtime

  FakeStats stats() const;

  // Latency mode. Connections are found by their session's instructions (the bench sets a unique
  // instructions text per call, and finds it in the session.update); -1 when none has it (yet).
  int find_connection(const std::string &instructions) const;
  std::vector<UpMark> up_marks(int connection) const;
  // Starts a reply of reply_ms on that connection now; returns when its first delta (whose first
  // sample is the onset of the tone) was handed to libsoup, or -1 (no such connection, or a
  // response is active).
  int64_t start_response(int connection, int reply_ms);
  // Sends input_audio_buffer.speech_started (and cancels the active response, as the server's
  // interrupt_response does); returns when it was handed to libsoup, or -1.
  int64_t speech_started(int connection);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace bench
