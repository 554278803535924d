// Realtime sessions expire (the server's expires_at; at expiry it sends error session_expired and
// closes). With the fake's lifetime cut to a few seconds, a call outlives several sessions: the
// plugin must renew each one shortly before its expiry (a new connection, history replayed), so
// that the server never has to expire one, nothing fatal reaches the call, and audio keeps flowing
// both ways on the renewed connections, without losing what the caller said.
#include <gst/check/gstcheck.h>

#include <algorithm>

#include "audio-analysis.h"
#include "fake-realtime-server.h"
#include "fault-support.h"

using namespace svc_test;

namespace {

// Records when each Realtime connection arrived, as the test sees it (call note() while waiting).
struct ConnectionTimes {
  const fake_realtime::Server &fake;
  std::vector<int64_t> at_us;
  void note() {
    while ((int)at_us.size() < fake.connection_count()) at_us.push_back(g_get_monotonic_time());
  }
  std::string describe() const {
    std::string out;
    for (size_t i = 0; i < at_us.size(); i++)
      out += (i ? ", " : "") + std::to_string((int)faults::ms_between(at_us[0], at_us[i])) + " ms";
    return out;
  }
};

// The longest stretch of the caller's tone each connection received, in ms ("1234 ms, 567 ms").
std::string pieces_per_connection(const fake_realtime::Server &fake, double *longest_ms) {
  std::string out;
  *longest_ms = 0;
  for (int i = 0; i < fake.connection_count(); i++) {
    auto pcm = audio_test::samples_from_bytes(fake.connection(i).input_audio);
    double longest = 0;
    for (const auto &t : tones_at(find_tones(pcm, kModelRate), faults::kCallerHz)) longest = std::max(longest, t.length_ms());
    *longest_ms = std::max(*longest_ms, longest);
    out += (i ? ", " : "") + std::to_string((int)longest) + " ms";
  }
  return out;
}

// No session_expired from the server, nothing fatal or session_expired in the call's log.
void check_never_expired(const fake_realtime::Server &fake, const Service &vb, const std::string &id) {
  auto sent = fake.errors_sent();
  fail_unless(std::find(sent.begin(), sent.end(), "session_expired") == sent.end(),
              "the fake had to expire a session: the renewal came too late");
  for (const auto &e : vb.events("RT_ERROR", id)) {
    fail_if(e.json.boolean("fatal"), "a fatal Realtime error: %s", e.line.c_str());
    fail_if(e.json.str("code") == "session_expired", "session_expired reached the call: %s", e.line.c_str());
  }
}

}  // namespace

// Lifetime 6 s (renewal every 4-5 s). The caller talks without a pause for the whole call, so
// that every connection must carry its audio, and the fake's VAD never ends a turn: replies come
// only when the test asks for one, right after a renewal, never across one.
GST_START_TEST(test_session_renewed_before_expiry) {
  constexpr int kLifetimeS = 6;
  constexpr int kReplyMs = 1000;
  fake_realtime::Config fc;
  fc.session_lifetime_s = kLifetimeS;
  fc.reply_duration_ms = kReplyMs;
  fake_realtime::Server fake(fc);
  std::string error;
  fail_unless(fake.start(0, &error), "fake server: %s", error.c_str());
  Service vb;
  fail_unless(vb.start(fake.url(), {}, &error), "%s", error.c_str());
  const std::string id = "expiry-1";

  meta_peer::Peer peer;  // 300 Hz at -12 dBFS for the whole call
  fail_unless(peer.start(&error), "%s", error.c_str());
  ConnectionTimes conns{fake, {}};
  fail_unless(faults::place_peer_call(vb, peer, id, &error), "%s", error.c_str());
  conns.note();
  fail_unless(vb.wait_event("CALL_MEDIA_CONNECTED", id, 15000).has_value(), "no media:\n%s\n%s",
              vb.call_log(id).c_str(), peer.describe().c_str());

  // Two renewals.
  fail_unless(faults::wait_until(
                  [&] {
                    conns.note();
                    return vb.events("RT_RECONNECTED", id).size() >= 2;
                  },
                  4 * kLifetimeS * 1000),
              "not renewed twice in %d s (connections at %s):\n%s", 4 * kLifetimeS, conns.describe().c_str(),
              vb.call_log(id).c_str());
  const int answering = fake.connection_count() - 1;
  // The model speaks once the new connection has taken the caller's ongoing speech (its VAD has
  // started), so that the reply is not taken for a barge-in; the next renewal is 4 s away.
  g_usleep(500 * 1000);
  int64_t reply_us = g_get_monotonic_time();
  fake.start_response();
  const int rate = peer.receive_rate();
  bool heard = faults::wait_until(
      [&] {
        conns.note();
        return faults::tone_ms(faults::heard_since(peer, reply_us), rate, faults::kReplyHz) >= kReplyMs - 150;
      },
      kReplyMs + 5000);
  conns.note();
  double longest_ms = 0;
  std::string pieces = pieces_per_connection(fake, &longest_ms);
  g_print("session lifetime %d s: Realtime connections at %s (after the first); %zu RT_RECONNECTING, %zu "
          "RT_RECONNECTED; caller audio per connection (longest stretch): %s\n",
          kLifetimeS, conns.describe().c_str(), vb.events("RT_RECONNECTING", id).size(),
          vb.events("RT_RECONNECTED", id).size(), pieces.c_str());

  // Renewed, each time before the server's expiry: the fake never had to send session_expired (it
  // does so exactly kLifetimeS after a connection's start), and each old connection was closed.
  fail_unless(conns.at_us.size() >= 3, "only %zu Realtime connections", conns.at_us.size());
  for (size_t i = 1; i < conns.at_us.size(); i++)
    fail_unless(faults::ms_between(conns.at_us[i - 1], conns.at_us[i]) < kLifetimeS * 1000,
                "connection %zu came %.0f ms after connection %zu (lifetime %d s)", i,
                faults::ms_between(conns.at_us[i - 1], conns.at_us[i]), i - 1, kLifetimeS);
  check_never_expired(fake, vb, id);
  for (int i = 0; i + 1 < fake.connection_count(); i++)
    fail_unless(fake.connection(i).closed, "Realtime connection %d was left open after its renewal", i);
  auto reconnecting = vb.events("RT_RECONNECTING", id);
  fail_unless(!reconnecting.empty() && reconnecting[0].json.str("msg") == "renew", "renewals not logged as such: %s",
              reconnecting.empty() ? "(none)" : reconnecting[0].line.c_str());

  // Audio flowed both ways after the renewals: every connection that lived through a renewal
  // period got the caller's speech (4 s or more of it), and the caller heard the reply.
  for (int i = 0; i <= answering; i++) {
    auto pcm = audio_test::samples_from_bytes(fake.connection(i).input_audio);
    fail_unless(faults::tone_ms(pcm, kModelRate, faults::kCallerHz) >= (i < answering ? 3000 : 1000),
                "Realtime connection %d got %s of the caller", i, faults::describe_sound(pcm, kModelRate).c_str());
  }
  fail_unless(heard, "the caller did not hear the reply after the renewals: %s",
              faults::describe_sound(faults::heard_since(peer, reply_us), rate).c_str());
  HttpResponse live = vb.http().request("GET", "/v1/calls/" + id);
  fail_unless(live.json().str("state") == "active", "%s", live.describe().c_str());
  fail_unless(vb.events("CALL_ENDED", id).empty(), "%s", vb.call_log(id).c_str());

  HttpResponse del = vb.http().request("DELETE", "/v1/calls/" + id);
  fail_unless(del.status == 200 && del.json().str("end_reason") == "hangup", "%s", del.describe().c_str());
  fail_unless(vb.glib_complaints().empty(), "GLib criticals:\n%s", vb.glib_complaints().c_str());
  peer.stop();
}
GST_END_TEST;

// A renewal (or a reconnect) that falls inside a caller's turn: the old socket is dropped with the
// turn's audio uncommitted in the server's input buffer. The session keeps that audio and appends it
// again on the new socket (Session::replay_turn_audio), so the connection that answers the turn has
// all of it — not only what was said after the switch (found first as a flaky "the second turn got
// no reply" in the test above).
//
// Lifetime 30 s: the renewal comes 6 s before expiry (the plugin renews a fifth of a short lifetime
// early), i.e. ~24 s after the session starts. The caller speaks from 17 s to 25 s of its program
// time (~18-26.5 s into the session, DTLS taking up to 1.5 s), across the renewal and ending well
// before the expiry, then stays silent.
GST_START_TEST(test_turn_across_renewal_reaches_model_whole) {
  constexpr int kLifetimeS = 30;
  constexpr int kTurnStartMs = 17000, kTurnMs = 8000;
  fake_realtime::Config fc;
  fc.session_lifetime_s = kLifetimeS;
  fc.reply_duration_ms = 500;
  fake_realtime::Server fake(fc);
  std::string error;
  fail_unless(fake.start(0, &error), "fake server: %s", error.c_str());
  Service vb;
  fail_unless(vb.start(fake.url(), {}, &error), "%s", error.c_str());
  const std::string id = "expiry-turn-1";

  meta_peer::Peer peer(faults::caller_saying({{kTurnStartMs, kTurnMs}}));
  fail_unless(peer.start(&error), "%s", error.c_str());
  fail_unless(faults::place_peer_call(vb, peer, id, &error), "%s", error.c_str());
  fail_unless(vb.wait_event("CALL_MEDIA_CONNECTED", id, 15000).has_value(), "no media:\n%s\n%s",
              vb.call_log(id).c_str(), peer.describe().c_str());
  fail_unless(fake.wait_for([&] { return fake.responses_started() >= 1; }, kTurnStartMs + kTurnMs + 10000),
              "the turn got no reply (%d connections):\n%s", fake.connection_count(), vb.call_log(id).c_str());
  // Let the fake finish recording the turn on whichever connection has it.
  g_usleep(500 * 1000);
  double longest_ms = 0;
  std::string pieces = pieces_per_connection(fake, &longest_ms);
  g_print("an %d ms turn across a renewal (lifetime %d s): %d connections, the caller's speech on each (longest "
          "stretch): %s\n",
          kTurnMs, kLifetimeS, fake.connection_count(), pieces.c_str());
  fail_unless(fake.connection_count() >= 2 || vb.events("RT_RECONNECTING", id).size() >= 1,
              "no renewal while the test ran: it tested nothing");
  check_never_expired(fake, vb, id);
  fail_unless(longest_ms >= kTurnMs - 500,
              "the caller's %d ms turn reached the model in pieces (per connection: %s): the renewal dropped what "
              "was said before it",
              kTurnMs, pieces.c_str());
  peer.stop();
}
GST_END_TEST;

static Suite *fault_session_expiry_suite(void) {
  Suite *s = suite_create("fault_session_expiry");
  TCase *tc = tcase_create("expiry");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_session_renewed_before_expiry);
  tcase_add_test(tc, test_turn_across_renewal_reaches_model_whole);
  suite_add_tcase(s, tc);
  return s;
}

GST_CHECK_MAIN(fault_session_expiry);
