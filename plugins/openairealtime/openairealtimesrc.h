// openairealtimesrc: plays the model's voice of a shared Realtime session as a live source of
// S16LE, 24 kHz, mono in 20 ms buffers, with silence whenever the model is quiet.
#pragma once

#include <gst/base/gstbasesrc.h>

G_BEGIN_DECLS

#define GST_TYPE_OPENAI_REALTIME_SRC (gst_openai_realtime_src_get_type())
G_DECLARE_FINAL_TYPE(GstOpenAIRealtimeSrc, gst_openai_realtime_src, GST, OPENAI_REALTIME_SRC, GstBaseSrc)

GST_ELEMENT_REGISTER_DECLARE(openairealtimesrc);

G_END_DECLS
