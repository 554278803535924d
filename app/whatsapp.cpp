#include "whatsapp.h"

#include <algorithm>
#include <cstring>

#include <json-glib/json-glib.h>

#include "call-config-hook.h"
#include "request-util.h"
#include "log.h"
#include "metrics.h"
#include "sdp.h"

namespace vb {

namespace {

const char *const kWebhookPath = "/whatsapp/webhook";
const char *const kCallsPath = "/v1/whatsapp/calls";
const char *const kErrorsMetric = "voicebridge_whatsapp_errors_total";
const char *const kWebhooksMetric = "voicebridge_whatsapp_webhooks_total";

long long now_s() { return g_get_real_time() / G_USEC_PER_SEC; }

// A WhatsApp id to call: digits only (no "+"), as the Graph API wants them.
bool valid_wa_number(const std::string &to) {
  if (to.size() < 6 || to.size() > 20) return false;
  for (char c : to)
    if (!g_ascii_isdigit(c)) return false;
  return true;
}

// {"call_id":"…"}, escaped as JSON.
std::string call_id_body(const std::string &call_id) {
  JsonBuilder *b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "call_id");
  json_builder_add_string_value(b, call_id.c_str());
  json_builder_end_object(b);
  JsonNode *root = json_builder_get_root(b);
  gchar *text = json_to_string(root, FALSE);
  std::string out(text);
  g_free(text);
  json_node_unref(root);
  g_object_unref(b);
  return out;
}

wa::GraphOptions graph_options(const Config &config, wa::GraphOptions o) {
  o.base_url = config.whatsapp_graph_url;
  o.phone_number_id = config.whatsapp_phone_number_id;
  o.token = config.whatsapp_token;
  return o;
}

}  // namespace

// One WhatsApp call, beside its vb::Call.
struct WhatsApp::WaCall {
  std::string id;              // the wacid (outbound: a temporary id until the Graph API names the call)
  bool outbound = false;
  std::string peer;            // the WhatsApp user's number
  std::weak_ptr<Call> call;
  long long started_us = 0;    // monotonic: connect webhook (inbound) or POST (outbound)
  std::string answer;          // inbound: the one answer sent on both pre_accept and accept
  bool accepted = false;       // inbound: accept returned 200; outbound: ACCEPTED status
  bool named = true;           // outbound: the Graph API returned the wacid
  bool ended = false;          // the bridge's call has ended
  guint ring_timer = 0;
  std::shared_ptr<HttpRequest::Deferred> reply;  // outbound: the POST waiting for the wacid
};

WhatsApp::WhatsApp(const Config &config, CallManager &calls, WhatsAppOptions options)
    : config_(config), calls_(calls), options_(std::move(options)),
      graph_(graph_options(config, options_.graph)), seen_(options_.seen_capacity) {
  Metrics::get().declare_labelled(kErrorsMetric, "counter",
                                  "WhatsApp errors reported by Meta (webhooks and Graph API responses), by code.", true);
  Metrics::get().declare_labelled(kWebhooksMetric, "counter", "WhatsApp webhook deliveries, by result.", true);
}

WhatsApp::~WhatsApp() {
  for (auto &kv : active_) stop_ring_timer(*kv.second);
  // Forget the calls first: the call manager may already be gone, and a Graph response arriving
  // during the flush below must find nothing to act on.
  active_.clear();
  early_.clear();
  // The service is going away (its main loop has stopped): the terminate of the calls ended by the
  // shutdown must still reach Meta, within a bound.
  if (size_t n = graph_.in_flight()) {
    log_event(LogLevel::Info, "WA_GRAPH_FLUSH", "", "sending the last Graph API requests before exiting",
              {{"requests", (unsigned long long)n}});
    graph_.flush(3000);
  }
}

std::shared_ptr<WhatsApp::WaCall> WhatsApp::find(const std::string &id) const {
  auto it = active_.find(id);
  return it == active_.end() ? nullptr : it->second;
}

bool WhatsApp::outbound_pending() const {
  for (const auto &kv : active_)
    if (kv.second->outbound && !kv.second->named) return true;
  return false;
}

double WhatsApp::ms_since(long long mono_us) const { return (g_get_monotonic_time() - mono_us) / 1000.0; }

// ---- Routes ----------------------------------------------------------------------------------

bool WhatsApp::handle(HttpRequest &request) {
  const std::string &path = request.path();
  if (path == kWebhookPath || path == std::string(kWebhookPath) + "/") {
    if (request.method() == "GET") webhook_verify(request);
    else if (request.method() == "POST") webhook_post(request);
    else request.reply_error(405, "method_not_allowed", "use GET (verification) or POST (events)");
    return true;
  }
  if (path == kCallsPath) {
    if (!authorized(request)) {
      request.reply_error(401, "unauthorized", "missing or wrong 'Authorization: Bearer <token>'");
    } else if (request.method() != "POST") {
      request.reply_error(405, "method_not_allowed", "use POST");
    } else {
      place_call(request);
    }
    return true;
  }
  return false;
}

bool WhatsApp::authorized(HttpRequest &request) const {
  // The same rule as Api's for /v1/*: a Bearer token when one is configured.
  return bearer_authorized(request, config_.control_token);
}

void WhatsApp::webhook_verify(HttpRequest &request) {
  // Meta's subscription handshake: echo hub.challenge when hub.verify_token is ours.
  std::string mode = request.query("hub.mode");
  std::string token = request.query("hub.verify_token");
  std::string challenge = request.query("hub.challenge");
  bool ok = mode == "subscribe" && !config_.whatsapp_verify_token.empty() &&
            wa::constant_time_equal(token, config_.whatsapp_verify_token);
  if (!ok) {
    log_event(LogLevel::Warning, "WA_WEBHOOK_VERIFY_FAILED", "", "webhook verification refused",
              {{"mode", mode}, {"verify_token_configured", !config_.whatsapp_verify_token.empty()}});
    request.reply_error(403, "forbidden", "hub.mode must be subscribe and hub.verify_token must match");
    return;
  }
  log_event(LogLevel::Info, "WA_WEBHOOK_VERIFIED", "", "webhook subscription verified");
  request.reply(200, "text/plain", challenge);
}

void WhatsApp::webhook_post(HttpRequest &request) {
  if (!config_.insecure_skip_signature) {
    wa::Signature s = wa::check_signature(config_.whatsapp_app_secret, request.header("X-Hub-Signature-256"),
                                          request.body(), request.body_size());
    if (s != wa::Signature::Valid) {
      // Nothing of an unauthenticated body is read, let alone acted on.
      Metrics::get().counter_add(kWebhooksMetric, {{"result", "bad_signature"}});
      log_event(LogLevel::Warning, "WA_WEBHOOK_BAD_SIGNATURE", "", "webhook refused: bad X-Hub-Signature-256",
                {{"reason", wa::signature_name(s)}, {"bytes", (unsigned long long)request.body_size()}});
      request.reply_error(401, "bad_signature", std::string("X-Hub-Signature-256 is ") + wa::signature_name(s));
      return;
    }
  }
  Metrics::get().counter_add(kWebhooksMetric, {{"result", "accepted"}});
  // Meta wants a quick 200 (it retries after ~20 s): reply now, work once the reply is on its way.
  request.reply_json(200, "{\"received\":true}");
  struct Task {
    std::weak_ptr<WhatsApp> self;
    std::string body;
  };
  g_idle_add_full(
      G_PRIORITY_DEFAULT_IDLE,
      [](gpointer data) -> gboolean {
        auto *task = static_cast<Task *>(data);
        if (auto self = task->self.lock()) self->process_webhook(task->body);
        return G_SOURCE_REMOVE;
      },
      new Task{weak_from_this(), std::string(request.body() ? request.body() : "", request.body_size())},
      [](gpointer data) { delete static_cast<Task *>(data); });
}

// ---- Webhook events ----------------------------------------------------------------------------

void WhatsApp::process_webhook(const std::string &body) {
  wa::Webhook webhook;
  std::string error;
  if (!wa::parse_webhook(body.data(), body.size(), &webhook, &error)) {
    Metrics::get().counter_add(kWebhooksMetric, {{"result", "invalid"}});
    log_event(LogLevel::Warning, "WA_WEBHOOK_INVALID", "", "webhook body ignored: " + error,
              {{"bytes", (unsigned long long)body.size()}});
    return;
  }
  log_event(LogLevel::Debug, "WA_WEBHOOK", "", "webhook received",
            {{"calls", (unsigned long long)webhook.calls.size()},
             {"statuses", (unsigned long long)webhook.statuses.size()},
             {"errors", (unsigned long long)webhook.errors.size()},
             {"ignored_changes", webhook.ignored_changes}});
  long long now = now_s();
  for (const auto &event : webhook.calls) on_call_event(event, now);
  for (const auto &status : webhook.statuses) on_status(status, now);
  for (const auto &errors : webhook.errors) on_value_errors(errors, webhook);
}

void WhatsApp::report_error(const std::string &call_id, const wa::MetaError &error) {
  Metrics::get().counter_add(kErrorsMetric, {{"code", std::to_string(error.code)}, {"source", "webhook"}});
  log_event(LogLevel::Warning, "WA_ERROR", call_id, "WhatsApp reported error " + wa::describe_meta_error(error),
            {{"code", error.code}, {"title", error.title}});
}

void WhatsApp::on_value_errors(const wa::ValueErrors &v, const wa::Webhook &webhook) {
  // A repeated delivery carries the same value: its digest was seen.
  if (!seen_.first_time(v.digest, "value-errors")) return;
  // Errors repeated beside a call's own errors (a terminate carries both) were reported with it.
  std::vector<long long> reported;
  for (const auto &id : v.call_ids) {
    for (const auto &c : webhook.calls)
      if (c.id == id)
        for (const auto &e : c.errors) reported.push_back(e.code);
    for (const auto &s : webhook.statuses)
      if (s.id == id)
        for (const auto &e : s.errors) reported.push_back(e.code);
  }
  std::string call_id = v.call_ids.size() == 1 ? v.call_ids[0] : "";
  for (const auto &e : v.errors)
    if (std::find(reported.begin(), reported.end(), e.code) == reported.end()) report_error(call_id, e);
}

void WhatsApp::on_call_event(const wa::CallEvent &event, long long now) {
  if (event.id.empty() || event.event.empty()) {
    log_event(LogLevel::Warning, "WA_WEBHOOK_INVALID", event.id, "call event without id or event name ignored",
              {{"event", event.event}});
    return;
  }
  if (wa::is_stale(event.timestamp, now, options_.stale_after_s)) {
    log_event(LogLevel::Warning, "WA_WEBHOOK_STALE", event.id, "stale call event ignored",
              {{"event", event.event}, {"age_s", now - event.timestamp}});
    return;
  }
  if (!seen_.first_time(event.id, event.event)) {
    log_event(LogLevel::Info, "WA_WEBHOOK_DUPLICATE", event.id, "duplicate call event ignored", {{"event", event.event}});
    return;
  }
  for (const auto &e : event.errors) report_error(event.id, e);
  if (!event.phone_number_id.empty() && !config_.whatsapp_phone_number_id.empty() &&
      event.phone_number_id != config_.whatsapp_phone_number_id)
    log_event(LogLevel::Warning, "WA_WEBHOOK_OTHER_NUMBER", event.id,
              "event for another phone number id than the configured one",
              {{"phone_number_id", event.phone_number_id}});

  if (event.event == "terminate") {
    terminate_webhook(event);
  } else if (event.event == "connect") {
    if (event.user_initiated()) {
      inbound_connect(event);
    } else if (auto wc = find(event.id)) {
      outbound_connect(wc, event);
    } else {
      EarlyEvent early;
      early.call = event;
      if (!hold_early(event.id, early))
        log_event(LogLevel::Warning, "WA_WEBHOOK_UNKNOWN_CALL", event.id, "connect for a call we did not place",
                  {{"direction", event.direction}});
    }
  } else {
    log_event(LogLevel::Info, "WA_WEBHOOK_IGNORED", event.id, "call event not handled", {{"event", event.event}});
  }
}

bool WhatsApp::hold_early(const std::string &id, const EarlyEvent &event) {
  // Only while one of our calls waits for its wacid could this event be its.
  if (!outbound_pending()) return false;
  long long now = g_get_monotonic_time();
  for (auto it = early_.begin(); it != early_.end();) {
    bool expired = it->second.empty() ||
                   now - it->second.front().received_us > (long long)options_.early_event_ttl_s * G_USEC_PER_SEC;
    it = expired ? early_.erase(it) : std::next(it);
  }
  if (early_.size() >= 256 && !early_.count(id)) return false;
  EarlyEvent e = event;
  e.received_us = now;
  early_[id].push_back(std::move(e));
  log_event(LogLevel::Info, "WA_WEBHOOK_EARLY", id, "event for a call not named yet by the Graph API: held",
            {{"event", event.is_status ? event.status.status : event.call.event}});
  return true;
}

void WhatsApp::terminate_webhook(const wa::CallEvent &event) {
  auto wc = find(event.id);
  auto call = wc ? wc->call.lock() : nullptr;
  std::string reason = event.errors.empty() ? "" : wa::describe_meta_error(event.errors.front());
  if (!wc) {
    // Unknown: either long gone, or a terminate overtaking its connect (no ordering guarantee).
    // The seen-events memory holds it, so that the late connect is refused.
    bool known = seen_.contains(event.id, "connect") || calls_.find(event.id);
    log_event(LogLevel::Info, "WA_CALL_TERMINATE", event.id,
              known ? "WhatsApp ended a call that has already ended"
                    : "WhatsApp ended a call before its connect arrived: the connect will be refused",
              {{"ended_by", "whatsapp"}, {"status", event.status}, {"duration_s", event.duration}, {"error", reason}});
    return;
  }
  log_event(LogLevel::Info, "WA_CALL_TERMINATE", event.id, "WhatsApp ended the call",
            {{"ended_by", "whatsapp"},
             {"status", event.status},
             {"duration_s", event.duration},
             {"error", reason},
             {"direction", wc->outbound ? "outbound" : "inbound"}});
  // Meta ended it: nothing goes back to Meta (on_call_ended sees the call gone from active_).
  active_.erase(wc->id);
  stop_ring_timer(*wc);
  if (call) call->end("terminated");
}

void WhatsApp::inbound_connect(const wa::CallEvent &event) {
  // Phone numbers and names are personal data: debug level only.
  log_event(LogLevel::Debug, "WA_CALL_CONNECT_PARTY", event.id, "caller", {{"from", event.from}, {"caller_name", event.caller_name}});
  log_event(LogLevel::Info, "WA_CALL_CONNECT", event.id, "incoming WhatsApp call",
            {{"direction", "inbound"},
             {"sdp_type", event.sdp_type},
             {"sdp_bytes", (unsigned long long)event.sdp.size()},
             {"legacy_sdp", event.legacy_sdp}});
  if (seen_.contains(event.id, "terminate")) {
    log_event(LogLevel::Warning, "WA_CALL_REFUSED", event.id,
              "its terminate arrived before this connect: the call is not created",
              {{"reason", "terminated_before_connect"}});
    return;
  }
  if (find(event.id) || calls_.find(event.id)) {
    log_event(LogLevel::Info, "WA_WEBHOOK_DUPLICATE", event.id, "connect for a call that exists ignored");
    return;
  }
  if (event.sdp.empty()) {
    log_event(LogLevel::Error, "WA_CALL_REFUSED", event.id, "connect without an SDP offer: rejected",
              {{"reason", "no_offer"}});
    graph_.reject(event.id, [](const wa::GraphResult &) {});
    return;
  }
  auto wc = std::make_shared<WaCall>();
  wc->id = event.id;
  wc->peer = event.from;
  wc->started_us = g_get_monotonic_time();
  active_[wc->id] = wc;

  CallOptions options;
  options.call_id = event.id;
  options.direction = Direction::Inbound;
  options.hold_media = true;  // nothing reaches the caller before accept returned 200
  options.caller = event.from;
  options.caller_name = event.caller_name;
  std::weak_ptr<WhatsApp> weak = weak_from_this();
  std::string id = event.id;
  // The per-call configuration hook (bounded by --call-config-timeout-ms) may personalise the call;
  // it also gives the call its tools.
  configure_call(config_, std::move(options), [weak, id, sdp = event.sdp](CallOptions configured) {
    auto self = weak.lock();
    if (!self || !self->find(id)) return;  // terminated while the hook ran
    self->calls_.create_inbound(std::move(configured), sdp,
                                [weak, id](const std::shared_ptr<Call> &call, const ApiError *error,
                                           const std::string &answer) {
                                  if (auto s = weak.lock()) s->on_answer(id, call, error, answer);
                                });
    if (auto call = self->calls_.find(id)) {
      if (auto still = self->find(id)) still->call = call;
    }
  });
}

void WhatsApp::on_answer(const std::string &id, const std::shared_ptr<Call> &call, const ApiError *error,
                         const std::string &answer) {
  auto wc = find(id);
  if (!wc) return;
  if (error) {
    if (call) return;  // the call ended before it was answered: on_call_ended tells Meta
    active_.erase(id);
    if (error->code == "call_exists") return;  // a live call holds this id: leave it alone
    // Never created (capacity, draining, an unusable offer): decline at once rather than let the
    // caller ring until Meta's timeout.
    log_event(LogLevel::Warning, "WA_CALL_REFUSED", id, "call not created: " + error->message + "; rejecting it",
              {{"reason", error->code}});
    graph_.reject(id, [id](const wa::GraphResult &r) {
      if (r.ok) log_event(LogLevel::Info, "WA_CALL_REJECTED", id, "call rejected at WhatsApp");
    });
    return;
  }
  wc->call = call;
  wc->answer = answer;
  log_event(LogLevel::Info, "WA_WEBRTC_BRIDGE_CREATED", id, "answer ready; sending pre_accept",
            {{"after_ms", ms_since(wc->started_us)},
             {"candidates", count_candidates(answer)},
             {"answer_bytes", (unsigned long long)answer.size()}});
  graph_.pre_accept(id, answer, [this, id](const wa::GraphResult &r) { on_pre_accepted(id, r); });
}

void WhatsApp::on_pre_accepted(const std::string &id, const wa::GraphResult &result) {
  auto wc = find(id);
  if (!wc || wc->ended) return;  // ended meanwhile; Meta has been told (or told us)
  if (!result.ok) {
    end_call(wc, "graph_error");
    return;
  }
  log_event(LogLevel::Info, "WA_CALL_PRE_ACCEPTED", id, "pre_accept succeeded; sending accept",
            {{"after_ms", ms_since(wc->started_us)}, {"attempts", result.attempts}});
  // The same answer string: Meta refuses an accept whose SDP differs from the pre_accept's.
  graph_.accept(id, wc->answer, [this, id](const wa::GraphResult &r) { on_accepted(id, r); });
}

void WhatsApp::on_accepted(const std::string &id, const wa::GraphResult &result) {
  auto wc = find(id);
  if (!wc || wc->ended) return;
  if (!result.ok) {
    end_call(wc, "graph_error");
    return;
  }
  wc->accepted = true;
  log_event(LogLevel::Info, "WA_CALL_ACCEPTED", id, "accept succeeded; audio to the caller starts",
            {{"after_ms", ms_since(wc->started_us)}, {"attempts", result.attempts}, {"direction", "inbound"}});
  // Only now: media before accept would start the caller's timer and lose the greeting.
  if (auto call = wc->call.lock()) call->allow_media();
}

void WhatsApp::outbound_connect(const std::shared_ptr<WaCall> &wc, const wa::CallEvent &event) {
  log_event(LogLevel::Info, "WA_CALL_CONNECT", event.id, "WhatsApp answered our offer",
            {{"direction", "outbound"},
             {"sdp_type", event.sdp_type},
             {"sdp_bytes", (unsigned long long)event.sdp.size()},
             {"legacy_sdp", event.legacy_sdp}});
  auto call = wc->call.lock();
  if (!call || wc->ended) return;
  if (event.sdp.empty()) {
    log_event(LogLevel::Error, "WA_CALL_ANSWER_FAILED", wc->id, "connect webhook without an SDP answer");
    end_call(wc, "setup_failed");
    return;
  }
  std::weak_ptr<WhatsApp> weak = weak_from_this();
  std::string id = wc->id;
  // Call logs CALL_ROLES once the answer is applied: we control ICE; Meta's active answer makes us
  // the DTLS server.
  call->apply_answer(event.sdp, [weak, id](bool ok, const std::string &error) {
    auto self = weak.lock();
    if (!self) return;
    auto wc = self->find(id);
    if (!wc || wc->ended) return;
    if (ok) {
      log_event(LogLevel::Info, "WA_CALL_ANSWER_APPLIED", id, "the callee's answer is applied; waiting for ACCEPTED",
                {{"after_ms", self->ms_since(wc->started_us)}});
    } else {
      log_event(LogLevel::Error, "WA_CALL_ANSWER_FAILED", id, "the callee's answer was refused: " + error);
      self->end_call(wc, "setup_failed");
    }
  });
}

void WhatsApp::on_status(const wa::StatusEvent &status, long long now) {
  if (!status.type.empty() && status.type != "call") return;  // message statuses are not ours
  if (status.id.empty() || status.status.empty()) {
    log_event(LogLevel::Warning, "WA_WEBHOOK_INVALID", status.id, "status without id or status ignored");
    return;
  }
  if (wa::is_stale(status.timestamp, now, options_.stale_after_s)) {
    log_event(LogLevel::Warning, "WA_WEBHOOK_STALE", status.id, "stale call status ignored",
              {{"status", status.status}, {"age_s", now - status.timestamp}});
    return;
  }
  if (!seen_.first_time(status.id, "status:" + status.status)) {
    log_event(LogLevel::Info, "WA_WEBHOOK_DUPLICATE", status.id, "duplicate call status ignored",
              {{"status", status.status}});
    return;
  }
  for (const auto &e : status.errors) report_error(status.id, e);
  EarlyEvent event;
  event.is_status = true;
  event.status = status;
  if (auto wc = find(status.id)) {
    dispatch_outbound_event(wc, event);
  } else if (!hold_early(status.id, event)) {
    log_event(LogLevel::Info, "WA_WEBHOOK_UNKNOWN_CALL", status.id, "status for a call we do not have",
              {{"status", status.status}});
  }
}

void WhatsApp::dispatch_outbound_event(const std::shared_ptr<WaCall> &wc, const EarlyEvent &event) {
  if (!event.is_status) {
    outbound_connect(wc, event.call);
    return;
  }
  const std::string &s = event.status.status;
  auto call = wc->call.lock();
  if (s == "RINGING") {
    log_event(LogLevel::Info, "WA_CALL_RINGING", wc->id, "the callee's phone is ringing",
              {{"after_ms", ms_since(wc->started_us)}});
    if (!wc->accepted) start_ring_timer(wc);  // the no-answer deadline counts from the ringing
  } else if (s == "ACCEPTED") {
    if (wc->accepted || wc->ended) return;
    wc->accepted = true;
    stop_ring_timer(*wc);
    log_event(LogLevel::Info, "WA_CALL_ACCEPTED", wc->id, "the callee picked up; the greeting starts",
              {{"after_ms", ms_since(wc->started_us)}, {"direction", "outbound"}});
    if (call) call->allow_media();
  } else if (s == "REJECTED") {
    log_event(LogLevel::Info, "WA_CALL_REJECTED", wc->id, "the callee declined the call",
              {{"after_ms", ms_since(wc->started_us)}});
    // Meta ended it (a terminate webhook follows): nothing to send back.
    active_.erase(wc->id);
    stop_ring_timer(*wc);
    if (call) call->end("rejected");
  } else {
    log_event(LogLevel::Info, "WA_CALL_STATUS", wc->id, "call status", {{"status", s}});
  }
}

// ---- Outbound ----------------------------------------------------------------------------------

void WhatsApp::place_call(HttpRequest &request) {
  JsonObject *o = nullptr;
  JsonParser *parser = parse_request_object(request, &o);
  if (!parser) return;
  std::string to;
  CallOptions options;
  bool ok = optional_string(o, "to", &to) && optional_string(o, "instructions", &options.instructions) &&
            optional_string(o, "voice", &options.voice) && optional_string(o, "greeting", &options.greeting);
  g_object_unref(parser);
  if (!ok) {
    request.reply_error(400, "invalid_json", "to, instructions, voice and greeting must be strings");
    return;
  }
  if (!valid_wa_number(to)) {
    request.reply_error(400, "invalid_to",
                        to.empty() ? "'to' (the WhatsApp number to call) is required"
                                   : "'to' must be 6 to 20 digits, country code first, without '+' or spaces");
    return;
  }
  // WhatsApp names the call only when the Graph API returns: until then it has a temporary id.
  gchar *uuid = g_uuid_string_random();
  std::string temp_id = std::string("wa-pending-") + uuid;
  g_free(uuid);

  auto wc = std::make_shared<WaCall>();
  wc->id = temp_id;
  wc->outbound = true;
  wc->named = false;
  wc->peer = to;
  wc->started_us = g_get_monotonic_time();
  wc->reply = request.defer();
  active_[temp_id] = wc;

  options.call_id = temp_id;
  options.direction = Direction::Outbound;
  options.hold_media = true;  // the greeting waits for ACCEPTED
  options.caller = to;
  log_event(LogLevel::Info, "WA_CALL_PLACING", temp_id, "placing a WhatsApp call");
  log_event(LogLevel::Debug, "WA_CALL_PLACING_PARTY", temp_id, "callee", {{"to", to}});
  std::weak_ptr<WhatsApp> weak = weak_from_this();
  configure_call(config_, std::move(options), [weak, temp_id](CallOptions configured) {
    auto self = weak.lock();
    if (!self || !self->find(temp_id)) return;
    self->calls_.create_outbound(std::move(configured),
                                 [weak, temp_id](const std::shared_ptr<Call> &, const ApiError *error,
                                                 const std::string &offer) {
                                   if (auto s = weak.lock()) s->on_offer(temp_id, error, offer);
                                 });
    if (auto call = self->calls_.find(temp_id)) {
      if (auto still = self->find(temp_id)) still->call = call;
    }
  });
}

void WhatsApp::on_offer(const std::string &temp_id, const ApiError *error, const std::string &offer) {
  auto wc = find(temp_id);
  if (!wc) return;
  if (error) {
    // Admission (503 at_capacity / draining) or a pipeline failure: nothing exists at Meta yet.
    active_.erase(temp_id);
    if (wc->reply) wc->reply->reply_error(error->status, error->code, error->message);
    wc->reply.reset();
    return;
  }
  log_event(LogLevel::Info, "WA_CALL_OFFER", temp_id, "offer ready; sending connect",
            {{"after_ms", ms_since(wc->started_us)}, {"candidates", count_candidates(offer)}});
  graph_.connect(wc->peer, offer, [this, temp_id](const wa::GraphResult &r) { on_connected(temp_id, r); });
}

void WhatsApp::on_connected(const std::string &temp_id, const wa::GraphResult &result) {
  auto wc = find(temp_id);
  if (!wc) return;
  auto reply = std::move(wc->reply);
  active_.erase(temp_id);
  auto call = wc->call.lock();
  if (!result.ok) {
    std::string message = result.error.describe("connect");
    if (reply) reply->reply_error(502, "graph_error", message);
    if (call && !wc->ended) call->end("graph_error");  // not in active_: nothing is sent to Meta
    return;
  }
  const std::string &wacid = result.call_id;
  if (wc->ended || !call) {
    // Ended while Meta was creating it: end it there too, now that it has a name.
    std::string reason = call ? call->end_reason() : "ended";
    if (reply) reply->reply_error(503, "call_ended", "the call ended before WhatsApp named it (" + reason + ")");
    send_terminate(wacid, reason);
    return;
  }
  if (!calls_.rekey(temp_id, wacid)) {
    if (reply) reply->reply_error(502, "graph_error", "WhatsApp returned a call id that is already in use: " + wacid);
    call->end("setup_failed");
    return;
  }
  wc->id = wacid;
  wc->named = true;
  active_[wacid] = wc;
  log_event(LogLevel::Info, "WA_CALL_PLACED", wacid, "WhatsApp accepted the connect",
            {{"to", wc->peer}, {"after_ms", ms_since(wc->started_us)}, {"attempts", result.attempts},
             {"temporary_id", temp_id}});
  if (reply) reply->reply_json(202, call_id_body(wacid));
  start_ring_timer(wc);

  // Webhooks that overtook the Graph response.
  if (seen_.contains(wacid, "terminate")) {
    log_event(LogLevel::Info, "WA_CALL_TERMINATE", wacid, "WhatsApp ended the call before naming it to us",
              {{"ended_by", "whatsapp"}});
    active_.erase(wacid);
    stop_ring_timer(*wc);
    early_.erase(wacid);
    call->end("terminated");
    return;
  }
  auto early = early_.find(wacid);
  if (early != early_.end()) {
    std::vector<EarlyEvent> events = std::move(early->second);
    early_.erase(early);
    for (const auto &e : events) {
      auto still = find(wacid);
      if (!still) break;  // an earlier one ended the call
      dispatch_outbound_event(still, e);
    }
  }
}

void WhatsApp::start_ring_timer(const std::shared_ptr<WaCall> &wc) {
  stop_ring_timer(*wc);
  struct Ring {
    std::weak_ptr<WhatsApp> self;
    std::string id;
  };
  wc->ring_timer = g_timeout_add_seconds_full(
      G_PRIORITY_DEFAULT, (guint)options_.ring_timeout_s,
      [](gpointer data) -> gboolean {
        auto *ring = static_cast<Ring *>(data);
        auto self = ring->self.lock();
        if (!self) return G_SOURCE_REMOVE;
        if (auto wc = self->find(ring->id)) {
          wc->ring_timer = 0;
          log_event(LogLevel::Info, "WA_CALL_NO_ANSWER", wc->id, "the callee did not pick up in time",
                    {{"ring_timeout_s", self->options_.ring_timeout_s}});
          self->end_call(wc, "no_answer");
        }
        return G_SOURCE_REMOVE;
      },
      new Ring{weak_from_this(), wc->id}, [](gpointer data) { delete static_cast<Ring *>(data); });
}

void WhatsApp::stop_ring_timer(WaCall &wc) {
  if (wc.ring_timer) g_source_remove(wc.ring_timer);
  wc.ring_timer = 0;
}

// ---- Ending ------------------------------------------------------------------------------------

void WhatsApp::end_call(const std::shared_ptr<WaCall> &wc, const std::string &reason) {
  if (auto call = wc->call.lock()) call->end(reason);  // on_call_ended follows, synchronously
}

void WhatsApp::on_call_ended(Call &call) {
  auto wc = find(call.id());
  if (!wc) return;  // not a WhatsApp call, or Meta ended it
  wc->ended = true;
  stop_ring_timer(*wc);
  if (wc->outbound && !wc->named) {
    // Meta has not named the call yet: on_connected terminates it once it has.
    log_event(LogLevel::Info, "WA_CALL_TERMINATE", wc->id, "the bridge ended the call before WhatsApp named it",
              {{"ended_by", "bridge"}, {"reason", call.end_reason()}});
    return;
  }
  active_.erase(wc->id);
  send_terminate(wc->id, call.end_reason());
}

void WhatsApp::send_terminate(const std::string &id, const std::string &reason) {
  log_event(LogLevel::Info, "WA_CALL_TERMINATE", id, "the bridge ended the call; sending terminate",
            {{"ended_by", "bridge"}, {"reason", reason}});
  graph_.terminate(id, [id](const wa::GraphResult &r) {
    if (r.ok)
      log_event(LogLevel::Info, "WA_CALL_TERMINATED", id, "terminate succeeded", {{"attempts", r.attempts}});
  });
}

}  // namespace vb
