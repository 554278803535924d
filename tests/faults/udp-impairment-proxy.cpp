#include "udp-impairment-proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <random>
#include <sstream>
#include <vector>

namespace faults {

namespace {

// A held-back packet goes out after this long even if no later packet came to overtake it (the
// stream paused, or the call ended): reordering must not turn into loss.
constexpr int64_t kMaxHoldUs = 40 * 1000;

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool bind_loopback(int *fd, uint16_t *port, std::string *error) {
  *fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (*fd < 0) {
    if (error) *error = std::string("socket: ") + strerror(errno);
    return false;
  }
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (bind(*fd, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0 ||
      getsockname(*fd, reinterpret_cast<sockaddr *>(&a), &len) != 0) {
    if (error) *error = std::string("bind: ") + strerror(errno);
    return false;
  }
  // Audio at 50 packets/s both ways is nothing, but a burst of DTLS or a stalled test thread must not
  // overflow the default buffer.
  int size = 1 << 20;
  setsockopt(*fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  *port = ntohs(a.sin_port);
  return true;
}

}  // namespace

Kind classify(const uint8_t *data, size_t len) {
  if (len == 0) return Kind::Other;
  uint8_t b = data[0];
  if (b <= 3) return Kind::Stun;
  if (b >= 20 && b <= 63) return Kind::Dtls;
  if (b >= 128 && b <= 191) {
    // rtcp-mux: RTCP packet types 192-223 sit where RTP has marker bit + payload type; WebRTC
    // keeps its RTP payload types out of 64-95 so that the two never collide.
    if (len >= 2 && data[1] >= 192 && data[1] <= 223) return Kind::Rtcp;
    return Kind::Rtp;
  }
  return Kind::Other;
}

const char *to_string(Kind kind) {
  switch (kind) {
    case Kind::Stun: return "stun";
    case Kind::Dtls: return "dtls";
    case Kind::Rtp: return "rtp";
    case Kind::Rtcp: return "rtcp";
    case Kind::Other: break;
  }
  return "other";
}

struct UdpImpairmentProxy::State {
  struct Path {
    Impairment impairment;
    std::mt19937 rng{1};
    DirectionCounts counts;
    std::vector<uint8_t> held;
    bool has_held = false;
    int64_t held_us = 0;
    double next_uniform() { return std::uniform_real_distribution<double>(0.0, 1.0)(rng); }
  };
  Path paths[2];
  sockaddr_in caller{};
  sockaddr_in bridge{};
  bool bridge_known = false;
};

UdpImpairmentProxy::UdpImpairmentProxy() : state_(new State) {}

UdpImpairmentProxy::~UdpImpairmentProxy() { stop(); }

bool UdpImpairmentProxy::start(uint16_t caller_port, std::string *error) {
  if (thread_.joinable()) {
    if (error) *error = "already started";
    return false;
  }
  if (!bind_loopback(&bridge_fd_, &bridge_port_, error) || !bind_loopback(&peer_fd_, &peer_side_port_, error)) return false;
  if (pipe2(wake_fd_, O_NONBLOCK | O_CLOEXEC) != 0) {
    if (error) *error = std::string("pipe: ") + strerror(errno);
    return false;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    state_->caller.sin_family = AF_INET;
    state_->caller.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    state_->caller.sin_port = htons(caller_port);
  }
  quit_ = false;
  thread_ = std::thread([this] { run(); });
  return true;
}

void UdpImpairmentProxy::stop() {
  if (thread_.joinable()) {
    quit_ = true;
    char c = 'q';
    if (write(wake_fd_[1], &c, 1) < 0) {
      // The poll() timeout below wakes the thread anyway.
    }
    thread_.join();
  }
  for (int *fd : {&bridge_fd_, &peer_fd_, &wake_fd_[0], &wake_fd_[1]}) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
  }
}

void UdpImpairmentProxy::set_impairment(Direction direction, const Impairment &impairment) {
  std::lock_guard<std::mutex> lock(mutex_);
  State::Path &p = state_->paths[(int)direction];
  p.impairment = impairment;
  p.rng.seed(impairment.seed);
}

DirectionCounts UdpImpairmentProxy::counts(Direction direction) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return state_->paths[(int)direction].counts;
}

std::string UdpImpairmentProxy::bridge_address() const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!state_->bridge_known) return "";
  char ip[INET_ADDRSTRLEN] = "";
  inet_ntop(AF_INET, &state_->bridge.sin_addr, ip, sizeof ip);
  return std::string(ip) + ":" + std::to_string(ntohs(state_->bridge.sin_port));
}

void UdpImpairmentProxy::run() {
  uint8_t buf[65536];
  while (!quit_) {
    pollfd fds[3] = {{bridge_fd_, POLLIN, 0}, {peer_fd_, POLLIN, 0}, {wake_fd_[0], POLLIN, 0}};
    // Short enough to release a held packet in time (kMaxHoldUs), long enough to cost nothing.
    poll(fds, 3, 10);
    std::lock_guard<std::mutex> lock(mutex_);
    State &s = *state_;
    auto send_to = [&](Direction d, const uint8_t *data, size_t len) {
      if (d == Direction::ToCaller) {
        sendto(peer_fd_, data, len, 0, reinterpret_cast<const sockaddr *>(&s.caller), sizeof s.caller);
      } else if (s.bridge_known) {
        sendto(bridge_fd_, data, len, 0, reinterpret_cast<const sockaddr *>(&s.bridge), sizeof s.bridge);
      }
    };
    auto handle = [&](Direction d, const uint8_t *data, size_t len) {
      State::Path &p = s.paths[(int)d];
      Kind kind = classify(data, len);
      if (kind != Kind::Rtp) {
        uint64_t *counter = kind == Kind::Stun ? &p.counts.stun
                            : kind == Kind::Dtls ? &p.counts.dtls
                            : kind == Kind::Rtcp ? &p.counts.rtcp
                                                 : &p.counts.other;
        (*counter)++;
        send_to(d, data, len);
        return;
      }
      p.counts.rtp++;
      // Two draws for every packet, whatever happens to it, so that the sequence of decisions depends
      // only on the seed and the packet count.
      double drop_draw = p.next_uniform(), reorder_draw = p.next_uniform();
      if (drop_draw < p.impairment.drop) {
        p.counts.rtp_dropped++;
        return;
      }
      if (p.has_held) {  // this packet overtakes the held one
        send_to(d, data, len);
        send_to(d, p.held.data(), p.held.size());
        p.has_held = false;
        p.counts.rtp_reordered++;
        p.counts.rtp_forwarded += 2;
        return;
      }
      if (reorder_draw < p.impairment.reorder) {
        p.held.assign(data, data + len);
        p.has_held = true;
        p.held_us = now_us();
        return;
      }
      send_to(d, data, len);
      p.counts.rtp_forwarded++;
    };

    if (fds[0].revents & POLLIN) {
      for (;;) {
        sockaddr_in from{};
        socklen_t from_len = sizeof from;
        ssize_t n = recvfrom(bridge_fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr *>(&from), &from_len);
        if (n < 0) break;
        s.bridge = from;  // "back to whatever address voicebridge sent from"
        s.bridge_known = true;
        handle(Direction::ToCaller, buf, (size_t)n);
      }
    }
    if (fds[1].revents & POLLIN) {
      for (;;) {
        sockaddr_in from{};
        socklen_t from_len = sizeof from;
        ssize_t n = recvfrom(peer_fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr *>(&from), &from_len);
        if (n < 0) break;
        if (from.sin_port != s.caller.sin_port) continue;  // only the caller may use the peer side
        handle(Direction::ToBridge, buf, (size_t)n);
      }
    }
    int64_t now = now_us();
    for (int d = 0; d < 2; d++) {
      State::Path &p = s.paths[d];
      if (p.has_held && now - p.held_us >= kMaxHoldUs) {
        send_to((Direction)d, p.held.data(), p.held.size());
        p.has_held = false;
        p.counts.rtp_forwarded++;
      }
    }
  }
}

std::string replace_media_port(const std::string &sdp, uint16_t from, uint16_t to) {
  const std::string f = std::to_string(from), t = std::to_string(to);
  std::istringstream in(sdp);
  std::string line, out;
  while (std::getline(in, line)) {
    bool cr = !line.empty() && line.back() == '\r';
    if (cr) line.pop_back();
    if (line.rfind("m=audio " + f + " ", 0) == 0) {
      line = "m=audio " + t + line.substr(8 + f.size());
    } else if (line.rfind("a=candidate:", 0) == 0) {
      // a=candidate:FOUNDATION COMPONENT udp PRIORITY ADDRESS PORT typ …: the port is field 6.
      std::istringstream fields(line);
      std::vector<std::string> v;
      for (std::string w; fields >> w;) v.push_back(w);
      if (v.size() > 5 && v[5] == f) {
        v[5] = t;
        line.clear();
        for (size_t i = 0; i < v.size(); i++) line += (i ? " " : "") + v[i];
      }
    }
    out += line + (cr ? "\r\n" : "\n");
  }
  return out;
}

}  // namespace faults
