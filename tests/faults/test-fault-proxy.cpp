// The impairment proxy's own checks: the packet-loss test's numbers are only as good as the proxy
// that makes them. It must classify datagrams like RFC 7983 / RFC 5761, never touch STUN, DTLS or
// RTCP, drop about the rate asked (and exactly as counted), reorder by one place, repeat itself for
// a seed, and relay to wherever the bridge side last sent from.
#include <gst/check/gstcheck.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <vector>

#include "udp-impairment-proxy.h"

namespace {

// A UDP socket on 127.0.0.1 for the test's two "ends".
struct End {
  int fd = -1;
  uint16_t port = 0;
  End() {
    fd = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a);
    getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len);
    port = ntohs(a.sin_port);
    int size = 1 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  }
  ~End() { close(fd); }
  void send(uint16_t to, const std::vector<uint8_t> &d) const {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(to);
    sendto(fd, d.data(), d.size(), 0, reinterpret_cast<sockaddr *>(&a), sizeof a);
  }
  // Everything that arrives until nothing has for quiet_ms (bounded by 5 s).
  std::vector<std::vector<uint8_t>> drain(int quiet_ms = 300) const {
    std::vector<std::vector<uint8_t>> out;
    int64_t deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
    uint8_t buf[2048];
    while (g_get_monotonic_time() < deadline) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, quiet_ms) <= 0) break;
      ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n > 0) out.emplace_back(buf, buf + n);
    }
    return out;
  }
};

std::vector<uint8_t> rtp(uint16_t seq) {
  return {0x80, 111, (uint8_t)(seq >> 8), (uint8_t)seq, 0, 0, 0, 0, 0, 0, 0, 1, 0xfc, 0xff, 0xfe};
}
uint16_t seq_of(const std::vector<uint8_t> &p) { return (uint16_t)(p[2] << 8 | p[3]); }

// The sequence numbers of the RTP packets among datagrams, in order; counts the DTLS and RTCP ones.
std::vector<int> rtp_seqs(const std::vector<std::vector<uint8_t>> &datagrams, int *dtls, int *rtcp) {
  std::vector<int> out;
  for (const auto &p : datagrams) {
    auto k = faults::classify(p.data(), p.size());
    if (k == faults::Kind::Dtls && dtls) (*dtls)++;
    if (k == faults::Kind::Rtcp && rtcp) (*rtcp)++;
    if (k == faults::Kind::Rtp) out.push_back(seq_of(p));
  }
  return out;
}

// Sends n RTP packets (and a DTLS record and an RTCP report every 10) from the caller end through the
// proxy; returns what reached the bridge end, in arrival order.
std::vector<std::vector<uint8_t>> relay(const faults::Impairment &imp, int n, faults::DirectionCounts *counts) {
  End caller, bridge;
  faults::UdpImpairmentProxy proxy;
  proxy.set_impairment(faults::Direction::ToBridge, imp);
  std::string error;
  fail_unless(proxy.start(caller.port, &error), "%s", error.c_str());
  // The bridge speaks first (as voicebridge's ICE checks do): that is how the proxy learns where it is.
  std::vector<uint8_t> stun = {0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42};
  bridge.send(proxy.bridge_port(), stun);
  auto at_caller = caller.drain();
  fail_unless(at_caller.size() == 1 && at_caller[0] == stun, "the STUN packet did not reach the caller untouched");
  fail_unless(proxy.bridge_address() == "127.0.0.1:" + std::to_string(bridge.port), "bridge address %s",
              proxy.bridge_address().c_str());
  for (int i = 0; i < n; i++) {
    if (i % 10 == 0) {
      caller.send(proxy.peer_side_port(), {23, 0xfe, 0xfd, 0, 1});        // DTLS application data
      caller.send(proxy.peer_side_port(), {0x81, 200, 0, 6, 0, 0, 0, 1});  // RTCP sender report
    }
    caller.send(proxy.peer_side_port(), rtp((uint16_t)i));
    g_usleep(200);  // a paced stream, as on a call (and no loopback buffer overflow)
  }
  auto out = bridge.drain();
  *counts = proxy.counts(faults::Direction::ToBridge);
  proxy.stop();
  return out;
}

}  // namespace

GST_START_TEST(test_classify) {
  auto kind = [](std::vector<uint8_t> d) { return faults::classify(d.data(), d.size()); };
  fail_unless(kind({0x00, 0x01}) == faults::Kind::Stun);
  fail_unless(kind({0x01, 0x01}) == faults::Kind::Stun);
  fail_unless(kind({22, 0xfe, 0xfd}) == faults::Kind::Dtls);  // handshake
  fail_unless(kind({23, 0xfe, 0xfd}) == faults::Kind::Dtls);  // application data
  fail_unless(kind({0x80, 111}) == faults::Kind::Rtp);
  fail_unless(kind({0x80, 111 | 0x80}) == faults::Kind::Rtp);  // marker bit
  fail_unless(kind({0x80, 126}) == faults::Kind::Rtp);         // telephone-event
  fail_unless(kind({0x81, 200}) == faults::Kind::Rtcp);        // SR
  fail_unless(kind({0x81, 201}) == faults::Kind::Rtcp);        // RR
  fail_unless(kind({0x8f, 205}) == faults::Kind::Rtcp);        // RTPFB (transport-cc)
  fail_unless(kind({64, 0}) == faults::Kind::Other);           // TURN channel
  fail_unless(kind({}) == faults::Kind::Other);
}
GST_END_TEST;

GST_START_TEST(test_replace_media_port) {
  std::string sdp = "v=0\r\nm=audio 5000 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 127.0.0.1\r\n"
                    "a=candidate:1 1 udp 2122260223 127.0.0.1 5000 typ host generation 0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n";
  std::string out = faults::replace_media_port(sdp, 5000, 6001);
  fail_unless(out == "v=0\r\nm=audio 6001 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 127.0.0.1\r\n"
                     "a=candidate:1 1 udp 2122260223 127.0.0.1 6001 typ host generation 0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n",
              "%s", out.c_str());
}
GST_END_TEST;

GST_START_TEST(test_untouched_without_impairment) {
  faults::DirectionCounts c;
  auto out = relay({0, 0, 1}, 300, &c);
  int rtp = 0, other = 0;
  uint16_t expect = 0;
  for (const auto &p : out) {
    if (faults::classify(p.data(), p.size()) != faults::Kind::Rtp) {
      other++;
      continue;
    }
    fail_unless(seq_of(p) == expect, "packet %u arrived where %u was expected", seq_of(p), expect);
    expect++;
    rtp++;
  }
  fail_unless(rtp == 300 && other == 60, "%d RTP, %d other", rtp, other);
  fail_unless(c.rtp == 300 && c.rtp_forwarded == 300 && c.dtls == 30 && c.rtcp == 30 && c.rtp_dropped == 0);
}
GST_END_TEST;

GST_START_TEST(test_drops_and_reorders_as_counted) {
  const int n = 2000;
  faults::DirectionCounts c;
  auto out = relay({0.20, 0.05, 42}, n, &c);
  int dtls = 0, rtcp = 0, inversions = 0;
  std::vector<int> seqs = rtp_seqs(out, &dtls, &rtcp);
  int rtp = (int)seqs.size();
  for (size_t j = 1; j < seqs.size(); j++) {
    if (seqs[j] > seqs[j - 1]) continue;
    inversions++;
    // Held back by one place: only the packet just before it overtook it.
    fail_unless(j < 2 || seqs[j - 2] < seqs[j], "packet %d arrived after %d and %d", seqs[j], seqs[j - 2], seqs[j - 1]);
  }
  g_print("proxy: %d RTP packets at 20%% drop, 5%% reorder: %llu dropped (%.1f%%), %llu reordered, %d arrived\n", n,
          (unsigned long long)c.rtp_dropped, 100.0 * c.rtp_dropped / n, (unsigned long long)c.rtp_reordered, rtp);
  fail_unless(dtls == n / 10 && rtcp == n / 10, "DTLS %d, RTCP %d of %d each: the proxy touched them", dtls, rtcp, n / 10);
  fail_unless(c.rtp == (uint64_t)n && (uint64_t)rtp == c.rtp - c.rtp_dropped && c.rtp_forwarded == (uint64_t)rtp,
              "counted %llu seen, %llu dropped, %llu forwarded; %d arrived", (unsigned long long)c.rtp,
              (unsigned long long)c.rtp_dropped, (unsigned long long)c.rtp_forwarded, rtp);
  // 2000 draws at p = 0.2: sd 0.9%; ±3% is over 3 sd.
  fail_unless(std::abs(c.rtp_dropped / (double)n - 0.20) < 0.03, "dropped %.1f%%", 100.0 * c.rtp_dropped / n);
  fail_unless((int)c.rtp_reordered == inversions && inversions > 30, "%d inversions, %llu counted", inversions,
              (unsigned long long)c.rtp_reordered);

  // The same seed, the same damage.
  faults::DirectionCounts again;
  std::vector<int> seqs_again = rtp_seqs(relay({0.20, 0.05, 42}, n, &again), nullptr, nullptr);
  fail_unless(seqs_again == seqs, "seed 42 gave another sequence: %llu dropped, then %llu",
              (unsigned long long)c.rtp_dropped, (unsigned long long)again.rtp_dropped);
}
GST_END_TEST;

static Suite *fault_proxy_suite(void) {
  Suite *s = suite_create("fault_proxy");
  TCase *tc = tcase_create("proxy");
  tcase_set_timeout(tc, 20);
  tcase_add_test(tc, test_classify);
  tcase_add_test(tc, test_replace_media_port);
  tcase_add_test(tc, test_untouched_without_impairment);
  tcase_add_test(tc, test_drops_and_reorders_as_counted);
  suite_add_tcase(s, tc);
  return s;
}

GST_CHECK_MAIN(fault_proxy);
