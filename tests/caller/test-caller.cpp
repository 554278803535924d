// End-to-end tests of voicebridge-call: the built binary places real WebRTC calls (loopback only)
// at an in-process fake bridge (fake-bridge.h), and the audio both ways is checked.
#include <gst/check/gstcheck.h>

#include <csignal>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "audio-analysis.h"
#include "fake-bridge.h"
#include "wav-file.h"

namespace {

constexpr int kRate = fake_bridge::FakeBridge::kRate;

struct RunResult {
  bool started = false;
  bool timed_out = false;
  int exit_status = -1;  // -1 unless it exited normally
  std::string out, err;
  std::string describe() const {
    return (timed_out ? "TIMED OUT, " : "") + std::string("exit ") + std::to_string(exit_status) +
           "\n--- stdout ---\n" + out + "\n--- stderr ---\n" + err;
  }
};

std::string caller_binary() {
  const char *root = g_getenv("VOICEBRIDGE_BUILD_ROOT");
  return std::string(root ? root : ".") + "/app/caller/voicebridge-call";
}

// Runs voicebridge-call while iterating the default main context, which the fake bridge lives on.
// `tick` (optional) runs every ~20 ms with the process, e.g. to send it a signal. Bounded: SIGINT at
// the deadline, SIGKILL 5 s later.
RunResult run_caller(const std::vector<std::string> &args, const std::map<std::string, std::string> &env = {},
                     int timeout_ms = 30000, const std::function<void(GSubprocess *)> &tick = nullptr) {
  RunResult r;
  GSubprocessLauncher *launcher =
      g_subprocess_launcher_new((GSubprocessFlags)(G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE));
  g_subprocess_launcher_unsetenv(launcher, "VOICEBRIDGE_CONTROL_TOKEN");
  for (const auto &kv : env)
    g_subprocess_launcher_setenv(launcher, kv.first.c_str(), kv.second.c_str(), TRUE);
  std::string bin = caller_binary();
  std::vector<const gchar *> argv{bin.c_str()};
  for (const auto &a : args)
    argv.push_back(a.c_str());
  argv.push_back(nullptr);
  GError *err = nullptr;
  GSubprocess *proc = g_subprocess_launcher_spawnv(launcher, argv.data(), &err);
  g_object_unref(launcher);
  if (!proc) {
    r.err = err->message;
    g_error_free(err);
    return r;
  }
  r.started = true;

  struct State {
    bool done = false;
    gchar *out = nullptr, *err = nullptr;
  } st;
  g_subprocess_communicate_utf8_async(
      proc, nullptr, nullptr,
      [](GObject *src, GAsyncResult *res, gpointer d) {
        auto *s = static_cast<State *>(d);
        g_subprocess_communicate_utf8_finish(G_SUBPROCESS(src), res, &s->out, &s->err, nullptr);
        s->done = true;
      },
      &st);
  // Wakes the blocking iteration below regularly, so that deadlines and ticks are honoured.
  guint wake = g_timeout_add(20, [](gpointer) -> gboolean { return G_SOURCE_CONTINUE; }, nullptr);
  gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
  gint64 kill_at = 0;
  while (!st.done) {
    g_main_context_iteration(nullptr, TRUE);
    gint64 now = g_get_monotonic_time();
    if (tick && !st.done)
      tick(proc);
    if (!r.timed_out && now > deadline) {
      r.timed_out = true;
      g_subprocess_send_signal(proc, SIGINT);
      kill_at = now + 5 * G_USEC_PER_SEC;
    } else if (kill_at && now > kill_at) {
      g_subprocess_force_exit(proc);
      kill_at = 0;
    }
  }
  g_source_remove(wake);
  // communicate() finishes at EOF on both pipes; the exit status may lag a moment behind.
  g_subprocess_wait(proc, nullptr, nullptr);
  if (g_subprocess_get_if_exited(proc))
    r.exit_status = g_subprocess_get_exit_status(proc);
  r.out = st.out ? st.out : "";
  r.err = st.err ? st.err : "";
  g_free(st.out);
  g_free(st.err);
  g_object_unref(proc);
  if (g_getenv("VBCALL_TEST_VERBOSE")) {  // set it to see every run's progress lines
    gchar *line = g_strjoinv(" ", const_cast<gchar **>(argv.data() + 1));
    g_print("$ voicebridge-call %s\n%s%s", line, r.err.c_str(), r.out.c_str());
    g_free(line);
  }
  return r;
}

// Iterates the default main context for `ms` (the fake bridge keeps working meanwhile).
void spin(int ms) {
  gint64 end = g_get_monotonic_time() + ms * 1000;
  guint wake = g_timeout_add(10, [](gpointer) -> gboolean { return G_SOURCE_CONTINUE; }, nullptr);
  while (g_get_monotonic_time() < end)
    g_main_context_iteration(nullptr, TRUE);
  g_source_remove(wake);
}

struct TmpDir {
  std::string path;
  TmpDir() {
    gchar *p = g_dir_make_tmp("vbcall-test-XXXXXX", nullptr);
    path = p ? p : "/tmp";
    g_free(p);
  }
  ~TmpDir() {
    GDir *d = g_dir_open(path.c_str(), 0, nullptr);
    if (d) {
      while (const gchar *name = g_dir_read_name(d))
        g_unlink((path + "/" + name).c_str());
      g_dir_close(d);
    }
    g_rmdir(path.c_str());
  }
  std::string file(const char *name) const { return path + "/" + name; }
};

// The caller's --json output: one object on stdout.
struct JsonOut {
  JsonParser *parser = json_parser_new();
  JsonObject *obj = nullptr;
  explicit JsonOut(const std::string &text) {
    if (json_parser_load_from_data(parser, text.c_str(), -1, nullptr) &&
        JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser)))
      obj = json_node_get_object(json_parser_get_root(parser));
  }
  ~JsonOut() { g_object_unref(parser); }
  bool has(const char *k) const { return obj && json_object_has_member(obj, k); }
  bool is_null(const char *k) const { return !has(k) || json_node_is_null(json_object_get_member(obj, k)); }
  double num(const char *k) const { return is_null(k) ? -1e9 : json_object_get_double_member(obj, k); }
  std::string str(const char *k) const { return is_null(k) ? "" : json_object_get_string_member(obj, k); }
};

// The longest stretch of sound (RMS above -40 dBFS), its length in ms, frequency and level.
struct Sound {
  double ms = 0, hz = 0, dbfs = -200;
};
Sound longest_sound(const std::vector<int16_t> &s) {
  Sound out;
  auto segs = audio_test::find_segments(s, kRate, -40.0, 10.0, 100.0);
  const audio_test::Segment *best = nullptr;
  for (const auto &seg : segs)
    if (!best || seg.length() > best->length())
      best = &seg;
  if (!best)
    return out;
  out.ms = audio_test::duration_ms(*best, kRate);
  out.hz = audio_test::dominant_frequency(&s[best->start], best->length(), kRate);
  out.dbfs = audio_test::rms_dbfs(&s[best->start], best->length());
  return out;
}

// A WAV whose header was rewritten at the end: RIFF size = file size - 8. (A recording killed
// before wavenc's EOS keeps the placeholder size written at the start.)
bool wav_finalised(const std::string &path, std::string &why) {
  gchar *data = nullptr;
  gsize len = 0;
  if (!g_file_get_contents(path.c_str(), &data, &len, nullptr)) {
    why = "cannot read " + path;
    return false;
  }
  bool ok = len >= 44 && memcmp(data, "RIFF", 4) == 0;
  guint32 riff = 0;
  if (ok) {
    const guint8 *p = reinterpret_cast<const guint8 *>(data);
    riff = p[4] | (p[5] << 8) | (p[6] << 16) | ((guint32)p[7] << 24);
    ok = riff == len - 8;
  }
  why = "RIFF size " + std::to_string(riff) + " for a file of " + std::to_string(len) + " bytes";
  g_free(data);
  return ok;
}

std::string input_wav(const TmpDir &dir) {
  // 1.5 s of 300 Hz at 16 kHz (the caller resamples to 48 kHz), -6 dBFS peak.
  std::string path = dir.file("input.wav");
  auto tone = audio_test::make_tone(300.0, 1500.0, -6.0, 16000, 5.0);
  fail_unless(audio_test::write_wav(path, tone, 16000));
  return path;
}

bool contains(const std::string &haystack, const std::string &needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace

GST_START_TEST(test_help_and_version) {
  RunResult r = run_caller({"--help"});
  fail_unless(r.exit_status == 0, "--help: %s", r.describe().c_str());
  for (const char *opt : {"--url", "--token", "--input", "--output", "--duration", "--tail", "--ice-address",
                          "--instructions", "--voice", "--greeting", "--call-id", "--json", "--quiet", "--help",
                          "--version", "VOICEBRIDGE_CONTROL_TOKEN", "unix:", "default"})
    fail_unless(contains(r.out, opt), "--help does not mention %s:\n%s", opt, r.out.c_str());
  RunResult v = run_caller({"--version"});
  fail_unless(v.exit_status == 0 && contains(v.out, "voicebridge-call"), "--version: %s", v.describe().c_str());
}
GST_END_TEST;

GST_START_TEST(test_bad_options) {
  TmpDir dir;
  std::string not_wav = dir.file("not.wav");
  g_file_set_contents(not_wav.c_str(), "hello, not audio", -1, nullptr);
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--bogus"}, "--bogus"},
      {{"--duration", "abc"}, "--duration"},
      {{"--duration", "-1"}, "--duration"},
      {{"--tail", "x"}, "--tail"},
      {{"--url", "ftp://example.com"}, "--url"},
      {{"--url", "unix:relative.sock"}, "--url"},
      {{"--input", dir.file("missing.wav")}, "--input"},
      {{"--input", not_wav}, "--input"},
      {{"--output", "/nonexistent-dir/out.wav"}, "--output"},
      {{"--ice-address", "not-an-ip"}, "--ice-address"},
      {{"--call-id", "a/b"}, "--call-id"},
  };
  for (const auto &c : cases) {
    RunResult r = run_caller(c.first);
    fail_unless(r.exit_status == 2, "%s: expected exit 2: %s", c.first[0].c_str(), r.describe().c_str());
    size_t nl = r.err.find('\n');
    fail_unless(nl != std::string::npos && nl == r.err.size() - 1, "%s: not one line: '%s'", c.first[0].c_str(),
                r.err.c_str());
    fail_unless(contains(r.err, c.second), "%s: message does not name it: '%s'", c.first[0].c_str(), r.err.c_str());
  }
}
GST_END_TEST;

GST_START_TEST(test_call_both_ways) {
  TmpDir dir;
  fake_bridge::Config cfg;
  cfg.token = "s3cret";
  fake_bridge::FakeBridge bridge(cfg);
  std::string error;
  fail_unless(bridge.start(error), "fake bridge: %s", error.c_str());
  std::string in = input_wav(dir), out = dir.file("heard.wav");

  RunResult r = run_caller({"--url", bridge.url(), "--input", in, "--output", out, "--duration", "3", "--json",
                            "--call-id", "caller-test-1", "--instructions", "Be brief.", "--voice", "cedar",
                            "--greeting", "Hello there"},
                           {{"VOICEBRIDGE_CONTROL_TOKEN", "s3cret"}});
  fail_unless(r.exit_status == 0, "call failed: %s", r.describe().c_str());
  g_print("caller stdout: %s", r.out.c_str());

  // Timings: present and plausible for loopback.
  JsonOut j(r.out);
  fail_unless(j.obj != nullptr, "stdout is not one JSON object: %s", r.out.c_str());
  fail_unless(j.str("call_id") == "caller-test-1", "call_id: %s", r.out.c_str());
  fail_unless(j.str("end") == "duration", "end: %s", r.out.c_str());
  double answer = j.num("answer_ms"), setup = j.num("setup_ms"), media = j.num("media_connected_ms");
  double first = j.num("first_audio_ms"), dur = j.num("duration_s"), heard = j.num("heard_audio_s");
  fail_unless(answer >= 0 && answer < 5000, "answer_ms %f", answer);
  fail_unless(setup >= answer && setup < 10000, "setup_ms %f (answer_ms %f)", setup, answer);
  fail_unless(media >= 0 && media < 5000, "media_connected_ms %f", media);
  fail_unless(first >= 0 && first < 2000, "first_audio_ms %f", first);
  fail_unless(dur >= 2.9 && dur < 4.0, "duration_s %f", dur);
  fail_unless(heard >= 2.0 && heard <= dur + 0.2, "heard_audio_s %f of %f", heard, dur);

  // The bridge: one call, asked for as we said, answered sendrecv, polled, then deleted.
  fail_unless(bridge.posts() == 1, "posts %d", bridge.posts());
  fake_bridge::CallRecord call;
  fail_unless(bridge.call("caller-test-1", call), "the bridge has no call caller-test-1");
  fail_unless(call.answered_sendrecv, "the fake bridge's answer was not sendrecv");
  fail_unless(call.deletes == 1 && call.state == "ended", "deletes %d state %s", call.deletes, call.state.c_str());
  fail_unless(call.gets >= 2, "gets %d: expected polling plus the final GET", call.gets);
  JsonOut body(call.request_body);
  fail_unless(body.str("instructions") == "Be brief." && body.str("voice") == "cedar" &&
                  body.str("greeting") == "Hello there" && contains(body.str("sdp"), "a=candidate"),
              "POST body: %s", call.request_body.c_str());
  fail_if(contains(body.str("sdp"), " tcptype "), "ICE-TCP candidates in the offer:\n%s", body.str("sdp").c_str());

  // What the caller heard: the bridge's 440 Hz tone, recorded into a finalised WAV.
  std::string why;
  fail_unless(wav_finalised(out, why), "recording not finalised: %s", why.c_str());
  audio_test::WavData wav;
  fail_unless(audio_test::read_wav(out, &wav, &why), "recording: %s", why.c_str());
  fail_unless(wav.rate == kRate && wav.channels == 1, "recording format %d Hz x %d", wav.rate, wav.channels);
  fail_unless(wav.duration_ms() >= 2000, "recording is %.0f ms", wav.duration_ms());
  Sound heard_tone = longest_sound(wav.samples);
  g_print("recording: %.0f ms, longest sound %.0f ms at %.1f Hz, %.1f dBFS\n", wav.duration_ms(), heard_tone.ms,
          heard_tone.hz, heard_tone.dbfs);
  fail_unless(heard_tone.ms >= 2000, "the tone lasts %.0f ms in the recording", heard_tone.ms);
  fail_unless(std::abs(heard_tone.hz - 440.0) < 5.0, "recorded tone at %.1f Hz", heard_tone.hz);
  fail_unless(heard_tone.dbfs > -30.0, "recorded tone at %.1f dBFS", heard_tone.dbfs);

  // What the bridge heard: the 1.5 s of 300 Hz, whole, then silence.
  Sound sent = longest_sound(call.received);
  g_print("bridge received: %.0f ms of audio, longest sound %.0f ms at %.1f Hz, %.1f dBFS\n",
          audio_test::samples_to_ms(call.received.size(), kRate), sent.ms, sent.hz, sent.dbfs);
  fail_unless(std::abs(sent.ms - 1500.0) <= 100.0, "the bridge heard %.0f ms of the 1500 ms input", sent.ms);
  fail_unless(std::abs(sent.hz - 300.0) < 5.0, "the bridge heard %.1f Hz", sent.hz);
}
GST_END_TEST;

GST_START_TEST(test_hangs_up_after_input_and_tail) {
  // Without --duration the call lasts as long as the input plus --tail.
  TmpDir dir;
  fake_bridge::FakeBridge bridge;
  std::string error;
  fail_unless(bridge.start(error), "fake bridge: %s", error.c_str());
  RunResult r = run_caller({"--url", bridge.url(), "--input", input_wav(dir), "--tail", "1", "--json"});
  fail_unless(r.exit_status == 0, "%s", r.describe().c_str());
  JsonOut j(r.out);
  fail_unless(j.str("end") == "input_end", "end: %s", r.out.c_str());
  double dur = j.num("duration_s");
  fail_unless(dur >= 2.4 && dur < 3.3, "duration_s %f, expected 1.5 s input + 1 s tail", dur);
}
GST_END_TEST;

GST_START_TEST(test_http_error) {
  fake_bridge::Config cfg;
  cfg.fail_status = 503;
  cfg.fail_code = "at_capacity";
  cfg.fail_message = "all 100 call slots are in use";
  fake_bridge::FakeBridge bridge(cfg);
  std::string error;
  fail_unless(bridge.start(error), "fake bridge: %s", error.c_str());
  RunResult r = run_caller({"--url", bridge.url(), "--duration", "1", "--json"});
  fail_unless(r.exit_status == 1, "expected exit 1: %s", r.describe().c_str());
  fail_unless(contains(r.err, "at_capacity") && contains(r.err, "all 100 call slots") && contains(r.err, "503"),
              "the error code is not reported: %s", r.err.c_str());
  JsonOut j(r.out);
  fail_unless(j.str("end") == "http_error", "end: %s", r.out.c_str());
  fail_unless(bridge.call_ids().empty(), "a call was created");
}
GST_END_TEST;

GST_START_TEST(test_unauthorized) {
  fake_bridge::Config cfg;
  cfg.token = "right";
  fake_bridge::FakeBridge bridge(cfg);
  std::string error;
  fail_unless(bridge.start(error), "fake bridge: %s", error.c_str());
  RunResult r = run_caller({"--url", bridge.url(), "--token", "tok-Zq81", "--duration", "1", "--quiet"});
  fail_unless(r.exit_status == 1, "expected exit 1: %s", r.describe().c_str());
  fail_unless(contains(r.err, "401") && contains(r.err, "unauthorized"), "stderr: %s", r.err.c_str());
  fail_if(contains(r.err + r.out, "tok-Zq81"), "the token was printed: %s", r.err.c_str());
}
GST_END_TEST;

GST_START_TEST(test_unix_socket) {
  TmpDir dir;
  fake_bridge::Config cfg;
  cfg.unix_socket = dir.file("bridge.sock");
  fake_bridge::FakeBridge bridge(cfg);
  std::string error;
  fail_unless(bridge.start(error), "fake bridge: %s", error.c_str());
  RunResult r = run_caller({"--url", "unix:" + cfg.unix_socket, "--duration", "1", "--json"});
  fail_unless(r.exit_status == 0, "call over the unix socket failed: %s", r.describe().c_str());
  JsonOut j(r.out);
  fail_unless(j.str("end") == "duration" && j.num("heard_audio_s") > 0.5, "%s", r.out.c_str());
  auto ids = bridge.call_ids();
  fail_unless(ids.size() == 1, "calls: %zu", ids.size());
  fake_bridge::CallRecord call;
  bridge.call(ids[0], call);
  fail_unless(call.deletes == 1, "deletes %d", call.deletes);
}
GST_END_TEST;

GST_START_TEST(test_remote_hangup) {
  fake_bridge::Config cfg;
  cfg.end_after_s = 1.5;
  fake_bridge::FakeBridge bridge(cfg);
  std::string error;
  fail_unless(bridge.start(error), "fake bridge: %s", error.c_str());
  RunResult r = run_caller({"--url", bridge.url(), "--duration", "20", "--json"});
  fail_unless(r.exit_status == 0, "%s", r.describe().c_str());
  JsonOut j(r.out);
  fail_unless(j.str("end") == "remote", "end: %s", r.out.c_str());
  fail_unless(j.str("bridge_end_reason") == "agent_hangup", "bridge_end_reason: %s", r.out.c_str());
  // The bridge ended at 1.5 s after the answer; polling every second notices within ~1 s.
  fail_unless(j.num("duration_s") < 3.5, "noticed only after %f s", j.num("duration_s"));
  fake_bridge::CallRecord call;
  bridge.call(bridge.call_ids().at(0), call);
  fail_unless(call.deletes == 0, "an ended call was DELETEd");
}
GST_END_TEST;

GST_START_TEST(test_no_audio_heard_is_reported) {
  fake_bridge::Config cfg;
  cfg.send_silence = true;
  fake_bridge::FakeBridge bridge(cfg);
  std::string error;
  fail_unless(bridge.start(error), "fake bridge: %s", error.c_str());
  RunResult r = run_caller({"--url", bridge.url(), "--duration", "1", "--json"});
  fail_unless(r.exit_status == 0, "silence is not a failure: %s", r.describe().c_str());
  JsonOut j(r.out);
  fail_unless(j.is_null("first_audio_ms") && j.num("heard_audio_s") == 0 && j.num("received_audio_s") > 0.5,
              "%s", r.out.c_str());
  fail_unless(contains(r.err, "no audio"), "not reported: %s", r.err.c_str());
}
GST_END_TEST;

GST_START_TEST(test_ice_failure) {
  fake_bridge::Config cfg;
  cfg.stop_media_after_s = 0;
  fake_bridge::FakeBridge bridge(cfg);
  std::string error;
  fail_unless(bridge.start(error), "fake bridge: %s", error.c_str());
  RunResult r = run_caller({"--url", bridge.url(), "--duration", "5", "--json"});
  fail_unless(r.exit_status == 1, "expected exit 1: %s", r.describe().c_str());
  JsonOut j(r.out);
  fail_unless(j.str("end") == "ice_failed" && j.is_null("media_connected_ms"), "%s", r.out.c_str());
  fake_bridge::CallRecord call;
  bridge.call(bridge.call_ids().at(0), call);
  fail_unless(call.deletes == 1, "the failed call was not DELETEd (%d)", call.deletes);
}
GST_END_TEST;

GST_START_TEST(test_media_stops) {
  // The bridge's media dies but its API still says "active": 10 s without RTP end the call.
  fake_bridge::Config cfg;
  cfg.stop_media_after_s = 1.5;
  fake_bridge::FakeBridge bridge(cfg);
  std::string error;
  fail_unless(bridge.start(error), "fake bridge: %s", error.c_str());
  RunResult r = run_caller({"--url", bridge.url(), "--duration", "60", "--json"}, {}, 40000);
  fail_unless(r.exit_status == 0, "%s", r.describe().c_str());
  JsonOut j(r.out);
  fail_unless(j.str("end") == "remote", "end: %s", r.out.c_str());
  double dur = j.num("duration_s");
  fail_unless(dur > 10.5 && dur < 14.0, "duration_s %f: expected ~1.5 s of media + 10 s", dur);
}
GST_END_TEST;

GST_START_TEST(test_sigint_finalises_recording) {
  TmpDir dir;
  fake_bridge::FakeBridge bridge;
  std::string error;
  fail_unless(bridge.start(error), "fake bridge: %s", error.c_str());
  std::string out = dir.file("interrupted.wav");
  gint64 active_since = 0;
  bool signalled = false;
  RunResult r = run_caller({"--url", bridge.url(), "--output", out, "--duration", "30", "--json"}, {}, 30000,
                           [&](GSubprocess *proc) {
                             fake_bridge::CallRecord c;
                             auto ids = bridge.call_ids();
                             if (signalled || ids.empty() || !bridge.call(ids[0], c) || c.state != "active")
                               return;
                             gint64 now = g_get_monotonic_time();
                             if (!active_since)
                               active_since = now;
                             else if (now - active_since > G_USEC_PER_SEC) {
                               g_subprocess_send_signal(proc, SIGINT);
                               signalled = true;
                             }
                           });
  fail_unless(signalled, "the call never became active: %s", r.describe().c_str());
  fail_unless(r.exit_status == 0, "%s", r.describe().c_str());
  JsonOut j(r.out);
  fail_unless(j.str("end") == "signal", "end: %s", r.out.c_str());
  std::string why;
  fail_unless(wav_finalised(out, why), "recording not finalised after SIGINT: %s", why.c_str());
  fake_bridge::CallRecord call;
  bridge.call(bridge.call_ids().at(0), call);
  fail_unless(call.deletes == 1, "deletes %d", call.deletes);
  spin(10);
}
GST_END_TEST;

static Suite *caller_suite(void) {
  Suite *s = suite_create("caller");
  TCase *tc = tcase_create("caller");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_help_and_version);
  tcase_add_test(tc, test_bad_options);
  tcase_add_test(tc, test_call_both_ways);
  tcase_add_test(tc, test_hangs_up_after_input_and_tail);
  tcase_add_test(tc, test_http_error);
  tcase_add_test(tc, test_unauthorized);
  tcase_add_test(tc, test_unix_socket);
  tcase_add_test(tc, test_remote_hangup);
  tcase_add_test(tc, test_no_audio_heard_is_reported);
  tcase_add_test(tc, test_ice_failure);
  tcase_add_test(tc, test_media_stops);
  tcase_add_test(tc, test_sigint_finalises_recording);
  suite_add_tcase(s, tc);
  return s;
}

GST_CHECK_MAIN(caller);
