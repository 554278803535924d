#include "wav-file.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>

namespace audio_test {

namespace {

void put_u32(std::vector<uint8_t> &b, uint32_t v) {
  for (int i = 0; i < 4; i++) b.push_back((uint8_t)(v >> (8 * i)));
}

void put_u16(std::vector<uint8_t> &b, uint16_t v) {
  b.push_back((uint8_t)(v & 0xff));
  b.push_back((uint8_t)(v >> 8));
}

uint32_t get_u32(const uint8_t *p) { return p[0] | (p[1] << 8) | (p[2] << 16) | ((uint32_t)p[3] << 24); }
uint16_t get_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

bool fail(std::string *error, const std::string &message) {
  if (error) *error = message;
  return false;
}

}  // namespace

std::vector<int16_t> WavData::channel(int index) const {
  std::vector<int16_t> out;
  if (channels <= 0 || index < 0 || index >= channels) return out;
  out.reserve(frames());
  for (size_t i = (size_t)index; i < samples.size(); i += (size_t)channels) out.push_back(samples[i]);
  return out;
}

bool write_wav(const std::string &path, const std::vector<int16_t> &samples, int rate, int channels,
               std::string *error) {
  if (rate <= 0 || channels <= 0) return fail(error, "bad rate or channel count");
  const uint32_t data_bytes = (uint32_t)(samples.size() * 2);
  std::vector<uint8_t> b;
  b.reserve(44 + data_bytes);
  b.insert(b.end(), {'R', 'I', 'F', 'F'});
  put_u32(b, 36 + data_bytes);
  b.insert(b.end(), {'W', 'A', 'V', 'E', 'f', 'm', 't', ' '});
  put_u32(b, 16);
  put_u16(b, 1);  // PCM
  put_u16(b, (uint16_t)channels);
  put_u32(b, (uint32_t)rate);
  put_u32(b, (uint32_t)(rate * channels * 2));
  put_u16(b, (uint16_t)(channels * 2));
  put_u16(b, 16);
  b.insert(b.end(), {'d', 'a', 't', 'a'});
  put_u32(b, data_bytes);
  for (int16_t s : samples) put_u16(b, (uint16_t)s);
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) return fail(error, "cannot open " + path + " for writing");
  f.write((const char *)b.data(), (std::streamsize)b.size());
  if (!f) return fail(error, "cannot write " + path);
  return true;
}

bool read_wav(const std::string &path, WavData *out, std::string *error) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return fail(error, "cannot open " + path);
  std::vector<uint8_t> b((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (b.size() < 12 || memcmp(b.data(), "RIFF", 4) != 0 || memcmp(b.data() + 8, "WAVE", 4) != 0)
    return fail(error, path + ": not a RIFF/WAVE file (" + std::to_string(b.size()) + " bytes)");
  size_t pos = 12;
  bool have_fmt = false;
  WavData w;
  while (pos + 8 <= b.size()) {
    const uint8_t *chunk = b.data() + pos;
    uint32_t size = get_u32(chunk + 4);
    const uint8_t *body = chunk + 8;
    size_t avail = b.size() - (pos + 8);
    if (memcmp(chunk, "fmt ", 4) == 0) {
      if (size < 16 || avail < 16) return fail(error, path + ": short fmt chunk");
      uint16_t format = get_u16(body);
      w.channels = get_u16(body + 2);
      w.rate = (int)get_u32(body + 4);
      uint16_t bits = get_u16(body + 14);
      if (format == 0xFFFE && size >= 40 && avail >= 40) format = get_u16(body + 24);  // extensible: subformat GUID
      if (format != 1 || bits != 16)
        return fail(error, path + ": not 16-bit PCM (format " + std::to_string(format) + ", " +
                               std::to_string(bits) + " bits)");
      if (w.channels <= 0 || w.rate <= 0) return fail(error, path + ": bad channel count or rate");
      have_fmt = true;
    } else if (memcmp(chunk, "data", 4) == 0) {
      if (!have_fmt) return fail(error, path + ": data chunk before fmt chunk");
      size_t bytes = size > avail ? avail : size;
      bytes -= bytes % (2 * (size_t)w.channels);
      w.samples.resize(bytes / 2);
      for (size_t i = 0; i < w.samples.size(); i++) w.samples[i] = (int16_t)get_u16(body + 2 * i);
      *out = std::move(w);
      return true;
    }
    if (size > avail) break;
    pos += 8 + size + (size & 1);  // chunks are padded to even sizes
  }
  return fail(error, path + ": no data chunk");
}

}  // namespace audio_test
