// RFC 4733 telephone-event decoding: turns the RTP packets of a DTMF key press (several updates
// and three redundant end packets, all with one RTP timestamp) into exactly one digit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace vb {

struct TelephoneEvent {
  uint8_t event = 0;       // 0-9, 10 '*', 11 '#', 12-15 'A'-'D'
  bool end = false;
  uint8_t volume = 0;      // -dBm0, 0..63
  uint16_t duration = 0;   // in RTP clock units (8000 Hz on WhatsApp)
};

// Parses the 4-byte RFC 4733 payload (extra bytes of a multi-event packet are ignored).
bool parse_telephone_event(const uint8_t *payload, size_t len, TelephoneEvent *out);
// '0'..'9', '*', '#', 'A'..'D', or 0 for events that are not DTMF digits.
char telephone_event_digit(uint8_t event);

// Feeds packets of one stream; reports each key press once, at its first packet (low latency), and
// never again for the retransmitted end packets or later updates of the same RTP timestamp.
class DtmfDetector {
 public:
  // Returns the digit when this packet starts a new key press, else 0.
  char push(uint32_t rtp_timestamp, const uint8_t *payload, size_t len);

 private:
  bool have_last_ = false;
  uint32_t last_timestamp_ = 0;
};

// Parses an RTP packet header (RFC 3550) enough to find the payload type, timestamp and payload.
bool parse_rtp(const uint8_t *packet, size_t len, uint8_t *payload_type, uint32_t *timestamp, const uint8_t **payload,
               size_t *payload_len);

}  // namespace vb
