// Request helpers: the JSON depth guard that keeps json-glib's recursion from overflowing the stack
// on hostile bodies (and the parse function every JSON text from outside goes through), and the
// constant-time token comparison.
#include <gst/check/gstcheck.h>

#include <string>

#include "request-util.h"

using vb::json_depth_ok;

GST_START_TEST(test_depth_guard) {
  std::string ok = "{\"a\":[{\"b\":[1,2,\"[[[[\"]}]}";
  fail_unless(json_depth_ok(ok.data(), ok.size(), 4));
  fail_if(json_depth_ok(ok.data(), ok.size(), 3));
  std::string deep(80000, '[');
  fail_if(json_depth_ok(deep.data(), deep.size(), 64));
  // Brackets inside strings (with escaped quotes) do not count.
  std::string in_string = "{\"a\":\"\\\"[[[[[[[[\"}";
  fail_unless(json_depth_ok(in_string.data(), in_string.size(), 1));
  // Non-standard syntax json-glib accepts could hide brackets from the scan: refused.
  std::string quote = "{\"a\":'\"',\"b\":[[[]]]}";
  fail_if(json_depth_ok(quote.data(), quote.size(), 64));
  std::string comment = "{/*\"*/\"b\":[]}";
  fail_if(json_depth_ok(comment.data(), comment.size(), 64));
}
GST_END_TEST;

GST_START_TEST(test_depth_limit_is_the_constant) {
  // kMaxJsonDepth levels pass, one more does not; the default is the constant.
  auto nested = [](int depth) { return std::string(depth, '[') + std::string(depth, ']'); };
  std::string at = nested(vb::kMaxJsonDepth), over = nested(vb::kMaxJsonDepth + 1);
  fail_unless(json_depth_ok(at.data(), at.size()));
  fail_if(json_depth_ok(over.data(), over.size()));
  fail_unless(vb::check_json_text(over.data(), over.size()) == vb::JsonCheck::TooDeep);
  std::string why;
  JsonNode *root = vb::parse_untrusted_json(at.data(), at.size(), &why);
  fail_unless(root != nullptr, "%s", why.c_str());
  json_node_unref(root);
}
GST_END_TEST;

GST_START_TEST(test_parse_untrusted_json) {
  std::string why;
  std::string ok = "{\"a\":[1,{\"b\":\"/*'[[\"}]}";  // ' / and brackets inside a string are fine
  JsonNode *root = vb::parse_untrusted_json(ok.data(), ok.size(), &why);
  fail_unless(root != nullptr && JSON_NODE_HOLDS_OBJECT(root), "%s", why.c_str());
  json_node_unref(root);

  // 100 000 levels: json-glib would overflow the stack; refused before it sees them.
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  fail_if(vb::parse_untrusted_json(deep.data(), deep.size(), &why));
  fail_unless(why == "nested deeper than 64 levels", "%s", why.c_str());

  // The same nesting hidden from a double-quotes-only scan by syntax json-glib accepts: a comment or
  // a single-quoted string holding a '"'. Refused as not strict JSON.
  const std::string hidden[] = {"{\"a\":/*\"*/" + deep + "/*\"*/}", "{\"a\":'\"',\"b\":" + deep + ",\"c\":'\"'}",
                                "{\"a\":/ \" /" + deep + "}"};
  for (const auto &text : hidden) {
    fail_if(vb::parse_untrusted_json(text.data(), text.size(), &why));
    fail_unless(why.find("not strict JSON") == 0, "%s", why.c_str());
    fail_unless(vb::check_json_text(text.data(), text.size()) == vb::JsonCheck::NotStrict);
  }
  // json-glib itself takes the shallow forms (that is why they are refused, not understood).
  JsonParser *parser = json_parser_new();
  fail_unless(json_parser_load_from_data(parser, "{\"a\":/*\"*/[1]}", -1, nullptr));
  fail_unless(json_parser_load_from_data(parser, "{\"a\":'x'}", -1, nullptr));
  fail_unless(json_parser_load_from_data(parser, "{\"a\":/ \" /[1]}", -1, nullptr));
  g_object_unref(parser);

  // Empty, and not JSON: the reason gives the position, never the text (json-glib's message would
  // quote the token).
  fail_if(vb::parse_untrusted_json("", 0, &why));
  fail_unless(why == "empty", "%s", why.c_str());
  std::string bad = "{\"token\":\"sk-secret\" \"x\":1}";
  fail_if(vb::parse_untrusted_json(bad.data(), bad.size(), &why));
  fail_unless(why.find("not JSON (parse error at line 1, column") == 0, "%s", why.c_str());
  fail_unless(why.find("sk-secret") == std::string::npos, "%s", why.c_str());
}
GST_END_TEST;

GST_START_TEST(test_constant_time_equal) {
  fail_unless(vb::constant_time_equal("token", "token"));
  fail_if(vb::constant_time_equal("token", "tokem"));
  fail_if(vb::constant_time_equal("token", "token2"));
}
GST_END_TEST;

static Suite *request_util_suite(void) {
  Suite *s = suite_create("request_util");
  TCase *tc = tcase_create("request_util");
  tcase_add_test(tc, test_depth_guard);
  tcase_add_test(tc, test_depth_limit_is_the_constant);
  tcase_add_test(tc, test_parse_untrusted_json);
  tcase_add_test(tc, test_constant_time_equal);
  suite_add_tcase(s, tc);
  return s;
}

GST_CHECK_MAIN(request_util);
