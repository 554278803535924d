// A child process that keeps running while the test talks to it: voicebridge itself, or a
// voicebridge-call placing a call in the background.
//
//   svc_test::ChildProcess p;
//   if (!p.start({binary, "--listen", "127.0.0.1:0"}, {}, &error)) fail(error);
//   auto line = p.wait_stderr_line([](const std::string &l) { return l.find("LISTENING") != npos; }, 10000);
//   p.send_signal(SIGTERM);
//   if (!p.wait_exit(5000)) fail("did not exit");
//
// stdout is collected whole; stderr is read line by line with the monotonic time each line arrived
// (tests time log events with it). Every wait is bounded.
//
// Nothing outlives the test: the destructor kills (SIGKILL) and reaps a child that still runs, and
// because check's fork mode ends a failing test with exit() (no destructors), children also get
// PR_SET_PDEATHSIG=SIGKILL and are killed by an atexit() handler.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace svc_test {

struct StderrLine {
  int64_t mono_us = 0;  // g_get_monotonic_time() when the line was read
  std::string text;     // without the newline
};

class ChildProcess {
 public:
  ChildProcess() = default;
  ~ChildProcess();
  ChildProcess(const ChildProcess &) = delete;
  ChildProcess &operator=(const ChildProcess &) = delete;

  // Starts argv[0] (a path) with the test's environment minus every voicebridge/OpenAI/WhatsApp
  // setting (so that the developer's shell cannot change what is tested), plus env.
  bool start(const std::vector<std::string> &argv, const std::map<std::string, std::string> &env = {},
             std::string *error = nullptr);

  pid_t pid() const { return pid_; }
  int64_t started_us() const { return started_us_; }
  // True while the process has not exited (reaps it when it has).
  bool running();
  void send_signal(int sig);
  // Waits up to timeout_ms for the process to exit; true when it did. Output is complete then.
  bool wait_exit(int timeout_ms);
  // SIGKILL and reap (no-op once exited).
  void kill_now();

  bool exited() const { return exited_; }
  int exit_status() const { return exit_status_; }  // -1 unless it exited normally
  int term_signal() const { return term_signal_; }  // the signal that killed it, else 0
  int64_t exited_us() const { return exited_us_; }  // when wait/running noticed the exit

  std::string out() const;
  std::vector<StderrLine> stderr_lines() const;
  std::string stderr_text() const;
  // Waits for a stderr line (from index `from` on) that satisfies pred; returns it with its index.
  std::optional<std::pair<size_t, StderrLine>> wait_stderr_line(const std::function<bool(const std::string &)> &pred,
                                                                int timeout_ms, size_t from = 0) const;
  // "exit 0" / "killed by signal 9" / "running", plus the tails of stdout and stderr.
  std::string describe(size_t tail_chars = 3000) const;

 private:
  void reap(int status);
  void join_readers();

  pid_t pid_ = -1;
  int64_t started_us_ = 0;
  bool exited_ = false;
  int exit_status_ = -1;
  int term_signal_ = 0;
  int64_t exited_us_ = 0;
  mutable std::mutex mutex_;
  std::string out_;
  std::vector<StderrLine> err_lines_;
  std::string err_partial_;
  std::thread out_reader_, err_reader_;
};

// The number of entries in /proc/PID/task (threads) and /proc/PID/fd (open descriptors); -1 when
// the process is gone.
int thread_count(pid_t pid);
int fd_count(pid_t pid);
// What the descriptors are, grouped ("socket x12, anon_inode:[eventfd] x3, /dev/null x2"), for
// failure messages.
std::string fd_summary(pid_t pid);
// utime + stime of the process in seconds (/proc/PID/stat); -1 when the process is gone.
double cpu_seconds(pid_t pid);

}  // namespace svc_test
