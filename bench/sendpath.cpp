// bench-sendpath: how long voicebridge's send chain holds model audio before it leaves for the
// caller, in isolation, for the chain as it was built until commit 72cf871 and for the alternatives,
// the last of which is the chain as built since (with opusenc standing for vbopusenc: same framing,
// same reported latency).
//
// The old chain of app/call.cpp: openairealtimesrc (live, 20 ms buffers, each taken at its running
// time, reporting 20 ms of latency) ! audioresample ! 16 kHz ! opusenc ! rtpopuspay, into webrtcbin, whose
// send path starts with `clocksync sync=true` (it holds each buffer until its running time plus the
// upstream latency). Here an appsrc plays the src (same timing, same latency report) and a clocksync
// the webrtcbin input. Every 200 ms a buffer starts with the onset of a tone; the figure is the time
// from the moment the src produced that buffer to the moment a caller would hear the onset if the
// packet reached it at once (the packet leaving clocksync + the onset's place in the decoded packet):
// the model→caller latency of bench/latency.cpp without the src's period phase and the network.
// Two things added up in the old chain:
//   - audioresample outputs slightly less than 20 ms for its first buffer (filter delay), so opusenc's
//     20 ms frames straddle two src buffers and every frame waits for the next buffer;
//   - clocksync adds the src's reported 20 ms to buffers the src has already waited for.
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <gst/rtp/gstrtpbuffer.h>
#include <opus/opus.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "bench-util.h"

namespace {

constexpr int kOnsetEvery = 10;  // buffers: an onset every 200 ms, a 60 ms tone, then silence
constexpr int kToneBuffers = 3;

struct Probe {
  GstElement *pipeline = nullptr;
  OpusDecoder *decoder = nullptr;  // 48 kHz mono: the caller's ear
  std::vector<GstClockTime> onset_pts;  // running times at which the src produced onset buffers
  size_t next_onset = 0;
  int64_t quiet = 1 << 30;          // decoded samples since the last loud one
  std::vector<double> latency_ms;
};

GstPadProbeReturn on_packet(GstPad *, GstPadProbeInfo *info, gpointer data) {
  auto *p = static_cast<Probe *>(data);
  GstClock *clock = gst_element_get_clock(p->pipeline);
  if (!clock) return GST_PAD_PROBE_OK;
  const GstClockTime now = gst_clock_get_time(clock) - gst_element_get_base_time(p->pipeline);
  gst_object_unref(clock);
  GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;
  if (!gst_rtp_buffer_map(GST_PAD_PROBE_INFO_BUFFER(info), GST_MAP_READ, &rtp)) return GST_PAD_PROBE_OK;
  opus_int16 pcm[5760];
  const int n = opus_decode(p->decoder, static_cast<const unsigned char *>(gst_rtp_buffer_get_payload(&rtp)),
                            (opus_int32)gst_rtp_buffer_get_payload_len(&rtp), pcm, 5760, 0);
  gst_rtp_buffer_unmap(&rtp);
  for (int i = 0; i < n; i++) {
    if (std::abs((int)pcm[i]) < 1036) {  // -30 dBFS
      p->quiet++;
      continue;
    }
    if (p->quiet >= 48000 / 10 && p->next_onset < p->onset_pts.size()) {
      const double heard = (double)now + i * 1e9 / 48000;
      // The onset buffer this is: the latest produced before it was heard.
      size_t k = p->next_onset;
      while (k + 1 < p->onset_pts.size() && (double)p->onset_pts[k + 1] <= heard) k++;
      p->latency_ms.push_back((heard - (double)p->onset_pts[k]) / 1e6);
      p->next_onset = k + 1;
    }
    p->quiet = 0;
  }
  return GST_PAD_PROBE_OK;
}

// Runs `frames` 20 ms buffers through the chain; returns src buffer → onset heard, in ms.
bench::Distribution run(int src_latency_ms, bool resample, int frames) {
  const std::string encoder_input = resample ? "audioresample ! audio/x-raw,rate=16000,channels=1 ! " : "";
  const std::string desc =
      "appsrc name=src is-live=true format=time ! " + encoder_input +
      "opusenc bitrate=20000 inband-fec=true packet-loss-percentage=10 complexity=5 audio-type=voice frame-size=20 "
      "dtx=false bandwidth=wideband ! rtpopuspay ! clocksync name=sync sync=true ! fakesink sync=false async=false";
  Probe probe;
  int opus_err = 0;
  probe.decoder = opus_decoder_create(48000, 1, &opus_err);
  GError *err = nullptr;
  probe.pipeline = gst_parse_launch(desc.c_str(), &err);
  if (!probe.pipeline) {
    fprintf(stderr, "bench-sendpath: %s\n", err ? err->message : "?");
    g_clear_error(&err);
    return {};
  }
  GstElement *src = gst_bin_get_by_name(GST_BIN(probe.pipeline), "src");
  GstElement *sync = gst_bin_get_by_name(GST_BIN(probe.pipeline), "sync");
  GstCaps *caps = gst_caps_from_string("audio/x-raw,format=S16LE,layout=interleaved,rate=24000,channels=1");
  g_object_set(src, "min-latency", (gint64)src_latency_ms * GST_MSECOND, "max-latency",
               (gint64)src_latency_ms * GST_MSECOND, "caps", caps, nullptr);
  gst_caps_unref(caps);
  GstPad *pad = gst_element_get_static_pad(sync, "src");
  gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, on_packet, &probe, nullptr);
  gst_object_unref(pad);
  gst_element_set_state(probe.pipeline, GST_STATE_PLAYING);
  gst_element_get_state(probe.pipeline, nullptr, nullptr, 5 * GST_SECOND);
  GstClock *clock = gst_element_get_clock(probe.pipeline);
  const GstClockTime base = gst_element_get_base_time(probe.pipeline);
  const GstClockTime t0 = gst_clock_get_time(clock) - base;
  for (int k = 0; k < frames; k++) {
    // Like openairealtimesrc: wait until the buffer's running time, then produce it.
    const GstClockTime pts = t0 + (GstClockTime)k * 20 * GST_MSECOND;
    GstClockID id = gst_clock_new_single_shot_id(clock, base + pts);
    gst_clock_id_wait(id, nullptr);
    gst_clock_id_unref(id);
    GstBuffer *b = gst_buffer_new_allocate(nullptr, 960, nullptr);
    GstMapInfo map;
    gst_buffer_map(b, &map, GST_MAP_WRITE);
    auto *s16 = reinterpret_cast<int16_t *>(map.data);
    const int phase = k % kOnsetEvery;
    for (int i = 0; i < 480; i++)  // a 440 Hz tone at -12 dBFS starting on the buffer's first sample
      s16[i] = phase < kToneBuffers && k >= kOnsetEvery
                   ? (int16_t)std::lround(8200 * std::cos(2 * M_PI * 440 * (phase * 480 + i) / 24000.0))
                   : 0;
    gst_buffer_unmap(b, &map);
    if (phase == 0 && k >= kOnsetEvery) probe.onset_pts.push_back(pts);
    GST_BUFFER_PTS(b) = pts;
    GST_BUFFER_DURATION(b) = 20 * GST_MSECOND;
    gst_app_src_push_buffer(GST_APP_SRC(src), b);
  }
  g_usleep(200 * 1000);  // the last packets
  gst_object_unref(clock);
  gst_element_set_state(probe.pipeline, GST_STATE_NULL);
  gst_object_unref(sync);
  gst_object_unref(src);
  gst_object_unref(probe.pipeline);
  opus_decoder_destroy(probe.decoder);
  if (probe.latency_ms.size() + 2 < probe.onset_pts.size())
    fprintf(stderr, "bench-sendpath: only %zu of %zu onsets heard\n", probe.latency_ms.size(), probe.onset_pts.size());
  return bench::distribution(probe.latency_ms);
}

}  // namespace

int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  const int frames = 500;  // 10 s per configuration: 49 onsets
  struct Config {
    const char *what;
    int latency;
    bool resample;
  } configs[] = {
      {"until 72cf871: src reports 20 ms, audioresample 24->16 kHz, opusenc 16 kHz", 20, true},
      {"src reports 20 ms, opusenc fed 24 kHz (bandwidth=wideband), no resampler", 20, false},
      {"src reports 0 ms, audioresample 24->16 kHz, opusenc 16 kHz", 0, true},
      {"as built now: src reports 0 ms, encoder fed 24 kHz, no resampler", 0, false},
  };
  bench::JsonLine j;
  for (const Config &c : configs) {
    bench::Distribution d = run(c.latency, c.resample, frames);
    fprintf(stderr, "bench-sendpath: %-74s %s\n", c.what, bench::describe(d).c_str());
    j.raw(c.what, bench::to_json(d));
  }
  printf("%s\n", j.text().c_str());
  return 0;
}
