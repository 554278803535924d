// Request helpers: the JSON depth guard that keeps json-glib's recursion from overflowing the stack
// on hostile bodies, and the constant-time token comparison.
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
  tcase_add_test(tc, test_constant_time_equal);
  suite_add_tcase(s, tc);
  return s;
}

GST_CHECK_MAIN(request_util);
