#include "webrtc-stats.h"

#include <gst/webrtc/webrtc.h>

namespace vb {

InboundTotals inbound_totals(const GstStructure *report) {
  InboundTotals t;
  guint64 busiest = 0;
  int n = gst_structure_n_fields(report);
  for (int i = 0; i < n; i++) {
    const GValue *v = gst_structure_get_value(report, gst_structure_nth_field_name(report, i));
    if (!GST_VALUE_HOLDS_STRUCTURE(v)) continue;
    const GstStructure *s = gst_value_get_structure(v);
    GstWebRTCStatsType type;
    if (!gst_structure_get(s, "type", GST_TYPE_WEBRTC_STATS_TYPE, &type, nullptr)) continue;
    if (type != GST_WEBRTC_STATS_INBOUND_RTP) continue;
    guint64 received = 0;
    gint64 lost = 0;
    double jitter = 0;
    gst_structure_get_uint64(s, "packets-received", &received);
    gst_structure_get_int64(s, "packets-lost", &lost);
    gst_structure_get_double(s, "jitter", &jitter);
    t.found = true;
    t.packets_received += received;
    if (lost > 0) t.packets_lost += lost;
    if (received >= busiest) {
      busiest = received;
      t.jitter_ms = jitter * 1000.0;
    }
  }
  return t;
}

}  // namespace vb
