// DTMF from the caller (RFC 4733 telephone-event, PT 126 at 8000 Hz, as WhatsApp sends it) becomes
// one CALL_DTMF event per key press and a short text note to the model. The caller is the
// WhatsApp-like test peer (tests/meta-peer), which sends the start packet, updates and three end
// packets of each press, interleaved with its Opus audio.
#include <gst/check/gstcheck.h>

#include "fake-realtime-server.h"
#include "meta-peer.h"
#include "service-harness.h"

using namespace svc_test;

GST_START_TEST(test_dtmf_reaches_log_and_model) {
  fake_realtime::Server fake;
  std::string error;
  fail_unless(fake.start(0, &error), "fake server: %s", error.c_str());
  Service vb;
  fail_unless(vb.start(fake.url(), {}, &error), "%s", error.c_str());
  Http http = vb.http();

  meta_peer::Config cfg;
  cfg.tone.hz = 0;  // silence, so that the fake's VAD starts no turn
  for (auto press : {std::make_pair('1', 400), std::make_pair('2', 900), std::make_pair('#', 1400)}) {
    meta_peer::DtmfPress p;
    p.digit = press.first;
    p.at_ms = press.second;
    cfg.dtmf.push_back(p);
  }
  meta_peer::Peer peer(cfg);
  fail_unless(peer.start(&error), "%s", error.c_str());
  HttpResponse r = http.request("POST", "/v1/calls", "{\"sdp\":" + json_quote(peer.make_offer()) + "}");
  fail_unless(r.status == 201, "%s", r.describe().c_str());
  std::string id = r.json().str("call_id");
  fail_unless(peer.set_answer(r.json().str("sdp"), &error), "%s", error.c_str());

  fail_unless(vb.wait_events("CALL_DTMF", 3, 10000), "DTMF events:\n%s", vb.call_log(id).c_str());
  g_usleep(500 * 1000);  // retransmitted end packets must not repeat a digit
  auto events = vb.events("CALL_DTMF", id);
  fail_unless_equals_int(events.size(), 3);
  std::string digits;
  for (const auto &e : events) digits += e.json.str("digit");
  fail_unless(digits == "12#", "digits '%s'", digits.c_str());

  // Each digit reached the model as a text item.
  auto notes = [&] {
    int n = 0;
    for (const auto &event : fake.connection(0).events)
      if (event.find("conversation.item.create") != std::string::npos && event.find("pressed the key") != std::string::npos)
        n++;
    return n;
  };
  fail_unless(fake.wait_for([&] { return notes() == 3; }, 3000), "%d notes reached the model", notes());
  http.request("DELETE", "/v1/calls/" + id);
}
GST_END_TEST;

static Suite *service_dtmf_suite(void) {
  Suite *s = suite_create("service_dtmf");
  TCase *tc = tcase_create("dtmf");
  tcase_set_timeout(tc, 40);
  tcase_add_test(tc, test_dtmf_reaches_log_and_model);
  suite_add_tcase(s, tc);
  return s;
}

GST_CHECK_MAIN(service_dtmf);
