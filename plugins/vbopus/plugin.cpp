// The vbopus plugin: registers the encoder and decoder. Nothing else lives here.
#include <gst/gst.h>

#include "vbopusdec.h"
#include "vbopusenc.h"

static gboolean plugin_init(GstPlugin *plugin) {
  gboolean ok = FALSE;
  ok |= GST_ELEMENT_REGISTER(vbopusenc, plugin);
  ok |= GST_ELEMENT_REGISTER(vbopusdec, plugin);
  return ok;
}

GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, vbopus,
                  "Mono Opus encoder and decoder over libopus's single-stream API, for RTP calls", plugin_init,
                  VERSION, "MIT", "voicebridge", "https://example.invalid/voicebridge")
