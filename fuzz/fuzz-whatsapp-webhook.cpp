// libFuzzer target: the body of POST /whatsapp/webhook, through what app/whatsapp-webhook.h does with
// it: the X-Hub-Signature-256 check (with a fixed app secret), the envelope parser, the delivery
// rules, and the SDP functions that a connect event's offer or answer goes on to.
//
// The signature check runs on bytes straight from the Internet; the parser only on signed bodies,
// but Meta's envelopes change shape over time and carry the caller's SDP, so both must survive any
// input. Besides the sanitizers, the target checks the promises of the header: a correct signature
// is Valid in either hex case, any other is not, and a malformed header is never Valid.
//
// Run: scripts/fuzz.sh (or build-fuzz/fuzz/fuzz-whatsapp-webhook -dict=fuzz/whatsapp-webhook.dict DIR)
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <glib.h>

#include "sdp.h"
#include "whatsapp-webhook.h"

namespace {

// Not a real secret: any fixed key exercises the same code.
const std::string kAppSecret = "fuzz-app-secret-0123456789abcdef";
// A fixed "now" for the staleness rule, so that runs are reproducible.
constexpr long long kNow = 1760681600;
constexpr long long kMaxAge = 300;

[[noreturn]] void fail(const char *what) {
  std::fprintf(stderr, "fuzz-whatsapp-webhook: %s\n", what);
  std::abort();
}

void check_signature_rules(const char *body, size_t size, const uint8_t *data) {
  using vb::wa::Signature;
  const std::string hex = vb::wa::hmac_sha256_hex(kAppSecret, body, size);
  if (hex.size() != 64)
    fail("hmac_sha256_hex is not 64 hex digits");
  const std::string header = "sha256=" + hex;
  if (vb::wa::check_signature(kAppSecret, header, body, size) != Signature::Valid)
    fail("the correct signature is not Valid");
  std::string upper = header;
  for (size_t i = 7; i < upper.size(); i++)
    upper[i] = g_ascii_toupper(upper[i]);
  if (vb::wa::check_signature(kAppSecret, upper, body, size) != Signature::Valid)
    fail("the correct signature in upper-case hex is not Valid");

  // One digit changed, at a place the input chooses.
  std::string wrong = header;
  const size_t at = 7 + (size ? data[size - 1] : 0) % 64;
  wrong[at] = wrong[at] == '0' ? '1' : '0';
  if (vb::wa::check_signature(kAppSecret, wrong, body, size) != Signature::Mismatch)
    fail("a signature with one wrong digit is not a Mismatch");
  if (vb::wa::check_signature(kAppSecret, "", body, size) != Signature::Missing)
    fail("an empty header is not Missing");
  if (vb::wa::check_signature("", header, body, size) == Signature::Valid)
    fail("an empty app secret validated a body");

  // A header made of the input itself (the body's first bytes): whatever it is, parsing it must be
  // safe, and it cannot be a valid signature of the body.
  const std::string forged(body, size < 71 ? size : 71);
  const Signature s = vb::wa::check_signature(kAppSecret, forged, body, size);
  if (s == Signature::Valid)
    fail("a header taken from the body validated");
  (void)vb::wa::signature_name(s);

  // constant_time_equal is plain equality.
  const std::string a(body, size / 2), b(body + size / 2, size - size / 2);
  if (vb::wa::constant_time_equal(a, b) != (a == b) || !vb::wa::constant_time_equal(a, a))
    fail("constant_time_equal differs from ==");
}

// A connect event's SDP goes to the same functions as an offer posted to /v1/calls.
void follow_sdp(const std::string &sdp) {
  if (sdp.empty())
    return;
  vb::OfferInfo info;
  std::string code, message;
  (void)vb::inspect_offer(sdp, &info, &code, &message);
  (void)vb::audio_direction(vb::prepare_offer(sdp));
}

void follow_errors(const std::vector<vb::wa::MetaError> &errors) {
  for (const auto &e : errors) {
    (void)vb::wa::meta_error_meaning(e.code);
    (void)vb::wa::describe_meta_error(e);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  // The parser reads members only with the right type because json-glib's typed getters emit
  // criticals otherwise: one here is a bug.
  g_log_set_always_fatal((GLogLevelFlags)(G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING | G_LOG_FLAG_FATAL));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *body = reinterpret_cast<const char *>(data);
  check_signature_rules(body, size, data);

  vb::wa::Webhook webhook;
  std::string error;
  if (!vb::wa::parse_webhook(body, size, &webhook, &error)) {
    if (error.empty())
      fail("parse_webhook failed without an error message");
    if (!webhook.calls.empty() || !webhook.statuses.empty() || !webhook.errors.empty())
      fail("parse_webhook failed but returned events");
    return 0;
  }

  // The delivery rules as the service applies them to one webhook: every (id, event) pair is new
  // once and a duplicate afterwards (a small capacity also exercises the eviction).
  vb::wa::SeenEvents seen(4);
  for (const auto &call : webhook.calls) {
    if (call.user_initiated() == call.business_initiated())
      fail("a call is both user- and business-initiated, or neither");
    (void)vb::wa::is_stale(call.timestamp, kNow, kMaxAge);
    if (seen.first_time(call.id, call.event) && seen.first_time(call.id, call.event))
      fail("SeenEvents: a pair was new twice in a row");
    if (!seen.contains(call.id, call.event))
      fail("SeenEvents: the pair just recorded is not contained");
    follow_sdp(call.sdp);
    follow_errors(call.errors);
  }
  for (const auto &status : webhook.statuses) {
    (void)vb::wa::is_stale(status.timestamp, kNow, kMaxAge);
    (void)seen.first_time(status.id, status.status);
    follow_errors(status.errors);
  }
  for (const auto &value : webhook.errors)
    follow_errors(value.errors);
  if (seen.size() > 4)
    fail("SeenEvents grew beyond its capacity");
  return 0;
}
