// WhatsApp calls with audio, end to end: the real voicebridge binary, signed webhooks, the fake
// Graph API, the fake Realtime server, and a WhatsApp-like media peer (tests/meta-peer: ICE-lite,
// DTLS-SRTP, Opus) standing in for Meta's relay and the user's phone. Checks that audio flows both
// ways, that nothing reaches the caller before `accept` returned (inbound) or before ACCEPTED
// (outbound), that the bridge controls ICE, and that its audio is continuous once it starts.
#include <gst/check/gstcheck.h>

#include <algorithm>
#include <string>
#include <vector>

#include "audio-analysis.h"
#include "fake-graph.h"
#include "fake-realtime-server.h"
#include "meta-peer.h"
#include "wa-harness.h"

namespace {

constexpr double kCallerHz = 300;  // what the peer (the WhatsApp user) says
constexpr double kAgentHz = 440;   // what the fake model says (its default reply tone)

struct Env {
  fake_realtime::Server realtime;
  fake_graph::Server graph{wa_test::kPhoneId, wa_test::kToken};
  wa_test::Service vb;

  Env() {
    std::string error;
    fail_unless(realtime.start(0, &error), "%s", error.c_str());
    fail_unless(graph.start(&error), "%s", error.c_str());
    // A greeting: the session queues it at once; the caller must hear it only after accept.
    fail_unless(vb.start(realtime.url(), graph.base_url(), {"--greeting", "Hello from the test agent."}, &error),
                "%s", error.c_str());
  }
  ~Env() {
    vb.stop();
    if (g_getenv("WA_TEST_VERBOSE")) fputs(vb.log_text().c_str(), stderr);
    graph.stop();
    realtime.stop();
  }
  wa_test::LogLine need(const std::string &event, const std::string &call_id, int timeout_ms = 10000) {
    auto line = vb.wait_event(event, call_id, timeout_ms);
    // check's fork mode skips destructors on failure: show the whole log here when asked.
    if (!line && g_getenv("WA_TEST_VERBOSE")) fputs(vb.log_text().c_str(), stderr);
    fail_unless(line.has_value(), "no %s for %s; log:\n%s", event.c_str(), call_id.c_str(), vb.log_tail().c_str());
    return *line;
  }
};

// The WhatsApp user says one phrase (then stays silent, so that the fake model's VAD hears a turn),
// starting at speak_ms of the peer's program time (its first SRTP packet, i.e. once DTLS is up).
// It speaks after the greeting: a caller speaking first would barge in and cut the greeting short.
meta_peer::Config peer_config(meta_peer::Role role, int speak_ms) {
  meta_peer::Config c;
  c.role = role;
  c.tone.hz = kCallerHz;
  c.tone.peak_dbfs = -12;
  c.tone.start_ms = speak_ms;
  c.tone.duration_ms = 1200;
  return c;
}

// The greeting as the caller heard it: the fake model's 1000 ms reply at kAgentHz, from the very
// start of the bridge's audio, whole (nothing of it lost while the media was held).
void check_heard_greeting(const meta_peer::Peer &peer) {
  auto pcm = peer.received_pcm();
  int rate = peer.receive_rate();
  auto segs = audio_test::find_segments(pcm, rate, -40.0);
  std::string described = audio_test::describe_segments(pcm.data(), segs, rate);
  fail_if(segs.empty(), "the caller heard nothing (%zu samples)", pcm.size());
  const auto &first = segs[0];
  double hz = audio_test::dominant_frequency(&pcm[first.start], first.length(), rate);
  fail_unless(std::abs(hz - kAgentHz) < 10, "the first sound is not the greeting: %s", described.c_str());
  fail_unless(audio_test::start_ms(first, rate) < 300, "the greeting started late: %s", described.c_str());
  fail_unless(audio_test::duration_ms(first, rate) >= 950, "the greeting was cut: %s", described.c_str());
}

// The caller's audio as the model received it (24 kHz): the peer's tone.
void check_model_heard_caller(const fake_realtime::Server &realtime) {
  bool ok = realtime.wait_for(
      [&] {
        auto samples = audio_test::samples_from_bytes(realtime.all_input_audio());
        for (const auto &s : audio_test::find_segments(samples, 24000, -40.0))
          if (audio_test::duration_ms(s, 24000) >= 500 &&
              std::abs(audio_test::dominant_frequency(&samples[s.start], s.length(), 24000) - kCallerHz) < 10)
            return true;
        return false;
      },
      10000);
  auto samples = audio_test::samples_from_bytes(realtime.all_input_audio());
  fail_unless(ok, "the model did not hear the caller's %g Hz; segments: %s", kCallerHz,
              audio_test::describe_segments(samples.data(), audio_test::find_segments(samples, 24000, -40.0), 24000)
                  .c_str());
}

// Once the bridge starts sending, it does not stop: WhatsApp hangs up on a silent business leg.
void check_continuous(const meta_peer::Peer &peer, double from_us, double span_ms) {
  auto packets = peer.received_packets();
  double worst = 0;
  int64_t last = -1;
  for (const auto &p : packets) {
    if (p.mono_us < from_us || p.mono_us > from_us + span_ms * 1000) continue;
    if (last >= 0) worst = std::max(worst, (p.mono_us - last) / 1000.0);
    last = p.mono_us;
  }
  fail_unless(last >= 0, "no packets in the window");
  fail_unless(worst < 150, "a %.0f ms gap in the bridge's packets", worst);
}

}  // namespace

GST_START_TEST(test_inbound_audio) {
  Env env;
  // Meta takes a second to answer accept: no media may reach the caller before it has.
  env.graph.add_rule({"accept", 1, 200, "", 1000});
  meta_peer::Peer peer(peer_config(meta_peer::Role::Offerer, 2500));
  std::string error;
  fail_unless(peer.start(&error), "%s", error.c_str());
  const std::string id = "wacid.audio-inbound-1";
  int64_t t0 = wa_test::now_us();
  fail_unless_equals_int(env.vb.post_webhook(wa_test::connect_webhook(id, peer.make_offer())).status, 200);
  fail_unless(env.graph.wait_requests("pre_accept", 1, 10000), "log:\n%s", env.vb.log_tail().c_str());
  auto pre = env.graph.requests_of("pre_accept")[0];
  // Meta applies the business's SDP when pre_accept arrives.
  fail_unless(peer.set_answer(pre.sdp, &error), "%s", error.c_str());
  fail_unless(env.graph.wait_replies("accept", 1, 10000));
  auto acc = env.graph.requests_of("accept")[0];
  WA_ASSERT_STR_EQ(acc.sdp, pre.sdp);
  fail_unless(peer.wait_for([](const meta_peer::Snapshot &s) { return s.received_ms >= 1500; }, 15000),
              "%s\nlog:\n%s", peer.describe().c_str(), env.vb.log_tail().c_str());
  auto snap = peer.snapshot();
  fail_unless(snap.first_media_us >= acc.replied_us,
              "media reached the caller %.0f ms before accept returned", (acc.replied_us - snap.first_media_us) / 1000.0);
  // …and promptly after: ICE and DTLS were done while accept was pending.
  fail_unless(snap.first_media_us - acc.replied_us < 1500 * 1000, "first media %.0f ms after accept returned",
              (snap.first_media_us - acc.replied_us) / 1000.0);
  auto accepted = env.need("WA_CALL_ACCEPTED", id);
  fail_unless(accepted.mono_us <= snap.first_media_us + 50 * 1000);
  fail_unless(snap.ice.saw_controlling, "the bridge did not take the controlling role");
  fail_unless(snap.nominated);
  fail_unless(snap.dtls_role == meta_peer::DtlsRole::Server, "peer DTLS role %s", meta_peer::to_string(snap.dtls_role));
  fail_unless_equals_int(snap.fingerprint_match, 1);
  check_heard_greeting(peer);
  check_model_heard_caller(env.realtime);
  check_continuous(peer, (double)snap.first_media_us, 1500);
  fprintf(stderr,
          "timing (inbound): connect webhook -> pre_accept %.1f ms, -> accept sent %.1f ms, accept returned "
          "(Meta delay 1 s) %.1f ms, -> first media at the caller %.1f ms (%.1f ms after accept returned)\n",
          (pre.received_us - t0) / 1000.0, (acc.received_us - t0) / 1000.0, (acc.replied_us - t0) / 1000.0,
          (snap.first_media_us - t0) / 1000.0, (snap.first_media_us - acc.replied_us) / 1000.0);
  fail_unless_equals_int(env.vb.del("/v1/calls/" + id).status, 200);
  fail_unless(env.graph.wait_requests("terminate", 1, 10000));
  peer.stop();
}
GST_END_TEST;

GST_START_TEST(test_inbound_audio_no_delay) {
  // Meta answering at once: the usual case, timed.
  Env env;
  meta_peer::Peer peer(peer_config(meta_peer::Role::Offerer, 2500));
  std::string error;
  fail_unless(peer.start(&error), "%s", error.c_str());
  const std::string id = "wacid.audio-inbound-2";
  int64_t t0 = wa_test::now_us();
  fail_unless_equals_int(env.vb.post_webhook(wa_test::connect_webhook(id, peer.make_offer())).status, 200);
  fail_unless(env.graph.wait_requests("pre_accept", 1, 10000), "log:\n%s", env.vb.log_tail().c_str());
  auto pre = env.graph.requests_of("pre_accept")[0];
  fail_unless(peer.set_answer(pre.sdp, &error), "%s", error.c_str());
  fail_unless(peer.wait_for([](const meta_peer::Snapshot &s) { return s.received_ms >= 1500; }, 15000),
              "%s\nlog:\n%s", peer.describe().c_str(), env.vb.log_tail().c_str());
  auto acc = env.graph.requests_of("accept")[0];
  auto snap = peer.snapshot();
  fail_unless(snap.first_media_us >= acc.replied_us);
  check_heard_greeting(peer);
  fprintf(stderr,
          "timing (inbound, Meta answering at once): connect webhook -> pre_accept %.1f ms, -> accept %.1f ms, -> "
          "first media %.1f ms\n",
          (pre.received_us - t0) / 1000.0, (acc.received_us - t0) / 1000.0, (snap.first_media_us - t0) / 1000.0);
  peer.stop();
}
GST_END_TEST;

GST_START_TEST(test_outbound_audio) {
  Env env;
  auto r = env.vb.post("/v1/whatsapp/calls", "{\"to\":\"15551234567\"}");
  fail_unless_equals_int(r.status, 202);
  std::string wacid = wa_test::json_path(r.body, "call_id");
  std::string offer = env.graph.requests_of("connect").at(0).sdp;
  meta_peer::Peer peer(peer_config(meta_peer::Role::Answerer, 3000));
  std::string error;
  fail_unless(peer.start(&error), "%s", error.c_str());
  std::string answer = peer.answer(offer, &error);
  fail_if(answer.empty(), "%s", error.c_str());
  fail_unless_equals_int(env.vb.post_webhook(wa_test::bic_connect_webhook(wacid, answer)).status, 200);
  env.need("WA_CALL_ANSWER_APPLIED", wacid);
  auto roles = env.need("CALL_ROLES", wacid);
  WA_ASSERT_STR_EQ(roles.get("ice_role"), "controlling");
  WA_ASSERT_STR_EQ(roles.get("dtls_role"), "server");
  env.vb.post_webhook(wa_test::status_webhook(wacid, "RINGING"));
  env.need("WA_CALL_RINGING", wacid);
  // The phone rings: DTLS comes up, but the greeting waits for the pick-up.
  fail_unless(peer.wait_for([](const meta_peer::Snapshot &s) { return s.dtls_state == meta_peer::DtlsState::Connected; },
                            10000),
              "%s", peer.describe().c_str());
  g_usleep(1000000);
  fail_unless(peer.first_media_time() < 0, "media reached the callee before ACCEPTED");
  int64_t accepted_at = wa_test::now_us();
  env.vb.post_webhook(wa_test::status_webhook(wacid, "ACCEPTED"));
  env.need("WA_CALL_ACCEPTED", wacid);
  fail_unless(peer.wait_for([](const meta_peer::Snapshot &s) { return s.received_ms >= 1500; }, 15000),
              "%s\nlog:\n%s", peer.describe().c_str(), env.vb.log_tail().c_str());
  auto snap = peer.snapshot();
  fail_unless(snap.first_media_us >= accepted_at);
  fail_unless(snap.ice.saw_controlling);
  fail_unless(snap.dtls_role == meta_peer::DtlsRole::Client, "peer DTLS role %s", meta_peer::to_string(snap.dtls_role));
  check_heard_greeting(peer);
  check_model_heard_caller(env.realtime);
  check_continuous(peer, (double)snap.first_media_us, 1500);
  fprintf(stderr, "timing (outbound): ACCEPTED webhook -> first media at the callee %.1f ms\n",
          (snap.first_media_us - accepted_at) / 1000.0);
  env.vb.post_webhook(wa_test::terminate_webhook(wacid, 0, false));
  auto ended = env.need("CALL_ENDED", wacid);
  WA_ASSERT_STR_EQ(ended.get("end_reason"), "terminated");
  peer.stop();
}
GST_END_TEST;

static Suite *whatsapp_audio_suite() {
  Suite *s = suite_create("whatsapp-audio");
  TCase *t = tcase_create("audio");
  tcase_set_timeout(t, 60);
  tcase_add_test(t, test_inbound_audio);
  tcase_add_test(t, test_inbound_audio_no_delay);
  tcase_add_test(t, test_outbound_audio);
  suite_add_tcase(s, t);
  return s;
}

GST_CHECK_MAIN(whatsapp_audio)
