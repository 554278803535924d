// Prometheus metrics (see metrics.h). All state sits behind one mutex: updates are a few map
// operations, far cheaper than anything a streaming thread does per packet batch, and scrapes
// are rare, so finer locking would buy nothing.
#include "metrics.h"

#include <glib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <set>
#include <utility>

namespace vb {

namespace {

using Labels = std::map<std::string, std::string>;

const char *const kCallsActive = "voicebridge_calls_active";
const char *const kCallsTotal = "voicebridge_calls_total";
const char *const kCallSetup = "voicebridge_call_setup_seconds";
const char *const kFirstAudio = "voicebridge_first_audio_seconds";
const char *const kRealtimeErrors = "voicebridge_realtime_errors_total";
const char *const kBargeIns = "voicebridge_barge_ins_total";
const char *const kRtpReceived = "voicebridge_rtp_packets_received_total";
const char *const kRtpLost = "voicebridge_rtp_packets_lost_total";
const char *const kUnderruns = "voicebridge_caller_audio_underruns_total";

enum class Type { Counter, Gauge, Histogram, Untyped };

bool parse_type(const std::string &s, Type *out) {
  if (s == "counter") *out = Type::Counter;
  else if (s == "gauge") *out = Type::Gauge;
  else if (s == "histogram") *out = Type::Histogram;
  else if (s == "untyped") *out = Type::Untyped;
  else return false;
  return true;
}

const char *type_name(Type t) {
  switch (t) {
    case Type::Counter: return "counter";
    case Type::Gauge: return "gauge";
    case Type::Histogram: return "histogram";
    case Type::Untyped: return "untyped";
  }
  return "untyped";
}

struct Series {
  double value = 0;                     // counter, gauge
  std::vector<unsigned long long> hits; // histogram: per bucket (not cumulative), same order as buckets
  double sum = 0;
  unsigned long long count = 0;
};

struct Family {
  Type type = Type::Untyped;
  std::string help;
  std::vector<double> buckets;  // sorted, finite; +Inf is implicit
  // A family known to carry labels renders nothing until used: a zero sample without its
  // labels would be a different, never-updated series.
  bool labelled = false;
  std::map<Labels, Series> series;
};

// Prometheus sample values: integers without a fraction, others in the shortest form that reads
// back to the same double, and the spellings the format defines for the special values.
std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    snprintf(buf, sizeof buf, "%.0f", v);
    std::string s(buf);
    return s == "-0" ? "0" : s;
  }
  for (int precision = 15; precision <= 17; precision++) {
    char fmt[8];
    snprintf(fmt, sizeof fmt, "%%.%dg", precision);
    g_ascii_formatd(buf, sizeof buf, fmt, v);
    if (g_ascii_strtod(buf, nullptr) == v) break;
  }
  return buf;
}

std::string escape_label_value(const std::string &v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out.append("\\\\");
    else if (c == '"') out.append("\\\"");
    else if (c == '\n') out.append("\\n");
    else out.push_back(c);
  }
  return out;
}

// HELP text escapes only backslash and newline (format 0.0.4).
std::string escape_help(const std::string &v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out.append("\\\\");
    else if (c == '\n') out.append("\\n");
    else out.push_back(c);
  }
  return out;
}

// `{a="x",b="y"}`, with `extra` (the histogram's le) last; empty when there is nothing to show.
std::string render_labels(const Labels &labels, const char *extra_name = nullptr, const std::string &extra_value = "") {
  if (labels.empty() && !extra_name) return "";
  std::string out = "{";
  bool first = true;
  for (const auto &kv : labels) {
    if (!first) out.push_back(',');
    first = false;
    out += kv.first + "=\"" + escape_label_value(kv.second) + "\"";
  }
  if (extra_name) {
    if (!first) out.push_back(',');
    out += std::string(extra_name) + "=\"" + escape_label_value(extra_value) + "\"";
  }
  out.push_back('}');
  return out;
}

}  // namespace

struct Metrics::Impl {
  mutable std::mutex mutex;
  std::map<std::string, Family> families;  // std::map: the exposition comes out sorted by name
  std::set<std::string> warned;            // misuse is reported once per metric, not per update

  void declare_locked(const std::string &name, Type type, const std::string &help, std::vector<double> buckets,
                      bool labelled) {
    Family &f = families[name];
    f.type = type;
    f.help = help;
    f.labelled = labelled;
    if (type == Type::Histogram) {
      std::vector<double> clean;
      for (double b : buckets) {
        if (std::isfinite(b)) clean.push_back(b);
      }
      std::sort(clean.begin(), clean.end());
      clean.erase(std::unique(clean.begin(), clean.end()), clean.end());
      f.buckets = std::move(clean);
    }
  }

  void declare_contract_locked() {
    declare_locked(kCallsActive, Type::Gauge, "Calls currently up (connecting, active or ending).", {}, false);
    declare_locked(kCallsTotal, Type::Counter, "Calls finished, by result (the end reason).", {}, true);
    declare_locked(kCallSetup, Type::Histogram, "Seconds from offer received to answer ready.",
                   {0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5}, false);
    declare_locked(kFirstAudio, Type::Histogram,
                   "Seconds from media connected to the first model audio sent to the caller.",
                   {0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10}, false);
    declare_locked(kRealtimeErrors, Type::Counter, "Errors reported by the Realtime API, by error code.", {}, true);
    declare_locked(kBargeIns, Type::Counter, "Times the caller interrupted the agent.", {}, false);
    declare_locked(kRtpReceived, Type::Counter, "RTP packets received from callers.", {}, false);
    declare_locked(kRtpLost, Type::Counter, "RTP packets from callers that never arrived.", {}, false);
    declare_locked(kUnderruns, Type::Counter,
                   "Times audio for the caller ran out and silence was sent in its place.", {}, false);
  }

  // Returns the family to update, or null (with a one-time warning, emitted by the caller after
  // the lock is released) when the update does not fit the metric's type: that is a real bug
  // (the sample would be lost or render as garbage), unlike a missing declare().
  Family *family_for_update(const std::string &name, Type wanted, bool labels_empty, std::string *warning) {
    auto it = families.find(name);
    if (it == families.end()) {
      // Undeclared metrics still work: declared on first use with the name as HELP and
      // Prometheus' default buckets. No warning: g_warning fails every gst-check test that
      // happens to touch such a metric, which would punish a missing HELP text far too hard.
      declare_locked(name, wanted, name, {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}, !labels_empty);
      it = families.find(name);
    }
    Family &f = it->second;
    bool ok = f.type == wanted || (f.type == Type::Untyped && wanted != Type::Histogram) ||
              (f.type == Type::Gauge && wanted == Type::Counter);  // counter_add on a gauge: gauge "inc"
    if (!ok) {
      if (warned.insert(name).second)
        *warning = "metric " + name + " is a " + type_name(f.type) + ", not a " + type_name(wanted);
      return nullptr;
    }
    return &f;
  }
};

static void warn_outside_lock(const std::string &warning) {
  if (!warning.empty()) g_warning("%s", warning.c_str());
}

Metrics &Metrics::get() {
  // Never destroyed: streaming threads may still count packets while static destructors run.
  static Metrics *instance = new Metrics();
  return *instance;
}

Metrics::Metrics() : impl_(new Impl()) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->declare_contract_locked();
}

void Metrics::set_calls_active(int n) { gauge_set(kCallsActive, {}, n); }
void Metrics::call_finished(const std::string &result) { counter_add(kCallsTotal, {{"result", result}}); }
void Metrics::observe_call_setup(double seconds) { histogram_observe(kCallSetup, {}, seconds); }
void Metrics::observe_first_audio(double seconds) { histogram_observe(kFirstAudio, {}, seconds); }
void Metrics::realtime_error(const std::string &code) { counter_add(kRealtimeErrors, {{"code", code}}); }
void Metrics::barge_in() { counter_add(kBargeIns, {}); }
void Metrics::rtp_received(unsigned long long packets) { counter_add(kRtpReceived, {}, (double)packets); }
void Metrics::rtp_lost(unsigned long long packets) { counter_add(kRtpLost, {}, (double)packets); }
void Metrics::caller_audio_underruns(unsigned long long n) { counter_add(kUnderruns, {}, (double)n); }

void Metrics::declare(const std::string &name, const std::string &type, const std::string &help,
                      const std::vector<double> &buckets) {
  declare_labelled(name, type, help, false, buckets);
}

void Metrics::declare_labelled(const std::string &name, const std::string &type, const std::string &help,
                               bool labelled, const std::vector<double> &buckets) {
  Type t;
  if (!parse_type(type, &t)) {
    g_warning("metric %s: unknown type '%s' (counter, gauge, histogram or untyped)", name.c_str(), type.c_str());
    t = Type::Untyped;
  }
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->declare_locked(name, t, help, buckets, labelled);
}

void Metrics::counter_add(const std::string &name, const std::map<std::string, std::string> &labels, double v) {
  std::string warning;
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    Family *f = impl_->family_for_update(name, Type::Counter, labels.empty(), &warning);
    if (f) {
      if (f->type == Type::Counter && !(v >= 0)) {
        // A counter that goes down reads as a process restart to rate(): refuse it.
        if (impl_->warned.insert(name + "#negative").second)
          warning = "metric " + name + ": counters only go up";
      } else {
        f->series[labels].value += v;
      }
    }
  }
  warn_outside_lock(warning);
}

void Metrics::gauge_set(const std::string &name, const std::map<std::string, std::string> &labels, double v) {
  std::string warning;
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    Family *f = impl_->family_for_update(name, Type::Gauge, labels.empty(), &warning);
    if (f) f->series[labels].value = v;
  }
  warn_outside_lock(warning);
}

void Metrics::histogram_observe(const std::string &name, const std::map<std::string, std::string> &labels,
                                double v) {
  std::string warning;
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    Family *f = impl_->family_for_update(name, Type::Histogram, labels.empty(), &warning);
    if (f && !std::isnan(v)) {
      Series &s = f->series[labels];
      if (s.hits.size() != f->buckets.size()) s.hits.assign(f->buckets.size(), 0);
      // First bucket whose upper bound holds v (le is inclusive); beyond the last, only +Inf.
      auto it = std::lower_bound(f->buckets.begin(), f->buckets.end(), v);
      if (it != f->buckets.end()) s.hits[(size_t)(it - f->buckets.begin())]++;
      s.sum += v;
      s.count++;
    }
  }
  warn_outside_lock(warning);
}

std::string Metrics::render() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  std::string out;
  out.reserve(4096);
  for (const auto &[name, f] : impl_->families) {
    out += "# HELP " + name + " " + escape_help(f.help) + "\n";
    out += "# TYPE " + name + " " + type_name(f.type) + "\n";

    std::map<Labels, Series> zero;
    const std::map<Labels, Series> *series = &f.series;
    if (series->empty() && !f.labelled) {
      // An unlabelled metric exists from the start: scrapers see 0 instead of a gap.
      zero[Labels{}] = Series{};
      series = &zero;
    }

    for (const auto &[labels, s] : *series) {
      if (f.type != Type::Histogram) {
        out += name + render_labels(labels) + " " + format_value(s.value) + "\n";
        continue;
      }
      unsigned long long cumulative = 0;
      for (size_t i = 0; i < f.buckets.size(); i++) {
        if (i < s.hits.size()) cumulative += s.hits[i];
        out += name + "_bucket" + render_labels(labels, "le", format_value(f.buckets[i])) + " " +
               std::to_string(cumulative) + "\n";
      }
      out += name + "_bucket" + render_labels(labels, "le", "+Inf") + " " + std::to_string(s.count) + "\n";
      out += name + "_sum" + render_labels(labels) + " " + format_value(s.sum) + "\n";
      out += name + "_count" + render_labels(labels) + " " + std::to_string(s.count) + "\n";
    }
  }
  return out;
}

void Metrics::reset_for_tests() {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  // Declarations survive (modules declare once, at start-up); only samples go.
  for (auto &kv : impl_->families) kv.second.series.clear();
  impl_->warned.clear();
  impl_->declare_contract_locked();
}

}  // namespace vb
