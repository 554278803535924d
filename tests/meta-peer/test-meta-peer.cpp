// Self-test of meta_peer: its SDP against the real captures, its RTP/DTMF/Opus against an independent
// reading, its ICE-lite STUN answers against libnice's own client code, and whole calls against a real
// webrtcbin in both WhatsApp call directions.
#include <arpa/inet.h>
#include <gio/gio.h>
#include <gst/check/gstcheck.h>
#include <netinet/in.h>
#include <stun/stunagent.h>
#include <stun/stunmessage.h>

#include <cmath>

#include "audio-analysis.h"
#include "audio-receiver.h"
#include "audio-sender.h"
#include "dtls-cert.h"
#include "meta-peer.h"
#include "rtp-packet.h"
#include "webrtc-bridge.h"
#include "whatsapp-sdp.h"

using namespace meta_peer;

namespace {

constexpr int kStepTimeoutMs = 10000;

std::string read_fixture(const std::string &name) {
  const char *env = g_getenv("VOICEBRIDGE_FIXTURES");
  std::string dir = env ? env : META_PEER_FIXTURES;
  gchar *text = nullptr;
  gsize len = 0;
  if (!g_file_get_contents((dir + "/whatsapp/" + name).c_str(), &text, &len, nullptr)) return {};
  std::string out(text, len);
  g_free(text);
  return out;
}

std::vector<std::string> split_lines(const std::string &text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find("\r\n", start);
    if (end == std::string::npos) end = text.size();
    lines.push_back(text.substr(start, end - start));
    start = end + 2;
  }
  return lines;
}

// The shape of an SDP line: "m", "c", "a=candidate", "a=ice-lite" …: its type and attribute name.
std::string line_key(const std::string &line) {
  if (line.compare(0, 2, "a=") != 0) return line.substr(0, 1);
  size_t end = line.find(':');
  return end == std::string::npos ? line : line.substr(0, end);
}

std::string find_line(const std::string &sdp, const std::string &prefix) {
  for (const auto &l : split_lines(sdp))
    if (l.compare(0, prefix.size(), prefix) == 0) return l;
  return {};
}

bool has_line(const std::string &sdp, const std::string &line) {
  for (const auto &l : split_lines(sdp))
    if (l == line) return true;
  return false;
}

// The steady part of received audio: skips the start (jitter buffer, codec warm-up).
std::vector<int16_t> window(const std::vector<int16_t> &pcm, int rate, int from_ms, int to_ms) {
  size_t a = (size_t)from_ms * rate / 1000, b = std::min(pcm.size(), (size_t)to_ms * rate / 1000);
  return a < b ? std::vector<int16_t>(pcm.begin() + (long)a, pcm.begin() + (long)b) : std::vector<int16_t>();
}

// A test's own main context, the thread-default one while the test runs.
struct TestContext {
  GMainContext *ctx = g_main_context_new();
  TestContext() { g_main_context_push_thread_default(ctx); }
  ~TestContext() {
    g_main_context_pop_thread_default(ctx);
    g_main_context_unref(ctx);
  }
};

// ---- a STUN client made of libnice's code: what a full ICE agent sends ----

struct StunClient {
  GSocket *socket = nullptr;
  StunAgent agent;
  uint16_t port = 0;

  StunClient() {
    stun_agent_init(&agent, STUN_ALL_KNOWN_ATTRIBUTES, STUN_COMPATIBILITY_RFC5389,
                    (StunAgentUsageFlags)(STUN_AGENT_USAGE_SHORT_TERM_CREDENTIALS | STUN_AGENT_USAGE_USE_FINGERPRINT));
    socket = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, nullptr);
    GInetAddress *ip = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
    GSocketAddress *addr = g_inet_socket_address_new(ip, 0);
    g_socket_bind(socket, addr, TRUE, nullptr);
    g_object_unref(addr);
    g_object_unref(ip);
    GSocketAddress *local = g_socket_get_local_address(socket, nullptr);
    port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(local));
    g_object_unref(local);
    g_socket_set_timeout(socket, 1);
  }
  ~StunClient() {
    g_socket_close(socket, nullptr);
    g_object_unref(socket);
  }

  struct Check {
    std::string username;
    std::string key;          // "" : no MESSAGE-INTEGRITY
    bool controlling = true;
    bool controlled = false;
    bool use_candidate = true;
    bool priority = true;
  };
  std::vector<uint8_t> build(const Check &c) {
    uint8_t buf[512];
    StunMessage req;
    stun_agent_init_request(&agent, &req, buf, sizeof buf, STUN_BINDING);
    if (!c.username.empty()) stun_message_append_string(&req, STUN_ATTRIBUTE_USERNAME, c.username.c_str());
    if (c.priority) stun_message_append32(&req, STUN_ATTRIBUTE_PRIORITY, 0x6e7f1eff);
    if (c.controlling) stun_message_append64(&req, STUN_ATTRIBUTE_ICE_CONTROLLING, 0x1122334455667788ull);
    if (c.controlled) stun_message_append64(&req, STUN_ATTRIBUTE_ICE_CONTROLLED, 0x1122334455667788ull);
    if (c.use_candidate) stun_message_append_flag(&req, STUN_ATTRIBUTE_USE_CANDIDATE);
    size_t n = stun_agent_finish_message(&agent, &req, c.key.empty() ? nullptr : (const uint8_t *)c.key.data(),
                                         c.key.size());
    return std::vector<uint8_t>(buf, buf + n);
  }
  void send(const std::vector<uint8_t> &data, uint16_t to_port) {
    GInetAddress *ip = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
    GSocketAddress *to = g_inet_socket_address_new(ip, to_port);
    g_socket_send_to(socket, to, (const gchar *)data.data(), data.size(), nullptr, nullptr);
    g_object_unref(to);
    g_object_unref(ip);
  }
  // The next datagram, or empty after the 1 s socket timeout.
  std::vector<uint8_t> receive() {
    uint8_t buf[2048];
    gssize n = g_socket_receive(socket, (gchar *)buf, sizeof buf, nullptr, nullptr);
    return n > 0 ? std::vector<uint8_t>(buf, buf + n) : std::vector<uint8_t>();
  }
  // Sends a check and returns the STUN class and error code of the reply (-1 class: no reply).
  std::pair<int, int> exchange(const Check &c, uint16_t to_port, std::vector<uint8_t> *raw = nullptr) {
    send(build(c), to_port);
    std::vector<uint8_t> reply = receive();
    if (raw) *raw = reply;
    if (reply.size() < 20) return {-1, 0};
    StunMessage m = {};
    m.agent = &agent;
    m.buffer = reply.data();
    m.buffer_len = reply.size();
    int code = 0;
    stun_message_find_error(&m, &code);
    return {(int)stun_message_get_class(&m), code};
  }
};

const char kBridgeFingerprint[] =
    "2E:35:9F:21:9E:63:72:E5:42:74:76:2D:B3:70:F7:CB:24:14:9B:14:52:71:05:48:DA:4D:67:31:09:58:2A:ED";

// A minimal business answer to the peer's offer (for tests that need no real bridge).
std::string synthetic_answer(const std::string &ufrag, const std::string &setup) {
  return "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE audio\r\n"
         "m=audio 9 UDP/TLS/RTP/SAVPF 111 126\r\nc=IN IP4 0.0.0.0\r\n"
         "a=ice-ufrag:" + ufrag + "\r\na=ice-pwd:bridgebridgebridgebridge\r\n"
         "a=fingerprint:sha-256 " + std::string(kBridgeFingerprint) + "\r\na=setup:" + setup +
         "\r\na=mid:audio\r\na=sendrecv\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\n"
         "a=rtpmap:126 telephone-event/8000\r\n";
}

}  // namespace

// ------------------------------------------------------------------------------------------------

GST_START_TEST(test_offer_shape)
{
  const std::string fixture = read_fixture("offer-user-initiated-1.sdp");
  fail_if(fixture.empty(), "fixture offer-user-initiated-1.sdp not found");
  Peer peer;
  std::string err;
  fail_unless(peer.start(&err), "start: %s", err.c_str());
  const std::string offer = peer.make_offer();

  // CRLF everywhere, a final CRLF, no bare LF.
  fail_unless(offer.size() > 2 && offer.compare(offer.size() - 2, 2, "\r\n") == 0);
  for (size_t i = 0; i < offer.size(); i++)
    if (offer[i] == '\n') fail_unless(i > 0 && offer[i - 1] == '\r', "bare LF at %zu", i);

  // Line for line the same shape as Meta's capture, less its (unreachable) IPv6 candidate.
  std::vector<std::string> want, got;
  for (const auto &l : split_lines(fixture))
    if (!(line_key(l) == "a=candidate" && l.find(" 2a03:") != std::string::npos)) want.push_back(line_key(l));
  for (const auto &l : split_lines(offer)) got.push_back(line_key(l));
  std::string want_s, got_s;
  for (auto &k : want) want_s += k + " ";
  for (auto &k : got) got_s += k + " ";
  fail_unless(want == got, "shape differs:\n fixture: %s\n    peer: %s", want_s.c_str(), got_s.c_str());

  // Lines that must be identical to Meta's.
  for (const char *prefix : {"a=group:", "a=ice-lite", "a=rtcp:", "a=setup:", "a=mid:", "a=sendrecv", "a=rtcp-mux",
                             "a=rtpmap:111", "a=rtcp-fb:", "a=fmtp:111", "a=rtpmap:126", "a=maxptime:", "a=ptime:", "s=",
                             "t="})
    fail_unless(find_line(offer, prefix) == find_line(fixture, prefix), "%s differs: '%s' vs '%s'", prefix,
                find_line(offer, prefix).c_str(), find_line(fixture, prefix).c_str());
  // The peer's own values where Meta has its own.
  const std::string port = std::to_string(peer.port());
  fail_unless(has_line(offer, "m=audio " + port + " UDP/TLS/RTP/SAVPF 111 126"));
  fail_unless(has_line(offer, "c=IN IP4 127.0.0.1"));
  std::string cand = find_line(offer, "a=candidate:");
  fail_unless(cand.find(" 1 udp 2122260223 127.0.0.1 " + port + " typ host generation 0 network-cost 50") !=
                  std::string::npos,
              "%s", cand.c_str());
  fail_unless(has_line(offer, "a=ice-ufrag:" + peer.ice_ufrag()) && peer.ice_ufrag().size() == 16);
  const std::string pwd = peer.ice_pwd();
  fail_unless(has_line(offer, "a=ice-pwd:" + pwd));
  fail_unless(pwd.size() == 24 && pwd.compare(22, 2, "==") == 0, "pwd '%s' lacks Meta's base64 padding", pwd.c_str());
  fail_unless(has_line(offer, "a=fingerprint:sha-256 " + peer.fingerprint()));
  fail_unless(peer.fingerprint().size() == 95, "fingerprint %s", peer.fingerprint().c_str());
  fail_unless(find_line(offer, "a=ssrc:").find(" cname:WhatsAppAudioStream1") != std::string::npos);
  fail_unless(find_line(offer, "a=msid:").find(" WhatsAppTrack1") != std::string::npos);

  // Its fingerprint is its own: not GStreamer's per-process default, which a webrtcbin in this
  // process shows too.
  GstElement *dec = gst_element_factory_make("dtlssrtpdec", nullptr);
  gchar *default_pem = nullptr;
  g_object_get(dec, "pem", &default_pem, nullptr);
  std::string default_fp = sha256_fingerprint(certificate_der_from_pem(default_pem ? default_pem : ""));
  g_free(default_pem);
  gst_object_unref(dec);
  fail_if(default_fp.empty());
  fail_if(default_fp == peer.fingerprint(), "the peer uses the process-wide default certificate");

  RemoteDescription parsed;
  fail_unless(parse_remote_description(offer, &parsed, &err), "%s", err.c_str());
  fail_unless(parsed.ice_lite && parsed.opus_pt == 111 && parsed.telephone_event_pt == 126 && parsed.setup == "actpass");
  peer.stop();
}
GST_END_TEST;

GST_START_TEST(test_business_answer_shape)
{
  // The Chrome-style business offer of whatsapp-calling.md §4.6 (payload types, trickle, actpass, mid 0).
  const std::string offer =
      "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
      "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 110 126\r\nc=IN IP4 0.0.0.0\r\n"
      "a=ice-ufrag:Chr0\r\na=ice-pwd:chromechromechromechrome\r\na=ice-options:trickle\r\n"
      "a=fingerprint:sha-256 " + std::string(kBridgeFingerprint) + "\r\na=setup:actpass\r\na=mid:0\r\n"
      "a=sendrecv\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n"
      "a=rtpmap:63 red/48000/2\r\na=rtpmap:9 G722/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
      "a=rtpmap:110 telephone-event/48000\r\na=rtpmap:126 telephone-event/8000\r\n";
  Config cfg;
  cfg.role = Role::Answerer;
  Peer peer(cfg);
  std::string err;
  fail_unless(peer.start(&err), "start: %s", err.c_str());
  fail_unless(peer.make_offer().empty(), "an answerer makes no offer");
  const std::string answer = peer.answer(offer, &err);
  fail_if(answer.empty(), "answer: %s", err.c_str());

  // The fixture of Meta's real answer, line for line in shape (its IPv6 candidate aside).
  std::string webhook = read_fixture("webhook-connect-business-initiated.json");
  fail_if(webhook.empty());
  size_t at = webhook.find("\"sdp\": \"");
  if (at == std::string::npos) at = webhook.find("\"sdp\":\"");
  fail_unless(at != std::string::npos);
  at = webhook.find("v=0", at);
  std::string meta;
  for (size_t i = at; i < webhook.size() && webhook[i] != '"'; i++) {
    if (webhook.compare(i, 4, "\\r\\n") == 0) {
      meta += "\r\n";
      i += 3;
    } else {
      meta += webhook[i];
    }
  }
  std::vector<std::string> want, got;
  for (const auto &l : split_lines(meta))
    if (!(line_key(l) == "a=candidate" && l.find(" 2a03:") != std::string::npos)) want.push_back(line_key(l));
  for (const auto &l : split_lines(answer)) got.push_back(line_key(l));
  std::string want_s, got_s;
  for (auto &k : want) want_s += k + " ";
  for (auto &k : got) got_s += k + " ";
  fail_unless(want == got, "shape differs:\n Meta: %s\n peer: %s", want_s.c_str(), got_s.c_str());

  const std::string port = std::to_string(peer.port());
  fail_unless(has_line(answer, "m=audio " + port + " UDP/TLS/RTP/SAVPF 111 9 0 8 110 126"), "%s", answer.c_str());
  fail_unless(has_line(answer, "a=group:BUNDLE 0") && has_line(answer, "a=mid:0"));
  fail_unless(has_line(answer, "a=ice-lite") && has_line(answer, "a=setup:active"));
  fail_unless(has_line(answer, "a=ice-options:trickle"));
  fail_unless(has_line(answer, "a=fmtp:111 minptime=10;useinbandfec=1"));
  const std::string ufrag = peer.ice_ufrag();
  fail_unless(ufrag.size() == 14 && ufrag[12] == '/', "ufrag %s", ufrag.c_str());
  fail_unless(find_line(answer, "a=candidate:").find("127.0.0.1 " + port + " typ host generation 0 network-cost 50 ufrag " +
                                                     ufrag) != std::string::npos);
  fail_unless(peer.snapshot().dtls_role == DtlsRole::Client, "answering active makes the peer the DTLS client");

  // What Meta's validator insists on, in a business offer too.
  Config cfg2;
  cfg2.role = Role::Answerer;
  Peer strict(cfg2);
  fail_unless(strict.start(&err));
  std::string no_fp = offer;
  no_fp.erase(no_fp.find("a=fingerprint:"), no_fp.find("\r\n", no_fp.find("a=fingerprint:")) + 2 - no_fp.find("a=fingerprint:"));
  fail_unless(strict.answer(no_fp, &err).empty() && err.find("fingerprint") != std::string::npos, "%s", err.c_str());
  peer.stop();
  strict.stop();
}
GST_END_TEST;

GST_START_TEST(test_rtp_dtmf_and_opus)
{
  SendSpec spec;
  spec.tone.hz = 300;
  spec.tone.peak_dbfs = -12;
  spec.ssrc = 0x11223344;
  spec.seq_base = 65530;            // crosses the 16-bit wrap
  spec.timestamp_base = 0xfffff000; // crosses the 32-bit wrap
  spec.dtmf = {{'1', 1000, 160}, {'2', 1100, 160}, {'#', 2000, 100}};  // '2' overlaps '1': pushed back
  AudioSender sender(spec);
  std::string err;
  fail_unless(sender.init(&err), "%s", err.c_str());
  AudioReceiver receiver(48000, 111);
  fail_unless(receiver.init(&err), "%s", err.c_str());

  struct Event {
    int code;
    uint32_t ts;
    int packets = 0;
    int ends = 0;
    bool marker_first = false;
    uint16_t last_duration = 0;
  };
  std::vector<Event> events;
  const int frames = 150;  // 3 s
  for (int k = 0; k < frames; k++) {
    std::vector<uint8_t> p = sender.next_packet();
    RtpHeader h;
    fail_unless(parse_rtp(p.data(), p.size(), &h));
    fail_unless(h.ssrc == 0x11223344);
    fail_unless(h.seq == (uint16_t)(65530 + k), "seq %u at frame %d", h.seq, k);
    if (h.payload_type == 111) {
      fail_unless(h.timestamp == (uint32_t)(0xfffff000u + 960u * k), "audio timestamp at frame %d", k);
    } else {
      fail_unless(h.payload_type == 126, "PT %u", h.payload_type);
      TelephoneEvent ev;
      fail_unless(parse_telephone_event(p.data() + h.payload_offset, h.payload_size, &ev));
      fail_unless(ev.volume == 10);
      if (events.empty() || events.back().ts != h.timestamp) {
        events.push_back({ev.event, h.timestamp});
        events.back().marker_first = h.marker;
        // An event's timestamp is the audio timestamp of the frame it starts in.
        fail_unless(h.timestamp == (uint32_t)(0xfffff000u + 960u * k));
      }
      Event &e = events.back();
      fail_unless(e.code == ev.event);
      e.packets++;
      if (ev.end) {
        e.ends++;
        fail_unless(ev.duration == e.last_duration, "end packets repeat the final duration");
      } else {
        fail_unless(e.ends == 0, "no update after an end packet");
        fail_unless(ev.duration == e.last_duration + 160, "durations grow by 160 (20 ms at 8000 Hz)");
      }
      e.last_duration = ev.duration;
    }
    receiver.on_rtp(p.data(), p.size(), k * 20000);
  }
  fail_unless(events.size() == 3, "%zu events", events.size());
  const int want_codes[] = {1, 2, 11};
  const int want_packets[] = {8 + 3, 8 + 3, 5 + 3};
  for (size_t i = 0; i < 3; i++) {
    fail_unless(events[i].code == want_codes[i]);
    fail_unless(events[i].packets == want_packets[i], "event %zu: %d packets", i, events[i].packets);
    fail_unless(events[i].ends == 3, "event %zu: %d end packets", i, events[i].ends);
    fail_unless(events[i].marker_first);
  }
  // '2' was pressed during '1' (1100 ms): it starts right after '1' ended (frame 50 + 11 = 61).
  fail_unless(events[1].ts == (uint32_t)(0xfffff000u + 960u * 61));
  fail_unless(sender.dtmf_packets() == 11 + 11 + 8);

  // What an Opus decoder hears: 300 Hz at -12 dBFS; the frames DTMF replaced are silence, in place.
  const auto &pcm = receiver.pcm();
  fail_unless(pcm.size() == (size_t)frames * 960, "%zu samples", pcm.size());
  fail_unless(receiver.gap_samples() == (size_t)(11 + 11 + 8) * 960, "gap %zu", receiver.gap_samples());
  auto steady = window(pcm, 48000, 200, 950);
  double f = audio_test::dominant_frequency(steady.data(), steady.size(), 48000);
  fail_unless(std::fabs(f - 300) < 3, "dominant %.1f Hz", f);
  double level = audio_test::goertzel_dbfs(steady.data(), steady.size(), 300, 48000);
  fail_unless(std::fabs(level - -12) < 2, "level %.1f dBFS", level);
  auto during_dtmf = window(pcm, 48000, 1020, 1200);
  fail_unless(audio_test::all_zero(during_dtmf.data(), during_dtmf.size()), "audio during a key press");

  // Bad input is refused up front.
  SendSpec bad;
  bad.dtmf = {{'x', 0, 100}};
  AudioSender refuse(bad);
  fail_if(refuse.init(&err));
  SendSpec bad_rate;
  bad_rate.speech.samples = std::vector<int16_t>(441, 0);
  bad_rate.speech.rate = 44100;
  AudioSender refuse2(bad_rate);
  fail_if(refuse2.init(&err));
}
GST_END_TEST;

GST_START_TEST(test_stun_ice_lite)
{
  Peer peer;
  std::string err;
  fail_unless(peer.start(&err), "start: %s", err.c_str());
  peer.make_offer();
  const std::string user = peer.ice_ufrag() + ":BRDG";
  const std::string pwd = peer.ice_pwd();
  StunClient client;
  StunClient::Check good{user, pwd};

  // Before the business's SDP: Meta does not answer.
  auto r = client.exchange(good, peer.port());
  fail_unless(r.first == -1, "a check before the answer was answered (class %d)", r.first);
  fail_unless(peer.snapshot().ice.ignored_early == 1);

  fail_unless(peer.set_answer(synthetic_answer("BRDG", "active"), &err), "%s", err.c_str());
  fail_unless(peer.snapshot().dtls_role == DtlsRole::Server);

  // Wrong password, wrong remote ufrag, wrong local ufrag: 401.
  StunClient::Check wrong_pwd{user, "not-the-password-at-all"};
  fail_unless(client.exchange(wrong_pwd, peer.port()) == std::make_pair((int)STUN_ERROR, 401));
  StunClient::Check wrong_remote{peer.ice_ufrag() + ":OTHER", pwd};
  fail_unless(client.exchange(wrong_remote, peer.port()) == std::make_pair((int)STUN_ERROR, 401));
  StunClient::Check wrong_local{"nobody:BRDG", pwd};
  fail_unless(client.exchange(wrong_local, peer.port()) == std::make_pair((int)STUN_ERROR, 401));
  // No credentials at all, or no PRIORITY, or no role: 400.
  StunClient::Check anonymous{"", ""};
  fail_unless(client.exchange(anonymous, peer.port()) == std::make_pair((int)STUN_ERROR, 400));
  StunClient::Check no_priority = good;
  no_priority.priority = false;
  fail_unless(client.exchange(no_priority, peer.port()) == std::make_pair((int)STUN_ERROR, 400));
  StunClient::Check no_role = good;
  no_role.controlling = false;
  fail_unless(client.exchange(no_role, peer.port()) == std::make_pair((int)STUN_ERROR, 400));
  // A bridge that thinks it is controlled: 487, and nothing is nominated.
  StunClient::Check controlled = good;
  controlled.controlling = false;
  controlled.controlled = true;
  fail_unless(client.exchange(controlled, peer.port()) == std::make_pair((int)STUN_ERROR, 487));
  Snapshot s = peer.snapshot();
  fail_if(s.nominated || s.ice.saw_controlling);
  fail_unless(s.ice.saw_controlled);

  // DTLS from an address no valid check came from is dropped.
  StunClient stranger;
  stranger.send({22, 0xfe, 0xfd, 0, 0}, peer.port());

  // A valid check without USE-CANDIDATE: answered, not nominated.
  StunClient::Check plain = good;
  plain.use_candidate = false;
  std::vector<uint8_t> raw;
  fail_unless(client.exchange(plain, peer.port(), &raw).first == STUN_RESPONSE);
  fail_if(peer.snapshot().nominated);

  // The nominating check: a success response that libnice's client accepts (MESSAGE-INTEGRITY with
  // the peer's pwd, FINGERPRINT), with the client's address in XOR-MAPPED-ADDRESS.
  client.send(client.build(good), peer.port());
  raw = client.receive();
  fail_if(raw.empty(), "no response to a valid check");
  StunMessage resp;
  StunValidationStatus status = stun_agent_validate(&client.agent, &resp, raw.data(), raw.size(), nullptr, nullptr);
  fail_unless(status == STUN_VALIDATION_SUCCESS, "response validation %d", (int)status);
  fail_unless(stun_message_get_class(&resp) == STUN_RESPONSE);
  struct sockaddr_storage mapped;
  socklen_t mapped_len = sizeof mapped;
  fail_unless(stun_message_find_xor_addr(&resp, STUN_ATTRIBUTE_XOR_MAPPED_ADDRESS, &mapped, &mapped_len) ==
              STUN_MESSAGE_RETURN_SUCCESS);
  fail_unless(ntohs(((struct sockaddr_in *)&mapped)->sin_port) == client.port);
  fail_unless(((struct sockaddr_in *)&mapped)->sin_addr.s_addr == htonl(INADDR_LOOPBACK));

  fail_unless(peer.wait_for([](const Snapshot &x) { return x.dropped_unvalidated >= 1; }, 2000));
  s = peer.snapshot();
  fail_unless(s.nominated, "%s", peer.describe().c_str());
  fail_unless(s.selected_address == "127.0.0.1:" + std::to_string(client.port), "%s", s.selected_address.c_str());
  fail_unless(s.ice.saw_controlling && s.ice.use_candidate == 1);
  fail_unless(s.ice.answered == 2 && s.ice.rejected_401 == 3 && s.ice.rejected_400 == 3 && s.ice.rejected_487 == 1,
              "%s", peer.describe().c_str());
  fail_unless(s.ice.requests_sent == 0, "a lite agent sent a check");
  peer.stop();
}
GST_END_TEST;

GST_START_TEST(test_no_media_timeout)
{
  Config cfg;
  cfg.no_media_setup_timeout_ms = 600;
  Peer peer(cfg);
  std::string err;
  fail_unless(peer.start(&err), "start: %s", err.c_str());
  peer.make_offer();
  const int64_t applied = g_get_monotonic_time();
  fail_unless(peer.set_answer(synthetic_answer("BRDG", "active"), &err), "%s", err.c_str());
  fail_unless(peer.wait_for([](const Snapshot &s) { return s.ended; }, 3000), "the call did not end");
  const int64_t elapsed_ms = (g_get_monotonic_time() - applied) / 1000;
  fail_unless(elapsed_ms >= 600 && elapsed_ms < 1500, "ended after %" G_GINT64_FORMAT " ms", elapsed_ms);
  fail_unless(peer.snapshot().end_reason.find("138021") != std::string::npos);

  // A second answer is refused (no renegotiation on WhatsApp), and so is a bad one.
  Peer other;
  fail_unless(other.start(&err));
  other.make_offer();
  fail_if(other.set_answer(synthetic_answer("BRDG", "actpass"), &err), "actpass in an answer");
  std::string no_fp = synthetic_answer("BRDG", "active");
  no_fp.erase(no_fp.find("a=fingerprint:"), no_fp.find("\r\n", no_fp.find("a=fingerprint:")) + 2 - no_fp.find("a=fingerprint:"));
  fail_if(other.set_answer(no_fp, &err));
  fail_unless(err == "No fingerprint found in SDP", "%s", err.c_str());
  peer.stop();
  other.stop();
}
GST_END_TEST;

namespace {

size_t count_entries(const char *dir) {
  size_t n = 0;
  if (GDir *d = g_dir_open(dir, 0, nullptr)) {
    while (g_dir_read_name(d)) n++;
    g_dir_close(d);
  }
  return n;
}

}  // namespace

// stop() gives back every thread and file descriptor: a test suite runs many peers in one process.
GST_START_TEST(test_teardown)
{
  auto cycle = [] {
    Config cfg;
    cfg.dtmf = {{'5', 0, 100}};
    Peer peer(cfg);
    std::string err;
    fail_unless(peer.start(&err), "start: %s", err.c_str());
    peer.make_offer();
    fail_unless(peer.set_answer(synthetic_answer("BRDG", "active"), &err), "%s", err.c_str());
    StunClient client;  // nominate, so that the DTLS server has a path
    client.exchange({peer.ice_ufrag() + ":BRDG", peer.ice_pwd()}, peer.port());
    fail_unless(peer.ice_nominated());
    peer.stop();
    peer.stop();  // idempotent
  };
  cycle();  // warm-up: GStreamer's task pools and the dtls plugin's process-wide state
  const size_t fds = count_entries("/proc/self/fd");
  const size_t threads = count_entries("/proc/self/task");
  for (int i = 0; i < 3; i++) cycle();
  fail_unless(count_entries("/proc/self/fd") == fds, "fds %zu → %zu", fds, count_entries("/proc/self/fd"));
  // Pool threads linger a moment after their task ended.
  Peer idle;
  idle.wait_for([&](const Snapshot &) { return count_entries("/proc/self/task") <= threads; }, 2000);
  fail_unless(count_entries("/proc/self/task") <= threads, "threads %zu → %zu", threads,
              count_entries("/proc/self/task"));
}
GST_END_TEST;

// ------------------------------------------------------------------------------------------------
// Whole calls against webrtcbin

namespace {

void check_audio(const std::vector<int16_t> &pcm, double hz, const char *who) {
  // 1.5 s of steady tone after the first 300 ms.
  auto steady = window(pcm, 48000, 300, 1800);
  fail_unless(steady.size() == 48000 * 3 / 2, "%s: only %.0f ms of audio", who, pcm.size() / 48.0);
  double f = audio_test::dominant_frequency(steady.data(), steady.size(), 48000);
  double purity = audio_test::tone_purity(steady.data(), steady.size(), hz, 48000);
  fail_unless(std::fabs(f - hz) < 5 && purity > 0.8, "%s: dominant %.1f Hz, purity %.2f at %.0f Hz", who, f, purity,
              hz);
}

}  // namespace

GST_START_TEST(test_user_initiated_call)
{
  TestContext tc;
  Config cfg;  // Offerer, 300 Hz at -12 dBFS
  // "12#": each 160 ms, from 2 s on (after the audio checked below).
  cfg.dtmf = {{'1', 2000, 160}, {'2', 2400, 160}, {'#', 2800, 160}};
  Peer peer(cfg);
  std::string err;
  fail_unless(peer.start(&err), "peer: %s", err.c_str());
  test_bridge::WebrtcBridge bridge(tc.ctx, 440.0);
  fail_unless(bridge.start(&err), "bridge: %s", err.c_str());

  const std::string offer = peer.make_offer();
  std::string answer;
  fail_unless(bridge.answer_offer(offer, &answer, &err, kStepTimeoutMs), "%s", err.c_str());
  fail_unless(has_line(answer, "a=setup:active"), "webrtcbin answered:\n%s", answer.c_str());
  fail_unless(has_line(answer, "a=sendrecv"), "webrtcbin answered:\n%s", answer.c_str());
  fail_if(has_line(answer, "a=ice-lite"), "the bridge must be a full ICE agent");
  const int64_t answered_us = g_get_monotonic_time();
  fail_unless(peer.set_answer(answer, &err), "set_answer: %s", err.c_str());

  bool up = peer.wait_for([](const Snapshot &s) { return s.dtls_state == DtlsState::Connected && s.received_ms >= 2000; },
                          15000, tc.ctx);
  fail_unless(up, "no call:\n%s", peer.describe().c_str());
  Snapshot s = peer.snapshot();
  g_print("user-initiated: nominated after %.0f ms, DTLS up after %.0f ms, first media after %.0f ms\n",
           (s.nominated_us - answered_us) / 1000.0, (s.dtls_connected_us - answered_us) / 1000.0,
           (s.first_media_us - answered_us) / 1000.0);

  // ICE: the bridge controlled and nominated; the peer never checked.
  fail_unless(s.ice.saw_controlling && s.ice.use_candidate > 0 && s.nominated, "%s", peer.describe().c_str());
  fail_unless(s.ice.requests_sent == 0 && s.ice.rejected_487 == 0);
  fail_unless(bridge.ice_controlling(), "webrtcbin is not ICE-controlling against an ice-lite offer");
  // DTLS: peer server, webrtcbin client; certificates as announced.
  fail_unless(s.dtls_role == DtlsRole::Server);
  fail_unless(bridge.dtls_client(), "webrtcbin is not the DTLS client after answering active");
  fail_unless(s.fingerprint_match == 1, "bridge cert %s vs SDP %s", s.bridge_cert_fingerprint.c_str(),
              s.bridge_sdp_fingerprint.c_str());
  fail_unless(s.errors.empty(), "%s", peer.describe().c_str());

  // Audio both ways.
  check_audio(peer.received_pcm(), 440, "peer hears the bridge");
  fail_unless(peer.wait_for([&](const Snapshot &) { return bridge.received().size() >= 48000 * 2; }, kStepTimeoutMs,
                            tc.ctx),
              "the bridge decoded only %zu samples", bridge.received().size());
  check_audio(bridge.received(), 300, "bridge hears the peer");

  // DTMF "12#" as RFC 4733 PT 126 in the audio stream (same SSRC, unbroken sequence numbers).
  fail_unless(bridge.wire().watching);
  // Until the last of '#''s three end packets (one per 20 ms frame) is in.
  fail_unless(peer.wait_for([&](const Snapshot &) { return bridge.wire().dtmf_end_packets >= 9; }, kStepTimeoutMs,
                            tc.ctx),
              "digits so far: '%s'", bridge.wire().digits.c_str());
  test_bridge::WireStats w = bridge.wire();
  fail_unless(w.digits == "12#", "digits '%s'", w.digits.c_str());
  fail_unless(w.dtmf_packets == 3 * (8 + 3) && w.dtmf_end_packets == 9, "%" G_GUINT64_FORMAT " DTMF packets",
              w.dtmf_packets);
  fail_unless(w.dtmf_marker_on_first);
  fail_unless(w.ssrcs == 1 && w.seq_gaps == 0, "ssrcs %" G_GUINT64_FORMAT ", seq gaps %" G_GUINT64_FORMAT, w.ssrcs,
              w.seq_gaps);
  fail_unless(peer.snapshot().dtmf_packets_sent == 33);

  g_print("%s", peer.describe().c_str());
  bridge.stop();
  peer.stop();
}
GST_END_TEST;

GST_START_TEST(test_business_initiated_call)
{
  TestContext tc;
  Config cfg;
  cfg.role = Role::Answerer;
  Peer peer(cfg);
  std::string err;
  fail_unless(peer.start(&err), "peer: %s", err.c_str());
  test_bridge::WebrtcBridge bridge(tc.ctx, 440.0);
  fail_unless(bridge.start(&err), "bridge: %s", err.c_str());

  std::string offer;
  fail_unless(bridge.create_offer(&offer, &err, kStepTimeoutMs), "%s", err.c_str());
  fail_unless(has_line(offer, "a=setup:actpass"), "webrtcbin offered:\n%s", offer.c_str());
  const std::string answer = peer.answer(offer, &err);
  fail_if(answer.empty(), "answer: %s", err.c_str());
  fail_unless(has_line(answer, "a=ice-lite") && has_line(answer, "a=setup:active"));
  const int64_t answered_us = g_get_monotonic_time();
  fail_unless(bridge.apply_answer(answer, &err, kStepTimeoutMs), "%s", err.c_str());

  bool up = peer.wait_for([](const Snapshot &s) { return s.dtls_state == DtlsState::Connected && s.received_ms >= 2000; },
                          15000, tc.ctx);
  fail_unless(up, "no call:\n%s", peer.describe().c_str());
  Snapshot s = peer.snapshot();
  g_print("business-initiated: nominated after %.0f ms, DTLS up after %.0f ms, first media after %.0f ms\n",
           (s.nominated_us - answered_us) / 1000.0, (s.dtls_connected_us - answered_us) / 1000.0,
           (s.first_media_us - answered_us) / 1000.0);

  fail_unless(s.ice.saw_controlling && s.ice.use_candidate > 0 && s.nominated, "%s", peer.describe().c_str());
  fail_unless(bridge.ice_controlling(), "webrtcbin is not ICE-controlling against an ice-lite answer");
  fail_unless(s.dtls_role == DtlsRole::Client);
  fail_if(bridge.dtls_client(), "webrtcbin must be the DTLS server when Meta answers active");
  fail_unless(s.fingerprint_match == 1);
  fail_unless(s.errors.empty(), "%s", peer.describe().c_str());

  check_audio(peer.received_pcm(), 440, "peer hears the bridge");
  fail_unless(peer.wait_for([&](const Snapshot &) { return bridge.received().size() >= 48000 * 2; }, kStepTimeoutMs,
                            tc.ctx),
              "the bridge decoded only %zu samples", bridge.received().size());
  check_audio(bridge.received(), 300, "bridge hears the peer");

  g_print("%s", peer.describe().c_str());
  bridge.stop();
  peer.stop();
}
GST_END_TEST;

// Meta gets the business's answer only with pre_accept/accept, while webrtcbin starts checking at its
// set-local-description. What happens to a call whose answer reaches the peer 2 s late:
GST_START_TEST(test_late_answer)
{
  TestContext tc;
  struct Outcome {
    Snapshot s;
    GstWebRTCICEConnectionState bridge_ice;
    int64_t applied_us;
  };
  auto run = [&](bool answer_early_checks, guint retransmissions, int delay_ms, int wait_ms) {
    Config cfg;
    cfg.answer_checks_before_remote_sdp = answer_early_checks;
    Peer peer(cfg);
    std::string err;
    fail_unless(peer.start(&err), "peer: %s", err.c_str());
    test_bridge::WebrtcBridge bridge(tc.ctx, 440.0);
    bridge.set_stun_max_retransmissions(retransmissions);
    fail_unless(bridge.start(&err), "bridge: %s", err.c_str());
    std::string answer;
    fail_unless(bridge.answer_offer(peer.make_offer(), &answer, &err, kStepTimeoutMs), "%s", err.c_str());
    peer.wait_for([](const Snapshot &) { return false; }, delay_ms, tc.ctx);  // Meta has no answer yet
    Outcome o;
    o.applied_us = g_get_monotonic_time();
    fail_unless(peer.set_answer(answer, &err), "%s", err.c_str());
    peer.wait_for(
        [&](const Snapshot &s) {
          // (SRTP keys may be set a moment before dtlsdec reports "connected")
          return (s.media_start_us >= 0 && s.dtls_state == DtlsState::Connected) ||
                 bridge.ice_state() == GST_WEBRTC_ICE_CONNECTION_STATE_FAILED;
        },
        wait_ms, tc.ctx);
    o.s = peer.snapshot();
    o.bridge_ice = bridge.ice_state();
    g_print("late answer (%d ms, early checks %s, %u retransmissions): %s %.0f ms after the answer; nominated %+.0f ms, "
            "DTLS %+.0f ms\n",
            delay_ms, answer_early_checks ? "answered" : "ignored", retransmissions,
            o.s.media_start_us >= 0 ? "media" : "ICE failed", (g_get_monotonic_time() - o.applied_us) / 1000.0,
            o.s.nominated ? (o.s.nominated_us - o.applied_us) / 1000.0 : NAN,
            o.s.dtls_connected_us >= 0 ? (o.s.dtls_connected_us - o.applied_us) / 1000.0 : NAN);
    bridge.stop();
    peer.stop();
    return o;
  };

  // Meta-like peer (early checks ignored), libnice's default 3 retransmissions: webrtcbin's checks
  // (sent at 0, 0.5 and 1.5 s) are all gone by the time the peer knows the answer; ICE fails.
  Outcome dead = run(false, 0, 2000, 15000);
  fail_unless(dead.s.ice.ignored_early >= 3, "%d checks ignored", dead.s.ice.ignored_early);
  fail_if(dead.s.nominated, "ICE should have failed");
  fail_unless(dead.bridge_ice == GST_WEBRTC_ICE_CONNECTION_STATE_FAILED, "bridge ICE state %d", (int)dead.bridge_ice);

  // The same with 7 retransmissions (what voicebridge sets): the 3.5 s retransmission gets through.
  Outcome saved = run(false, 7, 2000, 8000);
  fail_unless(saved.s.nominated && saved.s.dtls_state == DtlsState::Connected, "ICE/DTLS did not complete");
  fail_unless(saved.s.ice.ignored_early >= 3 && saved.s.nominated_us >= saved.applied_us);

  // A peer that answers early checks: ICE completes before the answer, but the bridge's ClientHello is
  // dropped until the peer has the SDP; DTLS completes at the bridge's next DTLS retransmission.
  Outcome early = run(true, 0, 1500, 8000);
  fail_unless(early.s.ice.ignored_early == 0 && early.s.nominated && early.s.nominated_us < early.applied_us);
  fail_unless(early.s.dropped_before_sdp >= 1, "no ClientHello came before the answer");
  fail_unless(early.s.dtls_state == DtlsState::Connected && early.s.dtls_connected_us > early.applied_us,
              "DTLS state %s", to_string(early.s.dtls_state));
}
GST_END_TEST;

static Suite *meta_peer_suite(void) {
  Suite *s = suite_create("meta-peer");
  TCase *units = tcase_create("units");
  tcase_set_timeout(units, 30);
  suite_add_tcase(s, units);
  tcase_add_test(units, test_offer_shape);
  tcase_add_test(units, test_business_answer_shape);
  tcase_add_test(units, test_rtp_dtmf_and_opus);
  tcase_add_test(units, test_stun_ice_lite);
  tcase_add_test(units, test_no_media_timeout);
  tcase_add_test(units, test_teardown);
  TCase *calls = tcase_create("calls");
  tcase_set_timeout(calls, 60);
  suite_add_tcase(s, calls);
  tcase_add_test(calls, test_user_initiated_call);
  tcase_add_test(calls, test_business_initiated_call);
  tcase_add_test(calls, test_late_answer);
  return s;
}

GST_CHECK_MAIN(meta_peer);
