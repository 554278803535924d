// Barge-in (docs/openai-realtime.md §5.3, CONTRACT.md §4) against the fake Realtime server:
//  - the src goes silent within one 20 ms buffer of the caller starting to speak, and nothing of the
//    interrupted reply plays afterwards (even while the server is still sending it);
//  - the server is told exactly how much of the reply was played (conversation.item.truncate with
//    audio_end_ms = the model audio the appsink actually received), or, when nothing was played,
//    the item is deleted instead;
//  - with interrupt-response=false (and for a local "interrupt"), the session cancels the response
//    itself; with the server's own interruption it does not.
#include <gst/check/gstcheck.h>

#include <cmath>

#include "realtime-fixture.h"

using namespace rt_fixture;

namespace {

struct BargeIn {
  Playback playback;
  gst_test::BusRecord event;    // the event as the application saw it (speech-started or barge-in)
  gst_test::BusRecord barge_in; // openairealtime-barge-in
  double played_before_ms = 0;  // model audio the appsink had received when the barge-in was triggered
  // The session's stats just before the pipeline stopped (a stopped element has no session).
  double stat_played = -1, stat_dropped = -1, stat_received = -1, stat_barge_ins = -1;
  std::string stats;
};

// Plays a long reply, triggers a barge-in after about 1 s of playback (the server's speech_started,
// or the local "interrupt" action), keeps the pipeline running for 1 s more, then stops it.
BargeIn run_barge_in(fake_realtime::Server &server, Pipeline &p, bool local) {
  BargeIn r;
  p.play();
  p.wait_ready();
  gst_test::sleep_ms(200);
  server.start_response();
  p.expect("openairealtime-playback-started", 3000);
  // ~1 s of the reply has reached the appsink.
  fail_unless(p.out->wait_until(
                  [](const std::vector<int16_t> &s) {
                    return audio_test::count_nonzero(s.data(), s.size()) >= (size_t)kRate * 1000 / 1000;
                  },
                  3000),
              "reply did not play for 1 s: %s", analyse(*p.out).describe().c_str());
  r.played_before_ms = p.out->nonzero_count() / 24.0;
  if (local) {
    gboolean ok = FALSE;
    g_signal_emit_by_name(p.rtsrc, "interrupt", &ok);
    fail_unless(ok);
    r.barge_in = p.expect("openairealtime-barge-in", 2000);
    r.event = r.barge_in;
  } else {
    server.emit_speech_started();
    r.event = p.expect("openairealtime-speech-started", 2000);
    r.barge_in = p.expect("openairealtime-barge-in", 2000);
  }
  // Keep playing (silence, the src is live) for a second: nothing of the reply may come back.
  const size_t have = p.out->sample_count();
  fail_unless(p.out->wait_samples(have + kRate, 3000));
  r.stat_played = p.stat("output-ms-played");
  r.stat_dropped = p.stat("output-ms-dropped");
  r.stat_received = p.stat("output-ms-received");
  r.stat_barge_ins = p.stat("barge-ins");
  r.stats = p.stats_string();
  p.stop();
  r.playback = analyse(*p.out);
  return r;
}

// The common checks of a barge-in during playback.
void check_cut(const BargeIn &r, const fake_realtime::Server &server, double reply_hz, double reply_ms) {
  const Playback &pb = r.playback;
  // One piece of reply, a clean tone, cut short, never resumed.
  fail_unless_equals_int(pb.segments.size(), 1);
  check_tone(pb, pb.segments[0], reply_hz, 0);
  const double cut_ms = audio_test::duration_ms(pb.segments[0]);
  fail_unless(cut_ms >= 950 && cut_ms < reply_ms - 1000, "played %.0f ms of a %.0f ms reply: %s", cut_ms, reply_ms,
              pb.describe().c_str());
  check_continuous_20ms(pb.buffers);

  // Silent within one buffer of the event: no model audio in any buffer whose timestamp (= the
  // running time at which the src took it from the session) is 20 ms or more after the event.
  const GstClockTime event_rt = r.event.running_time;
  fail_unless(GST_CLOCK_TIME_IS_VALID(event_rt));
  GstClockTime last_audio_pts = 0, first_silent_after = GST_CLOCK_TIME_NONE;
  for (const auto &b : pb.buffers) {
    if (b.nonzero) {
      last_audio_pts = b.pts;
      fail_unless(b.pts < event_rt + 20 * GST_MSECOND,
                  "model audio in the buffer at %.1f ms, the barge-in was at %.1f ms", b.pts / 1e6, event_rt / 1e6);
    }
  }
  for (const auto &b : pb.buffers)
    if (b.pts > last_audio_pts && b.nonzero == 0) {
      first_silent_after = b.pts;
      break;
    }
  fail_unless(GST_CLOCK_TIME_IS_VALID(first_silent_after));
  const double stop_ms = ((double)first_silent_after - (double)event_rt) / 1e6;
  measure("barge_in_stop_latency_ms", stop_ms, "ms (first silent buffer's running time - event)");
  fail_unless(stop_ms <= 40.0, "silent only %.1f ms after the barge-in", stop_ms);

  // The truncate: audio_end_ms = the model audio actually pushed downstream, within 20 ms.
  const double extent_ms = audio_test::samples_to_ms(played_extent_samples(pb));
  const double nonzero_ms = audio_test::count_nonzero(pb.samples.data(), pb.samples.size()) / 24.0;
  fail_unless(server.wait_for([&] { return !server.truncates().empty(); }, 2000), "no truncate reached the server");
  auto truncates = server.truncates();
  fail_unless_equals_int(truncates.size(), 1);
  const auto &t = truncates[0];
  fail_unless(t.accepted, "the server rejected the truncate: %lld ms of an item of %lld ms", (long long)t.audio_end_ms,
              (long long)t.item_audio_ms);
  fail_unless_str_eq(t.item_id.c_str(), r.barge_in.str("item-id").c_str());
  fail_unless(std::fabs(t.audio_end_ms - extent_ms) <= 20, "truncate at %lld ms, %.1f ms were played",
              (long long)t.audio_end_ms, extent_ms);
  fail_unless(std::fabs(t.audio_end_ms - nonzero_ms) <= 20, "truncate at %lld ms, %.1f ms of non-silent samples",
              (long long)t.audio_end_ms, nonzero_ms);
  fail_unless(t.audio_end_ms <= t.item_audio_ms);
  fail_unless_equals_int(r.barge_in.int64("audio-end-ms"), t.audio_end_ms);
  fail_unless(server.deleted_items().empty());
  measure("truncate_minus_played_ms", t.audio_end_ms - extent_ms, "ms");

  // The counters agree.
  fail_unless_equals_int((int)r.stat_barge_ins, 1);
  fail_unless(std::fabs(r.stat_played - extent_ms) <= 1.0, "stats %s, played %.1f ms", r.stats.c_str(), extent_ms);
}

}  // namespace

// (c) The server's VAD hears the caller (interrupt_response=true, the default): it cancels the
// response itself, the session drops the queued audio at once, truncates the item at the played
// position and does not send response.cancel. The whole 5 s reply had been received before the
// barge-in (the fake sends 10× faster than real time), so ~4 s of queued audio must be discarded.
GST_START_TEST(test_barge_in_server_vad)
{
  fake_realtime::Config cfg;
  cfg.reply_duration_ms = 5000;
  cfg.reply_tone_hz = 440;
  cfg.speed = 10.0;
  auto server = start_server(cfg);
  Pipeline p({unique_session("barge"), server->url(), false, true});
  BargeIn r = run_barge_in(*server, p, false);
  check_cut(r, *server, 440, 5000);
  fail_unless_str_eq(r.barge_in.str("trigger").c_str(), "speech_started");
  fail_unless(r.barge_in.int64("dropped-ms") > 3000, "dropped only %lld ms", (long long)r.barge_in.int64("dropped-ms"));
  fail_unless(r.stat_dropped > 3000, "%s", r.stats.c_str());
  // The server interrupts by itself here: the client must not cancel too.
  auto log = server->connection(0);
  fail_unless_equals_int(events_of_type(log, "response.cancel").size(), 0);
  fail_unless_equals_int(events_of_type(log, "conversation.item.truncate").size(), 1);
  fail_unless_equals_int(server->speech_started_count(), 1);
  fail_if(p.bus->has_error(), "%s", p.bus->errors_text().c_str());
}
GST_END_TEST;

// (c) interrupt-response=false: the server keeps generating (it sends the reply at 2× real time, so
// it is still streaming at the barge-in); the session sends response.cancel itself, drops what is
// queued and whatever deltas of that response still arrive, and truncates.
GST_START_TEST(test_barge_in_client_cancels_without_server_interrupt)
{
  fake_realtime::Config cfg;
  cfg.reply_duration_ms = 5000;
  cfg.reply_tone_hz = 350;
  cfg.speed = 2.0;
  auto server = start_server(cfg);
  Pipeline p({unique_session("barge-cancel"), server->url(), false, true, "interrupt-response=false"});
  BargeIn r = run_barge_in(*server, p, false);
  check_cut(r, *server, 350, 5000);
  // The session.update asked the server not to interrupt…
  auto log = server->connection(0);
  auto updates = events_of_type(log, "session.update");
  fail_unless(!updates.empty());
  fail_unless(updates[0].find("\"interrupt_response\":false") != std::string::npos, "%s", updates[0].c_str());
  // …so the client cancelled, once, after the truncate or before it (no order is required).
  fail_unless_equals_int(events_of_type(log, "response.cancel").size(), 1);
  fail_unless_equals_int(server->responses_cancelled(), 1);
  auto done = p.bus->wait_for("openairealtime-response-done", 2000);
  fail_unless(done.has_value());
  fail_unless_str_eq(done->str("status").c_str(), "cancelled");
  fail_unless_str_eq(done->str("reason").c_str(), "client_cancelled");
  // The server stopped well before the end of its 2.5 s of streaming: the reply was cut short on
  // the server too.
  fail_unless(r.stat_received < 4500, "%s", r.stats.c_str());
  // Deltas the server sent after its speech_started and before our cancel reached it were dropped
  // by the session (never counted as received, never played): the server's item holds that much
  // more audio than the session accepted. (The fake cannot be told to keep sending after a cancel,
  // so this is usually 0–50 ms; the check that nothing played after the cut is above.)
  const auto t = server->truncates()[0];
  measure("late_deltas_dropped_ms", (double)t.item_audio_ms - r.stat_received, "ms");
  fail_unless(t.item_audio_ms >= r.stat_received - 1, "the session kept more than the server sent");
  fail_if(p.bus->has_error(), "%s", p.bus->errors_text().c_str());
}
GST_END_TEST;

// (c) A local barge-in (the "interrupt" action, e.g. a DTMF key or a push-to-talk button) does the
// same, and always cancels: the server does not know the caller spoke.
GST_START_TEST(test_local_interrupt_action)
{
  fake_realtime::Config cfg;
  cfg.reply_duration_ms = 5000;
  cfg.reply_tone_hz = 440;
  cfg.speed = 2.0;
  auto server = start_server(cfg);
  Pipeline p({unique_session("interrupt"), server->url(), false, true});
  BargeIn r = run_barge_in(*server, p, true);
  check_cut(r, *server, 440, 5000);
  fail_unless_str_eq(r.barge_in.str("trigger").c_str(), "local");
  auto log = server->connection(0);
  fail_unless_equals_int(events_of_type(log, "response.cancel").size(), 1);
  fail_unless_equals_int(server->responses_cancelled(), 1);
  fail_unless_equals_int(server->speech_started_count(), 0);
}
GST_END_TEST;

// (c) A barge-in before any of the reply was played: the item is deleted, not truncated to 0 ms.
// No src pulls audio here (sink-only pipeline), so the reply is received but never played.
GST_START_TEST(test_barge_in_before_playback_deletes_item)
{
  fake_realtime::Config cfg;
  cfg.reply_duration_ms = 3000;
  cfg.speed = 10.0;
  auto server = start_server(cfg);
  Pipeline p({unique_session("barge-delete"), server->url(), true, false});
  p.play();
  p.wait_ready();
  server->start_response();
  fail_unless(gst_test::poll_until([&] { return p.stat("output-ms-received") >= 300; }, 3000), "%s",
              p.stats_string().c_str());
  server->emit_speech_started();
  auto b = p.expect("openairealtime-barge-in", 2000);
  fail_unless(server->wait_for([&] { return !server->deleted_items().empty(); }, 2000),
              "no conversation.item.delete reached the server; truncates: %zu", server->truncates().size());
  auto deleted = server->deleted_items();
  fail_unless_equals_int(deleted.size(), 1);
  fail_unless_str_eq(deleted[0].c_str(), b.str("item-id").c_str());
  fail_unless(server->truncates().empty(), "a truncate was sent although nothing was played");
  fail_unless_equals_int(b.int64("audio-end-ms"), 0);
  fail_unless_equals_int((int)p.stat("output-ms-played"), 0);
  fail_unless_equals_int((int)p.stat("barge-ins"), 1);
  fail_unless(p.stat("output-ms-dropped") >= 300, "%s", p.stats_string().c_str());
}
GST_END_TEST;

// (c) A speech_started while the model is quiet is not a barge-in: no truncate, no delete, no
// cancel, no barge-in message.
GST_START_TEST(test_speech_without_reply_is_not_barge_in)
{
  auto server = start_server();
  Pipeline p({unique_session("no-barge"), server->url(), false, true});
  p.play();
  p.wait_ready();
  server->emit_speech_started();
  p.expect("openairealtime-speech-started", 2000);
  gst_test::sleep_ms(300);
  fail_unless_equals_int(p.bus->count("openairealtime-barge-in"), 0);
  fail_unless(server->truncates().empty());
  fail_unless(server->deleted_items().empty());
  auto log = server->connection(0);
  fail_unless_equals_int(events_of_type(log, "response.cancel").size(), 0);
  fail_unless_equals_int((int)p.stat("barge-ins"), 0);
}
GST_END_TEST;

// (c) The whole loop with real caller audio: during a reply the caller speaks into the sink, the
// server's VAD hears it and interrupts; the reply stops, is truncated at what was played, and once
// the caller is quiet the model's next reply plays in full.
GST_START_TEST(test_barge_in_by_caller_audio)
{
  fake_realtime::Config cfg;
  cfg.reply_duration_ms = 4000;
  cfg.reply_tone_hz = 440;
  auto server = start_server(cfg);
  Pipeline p({unique_session("barge-caller"), server->url(), true, true, "silence-duration-ms=300"});
  p.play();
  p.wait_ready();
  server->start_response();
  p.expect("openairealtime-playback-started", 3000);
  fail_unless(p.out->wait_until(
                  [](const std::vector<int16_t> &s) { return audio_test::count_nonzero(s.data(), s.size()) >= 24000; },
                  3000));
  // The caller talks over the model (400 ms), then is quiet.
  p.push_paced(audio_test::make_tone(300, 400, -12.0));
  auto speech = p.expect("openairealtime-speech-started", 2000);
  p.expect("openairealtime-barge-in", 1000);
  p.push_paced(audio_test::make_silence(500));
  p.expect("openairealtime-speech-stopped", 2000);
  // The second reply plays in full.
  p.expect("openairealtime-playback-started", 3000, 2);
  fail_unless(p.out->wait_until(
                  [](const std::vector<int16_t> &s) {
                    auto segs = audio_test::find_segments(s, kRate, -50.0);
                    return segs.size() >= 2 && s.size() - segs.back().end > audio_test::ms_to_samples(200);
                  },
                  8000),
              "%s", analyse(*p.out).describe().c_str());
  p.stop();
  Playback pb = analyse(*p.out);
  fail_unless_equals_int(pb.segments.size(), 2);
  check_tone(pb, pb.segments[0], 440, 0);
  check_tone(pb, pb.segments[1], 440, 4000, 20);
  // The first reply stopped within one buffer of the speech_started reaching the application.
  for (const auto &b : pb.buffers)
    if (b.nonzero && b.first_sample < pb.segments[0].end)
      fail_unless(b.pts < speech.running_time + 20 * GST_MSECOND, "audio at %.1f ms, speech at %.1f ms", b.pts / 1e6,
                  speech.running_time / 1e6);
  // Truncated at what was played of it.
  auto truncates = server->truncates();
  fail_unless_equals_int(truncates.size(), 1);
  fail_unless(truncates[0].accepted);
  const double first_ms = audio_test::duration_ms(pb.segments[0]);
  fail_unless(std::fabs(truncates[0].audio_end_ms - first_ms) <= 20, "truncated at %lld ms, played %.1f ms",
              (long long)truncates[0].audio_end_ms, first_ms);
  fail_unless_equals_int(server->responses_started(), 2);
  // The first reply had been fully sent (10× real time) before the caller spoke: nothing to cancel.
  fail_unless_equals_int(events_of_type(server->connection(0), "response.cancel").size(), 0);
}
GST_END_TEST;

static Suite *realtime_bargein_suite(void) {
  register_elements();
  Suite *s = suite_create("realtime-bargein");
  TCase *tc = tcase_create("fake-server");
  tcase_set_timeout(tc, 60);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_barge_in_server_vad);
  tcase_add_test(tc, test_barge_in_client_cancels_without_server_interrupt);
  tcase_add_test(tc, test_local_interrupt_action);
  tcase_add_test(tc, test_barge_in_before_playback_deletes_item);
  tcase_add_test(tc, test_speech_without_reply_is_not_barge_in);
  tcase_add_test(tc, test_barge_in_by_caller_audio);
  return s;
}

GST_CHECK_MAIN(realtime_bargein);
