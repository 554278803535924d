// RFC 4733 telephone-event payloads inside RFC 3550 RTP packets. WhatsApp sends no webhook for
// digits, so the bridge reads them off RTP PT 126 itself (whatsapp-calling.md §7.1).
#include "dtmf.h"

namespace vb {

bool parse_telephone_event(const uint8_t *payload, size_t len, TelephoneEvent *out) {
  // RFC 4733 §2.3: event(8) | E(1) R(1) volume(6) | duration(16), network byte order.
  if (payload == nullptr || len < 4)
    return false;
  TelephoneEvent ev;
  ev.event = payload[0];
  ev.end = (payload[1] & 0x80) != 0;
  // R is reserved: senders set it to 0 and receivers ignore it, so it is not checked.
  ev.volume = payload[1] & 0x3f;
  ev.duration = (uint16_t)((payload[2] << 8) | payload[3]);
  if (out)
    *out = ev;
  return true;
}

char telephone_event_digit(uint8_t event) {
  if (event <= 9)
    return (char)('0' + event);
  if (event == 10)
    return '*';
  if (event == 11)
    return '#';
  if (event <= 15)
    return (char)('A' + (event - 12));
  return 0;  // flash, tones and the other RFC 4734 events are not digits
}

char DtmfDetector::push(uint32_t rtp_timestamp, const uint8_t *payload, size_t len) {
  TelephoneEvent ev;
  // A malformed packet changes nothing: it must not end a key press whose end packets may follow.
  if (!parse_telephone_event(payload, len, &ev))
    return 0;
  // RFC 4733 §2.5.1: every packet of one event, updates and the three end packets alike, carries
  // the event's start timestamp; a new key press (even of the same key) starts a new timestamp.
  if (have_last_ && rtp_timestamp == last_timestamp_)
    return 0;
  have_last_ = true;
  last_timestamp_ = rtp_timestamp;
  return telephone_event_digit(ev.event);
}

bool parse_rtp(const uint8_t *packet, size_t len, uint8_t *payload_type, uint32_t *timestamp, const uint8_t **payload,
               size_t *payload_len) {
  // RFC 3550 §5.1: V(2) P(1) X(1) CC(4) | M(1) PT(7) | sequence(16) | timestamp(32) | SSRC(32) |
  // CSRC list (CC × 32) | optional extension | payload | optional padding.
  if (packet == nullptr || len < 12)
    return false;
  if ((packet[0] >> 6) != 2)
    return false;
  const bool padding = (packet[0] & 0x20) != 0;
  const bool extension = (packet[0] & 0x10) != 0;
  const size_t csrc_count = packet[0] & 0x0f;
  const uint8_t pt = packet[1] & 0x7f;
  // With rtcp-mux, RTCP SR/RR/SDES/BYE/APP (types 200-204) arrive on the same socket and read as
  // "PT" 72-76 here; RFC 5761 §4 keeps RTP away from that range so that they can be told apart.
  if (pt >= 72 && pt <= 76)
    return false;

  size_t offset = 12 + 4 * csrc_count;
  if (offset > len)
    return false;
  if (extension) {
    // RFC 3550 §5.3.1: 16-bit profile-defined id, 16-bit length in 32-bit words, then the data.
    // Also covers the RFC 8285 one-byte (0xBEDE) and two-byte forms, which use the same header.
    if (offset + 4 > len)
      return false;
    const size_t words = (size_t)((packet[offset + 2] << 8) | packet[offset + 3]);
    offset += 4 + 4 * words;
    if (offset > len)
      return false;
  }
  size_t end = len;
  if (padding) {
    // The last octet counts the padding octets, itself included, so it cannot be 0.
    const size_t pad = packet[len - 1];
    if (pad == 0 || pad > len - offset)
      return false;
    end -= pad;
  }

  if (payload_type)
    *payload_type = pt;
  if (timestamp)
    *timestamp = ((uint32_t)packet[4] << 24) | ((uint32_t)packet[5] << 16) | ((uint32_t)packet[6] << 8) | packet[7];
  if (payload)
    *payload = packet + offset;
  if (payload_len)
    *payload_len = end - offset;
  return true;
}

}  // namespace vb
