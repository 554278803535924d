// Real WhatsApp offers (tests/fixtures/whatsapp), posted as they were captured, get an answer that
// WhatsApp accepts. Their candidates are Meta's public addresses, so no media flows here: what is
// checked is the answer itself, and that the calls can be deleted.
#include <gst/check/gstcheck.h>

#include <algorithm>

#include "fake-realtime-server.h"
#include "service-harness.h"

using namespace svc_test;

namespace {

std::vector<std::string> sdp_lines(const std::string &sdp) {
  std::vector<std::string> out;
  gchar **lines = g_strsplit(sdp.c_str(), "\n", -1);
  for (gchar **l = lines; *l; l++) {
    std::string line = *l;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) out.push_back(line);
  }
  g_strfreev(lines);
  return out;
}

size_t count_prefixed(const std::vector<std::string> &lines, const std::string &prefix) {
  return std::count_if(lines.begin(), lines.end(), [&](const std::string &l) { return l.rfind(prefix, 0) == 0; });
}

bool has_line(const std::vector<std::string> &lines, const std::string &line) {
  return std::find(lines.begin(), lines.end(), line) != lines.end();
}

// What is wrong with an answer to a WhatsApp offer (audio mid "audio", Opus 111, telephone-event
// 126), or "".
std::string answer_problem(const std::string &answer) {
  auto lines = sdp_lines(answer);
  if (lines.empty() || lines[0] != "v=0") return "does not start with v=0";
  if (count_prefixed(lines, "m=") != 1 || count_prefixed(lines, "m=audio ") != 1) return "is not one audio m= line";
  if (!has_line(lines, "a=sendrecv")) return "is not sendrecv";
  for (const char *other : {"a=sendonly", "a=recvonly", "a=inactive"})
    if (has_line(lines, other)) return std::string("has ") + other;
  // WhatsApp offers actpass and expects the business side to be the DTLS client.
  if (!has_line(lines, "a=setup:active")) return "has no a=setup:active";
  if (count_prefixed(lines, "a=fingerprint:") != 1 || count_prefixed(lines, "a=fingerprint:sha-256 ") != 1)
    return "does not have exactly one a=fingerprint:sha-256";
  if (!has_line(lines, "a=mid:audio")) return "has no a=mid:audio";
  if (!has_line(lines, "a=rtpmap:126 telephone-event/8000")) return "has no a=rtpmap:126 telephone-event/8000";
  bool opus = false;
  for (const auto &l : lines) {
    gchar *lower = g_ascii_strdown(l.c_str(), -1);
    opus = opus || std::string(lower) == "a=rtpmap:111 opus/48000/2";
    g_free(lower);
  }
  if (!opus) return "has no a=rtpmap:111 opus/48000/2";
  if (count_prefixed(lines, "a=ice-ufrag:") != 1 || count_prefixed(lines, "a=ice-pwd:") != 1) return "lacks ICE credentials";
  // Every candidate is in the answer (no trickle), on the address ICE was restricted to.
  if (count_prefixed(lines, "a=candidate:") == 0) return "has no a=candidate";
  for (const auto &l : lines)
    if (l.rfind("a=candidate:", 0) == 0) {
      gchar **f = g_strsplit(l.c_str(), " ", -1);
      bool ok = g_strv_length(f) >= 8 && g_ascii_strcasecmp(f[2], "udp") == 0 && std::string(f[4]) == "127.0.0.1";
      g_strfreev(f);
      if (!ok) return "has a candidate off 127.0.0.1/UDP: " + l;
    }
  return "";
}

}  // namespace

GST_START_TEST(test_whatsapp_offers_are_answered) {
  fake_realtime::Server fake;
  std::string error;
  fail_unless(fake.start(0, &error), "fake server: %s", error.c_str());
  Service vb;
  fail_unless(vb.start(fake.url(), {}, &error), "%s", error.c_str());
  Http http = vb.http();

  std::vector<std::string> ids;
  for (int n = 1; n <= 2; n++) {
    std::string offer = whatsapp_offer(n);
    fail_unless(offer.find("a=ice-lite") != std::string::npos, "fixture %d is not the WhatsApp offer", n);
    HttpResponse r = http.request("POST", "/v1/calls", offer_body(offer));
    Json j = r.json();
    std::vector<std::string> keys = j.keys();
    std::sort(keys.begin(), keys.end());
    const std::vector<std::string> expected_keys = {"call_id", "sdp"};
    fail_unless(r.status == 201 && keys == expected_keys && !j.str("call_id").empty(), "offer %d: %s", n,
                r.describe().c_str());
    std::string problem = answer_problem(j.str("sdp"));
    fail_unless(problem.empty(), "the answer to offer %d %s:\n%s", n, problem.c_str(), j.str("sdp").c_str());
    ids.push_back(j.str("call_id"));
  }
  fail_unless(ids[0] != ids[1], "both calls got the id %s", ids[0].c_str());
  // Each call opened its Realtime session at creation (CONTRACT.md §4), before any media.
  fail_unless(fake.wait_for([&] { return fake.connection_count() == 2; }, 3000), "the fake saw %d connections",
              fake.connection_count());

  for (const auto &id : ids) {
    HttpResponse live = http.request("GET", "/v1/calls/" + id);
    fail_unless(live.status == 200 && live.json().str("state") == "connecting", "%s", live.describe().c_str());
    HttpResponse del = http.request("DELETE", "/v1/calls/" + id);
    Json c = del.json();
    fail_unless(del.status == 200 && c.str("call_id") == id && c.str("state") == "ended" &&
                    c.str("end_reason") == "hangup",
                "DELETE %s: %s", id.c_str(), del.describe().c_str());
  }
  fail_unless(fake.wait_for([&] { return fake.connection(0).closed && fake.connection(1).closed; }, 3000),
              "a Realtime session outlived its deleted call");
  HttpResponse health = http.request("GET", "/healthz");
  fail_unless(health.json().num("active_calls") == 0, "%s", health.describe().c_str());
  for (const auto &e : vb.events("CALL_ANSWERED"))
    g_print("WhatsApp offer answered: setup %.0f ms, %d candidate(s)\n", e.json.num("setup_ms"),
            (int)e.json.num("candidates"));
}
GST_END_TEST;

static Suite *service_whatsapp_offers_suite(void) {
  Suite *s = suite_create("service_whatsapp_offers");
  TCase *tc = tcase_create("whatsapp_offers");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_whatsapp_offers_are_answered);
  suite_add_tcase(s, tc);
  return s;
}

GST_CHECK_MAIN(service_whatsapp_offers);
