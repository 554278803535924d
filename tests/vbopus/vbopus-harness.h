// Shared by the vbopus tests: static registration of the elements, pushing PCM in 20 ms buffers
// into a GstHarness and collecting what comes out (samples plus each buffer's timing).
#pragma once

#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <opus/opus.h>

#include <string>
#include <vector>

#include "audio-analysis.h"
#include "vbopusdec.h"
#include "vbopusenc.h"

namespace vbopus_test {

inline void register_elements() {
  // From the elements library, not from a plugin file (runs in the suite function: no fail_unless).
  if (!GST_ELEMENT_REGISTER(vbopusenc, nullptr) || !GST_ELEMENT_REGISTER(vbopusdec, nullptr))
    g_error("cannot register vbopusenc/vbopusdec");
}

inline std::string raw_caps(int rate, int channels = 1) {
  return "audio/x-raw,format=S16LE,layout=interleaved,rate=" + std::to_string(rate) +
         ",channels=" + std::to_string(channels);
}

// What rtpopusdepay 1.22 outputs for a mono stream.
inline const char *kOpusCaps = "audio/x-opus,channel-mapping-family=(int)0,channels=(int)1,rate=(int)48000";

// One output buffer's place in time.
struct Span {
  GstClockTime pts;
  GstClockTime duration;
  size_t samples;
  size_t offset;  // its first sample in the collected audio
};

struct Collected {
  std::vector<int16_t> samples;
  std::vector<Span> spans;
};

// A buffer of PCM with explicit timing.
inline GstBuffer *pcm_buffer(const int16_t *samples, size_t n, GstClockTime pts, int rate) {
  GstBuffer *b = gst_buffer_new_memdup(samples, n * sizeof(int16_t));
  GST_BUFFER_PTS(b) = pts;
  GST_BUFFER_DURATION(b) = gst_util_uint64_scale_int(n, GST_SECOND, rate);
  return b;
}

// Pushes `pcm` in buffers of frame_ms, the first at start.
inline void push_pcm(GstHarness *h, const std::vector<int16_t> &pcm, int rate, GstClockTime start,
                     int frame_ms = 20) {
  const size_t frame = (size_t)rate * frame_ms / 1000;
  for (size_t off = 0; off < pcm.size(); off += frame) {
    const size_t n = std::min(frame, pcm.size() - off);
    const GstClockTime pts = start + gst_util_uint64_scale_int(off, GST_SECOND, rate);
    fail_unless_equals_int(gst_harness_push(h, pcm_buffer(pcm.data() + off, n, pts, rate)), GST_FLOW_OK);
  }
}

// Appends one buffer of S16 audio to `c`.
inline void collect(Collected *c, GstBuffer *b) {
  GstMapInfo map;
  fail_unless(gst_buffer_map(b, &map, GST_MAP_READ));
  const size_t n = map.size / sizeof(int16_t);
  c->spans.push_back({GST_BUFFER_PTS(b), GST_BUFFER_DURATION(b), n, c->samples.size()});
  const auto *s = reinterpret_cast<const int16_t *>(map.data);
  c->samples.insert(c->samples.end(), s, s + n);
  gst_buffer_unmap(b, &map);
}

// Every buffer the harness has received so far.
inline void pull_all(GstHarness *h, Collected *c) {
  while (GstBuffer *b = gst_harness_try_pull(h)) {
    collect(c, b);
    gst_buffer_unref(b);
  }
}

// The output's timeline must be whole: each buffer starts where the previous one ended (± 1
// sample's rounding) and lasts as long as its samples.
inline void check_contiguous(const Collected &c, int rate, const char *what) {
  for (size_t i = 0; i < c.spans.size(); i++) {
    const Span &s = c.spans[i];
    fail_unless(GST_CLOCK_TIME_IS_VALID(s.pts), "%s: buffer %zu has no PTS", what, i);
    const GstClockTime expected = gst_util_uint64_scale_int(s.samples, GST_SECOND, rate);
    fail_unless(s.duration + GST_USECOND * 30 >= expected && s.duration <= expected + GST_USECOND * 30,
                "%s: buffer %zu lasts %" GST_TIME_FORMAT " for %zu samples", what, i, GST_TIME_ARGS(s.duration),
                s.samples);
    if (i == 0) continue;
    const Span &p = c.spans[i - 1];
    const GstClockTimeDiff step = GST_CLOCK_DIFF(p.pts + p.duration, s.pts);
    fail_unless(step > -(GstClockTimeDiff)(30 * GST_USECOND) && step < (GstClockTimeDiff)(30 * GST_USECOND),
                "%s: buffer %zu starts at %" GST_TIME_FORMAT ", %" G_GINT64_FORMAT " ns after the previous end",
                what, i, GST_TIME_ARGS(s.pts), step);
  }
}

// Encoded packets of `pcm` (20 ms frames) from vbopusenc with the given properties (gst-launch
// syntax, e.g. "bitrate=20000 inband-fec=true").
inline std::vector<GstBuffer *> encode(const std::vector<int16_t> &pcm, int rate, const std::string &props,
                                       GstClockTime start = 0) {
  GstHarness *h = gst_harness_new_parse(("vbopusenc " + props).c_str());
  gst_harness_set_src_caps_str(h, raw_caps(rate).c_str());
  push_pcm(h, pcm, rate, start);
  std::vector<GstBuffer *> packets;
  while (GstBuffer *b = gst_harness_try_pull(h)) packets.push_back(b);
  gst_harness_teardown(h);
  return packets;
}

inline void free_packets(std::vector<GstBuffer *> *packets) {
  for (GstBuffer *b : *packets) gst_buffer_unref(b);
  packets->clear();
}

// A decoder harness whose output is S16 mono at `rate`.
inline GstHarness *new_decoder(int rate, const std::string &props = "") {
  GstHarness *h = gst_harness_new_parse(("vbopusdec " + props).c_str());
  gst_harness_set_src_caps_str(h, kOpusCaps);
  gst_harness_set_sink_caps_str(h, raw_caps(rate).c_str());
  return h;
}

// RMS of the difference of two equally long stretches, in dBFS.
inline double error_dbfs(const int16_t *a, const int16_t *b, size_t n) {
  std::vector<int16_t> d(n);
  for (size_t i = 0; i < n; i++) d[i] = (int16_t)std::max(-32768, std::min(32767, (int)a[i] - (int)b[i]));
  return audio_test::rms_dbfs(d);
}

}  // namespace vbopus_test
