#include "call.h"

#include <cstring>
#include <mutex>

#include <gst/sdp/sdp.h>
#include <gst/webrtc/webrtc.h>

#include "dtmf.h"
#include "log.h"
#include "metrics.h"
#include "openairealtimesink.h"
#include "openairealtimesrc.h"
#include "vbopusdec.h"
#include "vbopusenc.h"
#include "webrtc-stats.h"

namespace vb {

const char *call_state_name(CallState state) {
  switch (state) {
    case CallState::Connecting: return "connecting";
    case CallState::Active: return "active";
    case CallState::Ending: return "ending";
    case CallState::Ended: return "ended";
  }
  return "unknown";
}

namespace {

// Heap-held weak reference handed to GLib/GStreamer callbacks: a callback that fires after the call
// is gone finds nothing and returns.
using WeakCall = std::weak_ptr<Call>;
void free_weak(gpointer data) { delete static_cast<WeakCall *>(data); }
void free_weak_closure(gpointer data, GClosure *) { delete static_cast<WeakCall *>(data); }

std::string rfc3339(gint64 real_us) {
  GDateTime *dt = g_date_time_new_from_unix_utc(real_us / G_USEC_PER_SEC);
  gchar *s = g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ");
  std::string out(s);
  g_free(s);
  g_date_time_unref(dt);
  return out;
}

GstElement *make(const char *factory, const char *name) {
  GstElement *e = gst_element_factory_make(factory, name);
  if (!e) log_line(LogLevel::Error, std::string("GStreamer element '") + factory + "' is missing");
  return e;
}

// The audio bandwidth the caller's decoder will play (the offer's maxplaybackrate), as the Opus
// encoder's maximum bandwidth. The encoder takes the model's 24 kHz as it is: a resampler to the
// caller's rate would emit a little less than 20 ms first (its filter delay), so every Opus frame
// would straddle two src buffers and wait 20 ms for the next one (bench/RESULTS.md §2).
const char *opus_bandwidth_for(int max_playback_rate) {
  if (max_playback_rate <= 8000) return "narrowband";
  if (max_playback_rate <= 12000) return "mediumband";
  if (max_playback_rate <= 16000) return "wideband";
  return "superwideband";  // 24 kHz input carries up to 12 kHz
}

}  // namespace

struct Call::Impl {
  std::string session_name;
  GstElement *pipeline = nullptr;
  GstElement *webrtc = nullptr;
  GstElement *rt_src = nullptr;
  GstElement *send_tail = nullptr;  // last element of the send chain, linked to webrtcbin's sink pad
  guint bus_watch = 0;
  guint stats_timer = 0;
  guint gather_timer = 0;
  guint max_timer = 0;
  int opus_pt = 111;
  int dtmf_pt = -1;
  bool answered = false;
  bool media_allowed = true;
  // The caller's audio reaches the model only once media is allowed too: before WhatsApp's accept,
  // a caller's early words would barge in on the queued greeting.
  std::atomic<bool> caller_audio_open{true};
  bool sending = false;         // the src runs (linked and allowed)
  bool first_audio_seen = false;
  bool ice_controlling = false;
  bool dtls_client = false;
  std::vector<std::string> remote_fingerprints;  // "sha-256 AA:…" from the peer's SDP
  std::mutex lock;              // send_linked, receive_linked (set on webrtcbin threads)
  bool send_linked = false;
  bool receive_linked = false;
  DtmfDetector dtmf;            // streaming thread only
  std::atomic<unsigned long long> rtp_seen{0};
  unsigned long long rtp_seen_last = 0;
  gint64 rtp_last_change_us = 0;
  unsigned long long stats_rx_reported = 0;
  long long stats_lost_reported = 0;
  unsigned long long underruns_reported = 0;
  gulong rtp_probe = 0;
  GstPad *rtp_probe_pad = nullptr;
};

Call::Call(const Config &config, CallOptions options, std::string realtime_url, EndedCallback on_ended)
    : config_(config), options_(std::move(options)), realtime_url_(std::move(realtime_url)),
      on_ended_(std::move(on_ended)), impl_(new Impl()) {
  created_us_ = g_get_monotonic_time();
  created_real_us_ = g_get_real_time();
  impl_->session_name = "call-" + options_.call_id;
  impl_->media_allowed = !options_.hold_media;
  impl_->caller_audio_open = !options_.hold_media;
  impl_->rtp_last_change_us = created_us_;
}

Call::~Call() {
  // end() tears down on the main context; this only catches a call dropped without end().
  if (impl_->pipeline) teardown();
}

void Call::on_main(std::function<void(Call &)> fn) {
  struct Task {
    WeakCall call;
    std::function<void(Call &)> fn;
  };
  GSource *source = g_idle_source_new();
  g_source_set_callback(
      source,
      [](gpointer data) -> gboolean {
        auto *task = static_cast<Task *>(data);
        if (auto call = task->call.lock()) task->fn(*call);
        return G_SOURCE_REMOVE;
      },
      new Task{weak_from_this(), std::move(fn)}, [](gpointer data) { delete static_cast<Task *>(data); });
  g_source_attach(source, g_main_context_default());
  g_source_unref(source);
}

double Call::duration_s() const {
  gint64 end = ended_us_ ? ended_us_ : g_get_monotonic_time();
  return (end - created_us_) / 1e6;
}

// ---------------------------------------------------------------------------------------------
// Pipeline

bool Call::build_pipeline(const OfferInfo &offer, std::string *error) {
  Impl &d = *impl_;
  d.opus_pt = offer.opus_pt;
  d.dtmf_pt = offer.telephone_event_pt;
  d.remote_fingerprints = offer.fingerprints;
  d.pipeline = gst_pipeline_new(d.session_name.c_str());
  d.webrtc = make("webrtcbin", "webrtc");
  GstElement *encoder = GST_ELEMENT(g_object_new(GST_TYPE_VB_OPUS_ENC, "name", "send-encoder", nullptr));
  GstElement *payloader = make("rtpopuspay", "send-payloader");
  GstElement *rtp_filter = make("capsfilter", "send-rtp-format");
  if (!d.webrtc || !encoder || !payloader || !rtp_filter) {
    *error = "a required GStreamer element is missing (install gstreamer1.0-plugins-bad, -good, -base and -nice)";
    for (GstElement *e : {d.webrtc, encoder, payloader, rtp_filter})
      if (e) gst_object_unref(e);
    d.webrtc = nullptr;
    return false;
  }
  // Elements are made by type, not by factory name, so the app never loads a second copy of the
  // plugin from GST_PLUGIN_PATH.
  d.rt_src = GST_ELEMENT(g_object_new(GST_TYPE_OPENAI_REALTIME_SRC, "name", "realtime-src", nullptr));

  g_object_set(d.webrtc, "bundle-policy", GST_WEBRTC_BUNDLE_POLICY_MAX_BUNDLE, "latency",
               (guint)config_.jitter_latency_ms, nullptr);
  if (!config_.stun_server.empty()) g_object_set(d.webrtc, "stun-server", config_.stun_server.c_str(), nullptr);
  if (!config_.turn_server.empty()) g_object_set(d.webrtc, "turn-server", config_.turn_server.c_str(), nullptr);

  // The Realtime session. The src configures it; the sink, added when media arrives, joins by name.
  const std::string &instructions = options_.instructions.empty() ? config_.instructions : options_.instructions;
  const std::string &voice = options_.voice.empty() ? config_.voice : options_.voice;
  const std::string &model = options_.model.empty() ? config_.model : options_.model;
  const std::string &greeting = options_.greeting.empty() ? config_.greeting : options_.greeting;
  g_object_set(d.rt_src, "session", d.session_name.c_str(), "url", realtime_url_.c_str(), "model", model.c_str(),
               "voice", voice.c_str(), "instructions", instructions.c_str(), "transcription-model",
               config_.transcription_model.c_str(), "greeting", greeting.c_str(), nullptr);
  if (!config_.api_key.empty()) g_object_set(d.rt_src, "api-key", config_.api_key.c_str(), nullptr);
  if (!options_.tools_json.empty()) g_object_set(d.rt_src, "tools", options_.tools_json.c_str(), nullptr);
  gst_util_set_object_arg(G_OBJECT(d.rt_src), "noise-reduction", "near-field");

  // Opus as the offer asks: its audio bandwidth, its bitrate, in-band FEC, 20 ms frames; tuned for
  // speech. No DTX: WhatsApp hangs up on a business leg that stops sending packets. vbopusenc is
  // opusenc's settings over libopus's single-stream API (cheaper: bench/RESULTS.md §3).
  int bitrate = offer.max_average_bitrate > 0 ? offer.max_average_bitrate : 24000;
  g_object_set(encoder, "bitrate", std::max(6000, std::min(bitrate, 64000)), "inband-fec", TRUE,
               "packet-loss-percentage", 10, "complexity", config_.opus_complexity, "dtx", FALSE, nullptr);
  gst_util_set_object_arg(G_OBJECT(encoder), "audio-type", "voice");
  gst_util_set_object_arg(G_OBJECT(encoder), "frame-size", "20");
  gst_util_set_object_arg(G_OBJECT(encoder), "bandwidth", opus_bandwidth_for(offer.max_playback_rate));
  // webrtcbin 1.22 never rewrites the payload type: send the offer's.
  g_object_set(payloader, "pt", (guint)d.opus_pt, nullptr);
  GstCaps *rtp = gst_caps_new_simple("application/x-rtp", "media", G_TYPE_STRING, "audio", "encoding-name",
                                     G_TYPE_STRING, "OPUS", "clock-rate", G_TYPE_INT, 48000, "payload", G_TYPE_INT,
                                     d.opus_pt, nullptr);
  g_object_set(rtp_filter, "caps", rtp, nullptr);
  gst_caps_unref(rtp);

  gst_bin_add_many(GST_BIN(d.pipeline), d.webrtc, d.rt_src, encoder, payloader, rtp_filter, nullptr);
  if (!gst_element_link_many(d.rt_src, encoder, payloader, rtp_filter, nullptr)) {
    *error = "could not link the send chain";
    return false;
  }
  d.send_tail = rtp_filter;
  // The src runs only once its output reaches webrtcbin and the caller may hear it (see
  // maybe_start_sending). Locked in PAUSED it has already opened the Realtime session.
  gst_element_set_locked_state(d.rt_src, TRUE);
  gst_element_set_state(d.rt_src, GST_STATE_PAUSED);

  // A sendrecv transceiver before set-remote-description: webrtcbin 1.22 otherwise answers recvonly
  // (docs/gstreamer-1.22-notes.md §1.4, method A). Minimal caps, no sprop-* fields.
  GstCaps *prefs = gst_caps_new_simple("application/x-rtp", "media", G_TYPE_STRING, "audio", "encoding-name",
                                       G_TYPE_STRING, "OPUS", "clock-rate", G_TYPE_INT, 48000, "payload", G_TYPE_INT,
                                       d.opus_pt, nullptr);
  if (options_.direction == Direction::Outbound) {
    // Our offer states what we send and want: WhatsApp's format (fmtp comes from these fields).
    gst_caps_set_simple(prefs, "encoding-params", G_TYPE_STRING, "2", "minptime", G_TYPE_STRING, "20",
                        "useinbandfec", G_TYPE_STRING, "1", "maxplaybackrate", G_TYPE_STRING, "16000",
                        "maxaveragebitrate", G_TYPE_STRING, "20000", nullptr);
  }
  GstWebRTCRTPTransceiver *transceiver = nullptr;
  g_signal_emit_by_name(d.webrtc, "add-transceiver", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_SENDRECV, prefs,
                        &transceiver);
  gst_caps_unref(prefs);
  if (transceiver) gst_object_unref(transceiver);

  configure_ice();

  auto weak = [this] { return new WeakCall(weak_from_this()); };
  g_signal_connect_data(d.webrtc, "pad-added", G_CALLBACK(&Call::on_pad_added), weak(), free_weak_closure,
                        (GConnectFlags)0);
  g_signal_connect_data(d.webrtc, "notify::ice-gathering-state", G_CALLBACK(&Call::on_gathering_state), weak(),
                        free_weak_closure, (GConnectFlags)0);
  g_signal_connect_data(d.webrtc, "notify::ice-connection-state", G_CALLBACK(&Call::on_connection_state), weak(),
                        free_weak_closure, (GConnectFlags)0);
  g_signal_connect_data(d.webrtc, "notify::connection-state", G_CALLBACK(&Call::on_connection_state), weak(),
                        free_weak_closure, (GConnectFlags)0);

  GstBus *bus = gst_pipeline_get_bus(GST_PIPELINE(d.pipeline));
  d.bus_watch = gst_bus_add_watch_full(bus, G_PRIORITY_DEFAULT, &Call::on_bus, weak(), free_weak);
  gst_object_unref(bus);
  return true;
}

void Call::configure_ice() {
  Impl &d = *impl_;
  GstWebRTCICE *ice = nullptr;
  g_object_get(d.webrtc, "ice-agent", &ice, nullptr);
  if (!ice) return;
  // UDP only (WhatsApp offers UDP); ICE-TCP candidates are noise in the answer.
  g_object_set(ice, "ice-tcp", FALSE, nullptr);
  if (config_.rtp_port_min > 0)
    g_object_set(ice, "min-rtp-port", (guint)config_.rtp_port_min, "max-rtp-port", (guint)config_.rtp_port_max,
                 nullptr);
  for (const auto &address : config_.ice_addresses) {
    gboolean ok = FALSE;
    g_signal_emit_by_name(ice, "add-local-ip-address", address.c_str(), &ok);
    if (!ok) log_event(LogLevel::Warning, "ICE_ADDRESS_REJECTED", id(), "libnice refused an ICE address", {{"address", address}});
  }
  GObject *agent = nullptr;
  g_object_get(ice, "agent", &agent, nullptr);
  if (agent) {
    // UPnP costs ~200 ms of gathering and is useless on servers. More STUN retransmissions keep our
    // checks alive until an ice-lite peer (WhatsApp) has our answer.
    g_object_set(agent, "upnp", FALSE, "stun-max-retransmissions", 7u, nullptr);
    g_object_unref(agent);
  }
  gst_object_unref(ice);
}

// ---------------------------------------------------------------------------------------------
// Negotiation (inbound: the caller offers, we answer)

void Call::start_inbound(const std::string &offer_sdp, const OfferInfo &offer, AnswerCallback done) {
  answer_done_ = std::move(done);
  log_event(LogLevel::Info, "CALL_CREATED", id(), "call created",
            {{"direction", options_.direction == Direction::Inbound ? "inbound" : "outbound"},
             {"opus_pt", offer.opus_pt},
             {"dtmf_pt", offer.telephone_event_pt},
             {"ice_lite", offer.ice_lite}});
  std::string error;
  if (!build_pipeline(offer, &error)) {
    fail_answer(500, "internal_error", error);
    return;
  }
  if (gst_element_set_state(impl_->pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    fail_answer(500, "internal_error", "the call's pipeline failed to start");
    return;
  }
  std::string prepared = prepare_offer(offer_sdp);
  GstSDPMessage *sdp = nullptr;
  gst_sdp_message_new_from_text(prepared.c_str(), &sdp);
  GstWebRTCSessionDescription *desc = gst_webrtc_session_description_new(GST_WEBRTC_SDP_TYPE_OFFER, sdp);

  GstPromise *promise =
      gst_promise_new_with_change_func(&Call::on_remote_set, new WeakCall(weak_from_this()), free_weak);
  g_signal_emit_by_name(impl_->webrtc, "set-remote-description", desc, promise);
  gst_webrtc_session_description_free(desc);

  start_timers();
}

void Call::start_timers() {
  // Answer with what was gathered if gathering does not complete in time (e.g. a slow STUN server).
  auto *weak = new WeakCall(weak_from_this());
  impl_->gather_timer = g_timeout_add_full(
      G_PRIORITY_DEFAULT, (guint)config_.gather_timeout_ms,
      [](gpointer data) -> gboolean {
        if (auto self = static_cast<WeakCall *>(data)->lock()) {
          self->impl_->gather_timer = 0;
          GstWebRTCSessionDescription *local = nullptr;
          g_object_get(self->impl_->webrtc, "local-description", &local, nullptr);
          if (local) {
            gchar *text = gst_sdp_message_as_text(local->sdp);
            log_event(LogLevel::Warning, "ICE_GATHERING_TIMEOUT", self->id(),
                      "ICE gathering did not complete in time; using the candidates gathered so far");
            self->on_local_description(text);
            g_free(text);
            gst_webrtc_session_description_free(local);
          } else {
            self->fail_answer(500, "negotiation_failed", "no local description after the gathering timeout");
          }
        }
        return G_SOURCE_REMOVE;
      },
      weak, free_weak);

  // Calls end by themselves at the maximum length.
  impl_->max_timer = g_timeout_add_seconds_full(
      G_PRIORITY_DEFAULT, (guint)config_.max_call_s,
      [](gpointer data) -> gboolean {
        if (auto self = static_cast<WeakCall *>(data)->lock()) {
          self->impl_->max_timer = 0;
          self->end("max_duration");
        }
        return G_SOURCE_REMOVE;
      },
      new WeakCall(weak_from_this()), free_weak);
  impl_->stats_timer = g_timeout_add_full(
      G_PRIORITY_DEFAULT, 1000,
      [](gpointer data) -> gboolean {
        auto self = static_cast<WeakCall *>(data)->lock();
        if (!self) return G_SOURCE_REMOVE;
        self->poll_stats();
        return G_SOURCE_CONTINUE;
      },
      new WeakCall(weak_from_this()), free_weak);
}

void Call::on_answer_created(GstPromise *promise, gpointer data) {
  auto self = static_cast<WeakCall *>(data)->lock();
  const GstStructure *reply = gst_promise_get_reply(promise);
  GError *err = nullptr;
  GstWebRTCSessionDescription *answer = nullptr;
  if (reply && gst_structure_has_field(reply, "error")) gst_structure_get(reply, "error", G_TYPE_ERROR, &err, nullptr);
  if (reply && !err && gst_structure_has_field(reply, "answer")) gst_structure_get(reply, "answer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &answer, nullptr);
  if (self && !err && answer) {
    gchar *text = gst_sdp_message_as_text(answer->sdp);
    std::string direction = audio_direction(text);
    g_free(text);
    if (direction != "sendrecv") {
      // The 1.22 pitfall: a silently one-way answer. Fail loudly instead of carrying a mute call.
      self->on_main([direction](Call &c) {
        c.fail_answer(500, "negotiation_failed",
                      "webrtcbin produced a '" + direction + "' answer instead of sendrecv; the caller would hear nothing");
      });
    } else {
      g_signal_emit_by_name(self->impl_->webrtc, "set-local-description", answer, nullptr);
    }
  } else if (self) {
    std::string message = err ? err->message : "webrtcbin could not create an answer";
    self->on_main([message](Call &c) { c.fail_answer(400, "invalid_sdp", message); });
  }
  if (answer) gst_webrtc_session_description_free(answer);
  g_clear_error(&err);
  gst_promise_unref(promise);
}
void Call::on_remote_set(GstPromise *promise, gpointer data) {
  auto *weak = static_cast<WeakCall *>(data);
  auto self = weak->lock();
  const GstStructure *reply = gst_promise_get_reply(promise);
  GError *err = nullptr;
  if (reply && gst_structure_has_field(reply, "error")) gst_structure_get(reply, "error", G_TYPE_ERROR, &err, nullptr);
  if (self && err) {
    std::string message = err->message;
    self->on_main([message](Call &c) { c.fail_answer(400, "invalid_sdp", message); });
  } else if (self) {
    // Chained on webrtcbin's thread: emitting the next action here only queues a task.
    GstPromise *next = gst_promise_new_with_change_func(&Call::on_answer_created, new WeakCall(*weak), free_weak);
    g_signal_emit_by_name(self->impl_->webrtc, "create-answer", nullptr, next);
  }
  g_clear_error(&err);
  gst_promise_unref(promise);
}

void Call::on_gathering_state(GstElement *webrtc, GParamSpec *, gpointer user_data) {
  GstWebRTCICEGatheringState state;
  g_object_get(webrtc, "ice-gathering-state", &state, nullptr);
  if (state != GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE) return;
  auto self = static_cast<WeakCall *>(user_data)->lock();
  if (!self) return;
  // 1.22 merges every gathered candidate into the local description before reporting COMPLETE.
  self->on_main([](Call &c) {
    if (c.ending_ || !c.impl_->webrtc) return;  // ended while gathering
    GstWebRTCSessionDescription *local = nullptr;
    g_object_get(c.impl_->webrtc, "local-description", &local, nullptr);
    if (!local) return;
    gchar *text = gst_sdp_message_as_text(local->sdp);
    c.on_local_description(text);
    g_free(text);
    gst_webrtc_session_description_free(local);
  });
}

void Call::on_local_description(const std::string &sdp) {
  if (options_.direction == Direction::Outbound)
    on_offer_ready(sdp);
  else
    on_answer_ready(sdp);
}

void Call::on_answer_ready(const std::string &answer_sdp) {
  Impl &d = *impl_;
  if (d.answered || state_ != CallState::Connecting) return;
  d.answered = true;
  if (d.gather_timer) {
    g_source_remove(d.gather_timer);
    d.gather_timer = 0;
  }
  AnswerFixups fixups;
  fixups.telephone_event_pt = d.dtmf_pt;
  fixups.public_ip = config_.public_ip;
  std::string answer = finalize_answer(answer_sdp, fixups);
  double setup_s = (g_get_monotonic_time() - created_us_) / 1e6;
  Metrics::get().observe_call_setup(setup_s);
  log_event(LogLevel::Info, "CALL_ANSWERED", id(), "answer ready",
            {{"setup_ms", setup_s * 1000}, {"candidates", count_candidates(answer)}});

  watch_caller_rtp();
  log_roles();

  if (answer_done_) {
    auto done = std::move(answer_done_);
    answer_done_ = nullptr;
    done(true, 201, answer, "");
  }
}

void Call::watch_caller_rtp() {
  Impl &d = *impl_;
  if (d.rtp_probe) return;
  // Caller RTP, after SRTP, before the jitter buffer: DTMF (RFC 4733) is read here because
  // webrtcbin 1.22 drops telephone-event from its negotiation, and every packet counts as media
  // for the no-media timeout.
  GstElement *rtpbin = gst_bin_get_by_name(GST_BIN(d.webrtc), "rtpbin");
  if (rtpbin) {
    d.rtp_probe_pad = gst_element_get_static_pad(rtpbin, "recv_rtp_sink_0");
    if (d.rtp_probe_pad)
      d.rtp_probe = gst_pad_add_probe(d.rtp_probe_pad,
                                      (GstPadProbeType)(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
                                      &Call::on_rtp_probe, new WeakCall(weak_from_this()), free_weak);
    gst_object_unref(rtpbin);
  }
  if (!d.rtp_probe)
    log_event(LogLevel::Warning, "CALL_NO_RTP_PROBE", id(), "could not watch caller RTP (DTMF disabled)");
}

void Call::fail_answer(int status, const std::string &code, const std::string &message) {
  // webrtcbin reports its own shutdown as a negotiation error: not a failure of the offer.
  if (ending_) return;
  log_event(LogLevel::Error, "CALL_SETUP_FAILED", id(), message, {{"code", code}});
  if (answer_done_) {
    auto done = std::move(answer_done_);
    answer_done_ = nullptr;
    done(false, status, code, message);
  }
  end("setup_failed");
}

// ---------------------------------------------------------------------------------------------
// Negotiation (outbound: we offer, the callee answers; WhatsApp business-initiated calls)

OfferInfo Call::outbound_offer_info() {
  // What we offer: Opus at WhatsApp's 16 kHz audio bandwidth and 20 kbit/s, FEC, and DTMF.
  OfferInfo o;
  o.opus_pt = 111;
  o.telephone_event_pt = 126;
  o.max_playback_rate = 16000;
  o.max_average_bitrate = 20000;
  o.use_inband_fec = true;
  return o;
}

void Call::start_outbound(AnswerCallback done) {
  answer_done_ = std::move(done);
  OfferInfo offer = outbound_offer_info();
  log_event(LogLevel::Info, "CALL_CREATED", id(), "call created", {{"direction", "outbound"}});
  std::string error;
  if (!build_pipeline(offer, &error)) {
    fail_answer(500, "internal_error", error);
    return;
  }
  if (gst_element_set_state(impl_->pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    fail_answer(500, "internal_error", "the call's pipeline failed to start");
    return;
  }
  GstPromise *promise =
      gst_promise_new_with_change_func(&Call::on_offer_created, new WeakCall(weak_from_this()), free_weak);
  g_signal_emit_by_name(impl_->webrtc, "create-offer", nullptr, promise);
  start_timers();
}

void Call::on_offer_created(GstPromise *promise, gpointer data) {
  auto self = static_cast<WeakCall *>(data)->lock();
  const GstStructure *reply = gst_promise_get_reply(promise);
  GstWebRTCSessionDescription *offer = nullptr;
  if (reply && gst_structure_has_field(reply, "offer"))
    gst_structure_get(reply, "offer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &offer, nullptr);
  if (self && offer) {
    // Gathering starts here; the offer is sent once it is complete (no trickle).
    g_signal_emit_by_name(self->impl_->webrtc, "set-local-description", offer, nullptr);
  } else if (self) {
    self->on_main([](Call &c) { c.fail_answer(500, "negotiation_failed", "webrtcbin could not create an offer"); });
  }
  if (offer) gst_webrtc_session_description_free(offer);
  gst_promise_unref(promise);
}

void Call::on_offer_ready(const std::string &offer_sdp) {
  Impl &d = *impl_;
  if (d.answered || state_ != CallState::Connecting) return;
  d.answered = true;
  if (d.gather_timer) {
    g_source_remove(d.gather_timer);
    d.gather_timer = 0;
  }
  std::string offer = finalize_offer(offer_sdp, config_.public_ip, d.dtmf_pt);
  log_event(LogLevel::Info, "CALL_OFFER_READY", id(), "offer ready",
            {{"setup_ms", (g_get_monotonic_time() - created_us_) / 1000.0}, {"candidates", count_candidates(offer)}});
  if (answer_done_) {
    auto done = std::move(answer_done_);
    answer_done_ = nullptr;
    done(true, 201, offer, "");
  }
}

void Call::apply_answer(const std::string &answer_sdp, std::function<void(bool, const std::string &)> done) {
  if (state_ == CallState::Ending || state_ == CallState::Ended || !impl_->webrtc) {
    done(false, "the call has ended");
    return;
  }
  std::string prepared = prepare_offer(answer_sdp);  // the same text fix-ups apply to answers
  GstSDPMessage *sdp = nullptr;
  if (gst_sdp_message_new_from_text(prepared.c_str(), &sdp) != GST_SDP_OK || !sdp) {
    if (sdp) gst_sdp_message_free(sdp);
    done(false, "the answer is not an SDP");
    return;
  }
  OfferInfo answer_info;
  std::string code, message;
  if (inspect_offer(prepared, &answer_info, &code, &message)) impl_->remote_fingerprints = answer_info.fingerprints;
  GstWebRTCSessionDescription *desc = gst_webrtc_session_description_new(GST_WEBRTC_SDP_TYPE_ANSWER, sdp);
  struct Pending {
    WeakCall call;
    std::function<void(bool, const std::string &)> done;
  };
  GstPromise *promise = gst_promise_new_with_change_func(
      [](GstPromise *p, gpointer data) {
        auto *pending = static_cast<Pending *>(data);
        const GstStructure *reply = gst_promise_get_reply(p);
        GError *err = nullptr;
        if (reply && gst_structure_has_field(reply, "error")) gst_structure_get(reply, "error", G_TYPE_ERROR, &err, nullptr);
        std::string error = err ? err->message : "";
        g_clear_error(&err);
        if (auto self = pending->call.lock()) {
          auto done = pending->done;
          self->on_main([done, error](Call &c) {
            if (error.empty()) {
              c.watch_caller_rtp();
              c.log_roles();
            }
            done(error.empty(), error);
          });
        }
        gst_promise_unref(p);
      },
      new Pending{weak_from_this(), std::move(done)}, [](gpointer data) { delete static_cast<Pending *>(data); });
  g_signal_emit_by_name(impl_->webrtc, "set-remote-description", desc, promise);
  gst_webrtc_session_description_free(desc);
}

void Call::log_roles() {
  // WhatsApp is ICE-lite and always controlled: we must control, and be the DTLS server when Meta
  // answers a=setup:active (business-initiated) or the client when we answer active (user-initiated).
  Impl &d = *impl_;
  gboolean controlling = FALSE, dtls_client = FALSE;
  GstWebRTCICE *ice = nullptr;
  g_object_get(d.webrtc, "ice-agent", &ice, nullptr);
  if (ice) {
    GObject *agent = nullptr;
    g_object_get(ice, "agent", &agent, nullptr);
    if (agent) {
      g_object_get(agent, "controlling-mode", &controlling, nullptr);
      g_object_unref(agent);
    }
    gst_object_unref(ice);
  }
  GstWebRTCRTPTransceiver *trans = nullptr;
  g_signal_emit_by_name(d.webrtc, "get-transceiver", 0, &trans);
  if (trans) {
    GstWebRTCRTPSender *sender = nullptr;
    g_object_get(trans, "sender", &sender, nullptr);
    if (sender) {
      GstWebRTCDTLSTransport *transport = nullptr;
      g_object_get(sender, "transport", &transport, nullptr);
      if (transport) {
        g_object_get(transport, "client", &dtls_client, nullptr);
        gst_object_unref(transport);
      }
      gst_object_unref(sender);
    }
    gst_object_unref(trans);
  }
  d.ice_controlling = controlling;
  d.dtls_client = dtls_client;
  log_event(LogLevel::Info, "CALL_ROLES", id(), "negotiated roles",
            {{"ice_role", controlling ? "controlling" : "controlled"}, {"dtls_role", dtls_client ? "client" : "server"}});
}

// ---------------------------------------------------------------------------------------------
// Media

void Call::on_pad_added(GstElement *, GstPad *pad, gpointer user_data) {
  auto self = static_cast<WeakCall *>(user_data)->lock();
  if (!self || self->ending_) return;
  Impl &d = *self->impl_;
  if (GST_PAD_DIRECTION(pad) == GST_PAD_SINK) {
    // webrtcbin made the sink pad of our transceiver (after set-local-description): feed it.
    GstPad *src = gst_element_get_static_pad(d.send_tail, "src");
    if (!gst_pad_is_linked(src) && gst_pad_link(src, pad) != GST_PAD_LINK_OK)
      log_event(LogLevel::Error, "CALL_LINK_FAILED", self->id(), "could not link the send chain to webrtcbin");
    gst_object_unref(src);
    {
      std::lock_guard<std::mutex> lock(d.lock);
      d.send_linked = true;
    }
    self->on_main([](Call &c) { c.allow_media_internal(); });
    return;
  }
  {
    std::lock_guard<std::mutex> lock(d.lock);
    if (d.receive_linked) return;  // one audio stream per call
    d.receive_linked = true;
  }
  // The caller's audio: decoded straight to the model's 24 kHz mono (libopus decodes at any of its
  // rates, so no converter or resampler is needed). vbopusdec decodes each packet at once and uses
  // the next packet's FEC only for a lost one (opusdec holds every packet 20 ms for that), over
  // libopus's single-stream API (GStreamer's multistream calls cost CPUID traps in VMs:
  // bench/RESULTS.md §3). No queue: this already runs on the jitter buffer's thread.
  GstElement *depay = gst_element_factory_make("rtpopusdepay", "receive-depayloader");
  GstElement *decoder = GST_ELEMENT(g_object_new(GST_TYPE_VB_OPUS_DEC, "name", "receive-decoder", nullptr));
  GstElement *format = gst_element_factory_make("capsfilter", "receive-format");
  GstElement *sink = GST_ELEMENT(g_object_new(GST_TYPE_OPENAI_REALTIME_SINK, "name", "realtime-sink", "session",
                                              d.session_name.c_str(), nullptr));
  g_object_set(decoder, "plc", TRUE, "use-inband-fec", TRUE, nullptr);
  GstCaps *caps = gst_caps_from_string("audio/x-raw,format=S16LE,rate=24000,channels=1,layout=interleaved");
  g_object_set(format, "caps", caps, nullptr);
  gst_caps_unref(caps);
  gst_bin_add_many(GST_BIN(d.pipeline), depay, decoder, format, sink, nullptr);
  gst_element_link_many(depay, decoder, format, sink, nullptr);
  for (GstElement *e : {sink, format, decoder, depay}) gst_element_sync_state_with_parent(e);
  GstPad *format_src = gst_element_get_static_pad(format, "src");
  gst_pad_add_probe(format_src, GST_PAD_PROBE_TYPE_BUFFER,
                    [](GstPad *, GstPadProbeInfo *, gpointer data) {
                      auto *open = static_cast<std::atomic<bool> *>(data);
                      return open->load(std::memory_order_relaxed) ? GST_PAD_PROBE_OK : GST_PAD_PROBE_DROP;
                    },
                    &d.caller_audio_open, nullptr);
  gst_object_unref(format_src);
  GstPad *depay_sink = gst_element_get_static_pad(depay, "sink");
  if (gst_pad_link(pad, depay_sink) != GST_PAD_LINK_OK)
    log_event(LogLevel::Error, "CALL_LINK_FAILED", self->id(), "could not link the caller's audio");
  gst_object_unref(depay_sink);
}

void Call::allow_media() {
  impl_->media_allowed = true;
  impl_->caller_audio_open = true;
  // The no-media timeout counts from here: a callee's phone that is still ringing sends nothing.
  impl_->rtp_last_change_us = g_get_monotonic_time();
  allow_media_internal();
}

void Call::allow_media_internal() {
  Impl &d = *impl_;
  bool linked;
  {
    std::lock_guard<std::mutex> lock(d.lock);
    linked = d.send_linked;
  }
  if (d.sending || !linked || !d.media_allowed || ending_) return;
  d.sending = true;
  // Start the src now, so its timestamps begin at the moment the caller can hear it.
  gst_element_set_locked_state(d.rt_src, FALSE);
  gst_element_sync_state_with_parent(d.rt_src);
  gst_element_post_message(d.rt_src, gst_message_new_latency(GST_OBJECT(d.rt_src)));
}

GstPadProbeReturn Call::on_rtp_probe(GstPad *, GstPadProbeInfo *info, gpointer user_data) {
  auto self = static_cast<WeakCall *>(user_data)->lock();
  if (!self) return GST_PAD_PROBE_OK;
  Impl &d = *self->impl_;
  auto inspect = [&](GstBuffer *buffer) -> bool {  // true: drop (a DTMF packet)
    d.rtp_seen.fetch_add(1, std::memory_order_relaxed);
    if (d.dtmf_pt < 0) return false;
    GstMapInfo map;
    if (!gst_buffer_map(buffer, &map, GST_MAP_READ)) return false;
    uint8_t pt = 0;
    uint32_t ts = 0;
    const uint8_t *payload = nullptr;
    size_t payload_len = 0;
    bool is_dtmf = parse_rtp(map.data, map.size, &pt, &ts, &payload, &payload_len) && pt == d.dtmf_pt;
    char digit = is_dtmf ? d.dtmf.push(ts, payload, payload_len) : 0;
    gst_buffer_unmap(buffer, &map);
    if (digit) self->on_main([digit](Call &c) { c.on_dtmf(digit); });
    return is_dtmf;
  };
  if (info->type & GST_PAD_PROBE_TYPE_BUFFER) {
    // The jitter buffer knows no clock rate for the telephone-event PT; keep those packets from it.
    return inspect(GST_PAD_PROBE_INFO_BUFFER(info)) ? GST_PAD_PROBE_DROP : GST_PAD_PROBE_OK;
  }
  GstBufferList *list = GST_PAD_PROBE_INFO_BUFFER_LIST(info);
  guint n = gst_buffer_list_length(list);
  for (guint i = 0; i < n; i++) inspect(gst_buffer_list_get(list, i));
  return GST_PAD_PROBE_OK;
}

void Call::on_dtmf(char digit) {
  if (state_ == CallState::Ending || state_ == CallState::Ended) return;
  std::string d(1, digit);
  log_event(LogLevel::Info, "CALL_DTMF", id(), "caller pressed a key", {{"digit", d}});
  gboolean ok = FALSE;
  std::string note = "(The caller pressed the key " + d + " on the phone keypad.)";
  g_signal_emit_by_name(impl_->rt_src, "add-text-item", "user", note.c_str(), &ok);
  Metrics::get().counter_add("voicebridge_dtmf_digits_total", {}, 1);
  for (auto ext : extensions_) ext->on_dtmf(*this, digit);
}

void Call::on_connection_state(GstElement *webrtc, GParamSpec *, gpointer user_data) {
  auto self = static_cast<WeakCall *>(user_data)->lock();
  if (!self) return;
  GstWebRTCICEConnectionState ice;
  GstWebRTCPeerConnectionState peer;
  g_object_get(webrtc, "ice-connection-state", &ice, "connection-state", &peer, nullptr);
  self->on_main([ice, peer](Call &c) { c.on_peer_state((int)ice, (int)peer); });
}

void Call::on_peer_state(int ice, int peer) {
  if (state_ == CallState::Ending || state_ == CallState::Ended) return;
  if (peer == GST_WEBRTC_PEER_CONNECTION_STATE_CONNECTED && state_ == CallState::Connecting) {
    on_media_connected();
  } else if (ice == GST_WEBRTC_ICE_CONNECTION_STATE_FAILED) {
    dump_graph("ice-failed");
    end("ice_failed");
  } else if (peer == GST_WEBRTC_PEER_CONNECTION_STATE_FAILED) {
    dump_graph("dtls-failed");
    end("dtls_failed");
  }
}

namespace {

// "AA:BB:…" of the SHA-256 of a PEM certificate's DER bytes.
std::string pem_sha256_fingerprint(const char *pem) {
  std::string body;
  bool inside = false;
  gchar **lines = g_strsplit(pem, "\n", -1);
  for (gchar **l = lines; *l; l++) {
    g_strstrip(*l);
    if (g_str_has_prefix(*l, "-----BEGIN CERTIFICATE")) inside = true;
    else if (g_str_has_prefix(*l, "-----END CERTIFICATE")) break;
    else if (inside) body += *l;
  }
  g_strfreev(lines);
  if (body.empty()) return "";
  gsize der_len = 0;
  guchar *der = g_base64_decode(body.c_str(), &der_len);
  GChecksum *sum = g_checksum_new(G_CHECKSUM_SHA256);
  g_checksum_update(sum, der, der_len);
  guint8 digest[32];
  gsize digest_len = sizeof digest;
  g_checksum_get_digest(sum, digest, &digest_len);
  g_checksum_free(sum);
  g_free(der);
  std::string out;
  char hex[4];
  for (gsize i = 0; i < digest_len; i++) {
    g_snprintf(hex, sizeof hex, i ? ":%02X" : "%02X", digest[i]);
    out += hex;
  }
  return out;
}

}  // namespace

bool Call::remote_certificate_matches() {
  // webrtcbin 1.22 does not compare the peer's DTLS certificate with the SDP fingerprint (found by
  // our WhatsApp-like test peer): without this check anyone on the path could terminate DTLS.
  Impl &d = *impl_;
  GstWebRTCRTPTransceiver *trans = nullptr;
  g_signal_emit_by_name(d.webrtc, "get-transceiver", 0, &trans);
  if (!trans) return false;
  std::string actual;
  GstWebRTCRTPSender *sender = nullptr;
  g_object_get(trans, "sender", &sender, nullptr);
  if (sender) {
    GstWebRTCDTLSTransport *transport = nullptr;
    g_object_get(sender, "transport", &transport, nullptr);
    if (transport) {
      gchar *pem = nullptr;
      g_object_get(transport, "remote-certificate", &pem, nullptr);
      if (pem) actual = pem_sha256_fingerprint(pem);
      g_free(pem);
      gst_object_unref(transport);
    }
    gst_object_unref(sender);
  }
  gst_object_unref(trans);
  if (actual.empty()) return false;
  for (const auto &fp : d.remote_fingerprints) {
    // "sha-256 AA:BB:…" (algorithm names and hex are case-insensitive)
    size_t space = fp.find(' ');
    if (space == std::string::npos || g_ascii_strncasecmp(fp.c_str(), "sha-256", 7) != 0) continue;
    if (g_ascii_strcasecmp(fp.c_str() + space + 1, actual.c_str()) == 0) return true;
  }
  return false;
}

void Call::on_media_connected() {
  if (!remote_certificate_matches()) {
    log_event(LogLevel::Error, "CALL_DTLS_FINGERPRINT_MISMATCH", id(),
              "the peer's DTLS certificate does not match the fingerprint in its SDP: ending the call");
    dump_graph("dtls-fingerprint-mismatch");
    end("dtls_failed");
    return;
  }
  state_ = CallState::Active;
  media_connected_us_ = g_get_monotonic_time();
  log_event(LogLevel::Info, "CALL_MEDIA_CONNECTED", id(), "ICE and DTLS connected",
            {{"after_ms", (media_connected_us_ - created_us_) / 1000.0}});
  // A greeting may already be playing: the src starts as soon as webrtcbin links it, before DTLS is
  // up. Then the caller hears the model from this moment on.
  if (agent_speaking_ && !impl_->first_audio_seen) {
    impl_->first_audio_seen = true;
    Metrics::get().observe_first_audio(0);
    log_event(LogLevel::Info, "CALL_FIRST_AUDIO", id(), "first model audio sent to the caller",
              {{"after_media_ms", 0.0}});
  }
  dump_graph("media-connected");
}

// ---------------------------------------------------------------------------------------------
// Stats, timeouts

void Call::poll_stats() {
  Impl &d = *impl_;
  if (!d.webrtc || ending_) return;
  // No caller media for media_timeout_s (ICE consent freshness is off in 1.22, so a vanished caller
  // shows up only as silence on the wire).
  gint64 now = g_get_monotonic_time();
  unsigned long long seen = d.rtp_seen.load(std::memory_order_relaxed);
  if (seen != d.rtp_seen_last) {
    d.rtp_seen_last = seen;
    d.rtp_last_change_us = now;
  } else if (d.media_allowed && now - d.rtp_last_change_us >= (gint64)config_.media_timeout_s * G_USEC_PER_SEC) {
    end("media_timeout");
    return;
  }
  read_session_stats();
  GstPromise *promise = gst_promise_new_with_change_func(
      [](GstPromise *promise, gpointer data) {
        auto self = static_cast<WeakCall *>(data)->lock();
        const GstStructure *reply = gst_promise_get_reply(promise);
        if (self && reply) {
          GstStructure *copy = gst_structure_copy(reply);
          self->on_main([copy](Call &c) {
            c.apply_stats(copy);
            gst_structure_free(copy);
          });
        }
        gst_promise_unref(promise);
      },
      new WeakCall(weak_from_this()), free_weak);
  g_signal_emit_by_name(d.webrtc, "get-stats", nullptr, promise);
}

void Call::apply_stats(const GstStructure *report) {
  // A report without any inbound-rtp stat (media not up yet) keeps the previous figures.
  InboundTotals in = inbound_totals(report);
  if (in.found) {
    stats_.rtp_packets_received = in.packets_received;
    stats_.rtp_packets_lost = in.packets_lost;
    stats_.jitter_ms = in.jitter_ms;
  }
  Impl &d = *impl_;
  if (stats_.rtp_packets_received > d.stats_rx_reported) {
    Metrics::get().rtp_received(stats_.rtp_packets_received - d.stats_rx_reported);
    d.stats_rx_reported = stats_.rtp_packets_received;
  }
  if (stats_.rtp_packets_lost > d.stats_lost_reported) {
    Metrics::get().rtp_lost((unsigned long long)(stats_.rtp_packets_lost - d.stats_lost_reported));
    d.stats_lost_reported = stats_.rtp_packets_lost;
  }
}

void Call::read_session_stats() {
  Impl &d = *impl_;
  if (!d.rt_src) return;
  GstStructure *s = nullptr;
  g_object_get(d.rt_src, "stats", &s, nullptr);
  if (!s) return;
  guint64 v = 0;
  if (gst_structure_get_uint64(s, "input-ms-appended", &v)) stats_.audio_to_model_ms = v;
  if (gst_structure_get_uint64(s, "output-ms-played", &v)) stats_.audio_to_caller_ms = v;
  if (gst_structure_get_uint64(s, "barge-ins", &v)) stats_.barge_ins = v;
  if (gst_structure_get_uint64(s, "responses", &v)) stats_.responses = v;
  if (gst_structure_get_uint64(s, "input-tokens", &v)) stats_.input_tokens = v;
  if (gst_structure_get_uint64(s, "output-tokens", &v)) stats_.output_tokens = v;
  if (gst_structure_get_uint64(s, "underruns", &v)) stats_.underruns = v;
  gst_structure_free(s);
  if (stats_.underruns > d.underruns_reported) {
    Metrics::get().caller_audio_underruns(stats_.underruns - d.underruns_reported);
    d.underruns_reported = stats_.underruns;
  }
}

// ---------------------------------------------------------------------------------------------
// Bus

gboolean Call::on_bus(GstBus *, GstMessage *message, gpointer user_data) {
  auto self = static_cast<WeakCall *>(user_data)->lock();
  if (!self) return G_SOURCE_REMOVE;
  self->handle_bus_message(message);
  return G_SOURCE_CONTINUE;
}

void Call::handle_bus_message(GstMessage *message) {
  if (state_ == CallState::Ended) return;
  switch (GST_MESSAGE_TYPE(message)) {
    case GST_MESSAGE_ERROR: {
      GError *err = nullptr;
      gchar *debug = nullptr;
      gst_message_parse_error(message, &err, &debug);
      bool realtime = GST_MESSAGE_SRC(message) == GST_OBJECT(impl_->rt_src) ||
                      (GST_IS_ELEMENT(GST_MESSAGE_SRC(message)) &&
                       G_TYPE_CHECK_INSTANCE_TYPE(GST_MESSAGE_SRC(message), GST_TYPE_OPENAI_REALTIME_SINK));
      log_event(LogLevel::Error, realtime ? "RT_ERROR" : "CALL_PIPELINE_ERROR", id(), err ? err->message : "error",
                {{"element", GST_OBJECT_NAME(GST_MESSAGE_SRC(message))}, {"debug", debug ? debug : ""}, {"fatal", true}});
      g_clear_error(&err);
      g_free(debug);
      dump_graph("error");
      end(realtime ? "realtime_error" : "pipeline_error");
      break;
    }
    case GST_MESSAGE_WARNING: {
      GError *err = nullptr;
      gst_message_parse_warning(message, &err, nullptr);
      log_event(LogLevel::Warning, "CALL_PIPELINE_WARNING", id(), err ? err->message : "warning",
                {{"element", GST_OBJECT_NAME(GST_MESSAGE_SRC(message))}});
      g_clear_error(&err);
      break;
    }
    case GST_MESSAGE_ELEMENT: {
      const GstStructure *s = gst_message_get_structure(message);
      if (s && g_str_has_prefix(gst_structure_get_name(s), "openairealtime-")) handle_realtime_message(s);
      break;
    }
    default:
      break;
  }
}

void Call::handle_realtime_message(const GstStructure *s) {
  const char *name = gst_structure_get_name(s) + strlen("openairealtime-");
  auto str = [s](const char *field) {
    const char *v = gst_structure_get_string(s, field);
    return std::string(v ? v : "");
  };
  if (!strcmp(name, "session-ready")) {
    double ms = 0;
    gst_structure_get_double(s, "setup-ms", &ms);
    log_event(LogLevel::Info, "RT_SESSION_READY", id(), "Realtime session ready", {{"setup_ms", ms}});
  } else if (!strcmp(name, "barge-in")) {
    gint64 end_ms = 0, dropped = 0;
    gst_structure_get_int64(s, "audio-end-ms", &end_ms);
    gst_structure_get_int64(s, "dropped-ms", &dropped);
    Metrics::get().barge_in();
    log_event(LogLevel::Info, "RT_BARGE_IN", id(), "caller interrupted the agent",
              {{"item_id", str("item-id")}, {"audio_end_ms", (long long)end_ms}, {"dropped_ms", (long long)dropped}});
  } else if (!strcmp(name, "error")) {
    gboolean fatal = FALSE, benign = FALSE;
    gst_structure_get_boolean(s, "fatal", &fatal);
    gst_structure_get_boolean(s, "benign", &benign);
    std::string code = str("code");
    Metrics::get().realtime_error(code);
    log_event(benign ? LogLevel::Debug : (fatal ? LogLevel::Error : LogLevel::Warning), "RT_ERROR", id(),
              str("message"), {{"code", code}, {"fatal", (bool)fatal}});
    if (fatal) end("realtime_error");
  } else if (!strcmp(name, "playback-started")) {
    agent_speaking_ = true;
    if (!impl_->first_audio_seen && media_connected_us_) {
      impl_->first_audio_seen = true;
      double s_after = (g_get_monotonic_time() - media_connected_us_) / 1e6;
      Metrics::get().observe_first_audio(s_after);
      log_event(LogLevel::Info, "CALL_FIRST_AUDIO", id(), "first model audio sent to the caller",
                {{"after_media_ms", s_after * 1000}});
    }
  } else if (!strcmp(name, "reconnecting")) {
    log_event(LogLevel::Warning, "RT_RECONNECTING", id(), str("reason"));
  } else if (!strcmp(name, "reconnected")) {
    log_event(LogLevel::Info, "RT_RECONNECTED", id(), "Realtime session reopened and history replayed");
  } else if (!strcmp(name, "playback-stopped")) {
    agent_speaking_ = false;
    for (auto ext : extensions_) ext->on_playback_stopped(*this);
  } else if (!strcmp(name, "function-call")) {
    std::string tool = str("name"), call_id = str("call-id"), arguments = str("arguments");
    log_event(LogLevel::Info, "RT_FUNCTION_CALL", id(), "the model called a tool", {{"tool", tool}, {"tool_call_id", call_id}});
    bool handled = false;
    for (auto ext : extensions_) handled = handled || ext->on_function_call(*this, tool, call_id, arguments);
    // Never leave the model waiting for an output.
    if (!handled) send_function_output(call_id, "{\"error\":\"unknown tool '" + tool + "'\"}");
  } else if (!strcmp(name, "transcript")) {
    gboolean interrupted = FALSE;
    gst_structure_get_boolean(s, "interrupted", &interrupted);
    std::string role = str("role"), text = str("text");
    log_event(LogLevel::Debug, "RT_TRANSCRIPT", id(), text, {{"role", role}});
    for (auto ext : extensions_) ext->on_transcript(*this, role, text, interrupted);
  } else if (!strcmp(name, "response-done")) {
    for (auto ext : extensions_) ext->on_response_done(*this, s);
  }
}

// ---------------------------------------------------------------------------------------------
// The model, for extensions

void Call::send_function_output(const std::string &call_id, const std::string &output) {
  if (!impl_->rt_src) return;
  gboolean ok = FALSE;
  g_signal_emit_by_name(impl_->rt_src, "function-call-output", call_id.c_str(), output.c_str(), &ok);
}

void Call::add_text_item(const std::string &role, const std::string &text) {
  if (!impl_->rt_src) return;
  gboolean ok = FALSE;
  g_signal_emit_by_name(impl_->rt_src, "add-text-item", role.c_str(), text.c_str(), &ok);
}

void Call::request_response(const std::string &instructions) {
  if (!impl_->rt_src) return;
  gboolean ok = FALSE;
  g_signal_emit_by_name(impl_->rt_src, "request-response", instructions.c_str(), &ok);
}

bool Call::agent_speaking() const {
  if (agent_speaking_) return true;
  // Audio may be queued without playing yet (media held until WhatsApp's accept, or not linked).
  if (!impl_->rt_src) return false;
  GstStructure *s = nullptr;
  g_object_get(impl_->rt_src, "stats", &s, nullptr);
  if (!s) return false;
  guint64 received = 0, played = 0, dropped = 0;
  gst_structure_get_uint64(s, "output-ms-received", &received);
  gst_structure_get_uint64(s, "output-ms-played", &played);
  gst_structure_get_uint64(s, "output-ms-dropped", &dropped);
  gst_structure_free(s);
  return received > played + dropped;
}

double Call::media_connected_s() const {
  return media_connected_us_ ? (g_get_monotonic_time() - media_connected_us_) / 1e6 : 0;
}

// ---------------------------------------------------------------------------------------------
// End

void Call::end(const std::string &reason) {
  if (state_ == CallState::Ending || state_ == CallState::Ended) return;
  ending_ = true;
  state_ = CallState::Ending;
  end_reason_ = reason;
  if (answer_done_) {
    auto done = std::move(answer_done_);
    answer_done_ = nullptr;
    // A Realtime failure is an upstream one (502); anything else ended the call from our side.
    done(false, reason == "realtime_error" ? 502 : 500, "call_ended",
         "the call ended before it was answered (" + reason + ")");
  }
  read_session_stats();
  teardown();
  state_ = CallState::Ended;
  ended_us_ = g_get_monotonic_time();
  Metrics::get().call_finished(reason);
  log_event(LogLevel::Info, "CALL_ENDED", id(), "call ended",
            {{"end_reason", reason},
             {"duration_s", duration_s()},
             {"rtp_packets_received", stats_.rtp_packets_received},
             {"audio_to_model_ms", stats_.audio_to_model_ms},
             {"audio_to_caller_ms", stats_.audio_to_caller_ms},
             {"barge_ins", stats_.barge_ins}});
  for (auto ext : extensions_) ext->on_ended(*this);
  if (on_ended_) on_ended_(*this);
}

void Call::teardown() {
  Impl &d = *impl_;
  for (guint *timer : {&d.stats_timer, &d.gather_timer, &d.max_timer}) {
    if (*timer) g_source_remove(*timer);
    *timer = 0;
  }
  if (d.rtp_probe_pad) {
    gst_pad_remove_probe(d.rtp_probe_pad, d.rtp_probe);
    gst_object_unref(d.rtp_probe_pad);
    d.rtp_probe_pad = nullptr;
    d.rtp_probe = 0;
  }
  if (d.bus_watch) {
    g_source_remove(d.bus_watch);
    d.bus_watch = 0;
  }
  if (d.pipeline) {
    // A locked src is not reached by the pipeline's state change: stop it explicitly.
    gst_element_set_locked_state(d.rt_src, FALSE);
    gst_element_set_state(d.pipeline, GST_STATE_NULL);
    gst_object_unref(d.pipeline);
    d.pipeline = nullptr;
    d.webrtc = nullptr;
    d.rt_src = nullptr;
    d.send_tail = nullptr;
  }
}

// ---------------------------------------------------------------------------------------------
// Views

void Call::dump_graph(const char *moment) const {
  if (!impl_->pipeline) return;
  // A no-op unless GST_DEBUG_DUMP_DOT_DIR is set.
  std::string name = impl_->session_name + "-" + moment;
  GST_DEBUG_BIN_TO_DOT_FILE_WITH_TS(GST_BIN(impl_->pipeline), GST_DEBUG_GRAPH_SHOW_ALL, name.c_str());
}

std::string Call::graph_dot() const {
  if (!impl_->pipeline) return "digraph pipeline {\n  label=\"call " + id() + " has ended\";\n}\n";
  gchar *dot = gst_debug_bin_to_dot_data(GST_BIN(impl_->pipeline), GST_DEBUG_GRAPH_SHOW_ALL);
  std::string out(dot ? dot : "");
  g_free(dot);
  return out;
}

void Call::to_json(JsonBuilder *b) const {
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "call_id");
  json_builder_add_string_value(b, id().c_str());
  json_builder_set_member_name(b, "state");
  json_builder_add_string_value(b, call_state_name(state_));
  json_builder_set_member_name(b, "direction");
  json_builder_add_string_value(b, options_.direction == Direction::Inbound ? "inbound" : "outbound");
  json_builder_set_member_name(b, "created_at");
  json_builder_add_string_value(b, rfc3339(created_real_us_).c_str());
  json_builder_set_member_name(b, "duration_s");
  json_builder_add_double_value(b, ((gint64)(duration_s() * 1000)) / 1000.0);
  if (state_ == CallState::Ended || state_ == CallState::Ending) {
    json_builder_set_member_name(b, "end_reason");
    json_builder_add_string_value(b, end_reason_.c_str());
  }
  if (!options_.metadata_json.empty()) {
    JsonNode *meta = json_from_string(options_.metadata_json.c_str(), nullptr);
    if (meta) {
      json_builder_set_member_name(b, "metadata");
      json_builder_add_value(b, meta);  // takes ownership
    }
  }
  json_builder_set_member_name(b, "stats");
  json_builder_begin_object(b);
  auto num = [b](const char *key, double v) {
    json_builder_set_member_name(b, key);
    json_builder_add_double_value(b, v);
  };
  auto integer = [b](const char *key, long long v) {
    json_builder_set_member_name(b, key);
    json_builder_add_int_value(b, v);
  };
  integer("rtp_packets_received", (long long)stats_.rtp_packets_received);
  integer("rtp_packets_lost", stats_.rtp_packets_lost);
  num("jitter_ms", stats_.jitter_ms);
  integer("audio_to_model_ms", (long long)stats_.audio_to_model_ms);
  integer("audio_to_caller_ms", (long long)stats_.audio_to_caller_ms);
  integer("barge_ins", (long long)stats_.barge_ins);
  integer("responses", (long long)stats_.responses);
  integer("input_tokens", (long long)stats_.input_tokens);
  integer("output_tokens", (long long)stats_.output_tokens);
  integer("caller_audio_underruns", (long long)stats_.underruns);
  json_builder_end_object(b);
  json_builder_end_object(b);
}

}  // namespace vb
