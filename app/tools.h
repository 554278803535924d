// The model's tools during a call (docs/openai-realtime.md §6):
//  - end_call, built in: the model says goodbye and calls it in the same turn; the call is hung up
//    once that goodbye has been played to the caller in full (end_reason "agent_hangup").
//  - the operator's function tools (from the call-config hook): each call is POSTed to
//    --tool-webhook-url and the reply goes back to the model as the function's output.
//
// Wiring: CallOptions::tools_json = tools_for_call(config, operator_tools_json) before the call is
// created (configure_call() in call-config-hook.h does it), and a ToolRouter attached to every call
// (CallManager::add_call_setup in service.cpp).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <glib.h>
#include <json-glib/json-glib.h>

#include "call.h"
#include "config.h"

namespace vb {

extern const char *const kEndCallTool;  // "end_call"

// The JSON array for CallOptions::tools_json: end_call, then the operator's tools (a JSON array
// text, or empty for none). Operator tools are reduced to the keys the Realtime API accepts (one
// unknown key makes it reject the whole session.update, instructions included: §8 G2); invalid
// ones, and ones named like a built-in or an earlier tool, are dropped with a warning.
std::string tools_for_call(const Config &config, const std::string &extra_tools_json);

// Whether `node` is an array of function tools as the call-config hook may return them: objects with
// a "name" of 1-64 letters, digits, '_' or '-', "type" absent or "function", "description" a string
// and "parameters" an object when present. On false, *why says which entry is wrong and how.
bool valid_function_tools(JsonNode *node, std::string *why);

// One function call of the model, with the context the tool webhook receives.
struct ToolInvocation {
  std::string call_id;        // voicebridge's call id
  std::string caller;         // "" when unknown
  std::string metadata_json;  // the call's metadata object, "" for none
  std::string tool;           // function name
  std::string tool_call_id;   // the model's call_id for this function call
  std::string arguments;      // the model's arguments (JSON text, possibly malformed)
};

struct ToolResult {
  std::string output;  // the function output for the model: the webhook's answer, or {"error":"…"}
  bool ok = false;
  int status = 0;      // HTTP status of the webhook's reply, 0 without one
  std::string error;   // why ok is false (for the log; never the arguments)
  double duration_ms = 0;
};

// The webhook request body: {"call_id","caller","tool","tool_call_id","arguments","metadata"};
// arguments as parsed JSON, or as the raw string when they do not parse.
std::string tool_webhook_body(const ToolInvocation &invocation);

// POSTs the invocation to config.tool_webhook_url (config.tool_timeout_ms) and maps the reply: a
// 2xx JSON body is the output as it is, or its "output" member when it is an object that has one (a
// string member is passed unquoted); anything else gives {"error":"…"} so the model can apologise.
// Without a webhook the output is {"error":"no such tool"}. `done` runs once on the main context
// (at once when there is no webhook).
void invoke_tool_webhook(const Config &config, const ToolInvocation &invocation,
                         std::function<void(const ToolResult &)> done);

// How long the hang-up waits; tests shorten them.
struct HangupTiming {
  // After the end_call response is done with nothing audible, how long to wait for its audio to
  // start playing: the player takes 20 ms buffers, so queued audio starts within a few of them.
  int settle_ms = 300;
  // The goodbye never finishes playing (a stuck player, the caller's media gone): hang up anyway.
  int safety_ms = 15000;
};

// Per call: answers the model's function calls. Attach one to every call; create it with
// std::make_shared (its timers hold weak references to it).
class ToolRouter : public CallExtension, public std::enable_shared_from_this<ToolRouter> {
 public:
  explicit ToolRouter(const Config &config, HangupTiming timing = {});
  ~ToolRouter() override;

  bool on_function_call(Call &call, const std::string &name, const std::string &call_id,
                        const std::string &arguments) override;
  void on_response_done(Call &call, const GstStructure *message) override;
  void on_playback_stopped(Call &call) override;
  void on_ended(Call &call) override;

  bool hangup_pending() const { return hangup_.requested; }

 private:
  void start_hangup(Call &call);
  void hang_up_when_quiet(Call &call);
  void hang_up(Call &call, const char *after);
  void stop_timers();
  void arm_timer(guint *timer, int ms, const std::weak_ptr<Call> &call, const char *after);

  const Config &config_;
  HangupTiming timing_;
  struct Hangup {
    bool requested = false;      // end_call received
    bool response_done = false;  // the response that carried it is done
    gint64 requested_us = 0;
    guint settle_timer = 0;
    guint safety_timer = 0;
  } hangup_;
};

}  // namespace vb
