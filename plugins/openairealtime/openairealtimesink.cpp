#include "openairealtimesink.h"

#include "openairealtime-common.h"

#define GST_CAT_DEFAULT openairealtime_debug

using realtime::ElementCommon;

struct _GstOpenAIRealtimeSink {
  GstBaseSink parent;
  ElementCommon *common;
};

enum { PROP_0, PROP_COMMON_FIRST };

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE(
    "sink", GST_PAD_SINK, GST_PAD_ALWAYS,
    GST_STATIC_CAPS("audio/x-raw, format=(string)S16LE, rate=(int)24000, channels=(int)1, layout=(string)interleaved"));

G_DEFINE_TYPE(GstOpenAIRealtimeSink, gst_openai_realtime_sink, GST_TYPE_BASE_SINK);
GST_ELEMENT_REGISTER_DEFINE(openairealtimesink, "openairealtimesink", GST_RANK_NONE, GST_TYPE_OPENAI_REALTIME_SINK);

static void sink_set_property(GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec) {
  auto *self = GST_OPENAI_REALTIME_SINK(object);
  if (!realtime::common_set_property(self->common, prop_id, value, PROP_COMMON_FIRST))
    G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
}

static void sink_get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec) {
  auto *self = GST_OPENAI_REALTIME_SINK(object);
  if (!realtime::common_get_property(self->common, prop_id, value, PROP_COMMON_FIRST))
    G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
}

static void sink_finalize(GObject *object) {
  auto *self = GST_OPENAI_REALTIME_SINK(object);
  delete self->common;
  self->common = nullptr;
  G_OBJECT_CLASS(gst_openai_realtime_sink_parent_class)->finalize(object);
}

static gboolean sink_start(GstBaseSink *base) {
  auto *self = GST_OPENAI_REALTIME_SINK(base);
  // The src, when present, posts the session's messages (it is the element a caller hears).
  return realtime::common_start(GST_ELEMENT(base), self->common, false);
}

static gboolean sink_stop(GstBaseSink *base) {
  realtime::common_stop(GST_ELEMENT(base), GST_OPENAI_REALTIME_SINK(base)->common);
  return TRUE;
}

static GstFlowReturn sink_render(GstBaseSink *base, GstBuffer *buffer) {
  auto session = realtime::common_session(GST_OPENAI_REALTIME_SINK(base)->common);
  if (!session) return GST_FLOW_FLUSHING;
  GstMapInfo map;
  if (!gst_buffer_map(buffer, &map, GST_MAP_READ)) {
    GST_ELEMENT_ERROR(base, RESOURCE, READ, ("could not map buffer"), (nullptr));
    return GST_FLOW_ERROR;
  }
  // Never blocks: the session queues the audio and wakes the hub thread.
  session->push_input(map.data, map.size);
  gst_buffer_unmap(buffer, &map);
  return GST_FLOW_OK;
}

static gboolean sink_event(GstBaseSink *base, GstEvent *event) {
  if (GST_EVENT_TYPE(event) == GST_EVENT_EOS) {
    // Send the tail of the audio (even under 20 ms) so that the model gets every sample.
    auto session = realtime::common_session(GST_OPENAI_REALTIME_SINK(base)->common);
    if (session) session->finish_input();
  }
  return GST_BASE_SINK_CLASS(gst_openai_realtime_sink_parent_class)->event(base, event);
}

static void gst_openai_realtime_sink_class_init(GstOpenAIRealtimeSinkClass *klass) {
  GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
  GstBaseSinkClass *base_class = GST_BASE_SINK_CLASS(klass);

  gobject_class->set_property = sink_set_property;
  gobject_class->get_property = sink_get_property;
  gobject_class->finalize = sink_finalize;
  realtime::common_class_init(gobject_class, PROP_COMMON_FIRST);

  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_set_static_metadata(
      element_class, "OpenAI Realtime sink", "Sink/Audio/Network",
      "Streams audio to the OpenAI Realtime API (speech to speech). Shares one connection with the "
      "openairealtimesrc of the same session name, which plays the model's replies",
      "voicebridge");

  base_class->start = GST_DEBUG_FUNCPTR(sink_start);
  base_class->stop = GST_DEBUG_FUNCPTR(sink_stop);
  base_class->render = GST_DEBUG_FUNCPTR(sink_render);
  base_class->event = GST_DEBUG_FUNCPTR(sink_event);
}

static void gst_openai_realtime_sink_init(GstOpenAIRealtimeSink *self) {
  self->common = new ElementCommon();
  realtime::common_instance_init(G_OBJECT(self), self->common);
  // The audio is already paced by its source (network, jitter buffer); syncing would only add the
  // pipeline latency before the model hears the caller.
  gst_base_sink_set_sync(GST_BASE_SINK(self), FALSE);
  // Live pipelines add this sink while PLAYING; it must not wait for preroll.
  gst_base_sink_set_async_enabled(GST_BASE_SINK(self), FALSE);
}
