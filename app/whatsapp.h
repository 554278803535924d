// WhatsApp Cloud API calling (CONTRACT.md §3, §4; docs/whatsapp-calling.md): the webhook routes,
// the inbound flow (connect offer → pre_accept → accept → media), the outbound flow (POST
// /v1/whatsapp/calls → Graph connect → connect webhook with the answer → RINGING → ACCEPTED →
// media), and ending calls at Meta when the bridge ends them. Main context only.
//
// Plugged into the service with Api::add_route(handle) and CallManager::set_ended_observer(
// on_call_ended); both should hold a weak reference, since the call manager outlives this object
// at shutdown.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "call-manager.h"
#include "config.h"
#include "graph-client.h"
#include "http-server.h"
#include "whatsapp-webhook.h"

namespace vb {

struct WhatsAppOptions {
  int stale_after_s = 300;       // webhook events older than this (their timestamp) are ignored
  int ring_timeout_s = 60;       // outbound: no ACCEPTED this long after connect/RINGING ends the call
  int early_event_ttl_s = 120;   // outbound: events for a call Meta has not named to us yet wait this long
  size_t seen_capacity = 4096;   // (call id, event) pairs remembered for de-duplication
  wa::GraphOptions graph;            // base_url, phone_number_id and token come from the Config
};

class WhatsApp : public std::enable_shared_from_this<WhatsApp> {
 public:
  WhatsApp(const Config &config, CallManager &calls, WhatsAppOptions options = {});
  ~WhatsApp();
  WhatsApp(const WhatsApp &) = delete;
  WhatsApp &operator=(const WhatsApp &) = delete;

  // Api::ExtraRoute: GET/POST /whatsapp/webhook and POST /v1/whatsapp/calls. True when handled.
  bool handle(HttpRequest &request);
  // CallManager's ended observer: a call the bridge ended is ended at Meta (terminate).
  void on_call_ended(Call &call);

  // Processes one webhook body now (the POST handler defers this until after its reply). Public
  // for in-process tests.
  void process_webhook(const std::string &body);

 private:
  struct WaCall;
  // A webhook event for an outbound call that Meta has not named to us yet (the Graph connect
  // response and the webhooks race): replayed once the wacid is known.
  struct EarlyEvent {
    long long received_us = 0;  // monotonic
    bool is_status = false;
    wa::CallEvent call;
    wa::StatusEvent status;
  };

  // Routes
  void webhook_verify(HttpRequest &request);
  void webhook_post(HttpRequest &request);
  void place_call(HttpRequest &request);
  bool authorized(HttpRequest &request) const;

  // Webhook events
  void on_call_event(const wa::CallEvent &event, long long now_s);
  void on_status(const wa::StatusEvent &status, long long now_s);
  void on_value_errors(const wa::ValueErrors &errors, const wa::Webhook &webhook);
  void report_error(const std::string &call_id, const wa::MetaError &error);
  void inbound_connect(const wa::CallEvent &event);
  void outbound_connect(const std::shared_ptr<WaCall> &wc, const wa::CallEvent &event);
  void dispatch_outbound_event(const std::shared_ptr<WaCall> &wc, const EarlyEvent &event);
  void terminate_webhook(const wa::CallEvent &event);
  bool hold_early(const std::string &id, const EarlyEvent &event);

  // Inbound steps
  void on_answer(const std::string &id, const std::shared_ptr<Call> &call, const ApiError *error,
                 const std::string &answer);
  void on_pre_accepted(const std::string &id, const wa::GraphResult &result);
  void on_accepted(const std::string &id, const wa::GraphResult &result);

  // Outbound steps
  void on_offer(const std::string &temp_id, const ApiError *error, const std::string &offer);
  void on_connected(const std::string &temp_id, const wa::GraphResult &result);
  void start_ring_timer(const std::shared_ptr<WaCall> &wc);
  void stop_ring_timer(WaCall &wc);

  // Ends the bridge's call (the ended observer then tells Meta unless Meta ended it).
  void end_call(const std::shared_ptr<WaCall> &wc, const std::string &reason);
  void send_terminate(const std::string &id, const std::string &reason);
  std::shared_ptr<WaCall> find(const std::string &id) const;
  bool outbound_pending() const;
  double ms_since(long long mono_us) const;

  const Config &config_;
  CallManager &calls_;
  WhatsAppOptions options_;
  wa::GraphClient graph_;
  wa::SeenEvents seen_;
  std::map<std::string, std::shared_ptr<WaCall>> active_;  // by current id (outbound: temporary until named)
  std::map<std::string, std::vector<EarlyEvent>> early_;    // by wacid
};

}  // namespace vb
