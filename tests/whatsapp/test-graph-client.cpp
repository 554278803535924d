// Tests of app/graph-client against the fake Graph API (fake-graph.h): the request bodies, the
// reading of Meta's answers and errors, retries with backoff for 5xx/429/transport errors within
// the total bound, no retry for 4xx, per-attempt timeouts, and cancellation.
#include <gst/check/gstcheck.h>

#include <optional>
#include <string>

#include <json-glib/json-glib.h>

#include "fake-graph.h"
#include "graph-client.h"
#include "wa-harness.h"

using namespace vb::wa;

namespace {

const char *const kPhone = "123";
const char *const kToken = "graph-test-token-abc";

// Runs the default main context (where GraphClient lives) until done or the deadline.
std::optional<GraphResult> wait_result(std::optional<GraphResult> &slot, int timeout_ms) {
  gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
  while (!slot && g_get_monotonic_time() < deadline) g_main_context_iteration(nullptr, FALSE), g_usleep(1000);
  return slot;
}

GraphOptions options_for(const fake_graph::Server &graph) {
  GraphOptions o;
  o.base_url = graph.base_url();
  o.phone_number_id = kPhone;
  o.token = kToken;
  return o;
}

std::string member(const std::string &json, const std::string &path) { return wa_test::json_path(json, path); }

}  // namespace

GST_START_TEST(test_bodies) {
  std::string sdp = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";
  std::string pre = GraphClient::answer_body("pre_accept", "wacid.X", sdp);
  WA_ASSERT_STR_EQ(member(pre, "messaging_product"), "whatsapp");
  WA_ASSERT_STR_EQ(member(pre, "call_id"), "wacid.X");
  WA_ASSERT_STR_EQ(member(pre, "action"), "pre_accept");
  WA_ASSERT_STR_EQ(member(pre, "session.sdp_type"), "answer");
  WA_ASSERT_STR_EQ(member(pre, "session.sdp"), sdp);  // CRLFs intact, not double-encoded
  std::string acc = GraphClient::answer_body("accept", "wacid.X", sdp);
  WA_ASSERT_STR_EQ(member(acc, "session.sdp_type"), "answer");

  std::string term = GraphClient::simple_body("terminate", "wacid.X");
  WA_ASSERT_STR_EQ(member(term, "action"), "terminate");
  WA_ASSERT_STR_EQ(member(term, "call_id"), "wacid.X");
  fail_unless(member(term, "session").empty());

  std::string con = GraphClient::connect_body("15551234567", sdp);
  WA_ASSERT_STR_EQ(member(con, "to"), "15551234567");
  WA_ASSERT_STR_EQ(member(con, "action"), "connect");
  WA_ASSERT_STR_EQ(member(con, "session.sdp_type"), "offer");
  WA_ASSERT_STR_EQ(member(con, "messaging_product"), "whatsapp");
}
GST_END_TEST;

GST_START_TEST(test_read_response) {
  GraphResult ok = GraphClient::read_response("accept", 200, "{\"messaging_product\":\"whatsapp\",\"success\":true}");
  fail_unless(ok.ok);
  fail_if(GraphClient::read_response("accept", 200, "{\"success\":false}").ok);
  fail_if(GraphClient::read_response("accept", 200, "{\"success\":\"true\"}").ok);
  fail_if(GraphClient::read_response("accept", 200, "not json").ok);
  GraphResult con =
      GraphClient::read_response("connect", 200, "{\"messaging_product\":\"whatsapp\",\"calls\":[{\"id\":\"wacid.Z\"}]}");
  fail_unless(con.ok);
  WA_ASSERT_STR_EQ(con.call_id, "wacid.Z");
  fail_if(GraphClient::read_response("connect", 200, "{\"calls\":[]}").ok);
  fail_if(GraphClient::read_response("connect", 200, "{\"calls\":[{}]}").ok);

  GraphResult err = GraphClient::read_response(
      "connect", 400,
      "{\"error\":{\"message\":\"No approved call permission\",\"type\":\"OAuthException\",\"code\":138006,"
      "\"error_subcode\":2494010,\"error_data\":{\"messaging_product\":\"whatsapp\",\"details\":\"ask first\"},"
      "\"fbtrace_id\":\"x\"}}");
  fail_if(err.ok);
  fail_unless_equals_int(err.error.http_status, 400);
  fail_unless_equals_int64(err.error.code, 138006LL);
  fail_unless_equals_int64(err.error.subcode, 2494010LL);
  WA_ASSERT_STR_EQ(err.error.details, "ask first");
  std::string d = err.error.describe("connect");
  fail_unless(d.find("138006") != std::string::npos && d.find("permission") != std::string::npos &&
                  d.find("HTTP 400") != std::string::npos && d.find("connect") != std::string::npos,
              "%s", d.c_str());
  GraphResult html = GraphClient::read_response("accept", 502, "<html>bad gateway</html>");
  fail_if(html.ok);
  fail_unless_equals_int64(html.error.code, 0LL);
  fail_unless(html.error.message.find("bad gateway") != std::string::npos);
}
GST_END_TEST;

GST_START_TEST(test_read_response_hostile) {
  // json-glib recurses once per level: without the depth check these overflow the stack.
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  const std::string hidden = "{\"success\":true,\"x\":/*\"*/" + deep + "/*\"*/}";  // comments json-glib skips
  const std::string quoted = "{\"success\":true,\"x\":'\"',\"y\":" + deep + ",\"z\":'\"'}";
  for (const char *action : {"accept", "connect"}) {
    GraphResult d = GraphClient::read_response(action, 200, deep);
    fail_if(d.ok);
    fail_unless(d.error.message.find("nested deeper than 64 levels") != std::string::npos, "%s",
                d.error.message.c_str());
    for (const std::string *body : {&hidden, &quoted}) {
      GraphResult h = GraphClient::read_response(action, 200, *body);
      fail_if(h.ok, "a non-strict reply was taken for success");
      fail_unless(h.error.message.find("not strict JSON") != std::string::npos, "%s", h.error.message.c_str());
    }
  }
  // An error status with a deep body: the log says why, not a line of brackets.
  GraphResult e = GraphClient::read_response("accept", 400, "{\"error\":" + deep + "}");
  fail_if(e.ok);
  fail_unless(e.error.message.find("nested deeper") != std::string::npos, "%s", e.error.message.c_str());
  GraphResult q = GraphClient::read_response("accept", 400, quoted);
  fail_if(q.ok);
}
GST_END_TEST;

GST_START_TEST(test_success_and_request_shape) {
  fake_graph::Server graph(kPhone, kToken);
  std::string error;
  fail_unless(graph.start(&error), "%s", error.c_str());
  GraphClient client(options_for(graph));
  std::optional<GraphResult> pre, con;
  std::string sdp = wa_test::local_offer(40000);
  client.pre_accept("wacid.A", sdp, [&](const GraphResult &r) { pre = r; });
  client.connect("15551234567", sdp, [&](const GraphResult &r) { con = r; });
  fail_unless(wait_result(pre, 5000) && pre->ok, "%s", pre ? pre->error.describe("pre_accept").c_str() : "timeout");
  fail_unless(wait_result(con, 5000) && con->ok);
  fail_unless_equals_int(pre->attempts, 1);
  fail_unless(con->call_id.rfind("wacid.fake-", 0) == 0, "%s", con->call_id.c_str());
  auto reqs = graph.requests_of("pre_accept");
  fail_unless_equals_int((int)reqs.size(), 1);
  WA_ASSERT_STR_EQ(reqs[0].path, "/v23.0/123/calls");
  WA_ASSERT_STR_EQ(reqs[0].authorization, std::string("Bearer ") + kToken);
  WA_ASSERT_STR_EQ(reqs[0].content_type, "application/json");
  WA_ASSERT_STR_EQ(reqs[0].call_id, "wacid.A");
  WA_ASSERT_STR_EQ(reqs[0].sdp, sdp);
  WA_ASSERT_STR_EQ(reqs[0].sdp_type, "answer");
  fail_unless_equals_int(client.in_flight(), 0);
}
GST_END_TEST;

GST_START_TEST(test_retry_5xx_then_success) {
  fake_graph::Server graph(kPhone, kToken);
  std::string error;
  fail_unless(graph.start(&error), "%s", error.c_str());
  graph.add_rule({"accept", 2, 500});
  GraphClient client(options_for(graph));
  std::optional<GraphResult> r;
  client.accept("wacid.B", "v=0\r\n", [&](const GraphResult &x) { r = x; });
  fail_unless(wait_result(r, 10000).has_value());
  fail_unless(r->ok, "%s", r->error.describe("accept").c_str());
  fail_unless_equals_int(r->attempts, 3);
  auto reqs = graph.requests_of("accept");
  fail_unless_equals_int((int)reqs.size(), 3);
  // Backoff 250 ms, then 500 ms (doubling), measured between the fake's reply and the next request.
  double gap1 = (reqs[1].received_us - reqs[0].replied_us) / 1000.0;
  double gap2 = (reqs[2].received_us - reqs[1].replied_us) / 1000.0;
  fail_unless(gap1 >= 240 && gap1 < 600, "first backoff %.0f ms", gap1);
  fail_unless(gap2 >= 490 && gap2 < 900, "second backoff %.0f ms", gap2);
  // Every attempt carries the same body.
  fail_unless(reqs[0].body == reqs[1].body && reqs[1].body == reqs[2].body);
}
GST_END_TEST;

GST_START_TEST(test_retry_429) {
  fake_graph::Server graph(kPhone, kToken);
  std::string error;
  fail_unless(graph.start(&error), "%s", error.c_str());
  graph.add_rule({"terminate", 1, 429});
  GraphClient client(options_for(graph));
  std::optional<GraphResult> r;
  client.terminate("wacid.C", [&](const GraphResult &x) { r = x; });
  fail_unless(wait_result(r, 10000) && r->ok);
  fail_unless_equals_int(r->attempts, 2);
}
GST_END_TEST;

GST_START_TEST(test_4xx_not_retried) {
  fake_graph::Server graph(kPhone, kToken);
  std::string error;
  fail_unless(graph.start(&error), "%s", error.c_str());
  graph.add_rule({"connect", -1, 400, fake_graph::meta_error_body(138006, "No approved call permission from the recipient")});
  GraphClient client(options_for(graph));
  std::optional<GraphResult> r;
  client.connect("15551234567", "v=0\r\n", [&](const GraphResult &x) { r = x; });
  fail_unless(wait_result(r, 10000).has_value());
  fail_if(r->ok);
  fail_unless_equals_int(r->attempts, 1);
  fail_unless_equals_int(r->error.http_status, 400);
  fail_unless_equals_int64(r->error.code, 138006LL);
  g_usleep(400000);
  g_main_context_iteration(nullptr, FALSE);
  fail_unless_equals_int((int)graph.requests_of("connect").size(), 1);

  // A wrong token is a 401 from Meta: also final.
  GraphOptions bad = options_for(graph);
  bad.token = "wrong";
  GraphClient wrong(bad);
  std::optional<GraphResult> w;
  wrong.pre_accept("wacid.D", "v=0\r\n", [&](const GraphResult &x) { w = x; });
  fail_unless(wait_result(w, 10000).has_value());
  fail_unless_equals_int(w->error.http_status, 401);
  fail_unless_equals_int(w->attempts, 1);
}
GST_END_TEST;

GST_START_TEST(test_transport_error_bounded) {
  // Nothing listens there: every attempt fails at once; retries stop at the total bound.
  GraphOptions o;
  GSocket *probe = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, nullptr);
  GSocketAddress *any = g_inet_socket_address_new_from_string("127.0.0.1", 0);
  g_socket_bind(probe, any, TRUE, nullptr);
  GSocketAddress *bound = g_socket_get_local_address(probe, nullptr);
  int port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
  g_object_unref(bound);
  g_object_unref(any);
  g_object_unref(probe);  // closed, never listened: connections are refused
  o.base_url = "http://127.0.0.1:" + std::to_string(port) + "/v23.0";
  o.phone_number_id = kPhone;
  o.token = kToken;
  o.first_backoff_ms = 100;
  o.total_ms = 1500;
  GraphClient client(o);
  std::optional<GraphResult> r;
  gint64 t0 = g_get_monotonic_time();
  client.accept("wacid.E", "v=0\r\n", [&](const GraphResult &x) { r = x; });
  fail_unless(wait_result(r, 10000).has_value());
  double took = (g_get_monotonic_time() - t0) / 1000.0;
  fail_if(r->ok);
  fail_unless_equals_int(r->error.http_status, 0);
  // 100 + 200 + 400 ms of backoff fit in 1.5 s; 800 more would not.
  fail_unless(r->attempts == 4, "attempts %d", r->attempts);
  fail_unless(took < 1600, "took %.0f ms", took);
}
GST_END_TEST;

GST_START_TEST(test_attempt_timeout) {
  fake_graph::Server graph(kPhone, kToken);
  std::string error;
  fail_unless(graph.start(&error), "%s", error.c_str());
  graph.add_rule({"pre_accept", -1, 200, "", 3000});  // Meta hangs
  GraphOptions o = options_for(graph);
  o.attempt_timeout_ms = 400;
  o.first_backoff_ms = 100;
  o.total_ms = 1200;
  GraphClient client(o);
  std::optional<GraphResult> r;
  gint64 t0 = g_get_monotonic_time();
  client.pre_accept("wacid.F", "v=0\r\n", [&](const GraphResult &x) { r = x; });
  fail_unless(wait_result(r, 10000).has_value());
  double took = (g_get_monotonic_time() - t0) / 1000.0;
  fail_if(r->ok);
  fail_unless_equals_int(r->error.http_status, 0);
  fail_unless(r->attempts >= 2, "attempts %d", r->attempts);
  fail_unless(took >= 1000 && took < 1500, "took %.0f ms (bound 1200)", took);
}
GST_END_TEST;

GST_START_TEST(test_destroy_in_flight) {
  fake_graph::Server graph(kPhone, kToken);
  std::string error;
  fail_unless(graph.start(&error), "%s", error.c_str());
  graph.add_rule({"accept", -1, 500});
  bool called = false;
  size_t at_destruction = 0;
  {
    GraphClient client(options_for(graph));
    client.accept("wacid.G", "v=0\r\n", [&](const GraphResult &) { called = true; });
    gint64 until = g_get_monotonic_time() + 5000000;
    while (graph.requests_of("accept").empty() && g_get_monotonic_time() < until)
      g_main_context_iteration(nullptr, FALSE), g_usleep(1000);
    fail_unless_equals_int((int)graph.requests_of("accept").size(), 1);
    until = g_get_monotonic_time() + 100000;  // the 500 arrives; the retry waits 250 ms
    while (g_get_monotonic_time() < until) g_main_context_iteration(nullptr, FALSE), g_usleep(1000);
    fail_unless_equals_int(client.in_flight(), 1);
    at_destruction = graph.requests_of("accept").size();
  }
  // The retry timer and the request died with the client.
  gint64 until = g_get_monotonic_time() + 1500000;
  while (g_get_monotonic_time() < until) g_main_context_iteration(nullptr, FALSE), g_usleep(1000);
  fail_if(called);
  size_t n = graph.requests_of("accept").size();
  fail_unless(n == at_destruction, "%zu attempts, %zu at destruction", n, at_destruction);
}
GST_END_TEST;

static Suite *graph_client_suite() {
  Suite *s = suite_create("graph-client");
  TCase *t = tcase_create("graph");
  tcase_set_timeout(t, 30);
  tcase_add_test(t, test_bodies);
  tcase_add_test(t, test_read_response);
  tcase_add_test(t, test_read_response_hostile);
  tcase_add_test(t, test_success_and_request_shape);
  tcase_add_test(t, test_retry_5xx_then_success);
  tcase_add_test(t, test_retry_429);
  tcase_add_test(t, test_4xx_not_retried);
  tcase_add_test(t, test_transport_error_bounded);
  tcase_add_test(t, test_attempt_timeout);
  tcase_add_test(t, test_destroy_in_flight);
  suite_add_tcase(s, t);
  return s;
}

GST_CHECK_MAIN(graph_client)
