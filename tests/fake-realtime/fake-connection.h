// One client connection of the fake Realtime server: the session, the input audio buffer with its
// VAD, the conversation, and the response being streamed. Lives on the server thread only; the
// server object owns it and deletes it after it reported itself finished.
//
// fake-connection.cpp handles client events, the session and the input buffer;
// fake-response.cpp produces responses (audio, transcript, tool calls) and their events.
#pragma once

#include "fake-audio.h"
#include "fake-json.h"
#include "fake-session.h"
#include "fake-state.h"

#include <libsoup/soup.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace fake_realtime::detail {

struct ConnectInfo {
  std::string authorization;
  std::string model;
  std::string beta_header;
};

// A conversation item as the server keeps it.
struct Item {
  std::string id;
  std::string type;  // message | function_call | function_call_output
  std::string role;  // user | assistant | system (messages)
  std::string status = "completed";
  NodePtr content;               // message content exactly as a client created it
  bool user_audio = false;       // made from committed input audio
  bool assistant_audio = false;  // a model audio reply (the only truncatable kind)
  bool assistant_text = false;   // a model text reply
  std::vector<uint8_t> audio;    // the item's audio (for assistant items: what was sent)
  std::string transcript;        // assistant transcript or text, as sent
  std::string call_id, name, arguments, output;

  int64_t audio_ms() const { return static_cast<int64_t>(audio.size()) / kBytesPerMs; }
};

struct Response {
  std::string id;
  bool in_conversation = true;  // false for response.create with conversation:"none"
  bool text_only = false;
  std::string instructions;
  NodePtr voice;
  std::vector<std::string> output_ids;  // in output_index order
  std::vector<Item> detached;           // outputs kept out of the conversation

  // The assistant message being streamed, if any.
  std::string item_id;
  int output_index = 0;
  std::vector<uint8_t> pcm;
  size_t chunk_bytes = 0;
  std::vector<std::string> pieces;  // transcript (or text) for each chunk
  size_t chunks_total = 0;
  size_t chunks_sent = 0;
  std::string text_sent;
  size_t audio_sent = 0;
  int64_t start_us = 0;
  double period_us = 0;
  GSource *timer = nullptr;
};

class Connection {
 public:
  using FinishedFn = std::function<void(Connection *)>;

  // Takes a reference on ws. finished is called once, on the server thread, when the connection
  // is closed; the owner must delete the Connection later (not from inside that call).
  Connection(SharedState &state, int index, SoupWebsocketConnection *ws, ConnectInfo info, FinishedFn finished);
  ~Connection();
  Connection(const Connection &) = delete;
  Connection &operator=(const Connection &) = delete;

  void start();  // session.created (or the shape rejection), timers, the optional large frame
  bool is_open() const { return phase_ == Phase::Open; }
  bool is_gone() const { return phase_ == Phase::Gone; }

  void close(gushort code, const std::string &reason);  // close frame, then wait for "closed"
  void drop();                                          // no close frame: the socket just dies
  void expire();                                        // error session_expired, then close
  void start_unprompted_response(const std::string &instructions);
  void emit_speech_started();

 private:
  enum class Phase { Open, Closing, Gone };

  // fake-connection.cpp
  static void on_message_cb(SoupWebsocketConnection *ws, gint type, GBytes *message, gpointer self);
  static void on_closed_cb(SoupWebsocketConnection *ws, gpointer self);
  static gboolean on_lifetime_cb(gpointer self);
  void on_message(gint type, GBytes *message);
  void on_closed();
  void dispatch(JsonObject *ev, const std::string &type, const std::string &eid);
  void handle_session_update(JsonObject *ev, const std::string &eid);
  void handle_append(JsonObject *ev, const std::string &eid);
  void handle_commit(const std::string &eid);
  void handle_clear();
  void handle_item_create(JsonObject *ev, const std::string &eid);
  bool validate_message_content(JsonObject *item, Item *out, const std::string &eid);
  void handle_truncate(JsonObject *ev, const std::string &eid);
  void handle_delete(JsonObject *ev, const std::string &eid);
  void handle_retrieve(JsonObject *ev, const std::string &eid);
  void handle_response_create(JsonObject *ev, const std::string &eid);
  void handle_response_cancel(JsonObject *ev, const std::string &eid);
  void run_vad();
  void on_speech_started(int64_t frame_start_ms);
  void on_speech_stopped();
  void consume_input(size_t bytes);
  void commit_user_audio(const std::string &item_id, std::vector<uint8_t> pcm);
  void send_large_frame();
  void finish();

  // fake-response.cpp
  void start_response(JsonObject *params, const std::string &instructions);
  void emit_tool_calls(const Config &cfg);
  void begin_message(const Config &cfg);
  void send_chunk();
  static gboolean on_chunk_timer_cb(gpointer self);
  void finish_response(const char *status, const char *reason);
  Obj response_json(const Response &r, const char *status, const char *reason, bool with_usage);
  Obj usage_json(const Response &r);

  // Shared helpers (fake-connection.cpp)
  Obj event(const char *type);
  void send(const Obj &event);
  void send_error(const ApiError &error, const std::string &client_event_id);
  const char *name(const char *ga, const char *beta) const;
  Item *find_item(const std::string &id);
  Item *find_output(const std::string &id);  // the conversation, then the response's own outputs
  std::string last_item_id() const;
  Obj item_json(const Item &item, bool with_audio) const;
  void announce_item(const Item &item, const std::string &previous_id, bool with_done);
  void stop_response_timer();
  int64_t input_timeline_ms() const;

  SharedState &state_;
  const int index_;
  SoupWebsocketConnection *ws_;
  const ConnectInfo info_;
  FinishedFn finished_;
  const Config cfg_;  // snapshot at accept: shape, VAD and lifetime settings
  SessionContext ctx_;
  JsonObject *session_ = nullptr;
  SessionView view_;
  std::string conversation_id_;
  Phase phase_ = Phase::Open;
  gulong message_handler_ = 0;
  gulong closed_handler_ = 0;
  GSource *lifetime_timer_ = nullptr;

  std::vector<Item> items_;
  bool assistant_audio_present_ = false;
  size_t tool_calls_done_ = 0;

  std::vector<uint8_t> input_;     // the input audio buffer (since the last commit or clear)
  uint64_t input_base_bytes_ = 0;  // bytes written before input_[0] (the input timeline)
  size_t vad_pos_ = 0;             // input_ bytes the VAD has seen, in whole frames
  EnergyVad vad_;
  std::string speech_item_id_;
  int64_t speech_start_ms_ = 0;
  std::vector<uint8_t> last_turn_;

  std::unique_ptr<Response> response_;
};

}  // namespace fake_realtime::detail
