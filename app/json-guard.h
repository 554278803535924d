// The guard every JSON text from outside passes before json-glib parses it: depth and strictness.
// Shared by the service (request bodies, webhooks, Graph/hook/tool replies) and voicebridge-call
// (the bridge's replies), so it needs nothing but json-glib.
#pragma once

#include <string>

#include <json-glib/json-glib.h>

namespace vb {

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

}  // namespace vb
