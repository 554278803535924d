#include "fault-support.h"

#include <glib.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "audio-analysis.h"
#include "wa-harness.h"

namespace faults {

bool place_peer_call(const svc_test::Service &vb, meta_peer::Peer &peer, const std::string &call_id,
                     std::string *error, const std::string &offer) {
  std::string sdp = offer.empty() ? peer.make_offer() : offer;
  svc_test::HttpResponse r = vb.http().request("POST", "/v1/calls", svc_test::offer_body(sdp, call_id));
  std::string answer = r.json().str("sdp");
  if (r.status != 201 || answer.empty()) {
    if (error) *error = "POST /v1/calls: " + r.describe();
    return false;
  }
  std::string why;
  if (!peer.set_answer(answer, &why)) {
    if (error) *error = "the peer refused the answer: " + why + "\n" + answer;
    return false;
  }
  return true;
}

std::vector<int16_t> heard_since(const meta_peer::Peer &peer, int64_t since_us) {
  auto pcm = peer.received_pcm();
  for (const auto &p : peer.received_packets()) {
    if (p.mono_us < since_us || p.pcm_samples == 0) continue;
    if (p.pcm_offset >= pcm.size()) break;
    return std::vector<int16_t>(pcm.begin() + (std::ptrdiff_t)p.pcm_offset, pcm.end());
  }
  return {};
}

meta_peer::Config caller_saying(const std::vector<std::pair<int, int>> &bursts) {
  meta_peer::Config c;
  c.tone.hz = 0;  // the bursts are the "speech": several turns, silence in between
  const int rate = 16000;
  std::vector<int16_t> clip;
  for (const auto &b : bursts) {
    size_t at = audio_test::ms_to_samples(b.first, rate);
    if (clip.size() < at) clip.resize(at, 0);
    auto tone = audio_test::make_tone(kCallerHz, b.second, kCallerPeakDbfs, rate);
    clip.insert(clip.end(), tone.begin(), tone.end());
  }
  c.speech.samples = clip;
  c.speech.rate = rate;
  c.speech.start_ms = 0;
  return c;
}

std::vector<std::string> whatsapp_args(const std::string &graph_url) {
  return {"--whatsapp-token",          wa_test::kToken,   "--whatsapp-app-secret",      wa_test::kAppSecret,
          "--whatsapp-verify-token",   wa_test::kVerifyToken, "--whatsapp-phone-number-id", wa_test::kPhoneId,
          "--whatsapp-graph-url",      graph_url};
}

svc_test::HttpResponse post_webhook(const svc_test::Service &vb, const std::string &body) {
  return vb.http().request("POST", "/whatsapp/webhook", body,
                           {{"Content-Type", "application/json"},
                            {"X-Hub-Signature-256", wa_test::signature(body, wa_test::kAppSecret)}});
}

bool whatsapp_inbound_call(const svc_test::Service &vb, const fake_graph::Server &graph, meta_peer::Peer &peer,
                           const std::string &call_id, std::string *error, int timeout_ms) {
  svc_test::HttpResponse r = post_webhook(vb, wa_test::connect_webhook(call_id, peer.make_offer()));
  if (r.status != 200) {
    if (error) *error = "connect webhook: " + r.describe();
    return false;
  }
  std::string answer;
  wait_until(
      [&] {
        for (const auto &q : graph_requests(graph, "pre_accept", call_id))
          if (q.status == 200) answer = q.sdp;
        return !answer.empty();
      },
      timeout_ms);
  if (answer.empty()) {
    if (error) *error = "no successful pre_accept for " + call_id + "; log:\n" + vb.call_log(call_id);
    return false;
  }
  std::string why;
  if (!peer.set_answer(answer, &why)) {
    if (error) *error = "the peer refused the pre_accept SDP: " + why;
    return false;
  }
  return true;
}

std::vector<fake_graph::Request> graph_requests(const fake_graph::Server &graph, const std::string &action,
                                                const std::string &call_id) {
  std::vector<fake_graph::Request> out;
  for (const auto &q : graph.requests_of(action))
    if (q.call_id == call_id) out.push_back(q);
  return out;
}

double tone_energy_s(const std::vector<int16_t> &samples, int rate, double hz) {
  // 50 ms windows hold 15 periods of 300 Hz and 22 of 440 Hz: the Goertzel estimate of a steady
  // sine is within a percent or two, and a 20 ms Opus frame lost in the middle shows as missing
  // energy in proportion.
  const size_t window = audio_test::ms_to_samples(50, rate);
  double sum = 0;
  for (size_t at = 0; at + window <= samples.size(); at += window)
    sum += 2.0 * audio_test::goertzel_power(&samples[at], window, hz, rate) * 0.050;
  return sum;
}

double sine_energy_s(double peak_dbfs, double duration_ms) {
  double a = audio_test::dbfs_to_linear(peak_dbfs);
  return a * a / 2.0 * duration_ms / 1000.0;
}

double tone_ms(const std::vector<int16_t> &samples, int rate, double hz) {
  double sum = 0;
  for (const auto &t : svc_test::tones_at(svc_test::find_tones(samples, rate), hz)) sum += t.length_ms();
  return sum;
}

std::string describe_sound(const std::vector<int16_t> &samples, int rate) {
  return svc_test::describe_tones(svc_test::find_tones(samples, rate));
}

double metric_value(const std::string &exposition, const std::string &name) {
  std::istringstream in(exposition);
  double sum = 0;
  bool found = false;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#' || line.compare(0, name.size(), name) != 0) continue;
    if (line.size() <= name.size() || (line[name.size()] != ' ' && line[name.size()] != '{')) continue;
    size_t space = line.rfind(' ');
    if (space == std::string::npos) continue;
    sum += std::strtod(line.c_str() + space + 1, nullptr);
    found = true;
  }
  return found ? sum : -1;
}

bool wait_until(const std::function<bool()> &pred, int timeout_ms) {
  int64_t deadline = g_get_monotonic_time() + (int64_t)timeout_ms * 1000;
  while (!pred()) {
    if (g_get_monotonic_time() >= deadline) return pred();
    g_usleep(20 * 1000);
  }
  return true;
}

double ms_between(int64_t from_us, int64_t to_us) { return (to_us - from_us) / 1000.0; }

}  // namespace faults
