// DTLS-SRTP for the peer, done by GStreamer's own elements (gst-plugins-bad "dtls" + "srtp"), the
// same code webrtcbin uses, driven by datagrams the peer reads from and writes to its UDP socket:
//
//   receive() → appsrc netin → dtlssrtpdec ─ rtp_src  → appsink rtpin  → Callbacks::rtp
//                                          └ rtcp_src → appsink rtcpin → Callbacks::rtcp
//   send_rtp() → appsrc rtpout → dtlssrtpenc → appsink netout → Callbacks::send (DTLS records and SRTP)
//
// dtlssrtpenc owns the handshake: it starts it (client) or waits for a ClientHello (server) when it
// leaves READY, so it is kept locked in NULL until start_handshake() — i.e. until the peer knows its
// DTLS role and, as a client, has a selected ICE path to send the ClientHello on (what webrtcbin's
// transportsendbin does with its own dtlssrtpenc).
//
// Callbacks run on GStreamer streaming threads. stop() returns once none is running any more; the
// owner must not call receive() or send_rtp() concurrently with stop().
#pragma once

#include <gst/app/gstappsink.h>
#include <gst/gst.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

namespace meta_peer {

// GstDtlsConnectionState's values (the enum's GType is private to the dtls plugin).
enum class DtlsState { New = 0, Closed = 1, Failed = 2, Connecting = 3, Connected = 4 };

class DtlsSrtpTransport {
 public:
  struct Callbacks {
    std::function<void(const uint8_t *data, size_t len)> send;  // one datagram for the network
    std::function<void(const uint8_t *data, size_t len)> rtp;   // one decrypted RTP packet
    std::function<void(const uint8_t *data, size_t len)> rtcp;  // one decrypted RTCP packet
    std::function<void()> keys_ready;                           // SRTP can encrypt: media may flow
    std::function<void(DtlsState)> state_changed;
    std::function<void(const std::string &)> error;             // a pipeline ERROR message
  };

  DtlsSrtpTransport() = default;
  ~DtlsSrtpTransport();
  DtlsSrtpTransport(const DtlsSrtpTransport &) = delete;
  DtlsSrtpTransport &operator=(const DtlsSrtpTransport &) = delete;

  // connection_id must be unique in the process (dtls keeps a global table of them). pem: the
  // certificate and private key to use. The pipeline is PLAYING on return.
  bool start(const std::string &connection_id, const std::string &pem, Callbacks callbacks, std::string *error);
  // Lets dtlssrtpenc run: as client it sends the ClientHello now, as server it waits for one.
  bool start_handshake(bool is_client, std::string *error);
  bool handshake_started() const { return handshake_started_; }

  void receive(const uint8_t *data, size_t len);  // a DTLS or SRTP/SRTCP datagram from the network
  bool send_rtp(const uint8_t *data, size_t len);  // a plain RTP packet to encrypt and send

  std::string local_pem() const;  // dtlssrtpdec's "pem": the certificate actually in use
  std::string peer_pem() const;   // the certificate the other side presented ("" before the handshake)
  DtlsState state() const;

  void stop();

 private:
  static GstFlowReturn on_netout(GstAppSink *sink, gpointer self);
  static GstFlowReturn on_rtpin(GstAppSink *sink, gpointer self);
  static GstFlowReturn on_rtcpin(GstAppSink *sink, gpointer self);
  static void on_key_set(GstElement *enc, gpointer self);
  static void on_state_notify(GObject *dec, GParamSpec *, gpointer self);
  static GstBusSyncReply on_bus(GstBus *bus, GstMessage *msg, gpointer self);
  using PacketFn = std::function<void(const uint8_t *, size_t)>;
  static void for_each_buffer(GstSample *sample, const PacketFn &fn);

  Callbacks callbacks_;
  GstElement *pipeline_ = nullptr;
  GstElement *netin_ = nullptr;
  GstElement *rtpout_ = nullptr;
  GstElement *dec_ = nullptr;
  GstElement *enc_ = nullptr;
  std::atomic<bool> handshake_started_{false};
  std::atomic<bool> stopping_{false};  // set first in stop(): callbacks from then on are dropped
};

}  // namespace meta_peer
