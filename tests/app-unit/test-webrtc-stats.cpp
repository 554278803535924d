// The caller's receive figures from a webrtcbin get-stats report (app/webrtc-stats.h): every
// inbound-rtp stat counts, whatever the report's order. Reports are built here the way webrtcbin
// 1.22 lays them out: one field per stat, named by its id, holding a structure with a "type".
#include <gst/check/gstcheck.h>
#include <gst/webrtc/webrtc.h>

#include <initializer_list>

#include "webrtc-stats.h"

namespace {

GstStructure *inbound(guint ssrc, guint64 received, gint64 lost, double jitter_s) {
  gchar *id = g_strdup_printf("rtp-inbound-stream-stats_%u", ssrc);
  GstStructure *s = gst_structure_new(id, "type", GST_TYPE_WEBRTC_STATS_TYPE, GST_WEBRTC_STATS_INBOUND_RTP, "ssrc",
                                      G_TYPE_UINT, ssrc, "packets-received", G_TYPE_UINT64, received, "packets-lost",
                                      G_TYPE_INT64, lost, "jitter", G_TYPE_DOUBLE, jitter_s, nullptr);
  g_free(id);
  return s;
}

GstStructure *outbound(guint ssrc, guint64 sent) {
  return gst_structure_new("rtp-outbound-stream-stats", "type", GST_TYPE_WEBRTC_STATS_TYPE,
                           GST_WEBRTC_STATS_OUTBOUND_RTP, "ssrc", G_TYPE_UINT, ssrc, "packets-sent", G_TYPE_UINT64,
                           sent, nullptr);
}

// A report holding the given stats, in this order (the structure takes ownership of each).
GstStructure *report(std::initializer_list<GstStructure *> stats) {
  GstStructure *r = gst_structure_new_empty("application/x-webrtc-stats");
  for (GstStructure *s : stats) {
    gchar *name = g_strdup(gst_structure_get_name(s));
    gst_structure_set(r, name, GST_TYPE_STRUCTURE, s, nullptr);
    gst_structure_free(s);
    g_free(name);
  }
  return r;
}

}  // namespace

GST_START_TEST(test_one_stream) {
  GstStructure *r = report({outbound(1, 700), inbound(2, 480, 3, 0.004)});
  vb::InboundTotals t = vb::inbound_totals(r);
  fail_unless(t.found);
  fail_unless_equals_uint64(t.packets_received, 480);
  fail_unless_equals_int64(t.packets_lost, 3);
  fail_unless(t.jitter_ms > 3.99 && t.jitter_ms < 4.01, "jitter %f", t.jitter_ms);
  gst_structure_free(r);
}
GST_END_TEST;

// The bug this replaced: the last inbound-rtp entry won, so an entry with no packet (an SSRC seen
// only in RTCP) after the real stream read as 0 packets received.
GST_START_TEST(test_empty_entry_after_the_stream) {
  for (bool empty_last : {true, false}) {
    GstStructure *r = empty_last ? report({inbound(10, 250, 2, 0.002), inbound(11, 0, 0, -0.0)})
                                 : report({inbound(11, 0, 0, -0.0), inbound(10, 250, 2, 0.002)});
    vb::InboundTotals t = vb::inbound_totals(r);
    fail_unless(t.found);
    fail_unless_equals_uint64(t.packets_received, 250);
    fail_unless_equals_int64(t.packets_lost, 2);
    fail_unless(t.jitter_ms > 1.99 && t.jitter_ms < 2.01, "jitter %f (empty entry %s)", t.jitter_ms,
                empty_last ? "last" : "first");
    gst_structure_free(r);
  }
}
GST_END_TEST;

// The peer changed its SSRC mid-call: both streams' packets count; the jitter is the busier one's.
// A negative loss (duplicates outnumbering losses) counts as none.
GST_START_TEST(test_ssrc_change) {
  GstStructure *r = report({inbound(20, 100, -2, 0.009), inbound(21, 300, 4, 0.001)});
  vb::InboundTotals t = vb::inbound_totals(r);
  fail_unless_equals_uint64(t.packets_received, 400);
  fail_unless_equals_int64(t.packets_lost, 4);
  fail_unless(t.jitter_ms > 0.99 && t.jitter_ms < 1.01, "jitter %f", t.jitter_ms);
  gst_structure_free(r);
}
GST_END_TEST;

GST_START_TEST(test_no_inbound_stream) {
  GstStructure *r = report({outbound(1, 50)});
  vb::InboundTotals t = vb::inbound_totals(r);
  fail_if(t.found);
  fail_unless_equals_uint64(t.packets_received, 0);
  gst_structure_free(r);
}
GST_END_TEST;

static Suite *webrtc_stats_suite(void) {
  Suite *s = suite_create("webrtc_stats");
  TCase *tc = tcase_create("inbound");
  tcase_add_test(tc, test_one_stream);
  tcase_add_test(tc, test_empty_entry_after_the_stream);
  tcase_add_test(tc, test_ssrc_change);
  tcase_add_test(tc, test_no_inbound_stream);
  suite_add_tcase(s, tc);
  return s;
}

GST_CHECK_MAIN(webrtc_stats);
