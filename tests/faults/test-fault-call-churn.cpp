// 1000 calls set up and torn down one after the other, as fast as the service allows: POST
// /v1/calls with a valid offer (WhatsApp's, its candidate moved to a local port that is bound and
// never answers, so ICE runs but no media flows), then DELETE. Nothing of a call may outlive it
// (CONTRACT.md §4): threads and descriptors after the last call must be where they were after call
// 100, and the resident memory may grow only by what allocators keep.
//
// VOICEBRIDGE_FAULT_CALLS sets the count (default 1000); the samples are taken after 10%, 50% and
// 100% of it. Measured on the 2-core development machine: 6.5-7.5 ms per call when idle (1000 calls
// in ~7 s), 25 ms per call with other builds saturating it; the whole program takes 15-50 s.
//
// Under scripts/sanitize.sh (VOICEBRIDGE_SANITIZED=1, an ASan+UBSan build) a call costs ~130 ms and
// ASan holds freed memory back in its quarantine (256 MiB by default), which VmRSS counts: 1000
// calls would not fit the budget and the RSS bounds would measure the quarantine filling up. So
// there: 200 calls and 2000 requests by default; thread and descriptor counts are checked exactly
// as always (a leak of one per call still shows as ~180); the service runs with an 8 MiB quarantine
// (sanitizer_service_env()), full long before the first sample, so that RSS measures what the
// service keeps again. Leaked (unreachable) memory is LeakSanitizer's to report in that build, when
// each test stops the service with SIGTERM; the RSS bounds there catch memory the service still
// points to, growing per call or request.
#include <gst/check/gstcheck.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>

#include "fake-realtime-server.h"
#include "fault-support.h"
#include "wa-harness.h"

using namespace svc_test;

namespace {

// Budget for the calls: past it the test fails (a service gone slow, 16 times the loaded figure)
// rather than overrun meson's timeout.
constexpr int kBudgetS = 120;

long rss_kib(pid_t pid) {
  std::string status = read_file("/proc/" + std::to_string(pid) + "/status");
  size_t at = status.find("\nVmRSS:");
  return at == std::string::npos ? -1 : std::strtol(status.c_str() + at + 7, nullptr, 10);
}

struct Sample {
  int calls = 0;
  double elapsed_s = 0;
  int threads = -1, fds = -1;
  long rss_kib = -1;
  std::string names;  // of the threads
};

// The process's threads by name ("realtime-hub x1, nicesrc999:src x1, …"), for failure messages:
// GStreamer names a streaming thread after its pad, so a leaked one says which call left it.
std::string thread_names(pid_t pid) {
  std::map<std::string, int> n;
  std::string dir = "/proc/" + std::to_string(pid) + "/task";
  GDir *d = g_dir_open(dir.c_str(), 0, nullptr);
  if (!d) return "";
  while (const char *t = g_dir_read_name(d)) {
    std::string name = read_file(dir + "/" + t + "/comm");
    if (!name.empty() && name.back() == '\n') name.pop_back();
    n[name]++;
  }
  g_dir_close(d);
  std::string out;
  for (const auto &e : n) out += (out.empty() ? "" : ", ") + e.first + " x" + std::to_string(e.second);
  return out;
}

// Threads and descriptors once they have stopped moving for 1.5 s (at most 10 s): the last call's
// streaming threads go back to GStreamer's task pool when DELETE returns and leave it ~0.5 s later
// (measured: 0.4-0.5 s), so a shorter look would count them on some samples and not on others.
Sample settled_sample(pid_t pid, int calls, double elapsed_s) {
  Sample last{calls, elapsed_s, thread_count(pid), fd_count(pid), rss_kib(pid)};
  int64_t changed_us = g_get_monotonic_time(), deadline = changed_us + 10 * G_USEC_PER_SEC;
  while (g_get_monotonic_time() < deadline && g_get_monotonic_time() - changed_us < 1500 * 1000) {
    g_usleep(100 * 1000);
    Sample now{calls, elapsed_s, thread_count(pid), fd_count(pid), rss_kib(pid)};
    if (now.threads != last.threads || now.fds != last.fds) changed_us = g_get_monotonic_time();
    last = now;
  }
  last.names = thread_names(pid);
  return last;
}

// Set by scripts/sanitize.sh: this is the ASan+UBSan build (see the top of the file).
bool sanitized() {
  const char *v = g_getenv("VOICEBRIDGE_SANITIZED");
  return v && *v && strcmp(v, "0") != 0;
}

int call_count() {
  const int fallback = sanitized() ? 200 : 1000;
  const char *v = g_getenv("VOICEBRIDGE_FAULT_CALLS");
  int n = v && *v ? atoi(v) : fallback;
  return n >= 10 ? n : fallback;
}

// The service's environment: in the sanitizer build, a quarantine small enough to fill during the
// first calls (ASan's options are cumulative: the last value of an option wins).
std::map<std::string, std::string> sanitizer_service_env() {
  if (!sanitized()) return {};
  const char *asan = g_getenv("ASAN_OPTIONS");
  return {{"ASAN_OPTIONS", std::string(asan ? asan : "") + ":quarantine_size_mb=8"}};
}

// SIGTERM, and a clean exit. In the sanitizer build that is where LeakSanitizer checks everything
// the service allocated during the churn (a SIGKILLed process is never checked), and finds what the
// RSS bounds there are too coarse for.
void stop_cleanly(Service &vb) {
  fail_unless(vb.stop(30000) && vb.process().exit_status() == 0, "voicebridge did not exit cleanly on SIGTERM: %s",
              vb.process().describe().c_str());
}

}  // namespace

GST_START_TEST(test_calls_leak_nothing) {
  const int calls = call_count();
  const int sample_at[3] = {calls / 10, calls / 2, calls};
  fake_realtime::Config fc;
  fc.record = false;  // the test reads nothing of what the fake heard: keep its own memory flat
  fake_realtime::Server fake(fc);
  std::string error;
  fail_unless(fake.start(0, &error), "fake server: %s", error.c_str());
  Service vb;
  fail_unless(vb.start(fake.url(), {}, &error, "127.0.0.1:0", sanitizer_service_env()), "%s", error.c_str());
  wa_test::SilentPort silent;
  fail_unless(silent.port() > 0, "no silent port");
  const std::string offer = wa_test::local_offer(silent.port());
  const Http http = vb.http();

  std::vector<Sample> samples;
  double setup_ms_sum = 0, worst_ms = 0;
  const int64_t start_us = g_get_monotonic_time();
  int64_t paused_us = 0;  // spent sampling, not calling
  for (int i = 1; i <= calls; i++) {
    const std::string id = "churn-" + std::to_string(i);
    int64_t t0 = g_get_monotonic_time();
    HttpResponse post = http.request("POST", "/v1/calls", offer_body(offer, id));
    fail_unless(post.status == 201 && !post.json().str("sdp").empty(), "call %d: %s", i, post.describe().c_str());
    HttpResponse del = http.request("DELETE", "/v1/calls/" + id);
    fail_unless(del.status == 200 && del.json().str("state") == "ended" && del.json().str("end_reason") == "hangup",
                "call %d: DELETE %s", i, del.describe().c_str());
    double ms = faults::ms_between(t0, g_get_monotonic_time());
    setup_ms_sum += ms;
    worst_ms = std::max(worst_ms, ms);
    double elapsed_s = faults::ms_between(start_us + paused_us, g_get_monotonic_time()) / 1000;
    fail_unless(elapsed_s < kBudgetS, "only %d of %d calls in %d s (%.0f ms per call)", i, calls, kBudgetS,
                elapsed_s * 1000 / i);
    if (samples.size() < 3 && i == sample_at[samples.size()]) {
      int64_t pause_start_us = g_get_monotonic_time();
      samples.push_back(settled_sample(vb.pid(), i, elapsed_s));
      paused_us += g_get_monotonic_time() - pause_start_us;
    }
  }
  HttpResponse health = http.request("GET", "/healthz");
  fail_unless(health.status == 200 && health.json().num("active_calls") == 0, "%s", health.describe().c_str());

  std::string table;
  for (const auto &s : samples) {
    char line[160];
    snprintf(line, sizeof line, "  after call %4d (%6.1f s): %3d threads, %3d fds, VmRSS %6.1f MiB\n", s.calls,
             s.elapsed_s, s.threads, s.fds, s.rss_kib / 1024.0);
    table += line;
  }
  const Sample &first = samples[0], &last = samples[2];
  double growth_mib = (last.rss_kib - first.rss_kib) / 1024.0;
  g_print("%d calls set up and torn down in %.1f s (%.1f ms per call, slowest %.0f ms); %d Realtime connections:\n%s"
          "  RSS growth from call %d to %d: %.2f MiB (%.1f KiB per call); from call %d to %d: %.2f MiB\n",
          calls, last.elapsed_s, setup_ms_sum / calls, worst_ms, fake.connection_count(), table.c_str(), first.calls,
          last.calls, growth_mib, growth_mib * 1024 / (last.calls - first.calls), samples[1].calls, last.calls,
          (last.rss_kib - samples[1].rss_kib) / 1024.0);

  // Each call opens its Realtime session at once; a call deleted within milliseconds may cancel the
  // connect before the fake has accepted it (measured: 0-2 of 1000), so not every call shows up.
  // Every connection that was opened must be closed: none may outlive its call.
  const int connections = fake.connection_count();
  fail_unless(connections <= calls && connections >= calls * 9 / 10, "the fake saw %d Realtime connections for %d calls",
              connections, calls);
  int open = 0;
  fake.wait_for(
      [&] {
        open = 0;
        for (int i = 0; i < connections; i++) open += fake.connection(i).closed ? 0 : 1;
        return open == 0;
      },
      5000);
  fail_unless(open == 0, "%d Realtime connection(s) outlived their calls", open);
  // ±2: GLib's thread pools keep a few idle workers for a while and the test cannot tell them from
  // a call's; a leak of one thread or socket per call would show as hundreds.
  fail_unless(std::abs(last.threads - first.threads) <= 2,
              "threads went from %d after call %d to %d after call %d\n%s  then: %s\n  now: %s", first.threads,
              first.calls, last.threads, last.calls, table.c_str(), first.names.c_str(), last.names.c_str());
  fail_unless(std::abs(last.fds - first.fds) <= 2, "descriptors went from %d after call %d to %d after call %d (%s)\n%s",
              first.fds, first.calls, last.fds, last.calls, fd_summary(vb.pid()).c_str(), table.c_str());
  // The bound: the service keeps the last 200 ended calls' records (a few KiB each: GET /v1/calls),
  // which fills up between calls 100 and 200, and glibc's per-thread arenas keep freed memory
  // around (M_TRIM is per arena, and each call's streaming threads land on some arena). Together
  // that is a few MiB at most; a leak of 10 KiB per call, e.g. one pipeline element or buffer
  // pool per call, would be 9 MiB over 900 calls.
  fail_unless(growth_mib < 8.0, "VmRSS grew by %.2f MiB from call %d to call %d\n%s", growth_mib, first.calls,
              last.calls, table.c_str());
  fail_unless(vb.glib_complaints().empty(), "GLib criticals:\n%s", vb.glib_complaints().c_str());
  stop_cleanly(vb);
}
GST_END_TEST;

// BUG (libsoup 3.2, through app/http-server.cpp's soup_server_listen): every accepted HTTP
// connection leaks its GSocket (~330 bytes): libsoup 3.2's SoupListener listen_watch() never
// unrefs what g_socket_accept() returned (fixed upstream in libsoup 3.4.0, "soup-listener: Plug a
// leak"; Debian 12 ships 3.2.3). The descriptor is closed, so fd counts do not show it, and because
// the service answers every request with "Connection: close" each API call, webhook, health probe
// and metrics scrape costs one leaked socket object. This is most of the ~1.5 KiB per call the test
// above measures (two requests per call). 10000 requests on fresh connections must not grow the
// service's memory by more than 1 MiB (105 bytes per request; a steady-state service allocates
// nothing per /healthz that outlives it).
GST_START_TEST(test_api_requests_leak_nothing) {
  fake_realtime::Server fake;
  std::string error;
  fail_unless(fake.start(0, &error), "fake server: %s", error.c_str());
  Service vb;
  fail_unless(vb.start(fake.url(), {}, &error, "127.0.0.1:0", sanitizer_service_env()), "%s", error.c_str());
  const Http http = vb.http();
  // Warm-up: whatever the first requests allocate for good (libsoup's and GLib's caches).
  for (int i = 0; i < 500; i++) fail_unless(http.request("GET", "/healthz").status == 200);
  long before = rss_kib(vb.pid());
  int fds_before = fd_count(vb.pid());
  const int kRequests = sanitized() ? 2000 : 10000;  // ~4.5 ms per request there
  int64_t start_us = g_get_monotonic_time();
  for (int i = 0; i < kRequests; i++) {
    HttpResponse r = http.request("GET", "/healthz");
    fail_unless(r.status == 200, "request %d: %s", i, r.describe().c_str());
  }
  double seconds = faults::ms_between(start_us, g_get_monotonic_time()) / 1000;
  long after = rss_kib(vb.pid());
  double growth_kib = (double)(after - before);
  g_print("%d GET /healthz in %.1f s: VmRSS %.1f -> %.1f MiB (%.0f bytes per request), fds %d -> %d\n", kRequests,
          seconds, before / 1024.0, after / 1024.0, growth_kib * 1024 / kRequests, fds_before, fd_count(vb.pid()));
  fail_unless(std::abs(fd_count(vb.pid()) - fds_before) <= 2, "descriptors: %d -> %d", fds_before, fd_count(vb.pid()));
  fail_unless(growth_kib < 1024, "VmRSS grew by %.0f KiB over %d requests (%.0f bytes each)", growth_kib, kRequests,
              growth_kib * 1024 / kRequests);
  stop_cleanly(vb);
}
GST_END_TEST;

static Suite *fault_call_churn_suite(void) {
  Suite *s = suite_create("fault_call_churn");
  TCase *tc = tcase_create("churn");
  tcase_set_timeout(tc, kBudgetS + 20);
  tcase_add_test(tc, test_calls_leak_nothing);
  tcase_add_test(tc, test_api_requests_leak_nothing);
  suite_add_tcase(s, tc);
  return s;
}

GST_CHECK_MAIN(fault_call_churn);
