#include "bench-caller.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <opus/opus.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <deque>

#include "dtls-srtp-transport.h"
#include "ice-lite.h"
#include "rtp-packet.h"
#include "whatsapp-sdp.h"

namespace bench {

namespace {

constexpr int kFrameMs = 20;
constexpr uint32_t kTimestampStep = 960;        // 20 ms at the 48 kHz RTP clock
constexpr int64_t kTickUs = 5000;               // media tick: senders get 0–5 ms of jitter, not 20
constexpr int kMaxCatchUpFrames = 10;           // after a stall, send at most 200 ms at once
constexpr size_t kMaxPendingDatagrams = 64;     // DTLS records before ICE selected a path
constexpr int kWindowMs = 10;                   // gap detector window
constexpr double kLoudDbfs = -40;               // a window of model audio
constexpr int kMaxGapMs = 1000;                 // a longer silence ends a reply
constexpr int kRunSyncTimeoutMs = 5000;

double rms_dbfs(const int16_t *s, size_t n) {
  double sum = 0;
  for (size_t i = 0; i < n; i++) sum += (double)s[i] * s[i];
  double mean = n ? sum / n / (32768.0 * 32768.0) : 0;
  return mean > 0 ? 10 * std::log10(mean) : -200;
}

bool same_address(const sockaddr_in &a, const sockaddr_in &b) {
  return a.sin_port == b.sin_port && a.sin_addr.s_addr == b.sin_addr.s_addr;
}

std::string unique_connection_id() {
  static std::atomic<int> counter{0};
  return "bench-caller-" + std::to_string(getpid()) + "-" + std::to_string(++counter);
}

}  // namespace

void CallerStats::add(const CallerStats &o) {
  sent += o.sent;
  received += o.received;
  lost += o.lost;
  reordered += o.reordered;
  late30 += o.late30;
  late60 += o.late60;
  max_interarrival_us = std::max(max_interarrival_us, o.max_interarrival_us);
  interarrival_over_40ms += o.interarrival_over_40ms;
  decoded_ms += o.decoded_ms;
  loud_ms += o.loud_ms;
  gaps += o.gaps;
  gap_ms += o.gap_ms;
  replies += o.replies;
}

bool encode_loop(const std::vector<int16_t> &pcm, OpusLoop *out, std::string *error) {
  int err = OPUS_OK;
  OpusEncoder *enc = opus_encoder_create(16000, 1, OPUS_APPLICATION_VOIP, &err);
  if (err != OPUS_OK || !enc) {
    if (error) *error = std::string("opus_encoder_create: ") + opus_strerror(err);
    return false;
  }
  // tests/meta-peer/audio-sender.cpp's settings: what the WhatsApp app sends.
  opus_encoder_ctl(enc, OPUS_SET_BITRATE(20000));
  opus_encoder_ctl(enc, OPUS_SET_MAX_BANDWIDTH(OPUS_BANDWIDTH_WIDEBAND));
  opus_encoder_ctl(enc, OPUS_SET_INBAND_FEC(1));
  opus_encoder_ctl(enc, OPUS_SET_PACKET_LOSS_PERC(10));
  opus_encoder_ctl(enc, OPUS_SET_DTX(0));
  const size_t frame = 16000 * kFrameMs / 1000;
  out->frames.clear();
  // Twice round the loop, keeping the second pass: its first frames are then encoded with the
  // state the end of the loop leaves, so the loop joins without a glitch.
  for (int pass = 0; pass < 2; pass++) {
    for (size_t off = 0; off + frame <= pcm.size(); off += frame) {
      unsigned char buf[1275];
      opus_int32 n = opus_encode(enc, pcm.data() + off, (int)frame, buf, sizeof buf);
      if (n < 0) {
        if (error) *error = std::string("opus_encode: ") + opus_strerror(n);
        opus_encoder_destroy(enc);
        return false;
      }
      if (pass == 1) out->frames.emplace_back(buf, buf + n);
    }
  }
  opus_encoder_destroy(enc);
  return !out->frames.empty();
}

std::vector<int16_t> speech_cycle(int cycle_ms, int talk_ms) {
  // Voiced speech, roughly: a 140 Hz fundamental with a few decaying harmonics, vibrato, and a 4 Hz
  // syllable envelope that never falls below 40 % (so a VAD hears one continuous turn).
  const int rate = 16000;
  std::vector<int16_t> pcm((size_t)cycle_ms * rate / 1000, 0);
  const size_t talk = (size_t)talk_ms * rate / 1000;
  double phase = 0;
  for (size_t i = 0; i < talk && i < pcm.size(); i++) {
    const double t = (double)i / rate;
    const double f0 = 140 * (1 + 0.03 * std::sin(2 * M_PI * 5 * t));
    phase += 2 * M_PI * f0 / rate;
    double v = 0;
    for (int h = 1; h <= 8; h++) v += std::sin(h * phase) / h;
    const double env = 0.7 + 0.3 * std::sin(2 * M_PI * 4 * t);
    const double fade = std::min(1.0, std::min((double)i, (double)(talk - i)) / (0.01 * rate));
    pcm[i] = (int16_t)std::lround(3000 * env * fade * v);
  }
  return pcm;
}

// ------------------------------------------------------------------------------------------------

struct Caller::Impl {
  Impl(CallerHub &h, const CallerConfig &c) : hub(h), config(c) {}

  CallerHub &hub;
  const CallerConfig &config;
  mutable std::mutex mutex;  // everything below unless marked otherwise

  int fd = -1;
  GSource *source = nullptr;  // hub thread
  uint16_t port = 0;
  meta_peer::LocalDescription local;
  meta_peer::RemoteDescription remote;
  bool remote_set = false;
  bool stopping = false;
  std::vector<std::string> errors;

  // ICE (hub thread, under mutex).
  meta_peer::IceLiteResponder ice;
  std::vector<sockaddr_in> validated;
  bool have_selected = false;
  sockaddr_in selected{};
  std::deque<std::vector<uint8_t>> pending_out;

  meta_peer::DtlsSrtpTransport transport;  // its own thread safety; never called with mutex held

  // Sending (hub thread, under mutex).
  bool media_open = false;
  int64_t keys_us = -1;
  int64_t next_send_us = 0;
  size_t loop_pos = 0;
  uint64_t packets_sent = 0;
  uint16_t seq = 0;
  uint32_t ts = 0;
  std::vector<int64_t> mark_sends;
  std::vector<bool> is_mark;  // by loop frame

  // Receiving (GStreamer streaming thread, under mutex).
  CallerStats stats;
  bool have_seq = false;
  uint16_t max_seq = 0;
  int64_t min_transit_us = INT64_MAX;
  int64_t last_arrival_us = -1;
  int64_t first_loud_us = -1;
  OpusDecoder *decoder = nullptr;
  std::vector<int16_t> window;  // partial gap-detector window
  bool in_reply = false;
  int quiet_windows = 0;
  int64_t quiet_samples = INT64_MAX / 2;  // sound detector
  bool in_sound = false;
  HeardEvent last_loud;
  std::vector<HeardEvent> onsets, ends;

  void error(const std::string &e) {
    if (errors.size() < 20) errors.push_back(e);
  }
  void send_to(const sockaddr_in &to, const uint8_t *data, size_t len) {
    if (fd >= 0) sendto(fd, data, len, MSG_DONTWAIT, reinterpret_cast<const sockaddr *>(&to), sizeof to);
  }

  static gboolean on_socket(gint fd, GIOCondition, gpointer self);
  void on_datagram(const uint8_t *data, size_t len, const sockaddr_in &from);
  void on_transport_send(const uint8_t *data, size_t len);
  void on_keys_ready();
  void on_rtp(const uint8_t *data, size_t len);
  void decode(const uint8_t *payload, size_t len, int64_t arrival_us, bool lost);
  void analyse(const int16_t *pcm, size_t n, int64_t arrival_us);
  void tick(int64_t now);  // hub thread, hub mutex held
};

gboolean Caller::Impl::on_socket(gint fd, GIOCondition, gpointer self) {
  auto *d = static_cast<Impl *>(self);
  uint8_t buf[2048];
  for (int i = 0; i < 64; i++) {  // bounded, so one busy socket cannot starve the others
    sockaddr_in from{};
    socklen_t from_len = sizeof from;
    ssize_t n = recvfrom(fd, buf, sizeof buf, MSG_DONTWAIT, reinterpret_cast<sockaddr *>(&from), &from_len);
    if (n < 0) break;
    if (from.sin_family == AF_INET) d->on_datagram(buf, (size_t)n, from);
  }
  return G_SOURCE_CONTINUE;
}

void Caller::Impl::on_datagram(const uint8_t *data, size_t len, const sockaddr_in &from) {
  const meta_peer::PacketKind kind = meta_peer::classify_datagram(data, len);
  bool deliver = false;
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (stopping) return;
    if (kind == meta_peer::PacketKind::Stun) {
      sockaddr_storage ss{};
      memcpy(&ss, &from, sizeof from);
      meta_peer::IceVerdict v = ice.handle(data, len, &ss, sizeof from);
      if (!v.reply.empty()) send_to(from, v.reply.data(), v.reply.size());
      if (v.valid && std::none_of(validated.begin(), validated.end(),
                                  [&](const sockaddr_in &a) { return same_address(a, from); }))
        validated.push_back(from);
      if (v.nominated && (!have_selected || !same_address(selected, from))) {
        // ICE-lite: the pair the controlling side nominated is where media goes (RFC 8445 §8.2).
        selected = from;
        have_selected = true;
        for (auto &p : pending_out) send_to(selected, p.data(), p.size());
        pending_out.clear();
      }
      return;
    }
    if (kind == meta_peer::PacketKind::Other) return;
    auto known = [&](const sockaddr_in &a) { return same_address(a, from); };
    deliver = transport.handshake_started() && std::any_of(validated.begin(), validated.end(), known);
  }
  if (deliver) transport.receive(data, len);
}

void Caller::Impl::on_transport_send(const uint8_t *data, size_t len) {
  std::lock_guard<std::mutex> lock(mutex);
  if (stopping) return;
  if (have_selected)
    send_to(selected, data, len);
  else if (pending_out.size() < kMaxPendingDatagrams)
    pending_out.emplace_back(data, data + len);
}

void Caller::Impl::on_keys_ready() {
  std::lock_guard<std::mutex> lock(mutex);
  if (stopping || media_open) return;
  media_open = true;
  keys_us = g_get_monotonic_time();
  next_send_us = keys_us;
}

void Caller::Impl::tick(int64_t now) {
  std::vector<std::vector<uint8_t>> out;
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (!media_open || stopping) return;
    const auto &frames = config.loop->frames;
    for (int i = 0; i < kMaxCatchUpFrames && next_send_us <= now; i++) {
      const auto &payload = frames[loop_pos];
      // The marker bit starts the stream's only talkspurt (RFC 3551 §4.1): continuous media.
      out.push_back(
          meta_peer::build_rtp(packets_sent++ == 0, 111, seq, ts, local.ssrc, payload.data(), payload.size()));
      if (is_mark[loop_pos]) mark_sends.push_back(now);
      loop_pos = (loop_pos + 1) % frames.size();
      seq++;
      ts += kTimestampStep;
      stats.sent++;
      next_send_us += kFrameMs * 1000;
    }
    if (next_send_us <= now) next_send_us = now + kFrameMs * 1000;  // a long stall: skip, do not burst
  }
  for (auto &p : out) transport.send_rtp(p.data(), p.size());
}

void Caller::Impl::on_rtp(const uint8_t *data, size_t len) {
  const int64_t now = g_get_monotonic_time();
  meta_peer::RtpHeader h;
  if (!meta_peer::parse_rtp(data, len, &h) || h.payload_type != 111) return;
  std::lock_guard<std::mutex> lock(mutex);
  if (stopping) return;
  stats.received++;
  if (last_arrival_us >= 0) {
    const int64_t gap = now - last_arrival_us;
    stats.max_interarrival_us = std::max(stats.max_interarrival_us, gap);
    if (gap > 40000) stats.interarrival_over_40ms++;
  }
  last_arrival_us = now;
  // Lateness against the RTP clock: transit = arrival - media time; the fastest transit seen is the
  // reference (same machine, same clock: no drift to correct).
  const int64_t transit = now - (int64_t)h.timestamp * 1000 / 48;
  // Timestamps wrap after 24 h at 48 kHz; restart the reference if they jump backwards a lot.
  if (transit < min_transit_us || transit - min_transit_us > 10 * G_USEC_PER_SEC) min_transit_us = transit;
  const int64_t late = transit - min_transit_us;
  if (late > 30000) stats.late30++;
  if (late > 60000) stats.late60++;
  int missing = 0;
  if (!have_seq) {
    have_seq = true;
    max_seq = h.seq;
  } else {
    const int16_t delta = (int16_t)(h.seq - max_seq);
    if (delta > 0) {
      missing = delta - 1;
      stats.lost += (uint64_t)missing;
      max_seq = h.seq;
    } else {
      stats.reordered++;
      return;
    }
  }
  if (decoder) {
    for (int i = 0; i < std::min(missing, 5); i++) decode(nullptr, 0, now, true);  // concealment, as a phone would
    decode(data + h.payload_offset, h.payload_size, now, false);
  }
}

void Caller::Impl::decode(const uint8_t *payload, size_t len, int64_t arrival_us, bool lost) {
  int16_t pcm[960];  // 20 ms at up to 48 kHz
  const int frame = config.decode_rate * kFrameMs / 1000;
  int n = opus_decode(decoder, lost ? nullptr : payload, (opus_int32)len, pcm, frame, 0);
  if (n <= 0) return;
  stats.decoded_ms += (uint64_t)(n * 1000 / config.decode_rate);
  analyse(pcm, (size_t)n, arrival_us);
}

void Caller::Impl::analyse(const int16_t *pcm, size_t n, int64_t arrival_us) {
  // Gaps heard: 10 ms windows; a silent run shorter than kMaxGapMs between two loud windows is a
  // hole in the model's reply (the fake's replies are one continuous tone).
  const size_t wn = (size_t)config.decode_rate * kWindowMs / 1000;
  for (size_t i = 0; i < n; i++) {
    window.push_back(pcm[i]);
    if (window.size() < wn) continue;
    const bool loud = rms_dbfs(window.data(), wn) > kLoudDbfs;
    window.clear();
    if (loud) {
      if (first_loud_us < 0) first_loud_us = arrival_us;
      if (in_reply && quiet_windows > 0) {
        stats.gaps++;
        stats.gap_ms += (uint64_t)quiet_windows * kWindowMs;
      }
      in_reply = true;
      quiet_windows = 0;
      stats.loud_ms += kWindowMs;
    } else if (in_reply && ++quiet_windows * kWindowMs >= kMaxGapMs) {
      stats.replies++;
      in_reply = false;
      quiet_windows = 0;
    }
  }
  if (!config.record_sounds) return;
  // Onsets and ends at sample resolution, as heard by a phone that plays each packet on arrival.
  const int threshold = (int)(32768.0 * std::pow(10.0, config.sound_threshold_dbfs / 20.0));
  const int64_t quiet_needed = (int64_t)config.sound_quiet_ms * config.decode_rate / 1000;
  for (size_t i = 0; i < n; i++) {
    const int64_t heard = arrival_us + (int64_t)i * 1000000 / config.decode_rate;
    if (std::abs((int)pcm[i]) >= threshold) {
      if (quiet_samples >= quiet_needed) onsets.push_back({heard, arrival_us});
      quiet_samples = 0;
      in_sound = true;
      last_loud = {heard + 1000000 / config.decode_rate, arrival_us};
    } else if (++quiet_samples == quiet_needed && in_sound) {
      ends.push_back(last_loud);
      in_sound = false;
    }
  }
}

// ------------------------------------------------------------------------------------------------

Caller::Caller(CallerHub &hub, CallerConfig config)
    : config_(std::move(config)), d_(std::make_unique<Impl>(hub, config_)) {}

Caller::~Caller() { stop(); }

bool Caller::start(const std::string &pem, const std::string &fingerprint, std::string *error) {
  Impl &d = *d_;
  auto fail = [&](const std::string &msg) {
    if (error) *error = msg;
    return false;
  };
  if (!config_.loop || config_.loop->frames.empty()) return fail("no audio loop");
  d.is_mark.assign(config_.loop->frames.size(), false);
  for (int f : config_.mark_frames)
    if (f >= 0 && (size_t)f < d.is_mark.size()) d.is_mark[(size_t)f] = true;
  d.loop_pos = (size_t)config_.loop_offset % config_.loop->frames.size();
  if (config_.decode) {
    int err = OPUS_OK;
    d.decoder = opus_decoder_create(config_.decode_rate, 1, &err);
    if (err != OPUS_OK) return fail(std::string("opus_decoder_create: ") + opus_strerror(err));
  }

  d.fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (d.fd < 0) return fail(std::string("socket: ") + strerror(errno));
  // Room for a burst of 40 callers' worth of packets while the hub thread is busy.
  int size = 256 * 1024;
  setsockopt(d.fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(d.fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) < 0)
    return fail(std::string("bind: ") + strerror(errno));
  socklen_t len = sizeof addr;
  getsockname(d.fd, reinterpret_cast<sockaddr *>(&addr), &len);
  d.port = ntohs(addr.sin_port);

  meta_peer::DtlsSrtpTransport::Callbacks cb;
  Impl *self = &d;
  cb.send = [self](const uint8_t *data, size_t n) { self->on_transport_send(data, n); };
  cb.rtp = [self](const uint8_t *data, size_t n) { self->on_rtp(data, n); };
  cb.keys_ready = [self] { self->on_keys_ready(); };
  cb.error = [self](const std::string &text) {
    std::lock_guard<std::mutex> lock(self->mutex);
    self->error("pipeline: " + text);
  };
  std::string terr;
  if (!d.transport.start(unique_connection_id(), pem, std::move(cb), &terr)) return fail("DTLS-SRTP: " + terr);

  d.local.ufrag = meta_peer::random_ufrag(false);
  d.local.pwd = meta_peer::random_pwd();
  d.local.fingerprint = fingerprint;
  d.local.address = "127.0.0.1";
  d.local.port = d.port;
  d.local.ssrc = g_random_int();
  d.local.session_id = (uint64_t)(g_get_real_time() / 1000);
  d.local.stream_id = meta_peer::random_uuid();
  d.local.candidate_foundation = g_random_int();
  d.ice.set_local_credentials(d.local.ufrag, d.local.pwd);
  d.seq = (uint16_t)g_random_int();
  d.ts = g_random_int();

  d.hub.run_sync([&d] {
    d.source = g_unix_fd_source_new(d.fd, G_IO_IN);
    g_source_set_callback(d.source, G_SOURCE_FUNC(&Impl::on_socket), &d, nullptr);
    g_source_attach(d.source, d.hub.context());
  });
  d.hub.add(&d);
  return true;
}

std::string Caller::make_offer() {
  std::lock_guard<std::mutex> lock(d_->mutex);
  return meta_peer::build_user_initiated_offer(d_->local);
}

bool Caller::set_answer(const std::string &answer, std::string *error) {
  Impl &d = *d_;
  meta_peer::RemoteDescription r;
  std::string err;
  if (!meta_peer::parse_remote_description(answer, &r, &err)) {
    if (error) *error = err;
    return false;
  }
  // Meta's offer is actpass: the bridge answers active (we are the DTLS server) or passive.
  const bool we_are_client = r.setup == "passive";
  if (!we_are_client && r.setup != "active") {
    if (error) *error = "answer has a=setup:" + r.setup;
    return false;
  }
  {
    std::lock_guard<std::mutex> lock(d.mutex);
    d.remote = r;
    d.remote_set = true;
    d.ice.set_remote_ufrag(r.ufrag);
  }
  // As a DTLS client we would need the nominated path first; voicebridge answers active, so this
  // bench only supports the server role (it is what every WhatsApp user-initiated call uses).
  if (we_are_client) {
    if (error) *error = "the bench caller supports a=setup:active answers only";
    return false;
  }
  return d.transport.start_handshake(false, error);
}

void Caller::stop() {
  Impl &d = *d_;
  {
    std::lock_guard<std::mutex> lock(d.mutex);
    if (d.stopping) return;
    d.stopping = true;
  }
  d.hub.remove(&d);
  if (d.source) {
    // Destroyed on the hub thread, so no on_socket of ours is running when this returns.
    d.hub.run_sync([&d] {
      g_source_destroy(d.source);
      g_source_unref(d.source);
      d.source = nullptr;
    });
  }
  d.transport.stop();  // joins the streaming threads: no transport callback after this
  if (d.fd >= 0) close(d.fd);
  d.fd = -1;
  if (d.decoder) opus_decoder_destroy(d.decoder);
  d.decoder = nullptr;
}

bool Caller::media_both_ways() const {
  std::lock_guard<std::mutex> lock(d_->mutex);
  return d_->media_open && d_->have_seq;
}

int64_t Caller::keys_us() const {
  std::lock_guard<std::mutex> lock(d_->mutex);
  return d_->keys_us;
}

int64_t Caller::first_loud_us() const {
  std::lock_guard<std::mutex> lock(d_->mutex);
  return d_->first_loud_us;
}

CallerStats Caller::stats(bool reset) {
  std::lock_guard<std::mutex> lock(d_->mutex);
  CallerStats s = d_->stats;
  if (reset) d_->stats = CallerStats();
  return s;
}

std::vector<int64_t> Caller::mark_sends() const {
  std::lock_guard<std::mutex> lock(d_->mutex);
  return d_->mark_sends;
}

std::vector<HeardEvent> Caller::onsets() const {
  std::lock_guard<std::mutex> lock(d_->mutex);
  return d_->onsets;
}

std::vector<HeardEvent> Caller::ends() const {
  std::lock_guard<std::mutex> lock(d_->mutex);
  return d_->ends;
}

std::vector<std::string> Caller::errors() const {
  std::lock_guard<std::mutex> lock(d_->mutex);
  return d_->errors;
}

// ------------------------------------------------------------------------------------------------

CallerHub::CallerHub() = default;

CallerHub::~CallerHub() { stop(); }

bool CallerHub::start(std::string *) {
  if (thread_) return true;
  ctx_ = g_main_context_new();
  quit_ = false;
  // A source with a ready time, not a 5 ms timeout: ticks land on absolute deadlines, so wake-up
  // latency does not accumulate into drift.
  static GSourceFuncs funcs = {nullptr, nullptr,
                               [](GSource *, GSourceFunc cb, gpointer data) -> gboolean { return cb(data); },
                               nullptr, nullptr, nullptr};
  tick_ = g_source_new(&funcs, sizeof(GSource));
  g_source_set_callback(tick_, &CallerHub::on_tick, this, nullptr);
  next_tick_us_ = g_get_monotonic_time();
  g_source_set_ready_time(tick_, next_tick_us_);
  g_source_attach(tick_, ctx_);
  thread_ = g_thread_new("bench-callers", &CallerHub::thread_main, this);
  return true;
}

void CallerHub::stop() {
  if (!thread_) return;
  quit_ = true;
  g_main_context_wakeup(ctx_);
  g_thread_join(thread_);
  thread_ = nullptr;
  g_source_destroy(tick_);
  g_source_unref(tick_);
  tick_ = nullptr;
  g_main_context_unref(ctx_);
  ctx_ = nullptr;
}

gpointer CallerHub::thread_main(gpointer self) {
  auto *h = static_cast<CallerHub *>(self);
  g_main_context_push_thread_default(h->ctx_);
  // A flag checked around every iteration cannot be missed, unlike a g_main_loop_quit() that
  // comes before the loop runs.
  while (!h->quit_) g_main_context_iteration(h->ctx_, TRUE);
  g_main_context_pop_thread_default(h->ctx_);
  return nullptr;
}

gboolean CallerHub::on_tick(gpointer self) {
  auto *h = static_cast<CallerHub *>(self);
  const int64_t now = g_get_monotonic_time();
  {
    std::lock_guard<std::mutex> lock(h->mutex_);
    for (Caller::Impl *c : h->callers_) c->tick(now);
  }
  h->next_tick_us_ += kTickUs;
  if (h->next_tick_us_ <= now) h->next_tick_us_ = now + kTickUs;
  g_source_set_ready_time(h->tick_, h->next_tick_us_);
  return G_SOURCE_CONTINUE;
}

void CallerHub::add(Caller::Impl *c) {
  std::lock_guard<std::mutex> lock(mutex_);
  callers_.push_back(c);
}

void CallerHub::remove(Caller::Impl *c) {
  std::lock_guard<std::mutex> lock(mutex_);
  callers_.erase(std::remove(callers_.begin(), callers_.end(), c), callers_.end());
}

void CallerHub::run_sync(const std::function<void()> &fn) {
  if (!thread_) {  // not running: nothing else touches the callers' sources
    fn();
    return;
  }
  struct Job {
    std::function<void()> fn;
    std::mutex mutex;
    std::condition_variable cv;
    bool done = false;
  };
  auto job = std::make_shared<Job>();
  job->fn = fn;
  g_main_context_invoke_full(
      ctx_, G_PRIORITY_HIGH,
      [](gpointer data) -> gboolean {
        auto &j = *static_cast<std::shared_ptr<Job> *>(data);
        j->fn();
        {
          std::lock_guard<std::mutex> l(j->mutex);
          j->done = true;
        }
        j->cv.notify_all();
        return G_SOURCE_REMOVE;
      },
      new std::shared_ptr<Job>(job), [](gpointer data) { delete static_cast<std::shared_ptr<Job> *>(data); });
  std::unique_lock<std::mutex> l(job->mutex);
  job->cv.wait_for(l, std::chrono::milliseconds(kRunSyncTimeoutMs), [&] { return job->done; });
}

}  // namespace bench
