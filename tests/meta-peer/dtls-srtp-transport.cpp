#include "dtls-srtp-transport.h"

#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>

namespace meta_peer {

DtlsSrtpTransport::~DtlsSrtpTransport() { stop(); }

namespace {

GstElement *make(const char *factory, const char *name, std::string *error) {
  GstElement *e = gst_element_factory_make(factory, name);
  if (!e && error) *error = std::string("GStreamer element '") + factory + "' is missing";
  return e;
}

GstElement *make_appsink(const char *name, std::string *error) {
  GstElement *sink = make("appsink", name, error);
  // Packets go out as they come: no clock sync, no preroll, never drop.
  if (sink) g_object_set(sink, "sync", FALSE, "async", FALSE, "enable-last-sample", FALSE, nullptr);
  return sink;
}

GstElement *make_appsrc(const char *name, GstCaps *caps, std::string *error) {
  GstElement *src = make("appsrc", name, error);
  if (src) {
    g_object_set(src, "is-live", TRUE, "format", GST_FORMAT_TIME, "do-timestamp", TRUE, "block", FALSE,
                 "max-bytes", (guint64)(4 * 1024 * 1024), nullptr);
    // netin carries no caps, like nicesrc in webrtcbin: dtlssrtpdemux gives each output its own,
    // and a caps event on its sink would be forwarded to dtlsdec, which only takes x-dtls.
    if (caps) g_object_set(src, "caps", caps, nullptr);
  }
  if (caps) gst_caps_unref(caps);
  return src;
}

}  // namespace

bool DtlsSrtpTransport::start(const std::string &connection_id, const std::string &pem, Callbacks callbacks,
                              std::string *error) {
  callbacks_ = std::move(callbacks);
  pipeline_ = gst_pipeline_new(("meta-peer-" + connection_id).c_str());
  netin_ = make_appsrc("netin", nullptr, error);
  dec_ = make("dtlssrtpdec", "dec", error);
  GstElement *rtpin = make_appsink("rtpin", error);
  GstElement *rtcpin = make_appsink("rtcpin", error);
  rtpout_ = make_appsrc("rtpout", gst_caps_new_empty_simple("application/x-rtp"), error);
  enc_ = make("dtlssrtpenc", "enc", error);
  GstElement *netout = make_appsink("netout", error);
  GstElement *all[] = {netin_, dec_, rtpin, rtcpin, rtpout_, enc_, netout};
  bool complete = true;
  for (GstElement *e : all) complete = complete && e;
  if (!complete) {
    for (GstElement *e : all)
      if (e) gst_object_unref(gst_object_ref_sink(e));
    gst_object_unref(pipeline_);
    pipeline_ = netin_ = dec_ = rtpout_ = enc_ = nullptr;
    return false;
  }
  gst_bin_add_many(GST_BIN(pipeline_), netin_, dec_, rtpin, rtcpin, rtpout_, enc_, netout, nullptr);

  // pem before connection-id: dtlsdec creates the DTLS connection (with its current certificate)
  // when connection-id is set, and a later pem would make it create a second one under the same id.
  g_object_set(dec_, "pem", pem.c_str(), nullptr);
  g_object_set(dec_, "connection-id", connection_id.c_str(), nullptr);
  g_object_set(enc_, "connection-id", connection_id.c_str(), nullptr);
  gst_element_set_locked_state(enc_, TRUE);

  GstPad *rtp_sink = gst_element_request_pad_simple(enc_, "rtp_sink_0");
  GstPad *rtpout_src = gst_element_get_static_pad(rtpout_, "src");
  bool linked = rtp_sink && gst_pad_link(rtpout_src, rtp_sink) == GST_PAD_LINK_OK;
  gst_object_unref(rtpout_src);
  if (rtp_sink) gst_object_unref(rtp_sink);  // the element keeps its request pad until it is disposed
  linked = linked && gst_element_link(netin_, dec_) && gst_element_link_pads(dec_, "rtp_src", rtpin, "sink") &&
           gst_element_link_pads(dec_, "rtcp_src", rtcpin, "sink") && gst_element_link(enc_, netout);
  if (!linked) {
    if (error) *error = "cannot link the DTLS-SRTP pipeline";
    stop();
    return false;
  }

  GstAppSinkCallbacks netout_cb = {};
  netout_cb.new_sample = &DtlsSrtpTransport::on_netout;
  gst_app_sink_set_callbacks(GST_APP_SINK(netout), &netout_cb, this, nullptr);
  GstAppSinkCallbacks rtpin_cb = {};
  rtpin_cb.new_sample = &DtlsSrtpTransport::on_rtpin;
  gst_app_sink_set_callbacks(GST_APP_SINK(rtpin), &rtpin_cb, this, nullptr);
  GstAppSinkCallbacks rtcpin_cb = {};
  rtcpin_cb.new_sample = &DtlsSrtpTransport::on_rtcpin;
  gst_app_sink_set_callbacks(GST_APP_SINK(rtcpin), &rtcpin_cb, this, nullptr);
  g_signal_connect(enc_, "on-key-set", G_CALLBACK(&DtlsSrtpTransport::on_key_set), this);
  g_signal_connect(dec_, "notify::connection-state", G_CALLBACK(&DtlsSrtpTransport::on_state_notify), this);

  GstBus *bus = gst_element_get_bus(pipeline_);
  gst_bus_set_sync_handler(bus, &DtlsSrtpTransport::on_bus, this, nullptr);
  gst_object_unref(bus);

  if (gst_element_set_state(pipeline_, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    if (error) *error = "the DTLS-SRTP pipeline failed to start";
    stop();
    return false;
  }
  return true;
}

bool DtlsSrtpTransport::start_handshake(bool is_client, std::string *error) {
  if (!enc_ || handshake_started_.exchange(true)) return enc_ != nullptr;
  g_object_set(enc_, "is-client", is_client, nullptr);
  gst_element_set_locked_state(enc_, FALSE);
  if (!gst_element_sync_state_with_parent(enc_)) {
    if (error) *error = "dtlssrtpenc failed to start";
    return false;
  }
  return true;
}

void DtlsSrtpTransport::receive(const uint8_t *data, size_t len) {
  if (!netin_ || stopping_) return;
  gst_app_src_push_buffer(GST_APP_SRC(netin_), gst_buffer_new_memdup(data, len));
}

bool DtlsSrtpTransport::send_rtp(const uint8_t *data, size_t len) {
  if (!rtpout_ || stopping_) return false;
  return gst_app_src_push_buffer(GST_APP_SRC(rtpout_), gst_buffer_new_memdup(data, len)) == GST_FLOW_OK;
}

std::string DtlsSrtpTransport::local_pem() const {
  if (!dec_) return {};
  gchar *pem = nullptr;
  g_object_get(dec_, "pem", &pem, nullptr);
  std::string out = pem ? pem : "";
  g_free(pem);
  return out;
}

std::string DtlsSrtpTransport::peer_pem() const {
  if (!dec_) return {};
  gchar *pem = nullptr;
  g_object_get(dec_, "peer-pem", &pem, nullptr);
  std::string out = pem ? pem : "";
  g_free(pem);
  return out;
}

DtlsState DtlsSrtpTransport::state() const {
  if (!dec_) return DtlsState::Closed;
  gint state = (gint)DtlsState::Closed;
  g_object_get(dec_, "connection-state", &state, nullptr);
  return (DtlsState)state;
}

void DtlsSrtpTransport::stop() {
  stopping_ = true;
  if (!pipeline_) return;
  // A locked element keeps its state when the pipeline changes: unlock so NULL reaches dtlssrtpenc.
  if (enc_) gst_element_set_locked_state(enc_, FALSE);
  gst_element_set_state(pipeline_, GST_STATE_NULL);
  if (dec_) g_signal_handlers_disconnect_by_data(dec_, this);
  if (enc_) g_signal_handlers_disconnect_by_data(enc_, this);
  GstBus *bus = gst_element_get_bus(pipeline_);
  gst_bus_set_sync_handler(bus, nullptr, nullptr, nullptr);
  gst_object_unref(bus);
  gst_object_unref(pipeline_);
  pipeline_ = netin_ = dec_ = rtpout_ = enc_ = nullptr;
}

void DtlsSrtpTransport::for_each_buffer(GstSample *sample, const PacketFn &fn) {
  auto one = [&](GstBuffer *buffer) {
    GstMapInfo map;
    if (!gst_buffer_map(buffer, &map, GST_MAP_READ)) return;
    fn(map.data, map.size);
    gst_buffer_unmap(buffer, &map);
  };
  if (GstBufferList *list = gst_sample_get_buffer_list(sample)) {
    for (guint i = 0; i < gst_buffer_list_length(list); i++) one(gst_buffer_list_get(list, i));
  } else if (GstBuffer *buffer = gst_sample_get_buffer(sample)) {
    one(buffer);
  }
}

GstFlowReturn DtlsSrtpTransport::on_netout(GstAppSink *sink, gpointer data) {
  auto *self = static_cast<DtlsSrtpTransport *>(data);
  GstSample *sample = gst_app_sink_pull_sample(sink);
  if (!sample) return GST_FLOW_FLUSHING;
  if (!self->stopping_ && self->callbacks_.send) for_each_buffer(sample, self->callbacks_.send);
  gst_sample_unref(sample);
  return GST_FLOW_OK;
}

GstFlowReturn DtlsSrtpTransport::on_rtpin(GstAppSink *sink, gpointer data) {
  auto *self = static_cast<DtlsSrtpTransport *>(data);
  GstSample *sample = gst_app_sink_pull_sample(sink);
  if (!sample) return GST_FLOW_FLUSHING;
  if (!self->stopping_ && self->callbacks_.rtp) for_each_buffer(sample, self->callbacks_.rtp);
  gst_sample_unref(sample);
  return GST_FLOW_OK;
}

GstFlowReturn DtlsSrtpTransport::on_rtcpin(GstAppSink *sink, gpointer data) {
  auto *self = static_cast<DtlsSrtpTransport *>(data);
  GstSample *sample = gst_app_sink_pull_sample(sink);
  if (!sample) return GST_FLOW_FLUSHING;
  if (!self->stopping_ && self->callbacks_.rtcp) for_each_buffer(sample, self->callbacks_.rtcp);
  gst_sample_unref(sample);
  return GST_FLOW_OK;
}

void DtlsSrtpTransport::on_key_set(GstElement *, gpointer data) {
  auto *self = static_cast<DtlsSrtpTransport *>(data);
  if (!self->stopping_ && self->callbacks_.keys_ready) self->callbacks_.keys_ready();
}

void DtlsSrtpTransport::on_state_notify(GObject *, GParamSpec *, gpointer data) {
  auto *self = static_cast<DtlsSrtpTransport *>(data);
  if (!self->stopping_ && self->callbacks_.state_changed) self->callbacks_.state_changed(self->state());
}

GstBusSyncReply DtlsSrtpTransport::on_bus(GstBus *, GstMessage *msg, gpointer data) {
  auto *self = static_cast<DtlsSrtpTransport *>(data);
  if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR && !self->stopping_ && self->callbacks_.error) {
    GError *err = nullptr;
    gchar *debug = nullptr;
    gst_message_parse_error(msg, &err, &debug);
    std::string text = std::string(GST_OBJECT_NAME(GST_MESSAGE_SRC(msg))) + ": " + (err ? err->message : "error") +
                       (debug ? std::string(" (") + debug + ")" : "");
    g_clear_error(&err);
    g_free(debug);
    self->callbacks_.error(text);
  }
  // Nobody pops this bus: drop everything so it does not pile up. A sync handler that drops a
  // message owns it (each message holds a ref on its source element, and so on the bus).
  gst_message_unref(msg);
  return GST_BUS_DROP;
}

}  // namespace meta_peer
