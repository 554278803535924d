// SDP handling around webrtcbin 1.22: what an offer asks for, the text fix-ups 1.22 needs before
// set-remote-description (docs/gstreamer-1.22-notes.md §1.4, §1.7), and the answer fix-ups that
// WhatsApp and non-trickle peers need (§7 there; docs/whatsapp-calling.md §4.7). Pure text in, text
// out, so it is unit-tested on the real fixtures and fuzzed.
#pragma once

#include <string>
#include <vector>

namespace vb {

struct OfferInfo {
  int audio_mline = -1;           // index of the first audio m-line with Opus
  int opus_pt = -1;
  int opus_channels = 2;          // from rtpmap opus/48000/N (1 when absent)
  int telephone_event_pt = -1;    // telephone-event/8000 if offered
  std::string mid;                // a=mid of the audio m-line
  bool ice_lite = false;
  std::string setup;              // a=setup of the audio m-line (or session level)
  int max_playback_rate = 48000;  // Opus fmtp maxplaybackrate
  int max_average_bitrate = 0;    // Opus fmtp maxaveragebitrate (0: not given)
  bool use_inband_fec = false;
  int ptime_ms = 20;              // a=ptime (20 when absent)
  std::vector<std::string> fingerprints;  // "sha-256 AA:BB:…"
};

// Error codes are the HTTP API's: "invalid_sdp" (not an SDP, or no usable media) and "no_audio"
// (no audio m-line, or no Opus in it). *message is for humans.
bool inspect_offer(const std::string &sdp, OfferInfo *info, std::string *code, std::string *message);

// Fix-ups applied to an offer's text before webrtcbin sees it: normalised CRLF line ends (also
// literal "\r\n" escapes left by double JSON encoding) and a final CRLF; a=sendrecv added where an
// m-line has no direction; session-level a=setup / a=fingerprint copied into m-lines lacking them;
// a=mid added where missing (and the BUNDLE group fixed to match); Opus sprop-stereo and
// sprop-maxcapturerate removed from the fmtp (they break 1.22's caps intersection).
std::string prepare_offer(const std::string &sdp);

struct AnswerFixups {
  int telephone_event_pt = -1;    // add a=rtpmap:<pt> telephone-event/8000 to the audio m-line
  std::string public_ip;          // replace host candidate addresses (and c=) with this address
  bool sha256_only = true;        // drop fingerprints that are not sha-256
  bool default_candidate = true;  // copy the first IPv4 candidate's address/port into c= and m=
  bool end_of_candidates = true;  // append a=end-of-candidates to the audio m-line
};
// Applies the fix-ups; the result uses CRLF line ends and ends with CRLF.
std::string finalize_answer(const std::string &answer, const AnswerFixups &fixups);

// Our own offer (outbound calls), as WhatsApp expects it: finalize_answer's fix-ups (telephone-event,
// public IP, default candidate, end-of-candidates, sha-256 only), the Opus rtpmap written as
// "opus/48000/2" (webrtcbin writes "OPUS/48000"), and no a=ice-options:trickle (we never trickle).
std::string finalize_offer(const std::string &offer, const std::string &public_ip, int telephone_event_pt);

// Direction of the first audio m-line of a description ("sendrecv", "recvonly", … or "" if none).
std::string audio_direction(const std::string &sdp);
// Number of a=candidate lines.
int count_candidates(const std::string &sdp);

}  // namespace vb
