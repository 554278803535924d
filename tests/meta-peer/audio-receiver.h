// What the WhatsApp user "hears": decrypted RTP from the bridge, Opus decoded to mono S16 at a fixed
// rate and laid out on the sender's RTP timeline, so that a gap in the stream stays a gap of silence in
// the audio (a test can then tell "late" from "missing"). Every packet is also recorded with its
// arrival time. Not thread-safe: the owner serialises calls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

struct OpusDecoder;

namespace meta_peer {

struct ReceivedPacket {
  int64_t mono_us = 0;        // g_get_monotonic_time() when the decrypted packet came out of SRTP
  uint16_t seq = 0;
  uint32_t timestamp = 0;
  uint32_t ssrc = 0;
  uint8_t payload_type = 0;
  bool marker = false;
  size_t payload_bytes = 0;
  // Where its audio lies in the decoded PCM; pcm_samples is 0 for packets not decoded (other PTs,
  // late or duplicate packets).
  size_t pcm_offset = 0;
  size_t pcm_samples = 0;
};

class AudioReceiver {
 public:
  // A gap in RTP timestamps larger than this is taken as a timestamp jump, not silence.
  static constexpr int kMaxGapMs = 10000;

  AudioReceiver(int output_rate, uint8_t opus_pt);
  ~AudioReceiver();
  AudioReceiver(const AudioReceiver &) = delete;
  AudioReceiver &operator=(const AudioReceiver &) = delete;

  bool init(std::string *error);  // output_rate must be one libopus decodes to (8/12/16/24/48 kHz)
  void set_opus_pt(uint8_t pt) { opus_pt_ = pt; }

  // One decrypted RTP packet.
  void on_rtp(const uint8_t *data, size_t len, int64_t mono_us);

  const std::vector<int16_t> &pcm() const { return pcm_; }
  const std::vector<ReceivedPacket> &packets() const { return packets_; }
  int rate() const { return rate_; }
  size_t opus_packets() const { return opus_packets_; }
  size_t decode_errors() const { return decode_errors_; }
  size_t late_packets() const { return late_packets_; }
  size_t gap_samples() const { return gap_samples_; }  // silence inserted for missing packets

 private:
  int rate_;
  uint8_t opus_pt_;
  OpusDecoder *decoder_ = nullptr;
  std::vector<int16_t> pcm_;
  std::vector<ReceivedPacket> packets_;
  bool have_first_ = false;
  uint32_t first_ts_ = 0;
  uint32_t ssrc_ = 0;
  size_t opus_packets_ = 0;
  size_t decode_errors_ = 0;
  size_t late_packets_ = 0;
  size_t gap_samples_ = 0;
};

}  // namespace meta_peer
