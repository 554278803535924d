#include "webrtc-bridge.h"

#include <gst/rtp/gstrtpbuffer.h>
#include <gst/sdp/sdp.h>

#include <set>

namespace test_bridge {

namespace {

constexpr int kOpusPt = 111;
constexpr int kDtmfPt = 126;

const char kReceiveBranch[] =
    "queue ! rtpopusdepay ! opusdec ! audioconvert ! audioresample ! "
    "audio/x-raw,format=S16LE,rate=48000,channels=1 ! fakesink name=received sync=false async=false";

}  // namespace

struct WebrtcBridge::Shared {
  GMainContext *ctx = nullptr;
  GstElement *pipeline = nullptr;  // not reffed; valid while alive
  double tone_hz = 440.0;
  std::atomic<bool> alive{true};
  std::atomic<bool> gathered{false};

  mutable std::mutex mutex;  // below
  std::vector<int16_t> received;
  WireStats wire;
  std::set<uint32_t> ssrcs;
  bool have_seq = false;
  uint16_t last_seq = 0;
  bool in_event = false;
  uint32_t event_ts = 0;
  bool event_ended = false;

  // Runs fn on ctx (the test's thread) unless the bridge has been stopped by then.
  static void post(const std::shared_ptr<Shared> &self, std::function<void()> fn) {
    struct Post {
      std::shared_ptr<Shared> self;
      std::function<void()> fn;
    };
    GSource *src = g_idle_source_new();
    g_source_set_callback(
        src,
        [](gpointer data) -> gboolean {
          auto *p = static_cast<Post *>(data);
          if (p->self->alive) p->fn();
          return G_SOURCE_REMOVE;
        },
        new Post{self, std::move(fn)}, [](gpointer data) { delete static_cast<Post *>(data); });
    g_source_attach(src, self->ctx);
    g_source_unref(src);
  }

  void link_pad(GstPad *pad, gulong block) {
    const bool sending = GST_PAD_DIRECTION(pad) == GST_PAD_SINK;
    gchar *desc = sending ? g_strdup_printf(
                                "audiotestsrc is-live=true wave=sine freq=%g volume=0.25 samplesperbuffer=960 ! "
                                "audio/x-raw,rate=48000,channels=1 ! opusenc bitrate=32000 frame-size=20 ! "
                                "rtpopuspay pt=%d ! queue",
                                tone_hz, kOpusPt)
                          : g_strdup(kReceiveBranch);
    GError *err = nullptr;
    GstElement *bin = gst_parse_bin_from_description(desc, TRUE, &err);
    g_free(desc);
    if (!bin) {
      g_warning("webrtc bridge: %s", err ? err->message : "cannot build a branch");
      g_clear_error(&err);
      return;
    }
    gst_bin_add(GST_BIN(pipeline), bin);
    GstPad *ghost = gst_element_get_static_pad(bin, sending ? "src" : "sink");
    GstPadLinkReturn r = sending ? gst_pad_link(ghost, pad) : gst_pad_link(pad, ghost);
    gst_object_unref(ghost);
    if (GST_PAD_LINK_FAILED(r))
      g_warning("webrtc bridge: cannot link the %s branch: %s", sending ? "send" : "receive", gst_pad_link_get_name(r));
    if (!sending) {
      GstElement *sink = gst_bin_get_by_name(GST_BIN(bin), "received");
      GstPad *sink_pad = gst_element_get_static_pad(sink, "sink");
      gst_pad_add_probe(sink_pad, GST_PAD_PROBE_TYPE_BUFFER, &Shared::on_audio, this, nullptr);
      gst_object_unref(sink_pad);
      gst_object_unref(sink);
    }
    gst_element_sync_state_with_parent(bin);
    if (block) gst_pad_remove_probe(pad, block);
  }

  static GstPadProbeReturn on_audio(GstPad *, GstPadProbeInfo *info, gpointer data) {
    auto *self = static_cast<Shared *>(data);
    GstMapInfo map;
    GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER(info);
    if (gst_buffer_map(buf, &map, GST_MAP_READ)) {
      const int16_t *s = reinterpret_cast<const int16_t *>(map.data);
      std::lock_guard<std::mutex> lock(self->mutex);
      self->received.insert(self->received.end(), s, s + map.size / 2);
      gst_buffer_unmap(buf, &map);
    }
    return GST_PAD_PROBE_OK;
  }

  // One RTP packet of the peer's, after SRTP and before the jitter buffer. true: a DTMF packet,
  // to be kept from the jitter buffer (it knows no clock rate for PT 126 and would drop or misplace it).
  bool inspect(GstBuffer *buffer) {
    GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;
    if (!gst_rtp_buffer_map(buffer, GST_MAP_READ, &rtp)) return false;
    const guint pt = gst_rtp_buffer_get_payload_type(&rtp);
    const guint16 seq = gst_rtp_buffer_get_seq(&rtp);
    const guint32 ts = gst_rtp_buffer_get_timestamp(&rtp);
    const bool marker = gst_rtp_buffer_get_marker(&rtp);
    const guint8 *payload = static_cast<const guint8 *>(gst_rtp_buffer_get_payload(&rtp));
    const guint payload_len = gst_rtp_buffer_get_payload_len(&rtp);
    std::lock_guard<std::mutex> lock(mutex);
    wire.packets++;
    ssrcs.insert(gst_rtp_buffer_get_ssrc(&rtp));
    wire.ssrcs = ssrcs.size();
    if (have_seq && seq != (guint16)(last_seq + 1)) wire.seq_gaps++;
    have_seq = true;
    last_seq = seq;
    if (pt == kOpusPt) wire.opus_packets++;
    if (pt == kDtmfPt && payload_len >= 4) {
      wire.dtmf_packets++;
      // RFC 4733 §2.3: event, E|R|volume, duration. A new timestamp starts a new event.
      const bool end = (payload[1] & 0x80) != 0;
      if (!in_event || ts != event_ts) {
        in_event = true;
        event_ts = ts;
        event_ended = false;
        if (!marker) wire.dtmf_marker_on_first = false;
      }
      if (end) {
        wire.dtmf_end_packets++;
        if (!event_ended) {
          static const char kDigits[] = "0123456789*#ABCD";
          wire.digits += payload[0] < 16 ? kDigits[payload[0]] : '?';
          event_ended = true;
        }
      }
    }
    gst_rtp_buffer_unmap(&rtp);
    return pt == kDtmfPt;
  }

  static GstPadProbeReturn on_rtp(GstPad *, GstPadProbeInfo *info, gpointer data) {
    auto *self = static_cast<Shared *>(data);
    if (info->type & GST_PAD_PROBE_TYPE_BUFFER)
      return self->inspect(GST_PAD_PROBE_INFO_BUFFER(info)) ? GST_PAD_PROBE_DROP : GST_PAD_PROBE_OK;
    GstBufferList *list = GST_PAD_PROBE_INFO_BUFFER_LIST(info);
    for (guint i = 0; i < gst_buffer_list_length(list); i++) self->inspect(gst_buffer_list_get(list, i));
    return GST_PAD_PROBE_OK;
  }
};

WebrtcBridge::WebrtcBridge(GMainContext *ctx, double tone_hz) : ctx_(ctx), tone_hz_(tone_hz) {}

WebrtcBridge::~WebrtcBridge() { stop(); }

bool WebrtcBridge::start(std::string *error) {
  pipeline_ = gst_pipeline_new("bridge");
  webrtc_ = gst_element_factory_make("webrtcbin", "webrtc");
  if (!webrtc_) {
    if (error) *error = "no webrtcbin (gstreamer1.0-plugins-bad and gstreamer1.0-nice)";
    return false;
  }
  gst_util_set_object_arg(G_OBJECT(webrtc_), "bundle-policy", "max-bundle");
  g_object_set(webrtc_, "latency", 60, nullptr);
  gst_bin_add(GST_BIN(pipeline_), webrtc_);

  // Loopback only, UDP only, no UPnP (gstreamer-1.22-notes §1.10).
  GstWebRTCICE *ice = nullptr;
  g_object_get(webrtc_, "ice-agent", &ice, nullptr);
  g_object_set(ice, "ice-tcp", FALSE, nullptr);
  gboolean ok = FALSE;
  g_signal_emit_by_name(ice, "add-local-ip-address", "127.0.0.1", &ok);
  GObject *agent = nullptr;
  g_object_get(ice, "agent", &agent, nullptr);
  g_object_set(agent, "upnp", FALSE, nullptr);
  if (stun_max_retransmissions_) g_object_set(agent, "stun-max-retransmissions", stun_max_retransmissions_, nullptr);
  g_object_unref(agent);
  gst_object_unref(ice);

  // Method A: the transceiver exists before any description, so answers and offers are sendrecv.
  GstCaps *caps =
      gst_caps_from_string("application/x-rtp,media=audio,encoding-name=OPUS,clock-rate=48000,payload=111");
  GstWebRTCRTPTransceiver *trans = nullptr;
  g_signal_emit_by_name(webrtc_, "add-transceiver", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_SENDRECV, caps, &trans);
  gst_caps_unref(caps);
  if (trans) gst_object_unref(trans);

  shared_ = std::make_shared<Shared>();
  shared_->ctx = ctx_;
  shared_->pipeline = pipeline_;
  shared_->tone_hz = tone_hz_;
  auto free_shared = [](gpointer data, GClosure *) { delete static_cast<std::shared_ptr<Shared> *>(data); };
  g_signal_connect_data(
      webrtc_, "pad-added", G_CALLBACK(+[](GstElement *, GstPad *pad, gpointer data) {
        // A webrtcbin thread: park a SRC pad so no data is lost, and let the test's context link it.
        auto self = *static_cast<std::shared_ptr<Shared> *>(data);
        gulong block = 0;
        if (GST_PAD_DIRECTION(pad) == GST_PAD_SRC)
          block = gst_pad_add_probe(
              pad, GST_PAD_PROBE_TYPE_BLOCK_DOWNSTREAM,
              [](GstPad *, GstPadProbeInfo *, gpointer) { return GST_PAD_PROBE_OK; }, nullptr, nullptr);
        std::shared_ptr<GstPad> held(GST_PAD(gst_object_ref(pad)), [](GstPad *p) { gst_object_unref(p); });
        Shared::post(self, [self, held, block] { self->link_pad(held.get(), block); });
      }),
      new std::shared_ptr<Shared>(shared_), free_shared, (GConnectFlags)0);
  g_signal_connect_data(
      webrtc_, "notify::ice-gathering-state", G_CALLBACK(+[](GObject *webrtc, GParamSpec *, gpointer data) {
        auto self = *static_cast<std::shared_ptr<Shared> *>(data);
        GstWebRTCICEGatheringState state;
        g_object_get(webrtc, "ice-gathering-state", &state, nullptr);
        if (state == GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE) {
          self->gathered = true;
          g_main_context_wakeup(self->ctx);
        }
      }),
      new std::shared_ptr<Shared>(shared_), free_shared, (GConnectFlags)0);

  if (gst_element_set_state(pipeline_, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    if (error) *error = "the bridge pipeline failed to start";
    return false;
  }
  return true;
}

void WebrtcBridge::iterate_until(const std::function<bool()> &done, int timeout_ms) {
  const int64_t deadline = g_get_monotonic_time() + (int64_t)timeout_ms * 1000;
  while (!done() && g_get_monotonic_time() < deadline) {
    while (g_main_context_iteration(ctx_, FALSE)) {
    }
    if (!done()) g_usleep(1000);
  }
}

bool WebrtcBridge::run_promise(const std::function<void(GstPromise *)> &emit, GstStructure **reply,
                               std::string *error, int timeout_ms) {
  struct State {
    std::atomic<bool> done{false};
    std::mutex mutex;
    GstStructure *reply = nullptr;
    GMainContext *ctx = nullptr;
    ~State() {
      if (reply) gst_structure_free(reply);
    }
  };
  auto state = std::make_shared<State>();
  state->ctx = ctx_;
  GstPromise *promise = gst_promise_new_with_change_func(
      [](GstPromise *p, gpointer data) {
        // webrtcbin's pc thread: copy the reply, wake the test's context.
        auto st = *static_cast<std::shared_ptr<State> *>(data);
        const GstStructure *r = gst_promise_wait(p) == GST_PROMISE_RESULT_REPLIED ? gst_promise_get_reply(p) : nullptr;
        {
          std::lock_guard<std::mutex> lock(st->mutex);
          st->reply = r ? gst_structure_copy(r) : nullptr;
        }
        st->done = true;
        g_main_context_wakeup(st->ctx);
      },
      new std::shared_ptr<State>(state), [](gpointer data) { delete static_cast<std::shared_ptr<State> *>(data); });
  emit(promise);
  gst_promise_unref(promise);
  iterate_until([&] { return state->done.load(); }, timeout_ms);
  if (!state->done) {
    if (error) *error = "timed out";
    return false;
  }
  std::lock_guard<std::mutex> lock(state->mutex);
  if (state->reply && gst_structure_has_field(state->reply, "error")) {
    GError *err = nullptr;
    gst_structure_get(state->reply, "error", G_TYPE_ERROR, &err, nullptr);
    if (error) *error = err ? err->message : "error";
    g_clear_error(&err);
    return false;
  }
  if (reply) {
    *reply = state->reply;
    state->reply = nullptr;
  }
  return true;
}

bool WebrtcBridge::set_description(bool local, GstWebRTCSDPType type, const std::string &text, std::string *error,
                                   int timeout_ms) {
  GstSDPMessage *sdp = nullptr;
  gst_sdp_message_new(&sdp);
  if (gst_sdp_message_parse_buffer(reinterpret_cast<const guint8 *>(text.data()), (guint)text.size(), sdp) !=
      GST_SDP_OK) {
    gst_sdp_message_free(sdp);
    if (error) *error = "unparseable SDP";
    return false;
  }
  GstWebRTCSessionDescription *desc = gst_webrtc_session_description_new(type, sdp);
  bool ok = run_promise(
      [&](GstPromise *p) {
        g_signal_emit_by_name(webrtc_, local ? "set-local-description" : "set-remote-description", desc, p);
      },
      nullptr, error, timeout_ms);
  gst_webrtc_session_description_free(desc);
  return ok;
}

bool WebrtcBridge::wait_gathered(int timeout_ms) {
  iterate_until([&] { return shared_->gathered.load(); }, timeout_ms);
  return shared_->gathered;
}

std::string WebrtcBridge::local_description() const {
  GstWebRTCSessionDescription *local = nullptr;
  g_object_get(webrtc_, "local-description", &local, nullptr);
  if (!local) return {};
  gchar *text = gst_sdp_message_as_text(local->sdp);
  std::string out = text;
  g_free(text);
  gst_webrtc_session_description_free(local);
  return out;
}

bool WebrtcBridge::answer_offer(const std::string &offer, std::string *answer, std::string *error, int timeout_ms) {
  std::string err;
  if (!set_description(false, GST_WEBRTC_SDP_TYPE_OFFER, offer, &err, timeout_ms)) {
    if (error) *error = "set-remote-description(offer): " + err;
    return false;
  }
  GstStructure *reply = nullptr;
  if (!run_promise([&](GstPromise *p) { g_signal_emit_by_name(webrtc_, "create-answer", nullptr, p); }, &reply, &err,
                   timeout_ms) ||
      !reply) {
    if (error) *error = "create-answer: " + (err.empty() ? std::string("no reply") : err);
    return false;
  }
  GstWebRTCSessionDescription *desc = nullptr;
  gst_structure_get(reply, "answer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &desc, nullptr);
  gst_structure_free(reply);
  if (!desc) {
    if (error) *error = "create-answer: no answer in the reply";
    return false;
  }
  bool ok = run_promise(
      [&](GstPromise *p) { g_signal_emit_by_name(webrtc_, "set-local-description", desc, p); }, nullptr, &err,
      timeout_ms);
  gst_webrtc_session_description_free(desc);
  if (!ok) {
    if (error) *error = "set-local-description(answer): " + err;
    return false;
  }
  // Non-trickle: the answer Meta gets must carry the candidates (whatsapp-calling.md §6 pitfall 6).
  if (!wait_gathered(timeout_ms)) {
    if (error) *error = "ICE gathering did not complete";
    return false;
  }
  *answer = local_description();
  watch_rtp();
  return true;
}

bool WebrtcBridge::create_offer(std::string *offer, std::string *error, int timeout_ms) {
  std::string err;
  GstStructure *reply = nullptr;
  if (!run_promise([&](GstPromise *p) { g_signal_emit_by_name(webrtc_, "create-offer", nullptr, p); }, &reply, &err,
                   timeout_ms) ||
      !reply) {
    if (error) *error = "create-offer: " + (err.empty() ? std::string("no reply") : err);
    return false;
  }
  GstWebRTCSessionDescription *desc = nullptr;
  gst_structure_get(reply, "offer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &desc, nullptr);
  gst_structure_free(reply);
  if (!desc) {
    if (error) *error = "create-offer: no offer in the reply";
    return false;
  }
  bool ok = run_promise(
      [&](GstPromise *p) { g_signal_emit_by_name(webrtc_, "set-local-description", desc, p); }, nullptr, &err,
      timeout_ms);
  gst_webrtc_session_description_free(desc);
  if (!ok) {
    if (error) *error = "set-local-description(offer): " + err;
    return false;
  }
  if (!wait_gathered(timeout_ms)) {
    if (error) *error = "ICE gathering did not complete";
    return false;
  }
  *offer = local_description();
  return true;
}

bool WebrtcBridge::apply_answer(const std::string &answer, std::string *error, int timeout_ms) {
  std::string err;
  if (!set_description(false, GST_WEBRTC_SDP_TYPE_ANSWER, answer, &err, timeout_ms)) {
    if (error) *error = "set-remote-description(answer): " + err;
    return false;
  }
  watch_rtp();
  return true;
}

void WebrtcBridge::watch_rtp() {
  GstElement *rtpbin = gst_bin_get_by_name(GST_BIN(webrtc_), "rtpbin");
  if (!rtpbin) return;
  GstPad *pad = gst_element_get_static_pad(rtpbin, "recv_rtp_sink_0");
  if (pad) {
    gst_pad_add_probe(pad, (GstPadProbeType)(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
                      &Shared::on_rtp, shared_.get(), nullptr);
    gst_object_unref(pad);
    std::lock_guard<std::mutex> lock(shared_->mutex);
    shared_->wire.watching = true;
  }
  gst_object_unref(rtpbin);
}

GstWebRTCICEConnectionState WebrtcBridge::ice_state() const {
  GstWebRTCICEConnectionState s = GST_WEBRTC_ICE_CONNECTION_STATE_NEW;
  if (webrtc_) g_object_get(webrtc_, "ice-connection-state", &s, nullptr);
  return s;
}

GstWebRTCPeerConnectionState WebrtcBridge::connection_state() const {
  GstWebRTCPeerConnectionState s = GST_WEBRTC_PEER_CONNECTION_STATE_NEW;
  if (webrtc_) g_object_get(webrtc_, "connection-state", &s, nullptr);
  return s;
}

bool WebrtcBridge::ice_controlling() const {
  gboolean controlling = FALSE;
  GstWebRTCICE *ice = nullptr;
  g_object_get(webrtc_, "ice-agent", &ice, nullptr);
  if (!ice) return false;
  GObject *agent = nullptr;
  g_object_get(ice, "agent", &agent, nullptr);
  if (agent) {
    g_object_get(agent, "controlling-mode", &controlling, nullptr);
    g_object_unref(agent);
  }
  gst_object_unref(ice);
  return controlling;
}

bool WebrtcBridge::dtls_client() const {
  gboolean client = FALSE;
  GstWebRTCRTPTransceiver *trans = nullptr;
  g_signal_emit_by_name(webrtc_, "get-transceiver", 0, &trans);
  if (!trans) return false;
  GstWebRTCRTPSender *sender = nullptr;
  g_object_get(trans, "sender", &sender, nullptr);
  if (sender) {
    GstWebRTCDTLSTransport *transport = nullptr;
    g_object_get(sender, "transport", &transport, nullptr);
    if (transport) {
      g_object_get(transport, "client", &client, nullptr);
      gst_object_unref(transport);
    }
    gst_object_unref(sender);
  }
  gst_object_unref(trans);
  return client;
}

std::vector<int16_t> WebrtcBridge::received() const {
  if (!shared_) return {};
  std::lock_guard<std::mutex> lock(shared_->mutex);
  return shared_->received;
}

WireStats WebrtcBridge::wire() const {
  if (!shared_) return {};
  std::lock_guard<std::mutex> lock(shared_->mutex);
  return shared_->wire;
}

void WebrtcBridge::stop() {
  if (shared_) shared_->alive = false;
  if (pipeline_) {
    gst_element_set_state(pipeline_, GST_STATE_NULL);
    gst_object_unref(pipeline_);
    pipeline_ = nullptr;
    webrtc_ = nullptr;
  }
  // Posted work that never ran still holds the shared state; run it down (it does nothing now).
  while (g_main_context_iteration(ctx_, FALSE)) {
  }
}

}  // namespace test_bridge
