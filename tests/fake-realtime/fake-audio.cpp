#include "fake-audio.h"

#include <glib.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace fake_realtime::detail {

std::vector<uint8_t> synth_tone(int duration_ms, double hz, double amplitude) {
  const size_t n = static_cast<size_t>(std::max(duration_ms, 0)) * kSampleRate / 1000;
  const size_t fade = static_cast<size_t>(kSampleRate) * 5 / 1000;
  const double peak = std::clamp(amplitude, 0.0, 1.0) * 32767.0;
  std::vector<uint8_t> out(n * 2);
  for (size_t i = 0; i < n; i++) {
    double gain = 1.0;
    if (i < fade)
      gain = static_cast<double>(i) / fade;
    else if (n - 1 - i < fade)
      gain = static_cast<double>(n - 1 - i) / fade;
    double v = peak * gain * std::sin(2.0 * G_PI * hz * static_cast<double>(i) / kSampleRate);
    auto s = static_cast<int16_t>(std::lrint(v));
    out[2 * i] = static_cast<uint8_t>(static_cast<uint16_t>(s) & 0xff);
    out[2 * i + 1] = static_cast<uint8_t>(static_cast<uint16_t>(s) >> 8);
  }
  return out;
}

double level_dbfs(const uint8_t *pcm, size_t bytes) {
  const size_t n = bytes / 2;
  if (n == 0)
    return -std::numeric_limits<double>::infinity();
  double sum = 0;
  for (size_t i = 0; i < n; i++) {
    auto s = static_cast<int16_t>(static_cast<uint16_t>(pcm[2 * i] | (pcm[2 * i + 1] << 8)));
    sum += static_cast<double>(s) * s;
  }
  double rms = std::sqrt(sum / n);
  if (rms <= 0)
    return -std::numeric_limits<double>::infinity();
  return 20.0 * std::log10(rms / 32768.0);
}

std::string base64(const uint8_t *data, size_t length) {
  gchar *text = g_base64_encode(data, length);
  std::string out(text);
  g_free(text);
  return out;
}

std::vector<uint8_t> unbase64(const std::string &text) {
  gsize length = 0;
  guchar *data = g_base64_decode(text.c_str(), &length);
  std::vector<uint8_t> out(data, data + length);
  g_free(data);
  return out;
}

EnergyVad::Event EnergyVad::feed(const uint8_t *frame, int silence_ms) {
  const bool loud = level_dbfs(frame, kVadFrameBytes) > threshold_dbfs_;
  if (!in_speech_) {
    if (!loud)
      return Event::None;
    in_speech_ = true;
    silence_run_ms_ = 0;
    return Event::SpeechStarted;
  }
  if (loud) {
    silence_run_ms_ = 0;
    return Event::None;
  }
  silence_run_ms_ += kVadFrameMs;
  if (silence_run_ms_ < silence_ms)
    return Event::None;
  in_speech_ = false;
  silence_run_ms_ = 0;
  return Event::SpeechStopped;
}

void EnergyVad::reset() {
  in_speech_ = false;
  silence_run_ms_ = 0;
}

void EnergyVad::force_speech() {
  in_speech_ = true;
  silence_run_ms_ = 0;
}

}  // namespace fake_realtime::detail
