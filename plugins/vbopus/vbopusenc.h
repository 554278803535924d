// vbopusenc: mono Opus encoder over libopus's single-stream API (opus_encoder_create/opus_encode).
// A drop-in for opusenc in a call's send chain (same property names and src caps), without the
// multistream API's per-frame CPU detection (bench/RESULTS.md §3–5).
#pragma once

#include <gst/audio/gstaudioencoder.h>

G_BEGIN_DECLS

#define GST_TYPE_VB_OPUS_ENC (gst_vb_opus_enc_get_type())
G_DECLARE_FINAL_TYPE(GstVbOpusEnc, gst_vb_opus_enc, GST, VB_OPUS_ENC, GstAudioEncoder)

GST_ELEMENT_REGISTER_DECLARE(vbopusenc);

G_END_DECLS
