#include "bench-util.h"

#include <glib.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace bench {

namespace {

std::string slurp(const std::string &path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

double ticks_per_s() {
  static const double hz = (double)sysconf(_SC_CLK_TCK);
  return hz;
}

std::string fmt(double v) {
  char buf[64];
  if (std::isfinite(v))
    snprintf(buf, sizeof buf, "%.6g", v);
  else
    snprintf(buf, sizeof buf, "null");
  return buf;
}

}  // namespace

ProcSample read_proc(pid_t pid) {
  ProcSample s;
  s.mono_us = g_get_monotonic_time();
  const std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
  // The command name may hold spaces and parentheses: fields start after the last ')'.
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return s;
  std::istringstream in(stat.substr(close + 2));
  std::vector<std::string> f;
  std::string tok;
  while (in >> tok) f.push_back(tok);
  // After the name: state(0) ppid … utime is field 14 of the line, i.e. index 11 here; stime 12;
  // num_threads 17.
  if (f.size() < 18) return s;
  s.cpu_s = (std::stod(f[11]) + std::stod(f[12])) / ticks_per_s();
  s.sys_s = std::stod(f[12]) / ticks_per_s();
  s.threads = std::stoi(f[17]);
  const std::string status = slurp("/proc/" + std::to_string(pid) + "/status");
  const size_t at = status.find("VmRSS:");
  if (at != std::string::npos) s.rss_mib = std::strtod(status.c_str() + at + 6, nullptr) / 1024.0;
  if (GDir *dir = g_dir_open(("/proc/" + std::to_string(pid) + "/fd").c_str(), 0, nullptr)) {
    while (g_dir_read_name(dir)) s.fds++;
    g_dir_close(dir);
  }
  s.ok = true;
  return s;
}

SystemSample read_system() {
  SystemSample s;
  s.mono_us = g_get_monotonic_time();
  const std::string stat = slurp("/proc/stat");
  unsigned long long user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  if (sscanf(stat.c_str(), "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &user, &nice, &system, &idle, &iowait, &irq,
             &softirq, &steal) >= 4) {
    const double busy = (double)(user + nice + system + irq + softirq + steal);
    s.busy_s = busy / ticks_per_s();
    s.total_s = (busy + (double)(idle + iowait)) / ticks_per_s();
  }
  return s;
}

std::string loadavg() {
  std::string text = slurp("/proc/loadavg");
  std::istringstream in(text);
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

Distribution distribution(std::vector<double> v) {
  Distribution d;
  d.n = v.size();
  if (v.empty()) return d;
  std::sort(v.begin(), v.end());
  auto rank = [&](double p) {  // nearest rank: the smallest value with at least p of the sample at or below it
    size_t k = (size_t)std::ceil(p * (double)v.size());
    return v[std::min(v.size(), std::max<size_t>(k, 1)) - 1];
  };
  d.p50 = rank(0.50);
  d.p90 = rank(0.90);
  d.p99 = rank(0.99);
  d.max = v.back();
  d.min = v.front();
  double sum = 0;
  for (double x : v) sum += x;
  d.mean = sum / (double)v.size();
  return d;
}

std::string describe(const Distribution &d, const char *unit) {
  if (d.n == 0) return "no samples";
  char buf[256];
  snprintf(buf, sizeof buf, "p50 %.1f  p90 %.1f  p99 %.1f  max %.1f %s (min %.1f, n=%zu)", d.p50, d.p90, d.p99, d.max,
           unit, d.min, d.n);
  return buf;
}

std::string to_json(const Distribution &d) {
  if (d.n == 0) return "{\"n\":0}";  // no sample: no made-up zeros
  return JsonLine().num("n", (double)d.n).num("p50", d.p50).num("p90", d.p90).num("p99", d.p99).num("max", d.max)
      .num("min", d.min).num("mean", d.mean).text();
}

double metric_sum(const std::string &text, const std::string &name) {
  double sum = 0;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (line.compare(0, name.size(), name) != 0) continue;
    const char next = line.size() > name.size() ? line[name.size()] : '\0';
    if (next != ' ' && next != '{') continue;  // another metric with this prefix
    const size_t sp = line.rfind(' ');
    if (sp != std::string::npos) sum += std::strtod(line.c_str() + sp + 1, nullptr);
  }
  return sum;
}

void JsonLine::key(const std::string &k) {
  if (!body_.empty()) body_ += ",";
  body_ += "\"" + k + "\":";
}

JsonLine &JsonLine::num(const std::string &k, double v) {
  key(k);
  body_ += fmt(v);
  return *this;
}

JsonLine &JsonLine::str(const std::string &k, const std::string &v) {
  key(k);
  body_ += "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') body_ += '\\';
    if ((unsigned char)c < 0x20) continue;
    body_ += c;
  }
  body_ += "\"";
  return *this;
}

JsonLine &JsonLine::raw(const std::string &k, const std::string &json) {
  key(k);
  body_ += json;
  return *this;
}

}  // namespace bench
