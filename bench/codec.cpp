// bench-codec: what the per-call audio work costs on this machine, piece by piece, in CPU
// microseconds per 20 ms frame (thread or process CPU time, not wall time). It prices the options
// the capacity profile points at:
//   - libopus directly: encode at complexity 0–10, decode at the rates and channel counts in use;
//   - the multistream API (which GStreamer's opusenc/opusdec use) against the single-stream one;
//     Debian's libopus is built with custom modes, and each multistream call then runs CPU
//     detection (CPUID) a few times, which traps to the hypervisor in a VM;
//   - GStreamer's opusenc / opusdec elements and the audioconvert / audioresample steps around them;
//   - plugins/vbopus's vbopusenc / vbopusdec, the single-stream replacements, at the same settings.
// Signals: the model side is a voiced, syllable-modulated signal half of the time and silence the
// other half; the caller side is the capacity benchmark's 6 s cycle (a third speech).
// 1 % of a core per call = 200 µs per 20 ms frame.
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#include <gst/gst.h>
#include <opus/opus.h>
#include <opus/opus_multistream.h>
#include <sys/resource.h>
#include <time.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "bench-caller.h"
#include "bench-util.h"

namespace {

constexpr int kFrameMs = 20;

double thread_cpu_s() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

double process_cpu_s() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return (double)u.ru_utime.tv_sec + (double)u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

// The model's side at `rate`: speech_cycle is 16 kHz; resample by linear interpolation (the signal
// only has to be speech-like, not exact).
std::vector<int16_t> model_signal(int rate, int ms) {
  std::vector<int16_t> base = bench::speech_cycle(2 * 3000, 3000);  // half speech, half silence
  std::vector<int16_t> out((size_t)rate * ms / 1000);
  for (size_t i = 0; i < out.size(); i++) {
    double pos = std::fmod((double)i * 16000.0 / rate, (double)base.size() - 1);
    size_t k = (size_t)pos;
    out[i] = (int16_t)(base[k] + (base[k + 1] - base[k]) * (pos - (double)k));
  }
  return out;
}

// audiotestsrc's default: 440 Hz at 0.8 of full scale.
std::vector<int16_t> sine(int rate, int ms) {
  std::vector<int16_t> out((size_t)rate * ms / 1000);
  for (size_t i = 0; i < out.size(); i++)
    out[i] = (int16_t)std::lround(0.8 * 32767 * std::sin(2 * M_PI * 440 * (double)i / rate));
  return out;
}

int g_failures = 0;  // codec calls that returned an error (the figures are void then)

struct Row {
  std::string what;
  double us_per_frame;
};
std::vector<Row> rows;

void report(const std::string &what, double us) {
  rows.push_back({what, us});
  fprintf(stderr, "bench-codec: %-72s %7.1f µs/frame = %.2f %% of a core per call\n", what.c_str(), us, us / 200.0);
}

// For a single operation rather than a frame's work.
void report_each(const std::string &what, double us) {
  rows.push_back({what, us});
  fprintf(stderr, "bench-codec: %-72s %7.1f µs each\n", what.c_str(), us);
}

void configure(OpusEncoder *e, int complexity) {
  // app/call.cpp's settings: the offer's 20 kbit/s, in-band FEC for 10 % loss, voice, no DTX.
  opus_encoder_ctl(e, OPUS_SET_BITRATE(20000));
  opus_encoder_ctl(e, OPUS_SET_INBAND_FEC(1));
  opus_encoder_ctl(e, OPUS_SET_PACKET_LOSS_PERC(10));
  opus_encoder_ctl(e, OPUS_SET_COMPLEXITY(complexity));
  opus_encoder_ctl(e, OPUS_SET_SIGNAL(OPUS_SIGNAL_VOICE));
  opus_encoder_ctl(e, OPUS_SET_DTX(0));
}

double encode_single(const std::vector<int16_t> &pcm, int rate, int complexity, int max_bandwidth) {
  int err = 0;
  OpusEncoder *e = opus_encoder_create(rate, 1, OPUS_APPLICATION_VOIP, &err);
  configure(e, complexity);
  if (max_bandwidth) opus_encoder_ctl(e, OPUS_SET_MAX_BANDWIDTH(max_bandwidth));
  const size_t frame = (size_t)rate * kFrameMs / 1000;
  unsigned char out[1275];
  size_t frames = 0;
  const double t0 = thread_cpu_s();
  for (size_t off = 0; off + frame <= pcm.size(); off += frame, frames++)
    if (opus_encode(e, pcm.data() + off, (int)frame, out, sizeof out) < 0) g_failures++;
  const double t = thread_cpu_s() - t0;
  opus_encoder_destroy(e);
  return t / (double)frames * 1e6;
}

double encode_multistream(const std::vector<int16_t> &pcm, int rate, int complexity) {
  int err = 0;
  unsigned char mapping[1] = {0};
  OpusMSEncoder *e = opus_multistream_encoder_create(rate, 1, 1, 0, mapping, OPUS_APPLICATION_VOIP, &err);
  opus_multistream_encoder_ctl(e, OPUS_SET_BITRATE(20000));
  opus_multistream_encoder_ctl(e, OPUS_SET_INBAND_FEC(1));
  opus_multistream_encoder_ctl(e, OPUS_SET_PACKET_LOSS_PERC(10));
  opus_multistream_encoder_ctl(e, OPUS_SET_COMPLEXITY(complexity));
  opus_multistream_encoder_ctl(e, OPUS_SET_SIGNAL(OPUS_SIGNAL_VOICE));
  const size_t frame = (size_t)rate * kFrameMs / 1000;
  unsigned char out[1275];
  size_t frames = 0;
  const double t0 = thread_cpu_s();
  for (size_t off = 0; off + frame <= pcm.size(); off += frame, frames++)
    if (opus_multistream_encode(e, pcm.data() + off, (int)frame, out, sizeof out) < 0) g_failures++;
  const double t = thread_cpu_s() - t0;
  opus_multistream_encoder_destroy(e);
  return t / (double)frames * 1e6;
}

double decode(const bench::OpusLoop &loop, int repeat, int rate, int channels, bool multistream) {
  int err = 0;
  OpusDecoder *d = nullptr;
  OpusMSDecoder *md = nullptr;
  unsigned char mapping[2] = {0, 0};  // opusdec for an RTP stream: family 0, one stream to every channel
  if (multistream)
    md = opus_multistream_decoder_create(rate, channels, 1, 0, mapping, &err);
  else
    d = opus_decoder_create(rate, channels, &err);
  std::vector<int16_t> out((size_t)rate * 120 / 1000 * (size_t)channels);
  const int max = rate * 120 / 1000;
  size_t frames = 0;
  const double t0 = thread_cpu_s();
  for (int r = 0; r < repeat; r++) {
    for (const auto &p : loop.frames) {
      const int n = md ? opus_multistream_decode(md, p.data(), (opus_int32)p.size(), out.data(), max, 0)
                       : opus_decode(d, p.data(), (opus_int32)p.size(), out.data(), max, 0);
      if (n < 0) g_failures++;
      frames++;
    }
  }
  const double t = thread_cpu_s() - t0;
  if (md) opus_multistream_decoder_destroy(md);
  if (d) opus_decoder_destroy(d);
  return t / (double)frames * 1e6;
}

// A GStreamer pipeline run to EOS; process CPU per buffer (each buffer is one 20 ms frame).
double pipeline_us(const std::string &description, int frames) {
  GError *err = nullptr;
  GstElement *p = gst_parse_launch(description.c_str(), &err);
  if (!p) {
    fprintf(stderr, "bench-codec: %s: %s\n", description.c_str(), err ? err->message : "?");
    g_clear_error(&err);
    return NAN;
  }
  const double t0 = process_cpu_s();
  gst_element_set_state(p, GST_STATE_PLAYING);
  GstBus *bus = gst_element_get_bus(p);
  GstMessage *m =
      gst_bus_timed_pop_filtered(bus, 120 * GST_SECOND, (GstMessageType)(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  const double t = process_cpu_s() - t0;
  bool ok = m && GST_MESSAGE_TYPE(m) == GST_MESSAGE_EOS;
  if (m) gst_message_unref(m);
  gst_object_unref(bus);
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(p);
  if (!ok) {
    fprintf(stderr, "bench-codec: %s did not reach EOS\n", description.c_str());
    return NAN;
  }
  return t / frames * 1e6;
}

// plugins/vbopus (vbopusenc, vbopusdec) from this build tree, without GST_PLUGIN_PATH: the plugin
// module sits at ../plugins/vbopus/ relative to this program's directory. False if it cannot be
// loaded (then the registry's copy, if any, is used).
bool load_vbopus_from_build() {
  gchar *exe = g_file_read_link("/proc/self/exe", nullptr);
  if (!exe) return false;
  gchar *dir = g_path_get_dirname(exe);
  gchar *path = g_build_filename(dir, "..", "plugins", "vbopus", "libgstvbopus.so", nullptr);
  GError *err = nullptr;
  GstPlugin *plugin = gst_plugin_load_file(path, &err);
  if (!plugin) fprintf(stderr, "bench-codec: %s: %s\n", path, err ? err->message : "?");
  g_clear_error(&err);
  if (plugin) gst_object_unref(plugin);
  g_free(path);
  g_free(dir);
  g_free(exe);
  return plugin != nullptr;
}

}  // namespace

int main(int argc, char **argv) {
  gint seconds = 60;
  const GOptionEntry entries[] = {
      {"seconds", 0, 0, G_OPTION_ARG_INT, &seconds, "audio per measurement (default 60)", "S"},
      {nullptr, 0, 0, G_OPTION_ARG_NONE, nullptr, nullptr, nullptr}};
  GOptionContext *context = g_option_context_new("- per-frame CPU cost of the audio path's pieces");
  g_option_context_add_main_entries(context, entries, nullptr);
  g_option_context_add_group(context, gst_init_get_option_group());
  GError *err = nullptr;
  if (!g_option_context_parse(context, &argc, &argv, &err) || seconds < 5 || seconds > 600) {
    fprintf(stderr, "bench-codec: %s\n", err ? err->message : "--seconds must be 5..600");
    g_clear_error(&err);
    g_option_context_free(context);
    return 2;
  }
  g_option_context_free(context);
  gst_init(nullptr, nullptr);
  const int ms = seconds * 1000;
  const int frames = ms / kFrameMs;

  // Why the multistream API costs more here: each call computes its streams' sizes with
  // opus_decoder_get_size() / opus_encoder_get_size(), which (custom modes) runs CPU detection.
  {
    const int n = 20000;
    double t0 = thread_cpu_s();
    volatile int sink = 0;
    for (int i = 0; i < n; i++) sink = sink + opus_decoder_get_size(1);
    report_each("opus_decoder_get_size(1), called per frame by the multistream API", (thread_cpu_s() - t0) / n * 1e6);
#if defined(__x86_64__) || defined(__i386__)
    t0 = thread_cpu_s();
    for (int i = 0; i < n; i++) {
      unsigned a, b, c, d;
      __cpuid(0, a, b, c, d);
      sink = sink + (int)a;
    }
    report_each("one CPUID instruction (traps to the hypervisor in a VM)", (thread_cpu_s() - t0) / n * 1e6);
#endif
  }

  // The send path: model audio (24 kHz) to the caller.
  const std::vector<int16_t> m16 = model_signal(16000, ms), m24 = model_signal(24000, ms);
  for (int c : {0, 3, 5, 10})
    report("encode 16 kHz, complexity " + std::to_string(c) + " (single-stream API)", encode_single(m16, 16000, c, 0));
  report("encode 16 kHz, complexity 5 (multistream API, as gst opusenc)", encode_multistream(m16, 16000, 5));
  report("encode 24 kHz input, wideband, complexity 5 (single-stream)",
         encode_single(m24, 24000, 5, OPUS_BANDWIDTH_WIDEBAND));

  // The receive path: the caller's Opus (16 kHz audio, 20 kbit/s, FEC) to 24 kHz mono.
  bench::OpusLoop loop;
  std::string error;
  if (!bench::encode_loop(bench::speech_cycle(6000, 2000), &loop, &error)) {
    fprintf(stderr, "bench-codec: %s\n", error.c_str());
    return 1;
  }
  const int repeat = std::max(1, frames / (int)loop.frames.size());
  report("decode to 48 kHz stereo (multistream API, what opusdec does now)", decode(loop, repeat, 48000, 2, true));
  report("decode to 24 kHz mono (multistream API: opusdec with 24 kHz mono caps)",
         decode(loop, repeat, 24000, 1, true));
  report("decode to 24 kHz mono (single-stream API)", decode(loop, repeat, 24000, 1, false));
  report("decode to 16 kHz mono (single-stream API)", decode(loop, repeat, 16000, 1, false));

  // The GStreamer steps, as differences against the same source into a fakesink.
  auto src = [&](int rate, int channels) {
    return "audiotestsrc num-buffers=" + std::to_string(frames) + " samplesperbuffer=" + std::to_string(rate / 50) +
           " wave=sine ! audio/x-raw,format=S16LE,layout=interleaved,rate=" + std::to_string(rate) +
           ",channels=" + std::to_string(channels);
  };
  const std::string sink = " ! fakesink sync=false";
  const double base48s = pipeline_us(src(48000, 2) + sink, frames);
  report("audioconvert + audioresample, 48 kHz stereo -> 24 kHz mono (receive path now)",
         pipeline_us(src(48000, 2) + " ! audioconvert ! audioresample ! audio/x-raw,rate=24000,channels=1" + sink,
                     frames) - base48s);
  const double base24 = pipeline_us(src(24000, 1) + sink, frames);
  report("audioresample 24 -> 16 kHz mono (send path)",
         pipeline_us(src(24000, 1) + " ! audioresample ! audio/x-raw,rate=16000" + sink, frames) - base24);
  const double base16 = pipeline_us(src(16000, 1) + sink, frames);
  const std::string enc = " ! opusenc bitrate=20000 inband-fec=true packet-loss-percentage=10 complexity=5 "
                          "audio-type=voice frame-size=20 dtx=false";
  const std::vector<int16_t> s16 = sine(16000, ms);
  report("encode 16 kHz sine, complexity 5 (single-stream API)", encode_single(s16, 16000, 5, 0));
  report("encode 16 kHz sine, complexity 5 (multistream API)", encode_multistream(s16, 16000, 5));
  const double enc_us = pipeline_us(src(16000, 1) + enc + sink, frames) - base16;
  report("opusenc element, 16 kHz sine, complexity 5", enc_us);
  const std::string dec = " ! opusdec use-inband-fec=true plc=true ! audio/x-raw,";
  report("opusdec element, use-inband-fec, sine, to 48 kHz stereo (as now)",
         pipeline_us(src(16000, 1) + enc + dec + "rate=48000,channels=2" + sink, frames) - base16 - enc_us);
  report("opusdec element, use-inband-fec, sine, to 24 kHz mono",
         pipeline_us(src(16000, 1) + enc + dec + "rate=24000,channels=1" + sink, frames) - base16 - enc_us);

  // The single-stream elements (plugins/vbopus) at the same settings, next to the rows above:
  // vbopusenc against opusenc, vbopusdec (fed by the same opusenc) against opusdec.
  load_vbopus_from_build();
  if (gst_element_factory_find("vbopusenc") && gst_element_factory_find("vbopusdec")) {
    const std::string vbenc = " ! vbopusenc bitrate=20000 inband-fec=true packet-loss-percentage=10 complexity=5 "
                              "audio-type=voice frame-size=20 dtx=false";
    report("vbopusenc element, 16 kHz sine, complexity 5 (single-stream)",
           pipeline_us(src(16000, 1) + vbenc + sink, frames) - base16);
    const std::string vbdec = " ! vbopusdec use-inband-fec=true plc=true ! audio/x-raw,";
    report("vbopusdec element, use-inband-fec, sine, to 48 kHz mono (single-stream)",
           pipeline_us(src(16000, 1) + enc + vbdec + "rate=48000,channels=1" + sink, frames) - base16 - enc_us);
    report("vbopusdec element, use-inband-fec, sine, to 24 kHz mono (single-stream)",
           pipeline_us(src(16000, 1) + enc + vbdec + "rate=24000,channels=1" + sink, frames) - base16 - enc_us);
  } else {
    fprintf(stderr, "bench-codec: vbopusenc/vbopusdec not found (build plugins/vbopus); their rows are missing\n");
  }

  bench::JsonLine j;
  for (const Row &r : rows) j.num(r.what, r.us_per_frame);
  printf("%s\n", j.text().c_str());
  if (g_failures) fprintf(stderr, "bench-codec: %d codec calls failed\n", g_failures);
  return g_failures ? 1 : 0;
}
