#include "audio-analysis.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace audio_test {

namespace {

constexpr double kFullScale = 32768.0;
constexpr double kPi = 3.14159265358979323846;

int16_t saturate(double v) {
  long r = std::lrint(v);
  if (r > 32767) return 32767;
  if (r < -32768) return -32768;
  return (int16_t)r;
}

// Goertzel on a (possibly windowed) block; returns |X|² with samples scaled to ±1.
double goertzel_raw(const int16_t *x, size_t n, double hz, int rate, bool hann, double *window_sum) {
  const double w = 2.0 * kPi * hz / rate;
  const double coeff = 2.0 * std::cos(w);
  double s1 = 0, s2 = 0, wsum = 0;
  for (size_t i = 0; i < n; i++) {
    double win = 1.0;
    if (hann && n > 1) win = 0.5 - 0.5 * std::cos(2.0 * kPi * (double)i / (double)(n - 1));
    wsum += win;
    double s0 = win * (x[i] / kFullScale) + coeff * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  if (window_sum) *window_sum = wsum;
  double power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
  return power < 0 ? 0 : power;
}

}  // namespace

std::vector<int16_t> samples_from_bytes(const uint8_t *data, size_t bytes) {
  std::vector<int16_t> out(bytes / 2);
  for (size_t i = 0; i < out.size(); i++)
    out[i] = (int16_t)(uint16_t)(data[2 * i] | (data[2 * i + 1] << 8));
  return out;
}

std::vector<int16_t> samples_from_bytes(const std::vector<uint8_t> &bytes) {
  return samples_from_bytes(bytes.data(), bytes.size());
}

std::vector<uint8_t> bytes_from_samples(const std::vector<int16_t> &samples) {
  std::vector<uint8_t> out(samples.size() * 2);
  for (size_t i = 0; i < samples.size(); i++) {
    uint16_t u = (uint16_t)samples[i];
    out[2 * i] = (uint8_t)(u & 0xff);
    out[2 * i + 1] = (uint8_t)(u >> 8);
  }
  return out;
}

double dbfs_to_linear(double dbfs) { return std::pow(10.0, dbfs / 20.0); }

double linear_to_dbfs(double linear) {
  if (linear <= 0) return -std::numeric_limits<double>::infinity();
  return 20.0 * std::log10(linear);
}

std::vector<int16_t> make_tone(double hz, double duration_ms, double peak_dbfs, int rate, double fade_ms) {
  const size_t n = ms_to_samples(duration_ms, rate);
  const size_t fade = std::min(n / 2, ms_to_samples(fade_ms, rate));
  const double peak = dbfs_to_linear(peak_dbfs) * kFullScale;
  std::vector<int16_t> out(n);
  for (size_t i = 0; i < n; i++) {
    double gain = 1.0;
    if (fade > 0 && i < fade) gain = (double)i / fade;
    if (fade > 0 && n - 1 - i < fade) gain = std::min(gain, (double)(n - 1 - i) / fade);
    out[i] = saturate(peak * gain * std::sin(2.0 * kPi * hz * (double)i / rate));
  }
  return out;
}

std::vector<int16_t> make_silence(double duration_ms, int rate) {
  return std::vector<int16_t>(ms_to_samples(duration_ms, rate), 0);
}

std::vector<int16_t> make_noise(double duration_ms, double peak_dbfs, uint32_t seed, int rate) {
  const size_t n = ms_to_samples(duration_ms, rate);
  const double peak = dbfs_to_linear(peak_dbfs) * kFullScale;
  std::vector<int16_t> out(n);
  uint32_t state = seed ? seed : 1;
  for (size_t i = 0; i < n; i++) {
    state = state * 1664525u + 1013904223u;  // Numerical Recipes LCG
    double u = ((state >> 8) / (double)(1u << 24)) * 2.0 - 1.0;
    out[i] = saturate(peak * u);
  }
  return out;
}

std::vector<int16_t> concat(const std::vector<int16_t> &a, const std::vector<int16_t> &b) {
  std::vector<int16_t> out(a);
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

std::vector<int16_t> mix(const std::vector<int16_t> &a, const std::vector<int16_t> &b) {
  std::vector<int16_t> out(std::max(a.size(), b.size()));
  for (size_t i = 0; i < out.size(); i++) {
    double v = (i < a.size() ? a[i] : 0) + (double)(i < b.size() ? b[i] : 0);
    out[i] = saturate(v);
  }
  return out;
}

double rms_dbfs(const int16_t *samples, size_t n) {
  if (n == 0) return -std::numeric_limits<double>::infinity();
  double sum = 0;
  for (size_t i = 0; i < n; i++) sum += (double)samples[i] * samples[i];
  return linear_to_dbfs(std::sqrt(sum / n) / kFullScale);
}

double rms_dbfs(const std::vector<int16_t> &samples) { return rms_dbfs(samples.data(), samples.size()); }

double peak_dbfs(const int16_t *samples, size_t n) {
  int peak = 0;
  for (size_t i = 0; i < n; i++) peak = std::max(peak, std::abs((int)samples[i]));
  return linear_to_dbfs(peak / kFullScale);
}

double peak_dbfs(const std::vector<int16_t> &samples) { return peak_dbfs(samples.data(), samples.size()); }

size_t count_nonzero(const int16_t *samples, size_t n) {
  size_t c = 0;
  for (size_t i = 0; i < n; i++) c += samples[i] != 0;
  return c;
}

bool all_zero(const int16_t *samples, size_t n) { return count_nonzero(samples, n) == 0; }

double goertzel_power(const int16_t *samples, size_t n, double hz, int rate) {
  if (n == 0) return 0;
  double p = goertzel_raw(samples, n, hz, rate, false, nullptr);
  return p / ((double)n * n);
}

double goertzel_amplitude(const int16_t *samples, size_t n, double hz, int rate) {
  if (n == 0) return 0;
  double wsum = 0;
  double p = goertzel_raw(samples, n, hz, rate, true, &wsum);
  if (wsum <= 0) return 0;
  return 2.0 * std::sqrt(p) / wsum;
}

double goertzel_dbfs(const int16_t *samples, size_t n, double hz, int rate) {
  return linear_to_dbfs(goertzel_amplitude(samples, n, hz, rate));
}

double tone_purity(const int16_t *samples, size_t n, double hz, int rate) {
  if (n == 0) return 0;
  double sum = 0;
  for (size_t i = 0; i < n; i++) {
    double v = samples[i] / kFullScale;
    sum += v * v;
  }
  double mean_square = sum / n;
  if (mean_square <= 0) return 0;
  double a = goertzel_amplitude(samples, n, hz, rate);
  return std::min(1.0, (a * a / 2.0) / mean_square);
}

double dominant_frequency(const int16_t *samples, size_t n, int rate, double min_hz, double max_hz) {
  if (n < 16 || all_zero(samples, n)) return 0;
  // Analyse at most one second: enough resolution, bounded cost.
  n = std::min(n, (size_t)rate);
  max_hz = std::min(max_hz, rate / 2.0 - 1);
  // Window once (Hann), then run plain Goertzel on the windowed block at each candidate frequency.
  std::vector<double> x(n);
  for (size_t i = 0; i < n; i++)
    x[i] = (0.5 - 0.5 * std::cos(2.0 * kPi * (double)i / (double)(n - 1))) * (samples[i] / kFullScale);
  auto power_at = [&](double hz) {
    const double coeff = 2.0 * std::cos(2.0 * kPi * hz / rate);
    double s1 = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) {
      double s0 = x[i] + coeff * s1 - s2;
      s2 = s1;
      s1 = s0;
    }
    return s1 * s1 + s2 * s2 - coeff * s1 * s2;
  };
  // The Hann main lobe is ±2 bins wide (a bin is rate/n Hz), so a 2-bin coarse step cannot miss a
  // steady tone's peak; then refine in 0.25 Hz steps around it.
  const double coarse = std::max(2.0 * rate / (double)n, 1.0);
  double best_hz = min_hz, best = -1;
  for (double f = min_hz; f <= max_hz; f += coarse) {
    double p = power_at(f);
    if (p > best) {
      best = p;
      best_hz = f;
    }
  }
  const double lo = std::max(min_hz, best_hz - coarse), hi = std::min(max_hz, best_hz + coarse);
  for (double f = lo; f <= hi; f += 0.25) {
    double p = power_at(f);
    if (p > best) {
      best = p;
      best_hz = f;
    }
  }
  return best_hz;
}

double zero_crossing_frequency(const int16_t *samples, size_t n, int rate) {
  double first = -1, last = -1;
  size_t crossings = 0;
  for (size_t i = 1; i < n; i++) {
    if (samples[i - 1] < 0 && samples[i] >= 0) {
      // Interpolate where the line between the two samples crosses zero.
      double a = samples[i - 1], b = samples[i];
      double t = (i - 1) + (-a) / (b - a);
      if (first < 0) first = t;
      last = t;
      crossings++;
    }
  }
  if (crossings < 2 || last <= first) return 0;
  return (crossings - 1) * (double)rate / (last - first);
}

std::vector<Segment> find_segments(const int16_t *samples, size_t n, int rate, double threshold_dbfs, double window_ms,
                                   double min_gap_ms) {
  std::vector<Segment> out;
  const size_t win = std::max<size_t>(1, ms_to_samples(window_ms, rate));
  const size_t gap = ms_to_samples(min_gap_ms, rate);
  const double amp = dbfs_to_linear(threshold_dbfs) * kFullScale;
  // 1. windows above the threshold, merged across short gaps
  std::vector<Segment> raw;
  for (size_t pos = 0; pos < n; pos += win) {
    size_t len = std::min(win, n - pos);
    if (rms_dbfs(samples + pos, len) <= threshold_dbfs) continue;
    if (!raw.empty() && pos - raw.back().end <= gap)
      raw.back().end = pos + len;
    else
      raw.push_back({pos, pos + len});
  }
  // 2. refine the edges to the first/last sample above the threshold as an amplitude; look one
  // window outside the segment too (a fade-in may start in a window whose RMS was below it)
  for (Segment s : raw) {
    size_t lo = s.start >= win ? s.start - win : 0;
    size_t hi = std::min(n, s.end + win);
    size_t first = s.start, last = s.end;
    for (size_t i = lo; i < s.end; i++)
      if (std::abs((double)samples[i]) > amp) {
        first = i;
        break;
      }
    for (size_t i = hi; i > s.start; i--)
      if (std::abs((double)samples[i - 1]) > amp) {
        last = i;
        break;
      }
    if (!out.empty() && first < out.back().end) first = out.back().end;
    if (last > first) out.push_back({first, last});
  }
  return out;
}

std::vector<Segment> find_segments(const std::vector<int16_t> &samples, int rate, double threshold_dbfs,
                                   double window_ms, double min_gap_ms) {
  return find_segments(samples.data(), samples.size(), rate, threshold_dbfs, window_ms, min_gap_ms);
}

std::string describe_segments(const int16_t *samples, const std::vector<Segment> &segs, int rate) {
  std::string out;
  char buf[160];
  for (const Segment &s : segs) {
    std::snprintf(buf, sizeof buf, "[%.1f-%.1f ms (%.1f ms), %.1f Hz, %.1f dBFS] ", start_ms(s, rate), end_ms(s, rate),
                  duration_ms(s, rate), dominant_frequency(samples + s.start, s.length(), rate),
                  rms_dbfs(samples + s.start, s.length()));
    out += buf;
  }
  if (out.empty()) out = "(no sound)";
  return out;
}

}  // namespace audio_test
