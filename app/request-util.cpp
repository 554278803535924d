#include "request-util.h"

#include <cstdio>

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

// One pass over the text with the strict JSON grammar's view of strings: brackets inside a
// double-quoted string (escapes included) are not nesting. json-glib 1.6's scanner also reads
// single-quoted strings and comments, /* … */ and / … / (its single-line comment pair is "//\n",
// which GScanner's rules read as "from a / to the next /"): a bracket inside one of those
// is not nesting to json-glib, and a '"' inside one is not a string start, so one of them can make
// this scan under-count what json-glib will recurse on. Both start with a character that strict
// JSON never has outside a string (' or /), so either one refuses the text.
JsonCheck check_json_text(const char *data, size_t size, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < size; i++) {
    char c = data[i];
    if (in_string) {
      if (c == '\\') i++;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '[' || c == '{') {
      if (++depth > max_depth) return JsonCheck::TooDeep;
    } else if (c == ']' || c == '}') depth--;
    else if (c == '\'' || c == '/') return JsonCheck::NotStrict;
  }
  return JsonCheck::Ok;
}

bool json_depth_ok(const char *data, size_t size, int max_depth) {
  return check_json_text(data, size, max_depth) == JsonCheck::Ok;
}

JsonNode *parse_untrusted_json(const char *data, size_t size, std::string *why) {
  if (!data || size == 0) {
    *why = "empty";
    return nullptr;
  }
  switch (check_json_text(data, size, kMaxJsonDepth)) {
    case JsonCheck::TooDeep:
      *why = "nested deeper than " + std::to_string(kMaxJsonDepth) + " levels";
      return nullptr;
    case JsonCheck::NotStrict:
      *why = "not strict JSON (a ' or / outside a string)";
      return nullptr;
    case JsonCheck::Ok:
      break;
  }
  JsonParser *parser = json_parser_new();
  GError *err = nullptr;
  JsonNode *root = nullptr;
  if (json_parser_load_from_data(parser, data, (gssize)size, &err)) root = json_parser_steal_root(parser);
  if (!root) {
    // json-glib's messages quote the offending token ("unexpected string constant \"…\""), which
    // may be a secret or what a caller said: keep only the position.
    unsigned line = 0, column = 0;
    if (err && sscanf(err->message, "<data>:%u:%u:", &line, &column) == 2)
      *why = "not JSON (parse error at line " + std::to_string(line) + ", column " + std::to_string(column) + ")";
    else
      *why = "not JSON";
  }
  g_clear_error(&err);
  g_object_unref(parser);
  return root;
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
