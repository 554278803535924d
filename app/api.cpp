#include "api.h"

#include <json-glib/json-glib.h>

#include "call-config-hook.h"
#include "request-util.h"
#include "log.h"
#include "metrics.h"

namespace vb {

namespace {

std::string to_json_text(JsonBuilder *b) {
  JsonNode *root = json_builder_get_root(b);
  gchar *text = json_to_string(root, FALSE);
  std::string out(text);
  g_free(text);
  json_node_unref(root);
  return out;
}

std::string call_json(const Call &call) {
  JsonBuilder *b = json_builder_new();
  call.to_json(b);
  std::string out = to_json_text(b);
  g_object_unref(b);
  return out;
}

// The reply to a call creation: 201 {"call_id","sdp"}, or the seed bridge's 200 shape.
void reply_created(HttpRequest::Deferred &reply, bool legacy, const std::shared_ptr<Call> &call, const ApiError *error,
                   const std::string &answer) {
  if (error) {
    reply.reply_error(error->status, error->code, error->message);
    return;
  }
  JsonBuilder *b = json_builder_new();
  json_builder_begin_object(b);
  if (legacy) {
    json_builder_set_member_name(b, "success");
    json_builder_add_boolean_value(b, TRUE);
    json_builder_set_member_name(b, "callId");
    json_builder_add_string_value(b, call->id().c_str());
    json_builder_set_member_name(b, "sdpAnswer");
  } else {
    json_builder_set_member_name(b, "call_id");
    json_builder_add_string_value(b, call->id().c_str());
    json_builder_set_member_name(b, "sdp");
  }
  json_builder_add_string_value(b, answer.c_str());
  json_builder_end_object(b);
  reply.reply_json(legacy ? 200 : 201, to_json_text(b));
  g_object_unref(b);
}

}  // namespace

Api::Api(const Config &config, CallManager &calls) : config_(config), calls_(calls) {}

bool Api::authorized(HttpRequest &request) const { return bearer_authorized(request, config_.control_token); }

void Api::handle(HttpRequest &request) {
  const std::string &path = request.path();
  const std::string &method = request.method();

  if (path == "/healthz" || path == "/health") {
    JsonBuilder *b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "status");
    json_builder_add_string_value(b, "ok");
    json_builder_set_member_name(b, "active_calls");
    json_builder_add_int_value(b, calls_.active_count());
    json_builder_end_object(b);
    request.reply_json(200, to_json_text(b));
    g_object_unref(b);
    return;
  }
  if (path == "/readyz") {
    if (calls_.draining())
      request.reply_error(503, "draining", "the service is shutting down");
    else if (calls_.at_capacity())
      request.reply_error(503, "at_capacity", "the service is at its call limit");
    else
      request.reply_json(200, "{\"status\":\"ready\"}");
    return;
  }
  if (path == "/metrics") {
    request.reply(200, "text/plain; version=0.0.4; charset=utf-8", Metrics::get().render());
    return;
  }
  for (auto &route : extra_)
    if (route(request)) return;

  bool v1 = path.rfind("/v1/", 0) == 0;
  bool legacy = path == "/bridge/start" || path == "/bridge/stop";
  if (!v1 && !legacy) {
    request.reply_error(404, "not_found", "no such endpoint: " + path);
    return;
  }
  // The seed-compatible /bridge routes carry the same power as /v1/calls, so they need the same token.
  if (!authorized(request)) {
    request.reply_error(401, "unauthorized", "missing or wrong 'Authorization: Bearer <token>'");
    return;
  }
  if (path == "/v1/calls") {
    if (method == "POST") return create_call(request, false);
    if (method == "GET") {
      JsonBuilder *b = json_builder_new();
      json_builder_begin_object(b);
      json_builder_set_member_name(b, "calls");
      json_builder_begin_array(b);
      for (const auto &call : calls_.list()) call->to_json(b);
      json_builder_end_array(b);
      json_builder_end_object(b);
      request.reply_json(200, to_json_text(b));
      g_object_unref(b);
      return;
    }
    request.reply_error(405, "method_not_allowed", method + " is not allowed on " + path);
    return;
  }
  if (path.rfind("/v1/calls/", 0) == 0) return call_route(request, path.substr(strlen("/v1/calls/")));
  if (path == "/bridge/start") {
    if (method != "POST") return request.reply_error(405, "method_not_allowed", "use POST");
    return create_call(request, true);
  }
  if (path == "/bridge/stop") {
    if (method != "POST") return request.reply_error(405, "method_not_allowed", "use POST");
    return stop_legacy(request);
  }
  request.reply_error(404, "not_found", "no such endpoint: " + path);
}

void Api::call_route(HttpRequest &request, const std::string &rest) {
  std::string id = rest;
  bool graph = false;
  const std::string suffix = "/graph";
  if (id.size() > suffix.size() && id.compare(id.size() - suffix.size(), suffix.size(), suffix) == 0) {
    graph = true;
    id.resize(id.size() - suffix.size());
  }
  auto call = calls_.find(id);
  if (!call) {
    request.reply_error(404, "no_such_call", "no call with id '" + id + "'");
    return;
  }
  const std::string &method = request.method();
  if (graph) {
    if (method != "GET") return request.reply_error(405, "method_not_allowed", "use GET");
    request.reply(200, "text/vnd.graphviz", call->graph_dot());
    return;
  }
  if (method == "GET") {
    request.reply_json(200, call_json(*call));
  } else if (method == "DELETE") {
    call->end("hangup");
    request.reply_json(200, call_json(*call));
  } else {
    request.reply_error(405, "method_not_allowed", method + " is not allowed on a call");
  }
}

void Api::create_call(HttpRequest &request, bool legacy) {
  JsonObject *o = nullptr;
  JsonParser *parser = parse_request_object(request, &o);
  if (!parser) return;
  CallOptions options;
  std::string sdp;
  bool ok;
  if (legacy) {
    // The earlier Node bridge's shape: {"callId","sdpOffer","systemInstructions"?,"voice"?}.
    ok = optional_string(o, "callId", &options.call_id) && optional_string(o, "sdpOffer", &sdp) &&
         optional_string(o, "systemInstructions", &options.instructions) && optional_string(o, "voice", &options.voice);
  } else {
    ok = optional_string(o, "sdp", &sdp) && optional_string(o, "call_id", &options.call_id) &&
         optional_string(o, "instructions", &options.instructions) && optional_string(o, "voice", &options.voice) &&
         optional_string(o, "model", &options.model) && optional_string(o, "greeting", &options.greeting);
    if (ok && json_object_has_member(o, "metadata")) {
      JsonNode *meta = json_object_get_member(o, "metadata");
      if (JSON_NODE_HOLDS_OBJECT(meta)) {
        gchar *text = json_to_string(meta, FALSE);
        options.metadata_json = text;
        g_free(text);
      } else if (!JSON_NODE_HOLDS_NULL(meta)) {
        ok = false;
      }
    }
  }
  g_object_unref(parser);
  if (!ok) {
    request.reply_error(400, "invalid_json", "a member has the wrong type (strings expected; metadata is an object)");
    return;
  }
  if (sdp.empty()) {
    request.reply_error(400, "invalid_sdp", legacy ? "'sdpOffer' is required" : "'sdp' (the SDP offer) is required");
    return;
  }
  if (!options.call_id.empty() && !valid_call_id(options.call_id)) {
    request.reply_error(400, "invalid_call_id", "call ids are 1-128 characters of letters, digits and ._:=+/-");
    return;
  }
  options.direction = Direction::Inbound;
  auto reply = request.defer();
  // The per-call configuration hook (--call-config-url) may set the instructions, voice, greeting,
  // tools and metadata; configure_call also gives every call its tools (end_call + the operator's).
  CallManager &calls = calls_;
  configure_call(config_, std::move(options), [&calls, reply, legacy, sdp](CallOptions configured) {
    calls.create_inbound(std::move(configured), sdp,
                         [reply, legacy](const std::shared_ptr<Call> &call, const ApiError *error,
                                         const std::string &answer) { reply_created(*reply, legacy, call, error, answer); });
  });
}

void Api::stop_legacy(HttpRequest &request) {
  JsonParser *parser = json_parser_new();
  std::string id;
  bool ok = request.body_size() > 0 && json_depth_ok(request.body(), request.body_size()) &&
            json_parser_load_from_data(parser, request.body(), (gssize)request.body_size(), nullptr) &&
            JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser)) &&
            optional_string(json_node_get_object(json_parser_get_root(parser)), "callId", &id);
  g_object_unref(parser);
  if (!ok) return request.reply_error(400, "invalid_json", "expected {\"callId\": \"…\"}");
  auto call = calls_.find(id);
  if (!call || call->state() == CallState::Ended) return request.reply_error(404, "no_such_call", "no call with id '" + id + "'");
  call->end("hangup");
  request.reply_json(200, "{\"success\":true}");
}

}  // namespace vb
