#include "media.h"

#include <cmath>

#include <gst/sdp/sdp.h>

#include "report.h"

namespace vbcall {
namespace {

constexpr const char *kRawCaps = "audio/x-raw,format=S16LE,rate=48000,channels=1,layout=interleaved";
constexpr const char *kRtpCaps = "application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000";
// The input starts this far ahead of "now" in running time, so that its first samples reach the
// mixer before the mixer has produced that stretch of output (it would drop them as late).
constexpr GstClockTime kInputLead = 40 * GST_MSECOND;
// Bound on waiting for the recording's EOS to reach the file (it normally takes microseconds:
// the receive branch has no queue, so EOS travels synchronously).
constexpr guint kRecordFinishTimeoutMs = 2000;

template <typename T>
std::shared_ptr<T> ref_ptr(T *obj) {
  return std::shared_ptr<T>(static_cast<T *>(gst_object_ref(obj)), [](T *o) { gst_object_unref(o); });
}

std::string enum_nick(GType type, int value) {
  GEnumClass *klass = static_cast<GEnumClass *>(g_type_class_ref(type));
  GEnumValue *v = g_enum_get_value(klass, value);
  std::string nick = v ? v->value_nick : std::to_string(value);
  g_type_class_unref(klass);
  return nick;
}

// A promise whose change function runs `fn` on webrtcbin's signalling thread. `fn` must only copy
// what it needs out of the reply and post the rest to the main context.
GstPromise *make_promise(std::function<void(GstPromise *)> fn) {
  auto *holder = new std::function<void(GstPromise *)>(std::move(fn));
  return gst_promise_new_with_change_func(
      [](GstPromise *p, gpointer d) { (*static_cast<std::function<void(GstPromise *)> *>(d))(p); }, holder,
      [](gpointer d) { delete static_cast<std::function<void(GstPromise *)> *>(d); });
}

// The reply structure of a settled promise, or nullptr with `error` set. Called from the change
// function: the promise is no longer pending there, so gst_promise_wait() returns at once.
const GstStructure *promise_reply(GstPromise *p, std::string &error) {
  GstPromiseResult result = gst_promise_wait(p);
  if (result != GST_PROMISE_RESULT_REPLIED) {
    error = "webrtcbin did not answer (" + enum_nick(GST_TYPE_PROMISE_RESULT, result) + ")";
    return nullptr;
  }
  const GstStructure *reply = gst_promise_get_reply(p);
  if (reply && gst_structure_has_field(reply, "error")) {
    GError *err = nullptr;
    gst_structure_get(reply, "error", G_TYPE_ERROR, &err, nullptr);
    error = err ? err->message : "unknown webrtcbin error";
    g_clear_error(&err);
    return nullptr;
  }
  return reply;
}

guint count_candidates(const GstSDPMessage *sdp) {
  guint n = 0;
  for (guint i = 0; i < gst_sdp_message_medias_len(sdp); i++) {
    const GstSDPMedia *m = gst_sdp_message_get_media(sdp, i);
    for (guint j = 0; j < gst_sdp_media_attributes_len(m); j++)
      if (g_strcmp0(gst_sdp_media_get_attribute(m, j)->key, "candidate") == 0)
        n++;
  }
  return n;
}

GstPadProbeReturn pass(GstPad *, GstPadProbeInfo *, gpointer) { return GST_PAD_PROBE_OK; }
GstPadProbeReturn drop(GstPad *, GstPadProbeInfo *, gpointer) { return GST_PAD_PROBE_DROP; }

}  // namespace

CallMedia::CallMedia(Config config, MediaListener &listener)
    : config_(std::move(config)), listener_(listener), context_(g_main_context_ref_thread_default()) {}

CallMedia::~CallMedia() {
  stop();
  g_main_context_unref(context_);
}

void CallMedia::post(std::function<void()> fn) {
  struct Post {
    std::shared_ptr<std::atomic<bool>> alive;
    std::function<void()> fn;
  };
  auto *p = new Post{alive_, std::move(fn)};
  // An explicit idle source rather than g_main_context_invoke(): invoke runs synchronously when the
  // calling thread happens to own the context, and these calls must always be deferred.
  GSource *src = g_idle_source_new();
  g_source_set_priority(src, G_PRIORITY_DEFAULT);
  g_source_set_callback(
      src,
      [](gpointer d) -> gboolean {
        auto *post = static_cast<Post *>(d);
        if (post->alive->load())
          post->fn();
        return G_SOURCE_REMOVE;
      },
      p, [](gpointer d) { delete static_cast<Post *>(d); });
  g_source_attach(src, context_);
  g_source_unref(src);
}

GstElement *CallMedia::add(const char *factory, const char *name, std::string &error) {
  GstElement *e = gst_element_factory_make(factory, name);
  if (!e) {
    if (error.empty())
      error = std::string("GStreamer element '") + factory +
              "' is missing (install gstreamer1.0-plugins-base/-good/-bad and gstreamer1.0-nice)";
    return nullptr;
  }
  gst_bin_add(GST_BIN(pipeline_), e);
  return e;
}

bool CallMedia::build(std::string &error) {
  pipeline_ = gst_pipeline_new("voicebridge-call");
  GstCaps *raw = gst_caps_from_string(kRawCaps);
  GstCaps *rtp = gst_caps_from_string(kRtpCaps);

  // Send branch. A live silence source keeps packets flowing at real-time rate for the whole call;
  // the mixer lays the input file over it once DTLS is up (see start_input()), so the bridge hears
  // the file from its first sample and silence before and after it, without gaps.
  GstElement *silence = add("audiotestsrc", "silence", error);
  GstElement *silence_caps = add("capsfilter", "silence-caps", error);
  GstElement *mixer = add("audiomixer", "mixer", error);
  GstElement *mix_caps = add("capsfilter", "mix-caps", error);
  GstElement *enc = add("opusenc", "enc", error);
  GstElement *pay = add("rtpopuspay", "pay", error);
  GstElement *rtp_caps = add("capsfilter", "rtp-caps", error);
  webrtc_ = add("webrtcbin", "webrtc", error);

  // Receive branch, built up front and linked when webrtcbin exposes the stream. No queue: the data
  // arrives on the jitterbuffer's own thread, and without one the recording's EOS is synchronous.
  GstElement *depay = add("rtpopusdepay", "depay", error);
  GstElement *dec = add("opusdec", "dec", error);
  GstElement *rconv = add("audioconvert", "recv-convert", error);
  GstElement *rres = add("audioresample", "recv-resample", error);
  GstElement *recv_caps = add("capsfilter", "recv-caps", error);
  GstElement *wavenc = nullptr, *sink = nullptr;
  if (!config_.output.empty()) {
    wavenc = add("wavenc", "wavenc", error);
    sink = add("filesink", "recording", error);
  } else {
    sink = add("fakesink", "discard", error);
  }

  GstElement *filesrc = nullptr, *decodebin = nullptr, *ires = nullptr, *in_caps = nullptr;
  if (!config_.input.empty()) {
    filesrc = add("filesrc", "input", error);
    decodebin = add("decodebin", "input-decode", error);
    input_convert_ = add("audioconvert", "input-convert", error);
    ires = add("audioresample", "input-resample", error);
    in_caps = add("capsfilter", "input-caps", error);
  }
  if (!error.empty()) {
    gst_caps_unref(raw);
    gst_caps_unref(rtp);
    return false;
  }

  gst_util_set_object_arg(G_OBJECT(silence), "wave", "silence");
  g_object_set(silence, "is-live", TRUE, "samplesperbuffer", kRate / 50, nullptr);  // 20 ms
  g_object_set(silence_caps, "caps", raw, nullptr);
  g_object_set(mixer, "output-buffer-duration", (guint64)(20 * GST_MSECOND), nullptr);
  g_object_set(mix_caps, "caps", raw, nullptr);
  g_object_set(enc, "bitrate", 20000, nullptr);
  gst_util_set_object_arg(G_OBJECT(enc), "audio-type", "voice");
  gst_util_set_object_arg(G_OBJECT(enc), "frame-size", "20");
  g_object_set(pay, "pt", 111, nullptr);
  g_object_set(rtp_caps, "caps", rtp, nullptr);
  gst_util_set_object_arg(G_OBJECT(webrtc_), "bundle-policy", "max-bundle");
  g_object_set(webrtc_, "latency", 60, nullptr);
  // Conceal lost packets so that the recording keeps its timing.
  g_object_set(dec, "plc", TRUE, nullptr);
  g_object_set(recv_caps, "caps", raw, nullptr);
  // async=false: these sinks get data only once the call is up; they must not hold the pipeline's
  // state change (a live pipeline) hostage until then.
  g_object_set(sink, "sync", FALSE, "async", FALSE, nullptr);
  if (wavenc)
    g_object_set(sink, "location", config_.output.c_str(), nullptr);

  bool linked = gst_element_link_many(silence, silence_caps, mixer, mix_caps, enc, pay, rtp_caps, webrtc_,
                                      nullptr) &&
                gst_element_link_many(depay, dec, rconv, rres, recv_caps, wavenc ? wavenc : sink, nullptr) &&
                (!wavenc || gst_element_link(wavenc, sink));
  if (filesrc) {
    g_object_set(filesrc, "location", config_.input.c_str(), nullptr);
    g_object_set(in_caps, "caps", raw, nullptr);
    linked = linked && gst_element_link(filesrc, decodebin) &&
             gst_element_link_many(input_convert_, ires, in_caps, mixer, nullptr);
    g_signal_connect(decodebin, "pad-added", G_CALLBACK(on_decoded_pad), this);
  }
  gst_caps_unref(raw);
  gst_caps_unref(rtp);
  if (!linked) {
    error = "could not link the media pipeline";
    return false;
  }

  // Nothing reaches the encoder before DTLS is up. webrtcbin blocks its sink pad until negotiation
  // and then throws away what it cannot encrypt yet; blocking would pile up a backlog in the live
  // sources that then goes out as a burst of stale audio. Dropping here keeps the stream at real time
  // from its first packet.
  send_pad_ = gst_element_get_static_pad(mix_caps, "src");
  send_gate_ = gst_pad_add_probe(send_pad_, (GstPadProbeType)(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
                                 drop, nullptr, nullptr);
  if (filesrc) {
    input_pad_ = gst_element_get_static_pad(in_caps, "src");
    // Hold the file back (buffers only, so caps and segment still configure the mixer) until DTLS
    // is up: whatever is sent before that is dropped by webrtcbin and the bridge would miss it.
    input_block_ = gst_pad_add_probe(
        input_pad_, (GstPadProbeType)(GST_PAD_PROBE_TYPE_BLOCK | GST_PAD_PROBE_TYPE_BUFFER |
                                      GST_PAD_PROBE_TYPE_BUFFER_LIST),
        pass, nullptr, nullptr);
    gst_pad_add_probe(input_pad_, GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, on_input_eos_probe, this, nullptr);
  }
  depay_sink_ = gst_element_get_static_pad(depay, "sink");
  GstPad *measured = gst_element_get_static_pad(recv_caps, "src");
  gst_pad_add_probe(measured, GST_PAD_PROBE_TYPE_BUFFER, on_audio_probe, this, nullptr);
  gst_object_unref(measured);
  if (wavenc) {
    record_sink_ = gst_element_get_static_pad(wavenc, "sink");
    GstPad *file_pad = gst_element_get_static_pad(sink, "sink");
    gst_pad_add_probe(file_pad, GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, on_record_eos_probe, this, nullptr);
    gst_object_unref(file_pad);
  }

  configure_ice();
  g_signal_connect(webrtc_, "pad-added", G_CALLBACK(on_pad_added), this);
  g_signal_connect(webrtc_, "notify::ice-gathering-state", G_CALLBACK(on_gathering_state), this);
  g_signal_connect(webrtc_, "notify::ice-connection-state", G_CALLBACK(on_ice_connection_state), this);
  g_signal_connect(webrtc_, "notify::connection-state", G_CALLBACK(on_connection_state), this);

  GstBus *bus = gst_pipeline_get_bus(GST_PIPELINE(pipeline_));
  bus_watch_ = gst_bus_add_watch(bus, on_bus_message, this);
  gst_object_unref(bus);
  return true;
}

void CallMedia::configure_ice() {
  GstWebRTCICE *ice = nullptr;
  g_object_get(webrtc_, "ice-agent", &ice, nullptr);
  if (!ice)
    return;
  // UDP only: voicebridge answers with UDP candidates, and TCP ones only lengthen the offer.
  if (g_object_class_find_property(G_OBJECT_GET_CLASS(ice), "ice-tcp"))
    g_object_set(ice, "ice-tcp", FALSE, nullptr);
  // libnice gathers no loopback candidates by itself, and other interfaces (docker0, veth) only
  // add useless candidates: gather exactly on the addresses asked for.
  for (const std::string &addr : config_.ice_addresses) {
    gboolean ok = FALSE;
    g_signal_emit_by_name(ice, "add-local-ip-address", addr.c_str(), &ok);
    if (!ok)
      report_error("warning: ICE cannot use local address %s", addr.c_str());
  }
  // UPnP discovery adds ~200 ms to every gathering and is useless for a test caller.
  if (g_object_class_find_property(G_OBJECT_GET_CLASS(ice), "agent")) {
    GObject *agent = nullptr;
    g_object_get(ice, "agent", &agent, nullptr);
    if (agent) {
      if (g_object_class_find_property(G_OBJECT_GET_CLASS(agent), "upnp"))
        g_object_set(agent, "upnp", FALSE, nullptr);
      g_object_unref(agent);
    }
  }
  gst_object_unref(ice);
}

bool CallMedia::start(std::string &error) {
  if (!build(error))
    return false;
  if (gst_element_set_state(pipeline_, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    error = "the media pipeline failed to start";
    return false;
  }
  create_offer();
  return true;
}

void CallMedia::create_offer() {
  // The send branch is linked (so webrtcbin has its sendrecv transceiver) and the pipeline is
  // running (so its signalling thread is), which is all create-offer needs.
  GstPromise *promise = make_promise([this](GstPromise *p) {
    std::string error;
    GstWebRTCSessionDescription *offer = nullptr;
    if (const GstStructure *reply = promise_reply(p, error))
      gst_structure_get(reply, "offer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &offer, nullptr);
    std::shared_ptr<GstWebRTCSessionDescription> desc(offer, [](GstWebRTCSessionDescription *d) {
      if (d)
        gst_webrtc_session_description_free(d);
    });
    post([this, desc, error] { on_offer_created(desc.get(), error); });
  });
  g_signal_emit_by_name(webrtc_, "create-offer", nullptr, promise);
  gst_promise_unref(promise);
}

void CallMedia::on_offer_created(GstWebRTCSessionDescription *offer, const std::string &error) {
  if (!offer) {
    listener_.on_failure(MediaListener::Failure::Pipeline,
                         "create-offer failed: " + (error.empty() ? std::string("no offer") : error));
    return;
  }
  GstPromise *promise = make_promise([this](GstPromise *p) {
    std::string error;
    bool ok = promise_reply(p, error) != nullptr || error.empty();
    post([this, ok, error] {
      if (!ok) {
        listener_.on_failure(MediaListener::Failure::Pipeline, "set-local-description failed: " + error);
        return;
      }
      local_set_ = true;
      maybe_offer_ready();
    });
  });
  g_signal_emit_by_name(webrtc_, "set-local-description", offer, promise);
  gst_promise_unref(promise);
  // Gathering starts with the local description. Bounded: a missing interface or a slow STUN
  // server must not stall the call; the offer then goes out with the candidates found so far.
  gather_timer_ = g_timeout_add(config_.gather_timeout_ms, [](gpointer d) -> gboolean {
    auto *self = static_cast<CallMedia *>(d);
    self->gather_timer_ = 0;
    self->gather_timed_out_ = true;
    self->maybe_offer_ready();
    return G_SOURCE_REMOVE;
  }, this);
}

void CallMedia::maybe_offer_ready() {
  if (offer_delivered_ || !local_set_ || !(gathering_complete_ || gather_timed_out_))
    return;
  offer_delivered_ = true;
  if (gather_timer_) {
    g_source_remove(gather_timer_);
    gather_timer_ = 0;
  }
  // Read now, not when the offer was created: webrtcbin merges each gathered candidate into the
  // local description before it reports gathering COMPLETE.
  GstWebRTCSessionDescription *local = nullptr;
  g_object_get(webrtc_, "local-description", &local, nullptr);
  if (!local) {
    listener_.on_failure(MediaListener::Failure::Pipeline, "webrtcbin has no local description");
    return;
  }
  gchar *text = gst_sdp_message_as_text(local->sdp);
  guint candidates = count_candidates(local->sdp);
  std::string sdp = text;
  g_free(text);
  gst_webrtc_session_description_free(local);
  listener_.on_offer(sdp, candidates, gathering_complete_);
}

bool CallMedia::set_answer(const std::string &sdp_text, std::string &error) {
  GstSDPMessage *sdp = nullptr;
  if (gst_sdp_message_new_from_text(sdp_text.c_str(), &sdp) != GST_SDP_OK || gst_sdp_message_medias_len(sdp) == 0) {
    if (sdp)
      gst_sdp_message_free(sdp);
    error = "the answer is not a usable SDP (no media section)";
    return false;
  }
  // webrtcbin accepts a recvonly/inactive answer without complaint; say so, since half the call
  // will then be missing.
  const GstSDPMedia *media = gst_sdp_message_get_media(sdp, 0);
  for (const char *dir : {"recvonly", "sendonly", "inactive"})
    if (gst_sdp_media_get_attribute_val(media, dir))
      report_error("warning: the bridge answered a=%s; audio will flow one way at most", dir);

  GstWebRTCSessionDescription *answer = gst_webrtc_session_description_new(GST_WEBRTC_SDP_TYPE_ANSWER, sdp);
  GstPromise *promise = make_promise([this](GstPromise *p) {
    std::string error;
    if (promise_reply(p, error) || error.empty())
      return;
    post([this, error] {
      listener_.on_failure(MediaListener::Failure::Pipeline, "webrtcbin rejected the answer: " + error);
    });
  });
  g_signal_emit_by_name(webrtc_, "set-remote-description", answer, promise);
  gst_promise_unref(promise);
  gst_webrtc_session_description_free(answer);
  return true;
}

void CallMedia::start_input() {
  if (input_started_)
    return;
  input_started_ = true;
  if (send_gate_) {
    gst_pad_remove_probe(send_pad_, send_gate_);
    send_gate_ = 0;
  }
  if (input_pad_ && input_block_) {
    // The file's timestamps start at 0; shift them to "now" so that the mixer plays it from its
    // first sample at real-time pace instead of discarding it as long overdue.
    GstClock *clock = gst_element_get_clock(pipeline_);
    if (clock) {
      GstClockTime now = gst_clock_get_time(clock);
      GstClockTime base = gst_element_get_base_time(pipeline_);
      gst_object_unref(clock);
      if (now > base)
        gst_pad_set_offset(input_pad_, (gint64)(now - base + kInputLead));
    }
    gst_pad_remove_probe(input_pad_, input_block_);
    input_block_ = 0;
  }
  listener_.on_input_started();
  if (config_.input.empty() || input_eos_)
    listener_.on_input_end();
}

void CallMedia::on_decoded_pad(GstElement *, GstPad *pad, gpointer data) {
  // decodebin's streaming thread. Linking here (not on the main context) is what decodebin expects:
  // the pad pushes as soon as this returns.
  auto *self = static_cast<CallMedia *>(data);
  GstCaps *caps = gst_pad_get_current_caps(pad);
  if (!caps)
    caps = gst_pad_query_caps(pad, nullptr);
  bool audio = caps && gst_caps_get_size(caps) > 0 &&
               g_str_has_prefix(gst_structure_get_name(gst_caps_get_structure(caps, 0)), "audio/");
  if (caps)
    gst_caps_unref(caps);
  if (!audio)
    return;
  GstPad *sink = gst_element_get_static_pad(self->input_convert_, "sink");
  if (!gst_pad_is_linked(sink))
    gst_pad_link(pad, sink);  // a second audio stream in one WAV is ignored
  gst_object_unref(sink);
}

void CallMedia::on_pad_added(GstElement *, GstPad *pad, gpointer data) {
  // A streaming thread of webrtcbin. Our sink pad was requested (and linked) by us, so only SRC
  // pads matter: the received stream.
  auto *self = static_cast<CallMedia *>(data);
  if (GST_PAD_DIRECTION(pad) != GST_PAD_SRC)
    return;
  // Count RTP from here on, and park the stream until the main context has linked it; the main
  // context owns all decisions (e.g. not linking once the recording is closed).
  gst_pad_add_probe(pad, (GstPadProbeType)(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
                    on_rtp_probe, self, nullptr);
  gulong block = gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BLOCK_DOWNSTREAM, pass, nullptr, nullptr);
  auto held = ref_ptr(pad);
  self->post([self, held, block] { self->link_received_pad(held.get(), block); });
}

void CallMedia::link_received_pad(GstPad *pad, gulong block) {
  if (received_pad_) {
    // max-bundle with one m-line gives one stream; anything else is dropped rather than left
    // blocked (which would stall that thread until teardown).
    gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_DATA_DOWNSTREAM, drop, nullptr, nullptr);
    gst_pad_remove_probe(pad, block);
    return;
  }
  if (recording_closed_)
    return;  // hanging up: stays parked until the pipeline goes to NULL, which unblocks it
  GstPadLinkReturn r = gst_pad_link(pad, depay_sink_);
  if (GST_PAD_LINK_FAILED(r)) {
    listener_.on_failure(MediaListener::Failure::Pipeline,
                         std::string("cannot decode the received stream: link ") + gst_pad_link_get_name(r));
    return;
  }
  received_pad_ = GST_PAD(gst_object_ref(pad));
  gst_pad_remove_probe(pad, block);
}

GstPadProbeReturn CallMedia::on_rtp_probe(GstPad *, GstPadProbeInfo *info, gpointer data) {
  auto *self = static_cast<CallMedia *>(data);
  guint n = 1;
  if (GST_PAD_PROBE_INFO_TYPE(info) & GST_PAD_PROBE_TYPE_BUFFER_LIST)
    n = gst_buffer_list_length(GST_PAD_PROBE_INFO_BUFFER_LIST(info));
  self->last_rtp_us_.store(g_get_monotonic_time());
  if (self->rtp_packets_.fetch_add(n) == 0)
    self->post([self] {
      self->listener_.on_first_rtp();
      self->start_input();  // RTP got through SRTP, so DTLS is up even if no state said so yet
    });
  return GST_PAD_PROBE_OK;
}

GstPadProbeReturn CallMedia::on_audio_probe(GstPad *, GstPadProbeInfo *info, gpointer data) {
  // The jitterbuffer's thread: S16LE mono 48 kHz (recv-caps). One decoded Opus frame (20 ms) per
  // buffer, which is also the resolution of "heard" time.
  auto *self = static_cast<CallMedia *>(data);
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER(info);
  GstMapInfo map;
  if (!gst_buffer_map(buf, &map, GST_MAP_READ))
    return GST_PAD_PROBE_OK;
  const gint16 *s = reinterpret_cast<const gint16 *>(map.data);
  gsize n = map.size / sizeof(gint16);
  double sum = 0;
  for (gsize i = 0; i < n; i++)
    sum += (double)s[i] * s[i];
  gst_buffer_unmap(buf, &map);
  if (n == 0)
    return GST_PAD_PROBE_OK;
  self->received_samples_.fetch_add((gint64)n);
  double rms = std::sqrt(sum / n) / 32768.0;
  double db = rms > 0 ? 20.0 * std::log10(rms) : -200.0;
  if (db > kHeardThresholdDb) {
    self->heard_samples_.fetch_add((gint64)n);
    if (!self->first_audio_seen_.exchange(true)) {
      gint64 when = g_get_monotonic_time();
      self->post([self, when] { self->listener_.on_first_audio(when); });
    }
  }
  return GST_PAD_PROBE_OK;
}

GstPadProbeReturn CallMedia::on_input_eos_probe(GstPad *, GstPadProbeInfo *info, gpointer data) {
  auto *self = static_cast<CallMedia *>(data);
  if (GST_EVENT_TYPE(GST_PAD_PROBE_INFO_EVENT(info)) == GST_EVENT_EOS)
    self->post([self] {
      self->input_eos_ = true;
      if (self->input_started_)
        self->listener_.on_input_end();
    });
  return GST_PAD_PROBE_OK;
}

GstPadProbeReturn CallMedia::on_record_eos_probe(GstPad *, GstPadProbeInfo *info, gpointer data) {
  // EOS at filesink's pad: wavenc has rewritten the header before forwarding it.
  auto *self = static_cast<CallMedia *>(data);
  if (GST_EVENT_TYPE(GST_PAD_PROBE_INFO_EVENT(info)) == GST_EVENT_EOS)
    self->post([self] { self->recording_finished(true); });
  return GST_PAD_PROBE_OK;
}

void CallMedia::on_gathering_state(GObject *webrtc, GParamSpec *, gpointer data) {
  auto *self = static_cast<CallMedia *>(data);
  GstWebRTCICEGatheringState state;
  g_object_get(webrtc, "ice-gathering-state", &state, nullptr);
  if (state == GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE)
    self->post([self] {
      self->gathering_complete_ = true;
      self->maybe_offer_ready();
    });
}

void CallMedia::on_ice_connection_state(GObject *webrtc, GParamSpec *, gpointer data) {
  auto *self = static_cast<CallMedia *>(data);
  GstWebRTCICEConnectionState state;
  g_object_get(webrtc, "ice-connection-state", &state, nullptr);
  self->post([self, state] {
    progress("ICE %s", enum_nick(GST_TYPE_WEBRTC_ICE_CONNECTION_STATE, state).c_str());
    if ((state == GST_WEBRTC_ICE_CONNECTION_STATE_CONNECTED || state == GST_WEBRTC_ICE_CONNECTION_STATE_COMPLETED) &&
        !self->ice_connected_) {
      self->ice_connected_ = true;
      self->listener_.on_ice_connected();
    } else if (state == GST_WEBRTC_ICE_CONNECTION_STATE_FAILED) {
      self->listener_.on_failure(MediaListener::Failure::Connection, "ICE failed");
    }
  });
}

void CallMedia::on_connection_state(GObject *webrtc, GParamSpec *, gpointer data) {
  auto *self = static_cast<CallMedia *>(data);
  GstWebRTCPeerConnectionState state;
  g_object_get(webrtc, "connection-state", &state, nullptr);
  self->post([self, state] {
    if (state == GST_WEBRTC_PEER_CONNECTION_STATE_CONNECTED) {
      progress("DTLS connected");
      self->start_input();
    } else if (state == GST_WEBRTC_PEER_CONNECTION_STATE_FAILED) {
      self->listener_.on_failure(MediaListener::Failure::Connection, "ICE/DTLS connection failed");
    }
  });
}

gboolean CallMedia::on_bus_message(GstBus *, GstMessage *msg, gpointer data) {
  auto *self = static_cast<CallMedia *>(data);
  switch (GST_MESSAGE_TYPE(msg)) {
    case GST_MESSAGE_ERROR:
    case GST_MESSAGE_WARNING: {
      GError *err = nullptr;
      gchar *debug = nullptr;
      bool is_error = GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR;
      if (is_error)
        gst_message_parse_error(msg, &err, &debug);
      else
        gst_message_parse_warning(msg, &err, &debug);
      std::string text = std::string(GST_OBJECT_NAME(GST_MESSAGE_SRC(msg))) + ": " + err->message;
      g_clear_error(&err);
      g_free(debug);
      if (!is_error)
        report_error("warning: %s", text.c_str());
      else if (!self->stopping_)
        self->listener_.on_failure(MediaListener::Failure::Pipeline, text);
      break;
    }
    default:
      break;
  }
  return G_SOURCE_CONTINUE;
}

void CallMedia::finish_recording(std::function<void(bool)> done) {
  if (recording_closed_ || !pipeline_) {
    post([done] { done(true); });
    return;
  }
  recording_closed_ = true;
  if (!record_sink_) {
    post([done] { done(true); });
    return;
  }
  record_done_ = std::move(done);
  record_timer_ = g_timeout_add(kRecordFinishTimeoutMs, [](gpointer d) -> gboolean {
    auto *self = static_cast<CallMedia *>(d);
    self->record_timer_ = 0;
    self->recording_finished(false);
    return G_SOURCE_REMOVE;
  }, this);
  if (received_pad_) {
    // Nothing more enters the branch; then EOS follows whatever buffer is being decoded right now
    // (send_event takes the pad's stream lock, so it cannot overtake it).
    gst_pad_add_probe(received_pad_, (GstPadProbeType)(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
                      drop, nullptr, nullptr);
    gst_pad_send_event(depay_sink_, gst_event_new_eos());
    return;
  }
  // Nothing was received. Give wavenc the stream it never saw so that the file is still a valid,
  // empty WAV rather than zero bytes.
  GstCaps *raw = gst_caps_from_string(kRawCaps);
  GstSegment segment;
  gst_segment_init(&segment, GST_FORMAT_TIME);
  gst_pad_send_event(record_sink_, gst_event_new_stream_start("voicebridge-call-no-audio"));
  gst_pad_send_event(record_sink_, gst_event_new_caps(raw));
  gst_pad_send_event(record_sink_, gst_event_new_segment(&segment));
  gst_pad_send_event(record_sink_, gst_event_new_eos());
  gst_caps_unref(raw);
}

void CallMedia::recording_finished(bool ok) {
  if (!record_done_)
    return;
  if (record_timer_) {
    g_source_remove(record_timer_);
    record_timer_ = 0;
  }
  auto done = std::move(record_done_);
  record_done_ = nullptr;
  done(ok);
}

void CallMedia::stop() {
  if (!pipeline_)
    return;
  stopping_ = true;
  alive_->store(false);  // posts still queued, or made during teardown, are dropped
  for (guint *id : {&gather_timer_, &record_timer_})
    if (*id) {
      g_source_remove(*id);
      *id = 0;
    }
  record_done_ = nullptr;
  if (bus_watch_) {
    GstBus *bus = gst_pipeline_get_bus(GST_PIPELINE(pipeline_));
    gst_bus_remove_watch(bus);
    gst_object_unref(bus);
    bus_watch_ = 0;
  }
  // Blocks until every streaming thread, and webrtcbin's signalling and ICE threads, have stopped;
  // pads parked in blocking probes are released by the flush this implies.
  gst_element_set_state(pipeline_, GST_STATE_NULL);
  for (GstPad **pad : {&send_pad_, &input_pad_, &depay_sink_, &record_sink_, &received_pad_})
    if (*pad) {
      gst_object_unref(*pad);
      *pad = nullptr;
    }
  gst_object_unref(pipeline_);
  pipeline_ = nullptr;
  webrtc_ = nullptr;
  input_convert_ = nullptr;
}

}  // namespace vbcall
