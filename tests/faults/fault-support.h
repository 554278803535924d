// What the fault tests share on top of tests/service (the real voicebridge binary, its JSON log and
// API), tests/meta-peer (a WhatsApp-like media peer) and tests/whatsapp (the fake Graph API and
// signed webhooks):
//   - placing a call from a meta_peer::Peer through POST /v1/calls (the peer's offer, optionally
//     rewritten to point at an impairment proxy);
//   - driving WhatsApp calls of a svc_test::Service (its flags and signed webhooks), because that
//     harness also gives the process itself (exit status, /proc counters);
//   - measuring tones by their energy (Goertzel power × time), which Opus concealment and packet
//     loss change smoothly, unlike the length of a stretch of sound;
//   - reading one metric from the Prometheus text.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "fake-graph.h"
#include "meta-peer.h"
#include "service-harness.h"

namespace faults {

constexpr double kCallerHz = 300.0;  // what the callers say
constexpr double kReplyHz = 440.0;   // what the fake model answers (its default)
constexpr double kCallerPeakDbfs = -12.0;

// ---- calls from a meta_peer::Peer ----

// POST /v1/calls {"sdp": offer, "call_id": id}, then the answer to the peer. offer defaults to the
// peer's own (make_offer()). False with *error when either step fails.
bool place_peer_call(const svc_test::Service &vb, meta_peer::Peer &peer, const std::string &call_id,
                     std::string *error, const std::string &offer = {});

// What the peer heard from the first packet that arrived at or after since_us (monotonic), on the
// bridge's RTP timeline (gaps stay silent); empty if nothing came since.
std::vector<int16_t> heard_since(const meta_peer::Peer &peer, int64_t since_us);

// The peer configuration of a caller saying `bursts` (start, length in ms of program time, i.e. from
// its first SRTP packet) of kCallerHz, silent otherwise.
meta_peer::Config caller_saying(const std::vector<std::pair<int, int>> &bursts);

// ---- WhatsApp through svc_test::Service ----

// --whatsapp-token/-app-secret/-verify-token/-phone-number-id (tests/whatsapp's constants, which
// fake_graph checks) and --whatsapp-graph-url graph_url.
std::vector<std::string> whatsapp_args(const std::string &graph_url);
// POST /whatsapp/webhook, signed like Meta signs.
svc_test::HttpResponse post_webhook(const svc_test::Service &vb, const std::string &body);
// Meta's side of the start of an inbound call: the signed connect webhook with the peer's offer,
// then, once voicebridge's pre_accept has been answered 200, its SDP answer applied to the peer (Meta
// applies the business's SDP at pre_accept). False with *error when a step fails.
bool whatsapp_inbound_call(const svc_test::Service &vb, const fake_graph::Server &graph, meta_peer::Peer &peer,
                           const std::string &call_id, std::string *error, int timeout_ms = 30000);
// The Graph requests of `action` for call_id.
std::vector<fake_graph::Request> graph_requests(const fake_graph::Server &graph, const std::string &action,
                                                const std::string &call_id);

// ---- audio ----

// The energy of the component at hz, in (full scale)² × seconds: the sum over 50 ms windows of the
// component's mean power (2 × Goertzel power) × 0.05 s. A sine of peak A lasting T s gives A²/2 × T.
double tone_energy_s(const std::vector<int16_t> &samples, int rate, double hz);
// What a sine of that peak level and length carries.
double sine_energy_s(double peak_dbfs, double duration_ms);
// Total length of the stretches at hz (svc_test::find_tones, ±10 Hz).
double tone_ms(const std::vector<int16_t> &samples, int rate, double hz);
std::string describe_sound(const std::vector<int16_t> &samples, int rate);

// ---- metrics ----

// The sum of every sample of the metric `name` (any labels) in a Prometheus text exposition; -1
// when it has none.
double metric_value(const std::string &exposition, const std::string &name);

// ---- misc ----

// Polls pred every 20 ms until it holds or timeout_ms passed; returns its last value.
bool wait_until(const std::function<bool()> &pred, int timeout_ms);
double ms_between(int64_t from_us, int64_t to_us);

}  // namespace faults
