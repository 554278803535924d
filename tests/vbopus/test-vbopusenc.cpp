// vbopusenc on its own: caps (as opusenc's for rtpopuspay), properties, packet timing, latency,
// frame sizes and the bandwidth limit.
#include "vbopus-harness.h"

using namespace vbopus_test;

static gboolean sink_accepts(GstElement *e, const char *caps_str) {
  GstPad *pad = gst_element_get_static_pad(e, "sink");
  GstCaps *caps = gst_caps_from_string(caps_str);
  const gboolean ok = gst_pad_query_accept_caps(pad, caps);
  gst_caps_unref(caps);
  gst_object_unref(pad);
  return ok;
}

GST_START_TEST(test_enc_accepts_only_mono_s16_at_opus_rates)
{
  GstElement *e = gst_element_factory_make("vbopusenc", nullptr);
  fail_unless(e != nullptr);
  for (int rate : {8000, 12000, 16000, 24000, 48000}) fail_unless(sink_accepts(e, raw_caps(rate).c_str()), "%d", rate);
  fail_if(sink_accepts(e, raw_caps(44100).c_str()));
  fail_if(sink_accepts(e, raw_caps(16000, 2).c_str()));
  fail_if(sink_accepts(e, "audio/x-raw,format=F32LE,layout=interleaved,rate=16000,channels=1"));
  fail_if(sink_accepts(e, "audio/x-raw,format=S16BE,layout=interleaved,rate=16000,channels=1"));
  fail_if(sink_accepts(e, kOpusCaps));
  gst_object_unref(e);

  // And a pipeline with such caps cannot be linked.
  GstElement *src = gst_element_factory_make("audiotestsrc", nullptr);
  GstElement *enc = gst_element_factory_make("vbopusenc", nullptr);
  GstElement *bin = gst_pipeline_new(nullptr);
  gst_bin_add_many(GST_BIN(bin), src, enc, nullptr);
  GstCaps *stereo = gst_caps_from_string(raw_caps(48000, 2).c_str());
  fail_if(gst_element_link_filtered(src, enc, stereo));
  gst_caps_unref(stereo);
  gst_object_unref(bin);
}
GST_END_TEST;

GST_START_TEST(test_enc_output_caps_like_opusenc)
{
  // opusenc 1.22 for mono 16 kHz: audio/x-opus, rate=16000 (the input rate, which rtpopuspay turns
  // into sprop-maxcapturerate), channels=1, channel-mapping-family=0 (+ header fields we leave out).
  GstHarness *h = gst_harness_new("vbopusenc");
  gst_harness_set_src_caps_str(h, raw_caps(16000).c_str());
  push_pcm(h, audio_test::make_tone(440, 40, -12, 16000), 16000, 0);
  GstCaps *caps = gst_pad_get_current_caps(h->sinkpad);
  fail_unless(caps != nullptr);
  GstCaps *expected = gst_caps_from_string("audio/x-opus,channel-mapping-family=(int)0,channels=(int)1,rate=(int)16000");
  fail_unless(gst_caps_is_equal(caps, expected), "caps %" GST_PTR_FORMAT, caps);
  gst_caps_unref(expected);
  gst_caps_unref(caps);
  gst_harness_teardown(h);

  // rtpopuspay takes them and advertises the capture rate, as with opusenc.
  h = gst_harness_new_parse("vbopusenc ! rtpopuspay");
  gst_harness_set_src_caps_str(h, raw_caps(16000).c_str());
  push_pcm(h, audio_test::make_tone(440, 40, -12, 16000), 16000, 0);
  caps = gst_pad_get_current_caps(h->sinkpad);
  fail_unless(caps != nullptr);
  GstStructure *s = gst_caps_get_structure(caps, 0);
  fail_unless_equals_string(gst_structure_get_string(s, "encoding-name"), "OPUS");
  fail_unless_equals_string(gst_structure_get_string(s, "sprop-maxcapturerate"), "16000");
  fail_unless_equals_string(gst_structure_get_string(s, "sprop-stereo"), "0");
  gst_caps_unref(caps);
  fail_unless_equals_int(gst_harness_buffers_received(h), 2);  // two packets, no header buffers
  gst_harness_teardown(h);
}
GST_END_TEST;

GST_START_TEST(test_enc_packet_timestamps_follow_input)
{
  // One packet per 20 ms, PTS = its input's PTS, duration 20 ms; no headers, no lookahead shift.
  const GstClockTime start = 3 * GST_SECOND;
  std::vector<GstBuffer *> packets = encode(audio_test::make_tone(440, 200, -12, 24000), 24000, "", start);
  fail_unless_equals_int(packets.size(), 10);
  for (size_t i = 0; i < packets.size(); i++) {
    fail_unless_equals_uint64(GST_BUFFER_PTS(packets[i]), start + i * 20 * GST_MSECOND);
    fail_unless_equals_uint64(GST_BUFFER_DURATION(packets[i]), 20 * GST_MSECOND);
    GstMapInfo map;
    gst_buffer_map(packets[i], &map, GST_MAP_READ);
    // A 20 ms single-stream packet: 960 samples at 48 kHz.
    fail_unless_equals_int(opus_packet_get_nb_samples(map.data, (opus_int32)map.size, 48000), 960);
    fail_unless_equals_int(opus_packet_get_nb_channels(map.data), 1);
    gst_buffer_unmap(packets[i], &map);
  }
  free_packets(&packets);
}
GST_END_TEST;

GST_START_TEST(test_enc_frame_sizes)
{
  for (int ms : {10, 20, 40, 60}) {
    std::vector<GstBuffer *> packets =
        encode(audio_test::make_tone(440, 240, -12, 48000), 48000, "frame-size=" + std::to_string(ms));
    fail_unless_equals_int(packets.size(), 240 / ms);
    for (GstBuffer *p : packets) {
      fail_unless_equals_uint64(GST_BUFFER_DURATION(p), (guint64)ms * GST_MSECOND);
      GstMapInfo map;
      gst_buffer_map(p, &map, GST_MAP_READ);
      fail_unless_equals_int(opus_packet_get_nb_samples(map.data, (opus_int32)map.size, 48000), ms * 48);
      gst_buffer_unmap(p, &map);
    }
    free_packets(&packets);
  }
}
GST_END_TEST;

GST_START_TEST(test_enc_reports_one_frame_of_latency)
{
  GstHarness *h = gst_harness_new("vbopusenc");
  gst_util_set_object_arg(G_OBJECT(h->element), "frame-size", "40");
  gst_harness_set_src_caps_str(h, raw_caps(16000).c_str());
  push_pcm(h, audio_test::make_tone(440, 40, -12, 16000), 16000, 0);
  GstClockTime min = 0, max = 0;
  gst_audio_encoder_get_latency(GST_AUDIO_ENCODER(h->element), &min, &max);
  fail_unless_equals_uint64(min, 40 * GST_MSECOND);
  fail_unless_equals_uint64(max, 40 * GST_MSECOND);
  gst_harness_teardown(h);
}
GST_END_TEST;

// Level of hz in the decoded output of vbopusenc `props` for `input` at `rate`, skipping 100 ms.
static double decoded_level(const std::vector<int16_t> &input, int rate, const std::string &props, double hz) {
  GstHarness *h = gst_harness_new_parse(("vbopusenc " + props + " ! vbopusdec").c_str());
  gst_harness_set_src_caps_str(h, raw_caps(rate).c_str());
  gst_harness_set_sink_caps_str(h, raw_caps(rate).c_str());
  push_pcm(h, input, rate, 0);
  Collected c;
  pull_all(h, &c);
  gst_harness_teardown(h);
  const size_t skip = (size_t)rate / 10;
  fail_unless(c.samples.size() > skip * 3);
  return audio_test::goertzel_dbfs(c.samples.data() + skip, c.samples.size() - skip, hz, rate);
}

GST_START_TEST(test_enc_bandwidth_wideband_cuts_above_8khz)
{
  // 1 kHz + 10 kHz at 24 kHz input: wideband (8 kHz audio bandwidth) must drop the 10 kHz tone,
  // superwideband (12 kHz) must keep it (so this test can fail).
  const int rate = 24000;
  const std::vector<int16_t> input =
      audio_test::mix(audio_test::make_tone(1000, 1000, -12, rate), audio_test::make_tone(10000, 1000, -12, rate));
  const std::string props = "bitrate=64000 audio-type=generic ";
  const double wide_1k = decoded_level(input, rate, props + "bandwidth=wideband", 1000);
  const double wide_10k = decoded_level(input, rate, props + "bandwidth=wideband", 10000);
  const double swb_1k = decoded_level(input, rate, props + "bandwidth=superwideband", 1000);
  const double swb_10k = decoded_level(input, rate, props + "bandwidth=superwideband", 10000);
  GST_INFO("wideband: 1 kHz %.1f, 10 kHz %.1f dBFS; superwideband: %.1f, %.1f", wide_1k, wide_10k, swb_1k, swb_10k);
  fail_unless(wide_1k > -15 && wide_1k < -9, "wideband 1 kHz at %.1f dBFS", wide_1k);
  fail_unless(wide_10k < wide_1k - 40, "wideband keeps 10 kHz at %.1f dBFS (1 kHz %.1f)", wide_10k, wide_1k);
  fail_unless(swb_10k > swb_1k - 10, "superwideband loses 10 kHz: %.1f dBFS (1 kHz %.1f)", swb_10k, swb_1k);
}
GST_END_TEST;

GST_START_TEST(test_enc_properties_round_trip)
{
  GstElement *e = gst_element_factory_make("vbopusenc", nullptr);
  // Defaults, as opusenc's except audio-type (voice: this element is for calls).
  gint bitrate, complexity, loss;
  gboolean fec, dtx;
  g_object_get(e, "bitrate", &bitrate, "complexity", &complexity, "packet-loss-percentage", &loss, "inband-fec", &fec,
               "dtx", &dtx, nullptr);
  fail_unless_equals_int(bitrate, 64000);
  fail_unless_equals_int(complexity, 10);
  fail_unless_equals_int(loss, 0);
  fail_if(fec);
  fail_if(dtx);
  // The way app/call.cpp sets opusenc: g_object_set for numbers, strings for the enums.
  g_object_set(e, "bitrate", 20000, "inband-fec", TRUE, "packet-loss-percentage", 10, "complexity", 5, "dtx", TRUE,
               nullptr);
  const std::vector<std::pair<const char *, const char *>> enums = {
      {"audio-type", "generic"}, {"audio-type", "voice"}, {"frame-size", "60"}, {"frame-size", "10"},
      {"bandwidth", "narrowband"}, {"bandwidth", "mediumband"}, {"bandwidth", "superwideband"},
      {"bandwidth", "fullband"}, {"bandwidth", "auto"}, {"bandwidth", "wideband"}};
  for (const auto &[name, value] : enums) {
    gst_util_set_object_arg(G_OBJECT(e), name, value);
    GValue v = G_VALUE_INIT;
    g_value_init(&v, G_PARAM_SPEC_VALUE_TYPE(g_object_class_find_property(G_OBJECT_GET_CLASS(e), name)));
    g_object_get_property(G_OBJECT(e), name, &v);
    gchar *s = gst_value_serialize(&v);
    fail_unless_equals_string(s, value);
    g_free(s);
    g_value_unset(&v);
  }
  g_object_get(e, "bitrate", &bitrate, "complexity", &complexity, "packet-loss-percentage", &loss, "inband-fec", &fec,
               "dtx", &dtx, nullptr);
  fail_unless_equals_int(bitrate, 20000);
  fail_unless_equals_int(complexity, 5);
  fail_unless_equals_int(loss, 10);
  fail_unless(fec);
  fail_unless(dtx);
  gst_object_unref(e);
}
GST_END_TEST;

GST_START_TEST(test_enc_bitrate_is_applied)
{
  // 1 s of noise-like tone mix at 12 and 48 kbit/s: the packets' total size follows the bitrate.
  const std::vector<int16_t> input = audio_test::make_noise(1000, -12, 7, 48000);
  size_t sizes[2] = {0, 0};
  const int rates[2] = {12000, 48000};
  for (int i = 0; i < 2; i++) {
    std::vector<GstBuffer *> packets = encode(input, 48000, "bitrate=" + std::to_string(rates[i]));
    for (GstBuffer *p : packets) sizes[i] += gst_buffer_get_size(p);
    free_packets(&packets);
  }
  // bytes per second → bit/s, within 25 % (VBR)
  for (int i = 0; i < 2; i++)
    fail_unless(sizes[i] * 8 > rates[i] * 0.75 && sizes[i] * 8 < rates[i] * 1.25, "%d bit/s gave %zu bytes in 1 s",
                rates[i], sizes[i]);
}
GST_END_TEST;

GST_START_TEST(test_enc_partial_last_frame)
{
  // 50 ms of audio in 20 ms frames, then EOS: three packets, the last one standing for 10 ms.
  GstHarness *h = gst_harness_new("vbopusenc");
  gst_harness_set_src_caps_str(h, raw_caps(16000).c_str());
  push_pcm(h, audio_test::make_tone(440, 50, -12, 16000), 16000, 0, 50);
  fail_unless(gst_harness_push_event(h, gst_event_new_eos()));
  fail_unless_equals_int(gst_harness_buffers_received(h), 3);
  GstClockTime total = 0;
  for (int i = 0; i < 3; i++) {
    GstBuffer *b = gst_harness_pull(h);
    total += GST_BUFFER_DURATION(b);
    gst_buffer_unref(b);
  }
  fail_unless_equals_uint64(total, 50 * GST_MSECOND);
  gst_harness_teardown(h);
}
GST_END_TEST;

static Suite *vbopusenc_suite(void) {
  register_elements();
  Suite *s = suite_create("vbopusenc");
  TCase *tc = tcase_create("vbopusenc");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_enc_accepts_only_mono_s16_at_opus_rates);
  tcase_add_test(tc, test_enc_output_caps_like_opusenc);
  tcase_add_test(tc, test_enc_packet_timestamps_follow_input);
  tcase_add_test(tc, test_enc_frame_sizes);
  tcase_add_test(tc, test_enc_reports_one_frame_of_latency);
  tcase_add_test(tc, test_enc_bandwidth_wideband_cuts_above_8khz);
  tcase_add_test(tc, test_enc_properties_round_trip);
  tcase_add_test(tc, test_enc_bitrate_is_applied);
  tcase_add_test(tc, test_enc_partial_last_frame);
  return s;
}

GST_CHECK_MAIN(vbopusenc);
