// The calls of the service: admission (capacity, draining), creation, lookup, and a short memory of
// ended calls so that GET after DELETE still shows how a call ended. Main context only.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "call.h"
#include "config.h"

namespace vb {

struct ApiError {
  int status = 0;
  std::string code;
  std::string message;
};

class CallManager {
 public:
  CallManager(const Config &config, std::string realtime_url);
  ~CallManager();

  // Admits and starts an inbound call. `done` runs on the main context with the answer or an error.
  using AnswerDone = std::function<void(const std::shared_ptr<Call> &call, const ApiError *error,
                                        const std::string &answer)>;
  void create_inbound(CallOptions options, const std::string &offer_sdp, AnswerDone done);

  // Admits and starts an outbound call: `done` gets our offer (every candidate in it). The callee's
  // answer goes to Call::apply_answer. options.call_id must be set (a temporary id is fine; see rekey).
  void create_outbound(CallOptions options, AnswerDone done);
  // Gives a live call its final id (WhatsApp names a business-initiated call only when the Graph API
  // returns). Returns false if the new id is taken.
  bool rekey(const std::string &old_id, const std::string &new_id);
  // Called for every new call before it starts, to attach its extensions (tools, transcripts).
  void add_call_setup(std::function<void(const std::shared_ptr<Call> &)> setup) { setups_.push_back(std::move(setup)); }
  // Called for every call that ends, after the call's own bookkeeping (WhatsApp sends `terminate`).
  void set_ended_observer(std::function<void(Call &)> observer) { ended_observer_ = std::move(observer); }

  std::shared_ptr<Call> find(const std::string &call_id) const;  // live or recently ended
  std::vector<std::shared_ptr<Call>> list() const;               // live first, then recently ended
  int active_count() const { return (int)live_.size(); }
  bool at_capacity() const { return active_count() >= config_.max_calls; }
  bool draining() const { return draining_; }

  // Stops admitting calls; `drained` runs once no call is live.
  void start_drain(std::function<void()> drained);
  void end_all(const std::string &reason);

 private:
  void on_call_ended(Call &call);
  bool admit(const CallOptions &options, ApiError *error) const;
  std::string new_call_id() const;

  const Config &config_;
  std::string realtime_url_;
  std::map<std::string, std::shared_ptr<Call>> live_;
  std::deque<std::shared_ptr<Call>> ended_;  // newest last, bounded
  bool draining_ = false;
  std::function<void()> drained_;
  std::function<void(Call &)> ended_observer_;
  std::vector<std::function<void(const std::shared_ptr<Call> &)>> setups_;
};

// A call id chosen by a client: 1–128 characters of [A-Za-z0-9._:=+/-] (WhatsApp ids are base64).
bool valid_call_id(const std::string &id);

}  // namespace vb
