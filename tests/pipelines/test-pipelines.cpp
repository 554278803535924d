// Every script in pipelines/ runs under gst-launch-1.0 against the fake Realtime server (in this
// process, on a free loopback port), and what it does is checked on the audio itself:
//  - the server received the input's audio: its duration, and the speech part's frequency and level;
//  - the output WAV holds the model's reply: one tone of the reply's frequency and duration, with
//    silence around it, in a recording of the requested length.
// The input is made here: 1 s of 300 Hz at -12 dBFS peak, then 1.5 s of silence (so that the
// server's energy VAD ends the turn and the model replies).
//
// The scripts find the plugin through GST_PLUGIN_PATH_1_0 (set by meson's test_env) and are found
// under VOICEBRIDGE_SOURCE_ROOT/pipelines. Each run is bounded (run_process kills it on timeout).
// Working files stay in a temporary directory named in failure messages.
#include <gst/check/gstcheck.h>

#include <glib/gstdio.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <set>
#include <string>

#include "audio-analysis.h"
#include "fake-realtime-server.h"
#include "process-runner.h"
#include "wav-file.h"

using namespace audio_test;

namespace {

constexpr int kRate = 24000;
constexpr double kReplyHz = 440;
constexpr int kReplyMs = 1000;

// The scripts this file tests; test_every_script_is_tested fails when pipelines/ has another.
const std::set<std::string> kTestedScripts = {"wav-to-model.sh", "microphone.sh", "opus-loop.sh"};

std::string source_root() {
  const char *root = g_getenv("VOICEBRIDGE_SOURCE_ROOT");
  fail_unless(root != nullptr, "VOICEBRIDGE_SOURCE_ROOT is not set (run through meson test)");
  return root;
}

std::string script_path(const char *name) { return source_root() + "/pipelines/" + name; }

struct Workdir {
  std::string path;
  Workdir() {
    gchar *d = g_dir_make_tmp("vb-pipelines-XXXXXX", nullptr);
    fail_unless(d != nullptr);
    path = d;
    g_free(d);
  }
  std::string file(const char *name) const { return path + "/" + name; }
  // Only on success: a failing test leaves its files for inspection.
  void remove_all() {
    GDir *dir = g_dir_open(path.c_str(), 0, nullptr);
    if (!dir) return;
    while (const char *n = g_dir_read_name(dir)) g_unlink((path + "/" + n).c_str());
    g_dir_close(dir);
    g_rmdir(path.c_str());
  }
};

std::unique_ptr<fake_realtime::Server> start_server() {
  fake_realtime::Config cfg;
  cfg.reply_duration_ms = kReplyMs;
  cfg.reply_tone_hz = kReplyHz;
  auto server = std::make_unique<fake_realtime::Server>(cfg);
  std::string error;
  fail_unless(server->start(0, &error), "fake server: %s", error.c_str());
  return server;
}

// 1 s of 300 Hz at -12 dBFS peak (-15 dBFS RMS), then 1.5 s of digital silence.
std::vector<int16_t> make_input() { return concat(make_tone(300, 1000, -12.0, kRate, 5), make_silence(1500)); }

gst_test::ProcessResult run_script(const char *name, const std::map<std::string, std::string> &env, int timeout_ms) {
  auto r = gst_test::run_process({"/bin/sh", script_path(name)}, env, timeout_ms);
  g_print("%s: %s in %.0f ms\n", name, r.ok() ? "ok" : "FAILED", r.wall_ms);
  return r;
}

// The server heard the caller: `speech_ms` of a 300 Hz tone at -15 dBFS RMS (± level_tol dB) at the
// start, then silence; in all, expected_ms (± duration_tol_ms) of audio.
void check_server_heard(const fake_realtime::Server &server, double expected_ms, double duration_tol_ms,
                        double speech_ms, double level_tol_db, const std::string &where) {
  auto heard = samples_from_bytes(server.all_input_audio());
  const double heard_ms = samples_to_ms(heard.size(), kRate);
  fail_unless(std::fabs(heard_ms - expected_ms) <= duration_tol_ms, "server got %.1f ms of audio, expected %.0f (%s)",
              heard_ms, expected_ms, where.c_str());
  auto segs = find_segments(heard, kRate, -45.0, 5.0, 100.0);
  fail_unless_equals_int(segs.size(), 1);
  const Segment &s = segs[0];
  fail_unless(std::fabs(duration_ms(s, kRate) - speech_ms) <= 30, "speech lasted %.1f ms at the server: %s (%s)",
              duration_ms(s, kRate), describe_segments(heard.data(), segs, kRate).c_str(), where.c_str());
  // Measure away from the edges (codecs and resamplers smear them).
  const size_t margin = ms_to_samples(50, kRate);
  const int16_t *mid = heard.data() + s.start + margin;
  const size_t n = s.length() - 2 * margin;
  const double f = dominant_frequency(mid, n, kRate);
  fail_unless(std::fabs(f - 300) < 3, "server heard %.1f Hz (%s)", f, where.c_str());
  const double level = rms_dbfs(mid, n);
  fail_unless(std::fabs(level - -15.05) <= level_tol_db, "server heard %.2f dBFS RMS (%s)", level, where.c_str());
  // After the speech: (near) silence.
  fail_unless(heard.size() > s.end + margin);
  const double after = rms_dbfs(heard.data() + s.end + margin, heard.size() - s.end - margin);
  fail_unless(after < -60, "%.1f dBFS after the speech (%s)", after, where.c_str());
}

// The recording holds the model's reply: exactly one tone of kReplyHz lasting kReplyMs (± tol),
// after the caller's speech (the model answers once the turn ended), with silence before and after.
void check_recording(const std::string &path, double expected_len_ms, double len_tol_ms, double tol_ms,
                     double reply_not_before_ms, const std::string &where) {
  WavData w;
  std::string err;
  fail_unless(read_wav(path, &w, &err), "%s (%s)", err.c_str(), where.c_str());
  fail_unless_equals_int(w.rate, kRate);
  fail_unless_equals_int(w.channels, 1);
  fail_unless(std::fabs(w.duration_ms() - expected_len_ms) <= len_tol_ms, "recording is %.1f ms, expected %.0f (%s)",
              w.duration_ms(), expected_len_ms, where.c_str());
  auto segs = find_segments(w.samples, kRate, -45.0, 5.0, 100.0);
  const std::string d = describe_segments(w.samples.data(), segs, kRate);
  fail_unless_equals_int(segs.size(), 1);
  const Segment &s = segs[0];
  fail_unless(std::fabs(duration_ms(s, kRate) - kReplyMs) <= tol_ms, "reply lasted %.1f ms: %s (%s)",
              duration_ms(s, kRate), d.c_str(), where.c_str());
  const size_t margin = ms_to_samples(30, kRate);
  const int16_t *mid = w.samples.data() + s.start + margin;
  const size_t n = s.length() - 2 * margin;
  const double f = dominant_frequency(mid, n, kRate);
  fail_unless(std::fabs(f - kReplyHz) < 3, "reply at %.1f Hz: %s (%s)", f, d.c_str(), where.c_str());
  fail_unless(tone_purity(mid, n, kReplyHz, kRate) > 0.9, "reply is not a clean tone (%s)", where.c_str());
  // The fake's reply: 0.3 peak → -13.5 dBFS RMS.
  const double level = rms_dbfs(mid, n);
  fail_unless(std::fabs(level - -13.47) < 1.5, "reply at %.2f dBFS (%s)", level, where.c_str());
  fail_unless(start_ms(s, kRate) >= reply_not_before_ms, "reply started at %.0f ms, before the caller finished (%s)",
              start_ms(s, kRate), where.c_str());
  fail_unless(w.duration_ms() - end_ms(s, kRate) >= 200, "no silence after the reply: %s (%s)", d.c_str(),
              where.c_str());
  g_print("%s: reply %s\n", where.c_str(), d.c_str());
}

}  // namespace

// wav-to-model.sh: the WAV is said into the session in real time; the src is recorded for SECONDS.
GST_START_TEST(test_wav_to_model)
{
  auto server = start_server();
  Workdir dir;
  std::string err;
  fail_unless(write_wav(dir.file("in.wav"), make_input(), kRate, 1, &err), "%s", err.c_str());
  auto r = run_script("wav-to-model.sh",
                      {{"OPENAI_REALTIME_URL", server->url()},
                       {"INPUT_WAV", dir.file("in.wav")},
                       {"OUTPUT_WAV", dir.file("out.wav")},
                       {"SECONDS", "5"}},
                      30000);
  fail_unless(r.ok(), "%s (files in %s)", r.describe().c_str(), dir.path.c_str());
  const std::string where = "wav-to-model.sh, files in " + dir.path;
  check_server_heard(*server, 2500, 1.0, 1000, 0.3, where);  // exact length: nothing lost or added
  // 5 s = 250 buffers of 20 ms exactly (num-buffers).
  check_recording(dir.file("out.wav"), 5000, 0.5, 20, 1000, where);
  fail_unless_equals_int(server->connection_count(), 1);
  fail_unless_equals_int(server->responses_started(), 1);
  fail_unless(server->errors_sent().empty());
  dir.remove_all();
}
GST_END_TEST;

// opus-loop.sh: both directions through Opus at 20 kbit/s; the codec costs a little level and
// smears the edges, the timing and frequencies stay.
GST_START_TEST(test_opus_loop)
{
  auto server = start_server();
  Workdir dir;
  std::string err;
  fail_unless(write_wav(dir.file("in.wav"), make_input(), kRate, 1, &err), "%s", err.c_str());
  auto r = run_script("opus-loop.sh",
                      {{"OPENAI_REALTIME_URL", server->url()},
                       {"INPUT_WAV", dir.file("in.wav")},
                       {"OUTPUT_WAV", dir.file("out.wav")},
                       {"SECONDS", "5"}},
                      30000);
  fail_unless(r.ok(), "%s (files in %s)", r.describe().c_str(), dir.path.c_str());
  const std::string where = "opus-loop.sh, files in " + dir.path;
  check_server_heard(*server, 2500, 30.0, 1000, 1.5, where);
  // The recording went through an encoder and a decoder (and two resamplers): allow their delay.
  check_recording(dir.file("out.wav"), 5000, 30.0, 30, 1000, where);
  fail_unless_equals_int(server->responses_started(), 1);
  fail_unless(server->errors_sent().empty());
  dir.remove_all();
}
GST_END_TEST;

// microphone.sh, as CI has no sound card: SOURCE is a live audiotestsrc in 20 ms buffers saying one
// burst of 300 Hz at -12 dBFS peak (wave=ticks: 240 periods asked, ~780 ms produced; then silence),
// SINK writes a WAV instead of playing; SECONDS stops it as Ctrl-C would (EOS, files finalised).
GST_START_TEST(test_microphone)
{
  auto server = start_server();
  Workdir dir;
  const std::string source =
      "audiotestsrc is-live=true samplesperbuffer=480 wave=ticks freq=300 sine-periods-per-tick=240 "
      "tick-interval=100000000000 volume=0.251189";
  auto r = run_script("microphone.sh",
                      {{"OPENAI_REALTIME_URL", server->url()},
                       {"SOURCE", source},
                       {"SINK", "wavenc ! filesink location=" + dir.file("out.wav")},
                       {"SECONDS", "4"}},
                      30000);
  fail_unless(r.ok(), "%s (files in %s)", r.describe().c_str(), dir.path.c_str());
  const std::string where = "microphone.sh, files in " + dir.path;
  // A live capture for ~4 s: the server heard all of it (±300 ms for start-up and the stop).
  check_server_heard(*server, 4000, 300.0, 780, 0.3, where);
  check_recording(dir.file("out.wav"), 4000, 300.0, 20, 780, where);
  fail_unless_equals_int(server->responses_started(), 1);
  dir.remove_all();
}
GST_END_TEST;

// The scripts refuse a missing input file with exit status 2 and a message naming the setting.
GST_START_TEST(test_missing_input_is_reported)
{
  for (const char *script : {"wav-to-model.sh", "opus-loop.sh"}) {
    auto r = run_script(script, {{"INPUT_WAV", "/nonexistent/in.wav"}, {"OPENAI_REALTIME_URL", "ws://127.0.0.1:9/"}},
                        10000);
    fail_unless(r.started && !r.timed_out);
    fail_unless_equals_int(r.exit_status, 2);
    fail_unless(r.err.find("INPUT_WAV") != std::string::npos, "%s", r.describe().c_str());
  }
}
GST_END_TEST;

// Every runnable script in pipelines/ has a test here.
GST_START_TEST(test_every_script_is_tested)
{
  std::string dir = source_root() + "/pipelines";
  GDir *d = g_dir_open(dir.c_str(), 0, nullptr);
  fail_unless(d != nullptr, "no %s", dir.c_str());
  std::set<std::string> found;
  while (const char *n = g_dir_read_name(d))
    if (g_str_has_suffix(n, ".sh") && std::string(n) != "common.sh") found.insert(n);
  g_dir_close(d);
  for (const auto &f : found) fail_unless(kTestedScripts.count(f) == 1, "pipelines/%s has no test", f.c_str());
  for (const auto &f : kTestedScripts) fail_unless(found.count(f) == 1, "pipelines/%s is missing", f.c_str());
  fail_unless(g_file_test((dir + "/README.md").c_str(), G_FILE_TEST_EXISTS), "pipelines/README.md is missing");
}
GST_END_TEST;

static Suite *pipelines_suite(void) {
  Suite *s = suite_create("pipelines");
  TCase *tc = tcase_create("gst-launch");
  tcase_set_timeout(tc, 90);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_every_script_is_tested);
  tcase_add_test(tc, test_missing_input_is_reported);
  tcase_add_test(tc, test_wav_to_model);
  tcase_add_test(tc, test_opus_loop);
  tcase_add_test(tc, test_microphone);
  return s;
}

GST_CHECK_MAIN(pipelines);
