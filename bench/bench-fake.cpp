#include "bench-fake.h"

#include <libsoup/soup.h>

#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>

namespace bench {

namespace {

constexpr int kRate = 24000;
constexpr int kBytesPerMs = kRate * 2 / 1000;  // S16 mono
constexpr int kFrameSamples = kRate / 50;      // the VAD's 20 ms frame
constexpr const char *kPath = "/v1/realtime";
constexpr guint kPacingMs = 10;                // one timer paces every connection's deltas
constexpr int kInvokeTimeoutMs = 5000;

// The string value of the first "key": "value" in a JSON text, still escaped: the values acted on
// here (event types, base64) contain no escapes, and instructions are only searched. This is what keeps
// the fake cheap: a 6 KB append is scanned once instead of being parsed into a tree.
bool find_string(const char *data, size_t len, const char *key, const char **value, size_t *value_len) {
  const size_t key_len = strlen(key);
  const char *end = data + len;
  for (const char *p = data; p + key_len + 2 < end; p++) {
    p = static_cast<const char *>(memchr(p, '"', (size_t)(end - p)));
    if (!p || p + key_len + 2 >= end) return false;
    if (memcmp(p + 1, key, key_len) != 0 || p[key_len + 1] != '"') continue;
    const char *q = p + key_len + 2;
    while (q < end && (*q == ' ' || *q == ':')) q++;
    if (q >= end || *q != '"') continue;
    q++;
    const char *close = q;
    while (close < end && *close != '"') close += *close == '\\' ? 2 : 1;  // skip escapes, keep them
    if (close >= end) return false;
    *value = q;
    *value_len = (size_t)(close - q);
    return true;
  }
  return false;
}

bool is(const char *value, size_t len, const char *literal) {
  return strlen(literal) == len && memcmp(value, literal, len) == 0;
}

// One reply length, encoded once: the base64 text of each delta.
struct Reply {
  std::vector<std::string> chunks;
  size_t bytes = 0;
};

std::string session_json(const char *type, int64_t expires_at, int silence_ms) {
  // Only what voicebridge reads (expires_at, turn detection with interrupt_response) plus the shape
  // of the GA session around it.
  char buf[1024];
  snprintf(buf, sizeof buf,
           "{\"type\":\"%s\",\"event_id\":\"evt_session\",\"session\":{\"type\":\"realtime\",\"object\":"
           "\"realtime.session\",\"id\":\"sess_bench\",\"model\":\"gpt-realtime\",\"expires_at\":%lld,"
           "\"output_modalities\":[\"audio\"],\"audio\":{\"input\":{\"format\":{\"type\":\"audio/pcm\",\"rate\":24000},"
           "\"turn_detection\":{\"type\":\"server_vad\",\"threshold\":0.5,\"prefix_padding_ms\":300,"
           "\"silence_duration_ms\":%d,\"create_response\":true,\"interrupt_response\":true}},\"output\":{"
           "\"format\":{\"type\":\"audio/pcm\",\"rate\":24000},\"voice\":\"marin\"}}}}",
           type, (long long)expires_at, silence_ms);
  return buf;
}

}  // namespace

struct Conn {
  FakeRealtime::Impl *server = nullptr;
  SoupWebsocketConnection *ws = nullptr;
  int index = 0;
  std::string tag;  // the session's instructions (guarded by Impl::mutex)
  // VAD (server thread)
  double acc_sq = 0;
  int acc_n = 0;
  bool in_speech = false;
  int silence_frames = 0;
  int64_t samples = 0;  // appended so far
  std::string user_item;
  // Marks (server thread; `marks` guarded by Impl::mutex)
  int64_t quiet_run = INT64_MAX / 2;
  std::vector<UpMark> marks;
  // The active response (server thread)
  bool responding = false;
  std::string resp_id, item_id;
  const Reply *reply = nullptr;
  size_t chunks_sent = 0;
  int64_t start_us = 0;
  double period_us = 0;
};

struct FakeRealtime::Impl {
  explicit Impl(FakeConfig c) : config(std::move(c)) {}

  const FakeConfig config;
  GThread *thread = nullptr;
  GMainContext *context = nullptr;
  GMainLoop *loop = nullptr;
  std::atomic<uint16_t> port{0};
  std::atomic<bool> running{false};
  std::mutex start_mutex;
  std::condition_variable start_cv;
  bool start_done = false;
  std::string start_error;
  uint16_t requested_port = 0;

  // Server thread only.
  SoupServer *soup = nullptr;
  GSource *pacer = nullptr;
  std::map<int, Reply> replies;
  std::vector<uint8_t> pcm;  // decode buffer, reused
  uint64_t next_id = 1;

  mutable std::mutex mutex;  // conns (the vector, tags, marks), stats
  std::vector<std::unique_ptr<Conn>> conns;
  FakeStats stats;

  static gpointer thread_main(gpointer self);
  void run();
  bool listen();
  bool invoke(const std::function<void()> &fn);

  static void on_websocket(SoupServer *, SoupServerMessage *, const char *, SoupWebsocketConnection *ws, gpointer self);
  static void on_message(SoupWebsocketConnection *ws, gint type, GBytes *message, gpointer conn);
  static void on_closed(SoupWebsocketConnection *ws, gpointer conn);
  static gboolean on_pace(gpointer self);

  void handle(Conn &c, const char *data, size_t len, int64_t recv_us);
  void on_audio(Conn &c, const int16_t *s, size_t n, int64_t recv_us);
  void on_frame(Conn &c, bool speech, int64_t end_sample);
  const Reply &reply_for(int ms);
  std::string id(const char *prefix) { return std::string(prefix) + std::to_string(next_id++); }
  void send(Conn &c, const std::string &text);
  int64_t begin_response(Conn &c, int ms);
  int64_t send_chunk(Conn &c);
  void finish_response(Conn &c, bool cancelled);
  void close_all();
  Conn *conn_at(int index);
};

// ------------------------------------------------------------------------------------------------
// Thread and server

gpointer FakeRealtime::Impl::thread_main(gpointer self) {
  static_cast<Impl *>(self)->run();
  return nullptr;
}

void FakeRealtime::Impl::run() {
  g_main_context_push_thread_default(context);
  soup = soup_server_new("server-header", "bench-realtime/1 ", nullptr);
  const bool ok = listen();
  if (ok) {
    pacer = g_timeout_source_new(kPacingMs);
    g_source_set_callback(pacer, &Impl::on_pace, this, nullptr);
    g_source_attach(pacer, context);
    running = true;
  }
  {
    std::lock_guard<std::mutex> l(start_mutex);
    start_done = true;
  }
  start_cv.notify_all();
  if (ok) g_main_loop_run(loop);
  running = false;
  close_all();
  if (pacer) {
    g_source_destroy(pacer);
    g_source_unref(pacer);
    pacer = nullptr;
  }
  soup_server_disconnect(soup);
  g_object_unref(soup);
  soup = nullptr;
  // Let libsoup finish what the closes started (bounded).
  const int64_t deadline = g_get_monotonic_time() + 500 * 1000;
  while (g_get_monotonic_time() < deadline && g_main_context_iteration(context, FALSE)) {
  }
  g_main_context_pop_thread_default(context);
}

bool FakeRealtime::Impl::listen() {
  char *protocols[] = {const_cast<char *>("realtime"), nullptr};
  soup_server_add_websocket_handler(soup, kPath, nullptr, protocols, &Impl::on_websocket, this, nullptr);
  GSocketAddress *address = g_inet_socket_address_new_from_string("127.0.0.1", requested_port);
  GError *err = nullptr;
  const bool ok = soup_server_listen(soup, address, static_cast<SoupServerListenOptions>(0), &err);
  g_object_unref(address);
  if (!ok) {
    start_error = err ? err->message : "soup_server_listen failed";
    g_clear_error(&err);
    return false;
  }
  GSList *listeners = soup_server_get_listeners(soup);
  if (listeners) {
    GSocketAddress *local = g_socket_get_local_address(G_SOCKET(listeners->data), nullptr);
    if (local) {
      port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(local));
      g_object_unref(local);
    }
  }
  g_slist_free(listeners);
  if (port == 0) start_error = "could not read the listening port";
  return port != 0;
}

bool FakeRealtime::Impl::invoke(const std::function<void()> &fn) {
  if (!running) return false;
  struct Call {
    std::function<void()> fn;
    std::mutex mutex;
    std::condition_variable cv;
    bool done = false;
  };
  auto call = std::make_shared<Call>();
  call->fn = fn;
  g_main_context_invoke_full(
      context, G_PRIORITY_DEFAULT,
      [](gpointer data) -> gboolean {
        auto &c = *static_cast<std::shared_ptr<Call> *>(data);
        c->fn();
        {
          std::lock_guard<std::mutex> l(c->mutex);
          c->done = true;
        }
        c->cv.notify_all();
        return G_SOURCE_REMOVE;
      },
      new std::shared_ptr<Call>(call), [](gpointer data) { delete static_cast<std::shared_ptr<Call> *>(data); });
  std::unique_lock<std::mutex> l(call->mutex);
  return call->cv.wait_for(l, std::chrono::milliseconds(kInvokeTimeoutMs), [&] { return call->done; });
}

void FakeRealtime::Impl::close_all() {
  std::vector<SoupWebsocketConnection *> open;
  {
    std::lock_guard<std::mutex> l(mutex);
    for (auto &c : conns)
      if (c->ws) open.push_back(c->ws);
  }
  for (SoupWebsocketConnection *ws : open)
    if (soup_websocket_connection_get_state(ws) == SOUP_WEBSOCKET_STATE_OPEN)
      soup_websocket_connection_close(ws, SOUP_WEBSOCKET_CLOSE_GOING_AWAY, nullptr);
  // on_closed (run by the iterations in run()) drops the references; anything left goes here.
  const int64_t deadline = g_get_monotonic_time() + 300 * 1000;
  while (g_get_monotonic_time() < deadline) {
    bool any = false;
    {
      std::lock_guard<std::mutex> l(mutex);
      for (auto &c : conns) any = any || c->ws;
    }
    if (!any) break;
    g_main_context_iteration(context, FALSE);
    g_usleep(1000);
  }
  std::lock_guard<std::mutex> l(mutex);
  for (auto &c : conns) {
    if (!c->ws) continue;
    g_signal_handlers_disconnect_by_data(c->ws, c.get());
    g_object_unref(c->ws);
    c->ws = nullptr;
  }
}

Conn *FakeRealtime::Impl::conn_at(int index) {
  std::lock_guard<std::mutex> l(mutex);
  if (index < 0 || index >= (int)conns.size() || !conns[(size_t)index]->ws) return nullptr;
  return conns[(size_t)index].get();
}

void FakeRealtime::Impl::on_websocket(SoupServer *, SoupServerMessage *, const char *, SoupWebsocketConnection *ws,
                                      gpointer self) {
  auto *d = static_cast<Impl *>(self);
  auto conn = std::make_unique<Conn>();
  conn->server = d;
  conn->ws = SOUP_WEBSOCKET_CONNECTION(g_object_ref(ws));
  Conn *c = conn.get();
  {
    std::lock_guard<std::mutex> l(d->mutex);
    c->index = (int)d->conns.size();
    d->conns.push_back(std::move(conn));
    d->stats.connections++;
    d->stats.open++;
  }
  g_signal_connect(ws, "message", G_CALLBACK(&Impl::on_message), c);
  g_signal_connect(ws, "closed", G_CALLBACK(&Impl::on_closed), c);
  const int64_t expires = g_get_real_time() / G_USEC_PER_SEC + 3600;
  d->send(*c, session_json("session.created", expires, d->config.vad_silence_ms));
}

void FakeRealtime::Impl::on_closed(SoupWebsocketConnection *ws, gpointer data) {
  auto *c = static_cast<Conn *>(data);
  Impl *d = c->server;
  g_signal_handlers_disconnect_by_data(ws, c);
  std::lock_guard<std::mutex> l(d->mutex);
  c->responding = false;
  if (c->ws) {
    g_object_unref(c->ws);
    c->ws = nullptr;
    d->stats.open--;
  }
}

void FakeRealtime::Impl::on_message(SoupWebsocketConnection *, gint type, GBytes *message, gpointer data) {
  auto *c = static_cast<Conn *>(data);
  if (type != SOUP_WEBSOCKET_DATA_TEXT) return;
  const int64_t now = g_get_monotonic_time();
  gsize len = 0;
  const char *text = static_cast<const char *>(g_bytes_get_data(message, &len));
  c->server->handle(*c, text, len, now);
}

void FakeRealtime::Impl::send(Conn &c, const std::string &text) {
  if (c.ws && soup_websocket_connection_get_state(c.ws) == SOUP_WEBSOCKET_STATE_OPEN)
    soup_websocket_connection_send_text(c.ws, text.c_str());
}

// ------------------------------------------------------------------------------------------------
// Client events

void FakeRealtime::Impl::handle(Conn &c, const char *data, size_t len, int64_t recv_us) {
  const char *type = nullptr;
  size_t type_len = 0;
  if (!find_string(data, len, "type", &type, &type_len)) return;

  if (is(type, type_len, "input_audio_buffer.append")) {
    const char *b64 = nullptr;
    size_t b64_len = 0;
    if (!find_string(data, len, "audio", &b64, &b64_len)) return;
    pcm.resize(b64_len / 4 * 3 + 3);
    gint state = 0;
    guint save = 0;
    const gsize n = g_base64_decode_step(b64, b64_len, pcm.data(), &state, &save);
    {
      std::lock_guard<std::mutex> l(mutex);
      stats.appends++;
      stats.append_bytes += n;
    }
    on_audio(c, reinterpret_cast<const int16_t *>(pcm.data()), n / 2, recv_us);
  } else if (is(type, type_len, "session.update")) {
    const char *instr = nullptr;
    size_t instr_len = 0;
    if (find_string(data, len, "instructions", &instr, &instr_len)) {
      std::lock_guard<std::mutex> l(mutex);
      c.tag.assign(instr, instr_len);
    }
    const int64_t expires = g_get_real_time() / G_USEC_PER_SEC + 3600;
    send(c, session_json("session.updated", expires, config.vad_silence_ms));
  } else if (is(type, type_len, "response.create")) {
    if (c.responding)
      send(c, "{\"type\":\"error\",\"event_id\":\"evt_e\",\"error\":{\"type\":\"invalid_request_error\",\"code\":"
              "\"conversation_already_has_active_response\",\"message\":\"Conversation already has an active "
              "response\",\"param\":null,\"event_id\":null}}");
    else
      begin_response(c, config.reply_ms);
  } else if (is(type, type_len, "response.cancel")) {
    if (c.responding) finish_response(c, true);
  } else if (is(type, type_len, "conversation.item.truncate")) {
    const char *item = nullptr;
    size_t item_len = 0;
    std::string id = find_string(data, len, "item_id", &item, &item_len) ? std::string(item, item_len) : "";
    send(c, "{\"type\":\"conversation.item.truncated\",\"event_id\":\"" + this->id("evt_") + "\",\"item_id\":\"" + id +
                "\",\"content_index\":0,\"audio_end_ms\":0}");
    std::lock_guard<std::mutex> l(mutex);
    stats.truncates++;
  } else if (is(type, type_len, "conversation.item.delete") || is(type, type_len, "conversation.item.create") ||
             is(type, type_len, "input_audio_buffer.commit") || is(type, type_len, "input_audio_buffer.clear")) {
    // Accepted and ignored: nothing here needs their replies.
  } else {
    std::lock_guard<std::mutex> l(mutex);
    stats.unknown_events++;
  }
}

void FakeRealtime::Impl::on_audio(Conn &c, const int16_t *s, size_t n, int64_t recv_us) {
  if (config.detect_marks) {
    const int threshold = (int)(32768.0 * std::pow(10.0, config.mark_threshold_dbfs / 20.0));
    const int64_t quiet_needed = (int64_t)config.mark_quiet_ms * kRate / 1000;
    for (size_t i = 0; i < n; i++) {
      if (std::abs((int)s[i]) >= threshold) {
        if (c.quiet_run >= quiet_needed) {
          std::lock_guard<std::mutex> l(mutex);
          c.marks.push_back({recv_us, c.samples + (int64_t)i});
        }
        c.quiet_run = 0;
      } else {
        c.quiet_run++;
      }
    }
  }
  for (size_t i = 0; i < n; i++) {
    c.acc_sq += (double)s[i] * s[i];
    if (++c.acc_n == kFrameSamples) {
      const double mean = c.acc_sq / kFrameSamples / (32768.0 * 32768.0);
      const bool speech = mean > 0 && 10.0 * std::log10(mean) > config.vad_threshold_dbfs;
      c.acc_sq = 0;
      c.acc_n = 0;
      on_frame(c, speech, c.samples + (int64_t)i + 1);
    }
  }
  c.samples += (int64_t)n;
}

// One 20 ms frame of the VAD, ending at end_sample of the connection's input.
void FakeRealtime::Impl::on_frame(Conn &c, bool speech, int64_t end_sample) {
  {
    std::lock_guard<std::mutex> l(mutex);
    stats.frames++;
    if (speech) stats.speech_frames++;
  }
  if (!config.vad) return;
  const int64_t ms = end_sample * 1000 / kRate;
  if (speech && !c.in_speech) {
    c.in_speech = true;
    c.silence_frames = 0;
    c.user_item = id("item_u");
    send(c, "{\"type\":\"input_audio_buffer.speech_started\",\"event_id\":\"" + id("evt_") +
                "\",\"audio_start_ms\":" + std::to_string(std::max<int64_t>(0, ms - 20)) + ",\"item_id\":\"" +
                c.user_item + "\"}");
    {
      std::lock_guard<std::mutex> l(mutex);
      stats.speech_started++;
    }
    if (c.responding) finish_response(c, true);  // interrupt_response
  } else if (c.in_speech) {
    c.silence_frames = speech ? 0 : c.silence_frames + 1;
    if (c.silence_frames * 20 >= config.vad_silence_ms) {
      c.in_speech = false;
      send(c, "{\"type\":\"input_audio_buffer.speech_stopped\",\"event_id\":\"" + id("evt_") +
                  "\",\"audio_end_ms\":" + std::to_string(ms) + ",\"item_id\":\"" + c.user_item + "\"}");
      send(c, "{\"type\":\"input_audio_buffer.committed\",\"event_id\":\"" + id("evt_") +
                  "\",\"previous_item_id\":null,\"item_id\":\"" + c.user_item + "\"}");
      send(c, "{\"type\":\"conversation.item.input_audio_transcription.completed\",\"event_id\":\"" + id("evt_") +
                  "\",\"item_id\":\"" + c.user_item + "\",\"content_index\":0,\"transcript\":\"bench caller turn\"}");
      begin_response(c, config.reply_ms);
    }
  }
}

// ------------------------------------------------------------------------------------------------
// Responses

const Reply &FakeRealtime::Impl::reply_for(int ms) {
  auto it = replies.find(ms);
  if (it != replies.end()) return it->second;
  Reply &r = replies[ms];
  // A continuous tone starting at full amplitude on its first sample: its onset is a sharp mark and
  // any hole in it is audible to a gap detector. It ends with a 2 ms fade so the end is clean.
  const size_t n = (size_t)ms * kRate / 1000;
  const double amp = 32768.0 * std::pow(10.0, config.reply_peak_dbfs / 20.0);
  const size_t fade = kRate / 500;
  std::vector<int16_t> pcm16(n);
  for (size_t i = 0; i < n; i++) {
    double g = i + fade > n ? (double)(n - i) / fade : 1.0;
    pcm16[i] = (int16_t)std::lround(amp * g * std::cos(2 * M_PI * config.reply_hz * (double)i / kRate));
  }
  const size_t chunk = (size_t)std::max(config.delta_ms, 1) * kBytesPerMs;
  const auto *bytes = reinterpret_cast<const uint8_t *>(pcm16.data());
  for (size_t off = 0; off < n * 2; off += chunk) {
    gchar *b64 = g_base64_encode(bytes + off, std::min(chunk, n * 2 - off));
    r.chunks.emplace_back(b64);
    g_free(b64);
  }
  r.bytes = n * 2;
  return r;
}

int64_t FakeRealtime::Impl::begin_response(Conn &c, int ms) {
  if (c.responding || !c.ws) return -1;
  c.reply = &reply_for(ms);
  c.responding = true;
  c.resp_id = id("resp_");
  c.item_id = id("item_");
  c.chunks_sent = 0;
  {
    std::lock_guard<std::mutex> l(mutex);
    stats.responses++;
  }
  send(c, "{\"type\":\"response.created\",\"event_id\":\"" + id("evt_") +
              "\",\"response\":{\"object\":\"realtime.response\",\"id\":\"" + c.resp_id +
              "\",\"status\":\"in_progress\",\"status_details\":null,\"output\":[],\"usage\":null}}");
  send(c, "{\"type\":\"response.output_item.added\",\"event_id\":\"" + id("evt_") + "\",\"response_id\":\"" +
              c.resp_id + "\",\"output_index\":0,\"item\":{\"id\":\"" + c.item_id +
              "\",\"object\":\"realtime.item\",\"type\":\"message\",\"status\":\"in_progress\",\"role\":"
              "\"assistant\",\"content\":[]}}");
  c.start_us = g_get_monotonic_time();
  c.period_us = config.speed > 0 ? config.delta_ms * 1000.0 / config.speed : 0;
  const int64_t first = send_chunk(c);
  if (config.speed <= 0) {
    while (c.responding && c.chunks_sent < c.reply->chunks.size()) send_chunk(c);
  }
  if (c.responding && c.chunks_sent >= c.reply->chunks.size()) finish_response(c, false);
  return first;
}

int64_t FakeRealtime::Impl::send_chunk(Conn &c) {
  const std::string &b64 = c.reply->chunks[c.chunks_sent];
  std::string text;
  text.reserve(b64.size() + 200);
  text += "{\"type\":\"response.output_audio.delta\",\"event_id\":\"";
  text += id("evt_");
  text += "\",\"response_id\":\"";
  text += c.resp_id;
  text += "\",\"item_id\":\"";
  text += c.item_id;
  text += "\",\"output_index\":0,\"content_index\":0,\"delta\":\"";
  text += b64;
  text += "\"}";
  const size_t bytes = std::min(c.reply->bytes - c.chunks_sent * (size_t)config.delta_ms * kBytesPerMs,
                                (size_t)config.delta_ms * kBytesPerMs);
  c.chunks_sent++;
  const int64_t now = g_get_monotonic_time();
  send(c, text);
  std::lock_guard<std::mutex> l(mutex);
  stats.deltas++;
  stats.reply_bytes_sent += bytes;
  return now;
}

void FakeRealtime::Impl::finish_response(Conn &c, bool cancelled) {
  if (!c.responding) return;
  c.responding = false;
  const std::string ids = "\"response_id\":\"" + c.resp_id + "\",\"item_id\":\"" + c.item_id +
                          "\",\"output_index\":0,\"content_index\":0";
  send(c, "{\"type\":\"response.output_audio.done\",\"event_id\":\"" + id("evt_") + "\"," + ids + "}");
  send(c, "{\"type\":\"response.output_audio_transcript.done\",\"event_id\":\"" + id("evt_") + "\"," + ids +
              ",\"transcript\":\"bench reply\"}");
  // Billing as the API counts it: 1 token per 50 ms of output audio.
  const long long out_tokens = (long long)(c.chunks_sent * (size_t)config.delta_ms / 50);
  send(c, "{\"type\":\"response.done\",\"event_id\":\"" + id("evt_") + "\",\"response\":{\"object\":"
              "\"realtime.response\",\"id\":\"" + c.resp_id + "\",\"status\":\"" +
              (cancelled ? "cancelled\",\"status_details\":{\"type\":\"cancelled\",\"reason\":\"turn_detected\"}"
                         : "completed\",\"status_details\":null") +
              ",\"output\":[],\"usage\":{\"total_tokens\":" + std::to_string(out_tokens + 10) +
              ",\"input_tokens\":10,\"output_tokens\":" + std::to_string(out_tokens) +
              ",\"input_token_details\":{\"text_tokens\":0,\"audio_tokens\":10,\"cached_tokens\":0},"
              "\"output_token_details\":{\"text_tokens\":0,\"audio_tokens\":" + std::to_string(out_tokens) + "}}}}");
  if (cancelled) {
    std::lock_guard<std::mutex> l(mutex);
    stats.responses_cancelled++;
  }
}

gboolean FakeRealtime::Impl::on_pace(gpointer self) {
  auto *d = static_cast<Impl *>(self);
  const int64_t now = g_get_monotonic_time();
  std::vector<Conn *> active;
  {
    std::lock_guard<std::mutex> l(d->mutex);
    for (auto &c : d->conns)
      if (c->responding && c->ws) active.push_back(c.get());
  }
  for (Conn *c : active) {
    // Every chunk due by now: the timer drifts, the schedule must not.
    const size_t due = std::min(c->reply->chunks.size(), (size_t)((double)(now - c->start_us) / c->period_us) + 1);
    while (c->responding && c->chunks_sent < due) d->send_chunk(*c);
    if (c->responding && c->chunks_sent >= c->reply->chunks.size()) d->finish_response(*c, false);
  }
  return G_SOURCE_CONTINUE;
}

// ------------------------------------------------------------------------------------------------
// Public API

FakeRealtime::FakeRealtime(FakeConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {}

FakeRealtime::~FakeRealtime() { stop(); }

bool FakeRealtime::start(uint16_t port, std::string *error) {
  Impl &d = *impl_;
  if (d.thread) {
    if (error) *error = "already started";
    return false;
  }
  d.requested_port = port;
  d.context = g_main_context_new();
  d.loop = g_main_loop_new(d.context, FALSE);
  d.thread = g_thread_new("bench-realtime", &Impl::thread_main, &d);
  std::unique_lock<std::mutex> l(d.start_mutex);
  d.start_cv.wait(l, [&] { return d.start_done; });
  if (!d.running) {
    if (error) *error = d.start_error;
    l.unlock();
    stop();
    return false;
  }
  return true;
}

void FakeRealtime::stop() {
  Impl &d = *impl_;
  if (!d.thread) return;
  GMainLoop *loop = d.loop;
  // A quit posted to the context cannot be lost, even if the loop has not started running yet.
  g_main_context_invoke(d.context, [](gpointer l) -> gboolean {
    g_main_loop_quit(static_cast<GMainLoop *>(l));
    return G_SOURCE_REMOVE;
  }, loop);
  g_thread_join(d.thread);
  d.thread = nullptr;
  g_main_loop_unref(d.loop);
  d.loop = nullptr;
  g_main_context_unref(d.context);
  d.context = nullptr;
}

uint16_t FakeRealtime::port() const { return impl_->port; }

std::string FakeRealtime::url() const { return "ws://127.0.0.1:" + std::to_string(port()) + kPath; }

FakeStats FakeRealtime::stats() const {
  std::lock_guard<std::mutex> l(impl_->mutex);
  return impl_->stats;
}

int FakeRealtime::find_connection(const std::string &instructions) const {
  std::lock_guard<std::mutex> l(impl_->mutex);
  for (auto &c : impl_->conns)
    if (c->ws && c->tag.find(instructions) != std::string::npos) return c->index;
  return -1;
}

std::vector<UpMark> FakeRealtime::up_marks(int connection) const {
  std::lock_guard<std::mutex> l(impl_->mutex);
  if (connection < 0 || connection >= (int)impl_->conns.size()) return {};
  return impl_->conns[(size_t)connection]->marks;
}

int64_t FakeRealtime::start_response(int connection, int reply_ms) {
  int64_t t = -1;
  Impl *d = impl_.get();
  d->invoke([&] {
    if (Conn *c = d->conn_at(connection)) t = d->begin_response(*c, reply_ms);
  });
  return t;
}

int64_t FakeRealtime::speech_started(int connection) {
  int64_t t = -1;
  Impl *d = impl_.get();
  d->invoke([&] {
    Conn *c = d->conn_at(connection);
    if (!c) return;
    c->user_item = d->id("item_u");
    const std::string text = "{\"type\":\"input_audio_buffer.speech_started\",\"event_id\":\"" + d->id("evt_") +
                             "\",\"audio_start_ms\":" + std::to_string(c->samples * 1000 / kRate) +
                             ",\"item_id\":\"" + c->user_item + "\"}";
    t = g_get_monotonic_time();
    d->send(*c, text);
    {
      std::lock_guard<std::mutex> l(d->mutex);
      d->stats.speech_started++;
    }
    if (c->responding) d->finish_response(*c, true);
  });
  return t;
}

}  // namespace bench
