// libFuzzer target: an SDP offer as it reaches the service (POST /v1/calls, /bridge/start, or a
// WhatsApp connect webhook), through every function of app/sdp.h that sees it.
//
// The offer is untrusted text. The service inspects it (inspect_offer), rewrites it for webrtcbin
// (prepare_offer, then inspects the result again), and later fixes up and reads directions of
// descriptions built around it (finalize_answer, finalize_offer, audio_direction). The input is
// also used as the "answer" of those fix-ups: they parse the same way, and a peer's answer to our
// outbound offer (WhatsApp business-initiated calls) is just as untrusted.
//
// Besides the sanitizers, the target checks what sdp.h promises about its text output.
//
// Run: scripts/fuzz.sh (or build-fuzz/fuzz/fuzz-sdp-offer -dict=fuzz/sdp-offer.dict DIR)
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <glib.h>

#include "sdp.h"

namespace {

[[noreturn]] void fail(const char *what, const std::string &text) {
  std::fprintf(stderr, "fuzz-sdp-offer: %s\n--- output ---\n%s\n--- end ---\n", what, text.c_str());
  std::abort();
}

// sdp.h: the fix-ups' results "use CRLF line ends and end with CRLF" (an empty description has
// no lines at all). So no bare CR or LF, and no empty line (split_lines drops them).
void check_crlf_text(const char *function, const std::string &out) {
  if (out.empty())
    return;
  if (out.size() < 2 || out.compare(out.size() - 2, 2, "\r\n") != 0)
    fail((std::string(function) + ": output does not end with CRLF").c_str(), out);
  for (size_t i = 0; i < out.size(); i++) {
    if (out[i] == '\r' && (i + 1 >= out.size() || out[i + 1] != '\n'))
      fail((std::string(function) + ": bare CR in output").c_str(), out);
    if (out[i] == '\n' && (i == 0 || out[i - 1] != '\r'))
      fail((std::string(function) + ": bare LF in output").c_str(), out);
    if (out[i] == '\n' && i + 2 < out.size() && out[i + 1] == '\r' && out[i + 2] == '\n')
      fail((std::string(function) + ": empty line in output").c_str(), out);
  }
}

void check_direction(const std::string &direction) {
  if (!direction.empty() && direction != "sendrecv" && direction != "sendonly" && direction != "recvonly" &&
      direction != "inactive")
    fail("audio_direction: not a direction", direction);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  // GstSDP reports API misuse with g_return_val_if_fail(): a critical here means sdp.cpp passed
  // something invalid, which is a bug like any crash.
  g_log_set_always_fatal((GLogLevelFlags)(G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING | G_LOG_FLAG_FATAL));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const std::string sdp(reinterpret_cast<const char *>(data), size);

  vb::OfferInfo info;
  std::string code, message;
  const bool usable = vb::inspect_offer(sdp, &info, &code, &message);
  if (usable) {
    if (info.audio_mline < 0 || info.opus_pt < 0 || !code.empty())
      fail("inspect_offer accepted an offer without an Opus audio m-line", sdp);
  } else if (code != "invalid_sdp" && code != "no_audio") {
    fail(("inspect_offer: error code outside the API's set: " + code).c_str(), sdp);
  }

  // What the service hands to webrtcbin, and what it inspects once more there.
  const std::string prepared = vb::prepare_offer(sdp);
  check_crlf_text("prepare_offer", prepared);
  vb::OfferInfo prepared_info;
  (void)vb::inspect_offer(prepared, &prepared_info, nullptr, nullptr);
  check_direction(vb::audio_direction(sdp));
  check_direction(vb::audio_direction(prepared));
  (void)vb::count_candidates(sdp);

  // The answer fix-ups with the options the service uses, chosen by the input's first byte so that
  // every combination is reached; the public addresses are valid ones, as the config checks them.
  const uint8_t pick = size > 0 ? data[0] : 0;
  vb::AnswerFixups fixups;
  fixups.telephone_event_pt = (pick & 1) ? (info.telephone_event_pt >= 0 ? info.telephone_event_pt : 126) : -1;
  static const char *const kPublicIps[] = {"", "203.0.113.7", "2001:db8::7", ""};
  fixups.public_ip = kPublicIps[(pick >> 1) & 3];
  fixups.sha256_only = !(pick & 8);
  fixups.default_candidate = !(pick & 16);
  fixups.end_of_candidates = !(pick & 32);
  const std::string answer = vb::finalize_answer(sdp, fixups);
  check_crlf_text("finalize_answer", answer);
  check_direction(vb::audio_direction(answer));

  const std::string offer = vb::finalize_offer(sdp, fixups.public_ip, fixups.telephone_event_pt);
  check_crlf_text("finalize_offer", offer);
  return 0;
}
