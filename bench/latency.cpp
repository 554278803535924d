// bench-latency: what voicebridge adds to a call's timing, measured with marked audio (run it
// through bench/latency.sh). One voicebridge process (started here, as tests/service does), the
// bench's fake Realtime server in this process, and cheap callers (bench-caller.h) that decode
// everything they hear. All times are CLOCK_MONOTONIC, shared by every process on the machine.
//
// 1. Setup and first model audio: --setup-calls calls one after the other, each with a greeting
//    (the fake answers its response.create at once with 400 ms of tone). setup = CALL_ANSWERED
//    setup_ms (offer received → answer ready); first audio = CALL_FIRST_AUDIO after_media_ms (media
//    connected → first model audio sent) when voicebridge logs it, and from the caller's side, SRTP
//    keys set → first packet with model audio; and how much of the greeting the caller heard. The
//    first call of the process pays an RSA-2048 key generation: it is reported apart and left out
//    of the distributions.
// 2. Latency per direction, --calls concurrent calls for --marks-s seconds:
//    up   = a tone burst every second in the caller's audio (pre-encoded); from the moment the
//           caller sends the RTP packet in which the burst starts (as decoded) to the moment the
//           fake receives the input_audio_buffer.append in which it finds the burst's first sample.
//    down = every second the fake starts a reply whose first sample is the onset of a tone; from
//           the moment that first delta is handed to the socket to the moment the caller would
//           play the onset (arrival of the RTP packet holding it + its position in the packet).
//           Includes the 20 ms framing of the send path and the codec's delay.
// 3. Barge-in: the fake starts a 3 s reply and, a second into it, sends speech_started; from that
//    moment to the moment the caller would play the last sample of the reply.
#include <gst/gst.h>
#include <opus/opus.h>

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench-caller.h"
#include "bench-fake.h"
#include "bench-util.h"
#include "dtls-cert.h"
#include "service-harness.h"

namespace {

constexpr int kMarkPeriodMs = 1000;
constexpr int kMarkBurstMs = 60;
constexpr int kMarkOffsetMs = 5;      // into its frame, so the codec's delay keeps it in that frame
constexpr double kMarkPeakDbfs = -12;
constexpr int kGreetingMs = 400;
constexpr int kDownReplyMs = 200;
constexpr int kBargeReplyMs = 3000;
constexpr int kBargeAfterMs = 1000;
constexpr int kBargePeriodMs = 2500;
constexpr int64_t kMatchUs = 500 * 1000;  // an event further than this from its cause is a miss

void log(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
void log(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "bench-latency: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
}

// The caller's marked audio at 16 kHz: a 1 kHz burst at the start of every second, silence between.
std::vector<int16_t> marks_loop() {
  const int rate = 16000;
  std::vector<int16_t> pcm((size_t)kMarkPeriodMs * rate / 1000, 0);
  const double amp = 32768.0 * std::pow(10.0, kMarkPeakDbfs / 20.0);
  const size_t start = (size_t)kMarkOffsetMs * rate / 1000;
  const size_t len = (size_t)kMarkBurstMs * rate / 1000;
  for (size_t i = 0; i < len; i++)
    pcm[start + i] = (int16_t)std::lround(amp * std::sin(2 * M_PI * 1000.0 * (double)i / rate));
  return pcm;
}

// The loop frame in which a 24 kHz decoder (what voicebridge hands the model) first hears the
// burst: the frame whose send time starts the "up" measurement.
int mark_frame(const bench::OpusLoop &loop, double threshold_dbfs) {
  int err = OPUS_OK;
  OpusDecoder *dec = opus_decoder_create(24000, 1, &err);
  if (err != OPUS_OK) return 0;
  const int threshold = (int)(32768.0 * std::pow(10.0, threshold_dbfs / 20.0));
  int found = -1;
  // Twice round the loop (the decoder state at the loop's start is the loop's end), keeping the second.
  for (int pass = 0; pass < 2 && found < 0; pass++) {
    for (size_t f = 0; f < loop.frames.size(); f++) {
      int16_t pcm[480];
      int n = opus_decode(dec, loop.frames[f].data(), (opus_int32)loop.frames[f].size(), pcm, 480, 0);
      bool loud = false;
      for (int i = 0; i < n; i++) loud = loud || std::abs((int)pcm[i]) >= threshold;
      if (pass == 1 && loud) {
        found = (int)f;
        break;
      }
    }
  }
  opus_decoder_destroy(dec);
  return std::max(found, 0);
}

struct Call {
  std::unique_ptr<bench::Caller> caller;
  std::string id;
  std::string tag;
  int conn = -1;
  bool answered = false;
};

bool place(const svc_test::Http &http, Call &c, const std::string &extra_json, std::string *error) {
  std::string body = "{\"sdp\":" + svc_test::json_quote(c.caller->make_offer()) + ",\"call_id\":\"" + c.id + "\"" +
                     extra_json + "}";
  svc_test::HttpResponse r = http.request("POST", "/v1/calls", body);
  if (r.status != 201) {
    *error = "POST /v1/calls: " + r.describe();
    return false;
  }
  c.answered = true;
  return c.caller->set_answer(r.json().str("sdp"), error);
}

void hang_up(const svc_test::Http &http, Call &c) {
  if (c.answered) http.request("DELETE", "/v1/calls/" + c.id, {}, {}, 5);
  c.answered = false;
  c.caller->stop();
}

bool wait_until(const std::function<bool()> &pred, int timeout_ms) {
  const int64_t deadline = g_get_monotonic_time() + (int64_t)timeout_ms * 1000;
  while (g_get_monotonic_time() < deadline) {
    if (pred()) return true;
    g_usleep(5000);
  }
  return pred();
}

void print_distribution(const char *what, const bench::Distribution &d) {
  fprintf(stderr, "bench-latency: %-34s %s\n", what, bench::describe(d).c_str());
}

}  // namespace

int main(int argc, char **argv) {
  gint calls_n = 4, marks_s = 45, barge_ins = 15, setup_calls = 51;
  gchar **vb_args = nullptr;
  const GOptionEntry entries[] = {
      {"calls", 0, 0, G_OPTION_ARG_INT, &calls_n, "concurrent calls for the latency and barge-in parts (default 4)",
       "N"},
      {"marks-s", 0, 0, G_OPTION_ARG_INT, &marks_s, "duration of the per-direction part (default 45)", "S"},
      {"barge-ins", 0, 0, G_OPTION_ARG_INT, &barge_ins, "barge-ins per call (default 15)", "N"},
      {"setup-calls", 0, 0, G_OPTION_ARG_INT, &setup_calls, "sequential calls for setup and first audio (default 51)",
       "N"},
      {"vb-arg", 0, 0, G_OPTION_ARG_STRING_ARRAY, &vb_args, "an extra voicebridge option (repeatable)", "ARG"},
      {nullptr, 0, 0, G_OPTION_ARG_NONE, nullptr, nullptr, nullptr}};
  GOptionContext *context = g_option_context_new("- voicebridge's added latency, with marked audio");
  g_option_context_add_main_entries(context, entries, nullptr);
  g_option_context_add_group(context, gst_init_get_option_group());
  GError *err = nullptr;
  if (!g_option_context_parse(context, &argc, &argv, &err)) {
    fprintf(stderr, "bench-latency: %s\n", err->message);
    g_clear_error(&err);
    g_option_context_free(context);
    return 2;
  }
  g_option_context_free(context);
  if (calls_n < 1 || calls_n > 20 || marks_s < 5 || marks_s > 300 || barge_ins < 0 || barge_ins > 100 ||
      setup_calls < 0 || setup_calls > 500) {
    fprintf(stderr, "bench-latency: an option is out of range (see --help)\n");
    return 2;
  }
  std::vector<std::string> extra;
  for (gchar **a = vb_args; a && *a; a++) extra.push_back(*a);
  g_strfreev(vb_args);
  gst_init(nullptr, nullptr);

  bench::FakeConfig fc;
  fc.vad = false;           // turns are driven by this program, not by the caller's audio
  fc.detect_marks = true;
  fc.reply_ms = kGreetingMs;  // what a response.create (the greeting) gets
  bench::FakeRealtime fake(fc);
  std::string error;
  if (!fake.start(0, &error)) {
    log("fake: %s", error.c_str());
    return 1;
  }
  svc_test::Service vb;
  if (!vb.start(fake.url(), extra, &error)) {
    log("voicebridge: %s", error.c_str());
    return 1;
  }
  svc_test::Http http = vb.http();
  const std::string pem = meta_peer::make_self_signed_pem("WhatsApp", &error);
  const std::string fingerprint = meta_peer::sha256_fingerprint(meta_peer::certificate_der_from_pem(pem));
  bench::OpusLoop silence_loop, mark_loop;
  if (pem.empty() || !bench::encode_loop(std::vector<int16_t>(16000, 0), &silence_loop, &error) ||
      !bench::encode_loop(marks_loop(), &mark_loop, &error)) {
    log("setup: %s", error.c_str());
    return 1;
  }
  const int mark_at = mark_frame(mark_loop, fc.mark_threshold_dbfs);
  bench::CallerHub hub;
  hub.start(&error);
  const std::string load_start = bench::loadavg();
  const bench::SystemSample sys0 = bench::read_system();
  bench::JsonLine out;
  bool ok = true;

  // ---- 1. setup and first model audio ----
  std::vector<double> setup_ms, first_audio_ms, post_ms, heard_first_ms, greeting_heard_ms;
  double first_setup_ms = NAN, first_first_audio_ms = NAN;
  int setup_failures = 0, first_audio_missing = 0;
  for (int i = 0; i < setup_calls; i++) {
    Call c;
    bench::CallerConfig cfg;
    cfg.index = i;
    cfg.loop = &silence_loop;
    cfg.decode = true;
    c.caller = std::make_unique<bench::Caller>(hub, cfg);
    c.id = "lat-setup-" + std::to_string(i);
    const int64_t t0 = g_get_monotonic_time();
    if (!c.caller->start(pem, fingerprint, &error) || !place(http, c, ",\"greeting\":\"Hello\"", &error)) {
      setup_failures++;
      log("setup call %d: %s", i, error.c_str());
      hang_up(http, c);
      continue;
    }
    const double post = (g_get_monotonic_time() - t0) / 1000.0;
    auto answered = vb.wait_event("CALL_ANSWERED", c.id, 5000);
    // The greeting (kGreetingMs of tone) is heard in full, then a little silence.
    const bool heard = wait_until([&] { return c.caller->first_loud_us() >= 0; }, 5000);
    if (heard) g_usleep((kGreetingMs + 300) * 1000);
    const int64_t keys = c.caller->keys_us(), loud = c.caller->first_loud_us();
    const bench::CallerStats st = c.caller->stats(false);
    auto first = vb.events("CALL_FIRST_AUDIO", c.id);
    hang_up(http, c);
    if (!answered || !heard) {
      setup_failures++;
      log("setup call %d: %s", i, !answered ? "no CALL_ANSWERED" : "no greeting heard");
      continue;
    }
    const double s = answered->json.num("setup_ms");
    const double f = first.empty() ? NAN : first[0].json.num("after_media_ms");
    if (first.empty()) first_audio_missing++;
    if (i == 0) {  // pays the process's RSA-2048 key generation
      first_setup_ms = s;
      first_first_audio_ms = f;
      continue;
    }
    setup_ms.push_back(s);
    if (!first.empty()) first_audio_ms.push_back(f);
    post_ms.push_back(post);
    if (keys >= 0 && loud >= 0) heard_first_ms.push_back((loud - keys) / 1000.0);
    greeting_heard_ms.push_back((double)st.loud_ms);
  }
  const bench::Distribution d_setup = bench::distribution(setup_ms), d_first = bench::distribution(first_audio_ms);
  const bench::Distribution d_heard_first = bench::distribution(heard_first_ms);
  const bench::Distribution d_greeting = bench::distribution(greeting_heard_ms);
  if (setup_calls > 0) {
    log("first call of the process: setup %.1f ms, first audio %.1f ms (excluded below)", first_setup_ms,
        first_first_audio_ms);
    print_distribution("setup (CALL_ANSWERED setup_ms)", d_setup);
    print_distribution("POST /v1/calls round trip", bench::distribution(post_ms));
    print_distribution("first audio (after_media_ms)", d_first);
    log("CALL_FIRST_AUDIO missing in %d of %d calls", first_audio_missing, setup_calls - setup_failures);
    print_distribution("first audio heard (caller keys→sound)", d_heard_first);
    char what[64];
    snprintf(what, sizeof what, "greeting heard (of %d ms)", kGreetingMs);
    print_distribution(what, d_greeting);
  }
  out.num("setup_first_call_ms", first_setup_ms).num("first_audio_first_call_ms", first_first_audio_ms)
      .num("setup_failures", setup_failures).num("first_audio_event_missing", first_audio_missing)
      .raw("setup_ms", bench::to_json(d_setup)).raw("post_ms", bench::to_json(bench::distribution(post_ms)))
      .raw("first_audio_ms", bench::to_json(d_first)).raw("first_audio_heard_ms", bench::to_json(d_heard_first))
      .num("greeting_ms", kGreetingMs).raw("greeting_heard_ms", bench::to_json(d_greeting));
  ok = ok && setup_failures == 0;

  // ---- 2. per-direction latency ----
  std::vector<Call> calls(calls_n);
  for (int i = 0; i < calls_n; i++) {
    bench::CallerConfig cfg;
    cfg.index = i;
    cfg.loop = &mark_loop;
    cfg.loop_offset = (int)(mark_loop.frames.size() * i / calls_n);  // spread the marks
    cfg.decode = true;
    cfg.decode_rate = 48000;
    cfg.record_sounds = true;
    cfg.mark_frames = {mark_at};
    Call &c = calls[i];
    c.caller = std::make_unique<bench::Caller>(hub, cfg);
    c.id = "lat-" + std::to_string(i);
    c.tag = "bench-latency-call-" + std::to_string(i);
    if (!c.caller->start(pem, fingerprint, &error) ||
        !place(http, c, ",\"instructions\":" + svc_test::json_quote(c.tag), &error)) {
      log("latency call %d: %s", i, error.c_str());
      return 1;
    }
  }
  for (auto &c : calls) {
    auto up = [&] { return c.caller->media_both_ways() && (c.conn = fake.find_connection(c.tag)) >= 0; };
    if (!wait_until(up, 15000)) {
      log("latency call %s: no media or no Realtime session", c.id.c_str());
      return 1;
    }
  }
  g_usleep(2 * G_USEC_PER_SEC);  // past the start of the media and the session
  const int64_t marks_start = g_get_monotonic_time();
  std::vector<std::vector<int64_t>> down_sends(calls_n);
  {
    // Replies staggered across the calls, one per call per second, starting half a period after
    // the caller's own marks.
    const int64_t period = kMarkPeriodMs * 1000;
    for (int64_t k = 0; k < (int64_t)marks_s; k++) {
      for (int i = 0; i < calls_n; i++) {
        // Plus 0–20 ms at random: the src plays in 20 ms periods, and a reply must not always land
        // at the same point of that period.
        const int64_t at = marks_start + k * period + period * i / calls_n + period / 2 / calls_n +
                           g_random_int_range(0, 20000);
        const int64_t now = g_get_monotonic_time();
        if (at > now) g_usleep((gulong)(at - now));
        const int64_t t = fake.start_response(calls[i].conn, kDownReplyMs);
        if (t >= 0) down_sends[i].push_back(t);
      }
    }
    g_usleep(kMarkPeriodMs * 1000);
  }
  const int64_t marks_end = g_get_monotonic_time();
  std::vector<double> up, down, down_packet;
  int up_missed = 0, down_missed = 0;
  for (int i = 0; i < calls_n; i++) {
    Call &c = calls[i];
    std::vector<int64_t> sends = c.caller->mark_sends();
    for (const bench::UpMark &m : fake.up_marks(c.conn)) {
      if (m.recv_us < marks_start || m.recv_us > marks_end) continue;
      auto it = std::upper_bound(sends.begin(), sends.end(), m.recv_us);
      if (it == sends.begin() || m.recv_us - *(it - 1) > kMatchUs) {
        up_missed++;
        continue;
      }
      up.push_back((m.recv_us - *(it - 1)) / 1000.0);
    }
    std::vector<bench::HeardEvent> onsets = c.caller->onsets();
    for (int64_t t : down_sends[i]) {
      auto it = std::lower_bound(onsets.begin(), onsets.end(), t,
                                 [](const bench::HeardEvent &e, int64_t v) { return e.heard_us < v; });
      if (it == onsets.end() || it->heard_us - t > kMatchUs) {
        down_missed++;
        continue;
      }
      down.push_back((it->heard_us - t) / 1000.0);
      down_packet.push_back((it->arrival_us - t) / 1000.0);
    }
  }
  const bench::Distribution d_up = bench::distribution(up), d_down = bench::distribution(down);
  print_distribution("up (RTP sent → append received)", d_up);
  print_distribution("down (delta sent → onset heard)", d_down);
  print_distribution("down (delta sent → its packet arrives)", bench::distribution(down_packet));
  log("marks missed: up %d, down %d (mark frame %d of the caller's loop)", up_missed, down_missed, mark_at);
  out.raw("up_ms", bench::to_json(d_up)).raw("down_ms", bench::to_json(d_down))
      .raw("down_packet_ms", bench::to_json(bench::distribution(down_packet)))
      .num("up_missed", up_missed).num("down_missed", down_missed);
  ok = ok && up_missed == 0 && down_missed == 0 && !up.empty() && !down.empty();

  // ---- 3. barge-in ----
  std::vector<std::vector<int64_t>> barge_sends(calls_n);
  {
    std::vector<std::thread> threads;
    for (int i = 0; i < calls_n; i++) {
      threads.emplace_back([&, i] {
        g_usleep((gulong)(kBargePeriodMs * 1000 / calls_n * i));  // spread the calls
        for (int r = 0; r < barge_ins; r++) {
          const int64_t start = g_get_monotonic_time();
          if (fake.start_response(calls[i].conn, kBargeReplyMs) < 0) continue;
          g_usleep((gulong)(kBargeAfterMs * 1000 + g_random_int_range(0, 20000)));  // any point of a 20 ms period
          const int64_t t = fake.speech_started(calls[i].conn);
          if (t >= 0) barge_sends[i].push_back(t);
          const int64_t next = start + kBargePeriodMs * 1000;
          const int64_t now = g_get_monotonic_time();
          if (next > now) g_usleep((gulong)(next - now));
        }
      });
    }
    for (auto &t : threads) t.join();
    g_usleep(500 * 1000);
  }
  std::vector<double> barge;
  int barge_missed = 0;
  for (int i = 0; i < calls_n; i++) {
    std::vector<bench::HeardEvent> ends = calls[i].caller->ends();
    for (int64_t t : barge_sends[i]) {
      auto it = std::lower_bound(ends.begin(), ends.end(), t,
                                 [](const bench::HeardEvent &e, int64_t v) { return e.heard_us < v; });
      if (it == ends.end() || it->heard_us - t > kMatchUs) {
        barge_missed++;
        continue;
      }
      barge.push_back((it->heard_us - t) / 1000.0);
    }
  }
  const bench::Distribution d_barge = bench::distribution(barge);
  print_distribution("barge-in (speech_started → silence)", d_barge);
  log("barge-ins missed: %d; RT_BARGE_IN events: %zu", barge_missed, vb.events("RT_BARGE_IN").size());
  out.raw("barge_in_ms", bench::to_json(d_barge)).num("barge_in_missed", barge_missed);
  ok = ok && barge_missed == 0 && (barge_ins == 0 || !barge.empty());

  for (auto &c : calls) hang_up(http, c);
  hub.stop();
  const bench::SystemSample sys1 = bench::read_system();
  const std::string load_end = bench::loadavg();
  const double machine_pct = (sys1.busy_s - sys0.busy_s) / ((sys1.mono_us - sys0.mono_us) / 1e6) * 100.0;
  log("machine: %.0f %% of one core busy on average (2 cores = 200 %%), load %s -> %s", machine_pct,
      load_start.c_str(), load_end.c_str());
  out.num("calls", calls_n).num("machine_cpu_pct", machine_pct).str("load_start", load_start).str("load_end", load_end);
  const std::string complaints = vb.glib_complaints();
  if (!complaints.empty()) log("GLib/GStreamer warnings in voicebridge's log:\n%s", complaints.c_str());
  vb.stop();
  fake.stop();
  printf("%s\n", out.text().c_str());
  return ok ? 0 : 1;
}
