#include "audio-receiver.h"

#include <opus/opus.h>

#include "rtp-packet.h"

namespace meta_peer {

namespace {
constexpr int64_t kRtpClock = 48000;  // Opus RTP clock (RFC 7587 §4.1), whatever the audio rate
}

AudioReceiver::AudioReceiver(int output_rate, uint8_t opus_pt) : rate_(output_rate), opus_pt_(opus_pt) {}

AudioReceiver::~AudioReceiver() {
  if (decoder_) opus_decoder_destroy(decoder_);
}

bool AudioReceiver::init(std::string *error) {
  int err = OPUS_OK;
  decoder_ = opus_decoder_create(rate_, 1, &err);
  if (err != OPUS_OK || !decoder_) {
    if (error) *error = "opus_decoder_create(" + std::to_string(rate_) + " Hz): " + opus_strerror(err);
    decoder_ = nullptr;
    return false;
  }
  return true;
}

void AudioReceiver::on_rtp(const uint8_t *data, size_t len, int64_t mono_us) {
  RtpHeader h;
  if (!parse_rtp(data, len, &h)) return;
  ReceivedPacket rec;
  rec.mono_us = mono_us;
  rec.seq = h.seq;
  rec.timestamp = h.timestamp;
  rec.ssrc = h.ssrc;
  rec.payload_type = h.payload_type;
  rec.marker = h.marker;
  rec.payload_bytes = h.payload_size;
  rec.pcm_offset = pcm_.size();

  if (h.payload_type == opus_pt_ && decoder_) {
    opus_packets_++;
    // Anchor the timeline on the first packet, and again on a new SSRC or an implausible jump, so
    // that such a packet simply continues the audio.
    auto anchor = [&] {
      first_ts_ = h.timestamp - (uint32_t)((int64_t)pcm_.size() * kRtpClock / rate_);
      ssrc_ = h.ssrc;
      have_first_ = true;
    };
    if (!have_first_ || h.ssrc != ssrc_) anchor();
    // Unsigned subtraction handles the 32-bit wrap; the cast makes "just before" negative.
    int64_t ticks = (int32_t)(h.timestamp - first_ts_);
    int64_t pos = ticks * rate_ / kRtpClock;
    int64_t size = (int64_t)pcm_.size();
    const int64_t max_gap = (int64_t)kMaxGapMs * rate_ / 1000;
    if (pos - size > max_gap || size - pos > max_gap) {
      anchor();
      pos = size;
    }
    if (pos < size) {
      late_packets_++;  // its slot is already filled (reordered or duplicate): keep the first
    } else {
      if (pos > size) {
        gap_samples_ += (size_t)(pos - size);
        pcm_.resize((size_t)pos, 0);
      }
      int16_t out[5760];  // 120 ms at 48 kHz: the longest Opus packet
      int max_samples = rate_ * 120 / 1000;
      int n = opus_decode(decoder_, data + h.payload_offset, (opus_int32)h.payload_size, out, max_samples, 0);
      if (n < 0) {
        decode_errors_++;
      } else {
        rec.pcm_offset = pcm_.size();
        rec.pcm_samples = (size_t)n;
        pcm_.insert(pcm_.end(), out, out + n);
      }
    }
  }
  packets_.push_back(rec);
}

}  // namespace meta_peer
