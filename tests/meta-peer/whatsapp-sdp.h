// The SDP Meta's media relay writes, and the reading of the bridge's SDP.
//
// build_user_initiated_offer() reproduces tests/fixtures/whatsapp/offer-user-initiated-1.sdp line for
// line (whatsapp-calling.md §4.1), with the peer's own values and a single IPv4 host candidate.
// build_business_initiated_answer() follows Meta's answer to a business offer (§4.6, fixture
// webhook-connect-business-initiated.json): ice-lite, host candidates with the "ufrag" extension,
// a=setup:active, the offer's mid and payload types.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace meta_peer {

// The peer's side of the description.
struct LocalDescription {
  std::string ufrag;
  std::string pwd;
  std::string fingerprint;  // sha-256, "AA:BB:…"
  std::string address = "127.0.0.1";
  uint16_t port = 0;
  uint32_t ssrc = 0;
  uint64_t session_id = 0;       // o= session id: Meta uses a millisecond Unix time
  std::string stream_id;         // msid / msid-semantic UUID
  uint32_t candidate_foundation = 0;
};

// What the peer needs from the bridge's offer or answer. Media-level attributes win over
// session-level ones (RFC 8866 §5, and webrtcbin 1.22 wants them at media level anyway).
struct RemoteDescription {
  std::string ufrag;
  std::string pwd;
  std::string fingerprint_algorithm;  // lower-case, e.g. "sha-256"
  std::string fingerprint;
  std::string setup;                  // active | passive | actpass | holdconn | "" (absent)
  std::string mid;
  std::string direction;              // sendrecv | sendonly | recvonly | inactive | ""
  bool ice_lite = false;
  bool trickle = false;               // a=ice-options:trickle
  bool rtcp_mux = false;
  std::string protocol;               // m= proto, e.g. UDP/TLS/RTP/SAVPF
  std::vector<int> payload_types;     // m= formats, in order
  std::map<int, std::string> rtpmaps;  // PT → "opus/48000/2"
  std::map<int, std::string> fmtps;
  int opus_pt = -1;
  int telephone_event_pt = -1;        // telephone-event/8000 only (Meta supports no other clock)
  std::vector<std::string> candidates;  // the a=candidate values
};

// Parses an offer or answer; false with *error if it is not SDP or has no audio m-line.
bool parse_remote_description(const std::string &text, RemoteDescription *out, std::string *error);

// A user-initiated-call offer exactly shaped like Meta's (fixture offer-user-initiated-1.sdp). CRLF.
std::string build_user_initiated_offer(const LocalDescription &local);

// Meta's answer to a business-initiated offer. Keeps Opus plus the offered G722/PCMU/PCMA and
// telephone-event PTs (what Meta's sample answer kept of a Chrome offer: it dropped red), echoes
// a=ice-options:trickle if offered, setup = active (passive if the offer was active). CRLF.
// Empty with *error if the offer has no Opus.
std::string build_business_initiated_answer(const LocalDescription &local, const RemoteDescription &offer,
                                            std::string *error);

// Random ICE credentials the way Meta's look: a 16-letter ufrag (user-initiated) or 12 characters
// + "/" + a digit (business-initiated, like "JHqAXFH4HcAY/8"), and a pwd that is 16 random bytes in
// base64, so it ends in "==" (the padding that strict ice-char parsers reject, §4.3).
std::string random_ufrag(bool business_initiated);
std::string random_pwd();
std::string random_uuid();

}  // namespace meta_peer
