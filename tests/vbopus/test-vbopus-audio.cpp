// The audio through the vbopus elements: tones keep their frequency, level, length and timing
// through vbopusenc → vbopusdec, through RTP (rtpopuspay → rtpopusdepay), and across GStreamer's
// opusenc/opusdec both ways; a lost packet is recovered better with FEC than without.
#include "vbopus-harness.h"

using namespace vbopus_test;

namespace {

const GstClockTime kStart = GST_SECOND;  // not 0, so that "starts at its input's time" means something

// The steady part of a tone (its first and last 60 ms cut: codec delay and fades).
struct Steady {
  const int16_t *data;
  size_t n;
};
Steady steady(const std::vector<int16_t> &s, int rate) {
  const size_t cut = (size_t)rate * 60 / 1000;
  fail_unless(s.size() > 3 * cut, "only %zu samples", s.size());
  return {s.data() + cut, s.size() - 2 * cut};
}

// Checks that `out` is the 1 s tone `hz` at `rate` that went in (peak -12 dBFS: -15 dBFS RMS).
void check_tone(const std::vector<int16_t> &out, double hz, int rate, const std::string &what) {
  const Steady s = steady(out, rate);
  const double f = audio_test::dominant_frequency(s.data, s.n, rate, 50, std::min(4000.0, rate / 2.0 - 100));
  const double zc = audio_test::zero_crossing_frequency(s.data, s.n, rate);
  const double rms = audio_test::rms_dbfs(s.data, s.n);
  const double purity = audio_test::tone_purity(s.data, s.n, hz, rate);
  GST_INFO("%s: %.1f Hz (zero crossings %.1f), %.2f dBFS RMS, purity %.3f", what.c_str(), f, zc, rms, purity);
  fail_unless(std::abs(f - hz) < 2, "%s: dominant %.1f Hz, want %.0f", what.c_str(), f, hz);
  fail_unless(std::abs(zc - hz) < 2, "%s: zero crossings say %.1f Hz, want %.0f", what.c_str(), zc, hz);
  fail_unless(std::abs(rms - -15.05) < 2, "%s: %.2f dBFS RMS, want -15", what.c_str(), rms);
  fail_unless(purity > 0.9, "%s: tone purity %.3f", what.c_str(), purity);
}

// Runs 1 s of `hz` at `rate` through the harness pipeline `launch` (raw in, raw out at `rate`).
Collected run_tone(const std::string &launch, double hz, int rate, int out_rate) {
  GstHarness *h = gst_harness_new_parse(launch.c_str());
  gst_harness_set_src_caps_str(h, raw_caps(rate).c_str());
  gst_harness_set_sink_caps_str(h, raw_caps(out_rate).c_str());
  push_pcm(h, audio_test::make_tone(hz, 1000, -12, rate), rate, kStart);
  fail_unless(gst_harness_push_event(h, gst_event_new_eos()));
  Collected c;
  pull_all(h, &c);
  gst_harness_teardown(h);
  fail_unless(!c.spans.empty(), "%s: no output", launch.c_str());
  return c;
}

}  // namespace

GST_START_TEST(test_tone_through_enc_and_dec)
{
  for (int rate : {16000, 24000, 48000}) {
    for (double hz : {440.0, 1000.0}) {
      const std::string what = std::to_string(rate) + " Hz, " + std::to_string((int)hz) + " Hz tone";
      Collected c = run_tone("vbopusenc bitrate=32000 ! vbopusdec", hz, rate, rate);
      check_tone(c.samples, hz, rate, what);
      // No added delay in the timeline: the first output starts at the first input, and the output
      // lasts exactly as long as the input, in one 20 ms buffer per packet.
      fail_unless_equals_uint64(c.spans[0].pts, kStart);
      fail_unless_equals_int(c.spans.size(), 50);
      fail_unless_equals_int(c.samples.size(), rate);
      check_contiguous(c, rate, what.c_str());
    }
  }
}
GST_END_TEST;

GST_START_TEST(test_tone_through_rtp)
{
  // As in a call: the send chain's payloader, the receive chain's depayloader, and the decoder
  // at the model's 24 kHz from 16 kHz audio.
  Collected c = run_tone("vbopusenc bitrate=20000 inband-fec=true packet-loss-percentage=10 bandwidth=wideband ! "
                         "rtpopuspay ! rtpopusdepay ! vbopusdec",
                         440, 16000, 24000);
  check_tone(c.samples, 440, 24000, "through RTP");
  fail_unless_equals_uint64(c.spans[0].pts, kStart);
  fail_unless_equals_int(c.samples.size(), 24000);
  check_contiguous(c, 24000, "through RTP");
  c = run_tone("vbopusenc ! rtpopuspay ! rtpopusdepay ! vbopusdec", 1000, 24000, 48000);
  check_tone(c.samples, 1000, 48000, "through RTP, 24 kHz to 48 kHz");
}
GST_END_TEST;

GST_START_TEST(test_interop_with_gstreamer_opus)
{
  // Our encoder, their decoder (over RTP, as a caller would decode us, and directly).
  Collected c = run_tone("vbopusenc bitrate=24000 ! rtpopuspay ! rtpopusdepay ! opusdec", 440, 24000, 24000);
  check_tone(c.samples, 440, 24000, "vbopusenc → RTP → opusdec");
  c = run_tone("vbopusenc bitrate=24000 ! opusdec", 1000, 16000, 16000);
  check_tone(c.samples, 1000, 16000, "vbopusenc → opusdec");
  // Their encoder, our decoder (over RTP, as we decode a caller, and directly).
  c = run_tone("opusenc bitrate=24000 ! rtpopuspay ! rtpopusdepay ! vbopusdec", 440, 16000, 24000);
  check_tone(c.samples, 440, 24000, "opusenc → RTP → vbopusdec");
  // opusenc's first packet stands for 20 ms minus its lookahead, which RTP cannot say: from the
  // second packet on, the timeline is whole.
  c.spans.erase(c.spans.begin());
  check_contiguous(c, 24000, "opusenc → RTP → vbopusdec");
  c = run_tone("opusenc bitrate=24000 ! vbopusdec", 1000, 48000, 48000);
  check_tone(c.samples, 1000, 48000, "opusenc → vbopusdec");
  // opusenc marks its pre-skip and end padding; we honour them, so the length is the input's.
  fail_unless_equals_int(c.samples.size(), 48000);
}
GST_END_TEST;

namespace {

// A speech-like test signal: syllables of 200 ms (160 ms voiced, 40 ms pause over a faint noise
// floor), each with its own pitch glide and vowel (two formants over the harmonics). Steady
// synthetic tones will not do: SILK's VAD soon takes them for noise and stops sending FEC.
std::vector<int16_t> syllables(double ms, int rate) {
  std::vector<int16_t> out(audio_test::ms_to_samples(ms, rate));
  double phase = 0;
  guint32 seed = 1;
  for (size_t i = 0; i < out.size(); i++) {
    const double t = (double)i / rate;
    const int syl = (int)(t / 0.2);
    const double ts = t - syl * 0.2;
    const guint32 h = (guint32)syl * 2654435761u;
    const double r1 = (h % 1000) / 1000.0, r2 = ((h / 1000) % 1000) / 1000.0;
    const double f0 = 110 + 90 * r1 + 40 * std::sin(2 * M_PI * ts / 0.32);
    phase += 2 * M_PI * f0 / rate;
    const double formant1 = 300 + 500 * r2, formant2 = 900 + 1400 * r1;
    double v = 0;
    for (int k = 1; k * f0 < 3800; k++) {
      const double fk = k * f0;
      const double gain = std::exp(-std::pow((fk - formant1) / 150, 2)) +
                          0.5 * std::exp(-std::pow((fk - formant2) / 250, 2)) + 0.05;
      v += gain * std::sin(k * phase);
    }
    const double envelope = ts < 0.16 ? std::sin(M_PI * ts / 0.16) : 0;
    seed = seed * 1103515245u + 12345u;
    const double noise = ((seed >> 16) & 0x7fff) / 32768.0 - 0.5;
    out[i] = (int16_t)std::lround(std::max(-32000.0, std::min(32000.0, 4000 * envelope * v + 30 * noise)));
  }
  return out;
}

// Decodes RTP `packets` with rtpopusdepay ! vbopusdec at `rate`, packet `lost` replaced by what
// rtpjitterbuffer do-lost sends (a GstRTPPacketLost event, which the depayloader turns into a GAP).
Collected decode_rtp(const std::vector<GstBuffer *> &packets, int lost, bool fec, int rate) {
  GstHarness *h = gst_harness_new_parse(
      (std::string("rtpopusdepay ! vbopusdec use-inband-fec=") + (fec ? "true" : "false")).c_str());
  gst_harness_set_src_caps_str(h, "application/x-rtp,media=audio,clock-rate=48000,encoding-name=OPUS,payload=96");
  gst_harness_set_sink_caps_str(h, raw_caps(rate).c_str());
  for (int i = 0; i < (int)packets.size(); i++) {
    if (i == lost) {
      GstStructure *s = gst_structure_new("GstRTPPacketLost", "seqnum", G_TYPE_UINT, (guint)i, "timestamp",
                                          G_TYPE_UINT64, (guint64)GST_BUFFER_PTS(packets[i]), "duration",
                                          G_TYPE_UINT64, (guint64)(20 * GST_MSECOND), "retry", G_TYPE_UINT, 0u,
                                          nullptr);
      fail_unless(gst_harness_push_event(h, gst_event_new_custom(GST_EVENT_CUSTOM_DOWNSTREAM, s)));
      continue;
    }
    GstBuffer *b = gst_buffer_copy(packets[i]);
    if (i == lost + 1) GST_BUFFER_FLAG_SET(b, GST_BUFFER_FLAG_DISCONT);
    fail_unless_equals_int(gst_harness_push(h, b), GST_FLOW_OK);
  }
  Collected c;
  pull_all(h, &c);
  gst_harness_teardown(h);
  return c;
}

}  // namespace

GST_START_TEST(test_lost_packet_recovered_by_fec)
{
  const int rate = 16000;
  const std::vector<int16_t> input = syllables(2000, rate);
  // RTP packets as the app sends them (20 kbit/s, FEC for 10 % loss).
  GstHarness *enc = gst_harness_new_parse(
      "vbopusenc bitrate=20000 inband-fec=true packet-loss-percentage=10 bandwidth=wideband ! rtpopuspay");
  gst_harness_set_src_caps_str(enc, raw_caps(rate).c_str());
  push_pcm(enc, input, rate, kStart);
  std::vector<GstBuffer *> packets;
  while (GstBuffer *b = gst_harness_try_pull(enc)) packets.push_back(b);
  gst_harness_teardown(enc);
  fail_unless_equals_int(packets.size(), 100);

  // Several losses in voiced stretches (each run on its own), error energy in the lost 20 ms
  // against the decode without loss.
  const Collected ref = decode_rtp(packets, -1, true, rate);
  fail_unless_equals_int(ref.samples.size(), input.size());
  int fec_better = 0, runs = 0;
  double sum_fec = 0, sum_plc = 0;
  for (int lost = 3; lost < 98; lost += 4) {
    const Collected with = decode_rtp(packets, lost, true, rate);
    const Collected without = decode_rtp(packets, lost, false, rate);
    for (const Collected *c : {&with, &without}) {
      // Never a hole: as many samples as without loss, contiguous timestamps, the gap at its place.
      fail_unless_equals_int(c->samples.size(), ref.samples.size());
      check_contiguous(*c, rate, "loss");
      fail_unless_equals_int(c->spans.size(), 100);
      fail_unless_equals_uint64(c->spans[lost].pts, ref.spans[lost].pts);
      fail_unless_equals_uint64(c->spans[lost].duration, 20 * GST_MSECOND);
    }
    const size_t at = ref.spans[lost].offset, n = ref.spans[lost].samples;
    const double level = audio_test::rms_dbfs(&ref.samples[at], n);
    const double e_fec = error_dbfs(&with.samples[at], &ref.samples[at], n);
    const double e_plc = error_dbfs(&without.samples[at], &ref.samples[at], n);
    GST_INFO("lost packet %d (%.1f dBFS): error with FEC %.1f dB, with PLC only %.1f dB", lost, level, e_fec, e_plc);
    if (level < -40) continue;  // a silent stretch says nothing
    runs++;
    fec_better += e_fec < e_plc;
    sum_fec += e_fec - level;
    sum_plc += e_plc - level;
  }
  fail_unless(runs >= 15, "only %d voiced losses", runs);
  fail_unless(fec_better == runs, "FEC beat PLC in %d of %d losses", fec_better, runs);
  // And by a margin: on average at least 6 dB less error.
  fail_unless(sum_fec / runs < sum_plc / runs - 6, "mean error relative to the signal: FEC %.1f dB, PLC %.1f dB",
              sum_fec / runs, sum_plc / runs);
  free_packets(&packets);
}
GST_END_TEST;

static Suite *vbopus_audio_suite(void) {
  register_elements();
  Suite *s = suite_create("vbopus-audio");
  TCase *tc = tcase_create("audio");
  tcase_set_timeout(tc, 100);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_tone_through_enc_and_dec);
  tcase_add_test(tc, test_tone_through_rtp);
  tcase_add_test(tc, test_interop_with_gstreamer_opus);
  tcase_add_test(tc, test_lost_packet_recovered_by_fec);
  return s;
}

GST_CHECK_MAIN(vbopus_audio);
