// Audio analysis for tests: levels, tone detection and the timing of sounds in 16-bit PCM.
//
// Everything works on mono signed 16-bit samples (std::vector<int16_t> or a pointer + count) at any
// sample rate; the default rate is the Realtime API's 24 kHz. Levels are in dBFS with full scale =
// 32768, so a full-scale square wave is 0 dBFS and a full-scale sine -3.01 dBFS (RMS).
//
// Typical use in a test:
//   auto segs = audio_test::find_segments(samples, 24000, -50.0);   // where is there sound?
//   ASSERT one segment; audio_test::duration_ms(segs[0], 24000) ≈ 1000
//   audio_test::dominant_frequency(&samples[segs[0].start], segs[0].length(), 24000) ≈ 440
//   audio_test::rms_dbfs(...) ≈ -13.5
//
// No GStreamer and no GLib here: usable from any test (see wav-file.h for files, gst-test-helpers.h
// for collecting audio from pipelines).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace audio_test {

constexpr int kDefaultRate = 24000;

// ---- conversions ----

// Little-endian S16 bytes <-> samples (an odd trailing byte is ignored).
std::vector<int16_t> samples_from_bytes(const uint8_t *data, size_t bytes);
std::vector<int16_t> samples_from_bytes(const std::vector<uint8_t> &bytes);
std::vector<uint8_t> bytes_from_samples(const std::vector<int16_t> &samples);

// dBFS <-> linear amplitude relative to full scale (1.0 = 32768).
double dbfs_to_linear(double dbfs);
double linear_to_dbfs(double linear);  // -inf for 0

inline double samples_to_ms(size_t samples, int rate = kDefaultRate) { return samples * 1000.0 / rate; }
inline size_t ms_to_samples(double ms, int rate = kDefaultRate) { return (size_t)(ms * rate / 1000.0 + 0.5); }

// ---- synthesis ----

// A sine at hz whose *peak* is peak_dbfs (e.g. -12 dBFS peak is -15 dBFS RMS), with optional linear
// fades at both ends (fade_ms, 0 = none) so it starts and ends without clicks.
std::vector<int16_t> make_tone(double hz, double duration_ms, double peak_dbfs, int rate = kDefaultRate,
                               double fade_ms = 5.0);
std::vector<int16_t> make_silence(double duration_ms, int rate = kDefaultRate);
// Deterministic pseudo-random noise (uniform, peak peak_dbfs) from a seed: every run the same.
std::vector<int16_t> make_noise(double duration_ms, double peak_dbfs, uint32_t seed, int rate = kDefaultRate);
// a followed by b.
std::vector<int16_t> concat(const std::vector<int16_t> &a, const std::vector<int16_t> &b);
// Sample-wise sum with saturation; the result is as long as the longer input.
std::vector<int16_t> mix(const std::vector<int16_t> &a, const std::vector<int16_t> &b);

// ---- levels ----

// RMS level in dBFS; -inf for empty input or digital silence.
double rms_dbfs(const int16_t *samples, size_t n);
double rms_dbfs(const std::vector<int16_t> &samples);
// Peak |sample| in dBFS; -inf for digital silence.
double peak_dbfs(const int16_t *samples, size_t n);
double peak_dbfs(const std::vector<int16_t> &samples);
// Number of samples that are exactly zero / not zero.
size_t count_nonzero(const int16_t *samples, size_t n);
bool all_zero(const int16_t *samples, size_t n);

// ---- frequency ----

// Goertzel: power of the component at hz, |X(hz)|² / n² on samples scaled to ±1 (no window). A sine
// of peak amplitude A (1.0 = full scale) whose frequency falls on the analysis bin gives A²/4.
double goertzel_power(const int16_t *samples, size_t n, double hz, int rate = kDefaultRate);
// Estimated peak amplitude (linear, 1.0 = full scale) of the component at hz. A Hann window is
// applied so that nearby tones leak little; accuracy is a few percent for a steady tone lasting more
// than ~20 periods.
double goertzel_amplitude(const int16_t *samples, size_t n, double hz, int rate = kDefaultRate);
// The same in dBFS (peak).
double goertzel_dbfs(const int16_t *samples, size_t n, double hz, int rate = kDefaultRate);
// The fraction (0..1) of the signal's energy that is a sine at hz (1 for a pure tone at hz, ~0 for
// silence or other frequencies).
double tone_purity(const int16_t *samples, size_t n, double hz, int rate = kDefaultRate);

// The strongest frequency between min_hz and max_hz: a coarse Goertzel scan, then a fine one around
// the best bin. Accurate to ~0.5 Hz for steady tones of a few hundred ms. 0 for silence.
double dominant_frequency(const int16_t *samples, size_t n, int rate = kDefaultRate, double min_hz = 50,
                          double max_hz = 4000);
// Frequency from the rate of positive-going zero crossings (linearly interpolated). Cheap and exact
// for clean tones; meaningless for noise. 0 if fewer than two crossings.
double zero_crossing_frequency(const int16_t *samples, size_t n, int rate = kDefaultRate);

// ---- timing ----

// A stretch of sound: samples [start, end).
struct Segment {
  size_t start = 0;
  size_t end = 0;
  size_t length() const { return end - start; }
};

inline double duration_ms(const Segment &s, int rate = kDefaultRate) { return samples_to_ms(s.length(), rate); }
inline double start_ms(const Segment &s, int rate = kDefaultRate) { return samples_to_ms(s.start, rate); }
inline double end_ms(const Segment &s, int rate = kDefaultRate) { return samples_to_ms(s.end, rate); }

// Segments of non-silence. The signal is cut into windows of window_ms; a window is sound when its
// RMS is above threshold_dbfs. Sound windows closer than min_gap_ms are merged into one segment.
// Each segment's edges are then refined to the first and last sample whose |value| exceeds the
// threshold as an amplitude, so a segment is accurate to the sample for tones with sharp edges.
std::vector<Segment> find_segments(const int16_t *samples, size_t n, int rate = kDefaultRate,
                                   double threshold_dbfs = -50.0, double window_ms = 5.0, double min_gap_ms = 50.0);
std::vector<Segment> find_segments(const std::vector<int16_t> &samples, int rate = kDefaultRate,
                                   double threshold_dbfs = -50.0, double window_ms = 5.0, double min_gap_ms = 50.0);

// Human-readable description of the segments ("[120.0–1120.0 ms, 440.1 Hz, -13.5 dBFS] …") for
// failure messages.
std::string describe_segments(const int16_t *samples, const std::vector<Segment> &segs, int rate = kDefaultRate);

}  // namespace audio_test
