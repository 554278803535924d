// Unit tests for app/dtmf.cpp: RTP header parsing (RFC 3550) and RFC 4733 telephone-event decoding,
// on hand-built packets shaped like what WhatsApp sends (PT 126, 8000 Hz, interleaved with Opus on
// PT 111, whatsapp-calling.md §7.1).
#include <gst/check/gstcheck.h>

#include <cstdint>
#include <string>
#include <vector>

#include "dtmf.h"

namespace {

constexpr uint8_t kOpusPt = 111;
constexpr uint8_t kDtmfPt = 126;

struct RtpOptions {
  bool marker = false;
  std::vector<uint32_t> csrcs;
  std::vector<uint8_t> extension;  // data after the 4-byte extension header, a multiple of 4
  uint8_t padding = 0;             // total padding octets, count octet included
  uint8_t version = 2;
};

void put32(std::vector<uint8_t> *out, uint32_t v) {
  out->push_back((uint8_t)(v >> 24));
  out->push_back((uint8_t)(v >> 16));
  out->push_back((uint8_t)(v >> 8));
  out->push_back((uint8_t)v);
}

std::vector<uint8_t> rtp_packet(uint8_t pt, uint16_t seq, uint32_t ts, const std::vector<uint8_t> &payload,
                                const RtpOptions &o = RtpOptions()) {
  std::vector<uint8_t> p;
  p.push_back((uint8_t)((o.version << 6) | (o.padding ? 0x20 : 0) | (o.extension.empty() ? 0 : 0x10) |
                        (o.csrcs.size() & 0x0f)));
  p.push_back((uint8_t)((o.marker ? 0x80 : 0) | pt));
  p.push_back((uint8_t)(seq >> 8));
  p.push_back((uint8_t)seq);
  put32(&p, ts);
  put32(&p, 0x3e69c55b);  // SSRC
  for (uint32_t c : o.csrcs)
    put32(&p, c);
  if (!o.extension.empty()) {
    p.push_back(0xBE);  // RFC 8285 one-byte header profile
    p.push_back(0xDE);
    p.push_back((uint8_t)(o.extension.size() / 4 >> 8));
    p.push_back((uint8_t)(o.extension.size() / 4));
    p.insert(p.end(), o.extension.begin(), o.extension.end());
  }
  p.insert(p.end(), payload.begin(), payload.end());
  for (int i = 1; i < o.padding; i++)
    p.push_back(0);
  if (o.padding)
    p.push_back(o.padding);
  return p;
}

// RFC 4733 §2.3 payload.
std::vector<uint8_t> event_payload(uint8_t event, bool end, uint8_t volume, uint16_t duration) {
  return {event, (uint8_t)((end ? 0x80 : 0) | (volume & 0x3f)), (uint8_t)(duration >> 8), (uint8_t)duration};
}

// One key press as RFC 4733 §2.5 sends it: a start packet (marker set), two updates, and the end
// packet three times, all with the timestamp of the start.
void add_key_press(std::vector<std::vector<uint8_t>> *packets, uint16_t *seq, uint32_t ts, uint8_t event) {
  RtpOptions start;
  start.marker = true;
  packets->push_back(rtp_packet(kDtmfPt, (*seq)++, ts, event_payload(event, false, 10, 160), start));
  packets->push_back(rtp_packet(kDtmfPt, (*seq)++, ts, event_payload(event, false, 10, 320)));
  packets->push_back(rtp_packet(kDtmfPt, (*seq)++, ts, event_payload(event, false, 10, 480)));
  for (int i = 0; i < 3; i++)
    packets->push_back(rtp_packet(kDtmfPt, (*seq)++, ts, event_payload(event, true, 10, 640)));
}

// What the call code does with each packet of the stream: parse, route PT 126 to the detector.
std::string detect(const std::vector<std::vector<uint8_t>> &packets) {
  vb::DtmfDetector detector;
  std::string digits;
  for (const auto &p : packets) {
    uint8_t pt = 0;
    uint32_t ts = 0;
    const uint8_t *payload = nullptr;
    size_t len = 0;
    fail_unless(vb::parse_rtp(p.data(), p.size(), &pt, &ts, &payload, &len));
    if (pt != kDtmfPt)
      continue;
    char digit = detector.push(ts, payload, len);
    if (digit != 0)
      digits += digit;
  }
  return digits;
}

}  // namespace

GST_START_TEST(test_digits_from_packet_sequence) {
  std::vector<std::vector<uint8_t>> packets;
  uint16_t seq = 4000;
  const std::vector<uint8_t> opus_frame = {0x78, 0x01, 0x02, 0x03};
  packets.push_back(rtp_packet(kOpusPt, seq++, 160000, opus_frame));
  add_key_press(&packets, &seq, 160960, 1);
  packets.push_back(rtp_packet(kOpusPt, seq++, 161920, opus_frame));
  add_key_press(&packets, &seq, 168000, 11);
  packets.push_back(rtp_packet(kOpusPt, seq++, 169000, opus_frame));
  fail_unless_equals_int(packets.size(), 15);
  const std::string digits = detect(packets);  // kept: the macro holds only the pointer
  fail_unless_equals_string(digits.c_str(), "1#");
}
GST_END_TEST;

GST_START_TEST(test_repeated_key_and_lost_start) {
  std::vector<std::vector<uint8_t>> packets;
  uint16_t seq = 1;
  // The same key twice is two presses: the timestamps differ.
  add_key_press(&packets, &seq, 1000, 5);
  add_key_press(&packets, &seq, 3000, 5);
  // A press whose start and updates were lost still counts, once, at its first end packet.
  std::vector<std::vector<uint8_t>> star;
  add_key_press(&star, &seq, 5000, 10);
  packets.insert(packets.end(), star.begin() + 3, star.end());
  // Timestamps wrap around 2^32.
  add_key_press(&packets, &seq, 0xFFFFFF00u, 15);
  add_key_press(&packets, &seq, 0x00000100u, 0);
  const std::string digits = detect(packets);
  fail_unless_equals_string(digits.c_str(), "55*D0");
}
GST_END_TEST;

GST_START_TEST(test_detector_ignores_bad_payloads) {
  vb::DtmfDetector detector;
  std::vector<uint8_t> one = event_payload(1, false, 10, 160);
  fail_unless_equals_int(detector.push(800, one.data(), one.size()), '1');
  // A truncated packet of a new timestamp is no key press and does not end the current one.
  fail_unless_equals_int(detector.push(1600, one.data(), 3), 0);
  fail_unless_equals_int(detector.push(1600, nullptr, 4), 0);
  std::vector<uint8_t> end = event_payload(1, true, 10, 640);
  fail_unless_equals_int(detector.push(800, end.data(), end.size()), 0);
  // Non-digit events (16: flash) are presses, but not digits; their end packets neither.
  std::vector<uint8_t> flash = event_payload(16, false, 0, 160);
  fail_unless_equals_int(detector.push(2400, flash.data(), flash.size()), 0);
  fail_unless_equals_int(detector.push(2400, flash.data(), flash.size()), 0);
  std::vector<uint8_t> hash = event_payload(11, false, 0, 160);
  fail_unless_equals_int(detector.push(3200, hash.data(), hash.size()), '#');
}
GST_END_TEST;

GST_START_TEST(test_parse_telephone_event) {
  // event 11, E=1, R=1 (ignored), volume 10, duration 0x1234, plus a second event (ignored).
  const uint8_t payload[] = {11, 0x80 | 0x40 | 10, 0x12, 0x34, 5, 0x00, 0x00, 0xa0};
  vb::TelephoneEvent ev;
  fail_unless(vb::parse_telephone_event(payload, sizeof(payload), &ev));
  fail_unless_equals_int(ev.event, 11);
  fail_unless(ev.end);
  fail_unless_equals_int(ev.volume, 10);
  fail_unless_equals_int(ev.duration, 0x1234);

  const uint8_t start[] = {3, 63, 0xff, 0xfe};
  fail_unless(vb::parse_telephone_event(start, 4, &ev));
  fail_unless_equals_int(ev.event, 3);
  fail_if(ev.end);
  fail_unless_equals_int(ev.volume, 63);
  fail_unless_equals_int(ev.duration, 0xfffe);

  fail_if(vb::parse_telephone_event(start, 3, &ev));
  fail_if(vb::parse_telephone_event(nullptr, 4, &ev));
  fail_unless(vb::parse_telephone_event(start, 4, nullptr));
}
GST_END_TEST;

GST_START_TEST(test_event_digits) {
  const char expected[] = "0123456789*#ABCD";
  for (int e = 0; e < 16; e++)
    fail_unless_equals_int(vb::telephone_event_digit((uint8_t)e), expected[e]);
  for (int e = 16; e < 256; e++)
    fail_unless_equals_int(vb::telephone_event_digit((uint8_t)e), 0);
}
GST_END_TEST;

GST_START_TEST(test_parse_rtp_plain) {
  std::vector<uint8_t> payload = event_payload(7, false, 20, 320);
  RtpOptions o;
  o.marker = true;
  std::vector<uint8_t> p = rtp_packet(kDtmfPt, 65535, 0xDEADBEEF, payload, o);
  uint8_t pt = 0;
  uint32_t ts = 0;
  const uint8_t *data = nullptr;
  size_t len = 0;
  fail_unless(vb::parse_rtp(p.data(), p.size(), &pt, &ts, &data, &len));
  fail_unless_equals_int(pt, kDtmfPt);  // the marker bit is not part of the PT
  fail_unless_equals_uint64(ts, 0xDEADBEEFu);
  fail_unless(data == p.data() + 12);
  fail_unless_equals_int(len, 4);
  // A header without payload is a valid packet with an empty payload.
  std::vector<uint8_t> empty = rtp_packet(kOpusPt, 1, 2, {});
  fail_unless(vb::parse_rtp(empty.data(), empty.size(), &pt, &ts, &data, &len));
  fail_unless_equals_int(len, 0);
  // Outputs are optional.
  fail_unless(vb::parse_rtp(p.data(), p.size(), nullptr, nullptr, nullptr, nullptr));
}
GST_END_TEST;

GST_START_TEST(test_parse_rtp_skips_csrc_extension_padding) {
  std::vector<uint8_t> payload = event_payload(11, true, 10, 640);
  RtpOptions o;
  o.csrcs = {0x11111111, 0x22222222};
  // One-byte extension elements: id 1 (audio level, 1 byte) and id 3 (transport-cc, 2 bytes), padded.
  o.extension = {0x10, 0x85, 0x31, 0x01, 0x02, 0x00, 0x00, 0x00};
  o.padding = 4;
  std::vector<uint8_t> p = rtp_packet(kDtmfPt, 9, 123456, payload, o);
  fail_unless_equals_int(p.size(), 12 + 8 + 4 + 8 + 4 + 4);
  uint8_t pt = 0;
  uint32_t ts = 0;
  const uint8_t *data = nullptr;
  size_t len = 0;
  fail_unless(vb::parse_rtp(p.data(), p.size(), &pt, &ts, &data, &len));
  fail_unless_equals_int(pt, kDtmfPt);
  fail_unless_equals_int(ts, 123456);
  fail_unless(data == p.data() + 12 + 8 + 4 + 8, "payload at offset %d", (int)(data - p.data()));
  fail_unless_equals_int(len, 4);
  vb::TelephoneEvent ev;
  fail_unless(vb::parse_telephone_event(data, len, &ev));
  fail_unless_equals_int(ev.event, 11);
  fail_unless(ev.end);
  fail_unless_equals_int(ev.duration, 640);

  // CSRCs only, and the extension only.
  RtpOptions c;
  c.csrcs = {1, 2, 3};
  p = rtp_packet(kDtmfPt, 1, 1, payload, c);
  fail_unless(vb::parse_rtp(p.data(), p.size(), nullptr, nullptr, &data, &len));
  fail_unless(data == p.data() + 24 && len == 4);
  RtpOptions x;
  x.extension = {0x10, 0x85, 0x00, 0x00};
  p = rtp_packet(kDtmfPt, 1, 1, payload, x);
  fail_unless(vb::parse_rtp(p.data(), p.size(), nullptr, nullptr, &data, &len));
  fail_unless(data == p.data() + 20 && len == 4);
}
GST_END_TEST;

GST_START_TEST(test_parse_rtp_rejects_malformed) {
  std::vector<uint8_t> payload = event_payload(1, false, 10, 160);
  std::vector<uint8_t> good = rtp_packet(kDtmfPt, 1, 1000, payload);
  fail_unless(vb::parse_rtp(good.data(), good.size(), nullptr, nullptr, nullptr, nullptr));

  // Shorter than the fixed header.
  for (size_t n = 0; n < 12; n++)
    fail_if(vb::parse_rtp(good.data(), n, nullptr, nullptr, nullptr, nullptr), "accepted %d bytes", (int)n);
  fail_if(vb::parse_rtp(nullptr, 16, nullptr, nullptr, nullptr, nullptr));

  // Versions 0, 1 and 3 (STUN and DTLS share the socket and start with other bits).
  for (uint8_t v : {0, 1, 3}) {
    RtpOptions o;
    o.version = v;
    std::vector<uint8_t> p = rtp_packet(kDtmfPt, 1, 1000, payload, o);
    fail_if(vb::parse_rtp(p.data(), p.size(), nullptr, nullptr, nullptr, nullptr), "accepted version %d", v);
  }

  // CSRC count beyond the packet.
  std::vector<uint8_t> p = good;
  p[0] |= 0x0f;
  fail_if(vb::parse_rtp(p.data(), p.size(), nullptr, nullptr, nullptr, nullptr));

  // Extension flag without room for its header, and an extension length beyond the packet.
  p = rtp_packet(kDtmfPt, 1, 1000, {});
  p[0] |= 0x10;
  p.push_back(0xBE);
  p.push_back(0xDE);
  fail_if(vb::parse_rtp(p.data(), p.size(), nullptr, nullptr, nullptr, nullptr));
  RtpOptions x;
  x.extension = {0x10, 0x85, 0x00, 0x00};
  p = rtp_packet(kDtmfPt, 1, 1000, payload, x);
  p[15] = 3;  // 3 words claimed, 1 word + 4 payload bytes present
  fail_if(vb::parse_rtp(p.data(), p.size(), nullptr, nullptr, nullptr, nullptr));

  // Padding count of 0, or larger than what follows the header.
  RtpOptions pad;
  pad.padding = 4;
  p = rtp_packet(kDtmfPt, 1, 1000, payload, pad);
  fail_unless(vb::parse_rtp(p.data(), p.size(), nullptr, nullptr, nullptr, nullptr));
  p.back() = 0;
  fail_if(vb::parse_rtp(p.data(), p.size(), nullptr, nullptr, nullptr, nullptr));
  p.back() = 9;  // 4 payload + 4 padding octets follow the header: 8 at most
  fail_if(vb::parse_rtp(p.data(), p.size(), nullptr, nullptr, nullptr, nullptr));
  p.back() = 8;
  size_t len = 99;
  fail_unless(vb::parse_rtp(p.data(), p.size(), nullptr, nullptr, nullptr, &len));
  fail_unless_equals_int(len, 0);

  // Muxed RTCP (a receiver report, packet type 201) is not RTP.
  std::vector<uint8_t> rr = {0x80, 201, 0x00, 0x01, 0x3e, 0x69, 0xc5, 0x5b, 0, 0, 0, 0};
  fail_if(vb::parse_rtp(rr.data(), rr.size(), nullptr, nullptr, nullptr, nullptr));
}
GST_END_TEST;

static Suite *dtmf_suite(void) {
  Suite *s = suite_create("dtmf");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_digits_from_packet_sequence);
  tcase_add_test(tc, test_repeated_key_and_lost_start);
  tcase_add_test(tc, test_detector_ignores_bad_payloads);
  tcase_add_test(tc, test_parse_telephone_event);
  tcase_add_test(tc, test_event_digits);
  tcase_add_test(tc, test_parse_rtp_plain);
  tcase_add_test(tc, test_parse_rtp_skips_csrc_extension_padding);
  tcase_add_test(tc, test_parse_rtp_rejects_malformed);
  return s;
}

GST_CHECK_MAIN(dtmf)
