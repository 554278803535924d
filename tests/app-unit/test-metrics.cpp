// Unit tests for app/metrics.{h,cpp}: the Prometheus text exposition of the nine contract metrics
// (CONTRACT.md §5), label escaping, cumulative histogram buckets, ordering, the generic API and
// concurrent updates.
#include <gst/check/gstcheck.h>

#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "metrics.h"

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

std::vector<std::string> lines_of(const std::string &text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    fail_unless(nl != std::string::npos, "exposition does not end with a newline");
    out.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return out;
}

bool has_line(const std::string &text, const std::string &line) {
  for (const auto &l : lines_of(text)) {
    if (l == line) return true;
  }
  return false;
}

// The sample lines (no comments) whose metric name starts with `prefix`, in output order.
std::vector<std::string> samples(const std::string &text, const std::string &prefix) {
  std::vector<std::string> out;
  for (const auto &l : lines_of(text)) {
    if (!l.empty() && l[0] != '#' && l.compare(0, prefix.size(), prefix) == 0) out.push_back(l);
  }
  return out;
}

const std::pair<const char *, const char *> kContractMetrics[] = {
    {"voicebridge_calls_active", "gauge"},
    {"voicebridge_calls_total", "counter"},
    {"voicebridge_call_setup_seconds", "histogram"},
    {"voicebridge_first_audio_seconds", "histogram"},
    {"voicebridge_realtime_errors_total", "counter"},
    {"voicebridge_barge_ins_total", "counter"},
    {"voicebridge_rtp_packets_received_total", "counter"},
    {"voicebridge_rtp_packets_lost_total", "counter"},
    {"voicebridge_caller_audio_underruns_total", "counter"},
};

void reset() { Metrics::get().reset_for_tests(); }

}  // namespace

GST_START_TEST(test_contract_metrics_declared) {
  std::string text = Metrics::get().render();
  for (const auto &m : kContractMetrics) {
    std::string help = std::string("# HELP ") + m.first + " ";
    std::string type = std::string("# TYPE ") + m.first + " " + m.second;
    fail_unless(contains(text, "\n" + help) || g_str_has_prefix(text.c_str(), help.c_str()), "no HELP for %s",
                m.first);
    fail_unless(has_line(text, type), "no '%s'", type.c_str());
    // The HELP text says something (more than the bare name).
    size_t at = text.find(help);
    size_t eol = text.find('\n', at);
    fail_unless(eol - (at + help.size()) > 10, "empty HELP for %s", m.first);
  }
  // Before any sample: unlabelled counters and the gauge read 0, labelled counters have no series.
  for (const char *name : {"voicebridge_calls_active", "voicebridge_barge_ins_total",
                           "voicebridge_rtp_packets_received_total", "voicebridge_rtp_packets_lost_total",
                           "voicebridge_caller_audio_underruns_total"}) {
    fail_unless(has_line(text, std::string(name) + " 0"), "%s does not read 0", name);
  }
  fail_unless(samples(text, "voicebridge_calls_total").empty());
  fail_unless(samples(text, "voicebridge_realtime_errors_total").empty());
  fail_unless(has_line(text, "voicebridge_call_setup_seconds_bucket{le=\"+Inf\"} 0"));
  fail_unless(has_line(text, "voicebridge_call_setup_seconds_count 0"));
  fail_unless(has_line(text, "voicebridge_first_audio_seconds_sum 0"));
}
GST_END_TEST;

GST_START_TEST(test_labelled_counter) {
  Metrics &m = Metrics::get();
  m.call_finished("hangup");
  m.call_finished("ice_failed");
  m.call_finished("hangup");
  std::vector<std::string> got = samples(m.render(), "voicebridge_calls_total");
  fail_unless_equals_int(got.size(), 2);
  // Sorted by label value, whatever the order of first use.
  assert_equals_str(got[0].c_str(), "voicebridge_calls_total{result=\"hangup\"} 2");
  assert_equals_str(got[1].c_str(), "voicebridge_calls_total{result=\"ice_failed\"} 1");

  m.realtime_error("rate_limit_exceeded");
  fail_unless(has_line(m.render(), "voicebridge_realtime_errors_total{code=\"rate_limit_exceeded\"} 1"));
}
GST_END_TEST;

GST_START_TEST(test_label_escaping) {
  Metrics &m = Metrics::get();
  m.realtime_error("a\"b\\c\nd");
  std::string text = m.render();
  fail_unless(has_line(text, "voicebridge_realtime_errors_total{code=\"a\\\"b\\\\c\\nd\"} 1"));
}
GST_END_TEST;

GST_START_TEST(test_histogram_buckets) {
  Metrics &m = Metrics::get();
  for (double v : {0.004, 0.01, 0.3, 7.0}) m.observe_call_setup(v);  // 0.01: le is inclusive
  const char *expected[] = {
      "voicebridge_call_setup_seconds_bucket{le=\"0.005\"} 1",
      "voicebridge_call_setup_seconds_bucket{le=\"0.01\"} 2",
      "voicebridge_call_setup_seconds_bucket{le=\"0.02\"} 2",
      "voicebridge_call_setup_seconds_bucket{le=\"0.05\"} 2",
      "voicebridge_call_setup_seconds_bucket{le=\"0.1\"} 2",
      "voicebridge_call_setup_seconds_bucket{le=\"0.2\"} 2",
      "voicebridge_call_setup_seconds_bucket{le=\"0.5\"} 3",
      "voicebridge_call_setup_seconds_bucket{le=\"1\"} 3",
      "voicebridge_call_setup_seconds_bucket{le=\"2\"} 3",
      "voicebridge_call_setup_seconds_bucket{le=\"5\"} 3",
      "voicebridge_call_setup_seconds_bucket{le=\"+Inf\"} 4",
      "voicebridge_call_setup_seconds_sum 7.314",
      "voicebridge_call_setup_seconds_count 4",
  };
  std::vector<std::string> got = samples(m.render(), "voicebridge_call_setup_seconds");
  fail_unless_equals_int(got.size(), G_N_ELEMENTS(expected));
  for (size_t i = 0; i < got.size(); i++) assert_equals_str(got[i].c_str(), expected[i]);

  // The other histogram has its own buckets.
  m.observe_first_audio(0.15);
  // (Not named `first`: gstcheck's comparison macros declare a local of that name.)
  std::vector<std::string> audio = samples(m.render(), "voicebridge_first_audio_seconds_bucket");
  const char *first_expected[] = {"0.02\"} 0", "0.05\"} 0", "0.1\"} 0", "0.2\"} 1", "0.5\"} 1",
                                  "1\"} 1",    "2\"} 1",    "5\"} 1",   "10\"} 1",  "+Inf\"} 1"};
  fail_unless_equals_int(audio.size(), G_N_ELEMENTS(first_expected));
  for (size_t i = 0; i < audio.size(); i++) {
    std::string want = std::string("voicebridge_first_audio_seconds_bucket{le=\"") + first_expected[i];
    assert_equals_str(audio[i].c_str(), want.c_str());
  }
}
GST_END_TEST;

GST_START_TEST(test_simple_counters_and_gauge) {
  Metrics &m = Metrics::get();
  m.set_calls_active(3);
  m.set_calls_active(2);
  m.barge_in();
  m.barge_in();
  m.rtp_received(1000);
  m.rtp_received(24);
  m.rtp_lost(7);
  m.caller_audio_underruns(5);
  std::string text = m.render();
  fail_unless(has_line(text, "voicebridge_calls_active 2"));
  fail_unless(has_line(text, "voicebridge_barge_ins_total 2"));
  fail_unless(has_line(text, "voicebridge_rtp_packets_received_total 1024"));
  fail_unless(has_line(text, "voicebridge_rtp_packets_lost_total 7"));
  fail_unless(has_line(text, "voicebridge_caller_audio_underruns_total 5"));

  m.reset_for_tests();
  text = m.render();
  fail_unless(has_line(text, "voicebridge_barge_ins_total 0"));
  fail_unless(has_line(text, "# TYPE voicebridge_barge_ins_total counter"));
}
GST_END_TEST;

// The whole exposition: every line is a comment or a well-formed sample, every sample belongs to
// a family announced by HELP and TYPE just before, and families come sorted by name.
GST_START_TEST(test_exposition_well_formed) {
  Metrics &m = Metrics::get();
  m.call_finished("hangup");
  m.realtime_error("x");
  m.observe_first_audio(0.7);
  m.declare("voicebridge_zz_test_gauge", "gauge", "a test gauge");
  m.gauge_set("voicebridge_zz_test_gauge", {{"b", "2"}, {"a", "1"}}, 0.5);
  std::string text = m.render();
  GRegex *sample = g_regex_new(
      "^([a-zA-Z_:][a-zA-Z0-9_:]*)(\\{([a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\]|\\\\.)*\",?)*\\})? "
      "(-?[0-9.e+]+|[+-]Inf|NaN)$",
      (GRegexCompileFlags)0, (GRegexMatchFlags)0, nullptr);
  std::string family, last_family;
  bool saw_help = false;
  for (const auto &line : lines_of(text)) {
    if (g_str_has_prefix(line.c_str(), "# HELP ")) {
      std::string name = line.substr(7, line.find(' ', 7) - 7);
      fail_unless(name > last_family, "%s is out of order after %s", name.c_str(), last_family.c_str());
      last_family = family = name;
      saw_help = true;
      continue;
    }
    if (g_str_has_prefix(line.c_str(), "# TYPE ")) {
      fail_unless(saw_help && line.compare(7, family.size() + 1, family + " ") == 0, "TYPE without HELP: %s",
                  line.c_str());
      continue;
    }
    GMatchInfo *info = nullptr;
    fail_unless(g_regex_match(sample, line.c_str(), (GRegexMatchFlags)0, &info), "malformed line: %s",
                line.c_str());
    char *name = g_match_info_fetch(info, 1);
    std::string n = name;
    g_free(name);
    g_match_info_free(info);
    bool ours = n == family || n == family + "_bucket" || n == family + "_sum" || n == family + "_count";
    fail_unless(ours, "sample %s outside its family %s", n.c_str(), family.c_str());
  }
  g_regex_unref(sample);
  // Labels are sorted by name whatever order the caller gave.
  fail_unless(has_line(text, "voicebridge_zz_test_gauge{a=\"1\",b=\"2\"} 0.5"));
  // Deterministic: the same state renders the same bytes.
  assert_equals_str(text.c_str(), m.render().c_str());
}
GST_END_TEST;

GST_START_TEST(test_generic_metrics) {
  Metrics &m = Metrics::get();
  m.declare("voicebridge_test_help_total", "counter", "line one\nback\\slash");
  std::string text = m.render();
  fail_unless(has_line(text, "# HELP voicebridge_test_help_total line one\\nback\\\\slash"));
  fail_unless(has_line(text, "voicebridge_test_help_total 0"));
  m.counter_add("voicebridge_test_help_total", {}, 2.5);
  fail_unless(has_line(m.render(), "voicebridge_test_help_total 2.5"));

  // Declared as labelled: no label-less zero series beside the real ones.
  m.declare_labelled("voicebridge_test_labelled_total", "counter", "by kind", true);
  fail_unless(samples(m.render(), "voicebridge_test_labelled_total").empty());
  m.counter_add("voicebridge_test_labelled_total", {{"kind", "a"}});
  std::vector<std::string> got = samples(m.render(), "voicebridge_test_labelled_total");
  fail_unless_equals_int(got.size(), 1);
  assert_equals_str(got[0].c_str(), "voicebridge_test_labelled_total{kind=\"a\"} 1");

  // A labelled histogram: le comes after the caller's labels.
  m.declare_labelled("voicebridge_test_seconds", "histogram", "test", true, {1, 0.5});
  m.histogram_observe("voicebridge_test_seconds", {{"leg", "in"}}, 0.75);
  text = m.render();
  fail_unless(has_line(text, "voicebridge_test_seconds_bucket{leg=\"in\",le=\"0.5\"} 0"));
  fail_unless(has_line(text, "voicebridge_test_seconds_bucket{leg=\"in\",le=\"1\"} 1"));
  fail_unless(has_line(text, "voicebridge_test_seconds_bucket{leg=\"in\",le=\"+Inf\"} 1"));
  fail_unless(has_line(text, "voicebridge_test_seconds_sum{leg=\"in\"} 0.75"));
  fail_unless(has_line(text, "voicebridge_test_seconds_count{leg=\"in\"} 1"));

  m.declare("voicebridge_test_value", "gauge", "values");
  m.gauge_set("voicebridge_test_value", {}, 0.1);
  fail_unless(has_line(m.render(), "voicebridge_test_value 0.1"));
  m.gauge_set("voicebridge_test_value", {}, -2);
  fail_unless(has_line(m.render(), "voicebridge_test_value -2"));
}
GST_END_TEST;

GST_START_TEST(test_misuse) {
  Metrics &m = Metrics::get();
  // Counters never go down; the update is refused, loudly.
  ASSERT_WARNING(m.counter_add("voicebridge_barge_ins_total", {}, -1));
  fail_unless(has_line(m.render(), "voicebridge_barge_ins_total 0"));
  // Wrong type: a histogram observed as a gauge.
  ASSERT_WARNING(m.gauge_set("voicebridge_call_setup_seconds", {}, 1));
  fail_unless(has_line(m.render(), "voicebridge_call_setup_seconds_count 0"));
  // Undeclared: declared on first use, quietly (gstcheck fails the test on any stray warning).
  m.counter_add("voicebridge_undeclared_total", {});
  m.counter_add("voicebridge_undeclared_total", {});
  fail_unless(has_line(m.render(), "voicebridge_undeclared_total 2"));
  fail_unless(has_line(m.render(), "# TYPE voicebridge_undeclared_total counter"));
}
GST_END_TEST;

GST_START_TEST(test_concurrent_updates) {
  Metrics &m = Metrics::get();
  constexpr int kThreads = 8, kUpdates = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; t++) {
    threads.emplace_back([&m, t] {
      for (int i = 0; i < kUpdates; i++) {
        m.barge_in();
        m.rtp_received(2);
        m.call_finished(t % 2 ? "odd" : "even");
        m.observe_first_audio(0.03);
        if (i % 1000 == 0) m.render();  // scrapes in the middle of updates
      }
    });
  }
  for (auto &th : threads) th.join();
  std::string text = m.render();
  fail_unless(has_line(text, "voicebridge_barge_ins_total " + std::to_string(kThreads * kUpdates)));
  fail_unless(has_line(text, "voicebridge_rtp_packets_received_total " + std::to_string(2 * kThreads * kUpdates)));
  fail_unless(has_line(text, "voicebridge_calls_total{result=\"odd\"} " + std::to_string(kThreads / 2 * kUpdates)));
  fail_unless(has_line(text, "voicebridge_first_audio_seconds_bucket{le=\"0.05\"} " +
                                 std::to_string(kThreads * kUpdates)));
  fail_unless(has_line(text, "voicebridge_first_audio_seconds_count " + std::to_string(kThreads * kUpdates)));
}
GST_END_TEST;

static Suite *metrics_suite(void) {
  Suite *s = suite_create("metrics");
  TCase *tc = tcase_create("metrics");
  suite_add_tcase(s, tc);
  // The registry is a process-wide singleton: each test starts from no samples.
  tcase_add_checked_fixture(tc, reset, nullptr);
  tcase_add_test(tc, test_contract_metrics_declared);
  tcase_add_test(tc, test_labelled_counter);
  tcase_add_test(tc, test_label_escaping);
  tcase_add_test(tc, test_histogram_buckets);
  tcase_add_test(tc, test_simple_counters_and_gauge);
  tcase_add_test(tc, test_exposition_well_formed);
  tcase_add_test(tc, test_generic_metrics);
  tcase_add_test(tc, test_misuse);
  tcase_add_test(tc, test_concurrent_updates);
  return s;
}

GST_CHECK_MAIN(metrics);
