// SIGTERM: the service stops admitting calls, lets the live ones run until --drain-timeout-s, ends
// the rest with "shutdown" and exits 0.
#include <gst/check/gstcheck.h>

#include <csignal>

#include "fake-realtime-server.h"
#include "service-harness.h"

using namespace svc_test;

namespace {

double seconds_between(int64_t from_us, int64_t to_us) { return (to_us - from_us) / 1e6; }

}  // namespace

GST_START_TEST(test_sigterm_drains_live_calls) {
  fake_realtime::Server fake;
  std::string error;
  fail_unless(fake.start(0, &error), "fake server: %s", error.c_str());
  Service vb;
  fail_unless(vb.start(fake.url(), {"--drain-timeout-s", "2"}, &error), "%s", error.c_str());

  std::vector<std::unique_ptr<ChildProcess>> callers;
  for (const char *id : {"drain-1", "drain-2"}) {
    callers.push_back(start_caller(vb.base_url(), {"--duration", "30", "--call-id", id}, &error));
    fail_unless(callers.back() != nullptr, "%s", error.c_str());
  }
  for (const char *id : {"drain-1", "drain-2"})
    fail_unless(vb.wait_event("CALL_MEDIA_CONNECTED", id, 10000).has_value(), "%s never connected:\n%s", id,
                vb.log_text().c_str());

  int64_t sigterm_us = g_get_monotonic_time();
  vb.process().send_signal(SIGTERM);
  fail_unless(vb.wait_event("SERVICE_DRAINING", "", 1000).has_value(), "no SERVICE_DRAINING:\n%s", vb.log_text().c_str());

  // While draining: not ready, no new calls, the live ones go on.
  Http http = vb.http();
  std::string problem = error_reply_problem(http.request("GET", "/readyz"), 503, "draining");
  fail_unless(problem.empty(), "readyz while draining: %s", problem.c_str());
  problem = error_reply_problem(http.request("POST", "/v1/calls", offer_body(whatsapp_offer(1), "late-1")), 503, "draining");
  fail_unless(problem.empty(), "a new call while draining: %s", problem.c_str());
  HttpResponse health = http.request("GET", "/healthz");
  fail_unless(health.status == 200 && health.json().num("active_calls") == 2, "healthz while draining: %s",
              health.describe().c_str());
  HttpResponse live = http.request("GET", "/v1/calls/drain-1");
  fail_unless(live.json().str("state") == "active", "a live call was cut at once: %s", live.describe().c_str());
  fail_unless(seconds_between(sigterm_us, g_get_monotonic_time()) < 1.5, "the checks above took too long to mean much");

  // At the deadline the calls end with "shutdown", then the process exits 0. The deadline is a
  // whole-second GLib timer (g_timeout_add_seconds): it fires up to 250 ms early or 1 s late.
  for (const char *id : {"drain-1", "drain-2"}) {
    auto ended = vb.wait_event("CALL_ENDED", id, 6000);
    fail_unless(ended.has_value(), "%s did not end:\n%s", id, vb.log_text().c_str());
    double after = seconds_between(sigterm_us, ended->mono_us);
    fail_unless(ended->json.str("end_reason") == "shutdown", "%s", ended->line.c_str());
    fail_unless(after >= 1.7 && after <= 3.5, "%s ended %.2f s after SIGTERM (drain timeout 2 s)", id, after);
  }
  fail_unless(vb.process().wait_exit(5000), "still running 5 s after the drain:\n%s", vb.log_text().c_str());
  double exit_after = seconds_between(sigterm_us, vb.process().exited_us());
  g_print("SIGTERM with 2 calls: exited %.2f s after the signal (drain timeout 2 s)\n", exit_after);
  fail_unless(vb.process().exit_status() == 0, "%s", vb.process().describe().c_str());
  fail_unless(exit_after <= 5.0, "exited %.2f s after SIGTERM", exit_after);
  fail_unless(vb.events("SERVICE_STOPPED").size() == 1, "no SERVICE_STOPPED:\n%s", vb.log_text().c_str());
  fail_unless(vb.events("CALL_ENDED", "late-1").empty(), "the refused call was created");
}
GST_END_TEST;

GST_START_TEST(test_sigterm_idle_exits_at_once) {
  fake_realtime::Server fake;
  std::string error;
  fail_unless(fake.start(0, &error), "fake server: %s", error.c_str());
  Service vb;
  fail_unless(vb.start(fake.url(), {"--drain-timeout-s", "30"}, &error), "%s", error.c_str());
  int64_t sigterm_us = g_get_monotonic_time();
  vb.process().send_signal(SIGTERM);
  fail_unless(vb.process().wait_exit(3000), "still running 3 s after SIGTERM without calls:\n%s",
              vb.log_text().c_str());
  double after = seconds_between(sigterm_us, vb.process().exited_us());
  g_print("SIGTERM without calls: exited after %.0f ms\n", after * 1000);
  fail_unless(vb.process().exit_status() == 0, "%s", vb.process().describe().c_str());
  fail_unless(after < 1.0, "took %.2f s", after);
  fail_unless(vb.events("SERVICE_STOPPED").size() == 1, "no SERVICE_STOPPED:\n%s", vb.log_text().c_str());
}
GST_END_TEST;

static Suite *service_shutdown_suite(void) {
  Suite *s = suite_create("service_shutdown");
  TCase *tc = tcase_create("shutdown");
  tcase_set_timeout(tc, 40);
  tcase_add_test(tc, test_sigterm_drains_live_calls);
  tcase_add_test(tc, test_sigterm_idle_exits_at_once);
  suite_add_tcase(s, tc);
  return s;
}

GST_CHECK_MAIN(service_shutdown);
