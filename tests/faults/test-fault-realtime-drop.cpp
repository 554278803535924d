// The Realtime connection is lost in the middle of a reply: the fake server closes every socket
// abruptly (no close frame) while the caller is still hearing a long reply that is still streaming.
// The call must survive it: the session reconnects (RT_RECONNECTING, RT_RECONNECTED), replays the
// conversation so far on the new connection (conversation.item.create), the caller keeps getting
// audio (silence meanwhile), and the caller's next turn gets a reply the caller hears.
#include <gst/check/gstcheck.h>

#include <algorithm>
#include <cmath>

#include "audio-analysis.h"
#include "fake-realtime-server.h"
#include "fault-support.h"

using namespace svc_test;

namespace {

// The caller speaks twice (program time of the peer, from its first SRTP packet); the second turn
// comes well after the reconnection.
constexpr int kTurn1Ms = 500, kTurn2Ms = 6500, kTurnLengthMs = 1000;
// The first reply is long and streamed at 1.5x real time, so that 0.5 s into it the server is
// still sending it (it takes 2.7 s to send) when the connection goes.
constexpr int kLongReplyMs = 4000;
constexpr double kSpeed = 1.5;
constexpr int kSecondReplyMs = 1500;

// The largest interval between two packets from the bridge between from_us and to_us, in ms.
double worst_gap_ms(const meta_peer::Peer &peer, int64_t from_us, int64_t to_us) {
  double worst = 0;
  int64_t last = -1;
  for (const auto &p : peer.received_packets()) {
    if (p.mono_us < from_us || p.mono_us > to_us) continue;
    if (last >= 0) worst = std::max(worst, (p.mono_us - last) / 1000.0);
    last = p.mono_us;
  }
  return last < 0 ? 1e9 : worst;
}

}  // namespace

GST_START_TEST(test_connection_dropped_mid_reply) {
  fake_realtime::Config fc;
  fc.reply_duration_ms = kLongReplyMs;
  fc.speed = kSpeed;
  fake_realtime::Server fake(fc);
  std::string error;
  fail_unless(fake.start(0, &error), "fake server: %s", error.c_str());
  Service vb;
  fail_unless(vb.start(fake.url(), {}, &error), "%s", error.c_str());
  const std::string id = "rt-drop-1";

  meta_peer::Peer peer(faults::caller_saying({{kTurn1Ms, kTurnLengthMs}, {kTurn2Ms, kTurnLengthMs}}));
  fail_unless(peer.start(&error), "%s", error.c_str());
  fail_unless(faults::place_peer_call(vb, peer, id, &error), "%s", error.c_str());
  fail_unless(vb.wait_event("CALL_MEDIA_CONNECTED", id, 15000).has_value(), "no media:\n%s\n%s",
              vb.call_log(id).c_str(), peer.describe().c_str());

  // The first reply reaches the caller; 0.5 s into it, the connection goes.
  fail_unless(fake.wait_for([&] { return fake.responses_started() >= 1; }, 15000), "no first reply:\n%s",
              vb.call_log(id).c_str());
  const int rate = peer.receive_rate();
  fail_unless(faults::wait_until([&] { return faults::tone_ms(peer.received_pcm(), rate, faults::kReplyHz) >= 300; },
                                 5000),
              "the caller never heard the first reply: %s", faults::describe_sound(peer.received_pcm(), rate).c_str());
  g_usleep(200 * 1000);
  fail_unless(fake.connection_count() == 1, "%d connections before the drop", fake.connection_count());
  // Later replies are shorter and quick, which is all the rest of the test needs.
  fake_realtime::Config later = fc;
  later.reply_duration_ms = kSecondReplyMs;
  later.speed = 10;
  fake.set_config(later);
  int64_t drop_us = g_get_monotonic_time();
  fake.drop_connections();
  fail_unless(fake.wait_for([&] { return fake.connection(0).closed; }, 2000), "the fake did not close the connection");

  auto reconnecting = vb.wait_event("RT_RECONNECTING", id, 5000);
  auto reconnected = vb.wait_event("RT_RECONNECTED", id, 10000);
  fail_unless(reconnecting && reconnected, "no reconnection:\n%s", vb.call_log(id).c_str());
  fail_unless(fake.connection_count() == 2, "the fake saw %d connections", fake.connection_count());
  fail_unless(reconnecting->mono_us <= reconnected->mono_us);

  // The new connection replays the conversation: the caller's first turn (the fake's transcript of
  // it) comes back as a conversation.item.create.
  fake_realtime::ConnectionLog second = fake.connection(1);
  std::string replayed;
  for (size_t i = 0; i < second.types.size(); i++)
    if (second.types[i] == "conversation.item.create") replayed += second.events[i] + "\n";
  fail_unless(!replayed.empty(), "no history replayed on the new connection; its events: %zu", second.types.size());
  fail_unless(replayed.find("ms of caller audio") != std::string::npos,
              "the replay does not carry the caller's first turn:\n%s", replayed.c_str());

  // The call goes on: still active, nothing fatal.
  HttpResponse live = vb.http().request("GET", "/v1/calls/" + id);
  fail_unless(live.json().str("state") == "active", "after the reconnection: %s", live.describe().c_str());
  for (const auto &e : vb.events("RT_ERROR", id))
    fail_if(e.json.boolean("fatal"), "a fatal Realtime error: %s", e.line.c_str());

  // The caller's second turn gets an answer on the new connection, and the caller hears it.
  fail_unless(fake.wait_for([&] { return fake.responses_started() >= 2; }, 15000),
              "the second turn got no reply:\n%s", vb.call_log(id).c_str());
  int64_t second_reply_us = g_get_monotonic_time();
  // The first reply was cut by the drop (it was still streaming): the caller got only part of it.
  double first_reply_heard_ms = faults::tone_ms(peer.received_pcm(), rate, faults::kReplyHz);
  fail_unless(first_reply_heard_ms < kLongReplyMs - 1000, "the caller heard %.0f ms of the %d ms first reply: the drop "
              "came too late to test anything", first_reply_heard_ms, kLongReplyMs);
  fail_unless(faults::wait_until(
                  [&] {
                    return faults::tone_ms(faults::heard_since(peer, second_reply_us), rate, faults::kReplyHz) >=
                           kSecondReplyMs - 200;
                  },
                  kSecondReplyMs + 5000),
              "the caller did not hear the reply after the reconnection: %s",
              faults::describe_sound(faults::heard_since(peer, second_reply_us), rate).c_str());
  auto second_input = audio_test::samples_from_bytes(fake.connection(1).input_audio);
  fail_unless(faults::tone_ms(second_input, kModelRate, faults::kCallerHz) >= kTurnLengthMs - 150,
              "the new connection did not get the caller's second turn: %s",
              faults::describe_sound(second_input, kModelRate).c_str());

  // The caller's leg never went quiet while the model was away (WhatsApp hangs up on silence).
  double gap = worst_gap_ms(peer, drop_us - 1000 * 1000, g_get_monotonic_time());
  fail_unless(gap < 250, "a %.0f ms gap in the audio to the caller around the reconnection", gap);

  g_print("Realtime connection dropped mid-reply: RT_RECONNECTING %.0f ms after the drop, RT_RECONNECTED %.0f ms "
          "after it (%.0f ms reconnecting); %zu event(s) replayed; %.0f ms of the %d ms first reply heard; second "
          "reply heard; worst gap to the caller %.0f ms\n",
          faults::ms_between(drop_us, reconnecting->mono_us), faults::ms_between(drop_us, reconnected->mono_us),
          faults::ms_between(reconnecting->mono_us, reconnected->mono_us),
          (size_t)std::count(second.types.begin(), second.types.end(), "conversation.item.create"), first_reply_heard_ms,
          kLongReplyMs, gap);

  HttpResponse del = vb.http().request("DELETE", "/v1/calls/" + id);
  fail_unless(del.status == 200 && del.json().str("end_reason") == "hangup", "%s", del.describe().c_str());
  fail_unless(vb.glib_complaints().empty(), "GLib criticals:\n%s", vb.glib_complaints().c_str());
  peer.stop();
}
GST_END_TEST;

static Suite *fault_realtime_drop_suite(void) {
  Suite *s = suite_create("fault_realtime_drop");
  TCase *tc = tcase_create("drop");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_connection_dropped_mid_reply);
  suite_add_tcase(s, tc);
  return s;
}

GST_CHECK_MAIN(fault_realtime_drop);
