#include "realtime-session.h"

#include <algorithm>
#include <cstring>

#include "openairealtime-common.h"
#include "realtime-hub.h"

#define GST_CAT_DEFAULT openairealtime_debug

namespace realtime {

namespace {

// Appends carry 20–100 ms: small enough for a responsive server VAD, large enough to keep the
// per-frame overhead (JSON, base64, WebSocket framing) low.
constexpr size_t kMinAppendBytes = 20 * kBytesPerMs;
constexpr size_t kMaxAppendBytes = 100 * kBytesPerMs;
// Caller audio kept while the session is not ready (connecting, reconnecting): the latest 10 s.
constexpr size_t kMaxPendingInputBytes = 10000 * kBytesPerMs;
// Turn replay on a new socket (Session::turn_audio_): the lead-in covers server VAD's prefix
// padding (300 ms by default) so the replayed turn starts as it did; the cap bounds memory for a
// caller who never pauses (720 KB), keeping the latest 15 s of the turn.
constexpr size_t kTurnLeadInBytes = 500 * kBytesPerMs;
constexpr size_t kMaxTurnReplayBytes = 15000 * kBytesPerMs;
constexpr guint64 kMaxIncomingFrame = 64 * 1024 * 1024;  // the API has sent 3.5 MB events; allow 64 MiB
// A session with only a sink (no src yet) connects on its first audio, or after this long.
constexpr guint kSinkOnlyConnectGraceMs = 500;

std::mutex g_registry_mutex;
std::map<std::string, std::shared_ptr<Session>> &registry() {
  static auto *map = new std::map<std::string, std::shared_ptr<Session>>();
  return *map;
}

// Error codes that mean our session.update was refused: retrying the same settings cannot help.
bool is_config_rejection(const std::string &code) {
  return code == "unknown_parameter" || code == "missing_required_parameter" ||
         code == "invalid_value" || code == "invalid_type" || code == "invalid_request_error";
}

std::string greeting_instructions(const std::string &greeting) {
  return "Greet the caller now by saying this, word for word, and nothing else: " + greeting;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Settings

SessionConfig SessionSettings::default_config() {
  SessionConfig c;
  c.voice = "marin";
  c.transcription_model = "gpt-4o-mini-transcribe";
  return c;
}

void SessionSettings::merge_explicit(const SessionSettings &o) {
  const uint32_t m = o.explicit_mask;
  if (m & kUrl) url = o.url;
  if (m & kApiKey) api_key = o.api_key;
  if (m & kModel) model = o.model;
  if (m & kVoice) config.voice = o.config.voice;
  if (m & kInstructions) config.instructions = o.config.instructions;
  if (m & kShape) shape = o.shape;
  if (m & kAuth) auth = o.auth;
  if (m & kTurnType) config.turn_detection.type = o.config.turn_detection.type;
  if (m & kThreshold) config.turn_detection.threshold = o.config.turn_detection.threshold;
  if (m & kPrefixPadding) config.turn_detection.prefix_padding_ms = o.config.turn_detection.prefix_padding_ms;
  if (m & kSilence) config.turn_detection.silence_duration_ms = o.config.turn_detection.silence_duration_ms;
  if (m & kEagerness) config.turn_detection.eagerness = o.config.turn_detection.eagerness;
  if (m & kCreateResponse) config.turn_detection.create_response = o.config.turn_detection.create_response;
  if (m & kInterruptResponse) config.turn_detection.interrupt_response = o.config.turn_detection.interrupt_response;
  if (m & kTranscription) config.transcription_model = o.config.transcription_model;
  if (m & kLanguage) config.transcription_language = o.config.transcription_language;
  if (m & kNoiseReduction) config.noise_reduction = o.config.noise_reduction;
  if (m & kTools) config.tools_json = o.config.tools_json;
  if (m & kToolChoice) config.tool_choice = o.config.tool_choice;
  if (m & kGreeting) greeting = o.greeting;
  if (m & kKeepalive) keepalive_s = o.keepalive_s;
  if (m & kMaxReconnects) max_reconnect_attempts = o.max_reconnect_attempts;
  if (m & kMaxQueue) max_queue_ms = o.max_queue_ms;
  if (m & kRenewMargin) renew_margin_s = o.renew_margin_s;
  explicit_mask |= m;
}

// ---------------------------------------------------------------------------------------------
// Registry

Session::Session(std::string name) : name_(std::move(name)) {}

Session::~Session() {
  GST_DEBUG("session '%s' freed", name_.c_str());
}

std::shared_ptr<Session> Session::acquire(const std::string &name) {
  std::lock_guard<std::mutex> lock(g_registry_mutex);
  auto &map = registry();
  auto it = map.find(name);
  if (it == map.end()) it = map.emplace(name, std::make_shared<Session>(name)).first;
  it->second->users_++;
  return it->second;
}

void Session::release(const std::shared_ptr<Session> &session) {
  if (!session) return;
  bool last = false;
  {
    std::lock_guard<std::mutex> lock(g_registry_mutex);
    if (--session->users_ == 0) {
      auto &map = registry();
      auto it = map.find(session->name_);
      if (it != map.end() && it->second == session) map.erase(it);
      last = true;
    }
  }
  if (last) {
    auto self = session;
    Hub::get().post([self] { self->shutdown(); });
  }
}

// ---------------------------------------------------------------------------------------------
// Element side

void Session::attach(GstElement *element, const SessionSettings &settings, bool prefer_for_messages) {
  bool first = false;
  bool resend_update = false;
  bool reconnect = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    first = elements_.empty() && !ever_attached_;
    if (first) {
      settings_ = settings;
    } else {
      settings_.merge_explicit(settings);
      // gst-launch starts sinks before sources: when the second element brings the connection
      // settings (url, key, model, shape), the first attempt used the wrong ones. Start over.
      reconnect = (settings.explicit_mask & (SessionSettings::kUrl | SessionSettings::kApiKey |
                                             SessionSettings::kModel | SessionSettings::kShape |
                                             SessionSettings::kAuth)) != 0;
      // A second element configuring the conversation after it started: apply with a new update.
      resend_update = ready_ && (settings.explicit_mask & ~(SessionSettings::kUrl | SessionSettings::kApiKey |
                                                             SessionSettings::kModel | SessionSettings::kShape |
                                                             SessionSettings::kAuth)) != 0;
    }
    ever_attached_ = true;
    elements_.push_back(element);
    if (prefer_for_messages || !message_element_) message_element_ = element;
  }
  auto self = shared_from_this();
  if (prefer_for_messages && !connect_requested_.exchange(true)) {
    // The src opens the connection: gst-launch starts sinks first, and the src may still bring the
    // connection settings. A session with a sink only connects on its first audio or after a grace.
    Hub::get().post([self] { self->connect(); });
  } else if (first) {
    Hub::get().add_timer(kSinkOnlyConnectGraceMs, [self] {
      if (!self->connect_requested_.exchange(true)) self->connect();
    });
  } else if (reconnect) {
    Hub::get().post([self] { self->restart_connection(); });
  } else if (resend_update) {
    Hub::get().post([self] {
      SessionSettings s;
      {
        std::lock_guard<std::mutex> lock(self->mutex_);
        s = self->settings_;
      }
      self->send(build_session_update(s.shape, s.config));
    });
  }
}

void Session::detach(GstElement *element) {
  std::lock_guard<std::mutex> lock(mutex_);
  elements_.erase(std::remove(elements_.begin(), elements_.end(), element), elements_.end());
  if (message_element_ == element) message_element_ = elements_.empty() ? nullptr : elements_.front();
}

void Session::push_input(const uint8_t *pcm, size_t len) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (input_.empty()) input_oldest_us_ = g_get_monotonic_time();
    input_.insert(input_.end(), pcm, pcm + len);
    if (input_.size() > kMaxPendingInputBytes) {
      // Only reachable while the session is not ready: keep the latest audio, which is what the
      // caller is saying now; the rest is stale by seconds.
      size_t excess = input_.size() - kMaxPendingInputBytes;
      excess += excess % kBytesPerSample;
      input_.erase(input_.begin(), input_.begin() + excess);
      stats_.input_bytes_dropped += excess;
    }
    if (ready_ && !wake_scheduled_ && input_.size() >= kMinAppendBytes) {
      wake_scheduled_ = true;
      wake = true;
    }
  }
  if (wake) wake_hub();
  if (!connect_requested_.load(std::memory_order_relaxed) && !connect_requested_.exchange(true)) {
    auto self = shared_from_this();
    Hub::get().post([self] { self->connect(); });
  }
}

void Session::finish_input() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    input_final_ = true;
  }
  auto self = shared_from_this();
  Hub::get().post([self] { self->flush_input_on_hub(true); });
}

// Called every 20 ms per call while the caller's audio streams: one reusable wake-up per session
// instead of a new idle source each time. It holds the session weakly; the session owns it.
void Session::wake_hub() {
  std::call_once(input_wakeup_once_, [this] {
    std::weak_ptr<Session> weak = weak_from_this();
    input_wakeup_ = std::make_unique<HubWakeup>([weak] {
      if (auto self = weak.lock()) self->flush_input_on_hub(false);
    });
  });
  input_wakeup_->raise();
}

size_t Session::pull_output(uint8_t *dst, size_t len) {
  size_t got = 0;
  bool stopped = false;
  std::string started_response, started_item;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    while (got < len && !playout_.empty()) {
      Segment &seg = playout_.front();
      size_t take = std::min(len - got, seg.data.size() - seg.offset);
      memcpy(dst + got, seg.data.data() + seg.offset, take);
      seg.offset += take;
      got += take;
      auto it = item_audio_.find(seg.item_id);
      if (it != item_audio_.end()) it->second.played += take;
      audible_item_ = seg.item_id;
      audible_response_ = seg.response_id;
      if (playback_started_.insert(seg.response_id).second) {
        started_response = seg.response_id;
        started_item = seg.item_id;
      }
      if (seg.offset == seg.data.size()) playout_.pop_front();
    }
    playout_bytes_ -= got;
    stats_.output_bytes_played += got;
    // The end of a stretch of model audio: the queue ran dry and no reply is being generated.
    if (got > 0) {
      playing_ = true;
    } else if (playing_ && !response_active_) {
      playing_ = false;
      stopped = true;
    }
    // An underrun: the model is still producing this response, playback of it has begun, and the
    // queue ran dry, so the caller hears a gap.
    if (got < len && response_active_ && !interrupted_responses_.count(active_response_) &&
        playback_started_.count(active_response_))
      stats_.underruns++;
  }
  if (got < len) memset(dst + got, 0, len - got);
  if (stopped)
    post(gst_structure_new("openairealtime-playback-stopped", "session", G_TYPE_STRING, name_.c_str(), nullptr));
  if (!started_response.empty())
    post(gst_structure_new("openairealtime-playback-started", "session", G_TYPE_STRING, name_.c_str(),
                           "response-id", G_TYPE_STRING, started_response.c_str(), "item-id",
                           G_TYPE_STRING, started_item.c_str(), nullptr));
  return got;
}

void Session::send_function_output(const std::string &call_id, const std::string &output) {
  auto self = shared_from_this();
  Hub::get().post([self, call_id, output] {
    self->send(build_function_call_output(call_id, output));
    // One response.create follows the outputs, once the current response is done; several outputs
    // in a row share it.
    if (std::find(self->queued_responses_.begin(), self->queued_responses_.end(), std::string()) ==
        self->queued_responses_.end())
      self->queued_responses_.push_back(std::string());
    self->maybe_send_queued_response();
  });
}

bool Session::add_text_item(const std::string &role, const std::string &text) {
  if (role != "user" && role != "assistant" && role != "system") return false;
  auto self = shared_from_this();
  Hub::get().post([self, role, text] {
    ApiShape shape;
    {
      std::lock_guard<std::mutex> lock(self->mutex_);
      shape = self->settings_.shape;
    }
    self->history_.push_back({role, text});
    if (self->ws_ && self->ready_flag()) self->send(build_text_item(shape, role, text));
    // When not ready the item goes out with the history replay on (re)connect.
  });
  return true;
}

void Session::request_response(const std::string &instructions) {
  auto self = shared_from_this();
  Hub::get().post([self, instructions] {
    self->queued_responses_.push_back(instructions);
    self->maybe_send_queued_response();
  });
}

void Session::interrupt() {
  auto self = shared_from_this();
  Hub::get().post([self] { self->barge_in("local", true); });
}

SessionStats Session::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  SessionStats s = stats_;
  s.ready = ready_;
  return s;
}

bool Session::ready_flag() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return ready_;
}

// ---------------------------------------------------------------------------------------------
// Bus messages

void Session::post(GstStructure *structure) {
  GstElement *element = nullptr;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (message_element_) element = GST_ELEMENT(gst_object_ref(message_element_));
  }
  if (!element) {
    gst_structure_free(structure);
    return;
  }
  gst_element_post_message(element, gst_message_new_element(GST_OBJECT(element), structure));
  gst_object_unref(element);
}

void Session::post_error(const std::string &code, const std::string &message, bool fatal, bool benign) {
  post(gst_structure_new("openairealtime-error", "session", G_TYPE_STRING, name_.c_str(), "code",
                         G_TYPE_STRING, code.c_str(), "message", G_TYPE_STRING, message.c_str(), "fatal",
                         G_TYPE_BOOLEAN, fatal, "benign", G_TYPE_BOOLEAN, benign, nullptr));
  if (!fatal) return;
  // A fatal error also fails the pipeline, so gst-launch-1.0 stops and an application's bus watch
  // sees a regular ERROR.
  GstElement *element = nullptr;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (message_element_) element = GST_ELEMENT(gst_object_ref(message_element_));
  }
  if (element) {
    GST_ELEMENT_ERROR(element, RESOURCE, FAILED, ("Realtime session '%s' failed: %s", name_.c_str(), message.c_str()),
                      ("code=%s", code.c_str()));
    gst_object_unref(element);
  }
}

// ---------------------------------------------------------------------------------------------
// Hub thread: connection

void Session::connect() {
  if (shutting_down_ || fatal_ || ws_ || connecting_) return;
  SessionSettings s;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    s = settings_;
  }
  std::string url = s.url;
  if (!s.model.empty() && url.find("model=") == std::string::npos && url.find("deployment=") == std::string::npos) {
    char *escaped = g_uri_escape_string(s.model.c_str(), nullptr, FALSE);
    url += (url.find('?') == std::string::npos ? "?model=" : "&model=");
    url += escaped;
    g_free(escaped);
  }
  SoupMessage *msg = soup_message_new("GET", url.c_str());
  if (!msg) {
    fatal_ = true;
    post_error("invalid_url", "not a usable WebSocket URL: " + s.url, true, false);
    return;
  }
  SoupMessageHeaders *headers = soup_message_get_request_headers(msg);
  // Without an api-key property, OpenAI's own endpoint takes the key from OPENAI_API_KEY, so that
  // it need not sit in a gst-launch command line (visible in ps). Never sent to other hosts.
  if (s.api_key.empty() && g_strcmp0(g_uri_get_host(soup_message_get_uri(msg)), "api.openai.com") == 0 &&
      g_getenv("OPENAI_API_KEY"))
    s.api_key = g_getenv("OPENAI_API_KEY");
  if (!s.api_key.empty()) {
    if (s.auth == AuthStyle::ApiKeyHeader)
      soup_message_headers_append(headers, "api-key", s.api_key.c_str());
    else
      soup_message_headers_append(headers, "Authorization", ("Bearer " + s.api_key).c_str());
  }
  if (s.shape == ApiShape::Beta) soup_message_headers_append(headers, "OpenAI-Beta", "realtime=v1");

  // The URL may carry secrets in its query (Azure SAS-style); log only scheme, host and path.
  GUri *uri = soup_message_get_uri(msg);
  GST_INFO("session '%s': connecting to %s://%s%s", name_.c_str(), g_uri_get_scheme(uri), g_uri_get_host(uri),
           g_uri_get_path(uri));
  connecting_ = true;
  connect_started_us_ = g_get_monotonic_time();
  connect_cancellable_ = g_cancellable_new();
  connect_msg_ = msg;
  soup_session_websocket_connect_async(Hub::get().soup(), msg, nullptr, nullptr, G_PRIORITY_DEFAULT,
                                       connect_cancellable_, &Session::on_connected,
                                       new std::shared_ptr<Session>(shared_from_this()));
}

void Session::restart_connection() {
  if (ever_ready_ || shutting_down_ || !connect_requested_) return;  // a live conversation keeps its connection
  GST_DEBUG("session '%s': connection settings changed before ready: reconnecting now", name_.c_str());
  fatal_ = false;
  reconnect_attempt_ = 0;
  Hub::get().cancel_timer(reconnect_timer_);
  reconnect_timer_ = 0;
  if (connecting_) {
    // on_connected() sees the cancellation and connects again.
    restart_pending_ = true;
    g_cancellable_cancel(connect_cancellable_);
    return;
  }
  drop_socket();
  reset_socket_state();
  connect();
}

void Session::on_connected(GObject *source, GAsyncResult *result, gpointer user_data) {
  auto *holder = static_cast<std::shared_ptr<Session> *>(user_data);
  std::shared_ptr<Session> self = *holder;
  delete holder;

  GError *error = nullptr;
  SoupWebsocketConnection *ws = soup_session_websocket_connect_finish(SOUP_SESSION(source), result, &error);
  guint status = soup_message_get_status(self->connect_msg_);
  g_clear_object(&self->connect_msg_);
  g_clear_object(&self->connect_cancellable_);
  self->connecting_ = false;

  if (!ws) {
    bool cancelled = g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    std::string why = error ? error->message : "unknown error";
    g_clear_error(&error);
    if (cancelled && self->restart_pending_ && !self->shutting_down_) {
      self->restart_pending_ = false;
      self->connect();
      return;
    }
    if (cancelled || self->shutting_down_) return;
    if (status == SOUP_STATUS_UNAUTHORIZED || status == SOUP_STATUS_FORBIDDEN) {
      // Reconnecting with the same key cannot succeed.
      self->fatal_ = true;
      GST_ERROR("session '%s': handshake refused with HTTP %u", self->name_.c_str(), status);
      self->post_error("invalid_api_key", "the Realtime server refused the key (HTTP " + std::to_string(status) + ")",
                       true, false);
      return;
    }
    GST_WARNING("session '%s': connect failed: %s (HTTP %u)", self->name_.c_str(), why.c_str(), status);
    self->schedule_reconnect("connect failed: " + why);
    return;
  }
  if (self->shutting_down_) {
    soup_websocket_connection_close(ws, SOUP_WEBSOCKET_CLOSE_NORMAL, nullptr);
    g_object_unref(ws);
    return;
  }

  // libsoup's default limit is 128 KiB per frame; the API sends larger ones (G12).
  soup_websocket_connection_set_max_incoming_payload_size(ws, kMaxIncomingFrame);
  int keepalive;
  {
    std::lock_guard<std::mutex> lock(self->mutex_);
    keepalive = self->settings_.keepalive_s;
  }
  if (keepalive > 0) soup_websocket_connection_set_keepalive_interval(ws, keepalive);
  g_signal_connect(ws, "message", G_CALLBACK(&Session::on_message), self.get());
  g_signal_connect(ws, "closed", G_CALLBACK(&Session::on_closed), self.get());
  g_signal_connect(ws, "error", G_CALLBACK(&Session::on_error), self.get());
  self->ws_ = ws;
  GST_INFO("session '%s': connected in %.1f ms", self->name_.c_str(),
           (g_get_monotonic_time() - self->connect_started_us_) / 1000.0);
}

void Session::on_message(SoupWebsocketConnection *, gint type, GBytes *message, gpointer user_data) {
  auto *self = static_cast<Session *>(user_data);
  if (type != SOUP_WEBSOCKET_DATA_TEXT) return;
  gsize len = 0;
  const char *data = static_cast<const char *>(g_bytes_get_data(message, &len));
  ServerEvent event;
  std::string error;
  if (!parse_server_event(data, len, &event, &error)) {
    GST_WARNING("session '%s': unparsable server frame (%s)", self->name_.c_str(), error.c_str());
    return;
  }
  // Keep the session alive while handling: a handler may drop the socket (and its ref on us).
  std::shared_ptr<Session> keep = self->shared_from_this();
  self->handle_event(event);
}

void Session::on_error(SoupWebsocketConnection *, GError *error, gpointer user_data) {
  auto *self = static_cast<Session *>(user_data);
  GST_WARNING("session '%s': WebSocket error: %s", self->name_.c_str(), error->message);
}

void Session::on_closed(SoupWebsocketConnection *ws, gpointer user_data) {
  auto *self = static_cast<Session *>(user_data);
  std::shared_ptr<Session> keep = self->shared_from_this();
  gushort code = soup_websocket_connection_get_close_code(ws);
  const char *data = soup_websocket_connection_get_close_data(ws);
  std::string why = "closed with code " + std::to_string(code) + (data && *data ? std::string(" (") + data + ")" : "");
  self->handle_closed(why);
}

void Session::drop_socket() {
  if (!ws_) return;
  SoupWebsocketConnection *ws = ws_;
  ws_ = nullptr;
  g_signal_handlers_disconnect_by_data(ws, this);
  if (soup_websocket_connection_get_state(ws) == SOUP_WEBSOCKET_STATE_OPEN) {
    // Keep the connection alive until libsoup has finished the closing handshake.
    g_signal_connect(ws, "closed", G_CALLBACK(+[](SoupWebsocketConnection *c, gpointer) { g_object_unref(c); }),
                     nullptr);
    soup_websocket_connection_close(ws, SOUP_WEBSOCKET_CLOSE_NORMAL, nullptr);
  } else {
    g_object_unref(ws);
  }
  std::lock_guard<std::mutex> lock(mutex_);
  ready_ = false;
}

void Session::handle_closed(const std::string &why) {
  GST_INFO("session '%s': socket %s", name_.c_str(), why.c_str());
  if (ws_) {
    g_signal_handlers_disconnect_by_data(ws_, this);
    g_object_unref(ws_);
    ws_ = nullptr;
  }
  reset_socket_state();
  if (shutting_down_ || fatal_) return;
  schedule_reconnect(why);
}

void Session::reset_socket_state() {
  std::lock_guard<std::mutex> lock(mutex_);
  ready_ = false;
  response_active_ = false;
  // Items of the old socket do not exist in the next one: never truncate them there.
  item_audio_.clear();
  interrupted_responses_.clear();
  if (create_in_flight_) {
    create_in_flight_ = false;
    queued_responses_.push_front(in_flight_instructions_);
  }
}

void Session::schedule_reconnect(const std::string &reason) {
  int max_attempts;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    max_attempts = settings_.max_reconnect_attempts;
  }
  if (reconnect_attempt_ >= max_attempts) {
    fatal_ = true;
    post_error("reconnect_failed",
               "gave up after " + std::to_string(reconnect_attempt_) + " reconnect attempts: " + reason, true, false);
    return;
  }
  guint delay = std::min<guint>(250u << std::min(reconnect_attempt_, 8), 5000u);
  reconnect_attempt_++;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.reconnects++;
  }
  GST_WARNING("session '%s': reconnecting in %u ms (attempt %d): %s", name_.c_str(), delay, reconnect_attempt_,
              reason.c_str());
  post(gst_structure_new("openairealtime-reconnecting", "session", G_TYPE_STRING, name_.c_str(), "attempt",
                         G_TYPE_INT, reconnect_attempt_, "delay-ms", G_TYPE_UINT, delay, "reason", G_TYPE_STRING,
                         reason.c_str(), nullptr));
  auto self = shared_from_this();
  reconnect_timer_ = Hub::get().add_timer(delay, [self] {
    self->reconnect_timer_ = 0;
    self->connect();
  });
}

void Session::schedule_renewal(int64_t expires_at) {
  Hub::get().cancel_timer(renew_timer_);
  renew_timer_ = 0;
  if (expires_at <= 0) return;
  int margin;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    margin = settings_.renew_margin_s;
  }
  int64_t now = g_get_real_time() / G_USEC_PER_SEC;
  int64_t lifetime = expires_at - now;
  if (lifetime <= 0) return;
  // Renew `margin` seconds early, but never spend more than a fifth of a short session waiting.
  int64_t early = std::min<int64_t>(margin, lifetime / 5);
  int64_t in_ms = std::max<int64_t>((lifetime - early) * 1000, 1000);
  auto self = shared_from_this();
  renew_timer_ = Hub::get().add_timer((guint)std::min<int64_t>(in_ms, G_MAXUINT), [self] {
    self->renew_timer_ = 0;
    self->renew();
  });
}

void Session::renew() {
  if (shutting_down_ || fatal_) return;
  bool busy;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    busy = response_active_ || create_in_flight_;
  }
  if (busy) {
    // Never cut a reply short: renew as soon as the current response is done.
    renew_pending_ = true;
    return;
  }
  renew_pending_ = false;
  GST_INFO("session '%s': renewing before the server's expiry", name_.c_str());
  post(gst_structure_new("openairealtime-reconnecting", "session", G_TYPE_STRING, name_.c_str(), "attempt",
                         G_TYPE_INT, 0, "delay-ms", G_TYPE_UINT, 0u, "reason", G_TYPE_STRING, "renew", nullptr));
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.reconnects++;
  }
  drop_socket();
  reset_socket_state();
  connect();
}

void Session::shutdown() {
  shutting_down_ = true;
  Hub::get().cancel_timer(reconnect_timer_);
  Hub::get().cancel_timer(renew_timer_);
  reconnect_timer_ = renew_timer_ = 0;
  if (connect_cancellable_) g_cancellable_cancel(connect_cancellable_);
  drop_socket();
  std::lock_guard<std::mutex> lock(mutex_);
  playout_.clear();
  playout_bytes_ = 0;
  input_.clear();
  turn_audio_.clear();
  GST_DEBUG("session '%s' shut down", name_.c_str());
}

void Session::send(const std::string &frame) {
  if (!ws_ || soup_websocket_connection_get_state(ws_) != SOUP_WEBSOCKET_STATE_OPEN) return;
  soup_websocket_connection_send_text(ws_, frame.c_str());
}

// ---------------------------------------------------------------------------------------------
// Hub thread: audio in

void Session::flush_input_on_hub(bool final) {
  std::vector<std::string> frames;
  bool commit = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    wake_scheduled_ = false;
    if (!ready_ || !ws_) return;
    final = final || input_final_;
    size_t pos = 0;
    while (input_.size() - pos >= kMinAppendBytes || (final && input_.size() > pos)) {
      size_t n = std::min(kMaxAppendBytes, input_.size() - pos);
      frames.push_back(build_input_audio_append(input_.data() + pos, n));
      pos += n;
    }
    if (pos > 0) {
      keep_turn_audio_locked(input_.data(), pos);
      stats_.last_append_latency_ms = (g_get_monotonic_time() - input_oldest_us_) / 1000.0;
      stats_.input_bytes_appended += pos;
      input_.erase(input_.begin(), input_.begin() + pos);
      if (!input_.empty()) input_oldest_us_ = g_get_monotonic_time();
      input_since_commit_ += pos;
    }
    // End of input with no turn detection: nobody else will commit the turn or ask for a reply.
    if (final && input_final_ && !turn_detection_ && input_since_commit_ >= (uint64_t)100 * kBytesPerMs) {
      commit = true;
      input_since_commit_ = 0;
    }
    input_final_ = false;
  }
  for (const auto &frame : frames) send(frame);
  if (commit) {
    send(build_input_audio_commit());
    queued_responses_.push_back(std::string());
    maybe_send_queued_response();
  }
}

void Session::keep_turn_audio_locked(const uint8_t *pcm, size_t len) {
  turn_audio_.insert(turn_audio_.end(), pcm, pcm + len);
  // Without turn detection nothing marks a turn's start: everything since the last commit counts.
  size_t keep = (caller_turn_open_ || !turn_detection_) ? kMaxTurnReplayBytes : kTurnLeadInBytes;
  if (turn_audio_.size() > keep) turn_audio_.erase(turn_audio_.begin(), turn_audio_.end() - keep);
}

// On a new socket, before any new audio: the turn the old socket had not committed. Its server
// VAD sees the turn from its start (speech_started again, nothing playing to barge in on).
void Session::replay_turn_audio() {
  std::vector<std::string> frames;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (turn_audio_.empty()) return;
    std::vector<uint8_t> chunk;
    for (size_t pos = 0; pos < turn_audio_.size(); pos += chunk.size()) {
      size_t n = std::min(kMaxAppendBytes, turn_audio_.size() - pos);
      chunk.assign(turn_audio_.begin() + pos, turn_audio_.begin() + pos + n);
      frames.push_back(build_input_audio_append(chunk.data(), n));
    }
    input_since_commit_ = turn_audio_.size();
    stats_.input_bytes_replayed += turn_audio_.size();
    GST_INFO("session '%s': replaying %" G_GINT64_FORMAT " ms of the caller's unfinished turn", name_.c_str(),
             (gint64)bytes_to_ms(turn_audio_.size()));
  }
  for (const auto &frame : frames) send(frame);
}

// ---------------------------------------------------------------------------------------------
// Hub thread: events

void Session::on_ready() {
  bool first = !ever_ready_;
  ever_ready_ = true;
  reconnect_attempt_ = 0;
  renewing_ = false;
  if (!first) replay_history();
  std::string greeting;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ready_ = true;
    greeting = settings_.greeting;
  }
  GST_INFO("session '%s': %s", name_.c_str(), first ? "ready" : "reconnected");
  if (first) {
    post(gst_structure_new("openairealtime-session-ready", "session", G_TYPE_STRING, name_.c_str(), "setup-ms",
                           G_TYPE_DOUBLE, (g_get_monotonic_time() - connect_started_us_) / 1000.0, nullptr));
    if (!greeting.empty()) queued_responses_.push_back(greeting_instructions(greeting));
  } else {
    post(gst_structure_new("openairealtime-reconnected", "session", G_TYPE_STRING, name_.c_str(), "replayed-items",
                           G_TYPE_UINT, (guint)history_.size(), nullptr));
  }
  if (!first) replay_turn_audio();
  maybe_send_queued_response();
  flush_input_on_hub(false);
}

void Session::replay_history() {
  // A new socket is a new conversation (no resumption): replay it as text items so the model
  // keeps its context. Assistant audio cannot be recreated, so its transcript stands in.
  ApiShape shape;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    shape = settings_.shape;
  }
  for (const auto &entry : history_) send(build_text_item(shape, entry.role, entry.text));
}

void Session::maybe_send_queued_response() {
  if (queued_responses_.empty() || !ws_) return;
  ApiShape shape;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    // One active response at a time (G4).
    if (!ready_ || response_active_ || create_in_flight_) return;
    create_in_flight_ = true;
    in_flight_instructions_ = queued_responses_.front();
    shape = settings_.shape;
  }
  queued_responses_.pop_front();
  send(build_response_create(shape, in_flight_instructions_));
}

void Session::barge_in(const char *trigger, bool send_cancel) {
  struct Cut {
    std::string item_id;
    int64_t played_ms;
  };
  std::vector<Cut> cuts;
  uint64_t dropped = 0;
  bool cancel = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    bool generating = response_active_ && !interrupted_responses_.count(active_response_);
    if (playout_.empty() && !generating) return;  // nothing is playing: not a barge-in
    // The audible item first, then any later items of the queue (multi-item responses, G9).
    std::vector<std::string> items;
    auto note = [&](const std::string &id) {
      if (!id.empty() && std::find(items.begin(), items.end(), id) == items.end()) items.push_back(id);
    };
    if (!playout_.empty()) {
      for (const auto &seg : playout_) note(seg.item_id);
    } else if (generating && audible_response_ == active_response_) {
      note(audible_item_);
    }
    for (const auto &id : items) {
      auto it = item_audio_.find(id);
      if (it == item_audio_.end()) continue;  // from a previous socket: unknown to the server
      // What was played, never more than was received (G7).
      uint64_t played = std::min(it->second.played, it->second.received);
      cuts.push_back({id, bytes_to_ms(played)});
    }
    dropped = playout_bytes_;
    playout_.clear();
    playout_bytes_ = 0;
    stats_.output_bytes_dropped += dropped;
    stats_.barge_ins++;
    if (response_active_) {
      interrupted_responses_.insert(active_response_);
      cancel = send_cancel;
    }
  }
  for (const auto &cut : cuts) {
    if (cut.played_ms > 0)
      send(build_item_truncate(cut.item_id, 0, cut.played_ms));
    else
      send(build_item_delete(cut.item_id));
  }
  if (cancel) send(build_response_cancel());
  GST_INFO("session '%s': barge-in (%s): dropped %" G_GUINT64_FORMAT " ms of queued audio", name_.c_str(), trigger,
           (guint64)bytes_to_ms(dropped));
  post(gst_structure_new("openairealtime-barge-in", "session", G_TYPE_STRING, name_.c_str(), "trigger", G_TYPE_STRING,
                         trigger, "item-id", G_TYPE_STRING, cuts.empty() ? "" : cuts.front().item_id.c_str(),
                         "audio-end-ms", G_TYPE_INT64, cuts.empty() ? (gint64)0 : (gint64)cuts.front().played_ms,
                         "dropped-ms", G_TYPE_INT64, (gint64)bytes_to_ms(dropped), nullptr));
}

void Session::handle_error(const ErrorInfo &error) {
  bool was_ready;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.errors++;
    was_ready = ready_;
  }
  if (error.code == "conversation_already_has_active_response") {
    // Our response.create collided with one the server started itself: retry after its done.
    std::lock_guard<std::mutex> lock(mutex_);
    if (create_in_flight_) {
      create_in_flight_ = false;
      queued_responses_.push_front(in_flight_instructions_);
    }
  }
  bool benign = is_benign_error(error);
  bool fatal = is_fatal_error_code(error.code) || (!was_ready && is_config_rejection(error.code));
  std::string code = error.code.empty() ? "unknown" : error.code;
  if (benign)
    GST_DEBUG("session '%s': benign Realtime error code=%s: %s", name_.c_str(), code.c_str(), error.message.c_str());
  else
    GST_WARNING("session '%s': Realtime error code=%s type=%s param=%s: %s", name_.c_str(), code.c_str(),
                error.type.c_str(), error.param.c_str(), error.message.c_str());
  post_error(code, error.message, fatal, benign);
  if (fatal) {
    fatal_ = true;
    drop_socket();
  }
}

void Session::handle_event(ServerEvent &ev) {
  switch (ev.type) {
    case EventType::SessionCreated: {
      SessionSettings s;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        s = settings_;
      }
      schedule_renewal(ev.expires_at);
      send(build_session_update(s.shape, s.config));
      break;
    }
    case EventType::SessionUpdated: {
      server_interrupts_ = ev.interrupt_response;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        turn_detection_ = ev.turn_detection_enabled;
      }
      if (ev.expires_at > 0 && !renew_timer_) schedule_renewal(ev.expires_at);
      if (!ready_flag()) on_ready();
      break;
    }
    case EventType::Error:
      handle_error(ev.error);
      break;
    case EventType::SpeechStarted:
      post(gst_structure_new("openairealtime-speech-started", "session", G_TYPE_STRING, name_.c_str(), "item-id",
                             G_TYPE_STRING, ev.item_id.c_str(), "audio-start-ms", G_TYPE_INT64,
                             (gint64)ev.audio_start_ms, nullptr));
      {
        std::lock_guard<std::mutex> lock(mutex_);
        caller_turn_open_ = true;
      }
      // Without server-side interruption (or without turn detection) we must cancel ourselves.
      barge_in("speech_started", !server_interrupts_ || !turn_detection_);
      break;
    case EventType::SpeechStopped:
      post(gst_structure_new("openairealtime-speech-stopped", "session", G_TYPE_STRING, name_.c_str(), "item-id",
                             G_TYPE_STRING, ev.item_id.c_str(), "audio-end-ms", G_TYPE_INT64, (gint64)ev.audio_end_ms,
                             nullptr));
      break;
    case EventType::InputCommitted: {
      std::lock_guard<std::mutex> lock(mutex_);
      input_since_commit_ = 0;
      turn_audio_.clear();  // the turn is the model's now; only what follows may need replaying
      caller_turn_open_ = false;
      break;
    }
    case EventType::InputTranscriptionCompleted:
      history_.push_back({"user", ev.text});
      post(gst_structure_new("openairealtime-transcript", "session", G_TYPE_STRING, name_.c_str(), "role",
                             G_TYPE_STRING, "caller", "text", G_TYPE_STRING, ev.text.c_str(), "item-id", G_TYPE_STRING,
                             ev.item_id.c_str(), nullptr));
      break;
    case EventType::ResponseCreated: {
      std::lock_guard<std::mutex> lock(mutex_);
      create_in_flight_ = false;
      response_active_ = true;
      active_response_ = ev.response_id;
      stats_.responses++;
      break;
    }
    case EventType::AudioDelta: {
      std::lock_guard<std::mutex> lock(mutex_);
      if (interrupted_responses_.count(ev.response_id)) break;  // late deltas after a barge-in (G8)
      size_t n = ev.audio.size() - ev.audio.size() % kBytesPerSample;
      if (n == 0) break;
      stats_.output_bytes_received += n;
      uint64_t cap = (uint64_t)settings_.max_queue_ms * kBytesPerMs;
      if (playout_bytes_ + n > cap) {
        // The queue limit: keep what fits, stop the response and tell the model where its audio was
        // cut, so that nothing it believes it said goes unheard.
        size_t fits = playout_bytes_ < cap ? (size_t)(cap - playout_bytes_) : 0;
        fits -= fits % kBytesPerSample;
        stats_.output_bytes_dropped += n - fits;
        ItemAudio &item = item_audio_[ev.item_id];
        item.received += fits;
        if (fits) {
          playout_.push_back({ev.response_id, ev.item_id, std::vector<uint8_t>(ev.audio.begin(), ev.audio.begin() + fits), 0});
          playout_bytes_ += fits;
        }
        interrupted_responses_.insert(ev.response_id);
        std::string item_id = ev.item_id;
        int64_t keep_ms = bytes_to_ms(item.received);
        GST_WARNING("session '%s': playout queue over %d ms: cancelling the response", name_.c_str(),
                    settings_.max_queue_ms);
        // Sent outside the lock below.
        overflow_item_ = item_id;
        overflow_ms_ = keep_ms;
        break;
      }
      item_audio_[ev.item_id].received += n;
      audible_response_ = audible_response_.empty() ? ev.response_id : audible_response_;
      if (audible_item_.empty()) audible_item_ = ev.item_id;
      ev.audio.resize(n);
      playout_.push_back({ev.response_id, ev.item_id, std::move(ev.audio), 0});
      playout_bytes_ += n;
      break;
    }
    case EventType::AudioTranscriptDone: {
      bool interrupted;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        interrupted = interrupted_responses_.count(ev.response_id) > 0;
      }
      // An interrupted reply was truncated on the server; its full transcript was never heard.
      if (!interrupted && !ev.text.empty()) history_.push_back({"assistant", ev.text});
      post(gst_structure_new("openairealtime-transcript", "session", G_TYPE_STRING, name_.c_str(), "role",
                             G_TYPE_STRING, "agent", "text", G_TYPE_STRING, ev.text.c_str(), "item-id", G_TYPE_STRING,
                             ev.item_id.c_str(), "response-id", G_TYPE_STRING, ev.response_id.c_str(), "interrupted",
                             G_TYPE_BOOLEAN, interrupted, nullptr));
      break;
    }
    case EventType::FunctionCallArgumentsDone:
      // function_call_arguments.done and output_item.done describe the same call: dispatch once (G17).
      if (!dispatched_calls_.insert(ev.call_id).second) break;
      GST_INFO("session '%s': function call %s (%s)", name_.c_str(), ev.name.c_str(), ev.call_id.c_str());
      post(gst_structure_new("openairealtime-function-call", "session", G_TYPE_STRING, name_.c_str(), "name",
                             G_TYPE_STRING, ev.name.c_str(), "call-id", G_TYPE_STRING, ev.call_id.c_str(), "arguments",
                             G_TYPE_STRING, ev.arguments.c_str(), nullptr));
      break;
    case EventType::ResponseDone: {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (ev.response_id == active_response_) response_active_ = false;
        interrupted_responses_.erase(ev.response_id);
        stats_.input_tokens += ev.usage.input_tokens;
        stats_.output_tokens += ev.usage.output_tokens;
      }
      post(gst_structure_new("openairealtime-response-done", "session", G_TYPE_STRING, name_.c_str(), "response-id",
                             G_TYPE_STRING, ev.response_id.c_str(), "status", G_TYPE_STRING, ev.status.c_str(),
                             "reason", G_TYPE_STRING, ev.status_reason.c_str(), "input-tokens", G_TYPE_INT64,
                             (gint64)ev.usage.input_tokens, "output-tokens", G_TYPE_INT64,
                             (gint64)ev.usage.output_tokens, "input-audio-tokens", G_TYPE_INT64,
                             (gint64)ev.usage.input_audio_tokens, "output-audio-tokens", G_TYPE_INT64,
                             (gint64)ev.usage.output_audio_tokens, "input-text-tokens", G_TYPE_INT64,
                             (gint64)ev.usage.input_text_tokens, "input-cached-tokens", G_TYPE_INT64,
                             (gint64)ev.usage.input_cached_tokens, "output-text-tokens", G_TYPE_INT64,
                             (gint64)ev.usage.output_text_tokens, nullptr));
      if (ev.status == "failed")
        GST_WARNING("session '%s': response %s failed: %s %s", name_.c_str(), ev.response_id.c_str(),
                    ev.error.code.c_str(), ev.error.message.c_str());
      if (renew_pending_) {
        renew();
        break;
      }
      maybe_send_queued_response();
      break;
    }
    default:
      break;
  }
  if (!overflow_item_.empty()) {
    std::string item = overflow_item_;
    int64_t ms = overflow_ms_;
    overflow_item_.clear();
    send(build_response_cancel());
    if (ms > 0) send(build_item_truncate(item, 0, ms));
  }
}

}  // namespace realtime
