// Packet loss and reordering on the caller's leg. A WhatsApp-like caller (meta_peer::Peer) calls
// through POST /v1/calls with its offer pointing at an impairment proxy (udp-impairment-proxy.h),
// which drops RTP at random both ways and, towards voicebridge, also reorders some packets. ICE and
// DTLS pass untouched. The call must go on, the model must still get the caller's tone (the jitter
// buffer puts reordered packets back in order; opusdec's FEC and PLC conceal the losses), the caller
// must still hear the reply, and voicebridge must report the loss it saw (CALL stats and /metrics).
#include <gst/check/gstcheck.h>

#include <cmath>

#include "audio-analysis.h"
#include "fake-realtime-server.h"
#include "fault-support.h"
#include "udp-impairment-proxy.h"

using namespace svc_test;

namespace {

constexpr int kToneStartMs = 500;
constexpr int kToneMs = 2000;
constexpr int kReplyMs = 1000;
constexpr double kReplyAmplitude = 0.3;  // the fake's default reply level (peak, linear)
constexpr double kReorder = 0.05;        // towards voicebridge: 1 packet in 20 overtaken by the next

struct Bounds {
  double drop;                          // what the proxy drops, each way
  double reported_min, reported_max;    // rtp_packets_lost / (received + lost), as voicebridge reports it
  double duration_tolerance;            // of the 300 Hz the model received vs. sent (0: not checked)
  double model_energy_min;              // of the 300 Hz energy sent
  double caller_lost_max;               // share of the reply's 20 ms frames that never reached the caller
  double caller_level_min;              // energy of the frames that came, relative to the reply's
};

// The reply as the caller heard it. The peer lays what it decodes on the sender's RTP timeline and
// leaves exact silence where a packet never came (it has no concealment), so within the reply's
// kReplyMs from its first sound each 20 ms frame is either lost (all zero) or carries the reply.
struct HeardReply {
  int frames = 0, lost = 0;
  double level = 0;  // energy of the frames that came, relative to the reply's (1 = as sent)
  bool found = false;
};

HeardReply heard_reply(const std::vector<int16_t> &pcm, int rate) {
  HeardReply h;
  auto tones = tones_at(find_tones(pcm, rate), faults::kReplyHz);
  if (tones.empty()) return h;
  h.found = true;
  const size_t frame = audio_test::ms_to_samples(20, rate);
  const size_t start = audio_test::ms_to_samples(tones[0].start_ms, rate);
  const double sent_power = kReplyAmplitude * kReplyAmplitude / 2;
  double power_sum = 0;
  for (size_t at = start; at + frame <= pcm.size() && at < start + audio_test::ms_to_samples(kReplyMs, rate);
       at += frame) {
    h.frames++;
    if (audio_test::all_zero(&pcm[at], frame)) {
      h.lost++;
      continue;
    }
    power_sum += 2.0 * audio_test::goertzel_power(&pcm[at], frame, faults::kReplyHz, rate);
  }
  int came = h.frames - h.lost;
  h.level = came > 0 ? power_sum / came / sent_power : 0;
  return h;
}

void run_lossy_call(const Bounds &b, const std::string &id, uint32_t seed) {
  fake_realtime::Config fc;
  fc.reply_duration_ms = kReplyMs;
  fc.reply_amplitude = kReplyAmplitude;
  fake_realtime::Server fake(fc);
  std::string error;
  fail_unless(fake.start(0, &error), "fake server: %s", error.c_str());
  Service vb;
  fail_unless(vb.start(fake.url(), {}, &error), "%s", error.c_str());
  double lost_metric_before = std::max(0.0, faults::metric_value(vb.http().request("GET", "/metrics").body,
                                                                 "voicebridge_rtp_packets_lost_total"));

  meta_peer::Peer peer(faults::caller_saying({{kToneStartMs, kToneMs}}));
  fail_unless(peer.start(&error), "%s", error.c_str());
  faults::UdpImpairmentProxy proxy;
  // The peer decodes what it gets as it comes (no jitter buffer, no concealment: a late packet is a
  // lost one there), so reordering is applied only towards voicebridge, whose jitter buffer is
  // what is tested; drops go both ways.
  const double reorder = b.drop > 0 ? kReorder : 0.0;
  proxy.set_impairment(faults::Direction::ToBridge, {b.drop, reorder, seed});
  proxy.set_impairment(faults::Direction::ToCaller, {b.drop, 0.0, seed + 1});
  fail_unless(proxy.start(peer.port(), &error), "proxy: %s", error.c_str());
  std::string offer = faults::replace_media_port(peer.make_offer(), peer.port(), proxy.bridge_port());
  fail_unless(offer.find(" " + std::to_string(proxy.bridge_port()) + " typ host") != std::string::npos,
              "the offer's candidate was not moved to the proxy:\n%s", offer.c_str());
  fail_unless(faults::place_peer_call(vb, peer, id, &error, offer), "%s", error.c_str());

  auto connected = vb.wait_event("CALL_MEDIA_CONNECTED", id, 15000);
  fail_unless(connected.has_value(), "no media through the proxy:\n%s\npeer:\n%s", vb.call_log(id).c_str(),
              peer.describe().c_str());
  // The caller's turn ends ~kToneStartMs + kToneMs + the VAD's 300 ms after its first packet; the
  // reply then plays for kReplyMs.
  fail_unless(fake.wait_for([&] { return fake.responses_started() >= 1; }, 15000),
              "the model never answered (no turn detected):\n%s", vb.call_log(id).c_str());
  const double reply_energy = faults::sine_energy_s(audio_test::linear_to_dbfs(kReplyAmplitude), kReplyMs);
  const int rate = peer.receive_rate();
  // Until the caller has the reply's whole length (lost frames included: they are silence there).
  faults::wait_until([&] { return heard_reply(peer.received_pcm(), rate).frames >= kReplyMs / 20; }, kReplyMs + 5000);
  // voicebridge's loss count comes from its RTCP receiver statistics (updated at each report, a few
  // seconds apart) and is read once a second: give it time to show.
  Json stats;
  faults::wait_until(
      [&] {
        stats = vb.http().request("GET", "/v1/calls/" + id).json().get("stats");
        return (b.drop == 0 || stats.num("rtp_packets_lost", 0) > 0) && stats.num("rtp_packets_received", 0) > 200;
      },
      10000);
  faults::DirectionCounts to_bridge = proxy.counts(faults::Direction::ToBridge);
  faults::DirectionCounts to_caller = proxy.counts(faults::Direction::ToCaller);
  HttpResponse call = vb.http().request("GET", "/v1/calls/" + id);
  stats = call.json().get("stats");
  double received = stats.num("rtp_packets_received", 0), lost = stats.num("rtp_packets_lost", 0);
  double reported = lost / std::max(1.0, received + lost);
  double dropped = (double)to_bridge.rtp_dropped / std::max<uint64_t>(1, to_bridge.rtp);

  // What each end got.
  auto model_pcm = audio_test::samples_from_bytes(fake.all_input_audio());
  double model_energy = faults::tone_energy_s(model_pcm, kModelRate, faults::kCallerHz) /
                        faults::sine_energy_s(faults::kCallerPeakDbfs, kToneMs);
  double model_ms = faults::tone_ms(model_pcm, kModelRate, faults::kCallerHz);
  auto heard = peer.received_pcm();
  double caller_energy = faults::tone_energy_s(heard, rate, faults::kReplyHz) / reply_energy;
  HeardReply reply = heard_reply(heard, rate);
  double underruns = faults::metric_value(vb.http().request("GET", "/metrics").body,
                                          "voicebridge_caller_audio_underruns_total");

  g_print("loss %.0f%% each way (+%.0f%% reordered towards voicebridge): proxy dropped %llu of %llu RTP packets "
          "to voicebridge (%.1f%%), reordered %llu; %llu of %llu to the caller (%.1f%%); voicebridge reports "
          "rtp_packets_lost %.0f of %.0f (%.1f%%), jitter %.1f ms; model got %.0f ms of the %d ms of %g Hz, %.0f%% of "
          "its energy; the caller heard %.0f%% of the reply's energy: %d of its %d frames lost, the rest at %.0f%% of its "
          "level (%.0f playout underruns)\n",
          b.drop * 100, reorder * 100, (unsigned long long)to_bridge.rtp_dropped, (unsigned long long)to_bridge.rtp,
          dropped * 100, (unsigned long long)to_bridge.rtp_reordered, (unsigned long long)to_caller.rtp_dropped,
          (unsigned long long)to_caller.rtp,
          100.0 * (double)to_caller.rtp_dropped / std::max<uint64_t>(1, to_caller.rtp), lost, received + lost,
          reported * 100, stats.num("jitter_ms", 0), model_ms, kToneMs, faults::kCallerHz, model_energy * 100,
          caller_energy * 100, reply.lost, reply.frames, reply.level * 100, underruns);

  // The call is still up.
  fail_unless(call.status == 200 && call.json().str("state") == "active", "the call did not survive the loss: %s\n%s",
              call.describe().c_str(), vb.call_log(id).c_str());
  fail_unless(vb.events("CALL_ENDED", id).empty(), "%s", vb.call_log(id).c_str());
  fail_unless(b.drop == 0 || (to_bridge.rtp_dropped > 0 && to_bridge.rtp_reordered > 0),
              "the proxy did not impair the stream");

  // The model got the caller's tone, concealed.
  auto model_tones = tones_at(find_tones(model_pcm, kModelRate), faults::kCallerHz);
  fail_unless(!model_tones.empty(), "the model heard no %g Hz: %s", faults::kCallerHz,
              faults::describe_sound(model_pcm, kModelRate).c_str());
  if (b.duration_tolerance > 0)
    fail_unless(std::abs(model_ms - kToneMs) <= b.duration_tolerance * kToneMs,
                "the model got %.0f ms of %g Hz, the caller said %d ms: %s", model_ms, faults::kCallerHz, kToneMs,
                faults::describe_sound(model_pcm, kModelRate).c_str());
  fail_unless(model_energy >= b.model_energy_min, "the model got %.0f%% of the tone's energy (at least %.0f%% expected): %s",
              model_energy * 100, b.model_energy_min * 100, faults::describe_sound(model_pcm, kModelRate).c_str());

  // The caller heard the reply: its frames that came carry it at its level, and no more of them
  // are missing than the drop rate explains.
  fail_unless(reply.found, "the caller heard no reply: %s", faults::describe_sound(heard, rate).c_str());
  double reply_lost = (double)reply.lost / std::max(1, reply.frames);
  fail_unless(reply_lost <= b.caller_lost_max, "%d of the reply's %d frames never reached the caller (drop rate %.0f%%)",
              reply.lost, reply.frames, b.drop * 100);
  fail_unless(reply.level >= b.caller_level_min,
              "the reply's frames reached the caller at %.0f%% of its energy (%.0f playout underruns): %s",
              reply.level * 100, underruns, faults::describe_sound(heard, rate).c_str());

  // voicebridge saw the loss, about as much as there was.
  fail_unless(b.drop == 0 || lost > 0, "voicebridge reports no lost packets: %s", stats.text().c_str());
  fail_unless(reported >= b.reported_min && reported <= b.reported_max,
              "voicebridge reports %.1f%% lost (%s); the proxy dropped %.1f%%", reported * 100, stats.text().c_str(),
              dropped * 100);
  double lost_metric = faults::metric_value(vb.http().request("GET", "/metrics").body, "voicebridge_rtp_packets_lost_total");
  fail_unless(b.drop == 0 ? lost_metric <= 0 : lost_metric > lost_metric_before,
              "voicebridge_rtp_packets_lost_total went from %.0f to %.0f", lost_metric_before, lost_metric);

  // Nothing broke.
  HttpResponse del = vb.http().request("DELETE", "/v1/calls/" + id);
  fail_unless(del.status == 200 && del.json().str("end_reason") == "hangup", "%s", del.describe().c_str());
  HttpResponse health = vb.http().request("GET", "/healthz");
  fail_unless(health.status == 200 && health.json().num("active_calls") == 0, "%s", health.describe().c_str());
  fail_unless(vb.glib_complaints().empty(), "GLib criticals:\n%s", vb.glib_complaints().c_str());
  peer.stop();
  proxy.stop();
}

}  // namespace

// The control: through the proxy without damage, the same measurements give the whole tone at both
// ends and no loss (measured: 97% of the caller's tone's energy at the model; the reply's 50 frames
// all at the caller, at 97% of its energy: Opus and resampling). It shows that the bounds below
// measure the loss, not the path or the method.
GST_START_TEST(test_no_loss_control) {
  run_lossy_call({0.0, 0.0, 0.005, 0.05, 0.90, 0.0, 0.85}, "loss-0", 1);
}
GST_END_TEST;

// 5%: FEC and PLC hide it. The tone's length is kept to ±10% (find_tones merges gaps under 100 ms,
// and a concealed frame is not a gap at all) and nearly all of its energy arrives (measured: 97%,
// as without loss). The reported rate is voicebridge's own count (sequence gaps): reordered
// packets are not lost. The caller's side has no concealment: of the reply's 50 frames, 13 lost
// would be a 1-in-a-million draw at 5%; the frames that come must carry the reply at no less than
// 60% of its energy (-2.2 dB; measured 88-100%: a frame decoded right after a gap starts from a
// stale decoder state).
GST_START_TEST(test_loss_5_percent) {
  run_lossy_call({0.05, 0.02, 0.10, 0.10, 0.80, 0.26, 0.60}, "loss-5", 5001);
}
GST_END_TEST;

// 20%: still recognisable. PLC attenuates long concealments, so the bound is on energy (at least
// 70% of what was said; measured 81-88%), not on length. The caller: 22 of the reply's 50 frames
// lost is 3.5 standard deviations above the expected 10.
GST_START_TEST(test_loss_20_percent) {
  run_lossy_call({0.20, 0.12, 0.30, 0.0, 0.70, 0.44, 0.60}, "loss-20", 20001);
}
GST_END_TEST;

static Suite *fault_packet_loss_suite(void) {
  Suite *s = suite_create("fault_packet_loss");
  TCase *tc = tcase_create("loss");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_no_loss_control);
  tcase_add_test(tc, test_loss_5_percent);
  tcase_add_test(tc, test_loss_20_percent);
  suite_add_tcase(s, tc);
  return s;
}

GST_CHECK_MAIN(fault_packet_loss);
