// A real webrtcbin (GStreamer 1.22) playing the bridge's part against meta_peer::Peer in the
// self-test: it sends a 440 Hz tone (audiotestsrc → opusenc → rtpopuspay pt=111), decodes what it
// receives to 48 kHz mono S16, and reads RFC 4733 DTMF off the wire the way app/call.cpp does (a probe
// on webrtcbin's internal rtpbin recv_rtp_sink_0, which also keeps PT 126 away from the jitter buffer:
// webrtcbin 1.22 drops telephone-event from its negotiation).
//
// Set up like voicebridge's calls (gstreamer-1.22-notes §1.4 method A, §1.10): add-transceiver
// SENDRECV with Opus caps before any description, the send chain linked to the SINK pad webrtcbin
// creates, ICE on 127.0.0.1 only, no ICE-TCP, no UPnP.
//
// Every webrtcbin callback hops to the GMainContext given to the constructor; the synchronous
// methods iterate it (bounded) until the step they wait for is done.
#pragma once

#include <gst/gst.h>
#include <gst/webrtc/webrtc.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace test_bridge {

// What the probe on rtpbin saw of the peer's RTP (before the jitter buffer).
struct WireStats {
  uint64_t packets = 0;
  uint64_t opus_packets = 0;   // PT 111
  uint64_t dtmf_packets = 0;   // PT 126
  uint64_t ssrcs = 0;          // distinct SSRCs seen
  uint64_t seq_gaps = 0;       // packets whose seq was not previous + 1
  uint64_t dtmf_end_packets = 0;
  std::string digits;          // one per event (end packet with a new timestamp)
  bool dtmf_marker_on_first = true;  // every event's first packet had the marker bit
  bool watching = false;       // the probe is installed (rtpbin had recv_rtp_sink_0)
};

class WebrtcBridge {
 public:
  static constexpr int kRate = 48000;

  explicit WebrtcBridge(GMainContext *ctx, double tone_hz = 440.0);
  // Before start(): libnice's stun-max-retransmissions for connectivity checks (0: libnice's default
  // of 3, i.e. a check is given up 3.5 s after it was first sent). voicebridge raises it (app/call.cpp).
  void set_stun_max_retransmissions(guint n) { stun_max_retransmissions_ = n; }
  ~WebrtcBridge();
  WebrtcBridge(const WebrtcBridge &) = delete;
  WebrtcBridge &operator=(const WebrtcBridge &) = delete;

  bool start(std::string *error);  // pipeline with webrtcbin, PLAYING, nothing negotiated

  // User-initiated call: apply the offer, answer, set it, wait for ICE gathering; *answer is then the
  // local description (candidates included).
  bool answer_offer(const std::string &offer, std::string *answer, std::string *error, int timeout_ms);
  // Business-initiated call: create and set an offer, wait for gathering; then apply the answer.
  bool create_offer(std::string *offer, std::string *error, int timeout_ms);
  bool apply_answer(const std::string &answer, std::string *error, int timeout_ms);

  GstWebRTCICEConnectionState ice_state() const;
  GstWebRTCPeerConnectionState connection_state() const;
  bool ice_controlling() const;  // the NiceAgent's controlling-mode
  bool dtls_client() const;      // the DTLS transport's "client"

  std::vector<int16_t> received() const;  // decoded audio from the peer
  WireStats wire() const;
  void stop();

 private:
  struct Shared;  // state webrtcbin's threads reach, kept alive by them (webrtc-bridge.cpp)

  bool run_promise(const std::function<void(GstPromise *)> &emit, GstStructure **reply, std::string *error,
                   int timeout_ms);
  bool set_description(bool local, GstWebRTCSDPType type, const std::string &text, std::string *error,
                       int timeout_ms);
  bool wait_gathered(int timeout_ms);
  std::string local_description() const;
  void watch_rtp();
  void iterate_until(const std::function<bool()> &done, int timeout_ms);

  GMainContext *ctx_;
  double tone_hz_;
  guint stun_max_retransmissions_ = 0;
  GstElement *pipeline_ = nullptr;
  GstElement *webrtc_ = nullptr;
  std::shared_ptr<Shared> shared_;
};

}  // namespace test_bridge
