// The peer's DTLS certificate must match the fingerprint in its SDP. webrtcbin 1.22 does not check
// it, so voicebridge does, once DTLS is up: a mismatch (someone else terminating DTLS on the path)
// ends the call with dtls_failed before any audio reaches the model. The caller is the WhatsApp-like
// test peer (tests/meta-peer), whose offer the test can alter.
#include <gst/check/gstcheck.h>

#include "fake-realtime-server.h"
#include "meta-peer.h"
#include "service-harness.h"

using namespace svc_test;

namespace {

// The offer with its fingerprint's last octet changed: the certificate no longer matches.
std::string with_wrong_fingerprint(const std::string &offer) {
  size_t at = offer.find("a=fingerprint:sha-256 ");
  size_t eol = offer.find("\r\n", at);
  if (at == std::string::npos || eol == std::string::npos || eol < 2) return "";
  std::string out = offer;
  out[eol - 1] = out[eol - 1] == '0' ? '1' : '0';
  return out;
}

struct Placed {
  std::string call_id;
  bool ok = false;
};

Placed place_call(Http &http, meta_peer::Peer &peer, const std::string &offer) {
  Placed p;
  HttpResponse r = http.request("POST", "/v1/calls", "{\"sdp\":" + json_quote(offer) + "}");
  fail_unless(r.status == 201, "%s", r.describe().c_str());
  std::string error;
  p.call_id = r.json().str("call_id");
  p.ok = peer.set_answer(r.json().str("sdp"), &error);
  fail_unless(p.ok, "the peer refused the answer: %s", error.c_str());
  return p;
}

}  // namespace

GST_START_TEST(test_matching_fingerprint_connects) {
  fake_realtime::Server fake;
  std::string error;
  fail_unless(fake.start(0, &error), "fake server: %s", error.c_str());
  Service vb;
  fail_unless(vb.start(fake.url(), {}, &error), "%s", error.c_str());
  Http http = vb.http();
  meta_peer::Peer peer;
  fail_unless(peer.start(&error), "%s", error.c_str());
  Placed call = place_call(http, peer, peer.make_offer());
  fail_unless(vb.wait_event("CALL_MEDIA_CONNECTED", call.call_id, 10000).has_value(), "no media:\n%s",
              vb.call_log(call.call_id).c_str());
  HttpResponse live = http.request("GET", "/v1/calls/" + call.call_id);
  fail_unless(live.json().str("state") == "active", "%s", live.describe().c_str());
  fail_unless(vb.events("CALL_DTLS_FINGERPRINT_MISMATCH").empty());
  http.request("DELETE", "/v1/calls/" + call.call_id);
}
GST_END_TEST;

GST_START_TEST(test_wrong_fingerprint_ends_the_call) {
  fake_realtime::Server fake;
  std::string error;
  fail_unless(fake.start(0, &error), "fake server: %s", error.c_str());
  Service vb;
  fail_unless(vb.start(fake.url(), {}, &error), "%s", error.c_str());
  Http http = vb.http();
  meta_peer::Config cfg;
  cfg.require_fingerprint_match = false;  // the peer's own check is not what is tested here
  meta_peer::Peer peer(cfg);
  fail_unless(peer.start(&error), "%s", error.c_str());
  std::string offer = with_wrong_fingerprint(peer.make_offer());
  fail_if(offer.empty(), "no fingerprint in the peer's offer");
  Placed call = place_call(http, peer, offer);
  auto mismatch = vb.wait_event("CALL_DTLS_FINGERPRINT_MISMATCH", call.call_id, 10000);
  fail_unless(mismatch.has_value(), "the mismatch was not detected:\n%s", vb.call_log(call.call_id).c_str());
  auto ended = vb.wait_event("CALL_ENDED", call.call_id, 5000);
  fail_unless(ended.has_value() && ended->json.str("end_reason") == "dtls_failed", "%s",
              vb.call_log(call.call_id).c_str());
  // Never "connected": no CALL_MEDIA_CONNECTED, and nothing of the caller reached the model.
  fail_unless(vb.events("CALL_MEDIA_CONNECTED", call.call_id).empty());
  fail_unless(fake.all_input_audio().empty(), "%zu bytes of caller audio reached the model",
              fake.all_input_audio().size());
}
GST_END_TEST;

static Suite *service_dtls_suite(void) {
  Suite *s = suite_create("service_dtls");
  TCase *tc = tcase_create("dtls");
  tcase_set_timeout(tc, 40);
  tcase_add_test(tc, test_matching_fingerprint_connects);
  tcase_add_test(tc, test_wrong_fingerprint_ends_the_call);
  suite_add_tcase(s, tc);
  return s;
}

GST_CHECK_MAIN(service_dtls);
