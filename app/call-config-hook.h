// The per-call configuration hook: before a call is created, the operator's service
// (--call-config-url) is asked how to run it, and may set the call's instructions, voice, greeting,
// tools and metadata.
//
// Request:  POST {"call_id","caller","caller_name","direction":"inbound"|"outbound","metadata"?}
// Reply:    200 {"instructions"?:STRING, "voice"?:STRING, "greeting"?:STRING, "tools"?:[FUNCTION…],
//                "metadata"?:OBJECT}
// Members that are absent or null keep the call's own values; present ones replace them (the hook
// has the last word: it is the operator's per-call policy). Anything else (no reply within
// --call-config-timeout-ms, a status other than 200, a body that is not a JSON object, a member of
// the wrong type, an invalid tool) leaves the call exactly as it was, logged once as
// CALL_CONFIG_FALLBACK with the reason: a call is never refused because the hook failed.
//
// Use at every place a call is created, before CallManager::create_inbound/create_outbound:
//
//   configure_call(config, std::move(options), [=](CallOptions options) {
//     calls.create_inbound(std::move(options), offer_sdp, done);
//   });
//
// configure_call runs the hook (when configured), applies its reply, and sets options.tools_json to
// the call's complete tool list (tools_for_call: end_call plus the operator's tools). The options
// need their final call_id first (the hook and the logs use it). Without --call-config-url it
// completes at once, inside the call.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "call.h"
#include "config.h"

namespace vb {

struct CallConfigRequest {
  std::string call_id;
  std::string caller;         // "" when unknown
  std::string caller_name;    // "" when unknown
  Direction direction = Direction::Inbound;
  std::string metadata_json;  // a JSON object, or "" for none (then the member is left out)

  static CallConfigRequest from_options(const CallOptions &options);
};

struct CallConfigOverrides {
  std::optional<std::string> instructions;
  std::optional<std::string> voice;
  std::optional<std::string> greeting;
  std::optional<std::string> tools_json;     // a JSON array of function tools (valid_function_tools)
  std::optional<std::string> metadata_json;  // a JSON object
  std::string fallback_reason;               // why the defaults are used; "" when the hook answered (or is off)
};

// The request body for the hook.
std::string call_config_request_body(const CallConfigRequest &request);

// Reads the hook's reply. False, with *reason, when the call must fall back to its defaults; then
// *out is left empty.
bool parse_call_config_reply(int status, const std::string &body, CallConfigOverrides *out, std::string *reason);

// Asks the hook. `done` gets the overrides (empty ones on any failure, with fallback_reason set and
// logged). Runs once on the main context: at once when no hook is configured, else after the reply
// or the timeout.
void fetch_call_config(const Config &config, const CallConfigRequest &request,
                       std::function<void(CallConfigOverrides)> done);

// Sets the options the overrides carry. tools_json gets the operator's tools only; tools_for_call
// adds the built-ins.
void apply_overrides(const CallConfigOverrides &overrides, CallOptions *options);

// fetch_call_config + apply_overrides + tools_for_call, for the places that create calls.
void configure_call(const Config &config, CallOptions options, std::function<void(CallOptions)> done);

}  // namespace vb
