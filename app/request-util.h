// Small helpers shared by the HTTP routes (call API, WhatsApp): token checks and JSON request bodies.
#pragma once

#include <string>

#include <json-glib/json-glib.h>

#include "http-server.h"

namespace vb {

// Compares secrets without an early exit, so that response timing does not reveal them.
bool constant_time_equal(const std::string &a, const std::string &b);

// True when no token is configured, or the request carries "Authorization: Bearer <token>".
bool bearer_authorized(const HttpRequest &request, const std::string &token);

// The deepest nesting of arrays and objects accepted in JSON from outside: request bodies, WhatsApp
// webhooks (and the SDP JSON inside them), replies of the Graph API, the call-config hook and tool
// webhooks. json-glib's parser recurses once per level with no limit of its own, so an 80 000-deep
// "[[[…" overflows the stack; the documents we read nest under 10 levels.
constexpr int kMaxJsonDepth = 64;

// What a scan of JSON text from outside finds before json-glib may see it: nesting deeper than
// max_depth, or syntax that is not strict JSON and could hide brackets from the scan (json-glib
// also accepts single-quoted strings and comments; they are refused here rather than understood).
// Ok says nothing about the rest of the syntax: json-glib judges that.
enum class JsonCheck { Ok, TooDeep, NotStrict };
JsonCheck check_json_text(const char *data, size_t size, int max_depth = kMaxJsonDepth);

// check_json_text(…) == JsonCheck::Ok. Every JSON text from outside goes through it first.
bool json_depth_ok(const char *data, size_t size, int max_depth = kMaxJsonDepth);

// Parses JSON text from outside: json_depth_ok() first, then json-glib. Returns the root (unref it
// with json_node_unref), or nullptr with *why for the log: empty, too deep, not strict JSON, or
// json-glib's parse error. *why never quotes the text itself (it may carry secrets or personal data).
JsonNode *parse_untrusted_json(const char *data, size_t size, std::string *why);

// The request body as a JSON object. On failure replies 400 invalid_json and returns nullptr;
// otherwise the returned parser owns *object (g_object_unref it when done).
JsonParser *parse_request_object(HttpRequest &request, JsonObject **object);

// An optional string member; false when present with another type (null counts as absent).
bool optional_string(JsonObject *object, const char *name, std::string *out);

}  // namespace vb
