// Audio through the whole service: voicebridge-call ⇄ WebRTC ⇄ voicebridge ⇄ the fake Realtime
// server, checked at both ends (what the fake heard, what the caller recorded), plus barge-in.
#include <gst/check/gstcheck.h>

#include <cmath>

#include "audio-analysis.h"
#include "fake-realtime-server.h"
#include "service-harness.h"

using namespace svc_test;

namespace {

constexpr double kSpeechHz = 300.0;     // what the caller says (write_bursts_wav)
constexpr double kSpeechPeakDbfs = -12.0;
constexpr double kReplyHz = 440.0;      // what the fake model answers

// The caller's input: a sine of peak -12 dBFS has an RMS level of -15.05 dBFS.
const double kSpeechRmsDbfs = kSpeechPeakDbfs - 10.0 * std::log10(2.0);

}  // namespace

// The caller says 1 s of 300 Hz then stays quiet; the fake's VAD ends the turn and the model replies
// with 1 s of 440 Hz. Both ends must get the other's audio, whole and at its level.
GST_START_TEST(test_audio_both_ways) {
  fake_realtime::Config fc;
  fc.reply_duration_ms = 1000;
  fake_realtime::Server fake(fc);
  std::string error;
  fail_unless(fake.start(0, &error), "fake server: %s", error.c_str());
  Service vb;
  fail_unless(vb.start(fake.url(), {}, &error), "%s", error.c_str());

  TempDir dir;
  std::string in = dir.file("in.wav"), out = dir.file("heard.wav");
  fail_unless(write_bursts_wav(in, {0}, {1000}, 2500, kSpeechHz, kSpeechPeakDbfs));
  double cpu_before = cpu_seconds(vb.pid());
  CallerResult call = run_caller(vb.base_url(), {"--input", in, "--output", out, "--duration", "4.5", "--call-id",
                                                 "audio-1"},
                                 30000);
  double cpu_call = cpu_seconds(vb.pid()) - cpu_before;
  fail_unless(call.exited && call.exit_status == 0, "the call failed: %s", call.describe.c_str());
  fail_unless(call.report.str("end") == "duration" && call.report.boolean("audio_heard"), "caller report: %s",
              call.report.text().c_str());

  // The model's tone reached the caller: one stretch of 440 Hz as long as the reply (Opus and the
  // jitter buffers smear the edges by a few ms), at the fake's level (a sine's RMS is peak - 3 dB).
  int rate = 0;
  auto heard = read_wav_mono(out, &rate, &error);
  fail_unless(!heard.empty() && rate == kCallerRate, "recording: %s (rate %d)", error.c_str(), rate);
  auto tones = find_tones(heard, rate);
  auto reply = tones_at(tones, kReplyHz);
  fail_unless(reply.size() == 1 && tones.size() == 1, "the caller heard %s", describe_tones(tones).c_str());
  fail_unless(std::abs(reply[0].length_ms() - fc.reply_duration_ms) <= 60, "the reply lasted %.0f ms, not %d: %s",
              reply[0].length_ms(), fc.reply_duration_ms, describe_tones(tones).c_str());
  const double reply_rms_dbfs = 20.0 * std::log10(fc.reply_amplitude / std::sqrt(2.0));
  fail_unless(std::abs(reply[0].rms_dbfs - reply_rms_dbfs) <= 3.0, "the reply arrived at %.1f dBFS, sent at %.1f",
              reply[0].rms_dbfs, reply_rms_dbfs);

  // The caller's speech reached the model: 1 s of 300 Hz at the level sent, nothing else.
  fail_unless(fake.connection_count() == 1, "the fake saw %d connections", fake.connection_count());
  auto model_heard = find_tones(audio_test::samples_from_bytes(fake.connection(0).input_audio), kModelRate);
  auto speech = tones_at(model_heard, kSpeechHz);
  fail_unless(speech.size() == 1 && model_heard.size() == 1, "the model heard %s", describe_tones(model_heard).c_str());
  fail_unless(std::abs(speech[0].length_ms() - 1000) <= 100, "the model heard %.0f ms of the 1000 ms said",
              speech[0].length_ms());
  fail_unless(std::abs(speech[0].rms_dbfs - kSpeechRmsDbfs) <= 3.0, "the model heard %.1f dBFS, the caller said %.1f",
              speech[0].rms_dbfs, kSpeechRmsDbfs);

  // The call's record after the hang-up.
  HttpResponse r = vb.http().request("GET", "/v1/calls/audio-1");
  Json c = r.json();
  fail_unless(r.status == 200 && c.str("state") == "ended" && c.str("end_reason") == "hangup", "%s",
              r.describe().c_str());
  std::string shape = call_shape_problem(c);
  fail_unless(shape.empty(), "%s", shape.c_str());
  Json stats = c.get("stats");
  fail_unless(stats.num("audio_to_model_ms") >= 1000, "audio_to_model_ms: %s", stats.text().c_str());
  fail_unless(std::abs(stats.num("audio_to_caller_ms") - fc.reply_duration_ms) <= 100, "audio_to_caller_ms: %s",
              stats.text().c_str());
  fail_unless(stats.num("rtp_packets_received") > 0, "rtp_packets_received: %s", stats.text().c_str());
  fail_unless(stats.num("responses") >= 1, "responses: %s", stats.text().c_str());

  // The log tells the call's story, each event with its call_id; the Realtime session is ready
  // before media connects (it is opened in parallel with ICE, CONTRACT.md §4).
  auto created = vb.wait_event("CALL_CREATED", "audio-1", 1000);
  auto ready = vb.wait_event("RT_SESSION_READY", "audio-1", 1000);
  auto media = vb.wait_event("CALL_MEDIA_CONNECTED", "audio-1", 1000);
  auto ended = vb.wait_event("CALL_ENDED", "audio-1", 1000);
  fail_unless(created && ready && media && ended, "missing events:\n%s", vb.call_log("audio-1").c_str());
  fail_unless(ended->json.str("end_reason") == "hangup", "%s", ended->line.c_str());
  fail_unless(ready->mono_us <= media->mono_us, "RT_SESSION_READY after CALL_MEDIA_CONNECTED:\n%s",
              vb.call_log("audio-1").c_str());
  fail_unless(vb.glib_complaints().empty(), "GLib criticals:\n%s", vb.glib_complaints().c_str());
  std::string log_problem = vb.log_format_problem();
  fail_unless(log_problem.empty(), "%s", log_problem.c_str());

  auto answered = vb.wait_event("CALL_ANSWERED", "audio-1", 1000);
  auto first_audio = vb.wait_event("CALL_FIRST_AUDIO", "audio-1", 1000);
  g_print("audio both ways: setup %.0f ms (CALL_ANSWERED), media %.0f ms after creation, first model audio %.0f ms "
          "after media (caller heard it %.0f ms after media), reply heard %s, model heard %s, voicebridge CPU %.2f s "
          "for a %.1f s call\n",
          answered ? answered->json.num("setup_ms") : -1, media->json.num("after_ms"),
          first_audio ? first_audio->json.num("after_media_ms") : -1, call.report.num("first_audio_ms"),
          describe_tones(reply).c_str(), describe_tones(speech).c_str(), cpu_call, call.report.num("duration_s"));
  fail_unless(vb.stop(), "voicebridge did not exit on SIGTERM: %s", vb.process().describe().c_str());
}
GST_END_TEST;

// The model answers with 5 s of tone; the caller speaks again about 1 s into it. The rest of the
// reply must be dropped at once and the model told how much the caller actually heard.
GST_START_TEST(test_barge_in) {
  fake_realtime::Config fc;
  fc.reply_duration_ms = 5000;
  fc.speed = 10;  // the whole reply is queued in the service within 0.5 s: the drop is the service's
  fake_realtime::Server fake(fc);
  std::string error;
  fail_unless(fake.start(0, &error), "fake server: %s", error.c_str());
  Service vb;
  fail_unless(vb.start(fake.url(), {}, &error), "%s", error.c_str());

  // The reply starts ~0.6 s after the first burst ends (VAD silence + latency), so a second burst
  // at 2.7 s lands ~1 s into it. Its own reply comes after it, well before the hang-up at 6.5 s.
  constexpr double kBargeAtMs = 2700;
  TempDir dir;
  std::string in = dir.file("in.wav"), out = dir.file("heard.wav");
  fail_unless(write_bursts_wav(in, {0, kBargeAtMs}, {1000, 500}, 4000, kSpeechHz, kSpeechPeakDbfs));
  CallerResult call = run_caller(vb.base_url(), {"--input", in, "--output", out, "--duration", "6.5", "--call-id",
                                                 "barge-1"},
                                 30000);
  fail_unless(call.exited && call.exit_status == 0, "the call failed: %s", call.describe.c_str());

  int rate = 0;
  auto heard = read_wav_mono(out, &rate, &error);
  fail_unless(!heard.empty(), "recording: %s", error.c_str());
  auto tones = find_tones(heard, rate);
  auto replies = tones_at(tones, kReplyHz);
  fail_unless(!replies.empty(), "the caller heard no reply: %s", describe_tones(tones).c_str());
  const Tone &first = replies[0];

  // What the caller heard of the first reply stopped soon after the caller spoke. The recording
  // and the input start within ~100 ms of each other (both at media connection).
  fail_unless(first.length_ms() >= 300 && first.length_ms() < 2500,
              "the caller heard %.0f ms of the 5000 ms reply: %s", first.length_ms(), describe_tones(tones).c_str());
  fail_unless(first.end_ms >= kBargeAtMs - 200 && first.end_ms <= kBargeAtMs + 700,
              "the reply stopped at %.0f ms; the caller spoke at %.0f ms: %s", first.end_ms, kBargeAtMs,
              describe_tones(tones).c_str());

  // The model was told: one truncate of that item, at what the caller heard (the service counts
  // the 20 ms buffers it pushed; Opus and the jitter buffers add a little), never beyond what it sent.
  auto truncates = fake.truncates();
  fail_unless(truncates.size() == 1, "the fake got %zu truncates", truncates.size());
  const auto &t = truncates[0];
  fail_unless(t.accepted && t.audio_end_ms <= t.item_audio_ms, "truncate of %s at %lld ms (item of %lld ms), accepted %d",
              t.item_id.c_str(), (long long)t.audio_end_ms, (long long)t.item_audio_ms, (int)t.accepted);
  fail_unless(std::abs((double)t.audio_end_ms - first.length_ms()) <= 100,
              "truncated at %lld ms, but the caller heard %.0f ms", (long long)t.audio_end_ms, first.length_ms());

  auto barge = vb.wait_event("RT_BARGE_IN", "barge-1", 1000);
  fail_unless(barge.has_value(), "no RT_BARGE_IN:\n%s", vb.call_log("barge-1").c_str());
  fail_unless((long long)barge->json.num("audio_end_ms") == (long long)t.audio_end_ms, "RT_BARGE_IN %s vs truncate %lld",
              barge->line.c_str(), (long long)t.audio_end_ms);
  HttpResponse r = vb.http().request("GET", "/v1/calls/barge-1");
  fail_unless(r.json().get("stats").num("barge_ins") >= 1, "stats: %s", r.describe().c_str());

  // The conversation goes on: the answer to the interruption is played too.
  fail_unless(replies.size() >= 2 && replies[1].start_ms > first.end_ms, "no reply after the barge-in: %s",
              describe_tones(tones).c_str());
  g_print("barge-in: caller spoke at %.0f ms, heard %s, truncate at %lld ms of %lld ms sent\n", kBargeAtMs,
          describe_tones(replies).c_str(), (long long)t.audio_end_ms, (long long)t.item_audio_ms);
}
GST_END_TEST;

static Suite *service_audio_suite(void) {
  Suite *s = suite_create("service_audio");
  TCase *tc = tcase_create("audio");
  tcase_set_timeout(tc, 40);
  tcase_add_test(tc, test_audio_both_ways);
  tcase_add_test(tc, test_barge_in);
  suite_add_tcase(s, tc);
  return s;
}

GST_CHECK_MAIN(service_audio);
