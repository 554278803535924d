// GstHarness tests of openairealtimesink on its own (no server: the URL points at a closed port).
// What the sink does with a live server is in test-realtime-audio.cpp.
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>

#include "element-checks.h"
#include "gst-test-helpers.h"

using namespace element_checks;

static GstHarness *new_sink_harness(const char *session) {
  GstHarness *h = gst_harness_new("openairealtimesink");
  fail_unless(h != nullptr);
  g_object_set(h->element, "session", session, "url", kDeadUrl, nullptr);
  return h;
}

static GstCaps *make_caps(const char *s) { return gst_caps_from_string(s); }

static gboolean sink_accepts(GstHarness *h, const char *caps_str) {
  GstPad *pad = gst_element_get_static_pad(h->element, "sink");
  GstCaps *caps = make_caps(caps_str);
  gboolean ok = gst_pad_query_accept_caps(pad, caps);
  gst_caps_unref(caps);
  gst_object_unref(pad);
  return ok;
}

GST_START_TEST(test_sink_pad_template_caps)
{
  GstElementFactory *f = gst_element_factory_find("openairealtimesink");
  fail_unless(f != nullptr);
  fail_unless_equals_int(gst_element_factory_get_num_pad_templates(f), 1);
  const GList *t = gst_element_factory_get_static_pad_templates(f);
  auto *tmpl = static_cast<GstStaticPadTemplate *>(t->data);
  fail_unless_equals_string(tmpl->name_template, "sink");
  fail_unless_equals_int(tmpl->direction, GST_PAD_SINK);
  fail_unless_equals_int(tmpl->presence, GST_PAD_ALWAYS);
  GstCaps *caps = gst_static_caps_get(&tmpl->static_caps);
  GstCaps *expected = make_caps(kCaps);
  fail_unless(gst_caps_is_equal(caps, expected), "template caps %" GST_PTR_FORMAT, caps);
  fail_unless(gst_caps_is_fixed(caps));
  gst_caps_unref(caps);
  gst_caps_unref(expected);
  // Metadata: a network audio sink.
  fail_unless(strstr(gst_element_factory_get_metadata(f, GST_ELEMENT_METADATA_KLASS), "Sink") != nullptr);
  gst_object_unref(f);
}
GST_END_TEST;

GST_START_TEST(test_sink_accepts_only_24k_mono_s16)
{
  GstHarness *h = new_sink_harness("sink-caps");
  fail_unless(sink_accepts(h, kCaps));
  fail_if(sink_accepts(h, "audio/x-raw,format=S16LE,rate=16000,channels=1,layout=interleaved"));
  fail_if(sink_accepts(h, "audio/x-raw,format=S16LE,rate=48000,channels=1,layout=interleaved"));
  fail_if(sink_accepts(h, "audio/x-raw,format=S16LE,rate=24000,channels=2,layout=interleaved"));
  fail_if(sink_accepts(h, "audio/x-raw,format=F32LE,rate=24000,channels=1,layout=interleaved"));
  fail_if(sink_accepts(h, "audio/x-raw,format=S16BE,rate=24000,channels=1,layout=interleaved"));
  fail_if(sink_accepts(h, "audio/x-opus,rate=48000,channels=1"));
  gst_harness_teardown(h);
}
GST_END_TEST;

GST_START_TEST(test_sink_render_never_blocks_without_server)
{
  // No server: render() must queue and return at once (it never blocks on the network), and the
  // queue keeps only the latest 10 s of caller audio while the session is not ready.
  GstHarness *h = new_sink_harness("sink-no-server");
  gst_harness_set_src_caps_str(h, kCaps);
  const int n_buffers = 12 * 50;  // 12 s in 20 ms buffers
  int64_t start = gst_test::now_us();
  for (int i = 0; i < n_buffers; i++) {
    GstBuffer *b = gst_harness_create_buffer(h, 960);
    GST_BUFFER_PTS(b) = i * 20 * GST_MSECOND;
    GST_BUFFER_DURATION(b) = 20 * GST_MSECOND;
    fail_unless_equals_int(gst_harness_push(h, b), GST_FLOW_OK);
  }
  double elapsed_ms = (gst_test::now_us() - start) / 1000.0;
  fail_unless(elapsed_ms < 2000, "pushing 12 s of audio took %.0f ms", elapsed_ms);
  check_stats_property(h->element);
  GstStructure *s = gst_test::get_structure_property(h->element, "stats");
  gboolean ready = TRUE;
  guint64 appended = 1, dropped = 0;
  fail_unless(gst_structure_get_boolean(s, "ready", &ready));
  fail_unless(gst_structure_get_uint64(s, "input-ms-appended", &appended));
  fail_unless(gst_structure_get_uint64(s, "input-ms-dropped", &dropped));
  gst_structure_free(s);
  fail_if(ready);
  fail_unless_equals_uint64(appended, 0);
  fail_unless_equals_uint64(dropped, 2000);
  fail_unless(gst_harness_push_event(h, gst_event_new_eos()));
  gst_harness_teardown(h);
}
GST_END_TEST;

GST_START_TEST(test_sink_is_not_synced)
{
  // The sink must not wait on the clock (the audio is paced upstream) nor for preroll (it is added to
  // live pipelines while PLAYING).
  GstElement *e = gst_element_factory_make("openairealtimesink", nullptr);
  fail_if(gst_base_sink_get_sync(GST_BASE_SINK(e)));
  fail_if(gst_base_sink_is_async_enabled(GST_BASE_SINK(e)));
  gst_object_unref(e);
}
GST_END_TEST;

GST_START_TEST(test_sink_properties_round_trip) { check_property_round_trip("openairealtimesink"); }
GST_END_TEST;

GST_START_TEST(test_sink_property_defaults) { check_defaults("openairealtimesink"); }
GST_END_TEST;

GST_START_TEST(test_sink_api_key_write_only) { check_api_key_write_only("openairealtimesink"); }
GST_END_TEST;

GST_START_TEST(test_sink_tools_rejects_non_array) { check_tools_validation("openairealtimesink"); }
GST_END_TEST;

GST_START_TEST(test_sink_action_signals) { check_action_signals("openairealtimesink"); }
GST_END_TEST;

static Suite *openairealtimesink_suite(void) {
  register_elements();
  Suite *s = suite_create("openairealtimesink");
  TCase *tc = tcase_create("harness");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_sink_pad_template_caps);
  tcase_add_test(tc, test_sink_accepts_only_24k_mono_s16);
  tcase_add_test(tc, test_sink_render_never_blocks_without_server);
  tcase_add_test(tc, test_sink_is_not_synced);
  tcase_add_test(tc, test_sink_properties_round_trip);
  tcase_add_test(tc, test_sink_property_defaults);
  tcase_add_test(tc, test_sink_api_key_write_only);
  tcase_add_test(tc, test_sink_tools_rejects_non_array);
  tcase_add_test(tc, test_sink_action_signals);
  return s;
}

GST_CHECK_MAIN(openairealtimesink);
