// bench::Caller — a cheap WhatsApp-like caller for benchmarks, many per process.
//
// It is meta_peer::Peer (tests/meta-peer: Meta's offer, ICE-lite, DTLS-SRTP through GStreamer's
// dtls/srtp elements) stripped to what a load generator needs, reusing its parts:
//   - no Opus encoder: every caller loops the same pre-encoded packets (OpusLoop, encoded once);
//   - one thread and GMainContext (CallerHub) for every caller's socket and one 5 ms media tick,
//     instead of a thread per caller; datagrams are read with recvfrom, not GSocket objects;
//   - received packets are only counted and timed (sequence gaps, lateness, inter-arrival), unless
//     the caller is one of the sample that decodes (CallerConfig::decode): those listen for gaps in
//     the model's replies, and in latency mode record when sounds start and end.
// Each caller still has its own DTLS-SRTP pipeline (about 3 GStreamer threads): that is the cost
// of real SRTP with the same code webrtcbin uses.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <glib.h>

namespace bench {

// One Opus payload per 20 ms frame, looped by every caller.
struct OpusLoop {
  std::vector<std::vector<uint8_t>> frames;
};
// Encodes mono S16 at 16 kHz the way the WhatsApp app does (20 kbit/s, VOIP, in-band FEC).
bool encode_loop(const std::vector<int16_t> &pcm16k, OpusLoop *out, std::string *error);

// A 6 s cycle of "caller speech": talk_ms of a voiced, syllable-modulated signal at about -20 dBFS
// RMS, then silence. Mono S16 at 16 kHz.
std::vector<int16_t> speech_cycle(int cycle_ms, int talk_ms);

struct CallerStats {
  uint64_t sent = 0;
  uint64_t received = 0;                 // RTP packets decrypted
  uint64_t lost = 0;                     // sequence numbers never seen (gaps)
  uint64_t reordered = 0;                // arrived after a later sequence number, or duplicate
  uint64_t late30 = 0, late60 = 0;       // more than 30 / 60 ms behind the fastest transit seen
  int64_t max_interarrival_us = 0;
  uint64_t interarrival_over_40ms = 0;
  // Decoding callers only.
  uint64_t decoded_ms = 0;
  uint64_t loud_ms = 0;                  // 10 ms windows of model audio (RMS above -40 dBFS)
  uint64_t gaps = 0;                     // silent holes of 10 ms to 1 s inside model audio
  uint64_t gap_ms = 0;
  uint64_t replies = 0;                  // stretches of model audio that ended (1 s of silence)
  void add(const CallerStats &o);
};

// A sound heard by a decoding caller: when its first / last sample would be played if each packet
// were played on arrival (arrival time of its packet + its position in the packet).
struct HeardEvent {
  int64_t heard_us = 0;
  int64_t arrival_us = 0;  // arrival of the packet it is in
};

struct CallerConfig {
  int index = 0;
  const OpusLoop *loop = nullptr;
  int loop_offset = 0;           // first frame of the loop this caller sends (spreads the callers)
  bool decode = false;
  int decode_rate = 16000;
  bool record_sounds = false;    // latency mode: HeardEvent of each onset and end
  double sound_threshold_dbfs = -30;
  int sound_quiet_ms = 100;      // an onset follows, and an end is followed by, this much quiet
  std::vector<int> mark_frames;  // loop frames whose send times are recorded
};

class CallerHub;

class Caller {
 public:
  Caller(CallerHub &hub, CallerConfig config);
  ~Caller();
  Caller(const Caller &) = delete;
  Caller &operator=(const Caller &) = delete;

  // pem: certificate and key for DTLS (shared by callers); fingerprint: its SDP fingerprint.
  bool start(const std::string &pem, const std::string &fingerprint, std::string *error);
  std::string make_offer();
  bool set_answer(const std::string &answer, std::string *error);
  void stop();  // idempotent; must not be called on the hub thread

  bool media_both_ways() const;  // SRTP keys set and at least one packet received
  int64_t keys_us() const;       // when the SRTP keys were set (-1: not yet)
  int64_t first_loud_us() const; // arrival of the first packet with model audio (decoding callers)
  CallerStats stats(bool reset);
  std::vector<int64_t> mark_sends() const;
  std::vector<HeardEvent> onsets() const;
  std::vector<HeardEvent> ends() const;
  std::vector<std::string> errors() const;
  const CallerConfig &config() const { return config_; }

  struct Impl;

 private:
  friend class CallerHub;
  CallerConfig config_;
  std::unique_ptr<Impl> d_;
};

// The thread all callers' sockets and media run on.
class CallerHub {
 public:
  CallerHub();
  ~CallerHub();
  bool start(std::string *error);
  void stop();
  GMainContext *context() const { return ctx_; }
  // Runs fn on the hub thread and waits for it (bounded).
  void run_sync(const std::function<void()> &fn);

 private:
  friend class Caller;
  void add(Caller::Impl *c);
  void remove(Caller::Impl *c);
  static gpointer thread_main(gpointer self);
  static gboolean on_tick(gpointer self);

  GMainContext *ctx_ = nullptr;
  GThread *thread_ = nullptr;
  GSource *tick_ = nullptr;
  int64_t next_tick_us_ = 0;
  std::atomic<bool> quit_{false};
  std::mutex mutex_;
  std::vector<Caller::Impl *> callers_;
};

}  // namespace bench
