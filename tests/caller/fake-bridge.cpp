#include "fake-bridge.h"

#include <atomic>
#include <functional>
#include <mutex>

#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>
#include <gst/gst.h>
#include <gst/sdp/sdp.h>
#include <gst/webrtc/webrtc.h>
#include <json-glib/json-glib.h>

namespace fake_bridge {
namespace {

// The tone the caller must hear, and the send/receive branches of the answerer.
constexpr const char *kSendBranch =
    "audiotestsrc freq=440 is-live=true samplesperbuffer=960 name=tone ! audioconvert ! audioresample ! "
    "capsfilter caps=audio/x-raw,rate=48000,channels=1 ! "
    "opusenc bitrate=20000 audio-type=voice frame-size=20 ! rtpopuspay pt=111 ! "
    "capsfilter caps=\"application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000\"";
constexpr const char *kReceiveBranch =
    "rtpopusdepay ! opusdec ! audioconvert ! audioresample ! "
    "capsfilter caps=audio/x-raw,format=S16LE,rate=48000,channels=1,layout=interleaved ! "
    "fakesink name=received sync=false async=false";
constexpr guint kGatherTimeoutMs = 3000;

std::string json_error(const std::string &code, const std::string &message) {
  JsonBuilder *b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "error");
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "code");
  json_builder_add_string_value(b, code.c_str());
  json_builder_set_member_name(b, "message");
  json_builder_add_string_value(b, message.c_str());
  json_builder_end_object(b);
  json_builder_end_object(b);
  JsonNode *root = json_builder_get_root(b);
  gchar *text = json_to_string(root, FALSE);
  std::string out = text;
  g_free(text);
  json_node_unref(root);
  g_object_unref(b);
  return out;
}

void respond(SoupServerMessage *msg, guint status, const std::string &json) {
  soup_server_message_set_status(msg, status, nullptr);
  soup_server_message_set_response(msg, "application/json", SOUP_MEMORY_COPY, json.data(), json.size());
}

GstPromise *make_promise(std::function<void(GstPromise *)> fn) {
  auto *holder = new std::function<void(GstPromise *)>(std::move(fn));
  return gst_promise_new_with_change_func(
      [](GstPromise *p, gpointer d) { (*static_cast<std::function<void(GstPromise *)> *>(d))(p); }, holder,
      [](gpointer d) { delete static_cast<std::function<void(GstPromise *)> *>(d); });
}

// Called in a promise's change function, where the promise is settled: gst_promise_wait() does not block.
std::string promise_error(GstPromise *p) {
  if (gst_promise_wait(p) != GST_PROMISE_RESULT_REPLIED)
    return "promise not replied";
  const GstStructure *reply = gst_promise_get_reply(p);
  if (reply && gst_structure_has_field(reply, "error")) {
    GError *err = nullptr;
    gst_structure_get(reply, "error", G_TYPE_ERROR, &err, nullptr);
    std::string text = err ? err->message : "error";
    g_clear_error(&err);
    return text;
  }
  return "";
}

}  // namespace

class FakeBridge::Call {
 public:
  using AnswerFn = std::function<void(const std::string &answer, const std::string &error)>;

  Call(std::string id, std::string body, bool send_silence)
      : context_(g_main_context_ref_thread_default()), send_silence_(send_silence) {
    rec_.call_id = std::move(id);
    rec_.request_body = std::move(body);
    rec_.state = "connecting";
    created_ = g_date_time_new_now_utc();
  }
  ~Call() {
    end("bridge_shutdown");
    for (guint id : {end_timer_, media_timer_})
      if (id)
        g_source_remove(id);
    g_date_time_unref(created_);
    g_main_context_unref(context_);
  }

  bool ended() const { return rec_.state == "ended"; }
  CallRecord snapshot() const {
    CallRecord r = rec_;
    std::lock_guard<std::mutex> lock(audio_mutex_);
    r.received = received_;
    return r;
  }
  CallRecord &record() { return rec_; }

  std::string to_json() {
    std::lock_guard<std::mutex> lock(audio_mutex_);
    JsonBuilder *b = json_builder_new();
    json_builder_begin_object(b);
    auto str = [b](const char *k, const std::string &v) {
      json_builder_set_member_name(b, k);
      json_builder_add_string_value(b, v.c_str());
    };
    str("call_id", rec_.call_id);
    str("state", rec_.state);
    str("direction", "inbound");
    gchar *created = g_date_time_format_iso8601(created_);
    str("created_at", created);
    g_free(created);
    GDateTime *now = g_date_time_new_now_utc();
    json_builder_set_member_name(b, "duration_s");
    json_builder_add_double_value(b, g_date_time_difference(now, created_) / 1e6);
    g_date_time_unref(now);
    if (!rec_.end_reason.empty())
      str("end_reason", rec_.end_reason);
    json_builder_set_member_name(b, "stats");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "rtp_packets_received");
    json_builder_add_int_value(b, (gint64)(received_.size() / 960));  // one 20 ms frame per packet
    for (const char *k : {"rtp_packets_lost", "jitter_ms", "audio_to_model_ms", "audio_to_caller_ms", "barge_ins",
                          "responses", "input_tokens", "output_tokens"}) {
      json_builder_set_member_name(b, k);
      json_builder_add_int_value(b, 0);
    }
    json_builder_end_object(b);
    json_builder_end_object(b);
    JsonNode *root = json_builder_get_root(b);
    gchar *text = json_to_string(root, FALSE);
    std::string out = text;
    g_free(text);
    json_node_unref(root);
    g_object_unref(b);
    return out;
  }

  void answer(const std::string &offer_text, AnswerFn done) {
    done_ = std::move(done);
    GstSDPMessage *sdp = nullptr;
    if (gst_sdp_message_new_from_text(offer_text.c_str(), &sdp) != GST_SDP_OK) {
      if (sdp)
        gst_sdp_message_free(sdp);
      finish("", "invalid_sdp");
      return;
    }
    pipeline_ = gst_pipeline_new(("bridge-" + rec_.call_id).c_str());
    webrtc_ = gst_element_factory_make("webrtcbin", "webrtc");
    gst_util_set_object_arg(G_OBJECT(webrtc_), "bundle-policy", "max-bundle");
    g_object_set(webrtc_, "latency", 60, nullptr);
    gst_bin_add(GST_BIN(pipeline_), webrtc_);

    // ICE on loopback only, UDP only, no UPnP (notes §3.4).
    GstWebRTCICE *ice = nullptr;
    g_object_get(webrtc_, "ice-agent", &ice, nullptr);
    g_object_set(ice, "ice-tcp", FALSE, nullptr);
    gboolean ok = FALSE;
    g_signal_emit_by_name(ice, "add-local-ip-address", "127.0.0.1", &ok);
    GObject *agent = nullptr;
    g_object_get(ice, "agent", &agent, nullptr);
    g_object_set(agent, "upnp", FALSE, nullptr);
    g_object_unref(agent);
    gst_object_unref(ice);

    // Method A: the transceiver exists before the offer is applied, so the answer is sendrecv.
    GstCaps *caps = gst_caps_from_string("application/x-rtp,media=audio,encoding-name=OPUS,clock-rate=48000,payload=111");
    GstWebRTCRTPTransceiver *trans = nullptr;
    g_signal_emit_by_name(webrtc_, "add-transceiver", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_SENDRECV, caps, &trans);
    gst_caps_unref(caps);
    if (trans)
      gst_object_unref(trans);

    g_signal_connect(webrtc_, "pad-added", G_CALLBACK(on_pad_added), this);
    g_signal_connect(webrtc_, "notify::ice-gathering-state", G_CALLBACK(on_gathering), this);
    g_signal_connect(webrtc_, "notify::ice-connection-state", G_CALLBACK(on_ice_state), this);
    gst_element_set_state(pipeline_, GST_STATE_PLAYING);

    GstWebRTCSessionDescription *offer = gst_webrtc_session_description_new(GST_WEBRTC_SDP_TYPE_OFFER, sdp);
    GstPromise *p = make_promise([this](GstPromise *pr) {
      std::string err = promise_error(pr);
      post([this, err] { err.empty() ? create_answer() : finish("", "set-remote-description: " + err); });
    });
    g_signal_emit_by_name(webrtc_, "set-remote-description", offer, p);
    gst_promise_unref(p);
    gst_webrtc_session_description_free(offer);
  }

  void end(const std::string &reason) {
    if (ended())
      return;
    rec_.state = "ended";
    rec_.end_reason = reason;
    stop_media();
    finish("", "call ended before it was answered");
  }

  // Media gone, API state untouched (see Config::stop_media_after_s).
  void stop_media() {
    alive_->store(false);
    if (gather_timer_) {
      g_source_remove(gather_timer_);
      gather_timer_ = 0;
    }
    if (pipeline_) {
      gst_element_set_state(pipeline_, GST_STATE_NULL);
      gst_object_unref(pipeline_);
      pipeline_ = nullptr;
      webrtc_ = nullptr;
    }
  }

  void end_after(double seconds) {
    end_timer_ = g_timeout_add((guint)(seconds * 1000), [](gpointer d) -> gboolean {
      auto *self = static_cast<Call *>(d);
      self->end_timer_ = 0;
      self->end("agent_hangup");
      return G_SOURCE_REMOVE;
    }, this);
  }

  void stop_media_after(double seconds) {
    media_timer_ = g_timeout_add((guint)(seconds * 1000), [](gpointer d) -> gboolean {
      auto *self = static_cast<Call *>(d);
      self->media_timer_ = 0;
      self->stop_media();
      return G_SOURCE_REMOVE;
    }, this);
  }

 private:
  void post(std::function<void()> fn) {
    struct Post {
      std::shared_ptr<std::atomic<bool>> alive;
      std::function<void()> fn;
    };
    GSource *src = g_idle_source_new();
    g_source_set_callback(
        src,
        [](gpointer d) -> gboolean {
          auto *p = static_cast<Post *>(d);
          if (p->alive->load())
            p->fn();
          return G_SOURCE_REMOVE;
        },
        new Post{alive_, std::move(fn)}, [](gpointer d) { delete static_cast<Post *>(d); });
    g_source_attach(src, context_);
    g_source_unref(src);
  }

  void finish(const std::string &answer, const std::string &error) {
    if (!done_)
      return;
    auto done = std::move(done_);
    done_ = nullptr;
    done(answer, error);
  }

  void create_answer() {
    GstPromise *p = make_promise([this](GstPromise *pr) {
      std::string err = promise_error(pr);
      GstWebRTCSessionDescription *answer = nullptr;
      if (err.empty())
        gst_structure_get(gst_promise_get_reply(pr), "answer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &answer, nullptr);
      std::shared_ptr<GstWebRTCSessionDescription> held(answer, [](GstWebRTCSessionDescription *d) {
        if (d)
          gst_webrtc_session_description_free(d);
      });
      post([this, held, err] {
        if (!held) {
          finish("", "create-answer: " + (err.empty() ? std::string("no answer") : err));
          return;
        }
        gchar *text = gst_sdp_message_as_text(held->sdp);
        rec_.answered_sendrecv = g_strstr_len(text, -1, "a=sendrecv") != nullptr;
        g_free(text);
        GstPromise *lp = make_promise([this](GstPromise *lpr) {
          std::string lerr = promise_error(lpr);
          post([this, lerr] {
            if (!lerr.empty()) {
              finish("", "set-local-description: " + lerr);
              return;
            }
            local_set_ = true;
            maybe_answered();
          });
        });
        g_signal_emit_by_name(webrtc_, "set-local-description", held.get(), lp);
        gst_promise_unref(lp);
        gather_timer_ = g_timeout_add(kGatherTimeoutMs, [](gpointer d) -> gboolean {
          auto *self = static_cast<Call *>(d);
          self->gather_timer_ = 0;
          self->gather_done_ = true;
          self->maybe_answered();
          return G_SOURCE_REMOVE;
        }, this);
      });
    });
    g_signal_emit_by_name(webrtc_, "create-answer", nullptr, p);
    gst_promise_unref(p);
  }

  void maybe_answered() {
    if (!local_set_ || !gather_done_ || !done_)
      return;
    if (gather_timer_) {
      g_source_remove(gather_timer_);
      gather_timer_ = 0;
    }
    GstWebRTCSessionDescription *local = nullptr;
    g_object_get(webrtc_, "local-description", &local, nullptr);
    gchar *text = gst_sdp_message_as_text(local->sdp);
    std::string answer = text;
    g_free(text);
    gst_webrtc_session_description_free(local);
    finish(answer, "");
  }

  static void on_gathering(GObject *webrtc, GParamSpec *, gpointer data) {
    auto *self = static_cast<Call *>(data);
    GstWebRTCICEGatheringState state;
    g_object_get(webrtc, "ice-gathering-state", &state, nullptr);
    if (state == GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE)
      self->post([self] {
        self->gather_done_ = true;
        self->maybe_answered();
      });
  }

  static void on_ice_state(GObject *webrtc, GParamSpec *, gpointer data) {
    auto *self = static_cast<Call *>(data);
    GstWebRTCICEConnectionState state;
    g_object_get(webrtc, "ice-connection-state", &state, nullptr);
    if (state == GST_WEBRTC_ICE_CONNECTION_STATE_CONNECTED || state == GST_WEBRTC_ICE_CONNECTION_STATE_COMPLETED)
      self->post([self] {
        if (self->rec_.state == "connecting")
          self->rec_.state = "active";
      });
  }

  static void on_pad_added(GstElement *, GstPad *pad, gpointer data) {
    // A webrtcbin thread: hold the pad (a SRC pad is parked so no data is lost) and let the main
    // context build the branch.
    auto *self = static_cast<Call *>(data);
    gulong block = 0;
    if (GST_PAD_DIRECTION(pad) == GST_PAD_SRC)
      block = gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BLOCK_DOWNSTREAM,
                                [](GstPad *, GstPadProbeInfo *, gpointer) { return GST_PAD_PROBE_OK; }, nullptr,
                                nullptr);
    std::shared_ptr<GstPad> held(GST_PAD(gst_object_ref(pad)), [](GstPad *p) { gst_object_unref(p); });
    self->post([self, held, block] { self->link_pad(held.get(), block); });
  }

  void link_pad(GstPad *pad, gulong block) {
    bool sending = GST_PAD_DIRECTION(pad) == GST_PAD_SINK;
    GError *err = nullptr;
    GstElement *bin = gst_parse_bin_from_description(sending ? kSendBranch : kReceiveBranch, TRUE, &err);
    if (!bin) {
      g_warning("fake bridge: %s", err->message);
      g_clear_error(&err);
      return;
    }
    if (sending && send_silence_) {
      GstElement *tone = gst_bin_get_by_name(GST_BIN(bin), "tone");
      gst_util_set_object_arg(G_OBJECT(tone), "wave", "silence");
      gst_object_unref(tone);
    }
    gst_bin_add(GST_BIN(pipeline_), bin);
    GstPad *ghost = gst_element_get_static_pad(bin, sending ? "src" : "sink");
    GstPadLinkReturn r = sending ? gst_pad_link(ghost, pad) : gst_pad_link(pad, ghost);
    gst_object_unref(ghost);
    if (GST_PAD_LINK_FAILED(r))
      g_warning("fake bridge: cannot link the %s branch: %s", sending ? "send" : "receive", gst_pad_link_get_name(r));
    if (!sending) {
      GstElement *sink = gst_bin_get_by_name(GST_BIN(bin), "received");
      GstPad *sink_pad = gst_element_get_static_pad(sink, "sink");
      gst_pad_add_probe(sink_pad, GST_PAD_PROBE_TYPE_BUFFER, on_audio, this, nullptr);
      gst_object_unref(sink_pad);
      gst_object_unref(sink);
    }
    gst_element_sync_state_with_parent(bin);
    if (block)
      gst_pad_remove_probe(pad, block);
  }

  static GstPadProbeReturn on_audio(GstPad *, GstPadProbeInfo *info, gpointer data) {
    auto *self = static_cast<Call *>(data);
    GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER(info);
    GstMapInfo map;
    if (gst_buffer_map(buf, &map, GST_MAP_READ)) {
      const int16_t *s = reinterpret_cast<const int16_t *>(map.data);
      std::lock_guard<std::mutex> lock(self->audio_mutex_);
      self->received_.insert(self->received_.end(), s, s + map.size / 2);
      gst_buffer_unmap(buf, &map);
    }
    return GST_PAD_PROBE_OK;
  }

  CallRecord rec_;  // main context only (received audio lives in received_)
  GMainContext *context_;
  GDateTime *created_ = nullptr;
  GstElement *pipeline_ = nullptr;
  GstElement *webrtc_ = nullptr;
  AnswerFn done_;
  bool local_set_ = false;
  bool gather_done_ = false;
  guint gather_timer_ = 0;
  guint end_timer_ = 0;
  guint media_timer_ = 0;
  bool send_silence_;
  std::shared_ptr<std::atomic<bool>> alive_ = std::make_shared<std::atomic<bool>>(true);
  mutable std::mutex audio_mutex_;
  std::vector<int16_t> received_;
};

FakeBridge::FakeBridge(Config config) : config_(std::move(config)) {}

FakeBridge::~FakeBridge() {
  calls_.clear();  // pipelines to NULL first: nothing may call back into a dead server
  if (server_) {
    soup_server_disconnect(server_);
    g_object_unref(server_);
  }
  if (!config_.unix_socket.empty())
    g_unlink(config_.unix_socket.c_str());
}

bool FakeBridge::start(std::string &error) {
  server_ = soup_server_new("server-header", "fake-voicebridge", nullptr);
  soup_server_add_handler(server_, "/v1/calls", on_request, this, nullptr);
  GError *err = nullptr;
  if (!soup_server_listen_local(server_, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &err)) {
    error = err->message;
    g_error_free(err);
    return false;
  }
  // Read the port off the socket: soup_server_get_uris() is unusable once a unix listener exists.
  // The list is ours to free (transfer container), the sockets in it are the server's.
  GSList *listeners = soup_server_get_listeners(server_);
  for (GSList *l = listeners; l; l = l->next) {
    GSocketAddress *addr = g_socket_get_local_address(G_SOCKET(l->data), nullptr);
    if (addr && G_IS_INET_SOCKET_ADDRESS(addr))
      port_ = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(addr));
    if (addr)
      g_object_unref(addr);
  }
  g_slist_free(listeners);
  if (!config_.unix_socket.empty()) {
    g_unlink(config_.unix_socket.c_str());
    GSocketAddress *ua = g_unix_socket_address_new(config_.unix_socket.c_str());
    bool ok = soup_server_listen(server_, ua, (SoupServerListenOptions)0, &err);
    g_object_unref(ua);
    if (!ok) {
      error = err->message;
      g_error_free(err);
      return false;
    }
  }
  return port_ != 0;
}

std::vector<std::string> FakeBridge::call_ids() const {
  std::vector<std::string> ids;
  for (const auto &kv : calls_)
    ids.push_back(kv.first);
  return ids;
}

bool FakeBridge::call(const std::string &id, CallRecord &out) const {
  auto it = calls_.find(id);
  if (it == calls_.end())
    return false;
  out = it->second->snapshot();
  return true;
}

void FakeBridge::on_request(SoupServer *, SoupServerMessage *msg, const char *path, GHashTable *, gpointer data) {
  auto *self = static_cast<FakeBridge *>(data);
  std::string method = soup_server_message_get_method(msg);
  if (!self->config_.token.empty()) {
    const char *auth = soup_message_headers_get_one(soup_server_message_get_request_headers(msg), "Authorization");
    if (!auth || std::string(auth) != "Bearer " + self->config_.token) {
      respond(msg, 401, json_error("unauthorized", "missing or wrong bearer token"));
      return;
    }
  }
  std::string p = path;
  if (p == "/v1/calls" || p == "/v1/calls/") {
    if (method == "POST")
      self->handle_post(msg);
    else
      respond(msg, 405, json_error("method_not_allowed", "POST only"));
    return;
  }
  const std::string prefix = "/v1/calls/";
  if (p.compare(0, prefix.size(), prefix) != 0) {
    respond(msg, 404, json_error("not_found", "no such resource"));
    return;
  }
  self->handle_call(msg, method, p.substr(prefix.size()));
}

void FakeBridge::handle_post(SoupServerMessage *msg) {
  posts_++;
  if (config_.fail_status) {
    respond(msg, config_.fail_status, json_error(config_.fail_code, config_.fail_message));
    return;
  }
  SoupMessageBody *body = soup_server_message_get_request_body(msg);
  std::string text(body->data ? body->data : "", body->length);
  JsonParser *parser = json_parser_new();
  std::string sdp, id;
  if (json_parser_load_from_data(parser, text.data(), (gssize)text.size(), nullptr) &&
      JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser))) {
    JsonObject *o = json_node_get_object(json_parser_get_root(parser));
    sdp = json_object_get_string_member_with_default(o, "sdp", "");
    id = json_object_get_string_member_with_default(o, "call_id", "");
  }
  g_object_unref(parser);
  if (sdp.empty()) {
    respond(msg, 400, json_error("invalid_json", "body must be an object with an sdp"));
    return;
  }
  if (id.empty())
    id = "fake-" + std::to_string(next_id_++);
  if (calls_.count(id)) {
    respond(msg, 409, json_error("call_exists", "a call with this id exists"));
    return;
  }
  auto call = std::make_unique<Call>(id, text, config_.send_silence);
  Call *c = call.get();
  calls_[id] = std::move(call);
  // Answered once ICE gathering completed: keep the request open meanwhile.
  soup_server_message_pause(msg);
  g_object_ref(msg);
  double end_after = config_.end_after_s, stop_media_after = config_.stop_media_after_s;
  c->answer(sdp, [msg, c, id, end_after, stop_media_after](const std::string &answer, const std::string &error) {
    if (answer.empty()) {
      respond(msg, 400, json_error("invalid_sdp", error));
    } else {
      JsonBuilder *b = json_builder_new();
      json_builder_begin_object(b);
      json_builder_set_member_name(b, "call_id");
      json_builder_add_string_value(b, id.c_str());
      json_builder_set_member_name(b, "sdp");
      json_builder_add_string_value(b, answer.c_str());
      json_builder_end_object(b);
      JsonNode *root = json_builder_get_root(b);
      gchar *json = json_to_string(root, FALSE);
      respond(msg, 201, json);
      g_free(json);
      json_node_unref(root);
      g_object_unref(b);
      if (end_after > 0)
        c->end_after(end_after);
      if (stop_media_after == 0)
        c->stop_media();  // the answer stays valid text, but nobody is behind its candidates
      else if (stop_media_after > 0)
        c->stop_media_after(stop_media_after);
    }
    soup_server_message_unpause(msg);
    g_object_unref(msg);
  });
}

void FakeBridge::handle_call(SoupServerMessage *msg, const std::string &method, const std::string &id) {
  auto it = calls_.find(id);
  if (it == calls_.end()) {
    respond(msg, 404, json_error("no_such_call", "no call " + id));
    return;
  }
  Call &c = *it->second;
  if (method == "GET") {
    c.record().gets++;
  } else if (method == "DELETE") {
    c.record().deletes++;
    c.end("deleted");
  } else {
    respond(msg, 405, json_error("method_not_allowed", "GET or DELETE"));
    return;
  }
  respond(msg, 200, c.to_json());
}

}  // namespace fake_bridge
