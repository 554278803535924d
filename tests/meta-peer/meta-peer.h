// meta_peer::Peer — a test endpoint that behaves like Meta's WhatsApp media relay towards a business
// (whatsapp-calling.md §4–§5), on 127.0.0.1, for testing voicebridge (or any WebRTC bridge) honestly:
//
//   - SDP: a user-initiated offer shaped line for line like the real one (fixture
//     offer-user-initiated-1.sdp), or Meta's answer to a business-initiated offer (§4.6).
//   - ICE-lite, always controlled: never sends a connectivity check; answers authenticated Binding
//     requests (libnice's STUN library), rejects bad ones (400/401/420/487), records whether the
//     bridge was controlling and nominated (USE-CANDIDATE); media goes only to the nominated address.
//     Until it has the business's SDP it answers no check (configurable) and drops DTLS/SRTP: a
//     bridge whose answer reaches Meta late depends on its STUN and DTLS retransmissions, as in life.
//   - DTLS-SRTP with GStreamer's dtlssrtpenc/dtlssrtpdec and the peer's own ECDSA certificate: DTLS
//     server on user-initiated calls (the bridge answers a=setup:active), client on business-initiated
//     ones (the peer answers active). The bridge's certificate is checked against its SDP fingerprint.
//   - Media: from the moment SRTP keys exist, one Opus packet (PT 111, 16 kHz audio, 20 kbit/s, FEC)
//     every 20 ms, continuously (tone / speech clip / silence), RFC 4733 DTMF (PT 126) in the same
//     stream; everything received is decrypted, decoded (Opus → S16 mono) and kept with arrival times.
//     Opus is done with libopus, packet by packet, so that DTMF can replace audio frames in place;
//     a WAV clip is read with tests/common's read_wav() and given as Config::speech.
//   - Like the WhatsApp client, it hangs up when the business sends no media for 20 s after the SDP
//     exchange or 30 s mid-call (configurable).
//
// Typical user-initiated call (the bridge answers):
//   meta_peer::Config cfg;                       // Offerer, 300 Hz at -12 dBFS
//   meta_peer::Peer peer(cfg);
//   if (!peer.start(&err)) fail(err);
//   std::string answer = bridge.answer(peer.make_offer());
//   if (!peer.set_answer(answer, &err)) fail(err);
//   peer.wait_for([](const meta_peer::Snapshot &s) { return s.received_ms >= 1500; }, 10000);
//   auto pcm = peer.received_pcm();              // 48 kHz mono S16
//   peer.stop();
//
// The peer runs on its own thread and GMainContext; every public method is thread-safe and returns
// without waiting for the network. Waits are bounded and may iterate a context of the caller's.
#pragma once

#include <glib.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "audio-receiver.h"
#include "audio-sender.h"
#include "dtls-srtp-transport.h"
#include "ice-lite.h"

namespace meta_peer {

enum class Role {
  Offerer,   // user-initiated call: the peer offers (Meta's connect webhook), the bridge answers
  Answerer,  // business-initiated call: the bridge offers (Graph "connect"), the peer answers
};

enum class DtlsRole { Unknown, Client, Server };

struct Config {
  Role role = Role::Offerer;
  std::string address = "127.0.0.1";
  uint16_t port = 0;  // 0: an ephemeral port

  // What the WhatsApp user says. Program time 0 is the peer's first SRTP packet (when DTLS is up).
  ToneSpec tone;                 // default: 300 Hz, -12 dBFS peak, for the whole call
  SpeechSpec speech;             // optional clip, mixed with the tone (set tone.hz = 0 for speech only)
  std::vector<DtmfPress> dtmf;   // key presses, sent as RFC 4733 events on PT 126
  int dtmf_volume = 10;

  // ICE: Meta answers checks only once it has the business's SDP; true answers earlier ones too.
  bool answer_checks_before_remote_sdp = false;
  // DTLS: when the bridge's certificate does not match its SDP fingerprint, send no media (the
  // handshake itself cannot be refused with GStreamer's dtls elements).
  bool require_fingerprint_match = true;

  int receive_rate = 48000;  // decoded audio rate: 8000, 12000, 16000, 24000 or 48000

  // The WhatsApp client hangs up (terminate FAILED 138021) after this long without media from the
  // business, counted from the SDP exchange, resp. from the last packet (§5 "timers"). 0: never.
  int no_media_setup_timeout_ms = 20000;
  int no_media_midcall_timeout_ms = 30000;
};

// A consistent copy of everything the peer observed. Times: g_get_monotonic_time() µs, -1 = never.
struct Snapshot {
  // ICE
  IceCounters ice;
  bool nominated = false;              // a valid check with USE-CANDIDATE (and ICE-CONTROLLING) came
  std::string selected_address;        // "ip:port" media goes to
  int64_t nominated_us = -1;
  // DTLS
  DtlsRole dtls_role = DtlsRole::Unknown;
  DtlsState dtls_state = DtlsState::New;
  int64_t dtls_connected_us = -1;
  std::string local_fingerprint;       // the peer's, as in its SDP
  std::string bridge_sdp_fingerprint;  // from the bridge's SDP
  std::string bridge_cert_fingerprint; // of the certificate the bridge presented in the handshake
  int fingerprint_match = -1;          // -1 not known yet, 0 mismatch, 1 match
  // Media from the bridge
  int64_t first_media_us = -1;         // first SRTP RTP datagram on the socket (before decryption)
  int64_t first_media_real_us = -1;    // the same moment, g_get_real_time()
  int64_t last_media_us = -1;
  uint64_t rtp_datagrams = 0;          // SRTP RTP datagrams received (any source)
  uint64_t rtcp_datagrams = 0;
  uint64_t packets_received = 0;       // RTP packets decrypted
  uint64_t opus_packets = 0;
  uint64_t dropped_unvalidated = 0;    // DTLS/SRTP from an address no valid check came from
  uint64_t dropped_before_sdp = 0;     // DTLS/SRTP before the peer's DTLS could start (no SDP yet)
  double received_ms = 0;              // length of the received audio timeline (gaps included), in ms
  // Media to the bridge
  int64_t media_start_us = -1;         // first SRTP packet sent
  uint64_t packets_sent = 0;
  uint64_t dtmf_packets_sent = 0;
  // The call
  bool ended = false;
  std::string end_reason;
  std::vector<std::string> errors;
};

class Peer {
 public:
  explicit Peer(Config config = {});
  ~Peer();  // stop()
  Peer(const Peer &) = delete;
  Peer &operator=(const Peer &) = delete;

  // Binds the UDP socket, makes the certificate, starts the DTLS-SRTP pipeline and the peer's thread.
  bool start(std::string *error);

  uint16_t port() const;
  std::string ice_ufrag() const;
  std::string ice_pwd() const;
  std::string fingerprint() const;  // sha-256 of the certificate dtlssrtpdec uses

  // Offerer: Meta's offer (CRLF), then the bridge's answer (its ICE credentials, fingerprint and
  // a=setup: active makes the peer the DTLS server, passive the client; actpass is refused).
  std::string make_offer();
  bool set_answer(const std::string &bridge_answer, std::string *error);
  // Answerer: Meta's answer to the bridge's offer; "" with *error if it cannot be answered.
  std::string answer(const std::string &bridge_offer, std::string *error);

  // Tears everything down: thread, pipeline (to NULL), socket. Idempotent.
  void stop();

  Snapshot snapshot() const;
  std::vector<int16_t> received_pcm() const;  // mono S16 at receive_rate, on the bridge's RTP timeline
  std::vector<ReceivedPacket> received_packets() const;
  int receive_rate() const { return config_.receive_rate; }

  // Shorthands for the snapshot fields tests check most.
  bool ice_nominated() const { return snapshot().nominated; }
  bool bridge_was_controlling() const { return snapshot().ice.saw_controlling; }
  bool dtls_connected() const { return snapshot().dtls_state == DtlsState::Connected; }
  int64_t first_media_time() const { return snapshot().first_media_us; }
  uint64_t packets_received() const { return snapshot().packets_received; }

  // Polls pred until it holds or timeout_ms passed; returns its last value. In between it iterates
  // `iterate` (default: the caller's thread-default context), so a bridge driven by that context
  // keeps running while a test waits.
  bool wait_for(const std::function<bool(const Snapshot &)> &pred, int timeout_ms,
                GMainContext *iterate = nullptr) const;

  // One line per event (ICE, DTLS, media, errors) with its time since start(): for failure messages.
  std::string describe() const;

  struct Impl;  // meta-peer.cpp

 private:
  Config config_;
  std::unique_ptr<Impl> d_;
};

const char *to_string(DtlsRole role);
const char *to_string(DtlsState state);

}  // namespace meta_peer
