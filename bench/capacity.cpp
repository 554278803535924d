// bench-capacity: the caller swarm of the capacity benchmark (run it through bench/capacity.sh).
//
// Places N WhatsApp-like calls at a running voicebridge, keeps them up, and measures one steady
// window of T seconds: voicebridge's CPU-seconds, RSS and threads (from /proc, as deltas over the
// window), those of the fake Realtime server and of this process, the machine's total, and the
// audio health (voicebridge's underrun and loss metrics; sequence gaps, lateness and, on a sample of
// the calls that decode, gaps heard inside the model's replies). Prints a summary on stderr and one
// JSON line on stdout.
//
// Each caller loops a pre-encoded cycle: talk for --talk-ms, then silence, every --cycle-ms; the
// fake's VAD turns each talk into a reply of its --reply-ms (3 s of 6 s by default: the model talks
// half the time, the caller a third). Callers start at random points of the cycle.
#include <gst/gst.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "bench-caller.h"
#include "bench-util.h"
#include "dtls-cert.h"
#include "service-harness.h"

namespace {

struct Options {
  std::string url;
  gint vb_pid = 0, fake_pid = 0;
  gint calls = 10;
  gint duration_s = 60;
  gint warmup_s = 8;
  gint decode_every = 10;
  gint cycle_ms = 6000;
  gint talk_ms = 2000;
  gint ramp_ms = 100;
  gboolean no_warmup_call = FALSE;
};

void log(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
void log(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "bench-capacity: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
}

struct Placed {
  std::unique_ptr<bench::Caller> caller;
  std::string call_id;
  bool answered = false;
  double post_ms = 0;
};

// POST /v1/calls with the caller's offer and applies the answer; false with *error.
bool place(const svc_test::Http &http, Placed &p, std::string *error) {
  const int64_t t0 = g_get_monotonic_time();
  svc_test::HttpResponse r = http.request("POST", "/v1/calls", svc_test::offer_body(p.caller->make_offer(), p.call_id));
  p.post_ms = (g_get_monotonic_time() - t0) / 1000.0;
  if (r.status != 201) {
    *error = "POST /v1/calls: " + r.describe();
    return false;
  }
  p.answered = true;
  return p.caller->set_answer(r.json().str("sdp"), error);
}

void hang_up(const svc_test::Http &http, Placed &p) {
  if (p.answered) http.request("DELETE", "/v1/calls/" + p.call_id, {}, {}, 5);
  p.caller->stop();
}

bool wait_media(const std::vector<Placed> &calls, int timeout_ms) {
  const int64_t deadline = g_get_monotonic_time() + (int64_t)timeout_ms * 1000;
  while (g_get_monotonic_time() < deadline) {
    bool all = true;
    for (const auto &p : calls) all = all && (!p.answered || p.caller->media_both_ways());
    if (all) return true;
    g_usleep(50 * 1000);
  }
  return false;
}

}  // namespace

int main(int argc, char **argv) {
  Options o;
  gchar *url = nullptr;
  const GOptionEntry entries[] = {
      {"url", 0, 0, G_OPTION_ARG_STRING, &url, "voicebridge's base URL (http://127.0.0.1:PORT)", "URL"},
      {"vb-pid", 0, 0, G_OPTION_ARG_INT, &o.vb_pid, "voicebridge's pid (for /proc)", "PID"},
      {"fake-pid", 0, 0, G_OPTION_ARG_INT, &o.fake_pid, "the fake Realtime server's pid (for /proc)", "PID"},
      {"calls", 0, 0, G_OPTION_ARG_INT, &o.calls, "concurrent calls (default 10)", "N"},
      {"duration", 0, 0, G_OPTION_ARG_INT, &o.duration_s, "measured steady window in s (default 60)", "S"},
      {"warmup", 0, 0, G_OPTION_ARG_INT, &o.warmup_s, "time after all calls connected before measuring (default 8)",
       "S"},
      {"decode-every", 0, 0, G_OPTION_ARG_INT, &o.decode_every, "1 call in K decodes what it hears (default 10)", "K"},
      {"cycle-ms", 0, 0, G_OPTION_ARG_INT, &o.cycle_ms, "caller speech cycle (default 6000)", "MS"},
      {"talk-ms", 0, 0, G_OPTION_ARG_INT, &o.talk_ms, "talking part of the cycle (default 2000)", "MS"},
      {"ramp-ms", 0, 0, G_OPTION_ARG_INT, &o.ramp_ms, "pause between call placements (default 100)", "MS"},
      {"no-warmup-call", 0, 0, G_OPTION_ARG_NONE, &o.no_warmup_call, "skip the first, unmeasured call", nullptr},
      {nullptr, 0, 0, G_OPTION_ARG_NONE, nullptr, nullptr, nullptr}};
  GOptionContext *context = g_option_context_new("- the capacity benchmark's caller swarm");
  g_option_context_add_main_entries(context, entries, nullptr);
  g_option_context_add_group(context, gst_init_get_option_group());
  GError *err = nullptr;
  if (!g_option_context_parse(context, &argc, &argv, &err)) {
    fprintf(stderr, "bench-capacity: %s\n", err->message);
    g_clear_error(&err);
    g_option_context_free(context);
    return 2;
  }
  g_option_context_free(context);
  o.url = url ? url : "";
  g_free(url);
  if (o.url.empty() || o.calls < 1 || o.calls > 500 || o.duration_s < 1 || o.duration_s > 600 || o.warmup_s < 0 ||
      o.warmup_s > 120 || o.decode_every < 1 || o.cycle_ms < 1000 || o.talk_ms < 0 || o.talk_ms >= o.cycle_ms ||
      o.ramp_ms < 0 || o.ramp_ms > 10000) {
    fprintf(stderr, "bench-capacity: missing --url or an option out of range (see --help)\n");
    return 2;
  }
  gst_init(nullptr, nullptr);

  std::string error;
  const std::string pem = meta_peer::make_self_signed_pem("WhatsApp", &error);
  if (pem.empty()) {
    log("certificate: %s", error.c_str());
    return 1;
  }
  const std::string fingerprint = meta_peer::sha256_fingerprint(meta_peer::certificate_der_from_pem(pem));
  bench::OpusLoop loop;
  if (!bench::encode_loop(bench::speech_cycle(o.cycle_ms, o.talk_ms), &loop, &error)) {
    log("encoding: %s", error.c_str());
    return 1;
  }
  bench::CallerHub hub;
  hub.start(&error);
  svc_test::Http http(o.url);
  const pid_t self = getpid();
  int failures = 0;
  std::vector<std::string> failure_notes;

  auto make_caller = [&](int index) {
    Placed p;
    bench::CallerConfig cfg;
    cfg.index = index;
    cfg.loop = &loop;
    cfg.loop_offset = (int)g_random_int_range(0, (gint32)loop.frames.size());
    cfg.decode = index >= 0 && index % o.decode_every == 0;
    p.caller = std::make_unique<bench::Caller>(hub, cfg);
    p.call_id = "cap-" + std::to_string(getpid()) + "-" + (index < 0 ? std::string("warmup") : std::to_string(index));
    return p;
  };

  // The first call of a process pays one-off costs (RSA-2048 key generation, plugin loading, the
  // Realtime hub thread): one unmeasured call first, so the baseline includes them.
  if (!o.no_warmup_call) {
    std::vector<Placed> warm;
    warm.push_back(make_caller(-1));
    if (!warm[0].caller->start(pem, fingerprint, &error) || !place(http, warm[0], &error)) {
      log("warm-up call failed: %s", error.c_str());
      return 1;
    }
    if (!wait_media(warm, 15000)) log("warm-up call: no media both ways within 15 s");
    g_usleep(2 * G_USEC_PER_SEC);
    hang_up(http, warm[0]);
    g_usleep(1500 * 1000);
  }
  bench::ProcSample base = bench::read_proc(o.vb_pid);
  log("voicebridge before the calls: %.1f MiB RSS, %d threads, %d fds", base.rss_mib, base.threads, base.fds);

  std::vector<Placed> calls;
  std::vector<double> post_ms;
  const int64_t ramp_start = g_get_monotonic_time();
  for (int i = 0; i < o.calls; i++) {
    calls.push_back(make_caller(i));
    Placed &p = calls.back();
    if (!p.caller->start(pem, fingerprint, &error) || !place(http, p, &error)) {
      failures++;
      if (failure_notes.size() < 5) failure_notes.push_back(p.call_id + ": " + error);
    } else {
      post_ms.push_back(p.post_ms);
    }
    if (o.ramp_ms) g_usleep((gulong)o.ramp_ms * 1000);
  }
  const bool all_media = wait_media(calls, 30000 + 200 * o.calls);
  int connected = 0;
  for (auto &p : calls)
    if (p.answered && p.caller->media_both_ways()) connected++;
  log("%d/%d calls connected in %.1f s (POST %s)", connected, o.calls,
      (g_get_monotonic_time() - ramp_start) / 1e6, bench::describe(bench::distribution(post_ms)).c_str());
  if (!all_media) failure_notes.push_back(std::to_string(o.calls - connected) + " calls without media both ways");
  g_usleep((gulong)o.warmup_s * G_USEC_PER_SEC);

  // ---- the measured window ----
  for (auto &p : calls) p.caller->stats(true);
  const std::string load_start = bench::loadavg();
  const std::string metrics_start = http.request("GET", "/metrics").body;
  const bench::SystemSample sys0 = bench::read_system();
  const bench::ProcSample vb0 = bench::read_proc(o.vb_pid);
  const bench::ProcSample fake0 = bench::read_proc(o.fake_pid);
  const bench::ProcSample me0 = bench::read_proc(self);
  double rss_sum = 0, rss_max = 0, thr_sum = 0, fd_sum = 0;
  int thr_max = 0, samples = 0;
  const int64_t window_end = g_get_monotonic_time() + (int64_t)o.duration_s * G_USEC_PER_SEC;
  while (g_get_monotonic_time() < window_end) {
    g_usleep((gulong)std::min<int64_t>(G_USEC_PER_SEC, std::max<int64_t>(1, window_end - g_get_monotonic_time())));
    bench::ProcSample s = bench::read_proc(o.vb_pid);
    if (!s.ok) break;
    rss_sum += s.rss_mib;
    rss_max = std::max(rss_max, s.rss_mib);
    thr_sum += s.threads;
    thr_max = std::max(thr_max, s.threads);
    fd_sum += s.fds;
    samples++;
  }
  const bench::SystemSample sys1 = bench::read_system();
  const bench::ProcSample vb1 = bench::read_proc(o.vb_pid);
  const bench::ProcSample fake1 = bench::read_proc(o.fake_pid);
  const bench::ProcSample me1 = bench::read_proc(self);
  const std::string metrics_end = http.request("GET", "/metrics").body;
  const std::string load_end = bench::loadavg();
  const std::string health = http.request("GET", "/healthz").body;
  bench::CallerStats total, decoded;
  int decoding = 0;
  for (auto &p : calls) {
    bench::CallerStats s = p.caller->stats(false);
    total.add(s);
    if (p.caller->config().decode) {
      decoded.add(s);
      decoding++;
    }
  }
  const int active = (int)svc_test::Json::parse(health).num("active_calls", -1);

  // ---- tear down ----
  for (auto &p : calls) hang_up(http, p);
  hub.stop();

  const double window_s = (vb1.mono_us - vb0.mono_us) / 1e6;
  const int n = o.calls;
  auto pct = [&](const bench::ProcSample &a, const bench::ProcSample &b) {
    return a.ok && b.ok ? (b.cpu_s - a.cpu_s) / window_s * 100.0 : NAN;
  };
  const double vb_pct = pct(vb0, vb1), fake_pct = pct(fake0, fake1), me_pct = pct(me0, me1);
  const double vb_sys_pct = (vb1.sys_s - vb0.sys_s) / window_s * 100.0;
  const double machine_pct = (sys1.busy_s - sys0.busy_s) / window_s * 100.0;  // in % of one core
  const double others_pct = machine_pct - vb_pct - (std::isfinite(fake_pct) ? fake_pct : 0) - me_pct;
  const double rss_mean = samples ? rss_sum / samples : vb1.rss_mib;
  const double thr_mean = samples ? thr_sum / samples : vb1.threads;
  const double fd_mean = samples ? fd_sum / samples : vb1.fds;
  auto dmetric = [&](const char *name) {
    return bench::metric_sum(metrics_end, name) - bench::metric_sum(metrics_start, name);
  };
  const double underruns = dmetric("voicebridge_caller_audio_underruns_total");
  const double vb_lost = dmetric("voicebridge_rtp_packets_lost_total");
  const double vb_received = dmetric("voicebridge_rtp_packets_received_total");
  const double expected = n * window_s * 50;
  const double model_talk = decoded.decoded_ms ? (double)decoded.loud_ms / (double)decoded.decoded_ms : NAN;

  log("window %.1f s, %d calls (%d active at the end), load %s -> %s", window_s, n, active, load_start.c_str(),
      load_end.c_str());
  log("voicebridge: %.2f %% of a core per call (%.1f %% total, %.0f %% of it in the kernel), RSS %.1f MiB "
      "(+%.2f MiB/call, max %.1f), threads %.0f (+%.2f/call, max %d), fds %.0f (+%.2f/call)",
      vb_pct / n, vb_pct, vb_sys_pct / vb_pct * 100, rss_mean, (rss_mean - base.rss_mib) / n, rss_max, thr_mean,
      (thr_mean - base.threads) / n, thr_max, fd_mean, (fd_mean - base.fds) / n);
  log("fake %.1f %%, callers %.1f %%, machine %.1f %% of one core (2 cores = 200 %%), others %.1f %%", fake_pct,
      me_pct, machine_pct, others_pct);
  log("audio: underruns %.0f, vb lost %.0f of %.0f received (expected %.0f); to callers: %llu received of %.0f, "
      "lost %llu, reordered %llu, late>30ms %llu, late>60ms %llu, max inter-arrival %.1f ms, >40ms %llu",
      underruns, vb_lost, vb_received, expected, (unsigned long long)total.received, expected,
      (unsigned long long)total.lost, (unsigned long long)total.reordered, (unsigned long long)total.late30,
      (unsigned long long)total.late60, total.max_interarrival_us / 1000.0,
      (unsigned long long)total.interarrival_over_40ms);
  log("heard (%d decoding callers, %.0f s of audio): model talks %.0f %% of the time, %llu replies, "
      "%llu gaps (%llu ms)",
      decoding, decoded.decoded_ms / 1000.0, model_talk * 100, (unsigned long long)decoded.replies,
      (unsigned long long)decoded.gaps, (unsigned long long)decoded.gap_ms);
  for (const auto &f : failure_notes) log("failure: %s", f.c_str());
  for (auto &p : calls)
    for (const auto &e : p.caller->errors()) log("%s: %s", p.call_id.c_str(), e.c_str());

  bench::JsonLine j;
  j.num("calls", n).num("connected", connected).num("failures", failures).num("active_at_end", active)
      .num("window_s", window_s)
      .num("vb_cpu_pct_per_call", vb_pct / n).num("vb_cpu_pct", vb_pct).num("vb_cpu_sys_pct", vb_sys_pct)
      .num("vb_rss_mib", rss_mean).num("vb_rss_max_mib", rss_max).num("vb_rss_base_mib", base.rss_mib)
      .num("vb_rss_mib_per_call", (rss_mean - base.rss_mib) / n)
      .num("vb_threads", thr_mean).num("vb_threads_base", base.threads)
      .num("vb_threads_per_call", (thr_mean - base.threads) / n)
      .num("vb_fds", fd_mean).num("vb_fds_base", base.fds).num("vb_fds_per_call", (fd_mean - base.fds) / n)
      .num("fake_cpu_pct", fake_pct).num("callers_cpu_pct", me_pct).num("machine_cpu_pct", machine_pct)
      .num("others_cpu_pct", others_pct).str("load_start", load_start).str("load_end", load_end)
      .num("underruns", underruns).num("vb_rtp_lost", vb_lost).num("vb_rtp_received", vb_received)
      .num("expected_packets", expected).num("caller_received", (double)total.received)
      .num("caller_lost", (double)total.lost).num("caller_reordered", (double)total.reordered)
      .num("caller_late30", (double)total.late30).num("caller_late60", (double)total.late60)
      .num("caller_max_interarrival_ms", total.max_interarrival_us / 1000.0)
      .num("caller_interarrival_over_40ms", (double)total.interarrival_over_40ms)
      .num("decoding_callers", decoding).num("decoded_s", decoded.decoded_ms / 1000.0)
      .num("model_talk_fraction", model_talk).num("replies_heard", (double)decoded.replies)
      .num("gaps_heard", (double)decoded.gaps).num("gap_ms", (double)decoded.gap_ms)
      .raw("post_ms", bench::to_json(bench::distribution(post_ms)));
  printf("%s\n", j.text().c_str());
  return failures == 0 && all_media ? 0 : 1;
}
