// SIGTERM while calls of both kinds are up (two inbound WhatsApp calls with media, one plain WebRTC
// call from voicebridge-call) and --drain-timeout-s 2: every call ends with "shutdown" at the drain
// deadline, Meta gets a `terminate` for each WhatsApp call before the process is gone (a deploy
// must not leave calls ringing on at Meta), and the process exits 0.
#include <gst/check/gstcheck.h>

#include <csignal>

#include "fake-graph.h"
#include "fake-realtime-server.h"
#include "fault-support.h"
#include "wa-harness.h"

using namespace svc_test;

GST_START_TEST(test_sigterm_drains_whatsapp_and_plain_calls) {
  fake_realtime::Server realtime;
  fake_graph::Server graph(wa_test::kPhoneId, wa_test::kToken);
  std::string error;
  fail_unless(realtime.start(0, &error), "%s", error.c_str());
  fail_unless(graph.start(&error), "%s", error.c_str());
  Service vb;
  auto args = faults::whatsapp_args(graph.base_url());
  args.insert(args.end(), {"--drain-timeout-s", "2"});
  fail_unless(vb.start(realtime.url(), args, &error), "%s", error.c_str());

  const std::vector<std::string> wa_ids = {"wacid.drain-1", "wacid.drain-2"};
  const std::string plain_id = "plain-drain-1";
  std::vector<std::unique_ptr<meta_peer::Peer>> peers;
  for (const auto &id : wa_ids) {
    peers.push_back(std::make_unique<meta_peer::Peer>(faults::caller_saying({{300, 800}})));
    fail_unless(peers.back()->start(&error), "%s", error.c_str());
    fail_unless(faults::whatsapp_inbound_call(vb, graph, *peers.back(), id, &error), "%s", error.c_str());
  }
  auto caller = start_caller(vb.base_url(), {"--duration", "30", "--call-id", plain_id}, &error);
  fail_unless(caller != nullptr, "%s", error.c_str());
  for (const auto &id : wa_ids)
    fail_unless(vb.wait_event("WA_CALL_ACCEPTED", id, 10000).has_value(), "%s", vb.call_log(id).c_str());
  for (const auto &id : {wa_ids[0], wa_ids[1], plain_id})
    fail_unless(vb.wait_event("CALL_MEDIA_CONNECTED", id, 15000).has_value(), "%s never connected:\n%s", id.c_str(),
                vb.call_log(id).c_str());
  for (auto &p : peers)
    fail_unless(p->wait_for([](const meta_peer::Snapshot &s) { return s.received_ms >= 500; }, 10000), "%s",
                p->describe().c_str());
  HttpResponse health = vb.http().request("GET", "/healthz");
  fail_unless(health.json().num("active_calls") == 3, "%s", health.describe().c_str());
  fail_unless(graph.requests_of("terminate").empty(), "a terminate before SIGTERM");

  int64_t sigterm_us = g_get_monotonic_time();
  vb.process().send_signal(SIGTERM);
  fail_unless(vb.wait_event("SERVICE_DRAINING", "", 2000).has_value(), "no SERVICE_DRAINING:\n%s",
              vb.log_text().c_str());
  for (const auto &id : {wa_ids[0], wa_ids[1], plain_id}) {
    auto ended = vb.wait_event("CALL_ENDED", id, 8000);
    fail_unless(ended.has_value(), "%s did not end:\n%s", id.c_str(), vb.log_text().c_str());
    fail_unless(ended->json.str("end_reason") == "shutdown", "%s", ended->line.c_str());
    double after_s = faults::ms_between(sigterm_us, ended->mono_us) / 1000;
    // The deadline is a whole-second GLib timer: up to 250 ms early or 1 s late (+ a loaded machine).
    fail_unless(after_s >= 1.7 && after_s <= 4.5, "%s ended %.2f s after SIGTERM (drain timeout 2 s)", id.c_str(),
                after_s);
  }
  fail_unless(vb.process().wait_exit(10000), "still running 10 s after the drain:\n%s", vb.log_text().c_str());
  double exit_s = faults::ms_between(sigterm_us, vb.process().exited_us()) / 1000;
  fail_unless(vb.process().exit_status() == 0, "%s", vb.process().describe().c_str());

  // Meta was told about each WhatsApp call, while the service was still there to tell it (the fake
  // records a request as it arrives; the service waited for the replies before exiting).
  std::string terminates;
  for (const auto &id : wa_ids) {
    auto t = faults::graph_requests(graph, "terminate", id);
    fail_unless(t.size() == 1, "%zu terminate(s) for %s:\n%s", t.size(), id.c_str(), vb.log_text().c_str());
    fail_unless(t[0].status == 200 && t[0].replied_us > 0 && t[0].received_us <= vb.process().exited_us(),
                "terminate for %s: status %d", id.c_str(), t[0].status);
    terminates += " " + id + " at " + std::to_string((int)faults::ms_between(sigterm_us, t[0].received_us)) + " ms";
  }
  fail_unless(graph.requests_of("terminate").size() == wa_ids.size(), "a terminate for a call that is not WhatsApp's");
  fail_unless(vb.events("SERVICE_STOPPED").size() == 1, "no SERVICE_STOPPED:\n%s", vb.log_text().c_str());
  // The caller polls its call once a second: it sees "shutdown", or (the service exits within
  // milliseconds of ending the calls) finds the service gone and hangs up after its 10 s without media.
  CallerResult cr = finish_caller(*caller, 15000);
  fail_unless(cr.exited && cr.report.str("end") == "remote", "caller: %s", cr.describe.c_str());
  g_print("SIGTERM with 2 WhatsApp calls + 1 plain call (drain 2 s): terminates after SIGTERM:%s; exit 0 after %.2f s; "
          "the caller saw end_reason \"%s\"\n",
          terminates.c_str(), exit_s, cr.report.str("bridge_end_reason").c_str());
  for (auto &p : peers) p->stop();
}
GST_END_TEST;

static Suite *fault_sigterm_drain_suite(void) {
  Suite *s = suite_create("fault_sigterm_drain");
  TCase *tc = tcase_create("drain");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_sigterm_drains_whatsapp_and_plain_calls);
  suite_add_tcase(s, tc);
  return s;
}

GST_CHECK_MAIN(fault_sigterm_drain);
