#include "rtp-packet.h"

#include <cstring>

namespace meta_peer {

PacketKind classify_datagram(const uint8_t *data, size_t len) {
  if (len == 0) return PacketKind::Other;
  uint8_t b = data[0];
  if (b <= 3) return PacketKind::Stun;
  if (b >= 20 && b <= 63) return PacketKind::Dtls;
  if (b >= 128 && b <= 191) {
    if (len >= 2 && data[1] >= 192 && data[1] <= 223) return PacketKind::Rtcp;
    return PacketKind::Rtp;
  }
  return PacketKind::Other;
}

bool parse_rtp(const uint8_t *data, size_t len, RtpHeader *out) {
  if (len < 12 || (data[0] >> 6) != 2) return false;
  size_t offset = 12 + 4 * (size_t)(data[0] & 0x0f);
  if (offset > len) return false;
  if (data[0] & 0x10) {  // header extension: 4-byte header, then length words
    if (offset + 4 > len) return false;
    size_t words = ((size_t)data[offset + 2] << 8) | data[offset + 3];
    offset += 4 + 4 * words;
    if (offset > len) return false;
  }
  size_t padding = 0;
  if (data[0] & 0x20) {
    padding = data[len - 1];
    if (padding == 0 || offset + padding > len) return false;
  }
  out->marker = (data[1] & 0x80) != 0;
  out->payload_type = data[1] & 0x7f;
  out->seq = (uint16_t)((data[2] << 8) | data[3]);
  out->timestamp = ((uint32_t)data[4] << 24) | ((uint32_t)data[5] << 16) | ((uint32_t)data[6] << 8) | data[7];
  out->ssrc = ((uint32_t)data[8] << 24) | ((uint32_t)data[9] << 16) | ((uint32_t)data[10] << 8) | data[11];
  out->payload_offset = offset;
  out->payload_size = len - offset - padding;
  return true;
}

std::vector<uint8_t> build_rtp(bool marker, uint8_t payload_type, uint16_t seq, uint32_t timestamp, uint32_t ssrc,
                               const uint8_t *payload, size_t payload_size) {
  std::vector<uint8_t> p(12 + payload_size);
  p[0] = 0x80;  // version 2, no padding, no extension, no CSRC
  p[1] = (uint8_t)((marker ? 0x80 : 0) | (payload_type & 0x7f));
  p[2] = (uint8_t)(seq >> 8);
  p[3] = (uint8_t)seq;
  for (int i = 0; i < 4; i++) {
    p[4 + i] = (uint8_t)(timestamp >> (24 - 8 * i));
    p[8 + i] = (uint8_t)(ssrc >> (24 - 8 * i));
  }
  if (payload_size) memcpy(p.data() + 12, payload, payload_size);
  return p;
}

int dtmf_event_code(char digit) {
  if (digit >= '0' && digit <= '9') return digit - '0';
  if (digit == '*') return 10;
  if (digit == '#') return 11;
  if (digit >= 'A' && digit <= 'D') return 12 + (digit - 'A');
  if (digit >= 'a' && digit <= 'd') return 12 + (digit - 'a');
  return -1;
}

char dtmf_digit(int event_code) {
  static const char kDigits[] = "0123456789*#ABCD";
  return event_code >= 0 && event_code < 16 ? kDigits[event_code] : 0;
}

std::vector<uint8_t> build_telephone_event(const TelephoneEvent &ev) {
  return {(uint8_t)ev.event, (uint8_t)((ev.end ? 0x80 : 0) | (ev.volume & 0x3f)), (uint8_t)(ev.duration >> 8),
          (uint8_t)ev.duration};
}

bool parse_telephone_event(const uint8_t *payload, size_t len, TelephoneEvent *out) {
  if (len < 4) return false;
  out->event = payload[0];
  out->end = (payload[1] & 0x80) != 0;
  out->volume = payload[1] & 0x3f;
  out->duration = (uint16_t)((payload[2] << 8) | payload[3]);
  return true;
}

}  // namespace meta_peer
