// The openairealtime plugin: registers the element pair. Nothing else lives here.
#include <gst/gst.h>

#include "openairealtimesink.h"
#include "openairealtimesrc.h"

static gboolean plugin_init(GstPlugin *plugin) {
  gboolean ok = FALSE;
  ok |= GST_ELEMENT_REGISTER(openairealtimesink, plugin);
  ok |= GST_ELEMENT_REGISTER(openairealtimesrc, plugin);
  return ok;
}

GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, openairealtime,
                  "Talk to the OpenAI Realtime API (speech to speech) from a pipeline", plugin_init, VERSION, "MIT",
                  "voicebridge", "https://example.invalid/voicebridge")
