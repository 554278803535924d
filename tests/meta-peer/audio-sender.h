// What the WhatsApp user "says": one RTP packet per 20 ms, Opus like the WhatsApp app (16 kHz audio
// bandwidth, 20 kbit/s, in-band FEC, PT 111) or, while a key is pressed, RFC 4733 telephone-events
// (PT 126, 8000 Hz duration units) in the same SSRC, sequence and timestamp space (whatsapp-calling.md
// §7.1).
//
// Program time starts at the first packet. Frame k covers [20k, 20k + 20) ms; its RTP timestamp is
// base + 960k (48 kHz RTP clock) and its sequence number base + k, whatever it carries.
//
// A key press at at_ms lasting duration_ms replaces the audio frames from ceil(at_ms / 20) on with
// n = ceil(duration_ms / 20) telephone-event packets (the first with the marker bit, durations
// 160, 320, …, n·160) and then the three end packets (E bit, duration n·160) of RFC 4733 §2.5.1.4, one
// per frame. All of one event's packets carry the timestamp of its first frame. Presses that would
// overlap are pushed back until the previous one has ended. Pure computation: no clock, no network.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

struct OpusEncoder;

namespace meta_peer {

struct ToneSpec {
  double hz = 300.0;        // 0: no tone
  double peak_dbfs = -12.0;
  int start_ms = 0;
  int duration_ms = -1;     // -1: until the end of the call
};

// "Caller speech": mono S16 samples played once from start_ms.
struct SpeechSpec {
  std::vector<int16_t> samples;
  int rate = 16000;         // 8000, 12000, 16000, 24000 or 48000 (rates libopus takes directly)
  int start_ms = 0;
};

struct DtmfPress {
  char digit = '1';
  int at_ms = 0;            // program time of the press
  int duration_ms = 160;
};

struct SendSpec {
  ToneSpec tone;
  SpeechSpec speech;
  std::vector<DtmfPress> dtmf;
  int dtmf_volume = 10;     // -dBm0, RFC 4733 volume field
  uint8_t opus_pt = 111;
  uint8_t dtmf_pt = 126;
  uint32_t ssrc = 0;
  uint16_t seq_base = 0;
  uint32_t timestamp_base = 0;
  int bitrate = 20000;      // the offer's maxaveragebitrate
};

class AudioSender {
 public:
  static constexpr int kFrameMs = 20;
  static constexpr uint32_t kRtpClock = 48000;
  static constexpr uint32_t kTimestampStep = kRtpClock * kFrameMs / 1000;  // 960
  static constexpr uint16_t kDtmfUnitsPerFrame = 8000 * kFrameMs / 1000;    // 160

  explicit AudioSender(SendSpec spec);
  ~AudioSender();
  AudioSender(const AudioSender &) = delete;
  AudioSender &operator=(const AudioSender &) = delete;

  // Creates the Opus encoder and lays out the key presses; false with *error on bad input.
  bool init(std::string *error);

  // The RTP packet of the next frame.
  std::vector<uint8_t> next_packet();

  int64_t frames() const { return frame_; }     // packets produced so far
  int dtmf_packets() const { return dtmf_packets_; }
  int sample_rate() const { return rate_; }     // the rate audio is synthesised and encoded at
  // The audio of frame k as it goes into the encoder (for tests of the synthesis).
  std::vector<int16_t> synthesize_frame(int64_t k) const;

 private:
  struct Event {  // one laid-out key press, in frames
    int code;
    int64_t first_frame;
    int64_t frames;  // frames with a running duration; three end frames follow
  };
  const Event *event_at(int64_t k) const;

  SendSpec spec_;
  int rate_ = 16000;
  int samples_per_frame_ = 320;
  OpusEncoder *encoder_ = nullptr;
  std::vector<Event> events_;
  int64_t frame_ = 0;
  int dtmf_packets_ = 0;
};

}  // namespace meta_peer
