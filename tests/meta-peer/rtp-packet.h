// Wire formats the peer reads and writes itself: the RFC 7983 first-byte demultiplexing of one UDP
// port, RTP headers (RFC 3550) and RFC 4733 telephone-event payloads. No GStreamer, no GLib.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace meta_peer {

// What a datagram on the shared ICE/DTLS/SRTP port is, from its first byte (RFC 7983 §7).
enum class PacketKind { Stun, Dtls, Rtp, Rtcp, Other };
// Rtp and Rtcp are told apart by the second byte (RFC 5761 §4: RTCP packet types 192–223).
PacketKind classify_datagram(const uint8_t *data, size_t len);

struct RtpHeader {
  bool marker = false;
  uint8_t payload_type = 0;
  uint16_t seq = 0;
  uint32_t timestamp = 0;
  uint32_t ssrc = 0;
  size_t payload_offset = 0;  // where the payload starts (after CSRCs and the header extension)
  size_t payload_size = 0;    // without padding
};

// Parses a plain (decrypted) RTP packet; false if it is not one.
bool parse_rtp(const uint8_t *data, size_t len, RtpHeader *out);

// A 12-byte RTP header (no CSRC, no extension) followed by payload.
std::vector<uint8_t> build_rtp(bool marker, uint8_t payload_type, uint16_t seq, uint32_t timestamp, uint32_t ssrc,
                               const uint8_t *payload, size_t payload_size);

// RFC 4733 §2.3 event codes: '0'–'9' → 0–9, '*' → 10, '#' → 11, 'A'–'D' → 12–15; -1 for others.
int dtmf_event_code(char digit);
char dtmf_digit(int event_code);  // the reverse; 0 for codes outside 0–15

struct TelephoneEvent {
  int event = 0;
  bool end = false;
  int volume = 0;         // 0–63, in -dBm0
  uint16_t duration = 0;  // in units of the telephone-event clock (8000 Hz for WhatsApp)
};
// The 4-byte payload of RFC 4733 §2.3.
std::vector<uint8_t> build_telephone_event(const TelephoneEvent &ev);
bool parse_telephone_event(const uint8_t *payload, size_t len, TelephoneEvent *out);

}  // namespace meta_peer
