// Reading and writing WAV files of 16-bit PCM, for tests (inputs for pipelines, checking what a
// pipeline recorded). No GStreamer and no GLib.
//
//   audio_test::write_wav("in.wav", samples, 24000);
//   audio_test::WavData w; std::string err;
//   if (!audio_test::read_wav("out.wav", &w, &err)) fail(err);
//   auto mono = w.channel(0);
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace audio_test {

struct WavData {
  int rate = 0;
  int channels = 0;
  std::vector<int16_t> samples;  // interleaved when channels > 1

  size_t frames() const { return channels > 0 ? samples.size() / channels : 0; }
  double duration_ms() const { return rate > 0 ? frames() * 1000.0 / rate : 0; }
  // One channel, de-interleaved.
  std::vector<int16_t> channel(int index) const;
};

// Writes a canonical 44-byte-header RIFF/WAVE file of 16-bit PCM. samples are interleaved when
// channels > 1. Returns false and sets *error (if given) on I/O failure.
bool write_wav(const std::string &path, const std::vector<int16_t> &samples, int rate, int channels = 1,
               std::string *error = nullptr);

// Reads a RIFF/WAVE file of 16-bit integer PCM (format 1, or WAVE_FORMAT_EXTENSIBLE with the PCM
// subformat). Skips unknown chunks (LIST, fact, …). Tolerates a data chunk whose declared size is
// larger than the file (a recorder killed before it rewrote the header, or 0xFFFFFFFF for
// streaming): the samples present are returned. Any other format is an error.
bool read_wav(const std::string &path, WavData *out, std::string *error = nullptr);

}  // namespace audio_test
