// Many calls: nothing of a call outlives it (threads, descriptors, Realtime connections; CONTRACT.md
// §4), and concurrent calls each carry their own audio both ways.
#include <gst/check/gstcheck.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "audio-analysis.h"
#include "fake-realtime-server.h"
#include "service-harness.h"

using namespace svc_test;

namespace {

constexpr double kSpeechHz = 300.0;
constexpr double kReplyHz = 440.0;

struct Counts {
  int threads = -1, fds = -1;
};

// Threads and descriptors once they stop moving: an ended call's last sockets and threads go away
// a moment after CALL_ENDED (the caller's HTTP connection closes, the pipeline's threads join).
Counts settled_counts(pid_t pid) {
  Counts last{thread_count(pid), fd_count(pid)};
  for (int i = 0; i < 20; i++) {
    g_usleep(250 * 1000);
    Counts now{thread_count(pid), fd_count(pid)};
    if (now.threads == last.threads && now.fds == last.fds) return now;
    last = now;
  }
  return last;
}

// Set by scripts/sanitize.sh: the service, the callers and this test (with its fake Realtime server)
// are ASan+UBSan builds there, each needing 3-4 times the CPU per call (measured, the service per
// concurrent call: 0.71 s against 0.17 s). Ten concurrent calls then ask a 2-core machine for more
// than it has, and real-time audio starved of CPU is cut short (one caller heard 120 ms of its
// 1000 ms reply), which says nothing about the code under test. There the concurrent test places
// about as much load as the normal build's ten calls, 3 calls, and allows a few more dropped
// frames; the normal build keeps every check as strict as before.
bool sanitized() {
  const char *v = g_getenv("VOICEBRIDGE_SANITIZED");
  return v && *v && strcmp(v, "0") != 0;
}

double total_ms(const std::vector<Tone> &tones) {
  double sum = 0;
  for (const auto &t : tones) sum += t.length_ms();
  return sum;
}

}  // namespace

// 20 short calls one after the other. After the first call the service has created whatever it
// keeps for its lifetime (GStreamer's and GLib's shared pools, the plugin's Realtime hub thread);
// after the twentieth, threads and descriptors must be where they were then. Allowed: 2 more of
// each, because GLib's thread pools keep a few idle workers around for a while and the test cannot
// tell them apart; a leak of one thread or socket per call would show as 19 more.
GST_START_TEST(test_sequential_calls_leak_nothing) {
  fake_realtime::Server fake;
  std::string error;
  fail_unless(fake.start(0, &error), "fake server: %s", error.c_str());
  Service vb;
  fail_unless(vb.start(fake.url(), {}, &error), "%s", error.c_str());
  TempDir dir;
  std::string in = dir.file("in.wav");
  fail_unless(write_bursts_wav(in, {0}, {1000}, 1500, kSpeechHz));

  constexpr int kCalls = 20;
  Counts base;
  Counts peak;
  double cpu_after_first = 0;
  for (int i = 0; i < kCalls; i++) {
    std::string id = "seq-" + std::to_string(i);
    auto caller = start_caller(vb.base_url(), {"--input", in, "--duration", "1.5", "--call-id", id}, &error);
    fail_unless(caller != nullptr, "%s", error.c_str());
    int64_t deadline = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;
    while (caller->running() && g_get_monotonic_time() < deadline) {  // the peak, for the report
      peak.threads = std::max(peak.threads, thread_count(vb.pid()));
      peak.fds = std::max(peak.fds, fd_count(vb.pid()));
      g_usleep(100 * 1000);
    }
    CallerResult r = finish_caller(*caller, 1000);
    fail_unless(r.exited && r.exit_status == 0 && r.report.str("end") == "duration" && r.report.num("rtp_packets") > 0,
                "call %d: %s", i, r.describe.c_str());
    auto ended = vb.wait_event("CALL_ENDED", id, 5000);
    fail_unless(ended && ended->json.str("end_reason") == "hangup", "call %d did not end by hang-up:\n%s", i,
                vb.log_text().c_str());
    if (i == 0) {
      base = settled_counts(vb.pid());
      cpu_after_first = cpu_seconds(vb.pid());
    }
  }
  Counts after = settled_counts(vb.pid());
  double cpu_per_call = (cpu_seconds(vb.pid()) - cpu_after_first) / (kCalls - 1);
  g_print("20 calls in a row: after the first %d threads / %d fds, peak %d / %d, after the last %d / %d; "
          "voicebridge CPU %.3f s per 1.5 s call\n",
          base.threads, base.fds, peak.threads, peak.fds, after.threads, after.fds, cpu_per_call);
  fail_unless(after.threads <= base.threads + 2, "threads grew from %d to %d over %d calls", base.threads,
              after.threads, kCalls - 1);
  fail_unless(after.fds <= base.fds + 2, "descriptors grew from %d to %d over %d calls (now: %s)", base.fds, after.fds,
              kCalls - 1, fd_summary(vb.pid()).c_str());

  // Every call had its own Realtime connection, and closed it.
  fail_unless(fake.connection_count() == kCalls, "the fake saw %d connections", fake.connection_count());
  fail_unless(fake.wait_for(
                  [&] {
                    for (int i = 0; i < kCalls; i++)
                      if (!fake.connection(i).closed) return false;
                    return true;
                  },
                  3000),
              "a Realtime connection outlived its call");
  HttpResponse health = vb.http().request("GET", "/healthz");
  fail_unless(health.json().num("active_calls") == 0, "%s", health.describe().c_str());
  fail_unless(vb.glib_complaints().empty(), "GLib criticals:\n%s", vb.glib_complaints().c_str());
}
GST_END_TEST;

// 10 callers at once (3 in the sanitizer build), each saying 1 s of 300 Hz: each must hear the
// model's 440 Hz reply and the fake must get one connection per caller, each with one caller's speech.
GST_START_TEST(test_concurrent_calls) {
  fake_realtime::Config fc;
  fc.reply_duration_ms = 1000;
  fake_realtime::Server fake(fc);
  std::string error;
  fail_unless(fake.start(0, &error), "fake server: %s", error.c_str());
  Service vb;
  fail_unless(vb.start(fake.url(), {}, &error), "%s", error.c_str());
  TempDir dir;
  std::string in = dir.file("in.wav");
  fail_unless(write_bursts_wav(in, {0}, {1000}, 2500, kSpeechHz));
  Counts idle = settled_counts(vb.pid());
  double cpu_before = cpu_seconds(vb.pid());

  const int kCalls = sanitized() ? 3 : 10;
  // A loaded 2-core machine may cut a few 20 ms frames out of the reply and the speech, not more;
  // the sanitizer build, 3 times slower on the same machine, a few more.
  const double kMinReplyMs = sanitized() ? 600 : 800, kMinSpeechMs = sanitized() ? 700 : 900;
  std::vector<std::unique_ptr<ChildProcess>> callers;
  for (int i = 0; i < kCalls; i++) {
    auto c = start_caller(vb.base_url(), {"--input", in, "--output", dir.file("out-" + std::to_string(i) + ".wav"),
                                          "--duration", "5", "--call-id", "conc-" + std::to_string(i)},
                          &error);
    fail_unless(c != nullptr, "%s", error.c_str());
    callers.push_back(std::move(c));
  }
  // Threads while all calls are up (sampled until the first caller hangs up).
  int peak_threads = 0;
  bool all_active = false;
  int64_t deadline = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;
  while (g_get_monotonic_time() < deadline &&
         std::all_of(callers.begin(), callers.end(), [](auto &c) { return c->running(); })) {
    if (vb.events("CALL_MEDIA_CONNECTED").size() == (size_t)kCalls) {
      all_active = true;
      peak_threads = std::max(peak_threads, thread_count(vb.pid()));
    }
    g_usleep(100 * 1000);
  }
  fail_unless(all_active, "the %d calls were never all connected at once:\n%s", kCalls, vb.log_text().c_str());

  std::string heard_report;
  for (int i = 0; i < kCalls; i++) {
    CallerResult r = finish_caller(*callers[i], 30000);
    fail_unless(r.exited && r.exit_status == 0, "caller %d: %s", i, r.describe.c_str());
    int rate = 0;
    auto samples = read_wav_mono(dir.file("out-" + std::to_string(i) + ".wav"), &rate, &error);
    auto tones = find_tones(samples, rate);
    double reply_ms = total_ms(tones_at(tones, kReplyHz));
    heard_report += "caller " + std::to_string(i) + ": " + describe_tones(tones) + "\n";
    fail_unless(reply_ms >= kMinReplyMs && reply_ms <= 1100, "caller %d heard %.0f ms of the 1000 ms reply: %s", i,
                reply_ms, describe_tones(tones).c_str());
  }
  double cpu = cpu_seconds(vb.pid()) - cpu_before;

  fail_unless(fake.connection_count() == kCalls, "the fake saw %d connections", fake.connection_count());
  for (int i = 0; i < kCalls; i++) {
    auto speech = tones_at(find_tones(audio_test::samples_from_bytes(fake.connection(i).input_audio), kModelRate),
                           kSpeechHz);
    fail_unless(total_ms(speech) >= kMinSpeechMs && total_ms(speech) <= 1100,
                "Realtime connection %d got %.0f ms of the 1000 ms of speech: %s", i, total_ms(speech),
                describe_tones(speech).c_str());
  }
  fail_unless(vb.wait_events("CALL_ENDED", kCalls, 5000), "not every call ended");
  HttpResponse health = vb.http().request("GET", "/healthz");
  fail_unless(health.json().num("active_calls") == 0, "%s", health.describe().c_str());

  std::vector<double> setup_ms;
  for (const auto &e : vb.events("CALL_ANSWERED")) setup_ms.push_back(e.json.num("setup_ms"));
  std::sort(setup_ms.begin(), setup_ms.end());
  g_print("%d concurrent calls: %d threads idle, %d with all calls up (%.1f per call); setup_ms min %.0f median %.0f "
          "max %.0f; voicebridge CPU %.2f s in all (%.2f s per call)\n%s",
          kCalls, idle.threads, peak_threads, (peak_threads - idle.threads) / (double)kCalls, setup_ms.front(),
          setup_ms[setup_ms.size() / 2], setup_ms.back(), cpu, cpu / kCalls, heard_report.c_str());
  fail_unless(vb.glib_complaints().empty(), "GLib criticals:\n%s", vb.glib_complaints().c_str());
}
GST_END_TEST;

static Suite *service_load_suite(void) {
  Suite *s = suite_create("service_load");
  TCase *tc = tcase_create("load");
  tcase_set_timeout(tc, 110);
  tcase_add_test(tc, test_sequential_calls_leak_nothing);
  tcase_add_test(tc, test_concurrent_calls);
  suite_add_tcase(s, tc);
  return s;
}

GST_CHECK_MAIN(service_load);
