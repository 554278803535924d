#include "tools.h"

#include <cstring>
#include <set>
#include <utility>

#include "http-post.h"
#include "log.h"
#include "request-util.h"

namespace vb {

const char *const kEndCallTool = "end_call";

namespace {

// The built-in hang-up tool. The description tells the model to speak first, in the same turn: the
// call ends once that audio has been played, and no function output follows (it would start
// another reply).
const char *const kEndCallToolJson =
    R"({"type":"function","name":"end_call",)"
    R"("description":"Hang up the call. Say a short goodbye first, in the same turn, then call this.",)"
    R"("parameters":{"type":"object","properties":{"reason":{"type":"string"}}}})";

std::string node_text(JsonNode *node) {
  gchar *text = json_to_string(node, FALSE);
  std::string out(text ? text : "");
  g_free(text);
  return out;
}

// For text from outside this process (the model's arguments, the hook's tools): json-glib only
// after the depth check of request-util.h, so that a model talked into nesting its arguments
// 100 000 deep cannot overflow the stack. nullptr when empty, refused or not JSON.
JsonNode *parse_json(const std::string &text) {
  std::string why;
  return parse_untrusted_json(text.data(), text.size(), &why);
}

// {"error":"<message>"}, properly escaped.
std::string error_output(const std::string &message) {
  JsonNode *node = json_node_new(JSON_NODE_OBJECT);
  JsonObject *o = json_object_new();
  json_object_set_string_member(o, "error", message.c_str());
  json_node_take_object(node, o);
  std::string out = node_text(node);
  json_node_unref(node);
  return out;
}

// The Realtime API's function names, as OpenAI documents them for every function tool.
bool valid_tool_name(const char *name) {
  size_t n = strlen(name);
  if (n == 0 || n > 64) return false;
  for (size_t i = 0; i < n; i++)
    if (!g_ascii_isalnum(name[i]) && name[i] != '_' && name[i] != '-') return false;
  return true;
}

bool is_string(JsonNode *n) { return n && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING; }

// Why a single entry is not a function tool ("" when it is one).
std::string tool_problem(JsonNode *tool) {
  if (!JSON_NODE_HOLDS_OBJECT(tool)) return "is not an object";
  JsonObject *o = json_node_get_object(tool);
  JsonNode *type = json_object_get_member(o, "type");
  if (type && !(is_string(type) && strcmp(json_node_get_string(type), "function") == 0))
    return "has a \"type\" other than \"function\"";
  JsonNode *name = json_object_get_member(o, "name");
  if (!is_string(name)) return "has no string \"name\"";
  if (!valid_tool_name(json_node_get_string(name))) return "has a \"name\" that is not 1-64 of [A-Za-z0-9_-]";
  JsonNode *description = json_object_get_member(o, "description");
  if (description && !is_string(description)) return "has a \"description\" that is not a string";
  JsonNode *parameters = json_object_get_member(o, "parameters");
  if (parameters && !JSON_NODE_HOLDS_OBJECT(parameters)) return "has \"parameters\" that are not an object";
  return "";
}

std::string trimmed(const std::string &s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

// Maps the webhook's reply to the function output (see invoke_tool_webhook). call_id and tool only
// name the call in the log.
ToolResult result_from_reply(const HttpPostResult &r, int timeout_ms, const std::string &call_id,
                             const std::string &tool) {
  ToolResult out;
  out.status = r.status;
  out.duration_ms = r.duration_ms;
  auto fail = [&out](const char *code, const std::string &message) {
    out.ok = false;
    out.error = code;
    out.output = error_output(message);
    return out;
  };
  if (r.timed_out) return fail("timeout", "the tool did not answer within " + std::to_string(timeout_ms) + " ms");
  if (!r.error.empty()) return fail("unreachable", "the tool service could not be reached");
  if (r.status < 200 || r.status > 299)
    return fail("http_status", "the tool service failed (HTTP " + std::to_string(r.status) + ")");
  std::string body = trimmed(r.body);
  if (body.empty()) {
    // 204 or an empty 200: the action was done and there is nothing to report.
    out.ok = true;
    out.output = "{}";
    return out;
  }
  // Checked for depth and strictness before json-glib parses it (request-util.h): the tool
  // service is trusted with an answer for the model, not with the process's stack.
  std::string why;
  JsonNode *root = parse_untrusted_json(body.data(), body.size(), &why);
  if (!root) {
    // The reason for the operator (the function output only tells the model it failed); never the
    // body, which may carry what the caller said.
    log_event(LogLevel::Warning, "TOOL_REPLY_INVALID", call_id, "the tool service's reply is " + why,
              {{"tool", tool}, {"status", r.status}});
    return fail("invalid_json", "the tool service's reply is not JSON");
  }
  out.ok = true;
  out.output = body;
  if (JSON_NODE_HOLDS_OBJECT(root)) {
    JsonNode *output = json_object_get_member(json_node_get_object(root), "output");
    if (output) out.output = is_string(output) ? json_node_get_string(output) : node_text(output);
  }
  json_node_unref(root);
  return out;
}

}  // namespace

bool valid_function_tools(JsonNode *node, std::string *why) {
  if (!node || !JSON_NODE_HOLDS_ARRAY(node)) {
    *why = "is not an array";
    return false;
  }
  JsonArray *a = json_node_get_array(node);
  for (guint i = 0; i < json_array_get_length(a); i++) {
    std::string problem = tool_problem(json_array_get_element(a, i));
    if (!problem.empty()) {
      *why = "entry " + std::to_string(i) + " " + problem;
      return false;
    }
  }
  return true;
}

std::string tools_for_call(const Config &config, const std::string &extra_tools_json) {
  JsonArray *out = json_array_new();
  json_array_add_element(out, json_from_string(kEndCallToolJson, nullptr));
  std::set<std::string> names{kEndCallTool};

  JsonNode *extra = parse_json(extra_tools_json);
  if (!extra_tools_json.empty() && (!extra || !JSON_NODE_HOLDS_ARRAY(extra))) {
    log_event(LogLevel::Warning, "TOOLS_IGNORED", "", "the call's tools are not a JSON array; only end_call is offered");
  } else if (extra) {
    JsonArray *a = json_node_get_array(extra);
    for (guint i = 0; i < json_array_get_length(a); i++) {
      JsonNode *tool = json_array_get_element(a, i);
      std::string problem = tool_problem(tool);
      if (!problem.empty()) {
        log_event(LogLevel::Warning, "TOOLS_IGNORED", "", "a tool of the call is dropped: it " + problem,
                  {{"index", (int)i}});
        continue;
      }
      JsonObject *o = json_node_get_object(tool);
      std::string name = json_object_get_string_member(o, "name");
      if (!names.insert(name).second) {
        log_event(LogLevel::Warning, "TOOLS_IGNORED", "", "a tool of the call is dropped: its name is taken",
                  {{"tool", name}});
        continue;
      }
      // Only the keys the Realtime API knows: an unknown one ("strict", …) would make it reject the
      // whole session.update.
      JsonObject *clean = json_object_new();
      json_object_set_string_member(clean, "type", "function");
      json_object_set_string_member(clean, "name", name.c_str());
      for (const char *key : {"description", "parameters"}) {
        if (JsonNode *v = json_object_get_member(o, key)) json_object_set_member(clean, key, json_node_copy(v));
      }
      json_array_add_object_element(out, clean);
    }
  }
  if (extra) json_node_unref(extra);
  if (names.size() > 1 && config.tool_webhook_url.empty())
    log_event(LogLevel::Warning, "TOOLS_WITHOUT_WEBHOOK", "",
              "the call has operator tools but no --tool-webhook-url: their calls will return an error");

  JsonNode *node = json_node_new(JSON_NODE_ARRAY);
  json_node_take_array(node, out);
  std::string text = node_text(node);
  json_node_unref(node);
  return text;
}

std::string tool_webhook_body(const ToolInvocation &inv) {
  JsonObject *o = json_object_new();
  json_object_set_string_member(o, "call_id", inv.call_id.c_str());
  json_object_set_string_member(o, "caller", inv.caller.c_str());
  json_object_set_string_member(o, "tool", inv.tool.c_str());
  json_object_set_string_member(o, "tool_call_id", inv.tool_call_id.c_str());
  // Parsed, so the service gets {"city":"Paris"} rather than a string to decode again; the raw
  // text when the model produced something that is not JSON, so nothing is lost.
  JsonNode *arguments = parse_json(inv.arguments);
  if (arguments)
    json_object_set_member(o, "arguments", arguments);
  else
    json_object_set_string_member(o, "arguments", inv.arguments.c_str());
  JsonNode *metadata = parse_json(inv.metadata_json);
  if (metadata && JSON_NODE_HOLDS_OBJECT(metadata)) {
    json_object_set_member(o, "metadata", metadata);
  } else {
    if (metadata) json_node_unref(metadata);
    json_object_set_object_member(o, "metadata", json_object_new());
  }
  JsonNode *root = json_node_new(JSON_NODE_OBJECT);
  json_node_take_object(root, o);
  std::string text = node_text(root);
  json_node_unref(root);
  return text;
}

void invoke_tool_webhook(const Config &config, const ToolInvocation &invocation,
                         std::function<void(const ToolResult &)> done) {
  if (config.tool_webhook_url.empty()) {
    ToolResult r;
    r.error = "no_webhook";
    r.output = error_output("no such tool");
    done(r);
    return;
  }
  int timeout_ms = config.tool_timeout_ms;
  http_post_json(config.tool_webhook_url, tool_webhook_body(invocation), timeout_ms,
                 [done = std::move(done), timeout_ms, call_id = invocation.call_id,
                  tool = invocation.tool](const HttpPostResult &r) {
                   done(result_from_reply(r, timeout_ms, call_id, tool));
                 });
}

// ---------------------------------------------------------------------------------------------
// ToolRouter

ToolRouter::ToolRouter(const Config &config, HangupTiming timing) : config_(config), timing_(timing) {}

ToolRouter::~ToolRouter() { stop_timers(); }

bool ToolRouter::on_function_call(Call &call, const std::string &name, const std::string &call_id,
                                  const std::string &arguments) {
  // Arguments may hold what the caller said (names, numbers): debug only.
  log_event(LogLevel::Debug, "RT_FUNCTION_CALL_ARGUMENTS", call.id(), arguments,
            {{"tool", name}, {"tool_call_id", call_id}});
  if (name == kEndCallTool) {
    start_hangup(call);
    return true;
  }
  ToolInvocation invocation{call.id(), call.options().caller, call.options().metadata_json, name, call_id, arguments};
  std::weak_ptr<Call> weak_call = call.weak_from_this();
  std::string log_id = call.id();
  invoke_tool_webhook(config_, invocation, [weak_call, log_id, name, call_id](const ToolResult &r) {
    auto c = weak_call.lock();
    const std::string &id = c ? c->id() : log_id;
    if (r.ok) {
      log_event(LogLevel::Info, "RT_FUNCTION_CALL", id, "tool result",
                {{"tool", name}, {"tool_call_id", call_id}, {"duration_ms", r.duration_ms}, {"ok", true}});
    } else {
      log_event(LogLevel::Warning, "RT_FUNCTION_CALL", id, "tool failed",
                {{"tool", name}, {"tool_call_id", call_id}, {"duration_ms", r.duration_ms}, {"ok", false},
                 {"error", r.error}, {"status", r.status}});
    }
    log_event(LogLevel::Debug, "RT_FUNCTION_CALL_OUTPUT", id, r.output, {{"tool", name}, {"tool_call_id", call_id}});
    if (!c || c->state() == CallState::Ending || c->state() == CallState::Ended) return;
    c->send_function_output(call_id, r.output);
  });
  return true;
}

void ToolRouter::start_hangup(Call &call) {
  if (hangup_.requested) return;  // a second end_call in the same goodbye changes nothing
  hangup_.requested = true;
  hangup_.requested_us = g_get_monotonic_time();
  log_event(LogLevel::Info, "AGENT_HANGUP_REQUESTED", call.id(), "the agent hangs up after its goodbye has been played",
            {{"agent_speaking", call.agent_speaking()}});
  arm_timer(&hangup_.safety_timer, timing_.safety_ms, call.weak_from_this(), "safety_timeout");
}

void ToolRouter::on_response_done(Call &call, const GstStructure *) {
  // The first response done after end_call is the one that carried it: its goodbye audio, if any,
  // has all arrived.
  if (!hangup_.requested || hangup_.response_done) return;
  hangup_.response_done = true;
  hang_up_when_quiet(call);
}

void ToolRouter::on_playback_stopped(Call &call) {
  // The player ran dry with no reply in progress: the goodbye has been heard in full.
  if (hangup_.requested && hangup_.response_done) hang_up(call, "goodbye_played");
}

void ToolRouter::hang_up_when_quiet(Call &call) {
  if (call.agent_speaking() || hangup_.settle_timer) return;  // on_playback_stopped hangs up
  // Nothing audible yet. Audio that arrived just now starts within a few 20 ms buffers and then
  // counts as speaking; only when it stays quiet was there nothing (left) to play.
  arm_timer(&hangup_.settle_timer, timing_.settle_ms, call.weak_from_this(), "nothing_to_play");
}

void ToolRouter::arm_timer(guint *timer, int ms, const std::weak_ptr<Call> &call, const char *after) {
  struct Task {
    std::weak_ptr<ToolRouter> router;
    std::weak_ptr<Call> call;
    guint *timer;
    const char *after;
  };
  *timer = g_timeout_add_full(
      G_PRIORITY_DEFAULT, (guint)ms,
      [](gpointer data) -> gboolean {
        auto *task = static_cast<Task *>(data);
        auto router = task->router.lock();
        if (!router) return G_SOURCE_REMOVE;
        *task->timer = 0;  // this source ends here; stop_timers must not remove it again
        auto call = task->call.lock();
        if (!call) return G_SOURCE_REMOVE;
        bool settle = task->timer == &router->hangup_.settle_timer;
        // After the settle delay, audio that did start is waited for (on_playback_stopped).
        if (!settle || !call->agent_speaking()) router->hang_up(*call, task->after);
        return G_SOURCE_REMOVE;
      },
      new Task{weak_from_this(), call, timer, after}, [](gpointer data) { delete static_cast<Task *>(data); });
}

void ToolRouter::hang_up(Call &call, const char *after) {
  stop_timers();
  if (call.state() == CallState::Ending || call.state() == CallState::Ended) return;
  log_event(LogLevel::Info, "AGENT_HANGUP", call.id(), "the agent ended the call",
            {{"after", after}, {"waited_ms", (g_get_monotonic_time() - hangup_.requested_us) / 1000.0}});
  call.end("agent_hangup");
}

void ToolRouter::stop_timers() {
  for (guint *timer : {&hangup_.settle_timer, &hangup_.safety_timer}) {
    if (*timer) g_source_remove(*timer);
    *timer = 0;
  }
}

void ToolRouter::on_ended(Call &) { stop_timers(); }

}  // namespace vb
