#include "request-util.h"

namespace vb {

bool constant_time_equal(const std::string &a, const std::string &b) {
  // Walk the longer string entirely; a length difference alone makes them unequal.
  size_t n = a.size() > b.size() ? a.size() : b.size();
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; i++) {
    unsigned char x = i < a.size() ? (unsigned char)a[i] : 0;
    unsigned char y = i < b.size() ? (unsigned char)b[i] : 0;
    diff |= (unsigned char)(x ^ y);
  }
  return diff == 0;
}

bool bearer_authorized(const HttpRequest &request, const std::string &token) {
  if (token.empty()) return true;
  std::string header = request.header("Authorization");
  const std::string prefix = "Bearer ";
  return header.compare(0, prefix.size(), prefix) == 0 && constant_time_equal(header.substr(prefix.size()), token);
}


JsonParser *parse_request_object(HttpRequest &request, JsonObject **object) {
  if (!json_depth_ok(request.body(), request.body_size())) {
    request.reply_error(400, "invalid_json", "the body is nested too deeply or is not strict JSON");
    return nullptr;
  }
  JsonParser *parser = json_parser_new();
  GError *err = nullptr;
  bool parsed = request.body_size() > 0 &&
                json_parser_load_from_data(parser, request.body(), (gssize)request.body_size(), &err);
  JsonNode *root = parsed ? json_parser_get_root(parser) : nullptr;
  if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
    std::string why =
        err ? err->message : (request.body_size() == 0 ? "the body is empty" : "the body is not a JSON object");
    g_clear_error(&err);
    g_object_unref(parser);
    request.reply_error(400, "invalid_json", why);
    return nullptr;
  }
  *object = json_node_get_object(root);
  return parser;
}

bool optional_string(JsonObject *object, const char *name, std::string *out) {
  if (!json_object_has_member(object, name)) return true;
  JsonNode *n = json_object_get_member(object, name);
  if (JSON_NODE_HOLDS_NULL(n)) return true;
  if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING) return false;
  *out = json_node_get_string(n);
  return true;
}

}  // namespace vb
