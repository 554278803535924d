#include "call-manager.h"

#include <cstring>

#include "log.h"
#include "metrics.h"

namespace vb {

namespace {
constexpr size_t kEndedCallsKept = 200;
}

bool valid_call_id(const std::string &id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id)
    if (!g_ascii_isalnum(c) && !strchr("._:=+/-", c)) return false;
  return true;
}

CallManager::CallManager(const Config &config, std::string realtime_url)
    : config_(config), realtime_url_(std::move(realtime_url)) {}

CallManager::~CallManager() { end_all("shutdown"); }

std::string CallManager::new_call_id() const {
  gchar *uuid = g_uuid_string_random();
  std::string id = std::string("call_") + uuid;
  g_free(uuid);
  return id;
}

bool CallManager::admit(const CallOptions &options, ApiError *error) const {
  if (draining_) {
    *error = {503, "draining", "the service is shutting down and takes no new calls"};
  } else if (at_capacity()) {
    *error = {503, "at_capacity", "the service is at its limit of " + std::to_string(config_.max_calls) + " calls"};
  } else if (!options.call_id.empty() && live_.count(options.call_id)) {
    *error = {409, "call_exists", "a call with id '" + options.call_id + "' exists"};
  } else {
    return true;
  }
  return false;
}

void CallManager::create_inbound(CallOptions options, const std::string &offer_sdp, AnswerDone done) {
  ApiError error;
  admit(options, &error);
  OfferInfo offer;
  if (error.status == 0) {
    std::string code, message;
    if (!inspect_offer(offer_sdp, &offer, &code, &message)) error = {400, code, message};
  }
  if (error.status) {
    Metrics::get().call_finished(error.code);
    done(nullptr, &error, "");
    return;
  }
  if (options.call_id.empty()) options.call_id = new_call_id();
  auto call = std::make_shared<Call>(config_, std::move(options), realtime_url_,
                                     [this](Call &c) { on_call_ended(c); });
  live_[call->id()] = call;
  Metrics::get().set_calls_active(active_count());
  for (auto &setup : setups_) setup(call);
  std::weak_ptr<Call> weak = call;
  call->start_inbound(offer_sdp, offer, [weak, done](bool ok, int status, const std::string &answer_or_code,
                                                      const std::string &message) {
    auto c = weak.lock();
    if (ok) {
      done(c, nullptr, answer_or_code);
    } else {
      ApiError e{status, answer_or_code, message};
      done(c, &e, "");
    }
  });
}

void CallManager::create_outbound(CallOptions options, AnswerDone done) {
  ApiError error;
  if (!admit(options, &error)) {
    Metrics::get().call_finished(error.code);
    done(nullptr, &error, "");
    return;
  }
  if (options.call_id.empty()) options.call_id = new_call_id();
  options.direction = Direction::Outbound;
  auto call = std::make_shared<Call>(config_, std::move(options), realtime_url_,
                                     [this](Call &c) { on_call_ended(c); });
  live_[call->id()] = call;
  Metrics::get().set_calls_active(active_count());
  for (auto &setup : setups_) setup(call);
  std::weak_ptr<Call> weak = call;
  call->start_outbound([weak, done](bool ok, int status, const std::string &offer_or_code, const std::string &message) {
    auto c = weak.lock();
    if (ok) {
      done(c, nullptr, offer_or_code);
    } else {
      ApiError e{status, offer_or_code, message};
      done(c, &e, "");
    }
  });
}

bool CallManager::rekey(const std::string &old_id, const std::string &new_id) {
  if (old_id == new_id) return true;
  auto it = live_.find(old_id);
  if (it == live_.end() || live_.count(new_id)) return false;
  auto call = it->second;
  live_.erase(it);
  call->set_id(new_id);
  live_[new_id] = call;
  return true;
}

void CallManager::on_call_ended(Call &call) {
  auto it = live_.find(call.id());
  if (it == live_.end()) return;
  ended_.push_back(it->second);
  live_.erase(it);
  while (ended_.size() > kEndedCallsKept) ended_.pop_front();
  Metrics::get().set_calls_active(active_count());
  if (ended_observer_) ended_observer_(call);
  if (draining_ && live_.empty() && drained_) {
    auto drained = std::move(drained_);
    drained_ = nullptr;
    // Not from inside the call's own end(): the callback may tear the service down.
    g_idle_add_full(G_PRIORITY_DEFAULT, [](gpointer data) -> gboolean {
      (*static_cast<std::function<void()> *>(data))();
      return G_SOURCE_REMOVE;
    }, new std::function<void()>(std::move(drained)), [](gpointer data) { delete static_cast<std::function<void()> *>(data); });
  }
}

std::shared_ptr<Call> CallManager::find(const std::string &call_id) const {
  auto it = live_.find(call_id);
  if (it != live_.end()) return it->second;
  for (auto e = ended_.rbegin(); e != ended_.rend(); ++e)
    if ((*e)->id() == call_id) return *e;
  return nullptr;
}

std::vector<std::shared_ptr<Call>> CallManager::list() const {
  std::vector<std::shared_ptr<Call>> out;
  for (const auto &kv : live_) out.push_back(kv.second);
  for (auto e = ended_.rbegin(); e != ended_.rend(); ++e) out.push_back(*e);
  return out;
}

void CallManager::start_drain(std::function<void()> drained) {
  draining_ = true;
  if (live_.empty()) {
    drained();
    return;
  }
  drained_ = std::move(drained);
}

void CallManager::end_all(const std::string &reason) {
  // Copy first: end() removes the call from live_.
  std::vector<std::shared_ptr<Call>> calls;
  for (const auto &kv : live_) calls.push_back(kv.second);
  for (auto &c : calls) c->end(reason);
}

}  // namespace vb
