// GstHarness tests of openairealtimesrc on its own (no server: the URL points at a closed port), on
// the harness's GstTestClock so that timing is deterministic. Playback of real model audio is in
// test-realtime-audio.cpp.
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/check/gsttestclock.h>

#include "element-checks.h"

using namespace element_checks;

static constexpr GstClockTime kPeriod = 20 * GST_MSECOND;
static constexpr guint kSamples = 480;

static GstHarness *new_src_harness(const char *session) {
  GstHarness *h = gst_harness_new("openairealtimesrc");
  fail_unless(h != nullptr);
  g_object_set(h->element, "session", session, "url", kDeadUrl, nullptr);
  return h;
}

// Pulls the next buffer, releasing the src's clock waits as they come (on a GstTestClock every wait
// blocks until cranked, even one for a time already reached: the src waits once for the running time
// of the buffer it is about to fill, then basesrc syncs on the buffer's timestamp). Bounded: 5 s.
//
// Exactly the waits of this buffer are cranked, never the next one's, so that the clock stands at
// this buffer's timestamp afterwards. The streaming thread queues a buffer into the harness and only
// then registers the next buffer's wait, but the queueing can still be under way when a first
// try_pull() finds nothing: a wait seen pending may be the next buffer's. Pulling once more after
// seeing it settles which: had that wait been the next buffer's, this buffer would be queued now.
static GstBuffer *pull(GstHarness *h) {
  GstTestClock *tc = gst_harness_get_testclock(h);
  const gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
  GstBuffer *b = nullptr;
  while (!(b = gst_harness_try_pull(h)) && g_get_monotonic_time() < deadline) {
    if (!gst_test_clock_timed_wait_for_multiple_pending_ids(tc, 1, 10, nullptr)) continue;
    if ((b = gst_harness_try_pull(h))) break;
    gst_harness_crank_single_clock_wait(h);
  }
  gst_object_unref(tc);
  fail_unless(b != nullptr, "no buffer within 5 s");
  return b;
}

GST_START_TEST(test_src_pad_template_caps)
{
  GstElementFactory *f = gst_element_factory_find("openairealtimesrc");
  fail_unless(f != nullptr);
  fail_unless_equals_int(gst_element_factory_get_num_pad_templates(f), 1);
  auto *tmpl = static_cast<GstStaticPadTemplate *>(gst_element_factory_get_static_pad_templates(f)->data);
  fail_unless_equals_string(tmpl->name_template, "src");
  fail_unless_equals_int(tmpl->direction, GST_PAD_SRC);
  fail_unless_equals_int(tmpl->presence, GST_PAD_ALWAYS);
  GstCaps *caps = gst_static_caps_get(&tmpl->static_caps);
  GstCaps *expected = gst_caps_from_string(kCaps);
  fail_unless(gst_caps_is_equal(caps, expected), "template caps %" GST_PTR_FORMAT, caps);
  gst_caps_unref(caps);
  gst_caps_unref(expected);
  fail_unless(strstr(gst_element_factory_get_metadata(f, GST_ELEMENT_METADATA_KLASS), "Source") != nullptr);
  gst_object_unref(f);
}
GST_END_TEST;

GST_START_TEST(test_src_negotiates_fixed_caps)
{
  GstHarness *h = new_src_harness("src-caps");
  gst_harness_play(h);
  GstBuffer *b = pull(h);
  gst_buffer_unref(b);
  GstCaps *caps = gst_pad_get_current_caps(h->sinkpad);
  fail_unless(caps != nullptr);
  GstCaps *expected = gst_caps_from_string(kCaps);
  fail_unless(gst_caps_is_equal(caps, expected), "negotiated %" GST_PTR_FORMAT, caps);
  gst_caps_unref(caps);
  gst_caps_unref(expected);
  gst_harness_teardown(h);
}
GST_END_TEST;

GST_START_TEST(test_src_is_live)
{
  GstHarness *h = new_src_harness("src-live");
  fail_unless(gst_base_src_is_live(GST_BASE_SRC(h->element)));
  fail_unless_equals_int(gst_base_src_get_do_timestamp(GST_BASE_SRC(h->element)), FALSE);
  // Live sources do not preroll.
  fail_unless_equals_int(gst_element_set_state(h->element, GST_STATE_PAUSED), GST_STATE_CHANGE_NO_PREROLL);
  gst_harness_teardown(h);
}
GST_END_TEST;

GST_START_TEST(test_src_latency_query)
{
  // Live, with no latency of its own (webrtcbin's clocksync would hold every buffer for the reported
  // minimum), and at most one period of buffering.
  GstHarness *h = new_src_harness("src-latency");
  gst_harness_play(h);
  GstBuffer *b = pull(h);
  gst_buffer_unref(b);
  GstQuery *q = gst_query_new_latency();
  GstPad *pad = gst_element_get_static_pad(h->element, "src");
  fail_unless(gst_pad_query(pad, q));
  gboolean live = FALSE;
  GstClockTime min = 0, max = 0;
  gst_query_parse_latency(q, &live, &min, &max);
  fail_unless(live);
  fail_unless_equals_uint64(min, 0);
  fail_unless_equals_uint64(max, kPeriod);
  gst_query_unref(q);
  gst_object_unref(pad);
  // The harness's own query (through its sink pad) says the same.
  fail_unless_equals_uint64(gst_harness_query_latency(h), 0);
  gst_harness_teardown(h);
}
GST_END_TEST;

GST_START_TEST(test_src_20ms_buffers_continuous_timestamps_and_silence)
{
  // With nothing from the model, the src still produces a buffer every 20 ms of clock time: 960
  // bytes of digital silence, timestamps and offsets following the sample count with no gaps, one
  // DISCONT at the start, never a GAP flag (encoders downstream must keep sending).
  GstHarness *h = new_src_harness("src-timing");
  gst_harness_use_testclock(h);
  gst_harness_play(h);
  const int n = 100;  // 2 s
  GstClockTime first_pts = GST_CLOCK_TIME_NONE;
  for (int i = 0; i < n; i++) {
    GstBuffer *b = pull(h);
    fail_unless_equals_int(gst_buffer_get_size(b), kSamples * 2);
    if (i == 0) first_pts = GST_BUFFER_PTS(b);
    fail_unless(GST_BUFFER_PTS_IS_VALID(b));
    fail_unless_equals_uint64(GST_BUFFER_PTS(b), first_pts + gst_util_uint64_scale_int(i * kSamples, GST_SECOND, 24000));
    fail_unless_equals_uint64(GST_BUFFER_DURATION(b), kPeriod);
    fail_unless_equals_uint64(GST_BUFFER_OFFSET(b), (guint64)i * kSamples);
    fail_unless_equals_uint64(GST_BUFFER_OFFSET_END(b), (guint64)(i + 1) * kSamples);
    fail_unless_equals_int(GST_BUFFER_FLAG_IS_SET(b, GST_BUFFER_FLAG_DISCONT), i == 0);
    fail_if(GST_BUFFER_FLAG_IS_SET(b, GST_BUFFER_FLAG_GAP));
    GstMapInfo map;
    fail_unless(gst_buffer_map(b, &map, GST_MAP_READ));
    for (gsize k = 0; k < map.size; k++) fail_unless(map.data[k] == 0, "buffer %d byte %zu not silent", i, k);
    gst_buffer_unmap(b, &map);
    gst_buffer_unref(b);
  }
  // Each buffer was produced only when the clock reached its timestamp: the test clock now stands
  // at the last PTS (real-time pacing, not as fast as possible).
  GstTestClock *tc = gst_harness_get_testclock(h);
  fail_unless_equals_uint64(gst_clock_get_time(GST_CLOCK(tc)), first_pts + (n - 1) * kPeriod);
  gst_object_unref(tc);
  // The counters agree: nothing received, nothing played, no underruns (no response was active).
  GstStructure *s = nullptr;
  g_object_get(h->element, "stats", &s, nullptr);
  guint64 played = 1, underruns = 1;
  fail_unless(gst_structure_get_uint64(s, "output-ms-played", &played));
  fail_unless(gst_structure_get_uint64(s, "underruns", &underruns));
  fail_unless_equals_uint64(played, 0);
  fail_unless_equals_uint64(underruns, 0);
  gst_structure_free(s);
  gst_harness_teardown(h);
}
GST_END_TEST;

GST_START_TEST(test_src_restart_resets_timestamps)
{
  // Stopping and starting again begins a new stream: DISCONT, offsets from 0.
  GstHarness *h = new_src_harness("src-restart");
  gst_harness_play(h);
  for (int i = 0; i < 3; i++) gst_buffer_unref(pull(h));
  gst_element_set_state(h->element, GST_STATE_NULL);
  gst_harness_play(h);
  GstBuffer *b = nullptr;
  // Skip anything queued before the restart.
  while ((b = gst_harness_try_pull(h))) {
    if (GST_BUFFER_FLAG_IS_SET(b, GST_BUFFER_FLAG_DISCONT) && GST_BUFFER_OFFSET(b) == 0) break;
    gst_buffer_unref(b);
  }
  if (!b) b = pull(h);
  fail_unless(GST_BUFFER_FLAG_IS_SET(b, GST_BUFFER_FLAG_DISCONT));
  fail_unless_equals_uint64(GST_BUFFER_OFFSET(b), 0);
  gst_buffer_unref(b);
  gst_harness_teardown(h);
}
GST_END_TEST;

GST_START_TEST(test_src_properties_round_trip) { check_property_round_trip("openairealtimesrc"); }
GST_END_TEST;

GST_START_TEST(test_src_property_defaults) { check_defaults("openairealtimesrc"); }
GST_END_TEST;

GST_START_TEST(test_src_api_key_write_only) { check_api_key_write_only("openairealtimesrc"); }
GST_END_TEST;

GST_START_TEST(test_src_tools_rejects_non_array) { check_tools_validation("openairealtimesrc"); }
GST_END_TEST;

GST_START_TEST(test_src_action_signals) { check_action_signals("openairealtimesrc"); }
GST_END_TEST;

GST_START_TEST(test_src_stats_property)
{
  GstElement *e = gst_element_factory_make("openairealtimesrc", nullptr);
  check_stats_property(e);  // also readable before the element started
  gst_object_unref(e);
}
GST_END_TEST;

static Suite *openairealtimesrc_suite(void) {
  register_elements();
  Suite *s = suite_create("openairealtimesrc");
  TCase *tc = tcase_create("harness");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_src_pad_template_caps);
  tcase_add_test(tc, test_src_negotiates_fixed_caps);
  tcase_add_test(tc, test_src_is_live);
  tcase_add_test(tc, test_src_latency_query);
  tcase_add_test(tc, test_src_20ms_buffers_continuous_timestamps_and_silence);
  tcase_add_test(tc, test_src_restart_resets_timestamps);
  tcase_add_test(tc, test_src_properties_round_trip);
  tcase_add_test(tc, test_src_property_defaults);
  tcase_add_test(tc, test_src_api_key_write_only);
  tcase_add_test(tc, test_src_tools_rejects_non_array);
  tcase_add_test(tc, test_src_action_signals);
  tcase_add_test(tc, test_src_stats_property);
  return s;
}

GST_CHECK_MAIN(openairealtimesrc);
