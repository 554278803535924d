// How calls end (CONTRACT.md §4): each way of ending gives its end_reason, in the CALL record and in
// the CALL_ENDED log event, at the right time.
#include <gst/check/gstcheck.h>

#include <csignal>
#include <cmath>

#include "fake-realtime-server.h"
#include "service-harness.h"

using namespace svc_test;

namespace {

double seconds_between(int64_t from_us, int64_t to_us) { return (to_us - from_us) / 1e6; }

}  // namespace

// DELETE ends a live call at once with "hangup"; the reply is the ended call, and the caller sees it.
GST_START_TEST(test_delete_is_hangup) {
  fake_realtime::Server fake;
  std::string error;
  fail_unless(fake.start(0, &error), "fake server: %s", error.c_str());
  Service vb;
  fail_unless(vb.start(fake.url(), {}, &error), "%s", error.c_str());

  auto caller = start_caller(vb.base_url(), {"--duration", "20", "--call-id", "hangup-1"}, &error);
  fail_unless(caller != nullptr, "%s", error.c_str());
  fail_unless(vb.wait_event("CALL_MEDIA_CONNECTED", "hangup-1", 10000).has_value(), "no media:\n%s\n%s",
              vb.log_text().c_str(), caller->describe().c_str());
  g_usleep(500 * 1000);

  HttpResponse r = vb.http().request("DELETE", "/v1/calls/hangup-1");
  Json c = r.json();
  fail_unless(r.status == 200 && c.str("call_id") == "hangup-1" && c.str("state") == "ended" &&
                  c.str("end_reason") == "hangup",
              "DELETE: %s", r.describe().c_str());
  auto ended = vb.wait_event("CALL_ENDED", "hangup-1", 1000);
  fail_unless(ended && ended->json.str("end_reason") == "hangup", "%s", vb.call_log("hangup-1").c_str());

  // Deleting again changes nothing: still the same ended call.
  HttpResponse again = vb.http().request("DELETE", "/v1/calls/hangup-1");
  fail_unless(again.status == 200 && again.json().str("state") == "ended" && again.json().str("end_reason") == "hangup",
              "second DELETE: %s", again.describe().c_str());
  fail_unless(vb.events("CALL_ENDED", "hangup-1").size() == 1, "ended twice:\n%s", vb.call_log("hangup-1").c_str());

  // The caller learns it by polling (GET every second).
  CallerResult cr = finish_caller(*caller, 8000);
  fail_unless(cr.exited && cr.report.str("end") == "remote" && cr.report.str("bridge_end_reason") == "hangup",
              "caller: %s", cr.describe.c_str());
  HttpResponse health = vb.http().request("GET", "/healthz");
  fail_unless(health.json().num("active_calls") == 0, "%s", health.describe().c_str());
}
GST_END_TEST;

// The caller vanishes (SIGKILL: no DELETE, no more RTP): with --media-timeout-s 3 the call ends with
// "media_timeout" 3 s after the last packet (checked once a second, so 3-4 s after the kill).
GST_START_TEST(test_vanished_caller_is_media_timeout) {
  fake_realtime::Server fake;
  std::string error;
  fail_unless(fake.start(0, &error), "fake server: %s", error.c_str());
  Service vb;
  fail_unless(vb.start(fake.url(), {"--media-timeout-s", "3"}, &error), "%s", error.c_str());

  auto caller = start_caller(vb.base_url(), {"--duration", "30", "--call-id", "gone-1"}, &error);
  fail_unless(caller != nullptr, "%s", error.c_str());
  fail_unless(vb.wait_event("CALL_MEDIA_CONNECTED", "gone-1", 10000).has_value(), "no media:\n%s",
              vb.log_text().c_str());
  g_usleep(1000 * 1000);
  HttpResponse live = vb.http().request("GET", "/v1/calls/gone-1");
  fail_unless(live.json().str("state") == "active", "before the kill: %s", live.describe().c_str());

  caller->send_signal(SIGKILL);
  fail_unless(caller->wait_exit(2000), "the caller survived SIGKILL");
  int64_t killed_us = g_get_monotonic_time();
  auto ended = vb.wait_event("CALL_ENDED", "gone-1", 10000);
  fail_unless(ended.has_value(), "the call did not end:\n%s", vb.call_log("gone-1").c_str());
  double after = seconds_between(killed_us, ended->mono_us);
  g_print("media_timeout: ended %.2f s after the caller was killed\n", after);
  fail_unless(ended->json.str("end_reason") == "media_timeout", "%s", ended->line.c_str());
  fail_unless(after >= 2.8 && after <= 5.5, "ended %.2f s after the caller vanished (media timeout 3 s)", after);
  HttpResponse r = vb.http().request("GET", "/v1/calls/gone-1");
  fail_unless(r.json().str("state") == "ended" && r.json().str("end_reason") == "media_timeout", "%s",
              r.describe().c_str());
}
GST_END_TEST;

// --max-call-s 2 ends a call that is still talking after 2 s with "max_duration". The limit is a
// whole-second GLib timer (g_timeout_add_seconds), which GLib rounds to a second boundary: it fires
// up to 250 ms early or up to 1 s late, hence 1.7-3.3 s.
GST_START_TEST(test_max_call_length) {
  fake_realtime::Server fake;
  std::string error;
  fail_unless(fake.start(0, &error), "fake server: %s", error.c_str());
  Service vb;
  fail_unless(vb.start(fake.url(), {"--max-call-s", "2"}, &error), "%s", error.c_str());

  auto caller = start_caller(vb.base_url(), {"--duration", "20", "--call-id", "long-1"}, &error);
  fail_unless(caller != nullptr, "%s", error.c_str());
  auto created = vb.wait_event("CALL_CREATED", "long-1", 10000);
  auto ended = vb.wait_event("CALL_ENDED", "long-1", 10000);
  fail_unless(created && ended, "%s", vb.call_log("long-1").c_str());
  fail_unless(ended->json.str("end_reason") == "max_duration", "%s", ended->line.c_str());
  fail_unless(vb.events("CALL_MEDIA_CONNECTED", "long-1").size() == 1, "the call never carried media:\n%s",
              vb.call_log("long-1").c_str());
  double after = seconds_between(created->mono_us, ended->mono_us);
  fail_unless(after >= 1.7 && after <= 3.3, "ended %.2f s after creation (limit 2 s)", after);
  HttpResponse r = vb.http().request("GET", "/v1/calls/long-1");
  Json c = r.json();
  double duration = c.num("duration_s");
  fail_unless(c.str("end_reason") == "max_duration" && duration >= 1.7 && duration <= 3.3, "%s", r.describe().c_str());
  g_print("max_duration: ended %.2f s after CALL_CREATED, duration_s %.3f (limit 2 s)\n", after, duration);
  CallerResult cr = finish_caller(*caller, 8000);
  fail_unless(cr.exited && cr.report.str("bridge_end_reason") == "max_duration", "caller: %s", cr.describe.c_str());
}
GST_END_TEST;

// The Realtime server refuses the key (HTTP 401 on the WebSocket handshake): the call ends with
// "realtime_error", logged as a fatal RT_ERROR and counted, and the key never shows in the log.
GST_START_TEST(test_realtime_refusal_is_realtime_error) {
  const std::string wrong_key = "sk-wrong-Qz93kf";
  fake_realtime::Config fc;
  fc.required_api_key = "sk-right-Lp20dd";
  fake_realtime::Server fake(fc);
  std::string error;
  fail_unless(fake.start(0, &error), "fake server: %s", error.c_str());
  Service vb;
  fail_unless(vb.start(fake.url(), {"--api-key", wrong_key}, &error), "%s", error.c_str());

  HttpResponse post = vb.http().request("POST", "/v1/calls", offer_body(whatsapp_offer(1), "rt-err-1"));
  // The refusal may come before or after the answer is ready; either the call is answered or the
  // request fails with a well-formed server error.
  if (post.status != 201) {
    fail_unless(post.status >= 500 && post.json().get("error").has("code"), "POST: %s", post.describe().c_str());
    g_print("realtime refusal before the answer: POST got %s\n", post.describe().c_str());
  }
  auto ended = vb.wait_event("CALL_ENDED", "rt-err-1", 5000);
  fail_unless(ended.has_value(), "the call did not end:\n%s", vb.log_text().c_str());
  fail_unless(ended->json.str("end_reason") == "realtime_error", "%s", ended->line.c_str());
  auto rt_error = vb.wait_event("RT_ERROR", "rt-err-1", 1000);
  fail_unless(rt_error && rt_error->json.boolean("fatal"), "no fatal RT_ERROR:\n%s",
              vb.call_log("rt-err-1").c_str());
  HttpResponse r = vb.http().request("GET", "/v1/calls/rt-err-1");
  fail_unless(r.json().str("state") == "ended" && r.json().str("end_reason") == "realtime_error", "%s",
              r.describe().c_str());

  auto refused = fake.rejected_handshakes();
  fail_unless(!refused.empty() && refused[0] == "Bearer " + wrong_key, "the fake refused %zu handshakes (%s)",
              refused.size(), refused.empty() ? "" : refused[0].c_str());
  fail_unless(vb.log_text().find(wrong_key) == std::string::npos, "the API key is in the log:\n%s",
              vb.log_text().c_str());
  HttpResponse metrics = vb.http().request("GET", "/metrics");
  fail_unless(metrics.body.find("voicebridge_realtime_errors_total{") != std::string::npos, "no realtime error counted:\n%s",
              metrics.body.c_str());
}
GST_END_TEST;

// BUG (app/call.cpp): a call that ends before its answer is ready (here: the Realtime key is
// refused within milliseconds, while ICE still gathers) must be ended cleanly. Callbacks queued for
// it still run after teardown: on_gathering_state's main-context task calls g_object_get() on the
// freed webrtcbin pointer (a GLib-GObject CRITICAL), and on_remote_set/on_answer_created report
// "webrtcbin is closed" through fail_answer(), logging a false CALL_SETUP_FAILED code invalid_sdp
// for a valid offer.
GST_START_TEST(test_call_ended_during_setup_leaves_no_criticals) {
  fake_realtime::Config fc;
  fc.required_api_key = "sk-right-Lp20dd";
  fake_realtime::Server fake(fc);
  std::string error;
  fail_unless(fake.start(0, &error), "fake server: %s", error.c_str());
  Service vb;
  fail_unless(vb.start(fake.url(), {"--api-key", "sk-wrong-Qz93kf"}, &error), "%s", error.c_str());

  // A few calls, since the race is not won every time.
  for (int i = 0; i < 4; i++) {
    std::string id = "early-end-" + std::to_string(i);
    vb.http().request("POST", "/v1/calls", offer_body(whatsapp_offer(1 + i % 2), id));
    fail_unless(vb.wait_event("CALL_ENDED", id, 5000).has_value(), "%s did not end", id.c_str());
  }
  g_usleep(500 * 1000);  // let late callbacks run
  std::string false_failures;
  for (const auto &e : vb.events("CALL_SETUP_FAILED")) false_failures += e.line + "\n";
  fail_unless(vb.glib_complaints().empty(), "GLib criticals after calls ended during setup:\n%s",
              vb.glib_complaints().c_str());
  fail_unless(false_failures.empty(), "CALL_SETUP_FAILED logged for valid offers after the call had ended:\n%s",
              false_failures.c_str());
}
GST_END_TEST;

static Suite *service_end_reasons_suite(void) {
  Suite *s = suite_create("service_end_reasons");
  TCase *tc = tcase_create("end_reasons");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_delete_is_hangup);
  tcase_add_test(tc, test_vanished_caller_is_media_timeout);
  tcase_add_test(tc, test_max_call_length);
  tcase_add_test(tc, test_realtime_refusal_is_realtime_error);
  tcase_add_test(tc, test_call_ended_during_setup_leaves_no_criticals);
  suite_add_tcase(s, tc);
  return s;
}

GST_CHECK_MAIN(service_end_reasons);
