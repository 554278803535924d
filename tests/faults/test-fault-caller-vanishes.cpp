// A WhatsApp caller that vanishes mid-call: the media peer stops abruptly (its socket closes, no
// more RTP) and Meta sends no terminate webhook (a phone that lost its network). voicebridge must
// notice the silence on its own (--media-timeout-s), end the call with media_timeout, and tell Meta
// with the Graph `terminate` action, so that neither side keeps a dead call.
#include <gst/check/gstcheck.h>

#include "audio-analysis.h"
#include "fake-graph.h"
#include "fake-realtime-server.h"
#include "fault-support.h"
#include "wa-harness.h"

using namespace svc_test;

GST_START_TEST(test_vanished_whatsapp_caller_is_terminated) {
  fake_realtime::Server realtime;
  fake_graph::Server graph(wa_test::kPhoneId, wa_test::kToken);
  std::string error;
  fail_unless(realtime.start(0, &error), "%s", error.c_str());
  fail_unless(graph.start(&error), "%s", error.c_str());
  Service vb;
  auto args = faults::whatsapp_args(graph.base_url());
  args.insert(args.end(), {"--media-timeout-s", "3"});
  fail_unless(vb.start(realtime.url(), args, &error), "%s", error.c_str());
  const std::string id = "wacid.vanish-1";

  meta_peer::Peer peer(faults::caller_saying({{300, 1000}}));
  fail_unless(peer.start(&error), "%s", error.c_str());
  fail_unless(faults::whatsapp_inbound_call(vb, graph, peer, id, &error), "%s", error.c_str());
  fail_unless(vb.wait_event("WA_CALL_ACCEPTED", id, 10000).has_value(), "%s", vb.call_log(id).c_str());
  // A real call first: the bridge's audio reaches the caller and the caller's reaches the model.
  fail_unless(peer.wait_for([](const meta_peer::Snapshot &s) { return s.received_ms >= 1500; }, 15000),
              "no audio to the caller:\n%s\n%s", peer.describe().c_str(), vb.call_log(id).c_str());
  fail_unless(realtime.wait_for(
                  [&] {
                    return faults::tone_ms(audio_test::samples_from_bytes(realtime.all_input_audio()), kModelRate,
                                           faults::kCallerHz) >= 800;
                  },
                  5000),
              "the model never got the caller's audio");
  fail_unless(vb.http().request("GET", "/v1/calls/" + id).json().str("state") == "active");

  // Gone: no terminate webhook, no more packets, the port closed.
  peer.stop();
  int64_t gone_us = g_get_monotonic_time();
  auto ended = vb.wait_event("CALL_ENDED", id, 15000);
  fail_unless(ended.has_value(), "the call outlived its caller:\n%s", vb.call_log(id).c_str());
  double after_s = faults::ms_between(gone_us, ended->mono_us) / 1000;
  fail_unless(ended->json.str("end_reason") == "media_timeout", "%s", ended->line.c_str());
  // The timeout is checked once a second: 3-4 s after the last packet, plus a loaded machine.
  fail_unless(after_s >= 2.8 && after_s <= 6.5, "ended %.2f s after the caller vanished (media timeout 3 s)", after_s);

  // Meta is told.
  fail_unless(graph.wait_replies("terminate", 1, 10000), "no terminate sent to the Graph API:\n%s",
              vb.call_log(id).c_str());
  auto terminates = faults::graph_requests(graph, "terminate", id);
  fail_unless(terminates.size() == 1 && terminates[0].status == 200, "%zu terminate(s) for %s", terminates.size(),
              id.c_str());
  auto terminate_log = vb.wait_event("WA_CALL_TERMINATED", id, 5000);
  fail_unless(terminate_log.has_value(), "no WA_CALL_TERMINATED:\n%s", vb.call_log(id).c_str());
  HttpResponse r = vb.http().request("GET", "/v1/calls/" + id);
  fail_unless(r.json().str("state") == "ended" && r.json().str("end_reason") == "media_timeout", "%s",
              r.describe().c_str());
  g_print("vanished WhatsApp caller: CALL_ENDED media_timeout %.2f s after the peer stopped (timeout 3 s), Graph "
          "terminate %.0f ms after CALL_ENDED\n",
          after_s, faults::ms_between(ended->mono_us, terminates[0].received_us));
  fail_unless(vb.glib_complaints().empty(), "GLib criticals:\n%s", vb.glib_complaints().c_str());
}
GST_END_TEST;

static Suite *fault_caller_vanishes_suite(void) {
  Suite *s = suite_create("fault_caller_vanishes");
  TCase *tc = tcase_create("vanish");
  tcase_set_timeout(tc, 90);
  tcase_add_test(tc, test_vanished_whatsapp_caller_is_terminated);
  suite_add_tcase(s, tc);
  return s;
}

GST_CHECK_MAIN(fault_caller_vanishes);
