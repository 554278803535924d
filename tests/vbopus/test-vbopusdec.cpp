// vbopusdec on its own: decoding without delay, gaps (what the depayloader makes of a lost packet)
// with and without FEC, corrupt and empty packets, flushes, output negotiation, properties.
#include "vbopus-harness.h"

using namespace vbopus_test;

static const GstClockTime kStart = 2 * GST_SECOND;
static const GstClockTime kFrame = 20 * GST_MSECOND;

// 200 ms of a 440 Hz tone encoded with FEC, as the app sends it, the first packet at kStart.
static std::vector<GstBuffer *> tone_packets() {
  return encode(audio_test::make_tone(440, 200, -12, 16000), 16000,
                "bitrate=20000 inband-fec=true packet-loss-percentage=10", kStart);
}

static GstFlowReturn push_packet(GstHarness *h, GstBuffer *p, bool discont = false) {
  GstBuffer *b = gst_buffer_copy(p);
  if (discont) GST_BUFFER_FLAG_SET(b, GST_BUFFER_FLAG_DISCONT);
  return gst_harness_push(h, b);
}

// What GstRTPBaseDepayload 1.22 sends for a packet rtpjitterbuffer reports lost.
static void push_gap(GstHarness *h, GstClockTime pts, GstClockTime duration) {
  fail_unless(gst_harness_push_event(h, gst_event_new_gap(pts, duration)));
}

static void check_span(const Span &s, GstClockTime pts, GstClockTime duration, int rate) {
  fail_unless_equals_uint64(s.pts, pts);
  fail_unless_equals_uint64(s.duration, duration);
  fail_unless_equals_int(s.samples, gst_util_uint64_scale_int(duration, rate, GST_SECOND));
}

GST_START_TEST(test_dec_decodes_each_packet_at_once)
{
  // Unlike opusdec use-inband-fec=true, which holds every packet until the next one arrives.
  std::vector<GstBuffer *> packets = tone_packets();
  GstHarness *h = new_decoder(24000);  // use-inband-fec=true by default
  for (size_t i = 0; i < packets.size(); i++) {
    fail_unless_equals_int(push_packet(h, packets[i]), GST_FLOW_OK);
    GstBuffer *out = gst_harness_try_pull(h);
    fail_unless(out != nullptr, "packet %zu was not decoded at once", i);
    fail_unless_equals_uint64(GST_BUFFER_PTS(out), kStart + i * kFrame);
    fail_unless_equals_uint64(GST_BUFFER_DURATION(out), kFrame);
    fail_unless_equals_int(gst_buffer_get_size(out), 480 * 2);
    gst_buffer_unref(out);
  }
  GstClockTime min = 1, max = 1;
  GstElement *dec = gst_harness_find_element(h, "vbopusdec");
  gst_audio_decoder_get_latency(GST_AUDIO_DECODER(dec), &min, &max);
  gst_object_unref(dec);
  fail_unless_equals_uint64(min, 0);
  gst_harness_teardown(h);
  free_packets(&packets);
}
GST_END_TEST;

GST_START_TEST(test_dec_output_rate_follows_downstream)
{
  std::vector<GstBuffer *> packets = tone_packets();
  for (int rate : {8000, 12000, 16000, 24000, 48000}) {
    GstHarness *h = new_decoder(rate);
    fail_unless_equals_int(push_packet(h, packets[0]), GST_FLOW_OK);
    GstCaps *caps = gst_pad_get_current_caps(h->sinkpad);
    GstCaps *expected = gst_caps_from_string(raw_caps(rate).c_str());
    fail_unless(gst_caps_is_equal(caps, expected), "%d: %" GST_PTR_FORMAT, rate, caps);
    gst_caps_unref(caps);
    gst_caps_unref(expected);
    GstBuffer *out = gst_harness_pull(h);
    fail_unless_equals_int(gst_buffer_get_size(out), rate / 50 * 2);
    gst_buffer_unref(out);
    gst_harness_teardown(h);
  }
  // Downstream takes anything: 48 kHz mono.
  GstHarness *h = gst_harness_new("vbopusdec");
  gst_harness_set_src_caps_str(h, kOpusCaps);
  gst_harness_set_sink_caps_str(h, "audio/x-raw,format=S16LE,layout=interleaved,rate=[1,192000],channels=[1,8]");
  fail_unless_equals_int(push_packet(h, packets[0]), GST_FLOW_OK);
  GstCaps *caps = gst_pad_get_current_caps(h->sinkpad);
  GstCaps *expected = gst_caps_from_string(raw_caps(48000).c_str());
  fail_unless(gst_caps_is_equal(caps, expected), "%" GST_PTR_FORMAT, caps);
  gst_caps_unref(caps);
  gst_caps_unref(expected);
  gst_harness_teardown(h);
  // Downstream wants stereo: the mono stream on both channels.
  h = new_decoder(16000);
  gst_harness_set_sink_caps_str(h, raw_caps(16000, 2).c_str());
  fail_unless_equals_int(push_packet(h, packets[5]), GST_FLOW_OK);
  GstBuffer *out = gst_harness_pull(h);
  fail_unless_equals_int(gst_buffer_get_size(out), 320 * 2 * 2);
  gst_buffer_unref(out);
  gst_harness_teardown(h);
  free_packets(&packets);
}
GST_END_TEST;

GST_START_TEST(test_dec_refuses_bad_caps)
{
  GstElement *e = gst_element_factory_make("vbopusdec", nullptr);
  GstPad *sink = gst_element_get_static_pad(e, "sink");
  auto accepts = [&](const char *s) {
    GstCaps *c = gst_caps_from_string(s);
    const gboolean ok = gst_pad_query_accept_caps(sink, c);
    gst_caps_unref(c);
    return ok;
  };
  fail_unless(accepts(kOpusCaps));
  fail_unless(accepts("audio/x-opus,channel-mapping-family=(int)0,channels=(int)2,rate=(int)16000"));
  fail_if(accepts("audio/x-opus,channel-mapping-family=(int)1,channels=(int)3,rate=(int)48000"));
  fail_if(accepts(raw_caps(48000).c_str()));
  gst_object_unref(sink);

  // A downstream rate libopus does not decode to cannot be linked.
  GstElement *bin = gst_pipeline_new(nullptr);
  GstElement *fs = gst_element_factory_make("fakesink", nullptr);
  gst_bin_add_many(GST_BIN(bin), e, fs, nullptr);
  GstCaps *c441 = gst_caps_from_string(raw_caps(44100).c_str());
  fail_if(gst_element_link_filtered(e, fs, c441));
  gst_caps_unref(c441);
  gst_object_unref(bin);
}
GST_END_TEST;

GST_START_TEST(test_dec_gap_with_fec_waits_for_next_packet)
{
  std::vector<GstBuffer *> packets = tone_packets();
  GstHarness *h = new_decoder(16000);
  for (int i = 0; i < 5; i++) push_packet(h, packets[i]);
  Collected c;
  pull_all(h, &c);
  fail_unless_equals_int(c.spans.size(), 5);
  push_gap(h, kStart + 5 * kFrame, kFrame);
  fail_unless_equals_int(gst_harness_buffers_in_queue(h), 0);  // waits for packet 6's FEC
  push_packet(h, packets[6], true);                             // the depayloader marks it DISCONT
  pull_all(h, &c);
  fail_unless_equals_int(c.spans.size(), 7);
  check_span(c.spans[5], kStart + 5 * kFrame, kFrame, 16000);
  check_span(c.spans[6], kStart + 6 * kFrame, kFrame, 16000);
  // The recovered frame is the tone, not silence.
  fail_unless(audio_test::rms_dbfs(&c.samples[c.spans[5].offset], c.spans[5].samples) > -25);
  for (size_t i = 7; i < packets.size(); i++) push_packet(h, packets[i]);
  pull_all(h, &c);
  check_contiguous(c, 16000, "gap with FEC");
  fail_unless_equals_int(c.samples.size(), packets.size() * 320);
  gst_harness_teardown(h);
  free_packets(&packets);
}
GST_END_TEST;

GST_START_TEST(test_dec_gap_without_fec_conceals_at_once)
{
  std::vector<GstBuffer *> packets = tone_packets();
  GstHarness *h = new_decoder(16000, "use-inband-fec=false");
  for (int i = 0; i < 5; i++) push_packet(h, packets[i]);
  push_gap(h, kStart + 5 * kFrame, kFrame);
  Collected c;
  pull_all(h, &c);
  fail_unless_equals_int(c.spans.size(), 6);
  check_span(c.spans[5], kStart + 5 * kFrame, kFrame, 16000);
  fail_unless(audio_test::rms_dbfs(&c.samples[c.spans[5].offset], c.spans[5].samples) > -30);  // PLC, not silence
  for (size_t i = 6; i < packets.size(); i++) push_packet(h, packets[i], i == 6);
  pull_all(h, &c);
  check_contiguous(c, 16000, "gap with PLC");
  fail_unless_equals_int(c.samples.size(), packets.size() * 320);
  gst_harness_teardown(h);
  free_packets(&packets);
}
GST_END_TEST;

GST_START_TEST(test_dec_consecutive_and_long_gaps)
{
  std::vector<GstBuffer *> packets = tone_packets();
  GstHarness *h = new_decoder(16000);
  Collected c;
  for (int i = 0; i < 3; i++) push_packet(h, packets[i]);
  // Two gaps in a row: the first can only be concealed (no packet follows it), at once.
  push_gap(h, kStart + 3 * kFrame, kFrame);
  push_gap(h, kStart + 4 * kFrame, kFrame);
  pull_all(h, &c);
  fail_unless_equals_int(c.spans.size(), 4);
  check_span(c.spans[3], kStart + 3 * kFrame, kFrame, 16000);
  push_packet(h, packets[5], true);
  // One gap of three packets: one buffer of 60 ms (PLC, then the last 20 ms from FEC).
  push_gap(h, kStart + 6 * kFrame, 3 * kFrame);
  push_packet(h, packets[9], true);
  pull_all(h, &c);
  fail_unless_equals_int(c.spans.size(), 8);
  check_span(c.spans[4], kStart + 4 * kFrame, kFrame, 16000);
  check_span(c.spans[5], kStart + 5 * kFrame, kFrame, 16000);
  check_span(c.spans[6], kStart + 6 * kFrame, 3 * kFrame, 16000);
  check_span(c.spans[7], kStart + 9 * kFrame, kFrame, 16000);
  check_contiguous(c, 16000, "consecutive and long gaps");
  // A gap just before EOS is concealed, not dropped.
  push_gap(h, kStart + 10 * kFrame, kFrame);
  fail_unless(gst_harness_push_event(h, gst_event_new_eos()));
  pull_all(h, &c);
  fail_unless_equals_int(c.spans.size(), 9);
  check_span(c.spans[8], kStart + 10 * kFrame, kFrame, 16000);
  gst_harness_teardown(h);
  free_packets(&packets);
}
GST_END_TEST;

GST_START_TEST(test_dec_corrupt_packet_gives_silence_of_its_duration)
{
  std::vector<GstBuffer *> packets = tone_packets();
  GstHarness *h = new_decoder(24000);
  for (int i = 0; i < 3; i++) push_packet(h, packets[i]);
  // Code 3 with 63 frames of 20 ms: more than Opus's 120 ms, opus_decode refuses it.
  const guint8 garbage[] = {0xFF, 0xFF, 0x00, 0x12, 0x34, 0x56, 0x78, 0x9a};
  GstBuffer *bad = gst_buffer_new_memdup(garbage, sizeof garbage);
  GST_BUFFER_PTS(bad) = kStart + 3 * kFrame;
  GST_BUFFER_DURATION(bad) = kFrame;
  fail_unless_equals_int(gst_harness_push(h, bad), GST_FLOW_OK);
  // And random bytes of every length 1..40 (whatever libopus makes of them, no crash, some audio).
  GRand *rand = g_rand_new_with_seed(42);
  for (int len = 1; len <= 40; len++) {
    std::vector<guint8> bytes((size_t)len);
    for (auto &b : bytes) b = (guint8)g_rand_int_range(rand, 0, 256);
    GstBuffer *b = gst_buffer_new_memdup(bytes.data(), bytes.size());
    GST_BUFFER_PTS(b) = kStart + (4 + len) * kFrame;
    GST_BUFFER_DURATION(b) = kFrame;
    fail_unless_equals_int(gst_harness_push(h, b), GST_FLOW_OK);
  }
  g_rand_free(rand);
  Collected c;
  pull_all(h, &c);
  fail_unless_equals_int(c.spans.size(), 3 + 1 + 40);
  check_span(c.spans[3], kStart + 3 * kFrame, kFrame, 24000);
  fail_unless(audio_test::all_zero(&c.samples[c.spans[3].offset], c.spans[3].samples));
  // Good packets still decode after all that.
  GstBuffer *good = gst_buffer_copy(packets[5]);
  GST_BUFFER_PTS(good) = kStart + 50 * kFrame;
  fail_unless_equals_int(gst_harness_push(h, good), GST_FLOW_OK);
  GstBuffer *out = gst_harness_pull(h);
  fail_unless_equals_int(gst_buffer_get_size(out), 480 * 2);
  fail_unless_equals_uint64(GST_BUFFER_PTS(out), kStart + 50 * kFrame);
  gst_buffer_unref(out);
  gst_harness_teardown(h);
  free_packets(&packets);
}
GST_END_TEST;

GST_START_TEST(test_dec_empty_packet_is_concealed)
{
  // A zero-length packet (DTX) stands for its duration: concealment, not a hole.
  std::vector<GstBuffer *> packets = tone_packets();
  GstHarness *h = new_decoder(16000, "use-inband-fec=false");
  for (int i = 0; i < 3; i++) push_packet(h, packets[i]);
  GstBuffer *empty = gst_buffer_new();
  GST_BUFFER_PTS(empty) = kStart + 3 * kFrame;
  GST_BUFFER_DURATION(empty) = kFrame;
  fail_unless_equals_int(gst_harness_push(h, empty), GST_FLOW_OK);
  push_packet(h, packets[4]);
  Collected c;
  pull_all(h, &c);
  fail_unless_equals_int(c.spans.size(), 5);
  check_span(c.spans[3], kStart + 3 * kFrame, kFrame, 16000);
  check_contiguous(c, 16000, "empty packet");
  gst_harness_teardown(h);
  free_packets(&packets);
}
GST_END_TEST;

GST_START_TEST(test_dec_flush_and_discont)
{
  std::vector<GstBuffer *> packets = tone_packets();
  GstHarness *h = new_decoder(16000);
  for (int i = 0; i < 3; i++) push_packet(h, packets[i]);
  push_gap(h, kStart + 3 * kFrame, kFrame);
  // A flush drops the pending gap and the codec's state; decoding goes on from the new segment.
  fail_unless(gst_harness_push_event(h, gst_event_new_flush_start()));
  fail_unless(gst_harness_push_event(h, gst_event_new_flush_stop(TRUE)));
  GstSegment seg;
  gst_segment_init(&seg, GST_FORMAT_TIME);
  fail_unless(gst_harness_push_event(h, gst_event_new_segment(&seg)));
  Collected c;
  pull_all(h, &c);
  fail_unless_equals_int(c.spans.size(), 3);
  for (int i = 4; i < 7; i++) push_packet(h, packets[i]);
  // A DISCONT packet with a jump forward (no gap reported): decoded at once at its own PTS.
  GstBuffer *jump = gst_buffer_copy(packets[7]);
  GST_BUFFER_PTS(jump) += 10 * GST_SECOND;
  GST_BUFFER_FLAG_SET(jump, GST_BUFFER_FLAG_DISCONT);
  fail_unless_equals_int(gst_harness_push(h, jump), GST_FLOW_OK);
  pull_all(h, &c);
  fail_unless_equals_int(c.spans.size(), 7);
  check_span(c.spans[3], kStart + 4 * kFrame, kFrame, 16000);
  check_span(c.spans[6], kStart + 7 * kFrame + 10 * GST_SECOND, kFrame, 16000);
  gst_harness_teardown(h);
  free_packets(&packets);
}
GST_END_TEST;

GST_START_TEST(test_dec_properties)
{
  GstElement *e = gst_element_factory_make("vbopusdec", nullptr);
  gboolean plc = FALSE, fec = FALSE;
  g_object_get(e, "plc", &plc, "use-inband-fec", &fec, nullptr);
  fail_unless(plc);
  fail_unless(fec);
  GParamSpec *p = g_object_class_find_property(G_OBJECT_GET_CLASS(e), "plc");
  fail_unless(G_PARAM_SPEC_BOOLEAN(p)->default_value);  // what gst-inspect-1.0 shows
  fail_unless(gst_audio_decoder_get_plc(GST_AUDIO_DECODER(e)));
  g_object_set(e, "plc", FALSE, "use-inband-fec", FALSE, nullptr);
  g_object_get(e, "plc", &plc, "use-inband-fec", &fec, nullptr);
  fail_if(plc);
  fail_if(fec);
  fail_if(gst_audio_decoder_get_plc(GST_AUDIO_DECODER(e)));
  gst_object_unref(e);

  // plc=false: a gap goes downstream as a GAP event, as with opusdec.
  std::vector<GstBuffer *> packets = tone_packets();
  GstHarness *h = new_decoder(16000, "plc=false");
  push_packet(h, packets[0]);
  push_gap(h, kStart + kFrame, kFrame);
  fail_unless_equals_int(gst_harness_buffers_in_queue(h), 1);
  bool saw_gap = false;
  while (GstEvent *ev = gst_harness_try_pull_event(h)) {
    saw_gap |= GST_EVENT_TYPE(ev) == GST_EVENT_GAP;
    gst_event_unref(ev);
  }
  fail_unless(saw_gap);
  gst_harness_teardown(h);
  free_packets(&packets);
}
GST_END_TEST;

static Suite *vbopusdec_suite(void) {
  register_elements();
  Suite *s = suite_create("vbopusdec");
  TCase *tc = tcase_create("vbopusdec");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_dec_decodes_each_packet_at_once);
  tcase_add_test(tc, test_dec_output_rate_follows_downstream);
  tcase_add_test(tc, test_dec_refuses_bad_caps);
  tcase_add_test(tc, test_dec_gap_with_fec_waits_for_next_packet);
  tcase_add_test(tc, test_dec_gap_without_fec_conceals_at_once);
  tcase_add_test(tc, test_dec_consecutive_and_long_gaps);
  tcase_add_test(tc, test_dec_corrupt_packet_gives_silence_of_its_duration);
  tcase_add_test(tc, test_dec_empty_packet_is_concealed);
  tcase_add_test(tc, test_dec_flush_and_discont);
  tcase_add_test(tc, test_dec_properties);
  return s;
}

GST_CHECK_MAIN(vbopusdec);
