// openairealtimesink: sends the audio it receives (S16LE, 24 kHz, mono) to the model of a shared
// Realtime session. A thin element: the session queues the audio and the hub thread sends it.
#pragma once

#include <gst/base/gstbasesink.h>

G_BEGIN_DECLS

#define GST_TYPE_OPENAI_REALTIME_SINK (gst_openai_realtime_sink_get_type())
G_DECLARE_FINAL_TYPE(GstOpenAIRealtimeSink, gst_openai_realtime_sink, GST, OPENAI_REALTIME_SINK, GstBaseSink)

GST_ELEMENT_REGISTER_DECLARE(openairealtimesink);

G_END_DECLS
