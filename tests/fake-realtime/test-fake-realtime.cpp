// Self-test of the fake Realtime server, driven by a real libsoup WebSocket client on a private
// GMainContext that the test iterates itself. Every wait is bounded.
#include "fake-audio.h"
#include "fake-json.h"
#include "fake-realtime-server.h"

#include <gst/check/gstcheck.h>
#include <libsoup/soup.h>

#include <cmath>
#include <cstring>
#include <ctime>
#include <functional>
#include <string>
#include <utility>
#include <vector>

using fake_realtime::Config;
using fake_realtime::Server;
using fake_realtime::detail::get_object;
using fake_realtime::detail::get_string;
using fake_realtime::detail::NodePtr;

// ck_assert_str_eq() keeps a pointer past the statement that made it; compare std::strings instead.
#define assert_str(actual, expected)                                                                               \
  do {                                                                                                             \
    const std::string actual_ = (actual), expected_ = (expected);                                                  \
    ck_assert_msg(actual_ == expected_, "%s is '%s', expected '%s'", #actual, actual_.c_str(), expected_.c_str()); \
  } while (0)

namespace {

constexpr int kWaitMs = 3000;
constexpr int kBytesPerMs = 48;

// A WebSocket client that records every event it receives, with its arrival time.
class Client {
 public:
  Client() : context_(g_main_context_new()) {
    g_main_context_push_thread_default(context_);  // the session's async work runs here
    session_ = soup_session_new();
  }

  ~Client() {
    if (ws_) {
      g_signal_handlers_disconnect_by_data(ws_, this);
      if (soup_websocket_connection_get_state(ws_) == SOUP_WEBSOCKET_STATE_OPEN)
        soup_websocket_connection_close(ws_, SOUP_WEBSOCKET_CLOSE_NORMAL, nullptr);
      g_object_unref(ws_);
    }
    g_object_unref(session_);
    iterate_until([] { return false; }, 20);  // let libsoup finish its closes
    g_main_context_pop_thread_default(context_);
    g_main_context_unref(context_);
  }

  Client(const Client &) = delete;
  Client &operator=(const Client &) = delete;

  // Connects and returns true on a WebSocket upgrade; http_status tells why not.
  bool connect(const std::string &url, const std::vector<std::pair<std::string, std::string>> &headers = {}) {
    SoupMessage *msg = soup_message_new("GET", url.c_str());
    for (const auto &h : headers)
      soup_message_headers_append(soup_message_get_request_headers(msg), h.first.c_str(), h.second.c_str());
    connect_done_ = false;
    soup_session_websocket_connect_async(session_, msg, nullptr, nullptr, G_PRIORITY_DEFAULT, nullptr, on_connected,
                                         this);
    iterate_until([this] { return connect_done_; }, kWaitMs);
    http_status = soup_message_get_status(msg);
    g_object_unref(msg);
    return ws_ != nullptr;
  }

  void send(const std::string &json) {
    ck_assert(ws_ && soup_websocket_connection_get_state(ws_) == SOUP_WEBSOCKET_STATE_OPEN);
    soup_websocket_connection_send_text(ws_, json.c_str());
  }

  void append(const std::vector<uint8_t> &pcm, size_t chunk_bytes = 100 * kBytesPerMs) {
    for (size_t off = 0; off < pcm.size(); off += chunk_bytes) {
      gchar *b64 = g_base64_encode(pcm.data() + off, std::min(chunk_bytes, pcm.size() - off));
      send(std::string(R"({"type":"input_audio_buffer.append","audio":")") + b64 + "\"}");
      g_free(b64);
    }
  }

  bool iterate_until(const std::function<bool()> &pred, int timeout_ms) {
    const gint64 deadline = g_get_monotonic_time() + static_cast<gint64>(timeout_ms) * 1000;
    for (;;) {
      while (g_main_context_iteration(context_, FALSE)) {
      }
      if (pred())
        return true;
      if (g_get_monotonic_time() >= deadline)
        return false;
      g_usleep(500);
    }
  }

  // The next event of this type after the cursor; fails the test if none arrives in time.
  JsonObject *expect(const std::string &type, int timeout_ms = kWaitMs) {
    size_t found = 0;
    bool ok = iterate_until(
        [&] {
          for (size_t i = cursor; i < types.size(); i++)
            if (types[i] == type) {
              found = i;
              return true;
            }
          return false;
        },
        timeout_ms);
    ck_assert_msg(ok, "no '%s' event after #%zu (have %zu events, last '%s')", type.c_str(), cursor, types.size(),
                  types.empty() ? "" : types.back().c_str());
    cursor = found + 1;
    last_index = found;
    return json_node_get_object(events[found].get());
  }

  // The next error event; checks its code ("" means null).
  JsonObject *expect_error(const std::string &code) {
    JsonObject *error = get_object(expect("error"), "error");
    ck_assert(error != nullptr);
    assert_str(get_string(error, "type").c_str(), "invalid_request_error");
    if (code.empty())
      ck_assert(json_object_get_null_member(error, "code"));
    else
      assert_str(get_string(error, "code").c_str(), code.c_str());
    return error;
  }

  // True if an event of this type arrives after the cursor within timeout_ms.
  bool sees(const std::string &type, int timeout_ms) {
    return iterate_until(
        [&] {
          for (size_t i = cursor; i < types.size(); i++)
            if (types[i] == type)
              return true;
          return false;
        },
        timeout_ms);
  }

  bool wait_closed(int timeout_ms = kWaitMs) {
    return iterate_until([this] { return closed; }, timeout_ms);
  }

  void set_max_payload(gsize bytes) { soup_websocket_connection_set_max_incoming_payload_size(ws_, bytes); }

  std::vector<NodePtr> events;
  std::vector<std::string> types;
  std::vector<size_t> sizes;
  std::vector<gint64> times;
  size_t cursor = 0;
  size_t last_index = 0;
  bool closed = false;
  gushort close_code = 0;
  guint http_status = 0;

 private:
  static void on_connected(GObject *source, GAsyncResult *result, gpointer data) {
    auto *self = static_cast<Client *>(data);
    GError *err = nullptr;
    self->ws_ = soup_session_websocket_connect_finish(SOUP_SESSION(source), result, &err);
    g_clear_error(&err);
    if (self->ws_) {
      // Our frames may be large (docs §7): lift libsoup's 128 KiB default.
      soup_websocket_connection_set_max_incoming_payload_size(self->ws_, 64 * 1024 * 1024);
      g_signal_connect(self->ws_, "message", G_CALLBACK(on_message), self);
      g_signal_connect(self->ws_, "closed", G_CALLBACK(on_closed), self);
    }
    self->connect_done_ = true;
  }

  static void on_message(SoupWebsocketConnection *, gint, GBytes *message, gpointer data) {
    auto *self = static_cast<Client *>(data);
    gsize length = 0;
    const char *text = static_cast<const char *>(g_bytes_get_data(message, &length));
    std::string error;
    NodePtr node(fake_realtime::detail::parse(text, length, &error));
    ck_assert_msg(node && JSON_NODE_HOLDS_OBJECT(node.get()), "server sent invalid JSON: %s", error.c_str());
    self->types.push_back(get_string(json_node_get_object(node.get()), "type"));
    self->events.push_back(std::move(node));
    self->sizes.push_back(length);
    self->times.push_back(g_get_monotonic_time());
  }

  static void on_closed(SoupWebsocketConnection *ws, gpointer data) {
    auto *self = static_cast<Client *>(data);
    self->closed = true;
    self->close_code = soup_websocket_connection_get_close_code(ws);
  }

  GMainContext *context_;
  SoupSession *session_ = nullptr;
  SoupWebsocketConnection *ws_ = nullptr;
  bool connect_done_ = false;
};

std::vector<uint8_t> sine(int ms, double hz, double amplitude) {
  std::vector<uint8_t> out(static_cast<size_t>(ms) * kBytesPerMs);
  for (size_t i = 0; i < out.size() / 2; i++) {
    auto s = static_cast<int16_t>(std::lrint(amplitude * 32767 * std::sin(2 * G_PI * hz * i / 24000.0)));
    out[2 * i] = static_cast<uint8_t>(static_cast<uint16_t>(s) & 0xff);
    out[2 * i + 1] = static_cast<uint8_t>(static_cast<uint16_t>(s) >> 8);
  }
  return out;
}

std::vector<uint8_t> silence(int ms) {
  return std::vector<uint8_t>(static_cast<size_t>(ms) * kBytesPerMs, 0);
}

std::vector<uint8_t> concat(std::vector<uint8_t> a, const std::vector<uint8_t> &b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

int zero_crossings(const std::vector<uint8_t> &pcm) {
  int count = 0;
  bool prev_negative = false;
  for (size_t i = 0; i < pcm.size() / 2; i++) {
    auto s = static_cast<int16_t>(static_cast<uint16_t>(pcm[2 * i] | (pcm[2 * i + 1] << 8)));
    if (i > 0 && (s < 0) != prev_negative)
      count++;
    prev_negative = s < 0;
  }
  return count;
}

int64_t int_member(JsonObject *o, const char *key) {
  return json_object_get_int_member(o, key);
}

JsonObject *path(JsonObject *o, std::initializer_list<const char *> keys) {
  for (const char *k : keys)
    o = get_object(o, k);
  return o;
}

// The audio of one response: its output_audio deltas between the cursor and response.done.
struct Reply {
  std::vector<uint8_t> audio;
  std::string transcript_deltas;
  std::vector<std::string> sequence;  // event types without the deltas
  JsonObject *done = nullptr;         // the response.done response object
  gint64 created_us = 0, done_us = 0;
};

Reply collect_reply(Client &c, const char *audio_delta = "response.output_audio.delta",
                    const char *transcript_delta = "response.output_audio_transcript.delta") {
  Reply r;
  JsonObject *created = c.expect("response.created");
  const size_t first = c.last_index;
  r.created_us = c.times[first];
  const std::string id = get_string(get_object(created, "response"), "id");
  r.done = get_object(c.expect("response.done", 10000), "response");
  r.done_us = c.times[c.last_index];
  assert_str(get_string(r.done, "id").c_str(), id.c_str());
  for (size_t i = first; i <= c.last_index; i++) {
    JsonObject *ev = json_node_get_object(c.events[i].get());
    const std::string &type = c.types[i];
    if (type == audio_delta) {
      assert_str(get_string(ev, "response_id").c_str(), id.c_str());
      std::vector<uint8_t> pcm = fake_realtime::detail::unbase64(get_string(ev, "delta"));
      r.audio.insert(r.audio.end(), pcm.begin(), pcm.end());
    } else if (type == transcript_delta) {
      r.transcript_deltas += get_string(ev, "delta");
    } else {
      r.sequence.push_back(type);
    }
  }
  return r;
}

std::string joined(const std::vector<std::string> &v) {
  std::string out;
  for (const auto &s : v)
    out += (out.empty() ? "" : " ") + s;
  return out;
}

const char *kManualTurns =
    R"({"type":"session.update","session":{"type":"realtime","audio":{"input":{"turn_detection":null}}}})";

// Starts a server, connects a client and consumes session.created.
struct Fixture {
  explicit Fixture(Config config = {}) : server(std::move(config)) {
    std::string error;
    ck_assert_msg(server.start(0, &error), "start failed: %s", error.c_str());
    ck_assert(client.connect(server.url() + "?model=gpt-realtime"));
    client.expect("session.created");
  }
  Server server;
  Client client;
};

}  // namespace

GST_START_TEST(test_session_created) {
  Server server;
  ck_assert(server.start());
  ck_assert(server.port() != 0);
  Client c;
  ck_assert(c.connect(server.url() + "?model=gpt-realtime-2", {{"Authorization", "Bearer sk-anything"}}));
  JsonObject *session = get_object(c.expect("session.created"), "session");
  assert_str(get_string(session, "type").c_str(), "realtime");
  assert_str(get_string(session, "model").c_str(), "gpt-realtime-2");
  const int64_t expires_at = int_member(session, "expires_at");
  ck_assert_int_le(std::llabs(expires_at - (static_cast<int64_t>(std::time(nullptr)) + 3600)), 5);
  JsonObject *td = path(session, {"audio", "input", "turn_detection"});
  assert_str(get_string(td, "type").c_str(), "server_vad");
  ck_assert_int_eq(int_member(td, "silence_duration_ms"), 300);
  assert_str(get_string(path(session, {"audio", "output"}), "voice").c_str(), "marin");
  ck_assert_int_eq(server.connection_count(), 1);
  auto log = server.connection(0);
  assert_str(log.model.c_str(), "gpt-realtime-2");
  assert_str(log.authorization.c_str(), "Bearer sk-anything");
  ck_assert(log.beta_header.empty());
}
GST_END_TEST;

GST_START_TEST(test_session_update_validation) {
  Fixture f;
  Client &c = f.client;
  // A pure beta update has no session.type.
  c.send(R"({"type":"session.update","event_id":"evt_1","session":{"modalities":["text","audio"],"voice":"alloy"}})");
  JsonObject *err = c.expect_error("missing_required_parameter");
  assert_str(get_string(err, "param").c_str(), "session.type");
  assert_str(get_string(err, "event_id").c_str(), "evt_1");
  // Beta keys in a GA update reject the whole update.
  c.send(R"({"type":"session.update","session":{"type":"realtime","instructions":"IGNORED",)"
         R"("turn_detection":{"type":"server_vad"}}})");
  err = c.expect_error("unknown_parameter");
  assert_str(get_string(err, "message").c_str(), "Unknown parameter: 'session.turn_detection'.");
  assert_str(get_string(err, "param").c_str(), "session.turn_detection");
  c.send(R"({"type":"session.update","session":{"type":"realtime","temperature":0.8}})");
  assert_str(get_string(c.expect_error("unknown_parameter"), "param").c_str(), "session.temperature");
  c.send(
      R"({"type":"session.update","session":{"type":"realtime","audio":{"input":{"input_audio_noise_reduction":null}}}})");
  assert_str(get_string(c.expect_error("unknown_parameter"), "param").c_str(),
             "session.audio.input.input_audio_noise_reduction");
  // A good update merges audio.input/output member by member and answers with the full session.
  c.send(R"({"type":"session.update","session":{"type":"realtime","audio":{"output":{"voice":"cedar"},)"
         R"("input":{"turn_detection":{"type":"server_vad","silence_duration_ms":500}}}}})");
  JsonObject *session = get_object(c.expect("session.updated"), "session");
  ck_assert(get_string(session, "instructions") != "IGNORED");
  assert_str(get_string(path(session, {"audio", "output"}), "voice").c_str(), "cedar");
  assert_str(get_string(path(session, {"audio", "output", "format"}), "type").c_str(), "audio/pcm");
  assert_str(get_string(path(session, {"audio", "input", "format"}), "type").c_str(), "audio/pcm");
  JsonObject *td = path(session, {"audio", "input", "turn_detection"});
  ck_assert_int_eq(int_member(td, "silence_duration_ms"), 500);
  ck_assert_int_eq(int_member(td, "prefix_padding_ms"), 300);
  ck_assert(json_object_get_boolean_member(td, "create_response"));
  ck_assert_int_gt(int_member(session, "expires_at"), 0);
  auto errors = f.server.errors_sent();
  ck_assert_int_eq(errors.size(), 4);
  assert_str(errors[0].c_str(), "missing_required_parameter");
}
GST_END_TEST;

GST_START_TEST(test_vad_turn_and_reply) {
  Fixture f;
  Client &c = f.client;
  c.append(concat(sine(1000, 300, 0.5), silence(1000)));
  JsonObject *started = c.expect("input_audio_buffer.speech_started");
  const std::string user_item = get_string(started, "item_id");
  ck_assert_int_eq(int_member(started, "audio_start_ms"), 0);
  JsonObject *stopped = c.expect("input_audio_buffer.speech_stopped");
  ck_assert_int_eq(int_member(stopped, "audio_end_ms"), 1300);  // 1000 ms speech + 300 ms silence
  assert_str(get_string(stopped, "item_id").c_str(), user_item.c_str());
  assert_str(get_string(c.expect("input_audio_buffer.committed"), "item_id").c_str(), user_item.c_str());
  JsonObject *added = get_object(c.expect("conversation.item.added"), "item");
  assert_str(get_string(added, "id").c_str(), user_item.c_str());
  assert_str(get_string(added, "role").c_str(), "user");
  c.expect("conversation.item.done");

  Reply r = collect_reply(c);
  assert_str(joined(r.sequence).c_str(),
             "response.created rate_limits.updated response.output_item.added conversation.item.added "
             "response.content_part.added response.output_audio.done "
             "response.output_audio_transcript.done response.content_part.done "
             "response.output_item.done conversation.item.done response.done");
  ck_assert_int_eq(r.audio.size(), 1000 * kBytesPerMs);  // exactly reply_duration_ms
  const int crossings = zero_crossings(r.audio);         // 440 Hz: 880 per second
  ck_assert_msg(std::abs(crossings - 880) <= 4, "%d zero crossings", crossings);
  ck_assert_msg(r.done_us - r.created_us < 600 * 1000, "1 s of audio took %lld us",
                static_cast<long long>(r.done_us - r.created_us));
  assert_str(get_string(r.done, "status").c_str(), "completed");
  JsonObject *usage = get_object(r.done, "usage");
  ck_assert_int_eq(int_member(get_object(usage, "input_token_details"), "audio_tokens"), 13);   // 1300 ms / 100
  ck_assert_int_eq(int_member(get_object(usage, "output_token_details"), "audio_tokens"), 20);  // 1000 ms / 50
  JsonObject *transcript_done = json_node_get_object(c.events[c.last_index - 4].get());
  assert_str(c.types[c.last_index - 4].c_str(), "response.output_audio_transcript.done");
  assert_str(get_string(transcript_done, "transcript").c_str(), r.transcript_deltas.c_str());
  ck_assert(!r.transcript_deltas.empty());
  ck_assert_int_eq(f.server.speech_started_count(), 1);
  ck_assert_int_eq(f.server.responses_started(), 1);
  ck_assert_int_eq(f.server.all_input_audio().size(), 2000 * kBytesPerMs);
}
GST_END_TEST;

GST_START_TEST(test_echo_reply) {
  Config config;
  config.echo_input = true;
  config.speed = 0;  // all at once
  Fixture f(config);
  const std::vector<uint8_t> speech = sine(500, 300, 0.5);
  f.client.append(concat(speech, silence(400)));
  Reply r = collect_reply(f.client);
  // The committed turn: padding-clamped start (0) to the end of the 300 ms silence window.
  ck_assert_int_eq(r.audio.size(), 800 * kBytesPerMs);
  ck_assert(std::memcmp(r.audio.data(), speech.data(), speech.size()) == 0);
}
GST_END_TEST;

GST_START_TEST(test_voice_locked_after_audio) {
  Fixture f;
  Client &c = f.client;
  c.send(R"({"type":"session.update","session":{"type":"realtime","audio":{"output":{"voice":"ash"}}}})");
  c.expect("session.updated");  // no assistant audio yet: allowed
  c.send(R"({"type":"response.create"})");
  collect_reply(c);
  c.send(
      R"({"type":"session.update","session":{"type":"realtime","instructions":"x","audio":{"output":{"voice":"marin"}}}})");
  assert_str(get_string(c.expect_error("cannot_update_voice"), "message").c_str(),
             "Cannot update a conversation's voice if assistant audio is present.");
  c.send(R"({"type":"session.update","session":{"type":"realtime","audio":{"output":{"voice":"ash"}}}})");
  c.expect("session.updated");  // the same voice is fine
}
GST_END_TEST;

GST_START_TEST(test_text_response) {
  Fixture f;
  Client &c = f.client;
  c.send(R"({"type":"response.create","response":{"output_modalities":["text"],"instructions":"Spell it."}})");
  Reply r = collect_reply(c, "response.output_audio.delta", "response.output_text.delta");
  ck_assert(r.audio.empty());
  assert_str(r.transcript_deltas, "Fake reply to the instructions: Spell it.");
  assert_str(joined(r.sequence),
             "response.created rate_limits.updated response.output_item.added conversation.item.added "
             "response.content_part.added response.output_text.done response.content_part.done "
             "response.output_item.done conversation.item.done response.done");
  JsonObject *item = json_array_get_object_element(json_object_get_array_member(r.done, "output"), 0);
  JsonObject *part = json_array_get_object_element(json_object_get_array_member(item, "content"), 0);
  assert_str(get_string(part, "type"), "output_text");
  // A text reply is not assistant audio: the voice stays changeable.
  c.send(R"({"type":"session.update","session":{"type":"realtime","audio":{"output":{"voice":"sage"}}}})");
  c.expect("session.updated");
}
GST_END_TEST;

GST_START_TEST(test_cancel_and_conflict) {
  Config config;
  config.reply_duration_ms = 3000;
  config.speed = 1.0;  // real time, so the cancel lands mid-reply
  Fixture f(config);
  Client &c = f.client;
  c.send(R"({"type":"response.create","response":{"instructions":"Say hi."}})");
  const std::string id = get_string(get_object(c.expect("response.created"), "response"), "id");
  c.expect("response.output_audio.delta");
  c.send(R"({"type":"response.create"})");
  ck_assert(get_string(c.expect_error("conversation_already_has_active_response"), "message").find(id) !=
            std::string::npos);
  c.send(R"({"type":"response.cancel"})");
  c.expect("response.output_audio.done");
  c.expect("response.output_item.done");
  JsonObject *done = get_object(c.expect("response.done"), "response");
  assert_str(get_string(done, "status").c_str(), "cancelled");
  assert_str(get_string(get_object(done, "status_details"), "reason").c_str(), "client_cancelled");
  ck_assert(!c.sees("response.output_audio.delta", 300));  // no late deltas
  c.send(R"({"type":"response.cancel"})");
  c.expect_error("response_cancel_not_active");
  ck_assert_int_eq(f.server.responses_cancelled(), 1);
  assert_str(f.server.response_instructions().at(0).c_str(), "Say hi.");
}
GST_END_TEST;

GST_START_TEST(test_barge_in) {
  Config config;
  config.reply_duration_ms = 3000;
  config.speed = 1.0;
  Fixture f(config);
  Client &c = f.client;
  // Server-side actions: an unprompted greeting, then a scripted barge-in.
  f.server.start_response("Greet the caller.");
  c.expect("response.created");
  c.expect("response.output_audio.delta");
  f.server.emit_speech_started();
  c.expect("input_audio_buffer.speech_started");
  JsonObject *done = get_object(c.expect("response.done"), "response");
  assert_str(get_string(done, "status").c_str(), "cancelled");
  assert_str(get_string(get_object(done, "status_details"), "reason").c_str(), "turn_detected");
  ck_assert(!c.sees("response.output_audio.delta", 200));
  // The VAD does the same for loud input.
  c.append(silence(400));  // ends the scripted turn: a new (real-time) reply starts
  c.expect("input_audio_buffer.speech_stopped");
  c.expect("response.created");
  c.expect("response.output_audio.delta");
  c.append(sine(200, 300, 0.5));
  c.expect("input_audio_buffer.speech_started");
  done = get_object(c.expect("response.done"), "response");
  assert_str(get_string(get_object(done, "status_details"), "reason").c_str(), "turn_detected");
  ck_assert_int_eq(f.server.speech_started_count(), 2);
  ck_assert_int_eq(f.server.responses_cancelled(), 2);
  assert_str(f.server.response_instructions().at(0).c_str(), "Greet the caller.");
}
GST_END_TEST;

GST_START_TEST(test_truncate_and_delete) {
  Fixture f;
  Client &c = f.client;
  c.send(kManualTurns);
  c.expect("session.updated");
  c.send(R"({"type":"response.create"})");
  Reply r = collect_reply(c);
  JsonObject *item = json_array_get_object_element(json_object_get_array_member(r.done, "output"), 0);
  const std::string item_id = get_string(item, "id");
  auto truncate = [&](int64_t ms) {
    c.send(R"({"type":"conversation.item.truncate","item_id":")" + item_id + R"(","content_index":0,"audio_end_ms":)" +
           std::to_string(ms) + "}");
  };
  truncate(1500);
  JsonObject *err = c.expect_error("");
  assert_str(get_string(err, "message").c_str(), "Audio content of 1000ms is already shorter than 1500ms");
  ck_assert(json_object_get_null_member(err, "event_id"));
  ck_assert(!c.sees("conversation.item.truncated", 200));
  truncate(400);
  JsonObject *truncated = c.expect("conversation.item.truncated");
  ck_assert_int_eq(int_member(truncated, "audio_end_ms"), 400);
  // The item now holds 400 ms of audio, which conversation.item.retrieve returns.
  c.send(R"({"type":"conversation.item.retrieve","item_id":")" + item_id + "\"}");
  JsonObject *retrieved = get_object(c.expect("conversation.item.retrieved"), "item");
  JsonObject *part = json_array_get_object_element(json_object_get_array_member(retrieved, "content"), 0);
  assert_str(get_string(part, "type"), "output_audio");
  ck_assert_int_eq(fake_realtime::detail::unbase64(get_string(part, "audio")).size(), 400 * kBytesPerMs);
  // The observed clamping behaviour, when asked for.
  Config clamp;
  clamp.clamp_bad_truncate = true;
  f.server.set_config(clamp);
  truncate(900);
  assert_str(get_string(c.expect_error(""), "message").c_str(), "Audio content of 400ms is already shorter than 900ms");
  ck_assert_int_eq(int_member(c.expect("conversation.item.truncated"), "audio_end_ms"), 400);
  auto records = f.server.truncates();
  ck_assert_int_eq(records.size(), 4);
  ck_assert(!records[0].accepted && records[0].item_audio_ms == 1000 && records[0].audio_end_ms == 1500);
  ck_assert(records[1].accepted && records[1].audio_end_ms == 400);
  ck_assert(!records[2].accepted && records[2].item_audio_ms == 400);
  ck_assert(records[3].accepted && records[3].audio_end_ms == 400);
  // Only assistant audio can be truncated.
  c.send(R"({"type":"conversation.item.create","item":{"id":"item_user_1","type":"message","role":"user",)"
         R"("content":[{"type":"input_text","text":"hi"}]}})");
  c.expect("conversation.item.done");
  c.send(R"({"type":"conversation.item.truncate","item_id":"item_user_1","content_index":0,"audio_end_ms":0})");
  assert_str(get_string(c.expect_error("invalid_value"), "message").c_str(),
             "Only model output audio messages can be truncated");
  c.send(R"({"type":"conversation.item.delete","item_id":")" + item_id + "\"}");
  assert_str(get_string(c.expect("conversation.item.deleted"), "item_id").c_str(), item_id.c_str());
  c.send(R"({"type":"conversation.item.delete","item_id":"item_nope"})");
  c.expect_error("item_delete_invalid_item_id");
  ck_assert_int_eq(f.server.deleted_items().size(), 1);
  assert_str(f.server.deleted_items()[0].c_str(), item_id.c_str());
}
GST_END_TEST;

GST_START_TEST(test_tool_call_round_trip) {
  Config config;
  config.tool_calls.push_back({"get_weather", R"({"city":"Paris"})"});
  Fixture f(config);
  Client &c = f.client;
  c.send(kManualTurns);
  c.expect("session.updated");
  c.send(R"({"type":"response.create"})");
  c.expect("response.created");
  JsonObject *added = get_object(c.expect("response.output_item.added"), "item");
  assert_str(get_string(added, "type").c_str(), "function_call");
  assert_str(get_string(added, "name").c_str(), "get_weather");
  const std::string call_id = get_string(added, "call_id");
  ck_assert(!call_id.empty());
  assert_str(get_string(c.expect("response.function_call_arguments.delta"), "call_id").c_str(), call_id.c_str());
  JsonObject *args = c.expect("response.function_call_arguments.done");
  assert_str(get_string(args, "name").c_str(), "get_weather");
  assert_str(get_string(args, "arguments").c_str(), R"({"city":"Paris"})");
  c.expect("response.output_item.done");
  JsonObject *done = get_object(c.expect("response.done"), "response");
  assert_str(get_string(done, "status").c_str(), "completed");
  JsonObject *out = json_array_get_object_element(json_object_get_array_member(done, "output"), 0);
  assert_str(get_string(out, "type").c_str(), "function_call");

  c.send(
      R"({"type":"conversation.item.create","item":{"type":"function_call_output","call_id":"call_unknown","output":"{}"}})");
  c.expect_error("invalid_value");
  c.send(R"({"type":"conversation.item.create","item":{"type":"function_call_output","call_id":")" + call_id +
         R"(","output":"{\"temp_c\":21}"}})");
  assert_str(get_string(get_object(c.expect("conversation.item.added"), "item"), "type").c_str(),
             "function_call_output");
  c.expect("conversation.item.done");
  ck_assert(!c.sees("response.created", 300));  // a tool output never triggers a response by itself
  ck_assert_int_eq(f.server.responses_started(), 1);
  ck_assert_int_eq(f.server.function_outputs().size(), 1);
  assert_str(f.server.function_outputs()[0].c_str(), (call_id + R"(={"temp_c":21})").c_str());

  c.send(R"({"type":"response.create"})");
  Reply r = collect_reply(c);
  ck_assert_int_eq(r.audio.size(), 1000 * kBytesPerMs);
  assert_str(get_string(r.done, "status").c_str(), "completed");

  // History replay after a reconnect: GA assistant text must be output_text.
  c.send(
      R"({"type":"conversation.item.create","item":{"type":"message","role":"assistant","content":[{"type":"text","text":"old"}]}})");
  c.expect_error("invalid_value");
  c.send(
      R"({"type":"conversation.item.create","item":{"type":"message","role":"assistant","content":[{"type":"output_text","text":"old"}]}})");
  c.expect("conversation.item.added");
  c.expect("conversation.item.done");
  auto log = f.server.connection(0);
  assert_str(log.types.back().c_str(), "conversation.item.create");
  ck_assert(log.events.back().find("output_text") != std::string::npos);
}
GST_END_TEST;

GST_START_TEST(test_commit_and_clear) {
  Fixture f;
  Client &c = f.client;
  c.send(R"({"type":"session.update","session":{"type":"realtime","audio":{"input":{"turn_detection":null,)"
         R"("transcription":{"model":"gpt-4o-mini-transcribe"}}}}})");
  c.expect("session.updated");
  c.append(silence(50));
  c.send(R"({"type":"input_audio_buffer.commit"})");
  ck_assert(get_string(c.expect_error("input_audio_buffer_commit_empty"), "message").find("50.00ms") !=
            std::string::npos);
  c.append(silence(100));
  c.send(R"({"type":"input_audio_buffer.commit"})");
  const std::string id = get_string(c.expect("input_audio_buffer.committed"), "item_id");
  assert_str(get_string(get_object(c.expect("conversation.item.added"), "item"), "id").c_str(), id.c_str());
  c.expect("conversation.item.done");
  assert_str(get_string(c.expect("conversation.item.input_audio_transcription.completed"), "item_id"), id);
  ck_assert(!c.sees("response.created", 200));  // a commit alone never starts a response
  c.append(sine(300, 300, 0.5));                // VAD is off: no speech events either
  c.send(R"({"type":"input_audio_buffer.clear"})");
  c.expect("input_audio_buffer.cleared");
  ck_assert_int_eq(f.server.speech_started_count(), 0);
}
GST_END_TEST;

GST_START_TEST(test_invalid_events) {
  Fixture f;
  Client &c = f.client;
  c.send("{not json");
  c.expect_error("invalid_event");
  c.send(R"({"event_id":"evt_9"})");
  assert_str(get_string(c.expect_error("invalid_event"), "message").c_str(), "The 'type' field is missing.");
  c.send(R"({"type":"foo.bar"})");
  ck_assert(
      g_str_has_prefix(get_string(c.expect_error("invalid_event"), "message").c_str(), "Invalid value: 'foo.bar'"));
  c.send(R"({"type":"session.update","session":{"type":"realtime"}})");
  c.expect("session.updated");  // still open
  auto log = f.server.connection(0);
  ck_assert_int_eq(log.events.size(), 4);
  assert_str(log.types[0].c_str(), "");
  assert_str(log.types[2].c_str(), "foo.bar");
}
GST_END_TEST;

GST_START_TEST(test_large_frame) {
  Config config;
  config.send_large_frame_on_connect = true;
  Fixture f(config);
  JsonObject *item = get_object(f.client.expect("conversation.item.retrieved"), "item");
  ck_assert_int_gt(f.client.sizes[f.client.last_index], 2 * 1024 * 1024);
  assert_str(get_string(item, "role").c_str(), "assistant");
  ck_assert(!f.client.closed);
}
GST_END_TEST;

GST_START_TEST(test_drop_connections) {
  Fixture f;
  f.server.drop_connections();
  ck_assert(f.client.wait_closed());
  ck_assert_int_eq(f.client.close_code, 0);  // no close frame: libsoup reports no code
  ck_assert(f.server.wait_for([&] { return f.server.connection(0).closed; }, kWaitMs));
}
GST_END_TEST;

GST_START_TEST(test_expiry) {
  Config config;
  config.session_lifetime_s = 1;
  Fixture f(config);
  JsonObject *session = get_object(json_node_get_object(f.client.events[0].get()), "session");
  ck_assert_int_le(int_member(session, "expires_at") - static_cast<int64_t>(std::time(nullptr)), 1);
  f.client.expect_error("session_expired");  // kWaitMs covers the 1 s lifetime
  ck_assert(f.client.wait_closed());
  // The explicit action does the same at once.
  f.server.set_config(Config{});
  Client c;
  ck_assert(c.connect(f.server.url()));
  c.expect("session.created");
  f.server.expire_sessions();
  c.expect_error("session_expired");
  ck_assert(c.wait_closed());
  ck_assert_int_eq(c.close_code, SOUP_WEBSOCKET_CLOSE_NORMAL);
}
GST_END_TEST;

GST_START_TEST(test_beta_header_on_ga) {
  Server server;
  ck_assert(server.start());
  Client c;
  ck_assert(c.connect(server.url() + "?model=gpt-realtime", {{"OpenAI-Beta", "realtime=v1"}}));
  c.expect_error("beta_api_shape_disabled");
  ck_assert(c.wait_closed());
  ck_assert_int_eq(c.close_code, 4000);
  ck_assert(c.types.size() == 1);  // no session.created
  assert_str(server.connection(0).beta_header.c_str(), "realtime=v1");
}
GST_END_TEST;

GST_START_TEST(test_beta_shape) {
  Config config;
  config.shape = "beta";
  Server server(config);
  ck_assert(server.start());
  Client c;
  ck_assert(c.connect(server.url(), {{"OpenAI-Beta", "realtime=v1"}}));
  JsonObject *session = get_object(c.expect("session.created"), "session");
  ck_assert(json_object_has_member(session, "modalities") && !json_object_has_member(session, "type"));
  c.send(R"({"type":"session.update","session":{"type":"realtime"}})");
  assert_str(get_string(c.expect_error("unknown_parameter"), "param").c_str(), "session.type");
  c.send(R"({"type":"session.update","session":{"turn_detection":null,"voice":"verse","temperature":0.7}})");
  JsonObject *updated = get_object(c.expect("session.updated"), "session");
  ck_assert(json_object_get_null_member(updated, "turn_detection"));
  c.send(R"({"type":"response.create"})");
  Reply r = collect_reply(c, "response.audio.delta", "response.audio_transcript.delta");
  ck_assert_int_eq(r.audio.size(), 1000 * kBytesPerMs);
  assert_str(joined(r.sequence).c_str(),
             "response.created rate_limits.updated response.output_item.added conversation.item.created "
             "response.content_part.added response.audio.done response.audio_transcript.done "
             "response.content_part.done response.output_item.done response.done");
  // Beta assistant history uses "text".
  c.send(
      R"({"type":"conversation.item.create","item":{"type":"message","role":"assistant","content":[{"type":"text","text":"old"}]}})");
  c.expect("conversation.item.created");
  Client no_header;
  ck_assert(no_header.connect(server.url()));
  no_header.expect_error("missing_beta_header");
  ck_assert(no_header.wait_closed());
  ck_assert_int_eq(no_header.close_code, 4000);
}
GST_END_TEST;

GST_START_TEST(test_api_key) {
  Config config;
  config.required_api_key = "sk-test";
  Server server(config);
  ck_assert(server.start());
  {
    Client c;
    ck_assert(!c.connect(server.url()));
    ck_assert_int_eq(c.http_status, 401);
  }
  {
    Client c;
    ck_assert(!c.connect(server.url(), {{"Authorization", "Bearer sk-wrong"}}));
    ck_assert_int_eq(c.http_status, 401);
  }
  ck_assert_int_eq(server.connection_count(), 0);
  auto rejected = server.rejected_handshakes();
  ck_assert_int_eq(rejected.size(), 2);
  assert_str(rejected[1].c_str(), "Bearer sk-wrong");
  {
    Client c;
    ck_assert(c.connect(server.url(), {{"Authorization", "Bearer sk-test"}}));
    c.expect("session.created");
  }
  {
    Client c;
    ck_assert(c.connect(server.url(), {{"api-key", "sk-test"}}));  // Azure style
    c.expect("session.created");
  }
  ck_assert_int_eq(server.connection_count(), 2);
  assert_str(server.connection(1).authorization.c_str(), "api-key: sk-test");
}
GST_END_TEST;

GST_START_TEST(test_stop_closes_clients) {
  auto server = std::make_unique<Server>();
  ck_assert(server->start());
  Client c;
  ck_assert(c.connect(server->url()));
  c.expect("session.created");
  server->stop();  // the client does not answer the close frame meanwhile: stop() must not hang
  ck_assert(c.wait_closed());
  ck_assert_int_eq(c.close_code, SOUP_WEBSOCKET_CLOSE_GOING_AWAY);  // the close frame was sent first
  server.reset();                                                   // a second stop() is harmless
}
GST_END_TEST;

static Suite *fake_realtime_suite(void) {
  Suite *s = suite_create("fake_realtime");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 60);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_session_created);
  tcase_add_test(tc, test_session_update_validation);
  tcase_add_test(tc, test_vad_turn_and_reply);
  tcase_add_test(tc, test_echo_reply);
  tcase_add_test(tc, test_voice_locked_after_audio);
  tcase_add_test(tc, test_text_response);
  tcase_add_test(tc, test_cancel_and_conflict);
  tcase_add_test(tc, test_barge_in);
  tcase_add_test(tc, test_truncate_and_delete);
  tcase_add_test(tc, test_tool_call_round_trip);
  tcase_add_test(tc, test_commit_and_clear);
  tcase_add_test(tc, test_invalid_events);
  tcase_add_test(tc, test_large_frame);
  tcase_add_test(tc, test_drop_connections);
  tcase_add_test(tc, test_expiry);
  tcase_add_test(tc, test_beta_header_on_ga);
  tcase_add_test(tc, test_beta_shape);
  tcase_add_test(tc, test_api_key);
  tcase_add_test(tc, test_stop_closes_clients);
  return s;
}

GST_CHECK_MAIN(fake_realtime)
