// End-to-end tests of WhatsApp calling with the real voicebridge binary (build/app/voicebridge):
// signed webhooks in, Graph API actions out to the fake Graph API (fake-graph.h), the Realtime
// side served by the in-process fake. Signalling only: WhatsApp's media address points at a
// silent local port, so the SDP/Graph choreography is checked without a media peer (the audio
// tests, with a WhatsApp-like peer, are in test-whatsapp-audio.cpp).
#include <gst/check/gstcheck.h>

#include <memory>
#include <string>
#include <vector>

#include "fake-graph.h"
#include "fake-realtime-server.h"
#include "wa-harness.h"

using wa_test::LogLine;

namespace {

// One service with its fakes.
struct Env {
  fake_realtime::Server realtime;
  fake_graph::Server graph{wa_test::kPhoneId, wa_test::kToken};
  wa_test::Service vb;

  explicit Env(const std::vector<std::string> &extra = {}, bool start_now = true) {
    std::string error;
    fail_unless(realtime.start(0, &error), "%s", error.c_str());
    fail_unless(graph.start(&error), "%s", error.c_str());
    if (start_now) start(extra);
  }
  void start(const std::vector<std::string> &extra) {
    std::string error;
    fail_unless(vb.start(realtime.url(), graph.base_url(), extra, &error), "%s", error.c_str());
  }
  ~Env() {
    vb.stop();
    if (g_getenv("WA_TEST_VERBOSE")) fputs(vb.log_text().c_str(), stderr);
    graph.stop();
    realtime.stop();
  }

  LogLine need(const std::string &event, const std::string &call_id, int timeout_ms = 10000, size_t nth = 1) {
    auto line = vb.wait_event(event, call_id, timeout_ms, nth);
    // check's fork mode skips destructors on failure: show the whole log here when asked.
    if (!line && g_getenv("WA_TEST_VERBOSE")) fputs(vb.log_text().c_str(), stderr);
    fail_unless(line.has_value(), "no %s for %s; log:\n%s", event.c_str(), call_id.c_str(), vb.log_tail().c_str());
    return *line;
  }
  // An inbound call up to accept, returning the time the webhook was posted.
  int64_t inbound(const std::string &id, int port) {
    int64_t t0 = wa_test::now_us();
    auto r = vb.post_webhook(wa_test::connect_webhook(id, wa_test::local_offer(port)));
    fail_unless_equals_int(r.status, 200);
    fail_unless(graph.wait_replies("accept", 1, 15000), "no accept; log:\n%s", vb.log_tail().c_str());
    need("WA_CALL_ACCEPTED", id);
    return t0;
  }
};

size_t count(const std::vector<fake_graph::Request> &reqs, const std::string &action) {
  size_t n = 0;
  for (const auto &r : reqs)
    if (r.action == action) n++;
  return n;
}

bool contains(const std::string &haystack, const std::string &needle) { return haystack.find(needle) != std::string::npos; }

}  // namespace

GST_START_TEST(test_handshake) {
  Env env;
  std::string q = std::string("/whatsapp/webhook?hub.mode=subscribe&hub.verify_token=") + wa_test::kVerifyToken +
                  "&hub.challenge=1158201444";
  auto ok = env.vb.get(q);
  fail_unless_equals_int(ok.status, 200);
  WA_ASSERT_STR_EQ(ok.body, "1158201444");
  WA_ASSERT_STR_EQ(ok.content_type, "text/plain");
  auto wrong = env.vb.get("/whatsapp/webhook?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1");
  fail_unless_equals_int(wrong.status, 403);
  fail_if(contains(wrong.body, "1\""));
  auto mode = env.vb.get(std::string("/whatsapp/webhook?hub.mode=unsubscribe&hub.verify_token=") +
                         wa_test::kVerifyToken + "&hub.challenge=1");
  fail_unless_equals_int(mode.status, 403);
  fail_unless_equals_int(env.vb.get("/whatsapp/webhook").status, 403);
  fail_if(contains(env.vb.log_text(), wa_test::kVerifyToken));
}
GST_END_TEST;

GST_START_TEST(test_signature_required) {
  Env env;
  wa_test::SilentPort peer;
  std::string body = wa_test::connect_webhook("wacid.unsigned", wa_test::local_offer(peer.port()));
  auto unsigned_r = env.vb.post_webhook(body, false);
  fail_unless_equals_int(unsigned_r.status, 401);
  WA_ASSERT_STR_EQ(wa_test::json_path(unsigned_r.body, "error.code"), "bad_signature");
  auto wrong = env.vb.post("/whatsapp/webhook", body, {{"X-Hub-Signature-256", wa_test::signature(body, "not-the-secret")}});
  fail_unless_equals_int(wrong.status, 401);
  WA_ASSERT_STR_EQ(wa_test::json_path(wrong.body, "error.code"), "bad_signature");
  auto prefix = env.vb.post("/whatsapp/webhook", body,
                            {{"X-Hub-Signature-256", "sha1=" + wa_test::signature(body, wa_test::kAppSecret).substr(7)}});
  fail_unless_equals_int(prefix.status, 401);
  // Signed, then changed in transit.
  std::string tampered = body;
  tampered[tampered.find("917358580180")] = '8';
  auto changed = env.vb.post("/whatsapp/webhook", tampered,
                             {{"X-Hub-Signature-256", wa_test::signature(body, wa_test::kAppSecret)}});
  fail_unless_equals_int(changed.status, 401);
  g_usleep(700000);
  fail_unless_equals_int((int)env.graph.requests().size(), 0);
  fail_unless(env.vb.events("WA_CALL_CONNECT").empty());
  fail_unless(env.vb.events("CALL_CREATED").empty());
  fail_unless_equals_int((int)env.vb.events("WA_WEBHOOK_BAD_SIGNATURE").size(), 4);
  auto calls = env.vb.get("/v1/calls");
  WA_ASSERT_STR_EQ(wa_test::json_path(calls.body, "calls"), "[]");
}
GST_END_TEST;

GST_START_TEST(test_inbound_choreography) {
  Env env;
  wa_test::SilentPort peer;
  const std::string id = "wacid.HBgMOTE3MzU4NTgwMTgwFQIAEhggQUNEODk3OUQ3NzI4MjZBRTZFNEE2MzU3NDEzNDg4RUUcGAsxNTU1MTQ0MTkwNhUCABUKAA==";
  std::string body = wa_test::connect_webhook(id, wa_test::local_offer(peer.port()));
  int64_t t0 = wa_test::now_us();
  auto r = env.vb.post_webhook(body);
  double reply_ms = (wa_test::now_us() - t0) / 1000.0;
  fail_unless_equals_int(r.status, 200);
  fail_unless(reply_ms < 1000, "the webhook reply took %.0f ms", reply_ms);
  fail_unless(env.graph.wait_replies("accept", 1, 15000), "no accept; log:\n%s", env.vb.log_tail().c_str());

  auto reqs = env.graph.requests();
  fail_unless_equals_int((int)reqs.size(), 2);
  const auto &pre = reqs[0], &acc = reqs[1];
  WA_ASSERT_STR_EQ(pre.action, "pre_accept");
  WA_ASSERT_STR_EQ(acc.action, "accept");
  fail_unless(acc.received_us >= pre.replied_us, "accept sent before pre_accept returned");
  for (const auto *q : {&pre, &acc}) {
    WA_ASSERT_STR_EQ(q->call_id, id);
    WA_ASSERT_STR_EQ(q->sdp_type, "answer");
    WA_ASSERT_STR_EQ(q->messaging_product, "whatsapp");
    WA_ASSERT_STR_EQ(q->authorization, std::string("Bearer ") + wa_test::kToken);
    WA_ASSERT_STR_EQ(q->path, "/v23.0/123/calls");
  }
  fail_unless(pre.sdp == acc.sdp, "accept's SDP differs from pre_accept's");
  const std::string &answer = pre.sdp;
  fail_unless(contains(answer, "a=setup:active\r\n"), "%s", answer.c_str());
  fail_unless(contains(answer, "a=fingerprint:sha-256 "), "%s", answer.c_str());
  fail_unless(contains(answer, "a=candidate:"), "%s", answer.c_str());
  fail_unless(contains(answer, "a=mid:audio\r\n"), "%s", answer.c_str());
  fail_unless(contains(answer, "a=sendrecv"), "%s", answer.c_str());
  fail_if(contains(answer, "a=ice-lite"));
  fail_unless(answer.size() >= 2 && answer.compare(answer.size() - 2, 2, "\r\n") == 0);

  // The contract's events, in order, named by the wacid.
  auto connect = env.need("WA_CALL_CONNECT", id);
  auto created = env.need("WA_WEBRTC_BRIDGE_CREATED", id);
  auto pre_log = env.need("WA_CALL_PRE_ACCEPTED", id);
  auto acc_log = env.need("WA_CALL_ACCEPTED", id);
  fail_unless(connect.mono_us <= created.mono_us && created.mono_us <= pre_log.mono_us &&
              pre_log.mono_us <= acc_log.mono_us);
  // The caller's number and name are personal data: never in info-level logs.
  WA_ASSERT_STR_EQ(connect.get("from"), "");
  WA_ASSERT_STR_EQ(connect.get("caller_name"), "");
  env.need("CALL_CREATED", id);
  env.need("RT_SESSION_READY", id);  // the Realtime session opened with the call, before any media
  auto call = env.vb.get("/v1/calls/" + id);
  fail_unless_equals_int(call.status, 200);
  WA_ASSERT_STR_EQ(wa_test::json_path(call.body, "direction"), "inbound");

  fprintf(stderr, "timing: connect webhook -> pre_accept received %.1f ms, -> accept received %.1f ms\n",
          (pre.received_us - t0) / 1000.0, (acc.received_us - t0) / 1000.0);

  // Meta repeats the webhook: nothing changes.
  auto again = env.vb.post_webhook(body);
  fail_unless_equals_int(again.status, 200);
  env.need("WA_WEBHOOK_DUPLICATE", id);
  g_usleep(500000);
  fail_unless_equals_int((int)env.graph.requests().size(), 2);
  fail_unless_equals_int((int)env.vb.events("CALL_CREATED", id).size(), 1);

  // WhatsApp hangs up (a FAILED terminate with 138021): the call ends, nothing goes back to Meta.
  auto t = env.vb.post_webhook(wa_test::terminate_webhook(id));
  fail_unless_equals_int(t.status, 200);
  auto ended = env.need("CALL_ENDED", id);
  WA_ASSERT_STR_EQ(ended.get("end_reason"), "terminated");
  auto term = env.need("WA_CALL_TERMINATE", id);
  WA_ASSERT_STR_EQ(term.get("ended_by"), "whatsapp");
  auto err = env.need("WA_ERROR", id);
  fail_unless(contains(err.get("msg"), "media receive timeout"), "%s", err.text.c_str());
  g_usleep(800000);
  fail_unless_equals_int((int)count(env.graph.requests(), "terminate"), 0);
  auto after = env.vb.get("/v1/calls/" + id);
  WA_ASSERT_STR_EQ(wa_test::json_path(after.body, "state"), "ended");
  WA_ASSERT_STR_EQ(wa_test::json_path(after.body, "end_reason"), "terminated");
  auto metrics = env.vb.get("/metrics");
  fail_unless(contains(metrics.body, "voicebridge_whatsapp_errors_total{code=\"138021\",source=\"webhook\"} 1\n"),
              "%s", metrics.body.c_str());

  // No secret in any log line.
  std::string log = env.vb.log_text();
  fail_if(contains(log, wa_test::kToken));
  fail_if(contains(log, wa_test::kAppSecret));
  fail_if(contains(log, wa_test::kVerifyToken));
}
GST_END_TEST;

GST_START_TEST(test_delete_sends_terminate) {
  Env env;
  wa_test::SilentPort peer;
  const std::string id = "wacid.delete-me";
  env.inbound(id, peer.port());
  auto del = env.vb.del("/v1/calls/" + id);
  fail_unless_equals_int(del.status, 200);
  fail_unless(env.graph.wait_requests("terminate", 1, 10000), "no terminate; log:\n%s", env.vb.log_tail().c_str());
  auto term = env.graph.requests_of("terminate")[0];
  WA_ASSERT_STR_EQ(term.call_id, id);
  fail_unless(term.sdp.empty());
  auto log = env.need("WA_CALL_TERMINATE", id);
  WA_ASSERT_STR_EQ(log.get("ended_by"), "bridge");
  WA_ASSERT_STR_EQ(log.get("reason"), "hangup");
  // Meta's own terminate webhook that follows changes nothing.
  env.vb.post_webhook(wa_test::terminate_webhook(id, 0, false));
  g_usleep(500000);
  fail_unless_equals_int((int)env.graph.requests_of("terminate").size(), 1);
}
GST_END_TEST;

GST_START_TEST(test_shutdown_terminates) {
  // SIGTERM drains; calls still up at the drain timeout end "shutdown", and Meta hears terminate
  // before the process exits.
  Env env({"--drain-timeout-s", "1"});
  wa_test::SilentPort peer;
  const std::string id = "wacid.shutdown";
  env.inbound(id, peer.port());
  env.vb.stop();
  auto terms = env.graph.requests_of("terminate");
  fail_unless_equals_int((int)terms.size(), 1);
  WA_ASSERT_STR_EQ(terms[0].call_id, id);
  fail_unless(terms[0].replied_us > 0);
  auto log = env.vb.events("WA_CALL_TERMINATE", id);
  fail_unless_equals_int((int)log.size(), 1);
  WA_ASSERT_STR_EQ(log[0].get("reason"), "shutdown");
}
GST_END_TEST;

GST_START_TEST(test_terminate_before_connect) {
  Env env;
  wa_test::SilentPort peer;
  const std::string id = "wacid.out-of-order";
  fail_unless_equals_int(env.vb.post_webhook(wa_test::terminate_webhook(id, 0, false)).status, 200);
  env.need("WA_CALL_TERMINATE", id);
  fail_unless_equals_int(env.vb.post_webhook(wa_test::connect_webhook(id, wa_test::local_offer(peer.port()))).status, 200);
  env.need("WA_CALL_REFUSED", id);
  g_usleep(800000);
  fail_unless_equals_int((int)env.graph.requests().size(), 0);
  fail_unless_equals_int(env.vb.get("/v1/calls/" + id).status, 404);
  fail_unless(env.vb.events("CALL_CREATED", id).empty());
}
GST_END_TEST;

GST_START_TEST(test_stale_and_batched) {
  Env env;
  wa_test::SilentPort peer;
  // A retry from ten minutes ago is dropped.
  env.vb.post_webhook(wa_test::connect_webhook("wacid.stale", wa_test::local_offer(peer.port()), wa_test::now_s() - 600));
  env.need("WA_WEBHOOK_STALE", "wacid.stale");
  // Two calls in one delivery (two entries), both answered.
  std::string batch = wa_test::merge_webhooks({wa_test::connect_webhook("wacid.batch-1", wa_test::local_offer(peer.port())),
                                               wa_test::connect_webhook("wacid.batch-2", wa_test::local_offer(peer.port()))});
  fail_unless_equals_int(env.vb.post_webhook(batch).status, 200);
  fail_unless(env.graph.wait_replies("accept", 2, 15000), "log:\n%s", env.vb.log_tail().c_str());
  env.need("WA_CALL_ACCEPTED", "wacid.batch-1");
  env.need("WA_CALL_ACCEPTED", "wacid.batch-2");
  for (const auto &r : env.graph.requests()) fail_if(r.call_id == "wacid.stale");
  fail_unless(env.vb.events("CALL_CREATED", "wacid.stale").empty());
}
GST_END_TEST;

GST_START_TEST(test_outbound) {
  Env env;
  int64_t t0 = wa_test::now_us();
  auto r = env.vb.post("/v1/whatsapp/calls", "{\"to\":\"15551234567\",\"greeting\":\"Hello from the test\"}");
  fail_unless_equals_int(r.status, 202);
  std::string wacid = wa_test::json_path(r.body, "call_id");
  auto connects = env.graph.requests_of("connect");
  fail_unless_equals_int((int)connects.size(), 1);
  const auto &c = connects[0];
  WA_ASSERT_STR_EQ(wacid, c.reply_call_id);
  WA_ASSERT_STR_EQ(c.to, "15551234567");
  WA_ASSERT_STR_EQ(c.sdp_type, "offer");
  fail_unless(c.call_id.empty());
  const std::string &offer = c.sdp;
  fail_unless(contains(offer, "a=setup:actpass"), "%s", offer.c_str());
  fail_unless(contains(offer, "opus/48000/2"), "%s", offer.c_str());
  fail_unless(contains(offer, "a=rtpmap:126 telephone-event/8000"), "%s", offer.c_str());
  fail_unless(contains(offer, "a=candidate:"), "%s", offer.c_str());
  fail_unless(contains(offer, "a=fingerprint:sha-256 "), "%s", offer.c_str());
  fail_if(contains(offer, "a=ice-options:trickle"), "%s", offer.c_str());
  fail_unless(contains(offer, "m=audio ") && contains(offer, " 126"), "%s", offer.c_str());
  fprintf(stderr, "timing: POST /v1/whatsapp/calls -> connect sent %.1f ms\n", (c.received_us - t0) / 1000.0);

  auto call = env.vb.get("/v1/calls/" + wacid);
  fail_unless_equals_int(call.status, 200);
  WA_ASSERT_STR_EQ(wa_test::json_path(call.body, "direction"), "outbound");
  env.need("WA_CALL_PLACED", wacid);
  env.need("CALL_CREATED", "");

  // Meta's answer (ice-lite, setup:active): we control ICE and are the DTLS server.
  wa_test::SilentPort peer;
  fail_unless_equals_int(env.vb.post_webhook(wa_test::bic_connect_webhook(wacid, wa_test::meta_answer(offer, peer.port()))).status, 200);
  auto connect = env.need("WA_CALL_CONNECT", wacid);
  WA_ASSERT_STR_EQ(connect.get("direction"), "outbound");
  env.need("WA_CALL_ANSWER_APPLIED", wacid);
  auto roles = env.need("CALL_ROLES", wacid);
  WA_ASSERT_STR_EQ(roles.get("ice_role"), "controlling");
  WA_ASSERT_STR_EQ(roles.get("dtls_role"), "server");
  env.vb.post_webhook(wa_test::status_webhook(wacid, "RINGING"));
  env.need("WA_CALL_RINGING", wacid);
  fail_unless(env.vb.events("WA_CALL_ACCEPTED", wacid).empty());
  env.vb.post_webhook(wa_test::status_webhook(wacid, "ACCEPTED"));
  env.need("WA_CALL_ACCEPTED", wacid);
  // The bridge hangs up: Meta is told.
  fail_unless_equals_int(env.vb.del("/v1/calls/" + wacid).status, 200);
  fail_unless(env.graph.wait_requests("terminate", 1, 10000));
  WA_ASSERT_STR_EQ(env.graph.requests_of("terminate")[0].call_id, wacid);
}
GST_END_TEST;

GST_START_TEST(test_outbound_rejected) {
  Env env;
  auto r = env.vb.post("/v1/whatsapp/calls", "{\"to\":\"15551234567\"}");
  fail_unless_equals_int(r.status, 202);
  std::string wacid = wa_test::json_path(r.body, "call_id");
  env.vb.post_webhook(wa_test::status_webhook(wacid, "RINGING"));
  env.vb.post_webhook(wa_test::status_webhook(wacid, "REJECTED"));
  auto ended = env.need("CALL_ENDED", wacid);
  WA_ASSERT_STR_EQ(ended.get("end_reason"), "rejected");
  // Meta's terminate webhook follows a rejection; nothing is sent back.
  env.vb.post_webhook(wa_test::terminate_webhook(wacid, 0, false));
  g_usleep(700000);
  fail_unless_equals_int((int)env.graph.requests_of("terminate").size(), 0);
}
GST_END_TEST;

GST_START_TEST(test_graph_retries) {
  Env env;
  env.graph.add_rule({"pre_accept", 2, 500});
  wa_test::SilentPort peer;
  const std::string id = "wacid.retried";
  env.inbound(id, peer.port());
  auto pres = env.graph.requests_of("pre_accept");
  fail_unless_equals_int((int)pres.size(), 3);
  fail_unless_equals_int(pres[0].status, 500);
  fail_unless_equals_int(pres[2].status, 200);
  fail_unless_equals_int((int)env.graph.requests_of("accept").size(), 1);
  fail_unless(pres[2].sdp == env.graph.requests_of("accept")[0].sdp);
  fail_unless_equals_int((int)env.vb.events("WA_GRAPH_RETRY", id).size(), 2);
  auto call = env.vb.get("/v1/calls/" + id);
  fail_unless(wa_test::json_path(call.body, "state") != "ended", "%s", call.body.c_str());
}
GST_END_TEST;

GST_START_TEST(test_graph_4xx_on_connect) {
  Env env;
  env.graph.add_rule({"connect", -1, 400,
                      fake_graph::meta_error_body(138006, "No approved call permission from the recipient")});
  auto r = env.vb.post("/v1/whatsapp/calls", "{\"to\":\"15551234567\"}");
  fail_unless_equals_int(r.status, 502);
  WA_ASSERT_STR_EQ(wa_test::json_path(r.body, "error.code"), "graph_error");
  std::string message = wa_test::json_path(r.body, "error.message");
  fail_unless(contains(message, "138006"), "%s", message.c_str());
  fail_unless_equals_int((int)env.graph.requests_of("connect").size(), 1);
  auto ended = env.need("CALL_ENDED", "");
  WA_ASSERT_STR_EQ(ended.get("end_reason"), "graph_error");
  g_usleep(300000);
  fail_unless_equals_int((int)env.graph.requests().size(), 1);
}
GST_END_TEST;

GST_START_TEST(test_place_call_validation) {
  Env env({"--control-token", "control-token-for-tests"});
  const std::map<std::string, std::string> auth = {{"Authorization", "Bearer control-token-for-tests"}};
  fail_unless_equals_int(env.vb.post("/v1/whatsapp/calls", "{\"to\":\"15551234567\"}").status, 401);
  fail_unless_equals_int(
      env.vb.post("/v1/whatsapp/calls", "{\"to\":\"15551234567\"}", {{"Authorization", "Bearer wrong"}}).status, 401);
  auto bad_json = env.vb.post("/v1/whatsapp/calls", "{\"to\":", auth);
  fail_unless_equals_int(bad_json.status, 400);
  WA_ASSERT_STR_EQ(wa_test::json_path(bad_json.body, "error.code"), "invalid_json");
  fail_unless_equals_int(env.vb.post("/v1/whatsapp/calls", "{\"to\":15551234567}", auth).status, 400);
  for (const char *to : {"", "+15551234567", "1555 123", "12345", "123456789012345678901", "abcdefg"}) {
    auto r = env.vb.post("/v1/whatsapp/calls", std::string("{\"to\":\"") + to + "\"}", auth);
    fail_unless_equals_int(r.status, 400);
    WA_ASSERT_STR_EQ(wa_test::json_path(r.body, "error.code"), "invalid_to");
  }
  fail_unless_equals_int(env.vb.post("/v1/whatsapp/calls", "{}", auth).status, 400);
  fail_unless_equals_int(env.vb.get("/v1/whatsapp/calls", auth).status, 405);
  fail_unless_equals_int((int)env.graph.requests().size(), 0);
  // The webhook is Meta's: it needs the signature, never the control token.
  fail_unless_equals_int(env.vb.get(std::string("/whatsapp/webhook?hub.mode=subscribe&hub.verify_token=") +
                                    wa_test::kVerifyToken + "&hub.challenge=7")
                             .status,
                         200);
  auto placed = env.vb.post("/v1/whatsapp/calls", "{\"to\":\"15551234567\"}", auth);
  fail_unless_equals_int(placed.status, 202);
}
GST_END_TEST;

GST_START_TEST(test_insecure_skip_signature) {
  Env env({"--insecure-skip-signature"});
  env.need("WA_INSECURE_SKIP_SIGNATURE", "");
  wa_test::SilentPort peer;
  auto r = env.vb.post_webhook(wa_test::connect_webhook("wacid.insecure", wa_test::local_offer(peer.port())), false);
  fail_unless_equals_int(r.status, 200);
  fail_unless(env.graph.wait_requests("accept", 1, 15000));
}
GST_END_TEST;

static Suite *whatsapp_e2e_suite() {
  Suite *s = suite_create("whatsapp-e2e");
  TCase *t = tcase_create("e2e");
  tcase_set_timeout(t, 45);
  tcase_add_test(t, test_handshake);
  tcase_add_test(t, test_signature_required);
  tcase_add_test(t, test_inbound_choreography);
  tcase_add_test(t, test_delete_sends_terminate);
  tcase_add_test(t, test_shutdown_terminates);
  tcase_add_test(t, test_terminate_before_connect);
  tcase_add_test(t, test_stale_and_batched);
  tcase_add_test(t, test_outbound);
  tcase_add_test(t, test_outbound_rejected);
  tcase_add_test(t, test_graph_retries);
  tcase_add_test(t, test_graph_4xx_on_connect);
  tcase_add_test(t, test_place_call_validation);
  tcase_add_test(t, test_insecure_skip_signature);
  suite_add_tcase(s, t);
  return s;
}

GST_CHECK_MAIN(whatsapp_e2e)
