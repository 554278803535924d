#include "json-guard.h"

#include <cstdio>

namespace vb {

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

}  // namespace vb
