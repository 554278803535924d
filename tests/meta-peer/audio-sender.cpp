#include "audio-sender.h"

#include <opus/opus.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "rtp-packet.h"

namespace meta_peer {

AudioSender::AudioSender(SendSpec spec) : spec_(std::move(spec)) {}

AudioSender::~AudioSender() {
  if (encoder_) opus_encoder_destroy(encoder_);
}

bool AudioSender::init(std::string *error) {
  auto fail = [&](const std::string &msg) {
    if (error) *error = msg;
    return false;
  };
  // Synthesis and encoding run at the speech clip's rate so the clip is never resampled here;
  // opusenc would do the same with a 16 kHz source (WhatsApp captures at 16 kHz).
  rate_ = spec_.speech.samples.empty() ? 16000 : spec_.speech.rate;
  if (rate_ != 8000 && rate_ != 12000 && rate_ != 16000 && rate_ != 24000 && rate_ != 48000)
    return fail("speech rate " + std::to_string(rate_) + " Hz: libopus takes 8000/12000/16000/24000/48000");
  samples_per_frame_ = rate_ * kFrameMs / 1000;

  int err = OPUS_OK;
  encoder_ = opus_encoder_create(rate_, 1, OPUS_APPLICATION_VOIP, &err);
  if (err != OPUS_OK || !encoder_) return fail(std::string("opus_encoder_create: ") + opus_strerror(err));
  // The offer's fmtp: maxaveragebitrate=20000; maxplaybackrate=16000 (wideband); useinbandfec=1.
  // FEC is only emitted when the encoder expects loss, hence the packet-loss hint.
  opus_encoder_ctl(encoder_, OPUS_SET_BITRATE(spec_.bitrate));
  opus_encoder_ctl(encoder_, OPUS_SET_MAX_BANDWIDTH(OPUS_BANDWIDTH_WIDEBAND));
  opus_encoder_ctl(encoder_, OPUS_SET_INBAND_FEC(1));
  opus_encoder_ctl(encoder_, OPUS_SET_PACKET_LOSS_PERC(10));
  opus_encoder_ctl(encoder_, OPUS_SET_DTX(0));  // continuous media, like the app (§5 "who sends first")

  events_.clear();
  int64_t next_free = 0;
  for (const DtmfPress &p : spec_.dtmf) {
    int code = dtmf_event_code(p.digit);
    if (code < 0) return fail(std::string("not a DTMF digit: '") + p.digit + "'");
    if (p.at_ms < 0 || p.duration_ms <= 0) return fail("DTMF press with a negative time or no duration");
    int64_t first = std::max<int64_t>((p.at_ms + kFrameMs - 1) / kFrameMs, next_free);
    int64_t frames = std::max<int64_t>(1, (p.duration_ms + kFrameMs - 1) / kFrameMs);
    // The duration field is 16 bits of 1/8000 s: longer presses would need RFC 4733 segments.
    if (frames * kDtmfUnitsPerFrame > 0xffff) return fail("DTMF press longer than 8 s");
    events_.push_back({code, first, frames});
    next_free = first + frames + 3;
  }
  return true;
}

const AudioSender::Event *AudioSender::event_at(int64_t k) const {
  for (const Event &e : events_)
    if (k >= e.first_frame && k < e.first_frame + e.frames + 3) return &e;
  return nullptr;
}

std::vector<int16_t> AudioSender::synthesize_frame(int64_t k) const {
  std::vector<double> mix(samples_per_frame_, 0.0);
  int64_t first = k * samples_per_frame_;
  const ToneSpec &t = spec_.tone;
  if (t.hz > 0) {
    double amplitude = 32768.0 * std::pow(10.0, t.peak_dbfs / 20.0);
    int64_t start = (int64_t)t.start_ms * rate_ / 1000;
    int64_t end = t.duration_ms < 0 ? INT64_MAX : start + (int64_t)t.duration_ms * rate_ / 1000;
    for (int i = 0; i < samples_per_frame_; i++) {
      int64_t n = first + i;
      // The phase is a function of the absolute sample index: continuous across frames.
      if (n >= start && n < end) mix[i] += amplitude * std::sin(2.0 * M_PI * t.hz * (double)(n - start) / rate_);
    }
  }
  const SpeechSpec &s = spec_.speech;
  if (!s.samples.empty()) {
    int64_t start = (int64_t)s.start_ms * rate_ / 1000;
    for (int i = 0; i < samples_per_frame_; i++) {
      int64_t n = first + i - start;
      if (n >= 0 && n < (int64_t)s.samples.size()) mix[i] += s.samples[(size_t)n];
    }
  }
  std::vector<int16_t> out(samples_per_frame_);
  for (int i = 0; i < samples_per_frame_; i++) out[i] = (int16_t)std::lround(std::clamp(mix[i], -32768.0, 32767.0));
  return out;
}

std::vector<uint8_t> AudioSender::next_packet() {
  const int64_t k = frame_++;
  const uint16_t seq = (uint16_t)(spec_.seq_base + k);
  const uint32_t ts = spec_.timestamp_base + (uint32_t)(k * kTimestampStep);

  // The encoder sees every frame, even those a key press replaces, so that its state stays that of
  // a continuous signal (as in a phone, where the microphone keeps running).
  std::vector<int16_t> pcm = synthesize_frame(k);
  unsigned char opus[1275];  // the largest Opus frame (RFC 6716 §3.2.1)
  opus_int32 n = opus_encode(encoder_, pcm.data(), samples_per_frame_, opus, sizeof opus);

  if (const Event *e = event_at(k)) {
    int64_t j = k - e->first_frame;
    TelephoneEvent ev;
    ev.event = e->code;
    ev.volume = spec_.dtmf_volume;
    ev.end = j >= e->frames;
    ev.duration = (uint16_t)(std::min(j + 1, e->frames) * kDtmfUnitsPerFrame);
    std::vector<uint8_t> payload = build_telephone_event(ev);
    const uint32_t event_ts = spec_.timestamp_base + (uint32_t)(e->first_frame * kTimestampStep);
    dtmf_packets_++;
    return build_rtp(j == 0, spec_.dtmf_pt, seq, event_ts, spec_.ssrc, payload.data(), payload.size());
  }
  if (n < 0) n = 0;  // cannot happen with valid settings; an empty payload is still a packet
  // The marker bit starts a talkspurt (RFC 3551 §4.1): only the very first packet of the stream.
  return build_rtp(k == 0, spec_.opus_pt, seq, ts, spec_.ssrc, opus, (size_t)n);
}

}  // namespace meta_peer
