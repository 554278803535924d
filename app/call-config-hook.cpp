#include "call-config-hook.h"

#include <json-glib/json-glib.h>

#include <utility>

#include "http-post.h"
#include "log.h"
#include "request-util.h"
#include "tools.h"

namespace vb {

namespace {

std::string node_text(JsonNode *node) {
  gchar *text = json_to_string(node, FALSE);
  std::string out(text ? text : "");
  g_free(text);
  return out;
}

// Reads an optional string member into *out; false when it is there but not a string (null counts
// as absent).
bool optional_string(JsonObject *o, const char *name, std::optional<std::string> *out, std::string *reason) {
  JsonNode *n = json_object_get_member(o, name);
  if (!n || JSON_NODE_HOLDS_NULL(n)) return true;
  if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING) {
    *reason = std::string("\"") + name + "\" is not a string";
    return false;
  }
  *out = json_node_get_string(n);
  return true;
}

// The names of the members that were set, for the log (never their values: instructions and
// metadata may describe the caller).
std::string set_members(const CallConfigOverrides &o) {
  std::string out;
  auto add = [&out](bool set, const char *name) {
    if (set) out += (out.empty() ? "" : ",") + std::string(name);
  };
  add(o.instructions.has_value(), "instructions");
  add(o.voice.has_value(), "voice");
  add(o.greeting.has_value(), "greeting");
  add(o.tools_json.has_value(), "tools");
  add(o.metadata_json.has_value(), "metadata");
  return out;
}

}  // namespace

CallConfigRequest CallConfigRequest::from_options(const CallOptions &options) {
  CallConfigRequest r;
  r.call_id = options.call_id;
  r.caller = options.caller;
  r.caller_name = options.caller_name;
  r.direction = options.direction;
  r.metadata_json = options.metadata_json;
  return r;
}

std::string call_config_request_body(const CallConfigRequest &request) {
  JsonObject *o = json_object_new();
  json_object_set_string_member(o, "call_id", request.call_id.c_str());
  json_object_set_string_member(o, "caller", request.caller.c_str());
  json_object_set_string_member(o, "caller_name", request.caller_name.c_str());
  json_object_set_string_member(o, "direction", request.direction == Direction::Inbound ? "inbound" : "outbound");
  if (!request.metadata_json.empty()) {
    std::string why;  // already checked when the call was requested; checked again as cheap insurance
    JsonNode *metadata = parse_untrusted_json(request.metadata_json.data(), request.metadata_json.size(), &why);
    if (metadata && JSON_NODE_HOLDS_OBJECT(metadata))
      json_object_set_member(o, "metadata", metadata);
    else if (metadata)
      json_node_unref(metadata);
  }
  JsonNode *root = json_node_new(JSON_NODE_OBJECT);
  json_node_take_object(root, o);
  std::string text = node_text(root);
  json_node_unref(root);
  return text;
}

bool parse_call_config_reply(int status, const std::string &body, CallConfigOverrides *out, std::string *reason) {
  *out = CallConfigOverrides();
  if (status != 200) {
    *reason = "the hook answered HTTP " + std::to_string(status);
    return false;
  }
  // The operator's service is trusted with the call's configuration, not with the process: its
  // reply is checked for depth and strictness before json-glib parses it (request-util.h).
  std::string why;
  JsonNode *root = parse_untrusted_json(body.data(), body.size(), &why);
  if (!root) {
    *reason = body.empty() ? "the reply is not JSON (empty)" : "the reply is " + why;
    return false;
  }
  if (!JSON_NODE_HOLDS_OBJECT(root)) {
    *reason = "the reply is not a JSON object";
    json_node_unref(root);
    return false;
  }
  JsonObject *o = json_node_get_object(root);
  CallConfigOverrides r;
  bool ok = optional_string(o, "instructions", &r.instructions, reason) &&
            optional_string(o, "voice", &r.voice, reason) && optional_string(o, "greeting", &r.greeting, reason);
  if (ok) {
    JsonNode *tools = json_object_get_member(o, "tools");
    if (tools && !JSON_NODE_HOLDS_NULL(tools)) {
      std::string why;
      if (valid_function_tools(tools, &why)) {
        r.tools_json = node_text(tools);
      } else {
        *reason = "\"tools\" " + why;
        ok = false;
      }
    }
  }
  if (ok) {
    JsonNode *metadata = json_object_get_member(o, "metadata");
    if (metadata && !JSON_NODE_HOLDS_NULL(metadata)) {
      if (JSON_NODE_HOLDS_OBJECT(metadata)) {
        r.metadata_json = node_text(metadata);
      } else {
        *reason = "\"metadata\" is not an object";
        ok = false;
      }
    }
  }
  json_node_unref(root);
  // All or nothing: half of an operator's configuration (the voice without the instructions that go
  // with it) is worse than the defaults.
  if (ok) *out = std::move(r);
  return ok;
}

void fetch_call_config(const Config &config, const CallConfigRequest &request,
                       std::function<void(CallConfigOverrides)> done) {
  if (config.call_config_url.empty()) {
    done(CallConfigOverrides());
    return;
  }
  std::string call_id = request.call_id;
  http_post_json(config.call_config_url, call_config_request_body(request), config.call_config_timeout_ms,
                 [call_id, done = std::move(done)](const HttpPostResult &r) {
                   CallConfigOverrides overrides;
                   std::string reason;
                   if (!r.error.empty()) {
                     reason = r.error;  // "no reply within N ms", "no reply: <why>", …
                   } else if (parse_call_config_reply(r.status, r.body, &overrides, &reason)) {
                     log_event(LogLevel::Info, "CALL_CONFIG_APPLIED", call_id, "per-call configuration from the hook",
                               {{"set", set_members(overrides)}, {"duration_ms", r.duration_ms}});
                     done(std::move(overrides));
                     return;
                   }
                   log_event(LogLevel::Warning, "CALL_CONFIG_FALLBACK", call_id,
                             "call-config hook failed; the call uses the defaults",
                             {{"reason", reason}, {"status", r.status}, {"duration_ms", r.duration_ms}});
                   overrides = CallConfigOverrides();
                   overrides.fallback_reason = reason;
                   done(std::move(overrides));
                 });
}

void apply_overrides(const CallConfigOverrides &overrides, CallOptions *options) {
  if (overrides.instructions) options->instructions = *overrides.instructions;
  if (overrides.voice) options->voice = *overrides.voice;
  if (overrides.greeting) options->greeting = *overrides.greeting;
  if (overrides.tools_json) options->tools_json = *overrides.tools_json;
  if (overrides.metadata_json) options->metadata_json = *overrides.metadata_json;
}

void configure_call(const Config &config, CallOptions options, std::function<void(CallOptions)> done) {
  if (options.call_id.empty()) {
    // The hook and the logs need the id now; the same form CallManager would give it.
    gchar *uuid = g_uuid_string_random();
    options.call_id = std::string("call_") + uuid;
    g_free(uuid);
  }
  CallConfigRequest request = CallConfigRequest::from_options(options);
  fetch_call_config(config, request,
                    [&config, options = std::move(options), done = std::move(done)](CallConfigOverrides o) mutable {
                      apply_overrides(o, &options);
                      options.tools_json = tools_for_call(config, options.tools_json);
                      done(std::move(options));
                    });
}

}  // namespace vb
