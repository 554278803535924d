// Small helpers shared by the bench programs: /proc counters (CPU-seconds rather than wall time,
// since the machine is shared), distributions, and Prometheus text.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace bench {

// One process, from /proc/PID/stat and /proc/PID/status.
struct ProcSample {
  bool ok = false;
  double cpu_s = 0;      // utime + stime, all threads, in seconds
  double sys_s = 0;      // of which stime (kernel)
  double rss_mib = 0;    // VmRSS
  int threads = 0;
  int fds = 0;           // open file descriptors (/proc/PID/fd)
  int64_t mono_us = 0;   // when it was read
};
ProcSample read_proc(pid_t pid);

// The whole machine, from /proc/stat: busy and total jiffies summed over all CPUs.
struct SystemSample {
  double busy_s = 0;   // user + nice + system + irq + softirq + steal
  double total_s = 0;  // busy + idle + iowait
  int64_t mono_us = 0;
};
SystemSample read_system();
std::string loadavg();  // the first three fields of /proc/loadavg

// p50/p90/p99/max of a sample (nearest rank).
struct Distribution {
  size_t n = 0;
  double p50 = 0, p90 = 0, p99 = 0, max = 0, min = 0, mean = 0;
};
Distribution distribution(std::vector<double> values);
std::string describe(const Distribution &d, const char *unit = "ms");  // "p50 … p90 … p99 … max … (n=…)"
std::string to_json(const Distribution &d);

// Sum of every sample of a metric (all label sets) in a Prometheus text exposition; 0 if absent.
double metric_sum(const std::string &exposition, const std::string &name);

// Minimal JSON object text builder for result lines.
class JsonLine {
 public:
  JsonLine &num(const std::string &key, double v);
  JsonLine &str(const std::string &key, const std::string &v);
  JsonLine &raw(const std::string &key, const std::string &json);
  std::string text() const { return "{" + body_ + "}"; }

 private:
  void key(const std::string &k);
  std::string body_;
};

}  // namespace bench
