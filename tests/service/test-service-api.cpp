// The HTTP API of CONTRACT.md §3, request by request: every error status and code with its exact
// body shape, the token, the limits, the /bridge compatibility routes, /metrics and the call graph.
// Live calls here are real WhatsApp offers (their ICE peers are unreachable, so they stay
// "connecting" until deleted): no media is needed to exercise the API.
#include <gst/check/gstcheck.h>

#include <algorithm>

#include "fake-realtime-server.h"
#include "service-harness.h"

using namespace svc_test;

namespace {

struct Bench {
  fake_realtime::Server fake;
  Service vb;
  std::string error;
  bool start(const std::vector<std::string> &extra = {}) {
    return fake.start(0, &error) && vb.start(fake.url(), extra, &error);
  }
};

// An offer of video only.
const char *const kVideoOnlyOffer =
    "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n"
    "a=fingerprint:sha-256 "
    "A2:EC:E2:C4:E4:FE:75:63:39:0D:77:45:DF:70:64:BC:F9:96:73:DE:F4:92:E5:78:D0:5B:1F:8F:E7:46:D3:C6\r\n"
    "a=setup:actpass\r\na=mid:0\r\na=sendrecv\r\na=rtcp-mux\r\na=rtpmap:96 VP8/90000\r\n";

// The first WhatsApp offer with its Opus replaced by PCMU: audio, but nothing the service can use.
std::string pcmu_only_offer() {
  std::string out;
  gchar **lines = g_strsplit(whatsapp_offer(1).c_str(), "\r\n", -1);
  for (gchar **l = lines; *l; l++) {
    std::string line = *l;
    if (line.empty() || line.find(":111 ") != std::string::npos) continue;  // opus rtpmap, fmtp, rtcp-fb
    if (g_str_has_prefix(line.c_str(), "m=audio")) line = "m=audio 3484 UDP/TLS/RTP/SAVPF 0 126";
    out += line + "\r\n";
    if (g_str_has_prefix(line.c_str(), "a=rtcp-mux")) out += "a=rtpmap:0 PCMU/8000\r\n";
  }
  g_strfreev(lines);
  return out;
}

// After a run of requests: /healthz counts exactly `live` calls, and GET /v1/calls shows no other
// call that is not ended.
std::string live_calls_problem(const Http &http, const std::vector<std::string> &live,
                               const std::map<std::string, std::string> &auth = {}) {
  HttpResponse health = http.request("GET", "/healthz");
  Json h = health.json();
  if (health.status != 200 || h.str("status") != "ok" || h.num("active_calls") != (double)live.size())
    return "healthz: " + health.describe();
  HttpResponse list = http.request("GET", "/v1/calls", {}, auth);
  Json calls = list.json().get("calls");
  if (list.status != 200 || !calls.is_array()) return "GET /v1/calls: " + list.describe();
  for (size_t i = 0; i < calls.size(); i++) {
    Json c = calls.at(i);
    std::string shape = call_shape_problem(c);
    if (!shape.empty()) return "GET /v1/calls: " + shape;
    bool expected = std::find(live.begin(), live.end(), c.str("call_id")) != live.end();
    if ((c.str("state") != "ended") != expected) return "unexpected call state: " + c.text();
  }
  return "";
}

#define CHECK_ERROR_REPLY(r, status, code, what)                                   \
  do {                                                                              \
    std::string problem_ = error_reply_problem((r), (status), (code));              \
    fail_unless(problem_.empty(), "%s: %s", std::string(what).c_str(), problem_.c_str()); \
  } while (0)

}  // namespace

GST_START_TEST(test_invalid_json) {
  Bench b;
  fail_unless(b.start(), "%s", b.error.c_str());
  std::string offer = json_quote(whatsapp_offer(1));
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"not JSON", "this is not JSON"},
      {"an empty body", ""},
      {"cut-off JSON", "{\"sdp\": \"v=0"},
      {"a JSON array", "[" + offer + "]"},
      {"a JSON string", offer},
      {"sdp a number", "{\"sdp\": 42}"},
      {"call_id a number", "{\"sdp\": " + offer + ", \"call_id\": 7}"},
      {"voice an array", "{\"sdp\": " + offer + ", \"voice\": [\"marin\"]}"},
      {"instructions an object", "{\"sdp\": " + offer + ", \"instructions\": {\"text\": \"hi\"}}"},
      {"metadata a string", "{\"sdp\": " + offer + ", \"metadata\": \"customer 7\"}"},
  };
  for (const auto &c : cases) {
    HttpResponse r = b.vb.http().request("POST", "/v1/calls", c.second);
    CHECK_ERROR_REPLY(r, 400, "invalid_json", "POST /v1/calls with " + c.first);
  }
  std::string problem = live_calls_problem(b.vb.http(), {});
  fail_unless(problem.empty(), "%s", problem.c_str());
}
GST_END_TEST;

GST_START_TEST(test_invalid_sdp) {
  Bench b;
  fail_unless(b.start(), "%s", b.error.c_str());
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"no sdp member", "{}"},
      {"no sdp but other members", "{\"call_id\": \"x-1\", \"voice\": \"marin\"}"},
      {"an empty sdp", "{\"sdp\": \"\"}"},
      {"garbage", "{\"sdp\": \"hello, I am not an offer\"}"},
      {"binary junk", "{\"sdp\": \"\\u0001\\u0002v=0\\u0000m=audio\"}"},
      {"no m= line", "{\"sdp\": \"v=0\\r\\no=- 1 2 IN IP4 127.0.0.1\\r\\ns=-\\r\\nt=0 0\\r\\n\"}"},
  };
  for (const auto &c : cases) {
    HttpResponse r = b.vb.http().request("POST", "/v1/calls", c.second);
    CHECK_ERROR_REPLY(r, 400, "invalid_sdp", "POST /v1/calls with " + c.first);
  }
  std::string problem = live_calls_problem(b.vb.http(), {});
  fail_unless(problem.empty(), "%s", problem.c_str());
}
GST_END_TEST;

GST_START_TEST(test_no_audio) {
  Bench b;
  fail_unless(b.start(), "%s", b.error.c_str());
  HttpResponse video = b.vb.http().request("POST", "/v1/calls", offer_body(kVideoOnlyOffer));
  CHECK_ERROR_REPLY(video, 400, "no_audio", "a video-only offer");
  HttpResponse pcmu = b.vb.http().request("POST", "/v1/calls", offer_body(pcmu_only_offer()));
  CHECK_ERROR_REPLY(pcmu, 400, "no_audio", "a PCMU-only offer");
  std::string problem = live_calls_problem(b.vb.http(), {});
  fail_unless(problem.empty(), "%s", problem.c_str());
}
GST_END_TEST;

// With --control-token every /v1/* and /bridge/* request needs the token; the probes do not.
GST_START_TEST(test_control_token) {
  const std::string token = "tok-Vx81-secret";
  Bench b;
  fail_unless(b.start({"--control-token", token}), "%s", b.error.c_str());
  Http http = b.vb.http();
  const std::map<std::string, std::string> good = {{"Authorization", "Bearer " + token}};
  const std::vector<std::map<std::string, std::string>> bad = {
      {},
      {{"Authorization", "Bearer wrong"}},
      {{"Authorization", "Bearer " + token + "x"}},
      {{"Authorization", "Bearer " + token.substr(0, token.size() - 1)}},
      {{"Authorization", token}},
      {{"Authorization", "Basic " + token}},
  };
  struct Route {
    const char *method, *path;
    std::string body;
  };
  const std::vector<Route> routes = {
      {"POST", "/v1/calls", offer_body(whatsapp_offer(1))},
      {"POST", "/v1/calls", "not JSON: authorisation comes first"},
      {"GET", "/v1/calls", ""},
      {"GET", "/v1/calls/some-call", ""},
      {"DELETE", "/v1/calls/some-call", ""},
      {"GET", "/v1/calls/some-call/graph", ""},
      {"POST", "/bridge/start", "{\"callId\":\"b-1\",\"sdpOffer\":" + json_quote(whatsapp_offer(1)) + "}"},
      {"POST", "/bridge/stop", "{\"callId\":\"b-1\"}"},
  };
  for (const auto &headers : bad)
    for (const auto &route : routes) {
      HttpResponse r = http.request(route.method, route.path, route.body, headers);
      std::string what = std::string(route.method) + " " + route.path + " with Authorization '" +
                         (headers.empty() ? "(none)" : headers.begin()->second) + "'";
      CHECK_ERROR_REPLY(r, 401, "unauthorized", what);
    }
  fail_unless(b.fake.connection_count() == 0, "an unauthorised request opened a Realtime session");

  for (const char *probe : {"/healthz", "/health", "/readyz", "/metrics"}) {
    HttpResponse r = http.request("GET", probe);
    fail_unless(r.status == 200, "%s without a token: %s", probe, r.describe().c_str());
  }
  // The right token works.
  HttpResponse created = http.request("POST", "/v1/calls", offer_body(whatsapp_offer(1), "auth-1"), good);
  fail_unless(created.status == 201 && created.json().str("call_id") == "auth-1", "%s", created.describe().c_str());
  fail_unless(http.request("GET", "/v1/calls/auth-1", {}, good).status == 200, "GET with the token");
  HttpResponse graph = http.request("GET", "/v1/calls/auth-1/graph", {}, good);
  fail_unless(graph.status == 200, "graph with the token: %s", graph.describe().c_str());
  std::string problem = live_calls_problem(http, {"auth-1"}, good);
  fail_unless(problem.empty(), "%s", problem.c_str());
  HttpResponse deleted = http.request("DELETE", "/v1/calls/auth-1", {}, good);
  fail_unless(deleted.status == 200 && deleted.json().str("state") == "ended", "%s", deleted.describe().c_str());
  HttpResponse legacy = http.request(
      "POST", "/bridge/start", "{\"callId\":\"auth-2\",\"sdpOffer\":" + json_quote(whatsapp_offer(2)) + "}", good);
  fail_unless(legacy.status == 200 && legacy.json().boolean("success"), "%s", legacy.describe().c_str());
  HttpResponse stopped = http.request("POST", "/bridge/stop", "{\"callId\":\"auth-2\"}", good);
  fail_unless(stopped.status == 200, "%s", stopped.describe().c_str());
  problem = live_calls_problem(http, {}, good);
  fail_unless(problem.empty(), "%s", problem.c_str());
  fail_unless(b.vb.log_text().find(token) == std::string::npos, "the control token is in the log");
}
GST_END_TEST;

// Two calls cannot share an id while the first is live.
GST_START_TEST(test_call_exists) {
  Bench b;
  fail_unless(b.start(), "%s", b.error.c_str());
  Http http = b.vb.http();
  HttpResponse first = http.request("POST", "/v1/calls", offer_body(whatsapp_offer(1), "dup-1"));
  fail_unless(first.status == 201 && first.json().str("call_id") == "dup-1", "%s", first.describe().c_str());
  HttpResponse second = http.request("POST", "/v1/calls", offer_body(whatsapp_offer(2), "dup-1"));
  CHECK_ERROR_REPLY(second, 409, "call_exists", "the same call_id again");
  HttpResponse legacy = http.request(
      "POST", "/bridge/start", "{\"callId\":\"dup-1\",\"sdpOffer\":" + json_quote(whatsapp_offer(2)) + "}");
  CHECK_ERROR_REPLY(legacy, 409, "call_exists", "the same callId on /bridge/start");
  // The first call is untouched.
  HttpResponse c = http.request("GET", "/v1/calls/dup-1");
  fail_unless(c.status == 200 && c.json().str("state") == "connecting", "%s", c.describe().c_str());
  std::string problem = live_calls_problem(http, {"dup-1"});
  fail_unless(problem.empty(), "%s", problem.c_str());
  fail_unless(http.request("DELETE", "/v1/calls/dup-1").status == 200, "DELETE dup-1");
  problem = live_calls_problem(http, {});
  fail_unless(problem.empty(), "%s", problem.c_str());
}
GST_END_TEST;

// Bodies above --max-body-bytes are refused, announced (Content-Length) or not (chunked).
GST_START_TEST(test_body_too_large) {
  Bench b;
  fail_unless(b.start({"--max-body-bytes", "2048"}), "%s", b.error.c_str());
  Http http = b.vb.http();
  std::string big = "{\"sdp\": " + json_quote(whatsapp_offer(1)) + ", \"instructions\": \"" + std::string(3000, 'x') + "\"}";
  CHECK_ERROR_REPLY(http.request("POST", "/v1/calls", big), 413, "body_too_large", "a 4 KiB body");
  CHECK_ERROR_REPLY(http.request_chunked("POST", "/v1/calls", big), 413, "body_too_large", "a chunked 4 KiB body");
  CHECK_ERROR_REPLY(http.request("POST", "/bridge/start", big), 413, "body_too_large", "/bridge/start with 4 KiB");
  // At the limit the body is read and judged on its content.
  std::string at_limit = "[" + std::string(2046, ' ') + "]";
  CHECK_ERROR_REPLY(http.request("POST", "/v1/calls", at_limit), 400, "invalid_json", "a body of exactly 2048 bytes");
  std::string problem = live_calls_problem(http, {});
  fail_unless(problem.empty(), "%s", problem.c_str());
  fail_unless(b.fake.connection_count() == 0, "a refused request opened a Realtime session");
}
GST_END_TEST;

// --max-calls 1: a second call gets 503 at_capacity and /readyz says 503 until the first ends.
GST_START_TEST(test_at_capacity) {
  Bench b;
  fail_unless(b.start({"--max-calls", "1"}), "%s", b.error.c_str());
  Http http = b.vb.http();
  fail_unless(http.request("GET", "/readyz").status == 200, "readyz before any call");
  HttpResponse first = http.request("POST", "/v1/calls", offer_body(whatsapp_offer(1), "cap-1"));
  fail_unless(first.status == 201, "%s", first.describe().c_str());
  CHECK_ERROR_REPLY(http.request("GET", "/readyz"), 503, "at_capacity", "readyz while full");
  CHECK_ERROR_REPLY(http.request("POST", "/v1/calls", offer_body(whatsapp_offer(2), "cap-2")), 503, "at_capacity",
                    "a second call");
  CHECK_ERROR_REPLY(http.request("POST", "/bridge/start",
                                 "{\"callId\":\"cap-3\",\"sdpOffer\":" + json_quote(whatsapp_offer(2)) + "}"),
                    503, "at_capacity", "a second call on /bridge/start");
  std::string problem = live_calls_problem(http, {"cap-1"});
  fail_unless(problem.empty(), "%s", problem.c_str());
  fail_unless(http.request("GET", "/v1/calls/cap-2").status == 404, "the refused call exists");

  fail_unless(http.request("DELETE", "/v1/calls/cap-1").status == 200, "DELETE cap-1");
  HttpResponse ready = http.request("GET", "/readyz");
  fail_unless(ready.status == 200, "readyz after the call ended: %s", ready.describe().c_str());
  HttpResponse again = http.request("POST", "/v1/calls", offer_body(whatsapp_offer(2), "cap-4"));
  fail_unless(again.status == 201, "a call once there is room: %s", again.describe().c_str());
  fail_unless(http.request("DELETE", "/v1/calls/cap-4").status == 200, "DELETE cap-4");
  problem = live_calls_problem(http, {});
  fail_unless(problem.empty(), "%s", problem.c_str());
}
GST_END_TEST;

GST_START_TEST(test_no_such_call) {
  Bench b;
  fail_unless(b.start(), "%s", b.error.c_str());
  Http http = b.vb.http();
  CHECK_ERROR_REPLY(http.request("GET", "/v1/calls/nope-123"), 404, "no_such_call", "GET of an unknown call");
  CHECK_ERROR_REPLY(http.request("DELETE", "/v1/calls/nope-123"), 404, "no_such_call", "DELETE of an unknown call");
  CHECK_ERROR_REPLY(http.request("GET", "/v1/calls/nope-123/graph"), 404, "no_such_call", "graph of an unknown call");
  CHECK_ERROR_REPLY(http.request("POST", "/bridge/stop", "{\"callId\":\"nope-123\"}"), 404, "no_such_call",
                    "/bridge/stop of an unknown call");
  std::string problem = live_calls_problem(http, {});
  fail_unless(problem.empty(), "%s", problem.c_str());
}
GST_END_TEST;

// The routes kept for front-ends of the earlier Node bridge: their own request and reply shapes,
// the same behaviour.
GST_START_TEST(test_bridge_routes) {
  Bench b;
  fail_unless(b.start(), "%s", b.error.c_str());
  Http http = b.vb.http();
  HttpResponse start = http.request("POST", "/bridge/start",
                                    "{\"callId\":\"legacy-1\",\"sdpOffer\":" + json_quote(whatsapp_offer(1)) +
                                        ",\"systemInstructions\":\"Answer in haiku.\",\"voice\":\"cedar\"}");
  Json s = start.json();
  std::vector<std::string> keys = s.keys();
  std::sort(keys.begin(), keys.end());
  const std::vector<std::string> expected_keys = {"callId", "sdpAnswer", "success"};
  fail_unless(start.status == 200 && keys == expected_keys, "/bridge/start: %s", start.describe().c_str());
  fail_unless(s.boolean("success") && s.str("callId") == "legacy-1", "%s", start.describe().c_str());
  std::string answer = s.str("sdpAnswer");
  fail_unless(g_str_has_prefix(answer.c_str(), "v=0") && answer.find("a=candidate") != std::string::npos,
              "sdpAnswer: %s", answer.c_str());
  // The legacy fields reached the model's session.
  fail_unless(b.fake.wait_for(
                  [&] {
                    if (b.fake.connection_count() < 1) return false;
                    for (const auto &e : b.fake.connection(0).events)
                      if (e.find("session.update") != std::string::npos && e.find("Answer in haiku.") != std::string::npos &&
                          e.find("cedar") != std::string::npos)
                        return true;
                    return false;
                  },
                  3000),
              "systemInstructions/voice did not reach the Realtime session");
  HttpResponse live = http.request("GET", "/v1/calls/legacy-1");
  fail_unless(live.status == 200 && live.json().str("state") == "connecting", "%s", live.describe().c_str());

  HttpResponse stop = http.request("POST", "/bridge/stop", "{\"callId\":\"legacy-1\"}");
  fail_unless(stop.status == 200 && stop.json().text() == "{\"success\":true}", "/bridge/stop: %s",
              stop.describe().c_str());
  HttpResponse ended = http.request("GET", "/v1/calls/legacy-1");
  fail_unless(ended.json().str("state") == "ended" && ended.json().str("end_reason") == "hangup", "%s",
              ended.describe().c_str());
  CHECK_ERROR_REPLY(http.request("POST", "/bridge/stop", "{\"callId\":\"legacy-1\"}"), 404, "no_such_call",
                    "/bridge/stop of an ended call");

  // Errors as on POST /v1/calls.
  CHECK_ERROR_REPLY(http.request("POST", "/bridge/start", "not JSON"), 400, "invalid_json", "/bridge/start not JSON");
  CHECK_ERROR_REPLY(http.request("POST", "/bridge/start", "{\"callId\":\"legacy-2\"}"), 400, "invalid_sdp",
                    "/bridge/start without sdpOffer");
  CHECK_ERROR_REPLY(http.request("POST", "/bridge/start", "{\"callId\":\"legacy-3\",\"sdpOffer\":" +
                                                               json_quote(kVideoOnlyOffer) + "}"),
                    400, "no_audio", "/bridge/start with a video offer");
  std::string problem = live_calls_problem(http, {});
  fail_unless(problem.empty(), "%s", problem.c_str());
}
GST_END_TEST;

// The nine metric families of CONTRACT.md §5 with their types, and the gauge following a call.
GST_START_TEST(test_metrics) {
  Bench b;
  fail_unless(b.start(), "%s", b.error.c_str());
  Http http = b.vb.http();
  const std::vector<std::pair<std::string, std::string>> families = {
      {"voicebridge_calls_active", "gauge"},
      {"voicebridge_calls_total", "counter"},
      {"voicebridge_call_setup_seconds", "histogram"},
      {"voicebridge_first_audio_seconds", "histogram"},
      {"voicebridge_realtime_errors_total", "counter"},
      {"voicebridge_barge_ins_total", "counter"},
      {"voicebridge_rtp_packets_received_total", "counter"},
      {"voicebridge_rtp_packets_lost_total", "counter"},
      {"voicebridge_caller_audio_underruns_total", "counter"},
  };
  HttpResponse m = http.request("GET", "/metrics");
  fail_unless(m.status == 200 && m.content_type == "text/plain", "%s", m.describe().c_str());
  for (const auto &f : families)
    fail_unless(m.body.find("# TYPE " + f.first + " " + f.second + "\n") != std::string::npos,
                "no '# TYPE %s %s' in:\n%s", f.first.c_str(), f.second.c_str(), m.body.c_str());
  fail_unless(m.body.find("\nvoicebridge_calls_active 0\n") != std::string::npos, "idle gauge:\n%s", m.body.c_str());

  fail_unless(http.request("POST", "/v1/calls", offer_body(whatsapp_offer(1), "m-1")).status == 201, "POST m-1");
  m = http.request("GET", "/metrics");
  fail_unless(m.body.find("\nvoicebridge_calls_active 1\n") != std::string::npos, "one call:\n%s", m.body.c_str());
  fail_unless(m.body.find("\nvoicebridge_call_setup_seconds_count 1\n") != std::string::npos, "setup observed:\n%s",
              m.body.c_str());
  fail_unless(http.request("DELETE", "/v1/calls/m-1").status == 200, "DELETE m-1");
  m = http.request("GET", "/metrics");
  fail_unless(m.body.find("\nvoicebridge_calls_active 0\n") != std::string::npos, "after the call:\n%s", m.body.c_str());
  fail_unless(m.body.find("\nvoicebridge_calls_total{result=\"") != std::string::npos, "no finished call counted:\n%s",
              m.body.c_str());
}
GST_END_TEST;

// GET /v1/calls/{id}/graph: the live pipeline as DOT, with the elements that make the call.
GST_START_TEST(test_call_graph) {
  Bench b;
  fail_unless(b.start(), "%s", b.error.c_str());
  Http http = b.vb.http();
  fail_unless(http.request("POST", "/v1/calls", offer_body(whatsapp_offer(1), "graph-1")).status == 201, "POST");
  HttpResponse g = http.request("GET", "/v1/calls/graph-1/graph");
  fail_unless(g.status == 200 && g.content_type == "text/vnd.graphviz", "%s", g.describe().c_str());
  gchar *lower = g_ascii_strdown(g.body.c_str(), -1);
  std::string dot = lower;
  g_free(lower);
  fail_unless(g_str_has_prefix(g.body.c_str(), "digraph"), "not a DOT graph: %.200s", g.body.c_str());
  fail_unless(dot.find("webrtcbin") != std::string::npos && dot.find("openairealtimesrc") != std::string::npos,
              "the graph lacks webrtcbin or openairealtimesrc: %.300s", g.body.c_str());
  // The send chain as the WhatsApp offer (maxplaybackrate=16000) asks: the encoder takes the model's
  // 24 kHz directly and limits itself to wideband; no resampler holds audio back.
  fail_unless(dot.find("bandwidth=wideband") != std::string::npos, "the encoder is not limited to wideband");
  fail_unless(dot.find("audioresample") == std::string::npos, "a resampler in the send chain");
  fail_unless(http.request("DELETE", "/v1/calls/graph-1").status == 200, "DELETE");
}
GST_END_TEST;

// BUG (app/http-server.cpp with libsoup 3.2.3): when a client closes a keep-alive connection, the
// server reads the EOF but never closes its socket, so every HTTP connection leaves one descriptor
// in CLOSE_WAIT for the life of the process (webhooks, probes and callers would exhaust the fd limit).
GST_START_TEST(test_http_connections_are_closed) {
  Bench b;
  fail_unless(b.start(), "%s", b.error.c_str());
  Http http = b.vb.http();
  fail_unless(http.request("GET", "/healthz").status == 200, "healthz");
  g_usleep(300 * 1000);
  int before = fd_count(b.vb.pid());
  for (int i = 0; i < 20; i++) http.request("GET", "/healthz");  // each on its own connection, then closed
  int after = before;
  for (int i = 0; i < 20 && (after = fd_count(b.vb.pid())) > before + 2; i++) g_usleep(100 * 1000);
  fail_unless(after <= before + 2, "20 closed HTTP connections left %d descriptors open (%d -> %d: %s)", after - before,
              before, after, fd_summary(b.vb.pid()).c_str());
}
GST_END_TEST;

static Suite *service_api_suite(void) {
  Suite *s = suite_create("service_api");
  TCase *tc = tcase_create("api");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_invalid_json);
  tcase_add_test(tc, test_invalid_sdp);
  tcase_add_test(tc, test_no_audio);
  tcase_add_test(tc, test_control_token);
  tcase_add_test(tc, test_call_exists);
  tcase_add_test(tc, test_body_too_large);
  tcase_add_test(tc, test_at_capacity);
  tcase_add_test(tc, test_no_such_call);
  tcase_add_test(tc, test_bridge_routes);
  tcase_add_test(tc, test_metrics);
  tcase_add_test(tc, test_call_graph);
  tcase_add_test(tc, test_http_connections_are_closed);
  suite_add_tcase(s, tc);
  return s;
}

GST_CHECK_MAIN(service_api);
