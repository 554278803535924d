// Unit tests for app/log.{h,cpp}: the text and JSON line formats (JSON parsed back with
// json-glib), escaping, secret masking, level filtering, whole-line writes from many threads, and
// GLib messages routed through the same writer.
#include <fcntl.h>
#include <glib/gstdio.h>
#include <gst/check/gstcheck.h>
#include <json-glib/json-glib.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "log.h"

using namespace vb;

// gstcheck's fail_unless_equals_string keeps the pointer it is given past the statement that made
// it, so c_str() of a returned std::string would dangle: compare copies instead.
#define assert_equals_str(a, b)                                                            \
  G_STMT_START {                                                                           \
    const std::string va_ = (a), vb_ = (b);                                                \
    fail_unless(va_ == vb_, "'%.300s' is not '%.300s'", va_.c_str(), vb_.c_str());         \
  }                                                                                        \
  G_STMT_END

namespace {

bool contains(const std::string &haystack, const std::string &needle) {
  return haystack.find(needle) != std::string::npos;
}

// Parses one JSON line; fails the test if it is not a single object.
JsonObject *parse_object(const std::string &line, JsonParser **parser_out) {
  JsonParser *parser = json_parser_new();
  GError *error = nullptr;
  fail_unless(json_parser_load_from_data(parser, line.data(), (gssize)line.size(), &error),
              "not JSON (%s): %s", error ? error->message : "?", line.c_str());
  JsonNode *root = json_parser_get_root(parser);
  fail_unless(root && JSON_NODE_HOLDS_OBJECT(root), "not an object: %s", line.c_str());
  *parser_out = parser;
  return json_node_get_object(root);
}

std::string member_string(JsonObject *o, const char *name) {
  fail_unless(json_object_has_member(o, name), "no member %s", name);
  JsonNode *n = json_object_get_member(o, name);
  fail_unless(JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING, "%s is not a string", name);
  return json_node_get_string(n);
}

bool matches(const char *pattern, const std::string &s) {
  return g_regex_match_simple(pattern, s.c_str(), G_REGEX_DOLLAR_ENDONLY, (GRegexMatchFlags)0);
}

// Standard error redirected to a temporary file for the lifetime of the object.
struct StderrCapture {
  int saved = -1;
  std::string path;
  StderrCapture() {
    char *name = nullptr;
    int fd = g_file_open_tmp("vb-test-log-XXXXXX", &name, nullptr);
    fail_unless(fd >= 0);
    path = name;
    g_free(name);
    saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    close(fd);
  }
  std::string finish() {
    if (saved >= 0) {
      dup2(saved, STDERR_FILENO);
      close(saved);
      saved = -1;
    }
    char *contents = nullptr;
    gsize len = 0;
    fail_unless(g_file_get_contents(path.c_str(), &contents, &len, nullptr));
    std::string out(contents, len);
    g_free(contents);
    return out;
  }
  ~StderrCapture() {
    finish();
    g_unlink(path.c_str());
  }
};

std::vector<std::string> lines_of(const std::string &text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    fail_unless(nl != std::string::npos, "output does not end with a newline");
    out.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return out;
}

const char *kTs = "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z";

}  // namespace

GST_START_TEST(test_text_format) {
  log_init(LogFormat::Text, LogLevel::Info);
  std::string line = log_format_line(LogLevel::Info, "CALL_CREATED", "abc", "message text",
                                     {{"key", "value"}, {"key2", "value with spaces"}});
  std::string pattern =
      std::string("^") + kTs + " INFO  CALL_CREATED call_id=abc message text key=value key2=\"value with spaces\"$";
  fail_unless(matches(pattern.c_str(), line), "%s", line.c_str());

  // The timestamp is now, in UTC.
  GDateTime *ts = g_date_time_new_from_iso8601(line.substr(0, 24).c_str(), nullptr);
  fail_unless(ts != nullptr, "%s", line.c_str());
  GDateTime *now = g_date_time_new_now_utc();
  fail_unless(std::llabs(g_date_time_difference(now, ts)) < 5 * G_USEC_PER_SEC);
  g_date_time_unref(ts);
  g_date_time_unref(now);

  // No event and no call: neither appears; levels are padded to one width.
  line = log_format_line(LogLevel::Warning, "", "", "disk slow", {{"n", 5}});
  fail_unless(matches((std::string("^") + kTs + " WARN  disk slow n=5$").c_str(), line), "%s", line.c_str());
  line = log_format_line(LogLevel::Error, "", "", "boom", {});
  fail_unless(matches((std::string("^") + kTs + " ERROR boom$").c_str(), line), "%s", line.c_str());
  line = log_format_line(LogLevel::Debug, "RT_ERROR", "", "x", {});
  fail_unless(matches((std::string("^") + kTs + " DEBUG RT_ERROR x$").c_str(), line), "%s", line.c_str());
}
GST_END_TEST;

GST_START_TEST(test_text_escaping) {
  log_init(LogFormat::Text, LogLevel::Info);
  std::string line = log_format_line(LogLevel::Info, "CALL_DTMF", "id 1", "two\nlines\tand\x01",
                                     {{"q", "say \"hi\""}, {"eq", "a=b"}, {"empty", ""}, {"back", "c:\\x"},
                                      {"digit", "5"}});
  fail_unless(!contains(line, "\n") && !contains(line, "\t") && !contains(line, "\x01"), "%s", line.c_str());
  fail_unless(contains(line, "call_id=\"id 1\""), "%s", line.c_str());
  fail_unless(contains(line, "two\\nlines\\tand\\x01"), "%s", line.c_str());
  fail_unless(contains(line, "q=\"say \\\"hi\\\"\""), "%s", line.c_str());
  fail_unless(contains(line, "eq=\"a=b\""), "%s", line.c_str());
  fail_unless(contains(line, "empty=\"\""), "%s", line.c_str());
  fail_unless(contains(line, "back=\"c:\\\\x\""), "%s", line.c_str());
  fail_unless(g_str_has_suffix(line.c_str(), " digit=5"), "%s", line.c_str());
}
GST_END_TEST;

GST_START_TEST(test_json_format) {
  log_init(LogFormat::Json, LogLevel::Info);
  fail_unless(log_format() == LogFormat::Json);
  const std::string tricky = "quote \" backslash \\ newline \n tab \t bell \x07 unicode ü € 🎉 slash /";
  std::string line = log_format_line(LogLevel::Warning, "CALL_DTMF", "wacid.ABC==", tricky,
                                     {{"digit", "7"},
                                      {"count", 42},
                                      {"big", 18446744073709551615ULL},
                                      {"neg", -3L},
                                      {"ratio", 0.25},
                                      {"ok", true},
                                      {"text", tricky},
                                      {"msg", "collides"}});
  fail_unless(!contains(line, "\n"), "%s", line.c_str());
  JsonParser *parser;
  JsonObject *o = parse_object(line, &parser);
  assert_equals_str(member_string(o, "level").c_str(), "warning");
  assert_equals_str(member_string(o, "event").c_str(), "CALL_DTMF");
  assert_equals_str(member_string(o, "call_id").c_str(), "wacid.ABC==");
  assert_equals_str(member_string(o, "msg").c_str(), tricky.c_str());
  assert_equals_str(member_string(o, "text").c_str(), tricky.c_str());
  assert_equals_str(member_string(o, "digit").c_str(), "7");
  fail_unless(matches((std::string("^") + kTs + "$").c_str(), member_string(o, "ts")));

  // Numbers and booleans are JSON numbers and booleans, not strings.
  JsonNode *count = json_object_get_member(o, "count");
  fail_unless(json_node_get_value_type(count) == G_TYPE_INT64);
  fail_unless_equals_int(json_node_get_int(count), 42);
  fail_unless(json_node_get_value_type(json_object_get_member(o, "neg")) == G_TYPE_INT64);
  fail_unless_equals_int(json_object_get_int_member(o, "neg"), -3);
  fail_unless(contains(line, "\"big\":18446744073709551615"), "%s", line.c_str());
  fail_unless(json_node_get_value_type(json_object_get_member(o, "ratio")) == G_TYPE_DOUBLE);
  fail_unless(json_object_get_double_member(o, "ratio") == 0.25);
  fail_unless(json_node_get_value_type(json_object_get_member(o, "ok")) == G_TYPE_BOOLEAN);
  fail_unless(json_object_get_boolean_member(o, "ok"));

  // A field named like a fixed member does not replace it.
  assert_equals_str(member_string(o, "msg").c_str(), tricky.c_str());
  assert_equals_str(member_string(o, "field_msg").c_str(), "collides");
  g_object_unref(parser);

  // Without event and call id, those members are absent rather than empty.
  line = log_format_line(LogLevel::Info, "", "", "plain", {});
  o = parse_object(line, &parser);
  fail_unless(!json_object_has_member(o, "event"));
  fail_unless(!json_object_has_member(o, "call_id"));
  assert_equals_str(member_string(o, "level").c_str(), "info");
  assert_equals_str(member_string(o, "msg").c_str(), "plain");
  g_object_unref(parser);

  // Invalid UTF-8 from a peer still yields a parseable line.
  line = log_format_line(LogLevel::Info, "", "", std::string("bad \xc3\x28 utf8 \xff"), {{"v", "\xfe"}});
  o = parse_object(line, &parser);
  fail_unless(g_str_has_prefix(member_string(o, "msg").c_str(), "bad "));
  g_object_unref(parser);

  // A field flagged as a number whose value is not a JSON number is quoted, not emitted raw.
  LogField odd("odd", "12abc");
  odd.number = true;
  LogField nan_field("nan", std::nan(""));
  line = log_format_line(LogLevel::Info, "", "", "x", {odd, nan_field});
  o = parse_object(line, &parser);
  assert_equals_str(member_string(o, "odd").c_str(), "12abc");
  assert_equals_str(member_string(o, "nan").c_str(), "NaN");
  g_object_unref(parser);
}
GST_END_TEST;

GST_START_TEST(test_double_field) {
  struct Case {
    double v;
    const char *text;
  };
  const Case cases[] = {{1.5, "1.5"},   {2.0, "2"},       {0.12345, "0.123"}, {0.9996, "1"},
                        {3.10, "3.1"},  {-2.25, "-2.25"}, {1e-4, "0"},        {-0.0004, "0"},
                        {100.0, "100"}, {0.05, "0.05"},   {1234567.891, "1234567.891"}};
  for (const auto &c : cases) {
    LogField f("x", c.v);
    assert_equals_str(f.value.c_str(), c.text);
    fail_unless(f.number);
  }
  LogField inf("x", HUGE_VAL);
  fail_unless(!inf.number);
}
GST_END_TEST;

GST_START_TEST(test_secret_masking) {
  log_register_secret("sk-live-1234567890");
  log_register_secret("tok1234");
  log_register_secret("tok1234567");  // contains the previous one: must be masked as a whole
  log_register_secret("pa\"ss\\word");  // characters both formats escape
  log_register_secret("abc");           // too short: would mask ordinary text
  log_register_secret("");

  for (LogFormat format : {LogFormat::Text, LogFormat::Json}) {
    log_init(format, LogLevel::Info);
    std::string line = log_format_line(
        LogLevel::Info, "RT_ERROR", "call-tok1234", "connect with sk-live-1234567890 failed (abc)",
        {{"authorization", "Bearer sk-live-1234567890"}, {"url", "wss://x/?k=tok1234567&z=1"},
         {"sk-live-1234567890", "as a key"}, {"pw", "pa\"ss\\word"}, {"n", 1234}});
    for (const char *secret : {"sk-live", "1234567890", "tok1234", "ss\\", "pa\"", "pa\\\""}) {
      fail_unless(!contains(line, secret), "%s leaked: %s", secret, line.c_str());
    }
    fail_unless(contains(line, "(abc)"), "short value masked: %s", line.c_str());
    fail_unless(!contains(line, "***567"), "longer secret masked in part: %s", line.c_str());
    fail_unless(contains(line, "1234"), "unrelated number masked: %s", line.c_str());
    if (format == LogFormat::Json) {
      JsonParser *parser;
      JsonObject *o = parse_object(line, &parser);
      assert_equals_str(member_string(o, "msg").c_str(), "connect with *** failed (abc)");
      assert_equals_str(member_string(o, "authorization").c_str(), "Bearer ***");
      assert_equals_str(member_string(o, "url").c_str(), "wss://x/?k=***&z=1");
      assert_equals_str(member_string(o, "call_id").c_str(), "call-***");
      assert_equals_str(member_string(o, "pw").c_str(), "***");
      assert_equals_str(member_string(o, "***").c_str(), "as a key");
      g_object_unref(parser);
    } else {
      fail_unless(contains(line, "connect with *** failed (abc)"), "%s", line.c_str());
      fail_unless(contains(line, "authorization=\"Bearer ***\""), "%s", line.c_str());
      fail_unless(contains(line, " pw=*** "), "%s", line.c_str());
    }
  }

  // The finished text line is masked too, not only its parts: a secret that straddles the message
  // and a field name does not survive either.
  log_init(LogFormat::Text, LogLevel::Info);
  log_register_secret("SECRET part2");
  std::string line = log_format_line(LogLevel::Info, "", "", "token SECRET", {{"part2", "x"}});
  fail_unless(!contains(line, "SECRET part2"), "%s", line.c_str());
  fail_unless(g_str_has_suffix(line.c_str(), " token ***=x"), "%s", line.c_str());
}
GST_END_TEST;

GST_START_TEST(test_writes_and_level_filter) {
  log_init(LogFormat::Text, LogLevel::Warning);
  fail_unless(log_min_level() == LogLevel::Warning);
  log_register_secret("hunter2hunter2");
  StderrCapture capture;
  log_line(LogLevel::Info, "dropped");
  log_event(LogLevel::Debug, "CALL_CREATED", "c1", "dropped too");
  log_line(LogLevel::Warning, "kept hunter2hunter2", {{"a", 1}});
  log_event(LogLevel::Error, "CALL_ENDED", "c1", "bye", {{"reason", "hangup"}});
  std::vector<std::string> lines = lines_of(capture.finish());
  fail_unless_equals_int(lines.size(), 2);
  fail_unless(matches((std::string("^") + kTs + " WARN  kept \\*\\*\\* a=1$").c_str(), lines[0]), "%s",
              lines[0].c_str());
  fail_unless(matches((std::string("^") + kTs + " ERROR CALL_ENDED call_id=c1 bye reason=hangup$").c_str(), lines[1]),
              "%s", lines[1].c_str());
}
GST_END_TEST;

GST_START_TEST(test_concurrent_lines_stay_whole) {
  log_init(LogFormat::Json, LogLevel::Info);
  StderrCapture capture;
  constexpr int kThreads = 8, kLines = 300;
  const std::string filler(700, 'x');  // long lines make torn writes likely if they can happen
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; t++) {
    threads.emplace_back([t, &filler] {
      for (int i = 0; i < kLines; i++) {
        log_event(LogLevel::Info, "CALL_CREATED", "call-" + std::to_string(t), filler, {{"t", t}, {"i", i}});
      }
    });
  }
  for (auto &th : threads) th.join();
  std::vector<std::string> lines = lines_of(capture.finish());
  fail_unless_equals_int(lines.size(), kThreads * kLines);
  std::vector<int> next(kThreads, 0);
  for (const auto &line : lines) {
    JsonParser *parser;
    JsonObject *o = parse_object(line, &parser);
    int t = (int)json_object_get_int_member(o, "t");
    fail_unless(t >= 0 && t < kThreads);
    // Each thread's lines arrive complete and in its own order.
    fail_unless_equals_int(json_object_get_int_member(o, "i"), next[t]);
    next[t]++;
    assert_equals_str(member_string(o, "msg").c_str(), filler.c_str());
    g_object_unref(parser);
  }
}
GST_END_TEST;

GST_START_TEST(test_glib_capture) {
  log_capture_glib();
  log_capture_glib();  // twice is harmless (GLib itself aborts on a second writer)
  log_init(LogFormat::Json, LogLevel::Info);
  StderrCapture capture;
  g_log("vbtest", G_LOG_LEVEL_MESSAGE, "hello %d", 1);
  g_log("vbtest", G_LOG_LEVEL_INFO, "an info");
  g_log("vbtest", G_LOG_LEVEL_DEBUG, "not shown at info");
  g_log("vbtest", G_LOG_LEVEL_WARNING, "a warning");
  g_log("vbtest", G_LOG_LEVEL_CRITICAL, "a critical");
  log_init(LogFormat::Json, LogLevel::Debug);
  g_log("vbtest", G_LOG_LEVEL_DEBUG, "shown at debug");
  std::string out = capture.finish();

  struct Expected {
    const char *level, *msg;
  };
  const Expected expected[] = {{"info", "hello 1"},
                               {"info", "an info"},
                               {"warning", "a warning"},
                               {"error", "a critical"},
                               {"debug", "shown at debug"}};
  std::vector<std::string> ours;
  for (const auto &line : lines_of(out)) {
    if (contains(line, "\"domain\":\"vbtest\"")) ours.push_back(line);
  }
  fail_unless_equals_int(ours.size(), G_N_ELEMENTS(expected));
  for (size_t i = 0; i < ours.size(); i++) {
    JsonParser *parser;
    JsonObject *o = parse_object(ours[i], &parser);
    assert_equals_str(member_string(o, "level").c_str(), expected[i].level);
    assert_equals_str(member_string(o, "msg").c_str(), expected[i].msg);
    assert_equals_str(member_string(o, "domain").c_str(), "vbtest");
    g_object_unref(parser);
  }
}
GST_END_TEST;

static Suite *log_suite(void) {
  Suite *s = suite_create("log");
  TCase *tc = tcase_create("log");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_text_format);
  tcase_add_test(tc, test_text_escaping);
  tcase_add_test(tc, test_json_format);
  tcase_add_test(tc, test_double_field);
  tcase_add_test(tc, test_secret_masking);
  tcase_add_test(tc, test_writes_and_level_filter);
  tcase_add_test(tc, test_concurrent_lines_stay_whole);
  tcase_add_test(tc, test_glib_capture);
  return s;
}

GST_CHECK_MAIN(log);
