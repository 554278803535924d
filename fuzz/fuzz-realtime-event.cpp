// libFuzzer target: one WebSocket text frame from the Realtime server, as the session receives it.
//
// realtime::parse_server_event() reads every frame the model's endpoint sends (or anything in
// between, for a misconfigured --realtime-url), so it must survive any bytes: no crash, no leak, no
// UB, no GLib critical, and bounded recursion in json-glib. Besides the sanitizers, the target
// checks the promises its header makes about the result.
//
// Run: scripts/fuzz.sh (or build-fuzz/fuzz/fuzz-realtime-event -dict=fuzz/realtime-event.dict DIR)
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <glib.h>

#include "realtime-protocol.h"

namespace {

// A broken promise of the parser: report it and abort, so libFuzzer saves the input.
[[noreturn]] void fail(const char *what, const realtime::ServerEvent &ev) {
  std::fprintf(stderr, "fuzz-realtime-event: %s (type \"%s\")\n", what, ev.type_name.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  // The parser promises never to make json-glib hit a g_return_if_fail(); under gst-check those
  // criticals are fatal, so they are crashes here too.
  g_log_set_always_fatal((GLogLevelFlags)(G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING | G_LOG_FLAG_FATAL));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  // The session reuses one ServerEvent for the whole stream (the audio buffer keeps its capacity),
  // so parse into a reused event as well: a field leaking from the previous frame is a bug.
  static realtime::ServerEvent reused;
  realtime::ServerEvent fresh;
  std::string error;
  const char *text = reinterpret_cast<const char *>(data);

  const bool ok = realtime::parse_server_event(text, size, &reused, &error);
  const bool ok_fresh = realtime::parse_server_event(text, size, &fresh, nullptr);

  if (ok != ok_fresh)
    fail("parsing into a reused event and a fresh one disagree", reused);
  if (!ok) {
    if (error.empty())
      fail("a rejected frame has no error message", reused);
    return 0;
  }
  // The same input gives the same event, whatever the event held before.
  if (reused.type != fresh.type || reused.type_name != fresh.type_name || reused.event_id != fresh.event_id ||
      reused.item_id != fresh.item_id || reused.response_id != fresh.response_id || reused.text != fresh.text ||
      reused.audio != fresh.audio || reused.audio_end_ms != fresh.audio_end_ms ||
      reused.error.code != fresh.error.code || reused.usage.output_tokens != fresh.usage.output_tokens)
    fail("a reused event keeps state from the previous frame", reused);

  // Names are normalised: normalising again changes nothing.
  if (realtime::normalise_event_name(reused.type_name) != reused.type_name)
    fail("type_name is not a fixed point of normalise_event_name()", reused);
  if (reused.type != realtime::EventType::AudioDelta && !reused.audio.empty())
    fail("audio bytes on an event that is not an audio delta", reused);

  // What the session does next with an event: classify its error and turn audio into milliseconds.
  (void)realtime::is_fatal_error_code(reused.error.code);
  (void)realtime::is_benign_error(reused.error);
  (void)realtime::bytes_to_ms(reused.audio.size());
  return 0;
}
