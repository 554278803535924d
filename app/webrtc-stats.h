// The caller's receive figures from a webrtcbin "get-stats" report.
#pragma once

#include <gst/gst.h>

namespace vb {

struct InboundTotals {
  bool found = false;                  // the report held at least one inbound-rtp stat
  unsigned long long packets_received = 0;
  long long packets_lost = 0;
  double jitter_ms = 0;
};

// webrtcbin 1.22 reports one inbound-rtp stat per remote SSRC: also one seen only in the peer's
// RTCP (no packet) or a stream's old SSRC after the peer changed it, in no fixed order. Counts add
// up over all of them (a negative loss, from duplicates, counts as none); the jitter is the busiest
// stream's.
InboundTotals inbound_totals(const GstStructure *report);

}  // namespace vb
