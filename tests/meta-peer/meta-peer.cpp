#include "meta-peer.h"

#include <gio/gio.h>
#include <unistd.h>

#include <atomic>
#include <deque>
#include <mutex>
#include <set>
#include <sstream>

#include "dtls-cert.h"
#include "rtp-packet.h"
#include "whatsapp-sdp.h"

namespace meta_peer {

namespace {

constexpr size_t kMaxPendingDatagrams = 64;  // DTLS records produced before a path is selected
constexpr int kWatchdogMs = 100;
constexpr int kMaxFramesPerWakeup = 10;      // catch up at most 200 ms after a stall, then skip

std::string address_string(GSocketAddress *addr) {
  if (!G_IS_INET_SOCKET_ADDRESS(addr)) return "?";
  GInetSocketAddress *inet = G_INET_SOCKET_ADDRESS(addr);
  gchar *ip = g_inet_address_to_string(g_inet_socket_address_get_address(inet));
  std::string s = std::string(ip) + ":" + std::to_string(g_inet_socket_address_get_port(inet));
  g_free(ip);
  return s;
}

std::string unique_connection_id() {
  static std::atomic<int> counter{0};
  return "meta-peer-" + std::to_string(getpid()) + "-" + std::to_string(++counter) + "-" +
         std::to_string(g_random_int());
}

}  // namespace

struct Peer::Impl {
  explicit Impl(const Config &c) : config(c), receiver(c.receive_rate, 111) {}

  const Config config;
  mutable std::mutex mutex;  // everything below that is not marked otherwise

  // Thread and I/O. Created in start(), destroyed in stop().
  GMainContext *ctx = nullptr;
  GThread *thread = nullptr;
  // Not a GMainLoop: g_main_loop_quit() before the thread reached g_main_loop_run() is lost and the
  // thread would run forever; a flag checked around every iteration cannot be missed.
  std::atomic<bool> quit{false};
  GSocket *socket = nullptr;
  GSource *socket_source = nullptr;
  GSource *watchdog = nullptr;
  GSource *media_source = nullptr;
  uint16_t port = 0;
  int64_t started_us = 0;
  bool stopping = false;

  // Identity and descriptions.
  LocalDescription local;
  RemoteDescription remote;
  bool remote_set = false;
  int64_t exchange_us = -1;  // when the SDP exchange completed on the peer's side
  uint8_t opus_pt = 111;
  uint8_t dtmf_pt = 126;

  // ICE.
  IceLiteResponder ice;
  std::set<std::string> validated;  // addresses a valid check came from
  GSocketAddress *selected = nullptr;
  std::string selected_str;
  int64_t nominated_us = -1;
  std::deque<std::vector<uint8_t>> pending_out;

  // DTLS (the transport has its own thread-safety; never call it with `mutex` held, its callbacks
  // take `mutex`).
  DtlsSrtpTransport transport;
  DtlsRole dtls_role = DtlsRole::Unknown;
  DtlsState dtls_state = DtlsState::New;
  int64_t dtls_connected_us = -1;
  std::string bridge_cert_fp;
  int fp_match = -1;

  // Media.
  std::unique_ptr<AudioSender> sender;  // used on the peer's thread only, created under `mutex`
  bool media_open = false;
  int64_t media_start_us = -1;
  int64_t next_frame_us = 0;
  uint64_t packets_sent = 0;
  uint64_t dtmf_sent = 0;
  AudioReceiver receiver;
  int64_t first_media_us = -1;
  int64_t first_media_real_us = -1;
  int64_t last_media_us = -1;
  uint64_t rtp_datagrams = 0;
  uint64_t rtcp_datagrams = 0;
  uint64_t packets_received = 0;
  uint64_t dropped_unvalidated = 0;
  uint64_t dropped_before_sdp = 0;

  // The call.
  bool ended = false;
  std::string end_reason;
  std::vector<std::string> errors;
  std::vector<std::pair<int64_t, std::string>> events;

  // ---- helpers (mutex held) ----
  void log(const std::string &what) { events.emplace_back(g_get_monotonic_time(), what); }
  void error(const std::string &what) {
    errors.push_back(what);
    log("ERROR " + what);
  }
  void send_locked(GSocketAddress *to, const uint8_t *data, size_t len) {
    GError *err = nullptr;
    if (g_socket_send_to(socket, to, reinterpret_cast<const gchar *>(data), len, nullptr, &err) < 0) {
      error(std::string("send: ") + err->message);
      g_clear_error(&err);
    }
  }
  void end_call(const std::string &reason) {
    if (ended) return;
    ended = true;
    end_reason = reason;
    media_open = false;
    log("call ended: " + reason);
  }

  // ---- peer thread ----
  static gpointer thread_main(gpointer data);
  static gboolean on_socket(GSocket *socket, GIOCondition, gpointer data);
  void on_datagram(const uint8_t *data, size_t len, GSocketAddress *from);
  static gboolean on_media_tick(gpointer data);
  static gboolean on_watchdog(gpointer data);

  // ---- transport callbacks (streaming threads) ----
  void on_transport_send(const uint8_t *data, size_t len);
  void on_keys_ready();
  void maybe_start_client_handshake();
};

// ------------------------------------------------------------------------------------------------
// Peer thread

gpointer Peer::Impl::thread_main(gpointer data) {
  auto *d = static_cast<Impl *>(data);
  g_main_context_push_thread_default(d->ctx);
  while (!d->quit) g_main_context_iteration(d->ctx, TRUE);
  g_main_context_pop_thread_default(d->ctx);
  return nullptr;
}

gboolean Peer::Impl::on_socket(GSocket *socket, GIOCondition, gpointer data) {
  auto *d = static_cast<Impl *>(data);
  uint8_t buf[4096];
  for (;;) {
    GSocketAddress *from = nullptr;
    GError *err = nullptr;
    gssize n = g_socket_receive_from(socket, &from, reinterpret_cast<gchar *>(buf), sizeof buf, nullptr, &err);
    if (n < 0) {
      if (!g_error_matches(err, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)) {
        std::lock_guard<std::mutex> lock(d->mutex);
        d->error(std::string("receive: ") + err->message);
      }
      g_clear_error(&err);
      break;
    }
    if (from) {
      d->on_datagram(buf, (size_t)n, from);
      g_object_unref(from);
    }
  }
  return G_SOURCE_CONTINUE;
}

void Peer::Impl::on_datagram(const uint8_t *data, size_t len, GSocketAddress *from) {
  const std::string from_str = address_string(from);
  const PacketKind kind = classify_datagram(data, len);
  bool deliver = false;
  bool start_client = false;
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (ended) return;  // a hung-up WhatsApp call answers nothing
    switch (kind) {
      case PacketKind::Stun: {
        struct sockaddr_storage ss;
        if (!g_socket_address_to_native(from, &ss, sizeof ss, nullptr)) return;
        socklen_t ss_len = (socklen_t)g_socket_address_get_native_size(from);
        IceVerdict v = ice.handle(data, len, &ss, ss_len);
        if (!v.reply.empty()) send_locked(from, v.reply.data(), v.reply.size());
        if (v.error_code) log("ice: check from " + from_str + " rejected with " + std::to_string(v.error_code));
        if (v.valid && validated.insert(from_str).second) log("ice: first valid check from " + from_str);
        if (v.nominated && selected_str != from_str) {
          // A lite agent's selected pair is the one the controlling agent nominated (RFC 8445 §8.2).
          if (selected) g_object_unref(selected);
          selected = G_SOCKET_ADDRESS(g_object_ref(from));
          selected_str = from_str;
          if (nominated_us < 0) nominated_us = g_get_monotonic_time();
          log("ice: nominated " + from_str + " (USE-CANDIDATE, ICE-CONTROLLING)");
          for (auto &p : pending_out) send_locked(selected, p.data(), p.size());
          pending_out.clear();
        }
        start_client = v.nominated && dtls_role == DtlsRole::Client;
        break;
      }
      case PacketKind::Rtp:
        rtp_datagrams++;
        last_media_us = g_get_monotonic_time();
        if (first_media_us < 0) {
          first_media_us = last_media_us;
          first_media_real_us = g_get_real_time();
          log("media: first SRTP packet from " + from_str);
        }
        [[fallthrough]];
      case PacketKind::Rtcp:
      case PacketKind::Dtls:
        if (kind == PacketKind::Rtcp) rtcp_datagrams++;
        if (validated.count(from_str) == 0) {
          dropped_unvalidated++;
        } else if (!transport.handshake_started()) {
          // Meta cannot do DTLS before it has the business's SDP (fingerprint, role): a ClientHello
          // that comes earlier is lost, and the bridge's DTLS retransmission has to bring it again
          // (whatsapp-calling.md §5, "audio clipping").
          if (dropped_before_sdp++ == 0) log("dtls: record from " + from_str + " dropped: no SDP from the business yet");
        } else {
          deliver = true;
        }
        break;
      case PacketKind::Other:
        break;
    }
  }
  if (deliver) transport.receive(data, len);
  if (start_client) maybe_start_client_handshake();
}

void Peer::Impl::maybe_start_client_handshake() {
  if (transport.handshake_started()) return;
  std::string err;
  bool ok = transport.start_handshake(true, &err);
  std::lock_guard<std::mutex> lock(mutex);
  if (ok)
    log("dtls: client handshake started (ClientHello to " + selected_str + ")");
  else
    error("dtls: " + err);
}

gboolean Peer::Impl::on_media_tick(gpointer data) {
  auto *d = static_cast<Impl *>(data);
  std::vector<std::vector<uint8_t>> out;
  {
    std::lock_guard<std::mutex> lock(d->mutex);
    if (!d->media_open || d->stopping) {
      g_source_unref(d->media_source);
      d->media_source = nullptr;
      return G_SOURCE_REMOVE;
    }
    const int64_t now = g_get_monotonic_time();
    for (int i = 0; i < kMaxFramesPerWakeup && d->next_frame_us <= now; i++) {
      out.push_back(d->sender->next_packet());
      d->next_frame_us += AudioSender::kFrameMs * 1000;
    }
    if (d->next_frame_us <= now) d->next_frame_us = now + AudioSender::kFrameMs * 1000;
    if (d->media_start_us < 0 && !out.empty()) {
      d->media_start_us = now;
      d->log("media: first SRTP packet sent");
    }
    d->packets_sent += out.size();
    d->dtmf_sent = (uint64_t)d->sender->dtmf_packets();
    g_source_set_ready_time(d->media_source, d->next_frame_us);
  }
  for (auto &p : out) d->transport.send_rtp(p.data(), p.size());
  return G_SOURCE_CONTINUE;
}

gboolean Peer::Impl::on_watchdog(gpointer data) {
  auto *d = static_cast<Impl *>(data);
  std::lock_guard<std::mutex> lock(d->mutex);
  if (d->ended || d->exchange_us < 0) return G_SOURCE_CONTINUE;
  const int64_t now = g_get_monotonic_time();
  const Config &c = d->config;
  if (d->last_media_us < 0) {
    if (c.no_media_setup_timeout_ms > 0 && now - d->exchange_us > (int64_t)c.no_media_setup_timeout_ms * 1000)
      d->end_call("no media from the business " + std::to_string(c.no_media_setup_timeout_ms) +
                  " ms after the SDP exchange (WhatsApp 138021)");
  } else if (c.no_media_midcall_timeout_ms > 0 && now - d->last_media_us > (int64_t)c.no_media_midcall_timeout_ms * 1000) {
    d->end_call("no media from the business for " + std::to_string(c.no_media_midcall_timeout_ms) +
                " ms mid-call (WhatsApp 138021)");
  }
  return G_SOURCE_CONTINUE;
}

// ------------------------------------------------------------------------------------------------
// Transport callbacks

void Peer::Impl::on_transport_send(const uint8_t *data, size_t len) {
  std::lock_guard<std::mutex> lock(mutex);
  if (ended) return;
  if (selected) {
    send_locked(selected, data, len);
  } else if (pending_out.size() < kMaxPendingDatagrams) {
    // Before nomination a lite agent has no path: hold (DTLS) records until there is one.
    pending_out.emplace_back(data, data + len);
  }
}

void Peer::Impl::on_keys_ready() {
  // The handshake is complete: the bridge's certificate is known.
  std::string fp = sha256_fingerprint(certificate_der_from_pem(transport.peer_pem()));
  std::lock_guard<std::mutex> lock(mutex);
  if (stopping || media_open || ended) return;
  bridge_cert_fp = fp;
  fp_match = fingerprints_equal(fp, remote.fingerprint) ? 1 : 0;
  log(std::string("dtls: SRTP keys set; bridge certificate ") + (fp_match ? "matches" : "DOES NOT match") +
      " its SDP fingerprint");
  if (!fp_match) {
    error("the bridge's DTLS certificate (" + fp + ") is not the one in its SDP (" + remote.fingerprint + ")");
    if (config.require_fingerprint_match) return;
  }
  SendSpec spec;
  spec.tone = config.tone;
  spec.speech = config.speech;
  spec.dtmf = config.dtmf;
  spec.dtmf_volume = config.dtmf_volume;
  spec.opus_pt = opus_pt;
  spec.dtmf_pt = dtmf_pt;
  spec.ssrc = local.ssrc;
  spec.seq_base = (uint16_t)g_random_int();
  spec.timestamp_base = g_random_int();
  sender = std::make_unique<AudioSender>(spec);
  std::string err;
  if (!sender->init(&err)) {
    error("audio: " + err);
    sender.reset();
    return;
  }
  media_open = true;
  next_frame_us = g_get_monotonic_time();
  // A source with a ready time rather than a 20 ms timeout: frames are scheduled on absolute
  // deadlines, so the packet rate does not drift with wakeup latency.
  static GSourceFuncs funcs = {nullptr, nullptr,
                               [](GSource *, GSourceFunc cb, gpointer data) -> gboolean { return cb(data); },
                               nullptr, nullptr, nullptr};
  media_source = g_source_new(&funcs, sizeof(GSource));
  g_source_set_callback(media_source, &Impl::on_media_tick, this, nullptr);
  g_source_set_ready_time(media_source, next_frame_us);
  g_source_attach(media_source, ctx);
}

// ------------------------------------------------------------------------------------------------
// Peer

Peer::Peer(Config config) : config_(std::move(config)), d_(std::make_unique<Impl>(config_)) {}

Peer::~Peer() { stop(); }

bool Peer::start(std::string *error) {
  auto fail = [&](const std::string &msg) {
    if (error) *error = msg;
    stop();
    return false;
  };
  Impl &d = *d_;
  if (d.ctx) return fail("already started");
  d.started_us = g_get_monotonic_time();
  d.ctx = g_main_context_new();

  // Check the media settings now rather than when DTLS comes up.
  {
    SendSpec probe;
    probe.tone = config_.tone;
    probe.speech = config_.speech;
    probe.dtmf = config_.dtmf;
    AudioSender check(probe);
    std::string err;
    if (!check.init(&err)) return fail("audio settings: " + err);
    if (!d.receiver.init(&err)) return fail("receive settings: " + err);
  }

  GError *err = nullptr;
  d.socket = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, &err);
  if (!d.socket) {
    std::string msg = std::string("socket: ") + err->message;
    g_clear_error(&err);
    return fail(msg);
  }
  g_socket_set_blocking(d.socket, FALSE);
  GInetAddress *ip = g_inet_address_new_from_string(config_.address.c_str());
  if (!ip) return fail("not an IPv4 address: " + config_.address);
  GSocketAddress *bind_addr = g_inet_socket_address_new(ip, config_.port);
  g_object_unref(ip);
  gboolean bound = g_socket_bind(d.socket, bind_addr, TRUE, &err);
  g_object_unref(bind_addr);
  if (!bound) {
    std::string msg = std::string("bind: ") + err->message;
    g_clear_error(&err);
    return fail(msg);
  }
  GSocketAddress *local_addr = g_socket_get_local_address(d.socket, nullptr);
  d.port = local_addr ? g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(local_addr)) : 0;
  if (local_addr) g_object_unref(local_addr);

  std::string cert_err;
  std::string pem = make_self_signed_pem("WhatsApp", &cert_err);
  if (pem.empty()) return fail("certificate: " + cert_err);

  DtlsSrtpTransport::Callbacks cb;
  Impl *self = &d;
  cb.send = [self](const uint8_t *data, size_t len) { self->on_transport_send(data, len); };
  cb.rtp = [self](const uint8_t *data, size_t len) {
    int64_t now = g_get_monotonic_time();
    std::lock_guard<std::mutex> lock(self->mutex);
    self->packets_received++;
    self->receiver.on_rtp(data, len, now);
  };
  cb.keys_ready = [self] { self->on_keys_ready(); };
  cb.state_changed = [self](DtlsState s) {
    std::lock_guard<std::mutex> lock(self->mutex);
    if (s == self->dtls_state) return;
    self->dtls_state = s;
    self->log(std::string("dtls: ") + to_string(s));
    if (s == DtlsState::Connected && self->dtls_connected_us < 0) self->dtls_connected_us = g_get_monotonic_time();
  };
  cb.error = [self](const std::string &text) {
    std::lock_guard<std::mutex> lock(self->mutex);
    self->error("pipeline: " + text);
  };
  std::string transport_err;
  if (!d.transport.start(unique_connection_id(), pem, std::move(cb), &transport_err))
    return fail("DTLS-SRTP: " + transport_err);

  // The fingerprint of what the element really uses, not of what we meant to give it.
  std::string fp = sha256_fingerprint(certificate_der_from_pem(d.transport.local_pem()));
  if (fp.empty() || fp != sha256_fingerprint(certificate_der_from_pem(pem)))
    return fail("dtlssrtpdec does not use the peer's certificate");

  const bool business_initiated = config_.role == Role::Answerer;
  d.local.ufrag = random_ufrag(business_initiated);
  d.local.pwd = random_pwd();
  d.local.fingerprint = fp;
  d.local.address = config_.address;
  d.local.port = d.port;
  d.local.ssrc = g_random_int();
  d.local.session_id = (uint64_t)(g_get_real_time() / 1000);
  d.local.stream_id = random_uuid();
  d.local.candidate_foundation = g_random_int();
  d.ice.set_local_credentials(d.local.ufrag, d.local.pwd);
  d.ice.set_answer_before_remote(config_.answer_checks_before_remote_sdp);

  d.socket_source = g_socket_create_source(d.socket, G_IO_IN, nullptr);
  g_source_set_callback(d.socket_source, G_SOURCE_FUNC(&Impl::on_socket), &d, nullptr);
  g_source_attach(d.socket_source, d.ctx);
  d.watchdog = g_timeout_source_new(kWatchdogMs);
  g_source_set_callback(d.watchdog, &Impl::on_watchdog, &d, nullptr);
  g_source_attach(d.watchdog, d.ctx);
  d.thread = g_thread_new("meta-peer", &Impl::thread_main, &d);
  {
    std::lock_guard<std::mutex> lock(d.mutex);
    d.log("started on " + config_.address + ":" + std::to_string(d.port) + " as " +
          (business_initiated ? "answerer (business-initiated)" : "offerer (user-initiated)"));
  }
  return true;
}

uint16_t Peer::port() const { return d_->port; }
std::string Peer::ice_ufrag() const { return d_->local.ufrag; }
std::string Peer::ice_pwd() const { return d_->local.pwd; }
std::string Peer::fingerprint() const { return d_->local.fingerprint; }

std::string Peer::make_offer() {
  if (config_.role != Role::Offerer || !d_->ctx) return {};
  std::lock_guard<std::mutex> lock(d_->mutex);
  d_->log("sdp: offer made");
  return build_user_initiated_offer(d_->local);
}

bool Peer::set_answer(const std::string &bridge_answer, std::string *error) {
  auto fail = [&](const std::string &msg) {
    if (error) *error = msg;
    std::lock_guard<std::mutex> lock(d_->mutex);
    d_->error("sdp: answer refused: " + msg);
    return false;
  };
  if (config_.role != Role::Offerer || !d_->ctx) return fail("set_answer() is for a started Offerer");
  RemoteDescription r;
  std::string err;
  if (!parse_remote_description(bridge_answer, &r, &err)) return fail(err);
  // What Meta's validator insists on (§4.7, §6 pitfall 2).
  if (r.ufrag.empty() || r.pwd.empty()) return fail("no a=ice-ufrag / a=ice-pwd");
  if (r.fingerprint.empty()) return fail("No fingerprint found in SDP");
  if (r.fingerprint_algorithm != "sha-256") return fail("fingerprint is " + r.fingerprint_algorithm + ", not sha-256");
  DtlsRole role;
  if (r.setup == "active")
    role = DtlsRole::Server;
  else if (r.setup == "passive")
    role = DtlsRole::Client;
  else
    return fail("an answer needs a=setup:active or passive, not '" + r.setup + "' (RFC 5763 §5)");
  {
    std::lock_guard<std::mutex> lock(d_->mutex);
    if (d_->remote_set) {
      d_->error("sdp: a second answer (WhatsApp does no renegotiation)");
      if (error) *error = "answer already applied";
      return false;
    }
    d_->remote = r;
    d_->remote_set = true;
    d_->exchange_us = g_get_monotonic_time();
    d_->dtls_role = role;
    d_->ice.set_remote_ufrag(r.ufrag);
    d_->log(std::string("sdp: answer applied (setup:") + r.setup + ", peer is DTLS " + to_string(role) + ")");
  }
  if (role == DtlsRole::Server) {
    if (!d_->transport.start_handshake(false, &err)) return fail(err);
  } else if (ice_nominated()) {
    d_->maybe_start_client_handshake();
  }
  return true;
}

std::string Peer::answer(const std::string &bridge_offer, std::string *error) {
  auto fail = [&](const std::string &msg) {
    if (error) *error = msg;
    std::lock_guard<std::mutex> lock(d_->mutex);
    d_->error("sdp: offer refused: " + msg);
    return std::string();
  };
  if (config_.role != Role::Answerer || !d_->ctx) return fail("answer() is for a started Answerer");
  RemoteDescription r;
  std::string err;
  if (!parse_remote_description(bridge_offer, &r, &err)) return fail(err);
  if (r.ufrag.empty() || r.pwd.empty()) return fail("no a=ice-ufrag / a=ice-pwd");
  if (r.fingerprint.empty()) return fail("No fingerprint found in SDP");
  if (r.fingerprint_algorithm != "sha-256") return fail("fingerprint is " + r.fingerprint_algorithm + ", not sha-256");
  if (r.setup != "actpass" && r.setup != "passive" && r.setup != "active")
    return fail("an offer needs a=setup:actpass, passive or active, not '" + r.setup + "'");
  std::string text;
  DtlsRole role = r.setup == "active" ? DtlsRole::Server : DtlsRole::Client;
  {
    std::lock_guard<std::mutex> lock(d_->mutex);
    if (d_->remote_set) {
      if (error) *error = "offer already answered (WhatsApp does no renegotiation)";
      return {};
    }
    text = build_business_initiated_answer(d_->local, r, &err);
    if (text.empty()) {
      if (error) *error = err;
      d_->error("sdp: offer refused: " + err);
      return {};
    }
    d_->remote = r;
    d_->remote_set = true;
    d_->exchange_us = g_get_monotonic_time();
    d_->dtls_role = role;
    d_->opus_pt = (uint8_t)r.opus_pt;
    // Meta: "Even if it is absent, the API still proceeds with 8000 clock rate against payload type 126".
    d_->dtmf_pt = (uint8_t)(r.telephone_event_pt >= 0 ? r.telephone_event_pt : 126);
    d_->receiver.set_opus_pt(d_->opus_pt);
    d_->ice.set_remote_ufrag(r.ufrag);
    d_->log(std::string("sdp: offer answered (offer setup:") + r.setup + ", peer is DTLS " + to_string(role) + ")");
  }
  if (role == DtlsRole::Server && !d_->transport.start_handshake(false, &err)) return fail(err);
  return text;
}

void Peer::stop() {
  Impl &d = *d_;
  {
    std::lock_guard<std::mutex> lock(d.mutex);
    if (d.stopping) return;
    d.stopping = true;
    if (d.ctx) d.log("stopped");
  }
  if (d.thread) {
    d.quit = true;
    g_main_context_wakeup(d.ctx);
    g_thread_join(d.thread);
    d.thread = nullptr;
  }
  // No more socket reads or media ticks: now the pipeline can go (no more transport callbacks
  // after this), then the sources and the socket.
  d.transport.stop();
  for (GSource **s : {&d.socket_source, &d.watchdog, &d.media_source}) {
    if (*s) {
      g_source_destroy(*s);
      g_source_unref(*s);
      *s = nullptr;
    }
  }
  if (d.socket) {
    g_socket_close(d.socket, nullptr);
    g_object_unref(d.socket);
    d.socket = nullptr;
  }
  std::lock_guard<std::mutex> lock(d.mutex);
  if (d.selected) g_object_unref(d.selected);
  d.selected = nullptr;
  d.pending_out.clear();
  if (d.ctx) g_main_context_unref(d.ctx);
  d.ctx = nullptr;
}

Snapshot Peer::snapshot() const {
  const Impl &d = *d_;
  std::lock_guard<std::mutex> lock(d.mutex);
  Snapshot s;
  s.ice = d.ice.counters();
  s.nominated = d.nominated_us >= 0;
  s.selected_address = d.selected_str;
  s.nominated_us = d.nominated_us;
  s.dtls_role = d.dtls_role;
  s.dtls_state = d.dtls_state;
  s.dtls_connected_us = d.dtls_connected_us;
  s.local_fingerprint = d.local.fingerprint;
  s.bridge_sdp_fingerprint = d.remote.fingerprint;
  s.bridge_cert_fingerprint = d.bridge_cert_fp;
  s.fingerprint_match = d.fp_match;
  s.first_media_us = d.first_media_us;
  s.first_media_real_us = d.first_media_real_us;
  s.last_media_us = d.last_media_us;
  s.rtp_datagrams = d.rtp_datagrams;
  s.rtcp_datagrams = d.rtcp_datagrams;
  s.packets_received = d.packets_received;
  s.opus_packets = d.receiver.opus_packets();
  s.dropped_unvalidated = d.dropped_unvalidated;
  s.dropped_before_sdp = d.dropped_before_sdp;
  s.received_ms = d.receiver.pcm().size() * 1000.0 / d.receiver.rate();
  s.media_start_us = d.media_start_us;
  s.packets_sent = d.packets_sent;
  s.dtmf_packets_sent = d.dtmf_sent;
  s.ended = d.ended;
  s.end_reason = d.end_reason;
  s.errors = d.errors;
  return s;
}

std::vector<int16_t> Peer::received_pcm() const {
  std::lock_guard<std::mutex> lock(d_->mutex);
  return d_->receiver.pcm();
}

std::vector<ReceivedPacket> Peer::received_packets() const {
  std::lock_guard<std::mutex> lock(d_->mutex);
  return d_->receiver.packets();
}

bool Peer::wait_for(const std::function<bool(const Snapshot &)> &pred, int timeout_ms, GMainContext *iterate) const {
  GMainContext *ctx = iterate ? iterate : g_main_context_get_thread_default();
  if (!ctx) ctx = g_main_context_default();
  const int64_t deadline = g_get_monotonic_time() + (int64_t)timeout_ms * 1000;
  while (g_get_monotonic_time() < deadline) {
    if (pred(snapshot())) return true;
    // Only a context this thread can own is iterated (another thread may be running it).
    if (g_main_context_acquire(ctx)) {
      while (g_main_context_iteration(ctx, FALSE)) {
      }
      g_main_context_release(ctx);
    }
    g_usleep(2000);
  }
  return pred(snapshot());
}

std::string Peer::describe() const {
  const Impl &d = *d_;
  std::lock_guard<std::mutex> lock(d.mutex);
  std::ostringstream out;
  for (const auto &e : d.events) {
    char ms[32];
    snprintf(ms, sizeof ms, "%8.1f ms  ", (e.first - d.started_us) / 1000.0);
    out << ms << e.second << "\n";
  }
  const IceCounters &c = d.ice.counters();
  out << "ice: " << c.requests << " requests, " << c.answered << " answered, " << c.use_candidate
      << " with USE-CANDIDATE, 400/401/420/487: " << c.rejected_400 << "/" << c.rejected_401 << "/" << c.rejected_420
      << "/" << c.rejected_487 << ", ignored early " << c.ignored_early << "\n";
  out << "media: sent " << d.packets_sent << " (" << d.dtmf_sent << " DTMF), received " << d.rtp_datagrams
      << " SRTP datagrams, " << d.packets_received << " decrypted, " << d.receiver.opus_packets() << " Opus, "
      << d.dropped_unvalidated << " dropped (unvalidated source), " << d.dropped_before_sdp
      << " dropped (before the business's SDP)\n";
  return out.str();
}

const char *to_string(DtlsRole role) {
  switch (role) {
    case DtlsRole::Client: return "client";
    case DtlsRole::Server: return "server";
    default: return "unknown";
  }
}

const char *to_string(DtlsState state) {
  switch (state) {
    case DtlsState::New: return "new";
    case DtlsState::Closed: return "closed";
    case DtlsState::Failed: return "failed";
    case DtlsState::Connecting: return "connecting";
    case DtlsState::Connected: return "connected";
  }
  return "?";
}

}  // namespace meta_peer
