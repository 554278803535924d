// A UDP relay that sits on a call's media path and damages it the way a bad network does: it drops
// RTP packets at random (a fixed seed, so every run drops the same way) and reorders some by holding
// one back and sending it after the next. It never touches STUN, DTLS or RTCP (demultiplexed by the
// first byte, RFC 7983, and RTCP by its packet type, RFC 5761), so ICE and DTLS still set up and
// only the audio suffers.
//
//   caller (meta_peer::Peer, 127.0.0.1:P)  <--- peer side ---  proxy  <--- bridge side ---  voicebridge
//
// The caller's offer advertises bridge_port() instead of its own port; the proxy forwards what
// arrives there to the caller's real address, and what the caller sends back to whichever address
// voicebridge last sent from. To both ends the proxy looks like a NAT: voicebridge learns a
// peer-reflexive address from the caller's STUN answers, which ICE handles as usual.
//
//   faults::UdpImpairmentProxy proxy;
//   proxy.set_impairment(faults::Direction::ToBridge, {0.05, 0.05, 1234});
//   proxy.start(peer.port(), &error);
//   offer = faults::replace_media_port(peer.make_offer(), peer.port(), proxy.bridge_port());
//
// Runs on its own thread (poll(), bounded waits); every method is thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace faults {

// What a datagram on a WebRTC 5-tuple is (RFC 7983 §7, RFC 5761 §4).
enum class Kind { Stun, Dtls, Rtp, Rtcp, Other };
Kind classify(const uint8_t *data, size_t len);
const char *to_string(Kind kind);

enum class Direction {
  ToBridge = 0,  // caller -> voicebridge
  ToCaller = 1,  // voicebridge -> caller
};

struct Impairment {
  double drop = 0;     // probability that an RTP packet is dropped
  double reorder = 0;  // probability that a (kept) RTP packet is held back and sent after the next one
  uint32_t seed = 1;   // of this direction's generator
};

struct DirectionCounts {
  uint64_t stun = 0, dtls = 0, rtcp = 0, other = 0;  // forwarded untouched
  uint64_t rtp = 0;                                  // RTP packets seen (dropped or not)
  uint64_t rtp_dropped = 0;
  uint64_t rtp_reordered = 0;  // held back and sent after a later packet
  uint64_t rtp_forwarded = 0;
};

class UdpImpairmentProxy {
 public:
  UdpImpairmentProxy();
  ~UdpImpairmentProxy();  // stop()
  UdpImpairmentProxy(const UdpImpairmentProxy &) = delete;
  UdpImpairmentProxy &operator=(const UdpImpairmentProxy &) = delete;

  // Binds both sockets on 127.0.0.1 and starts relaying to/from the caller at 127.0.0.1:caller_port.
  bool start(uint16_t caller_port, std::string *error);
  void stop();  // idempotent; the thread is joined

  // Applies from the next packet on (resets that direction's generator to the seed).
  void set_impairment(Direction direction, const Impairment &impairment);

  uint16_t bridge_port() const { return bridge_port_; }  // what the caller's offer advertises
  uint16_t peer_side_port() const { return peer_side_port_; }
  DirectionCounts counts(Direction direction) const;
  std::string bridge_address() const;  // where voicebridge last sent from ("" before it did)

 private:
  struct State;
  void run();

  int bridge_fd_ = -1;  // faces voicebridge: the caller's advertised address
  int peer_fd_ = -1;    // faces the caller
  int wake_fd_[2] = {-1, -1};
  uint16_t bridge_port_ = 0;
  uint16_t peer_side_port_ = 0;
  std::atomic<bool> quit_{false};
  std::thread thread_;
  mutable std::mutex mutex_;
  std::unique_ptr<State> state_;
};

// The offer with its media port (m= line and host candidates) moved from `from` to `to`.
std::string replace_media_port(const std::string &sdp, uint16_t from, uint16_t to);

}  // namespace faults
