// vbopusdec: Opus decoder over libopus's single-stream API (opus_decoder_create/opus_decode), for
// the RTP streams of calls (channel-mapping family 0). Unlike opusdec it decodes every packet as
// soon as it arrives; in-band FEC is used only to recover a packet reported lost.
#pragma once

#include <gst/audio/gstaudiodecoder.h>

G_BEGIN_DECLS

#define GST_TYPE_VB_OPUS_DEC (gst_vb_opus_dec_get_type())
G_DECLARE_FINAL_TYPE(GstVbOpusDec, gst_vb_opus_dec, GST, VB_OPUS_DEC, GstAudioDecoder)

GST_ELEMENT_REGISTER_DECLARE(vbopusdec);

G_END_DECLS
