// openairealtimesink and openairealtimesrc against the fake Realtime server: the audio itself.
//  - what the sink receives is exactly what the server gets appended, sample for sample (a)
//  - the src plays the model's reply in real time, with continuous timestamps and silence around it (b)
//  - the greeting property makes the model speak first (i)
//  - the `stats` property reflects appended/played audio, responses and barge-ins (j)
#include <gst/check/gstcheck.h>

#include <cmath>

#include "realtime-fixture.h"

using namespace rt_fixture;
using audio_test::Segment;

namespace {

// Audio that is different at every sample: a 300 Hz tone at -12 dBFS plus low noise, so that a
// dropped, duplicated or reordered chunk anywhere shows up in an exact comparison.
std::vector<int16_t> known_signal(double ms, uint32_t seed) {
  return audio_test::mix(audio_test::make_tone(300, ms, -12.0, kRate, 0), audio_test::make_noise(ms, -40.0, seed));
}

void check_exact(const std::vector<int16_t> &pushed, const std::vector<uint8_t> &received_bytes) {
  auto received = audio_test::samples_from_bytes(received_bytes);
  fail_unless_equals_int(received_bytes.size() % 2, 0);
  size_t n = std::min(pushed.size(), received.size());
  size_t first_diff = n;
  for (size_t i = 0; i < n; i++)
    if (pushed[i] != received[i]) {
      first_diff = i;
      break;
    }
  fail_unless(first_diff == n, "sample %zu differs: pushed %d, server got %d", first_diff,
              first_diff < n ? pushed[first_diff] : 0, first_diff < n ? received[first_diff] : 0);
  fail_unless_equals_int(received.size(), pushed.size());
}

// Every append carries 20–100 ms of audio, except the tail flushed at EOS, which may be shorter.
void check_append_sizes(const fake_realtime::ConnectionLog &log) {
  auto appends = events_of_type(log, "input_audio_buffer.append");
  fail_unless(!appends.empty());
  for (size_t i = 0; i < appends.size(); i++) {
    std::string b64 = json_path_string(appends[i], "audio");
    gsize len = 0;
    guchar *pcm = g_base64_decode(b64.c_str(), &len);
    g_free(pcm);
    fail_unless(len % 2 == 0, "append %zu has an odd byte count", i);
    if (i + 1 < appends.size())
      fail_unless(len >= 20 * 48 && len <= 100 * 48, "append %zu carries %zu bytes (%.1f ms)", i, (size_t)len,
                  len / 48.0);
    else
      fail_unless(len > 0 && len <= 100 * 48, "last append carries %zu bytes", (size_t)len);
  }
}

}  // namespace

// (a) After session-ready, the sink's input reaches the server unchanged: every sample, in order,
// including the sub-20 ms tail, which EOS flushes.
GST_START_TEST(test_appended_audio_equals_pushed_audio)
{
  auto server = start_server();
  Pipeline p({unique_session("append"), server->url(), true, false});
  p.play();
  auto ready = p.wait_ready();
  measure("setup_to_session_ready_ms", ready.dbl("setup-ms"), "ms");

  // 1537 ms + 13 samples, in odd buffer sizes (20 ms, 13.9 ms, 50 ms, 40 ms, 17 samples, 100 ms).
  auto signal = known_signal(1537, 11);
  signal.resize(signal.size() + 13, 1234);
  p.push(signal, 0, {480, 333, 1201, 960, 17, 2400});
  p.push_eos();
  const size_t want = signal.size() * 2;
  fail_unless(server->wait_for([&] { return server->all_input_audio().size() >= want; }, 5000),
              "server got %zu of %zu bytes; stats %s", server->all_input_audio().size(), want, p.stats_string().c_str());
  gst_test::sleep_ms(200);  // nothing more may follow
  check_exact(signal, server->all_input_audio());

  auto log = server->connection(0);
  check_append_sizes(log);
  // Appends start only after the session.update (G3: never stream before the session is configured).
  fail_unless(first_index(log, "session.update") >= 0);
  fail_unless(first_index(log, "input_audio_buffer.append") > first_index(log, "session.update"));
  fail_unless_equals_int(server->connection_count(), 1);

  fail_unless_equals_int((int)p.stat("input-ms-appended"), (int)(want / 48));
  fail_unless_equals_int((int)p.stat("input-ms-dropped"), 0);
  double latency = p.stat("last-append-latency-ms");
  fail_unless(latency >= 0 && latency < 100, "last-append-latency-ms %.2f", latency);
  measure("append_latency_ms", latency, "ms");
  fail_if(p.bus->has_error(), "%s", p.bus->errors_text().c_str());
}
GST_END_TEST;

// (a) Audio pushed before the session is ready is kept and sent, in order, once it is.
GST_START_TEST(test_audio_before_ready_is_sent_after_ready)
{
  auto server = start_server();
  Pipeline p({unique_session("early"), server->url(), true, false});
  p.play();
  auto early = known_signal(500, 21);
  p.push(early);  // most likely before session.updated: the socket is not even open yet
  p.wait_ready();
  auto late = known_signal(700, 22);
  p.push(late);
  p.push_eos();
  auto all = audio_test::concat(early, late);
  fail_unless(server->wait_for([&] { return server->all_input_audio().size() >= all.size() * 2; }, 5000),
              "server got %zu of %zu bytes", server->all_input_audio().size(), all.size() * 2);
  gst_test::sleep_ms(100);
  check_exact(all, server->all_input_audio());
  auto log = server->connection(0);
  fail_unless(first_index(log, "input_audio_buffer.append") > first_index(log, "session.update"));
}
GST_END_TEST;

// (b) The model's reply comes out of the src as it would reach a caller: at real-time pace although
// the server sends it 10× faster, as a clean tone of the reply's exact length, with digital silence
// before and after, in 20 ms buffers with continuous timestamps.
GST_START_TEST(test_src_plays_reply_in_real_time)
{
  fake_realtime::Config cfg;
  cfg.reply_duration_ms = 1000;
  cfg.reply_tone_hz = 440;
  cfg.speed = 10.0;
  auto server = start_server(cfg);
  Pipeline p({unique_session("play"), server->url(), false, true});
  p.play();
  p.wait_ready();
  gst_test::sleep_ms(300);  // silence before
  const int64_t asked_us = gst_test::now_us();
  server->start_response();
  auto started = p.expect("openairealtime-playback-started", 3000);
  auto done = p.expect("openairealtime-response-done", 3000);
  fail_unless_str_eq(done.str("status").c_str(), "completed");
  // The whole reply was received long before it could be played.
  fail_unless((done.mono_us - started.mono_us) / 1000.0 < 500, "response.done %.0f ms after playback started",
              (done.mono_us - started.mono_us) / 1000.0);
  // Play it out, plus silence after.
  fail_unless(p.out->wait_until(
                  [](const std::vector<int16_t> &s) {
                    auto segs = audio_test::find_segments(s, kRate, -50.0);
                    return !segs.empty() && s.size() - segs.back().end > audio_test::ms_to_samples(400);
                  },
                  4000),
              "reply did not finish playing: %s", analyse(*p.out).describe().c_str());
  // The session's own counters agree with what came out (read before stopping: a stopped element
  // has no session).
  fail_unless_equals_int((int)p.stat("output-ms-received"), 1000);
  fail_unless_equals_int((int)p.stat("output-ms-played"), 1000);
  fail_unless_equals_int((int)p.stat("output-ms-dropped"), 0);
  fail_unless_equals_int((int)p.stat("responses"), 1);
  fail_unless_equals_int((int)p.stat("underruns"), 0);
  p.stop();

  Playback pb = analyse(*p.out);
  fail_unless_equals_int(pb.segments.size(), 1);
  const Segment &seg = pb.segments[0];
  check_tone(pb, seg, 440, 1000, 20);
  // Level: 0.3 peak → -13.5 dBFS RMS.
  double level = audio_test::rms_dbfs(pb.samples.data() + seg.start, seg.length());
  fail_unless(std::fabs(level - -13.47) < 0.5, "reply at %.2f dBFS", level);
  // Digital silence (exact zeros) before and after, at least 200 ms / 300 ms of it.
  fail_unless(seg.start >= audio_test::ms_to_samples(200), "%s", pb.describe().c_str());
  // (the 5 ms fades put a few samples below the segment threshold at each edge)
  fail_unless(audio_test::all_zero(pb.samples.data(), seg.start - 4));
  fail_unless(pb.samples.size() - seg.end >= audio_test::ms_to_samples(300));
  fail_unless(audio_test::all_zero(pb.samples.data() + seg.end + 4, pb.samples.size() - seg.end - 4));
  check_continuous_20ms(pb.buffers);

  // Real time: from the buffer that started the reply to the one that ended it took (almost) the
  // reply's duration of wall-clock time, not the ~100 ms the server needed to send it.
  const gst_test::BufferRecord *first = nullptr, *last = nullptr;
  for (const auto &b : pb.buffers) {
    if (b.nonzero == 0) continue;
    if (!first) first = &b;
    last = &b;
  }
  fail_unless(first && last);
  double wall_ms = (last->mono_us - first->mono_us) / 1000.0;
  fail_unless(wall_ms >= 0.9 * 1000, "1000 ms of reply played in %.0f ms of wall-clock time", wall_ms);
  fail_unless(wall_ms <= 1000 + 100, "1000 ms of reply took %.0f ms to play", wall_ms);
  measure("first_audio_after_request_ms", (first->mono_us - asked_us) / 1000.0, "ms");

  fail_unless_equals_int(p.bus->count("openairealtime-playback-started"), 1);
  // playback-stopped: once, when the src took its first buffer without model audio (the one after
  // the last buffer of the reply, so at that buffer's running time).
  auto stopped = p.bus->named("openairealtime-playback-stopped");
  fail_unless_equals_int(stopped.size(), 1);
  const double stopped_after_ms = ((double)stopped[0].running_time - (double)last->pts) / 1e6;
  fail_unless(stopped_after_ms >= 19 && stopped_after_ms <= 60, "playback-stopped %.1f ms after the last audio buffer",
              stopped_after_ms);
  fail_unless(started.running_time <= first->pts + 20 * GST_MSECOND);
  auto transcripts = p.bus->named("openairealtime-transcript");
  fail_unless_equals_int(transcripts.size(), 1);
  fail_unless_str_eq(transcripts[0].str("role").c_str(), "agent");
  fail_unless_str_eq(transcripts[0].str("text").c_str(), "Hello from the fake Realtime server.");
  fail_if(p.bus->has_error(), "%s", p.bus->errors_text().c_str());
}
GST_END_TEST;

// (b) A full turn through both elements in one pipeline: the caller speaks (tone, then silence),
// the server's VAD ends the turn and the model answers; the answer plays on the src.
GST_START_TEST(test_turn_round_trip)
{
  fake_realtime::Config cfg;
  cfg.reply_duration_ms = 800;
  cfg.reply_tone_hz = 600;
  auto server = start_server(cfg);
  Pipeline p({unique_session("turn"), server->url(), true, true, "silence-duration-ms=300"});
  p.play();
  p.wait_ready();
  // Paced roughly like a live caller: 20 ms buffers, not all at once.
  auto speech = audio_test::make_tone(300, 800, -12.0);
  auto silence = audio_test::make_silence(600);
  p.push(speech);
  p.push(silence);
  auto stopped = p.expect("openairealtime-speech-stopped", 3000);
  p.expect("openairealtime-speech-started", 100);
  p.expect("openairealtime-response-done", 3000);
  fail_unless(p.out->wait_until(
                  [](const std::vector<int16_t> &s) {
                    auto segs = audio_test::find_segments(s, kRate, -50.0);
                    return !segs.empty() && s.size() - segs.back().end > audio_test::ms_to_samples(200);
                  },
                  4000),
              "reply did not play: %s", analyse(*p.out).describe().c_str());
  p.stop();
  Playback pb = analyse(*p.out);
  fail_unless_equals_int(pb.segments.size(), 1);
  check_tone(pb, pb.segments[0], 600, 800, 20);
  check_continuous_20ms(pb.buffers);
  // The server heard the caller's turn: 800 ms of -15 dBFS RMS at 300 Hz, then quiet.
  auto heard = audio_test::samples_from_bytes(server->all_input_audio());
  fail_unless(heard.size() >= speech.size() + silence.size() / 2);
  double f = audio_test::dominant_frequency(heard.data(), speech.size());
  fail_unless(std::fabs(f - 300) < 2, "server heard %.1f Hz", f);
  fail_unless(std::fabs(audio_test::rms_dbfs(heard.data(), speech.size()) - -15.0) < 0.5);
  // The caller transcript (the fake describes the audio) reached the bus.
  auto caller = p.bus->wait_for_match("openairealtime-transcript",
                                      [](const gst_test::BusRecord &r) { return r.str("role") == "caller"; }, 2000);
  fail_unless(caller.has_value(), "%s", p.bus->dump().c_str());
  fail_unless(caller->str("text").find("ms of caller audio") != std::string::npos);
  fail_unless(stopped.int64("audio-end-ms") >= 800);
}
GST_END_TEST;

// (i) With a greeting, the model speaks first once the session is ready, without any caller audio or
// application request; the response carries the greeting in its instructions.
GST_START_TEST(test_greeting_speaks_first)
{
  fake_realtime::Config cfg;
  cfg.reply_duration_ms = 700;
  cfg.reply_tone_hz = 520;
  auto server = start_server(cfg);
  Pipeline p({unique_session("greet"), server->url(), true, true, "greeting=\"Welcome to the test line\""});
  p.play();
  auto ready = p.wait_ready();
  auto started = p.expect("openairealtime-playback-started", 3000);
  measure("ready_to_greeting_audio_ms", (started.mono_us - ready.mono_us) / 1000.0, "ms");
  fail_unless(p.out->wait_until(
                  [](const std::vector<int16_t> &s) {
                    auto segs = audio_test::find_segments(s, kRate, -50.0);
                    return !segs.empty() && s.size() - segs.back().end > audio_test::ms_to_samples(200);
                  },
                  3000),
              "greeting did not play: %s", analyse(*p.out).describe().c_str());
  p.stop();
  Playback pb = analyse(*p.out);
  fail_unless_equals_int(pb.segments.size(), 1);
  check_tone(pb, pb.segments[0], 520, 700, 20);
  fail_unless_equals_int(server->responses_started(), 1);
  auto instructions = server->response_instructions();
  fail_unless_equals_int(instructions.size(), 1);
  fail_unless(instructions[0].find("Welcome to the test line") != std::string::npos, "instructions: %s",
              instructions[0].c_str());
  // Exactly one response.create, sent after the session was configured.
  auto log = server->connection(0);
  fail_unless_equals_int(events_of_type(log, "response.create").size(), 1);
  fail_unless(first_index(log, "response.create") > first_index(log, "session.update"));
  fail_unless(server->all_input_audio().empty());
}
GST_END_TEST;

// (j) stats: appended and played milliseconds, responses, barge-ins and dropped audio, read from
// either element of the session (they share one session).
GST_START_TEST(test_stats_reflect_activity)
{
  fake_realtime::Config cfg;
  cfg.reply_duration_ms = 600;
  auto server = start_server(cfg);
  Pipeline p({unique_session("stats"), server->url(), true, true, "silence-duration-ms=300"});
  p.play();
  p.wait_ready();
  fail_unless_equals_int((int)p.stat("ready"), 1);
  // A turn: 600 ms of speech + 600 ms of silence = 1200 ms appended; a 600 ms reply played.
  p.push(audio_test::concat(audio_test::make_tone(300, 600, -12.0), audio_test::make_silence(600)));
  p.expect("openairealtime-response-done", 3000);
  fail_unless(gst_test::poll_until([&] { return p.stat("output-ms-played") >= 600; }, 3000), "%s",
              p.stats_string().c_str());
  fail_unless(gst_test::poll_until([&] { return p.stat("input-ms-appended") >= 1200; }, 1000), "%s",
              p.stats_string().c_str());
  fail_unless_equals_int((int)p.stat("input-ms-appended"), 1200);
  fail_unless_equals_int((int)p.stat("output-ms-received"), 600);
  fail_unless_equals_int((int)p.stat("output-ms-played"), 600);
  fail_unless_equals_int((int)p.stat("responses"), 1);
  fail_unless_equals_int((int)p.stat("barge-ins"), 0);
  fail_unless(p.stat("output-tokens") > 0, "%s", p.stats_string().c_str());
  fail_unless(p.stat("input-tokens") > 0, "%s", p.stats_string().c_str());

  // A long reply, interrupted locally after ~300 ms of playback: one barge-in, the rest dropped.
  fake_realtime::Config longer = cfg;
  longer.reply_duration_ms = 3000;
  server->set_config(longer);
  server->start_response();
  p.expect("openairealtime-playback-started", 3000, 2);
  fail_unless(gst_test::poll_until([&] { return p.stat("output-ms-played") >= 900; }, 3000));
  gboolean ok = FALSE;
  g_signal_emit_by_name(p.rtsink, "interrupt", &ok);  // either element works
  fail_unless(ok);
  p.expect("openairealtime-barge-in", 2000);
  fail_unless(gst_test::poll_until([&] { return p.stat("barge-ins") >= 1; }, 1000));
  fail_unless_equals_int((int)p.stat("barge-ins"), 1);
  fail_unless_equals_int((int)p.stat("responses"), 2);
  double played = p.stat("output-ms-played"), dropped = p.stat("output-ms-dropped");
  double received = p.stat("output-ms-received");
  fail_unless(dropped > 1000, "%s", p.stats_string().c_str());
  // Everything received was either played or dropped (±1 ms rounding of each counter).
  fail_unless(std::fabs(played + dropped - received) <= 2, "%s", p.stats_string().c_str());
  // Both elements report the same session.
  double via_src = gst_test::structure_property_number(p.rtsrc, "stats", "output-ms-played");
  double via_sink = gst_test::structure_property_number(p.rtsink, "stats", "output-ms-played");
  fail_unless_equals_int((int)via_src, (int)via_sink);
}
GST_END_TEST;

// Two sessions in one process (two calls) share the hub thread but nothing else: the caller audio of
// each reaches its own connection only, and a reply requested on one plays on that one's src only.
GST_START_TEST(test_sessions_are_independent)
{
  fake_realtime::Config cfg;
  cfg.reply_duration_ms = 500;
  auto server = start_server(cfg);
  Pipeline a({unique_session("call-a"), server->url(), true, true});
  a.play();
  a.wait_ready();
  Pipeline b({unique_session("call-b"), server->url(), true, true});
  b.play();
  b.wait_ready();
  fail_unless_equals_int(server->connection_count(), 2);
  // Different audio into each.
  auto to_a = known_signal(300, 1), to_b = known_signal(500, 2);
  a.push(to_a);
  a.push_eos();
  b.push(to_b);
  b.push_eos();
  fail_unless(server->wait_for(
      [&] {
        return server->connection(0).input_audio.size() >= to_a.size() * 2 &&
               server->connection(1).input_audio.size() >= to_b.size() * 2;
      },
      3000));
  check_exact(to_a, server->connection(0).input_audio);
  check_exact(to_b, server->connection(1).input_audio);
  // A reply asked for on b plays on b only.
  gboolean ok = FALSE;
  g_signal_emit_by_name(b.rtsrc, "request-response", "", &ok);
  fail_unless(ok);
  b.expect("openairealtime-playback-started", 3000);
  fail_unless(b.out->wait_until(
      [](const std::vector<int16_t> &s) { return audio_test::count_nonzero(s.data(), s.size()) >= 11900; }, 3000));
  gst_test::sleep_ms(200);
  fail_unless_equals_int(a.out->nonzero_count(), 0);
  fail_unless_equals_int(a.bus->count("openairealtime-playback-started"), 0);
  fail_unless_equals_int((int)a.stat("responses"), 0);
  fail_unless_equals_int((int)b.stat("responses"), 1);
}
GST_END_TEST;

// A pipeline stopped and started again with the same session name gets a fresh, working session.
GST_START_TEST(test_restart_with_same_session_name)
{
  fake_realtime::Config cfg;
  cfg.reply_duration_ms = 400;
  auto server = start_server(cfg);
  Pipeline p({unique_session("restart"), server->url(), true, true});
  for (int round = 1; round <= 2; round++) {
    p.play();
    p.expect("openairealtime-session-ready", 5000, round);
    fail_unless(server->wait_for([&] { return server->connection_count() == round; }, 2000));
    const size_t before = p.out->sample_count();
    server->start_response();
    fail_unless(p.out->wait_until(
                    [before](const std::vector<int16_t> &s) {
                      return s.size() > before && audio_test::count_nonzero(s.data() + before, s.size() - before) >=
                                                      audio_test::ms_to_samples(390);
                    },
                    3000),
                "round %d: no reply", round);
    p.stop();
    fail_unless(server->wait_for([&] { return server->connection(round - 1).closed; }, 2000),
                "round %d: the connection was not closed at stop", round);
  }
  fail_unless_equals_int(server->connection_count(), 2);
}
GST_END_TEST;

static Suite *realtime_audio_suite(void) {
  register_elements();
  Suite *s = suite_create("realtime-audio");
  TCase *tc = tcase_create("fake-server");
  tcase_set_timeout(tc, 60);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_appended_audio_equals_pushed_audio);
  tcase_add_test(tc, test_audio_before_ready_is_sent_after_ready);
  tcase_add_test(tc, test_src_plays_reply_in_real_time);
  tcase_add_test(tc, test_turn_round_trip);
  tcase_add_test(tc, test_greeting_speaks_first);
  tcase_add_test(tc, test_stats_reflect_activity);
  tcase_add_test(tc, test_sessions_are_independent);
  tcase_add_test(tc, test_restart_with_same_session_name);
  return s;
}

GST_CHECK_MAIN(realtime_audio);
