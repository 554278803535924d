// The Graph API failing in the middle of an inbound WhatsApp call's setup (connect webhook →
// pre_accept → accept → media):
//   - a transient failure (pre_accept answered 503 twice, then 200) is retried and the call goes on
//     and carries audio both ways;
//   - a definite refusal (accept answered 400 with a Meta error) ends the call with graph_error,
//     and the caller never gets a single media packet (CONTRACT.md §4: audio only after accept
//     succeeded), although ICE and DTLS were up.
#include <gst/check/gstcheck.h>

#include "audio-analysis.h"
#include "fake-graph.h"
#include "fake-realtime-server.h"
#include "fault-support.h"
#include "wa-harness.h"

using namespace svc_test;

namespace {

struct Env {
  fake_realtime::Server realtime;
  fake_graph::Server graph{wa_test::kPhoneId, wa_test::kToken};
  Service vb;
  void start() {
    std::string error;
    fail_unless(realtime.start(0, &error), "%s", error.c_str());
    fail_unless(graph.start(&error), "%s", error.c_str());
    fail_unless(vb.start(realtime.url(), faults::whatsapp_args(graph.base_url()), &error), "%s", error.c_str());
  }
};

}  // namespace

GST_START_TEST(test_pre_accept_retried_after_503) {
  Env env;
  env.start();
  env.graph.add_rule({"pre_accept", 2, 503});
  const std::string id = "wacid.graph-503";
  // The caller speaks once its media starts; the model answers with 1 s of 440 Hz.
  meta_peer::Peer peer(faults::caller_saying({{500, 1000}}));
  std::string error;
  fail_unless(peer.start(&error), "%s", error.c_str());
  fail_unless(faults::whatsapp_inbound_call(env.vb, env.graph, peer, id, &error), "%s", error.c_str());

  auto pre_accepts = faults::graph_requests(env.graph, "pre_accept", id);
  fail_unless(pre_accepts.size() == 3 && pre_accepts[0].status == 503 && pre_accepts[1].status == 503 &&
                  pre_accepts[2].status == 200,
              "%zu pre_accept(s); log:\n%s", pre_accepts.size(), env.vb.call_log(id).c_str());
  fail_unless(pre_accepts[0].sdp == pre_accepts[2].sdp, "the retried pre_accept changed its SDP");
  fail_unless(env.vb.events("WA_GRAPH_RETRY", id).size() == 2, "%s", env.vb.call_log(id).c_str());
  auto accepted = env.vb.wait_event("WA_CALL_ACCEPTED", id, 10000);
  fail_unless(accepted.has_value(), "not accepted after the retries:\n%s", env.vb.call_log(id).c_str());
  auto accepts = faults::graph_requests(env.graph, "accept", id);
  fail_unless(accepts.size() == 1 && accepts[0].sdp == pre_accepts[2].sdp, "accept: %zu request(s)", accepts.size());

  // Audio both ways: the model gets the caller's turn, the caller hears the reply.
  fail_unless(env.realtime.wait_for([&] { return env.realtime.responses_started() >= 1; }, 15000),
              "the model never answered:\n%s", env.vb.call_log(id).c_str());
  auto model_heard = audio_test::samples_from_bytes(env.realtime.all_input_audio());
  fail_unless(faults::tone_ms(model_heard, kModelRate, faults::kCallerHz) >= 850, "the model got: %s",
              faults::describe_sound(model_heard, kModelRate).c_str());
  const int rate = peer.receive_rate();
  fail_unless(faults::wait_until([&] { return faults::tone_ms(peer.received_pcm(), rate, faults::kReplyHz) >= 850; }, 6000),
              "the caller heard: %s", faults::describe_sound(peer.received_pcm(), rate).c_str());
  fail_unless(env.vb.http().request("GET", "/v1/calls/" + id).json().str("state") == "active");
  g_print("pre_accept 503, 503, 200: pre_accepted after %.0f ms (retries %.0f ms apart), accepted %.0f ms after the "
          "first pre_accept\n",
          faults::ms_between(pre_accepts[0].received_us, pre_accepts[2].replied_us),
          faults::ms_between(pre_accepts[0].replied_us, pre_accepts[1].received_us),
          faults::ms_between(pre_accepts[0].received_us, accepts[0].replied_us));

  fail_unless(env.vb.http().request("DELETE", "/v1/calls/" + id).status == 200);
  fail_unless(env.graph.wait_replies("terminate", 1, 10000), "no terminate after the hang-up");
  fail_unless(env.vb.glib_complaints().empty(), "GLib criticals:\n%s", env.vb.glib_complaints().c_str());
  peer.stop();
}
GST_END_TEST;

// Meta answers accept with 400 after 3 s, time enough for ICE and DTLS to come up: the media path
// is ready, yet nothing may be sent on it.
GST_START_TEST(test_accept_refused_is_graph_error) {
  Env env;
  env.start();
  constexpr int kAcceptDelayMs = 3000;
  env.graph.add_rule({"accept", 1, 400,
                      fake_graph::meta_error_body(138002, "Call not found or already ended", "accept refused by the test"),
                      kAcceptDelayMs});
  const std::string id = "wacid.graph-400";
  meta_peer::Peer peer(faults::caller_saying({{300, 1000}}));
  std::string error;
  fail_unless(peer.start(&error), "%s", error.c_str());
  fail_unless(faults::whatsapp_inbound_call(env.vb, env.graph, peer, id, &error), "%s", error.c_str());
  fail_unless(env.graph.wait_requests("accept", 1, 10000), "no accept sent:\n%s", env.vb.call_log(id).c_str());
  int64_t accept_sent_us = env.graph.requests_of("accept")[0].received_us;
  fail_unless(peer.wait_for([](const meta_peer::Snapshot &s) { return s.dtls_state == meta_peer::DtlsState::Connected; },
                            kAcceptDelayMs - 500),
              "DTLS did not come up while accept was pending (the test needs it to mean anything):\n%s",
              peer.describe().c_str());

  auto ended = env.vb.wait_event("CALL_ENDED", id, kAcceptDelayMs + 10000);
  fail_unless(ended.has_value(), "the call did not end after accept failed:\n%s", env.vb.call_log(id).c_str());
  fail_unless(ended->json.str("end_reason") == "graph_error", "%s", ended->line.c_str());
  auto graph_error = env.vb.events("WA_GRAPH_ERROR", id);
  fail_unless(!graph_error.empty() && graph_error[0].json.num("code") == 138002, "WA_GRAPH_ERROR: %s",
              graph_error.empty() ? "(none)" : graph_error[0].line.c_str());
  fail_unless(env.vb.events("WA_CALL_ACCEPTED", id).empty(), "%s", env.vb.call_log(id).c_str());
  // A 4xx is not retried.
  fail_unless(faults::graph_requests(env.graph, "accept", id).size() == 1, "accept was retried after a 400");

  // Let anything late arrive, then: not one media packet reached the caller.
  g_usleep(1000 * 1000);
  auto snap = peer.snapshot();
  fail_unless(snap.rtp_datagrams == 0 && snap.first_media_us < 0,
              "%llu RTP packets reached the caller of a call whose accept failed (first %.0f ms after accept was sent)",
              (unsigned long long)snap.rtp_datagrams, faults::ms_between(accept_sent_us, snap.first_media_us));
  HttpResponse r = env.vb.http().request("GET", "/v1/calls/" + id);
  fail_unless(r.json().str("state") == "ended" && r.json().str("end_reason") == "graph_error", "%s",
              r.describe().c_str());
  g_print("accept refused (400, Meta code 138002) after %d ms: CALL_ENDED graph_error %.0f ms after accept was sent; "
          "the caller got %llu RTP packets (DTLS was up %.0f ms before)\n",
          kAcceptDelayMs, faults::ms_between(accept_sent_us, ended->mono_us), (unsigned long long)snap.rtp_datagrams,
          faults::ms_between(snap.dtls_connected_us, ended->mono_us));
  fail_unless(env.vb.glib_complaints().empty(), "GLib criticals:\n%s", env.vb.glib_complaints().c_str());
  peer.stop();
}
GST_END_TEST;

static Suite *fault_graph_errors_suite(void) {
  Suite *s = suite_create("fault_graph_errors");
  TCase *tc = tcase_create("graph");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_pre_accept_retried_after_503);
  tcase_add_test(tc, test_accept_refused_is_graph_error);
  suite_add_tcase(s, tc);
  return s;
}

GST_CHECK_MAIN(fault_graph_errors);
