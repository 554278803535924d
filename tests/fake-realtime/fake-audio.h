// Audio for the fake Realtime server: the deterministic reply tone and the energy VAD that stands in
// for server_vad. Everything is S16LE, 24 kHz, mono — the only format the fake speaks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace fake_realtime::detail {

constexpr int kSampleRate = 24000;
constexpr int kBytesPerMs = 48;  // 24 samples × 2 bytes
constexpr int kVadFrameMs = 20;
constexpr size_t kVadFrameBytes = kVadFrameMs * kBytesPerMs;

// A sine of duration_ms at hz with peak amplitude (0..1) and 5 ms linear fades, so the reply starts
// and ends without clicks.
std::vector<uint8_t> synth_tone(int duration_ms, double hz, double amplitude);

// Level of a block of S16LE samples in dBFS (RMS relative to full scale; silence is -inf).
double level_dbfs(const uint8_t *pcm, size_t bytes);

std::string base64(const uint8_t *data, size_t length);
std::vector<uint8_t> unbase64(const std::string &text);

// Energy voice-activity detector on 20 ms frames: a frame louder than the threshold is speech;
// speech ends after silence_ms of consecutive quiet frames.
class EnergyVad {
 public:
  enum class Event { None, SpeechStarted, SpeechStopped };

  explicit EnergyVad(double threshold_dbfs) : threshold_dbfs_(threshold_dbfs) {}

  // One kVadFrameBytes frame. The caller knows the frame's position on the input timeline.
  Event feed(const uint8_t *frame, int silence_ms);
  void reset();
  void force_speech();  // as if speech had just started (a scripted barge-in)
  bool in_speech() const { return in_speech_; }

 private:
  double threshold_dbfs_;
  bool in_speech_ = false;
  int silence_run_ms_ = 0;
};

}  // namespace fake_realtime::detail
