// Running a child process from a test with a bounded time: a script, gst-launch-1.0, a built binary.
//
//   gst_test::ProcessResult r = gst_test::run_process({"/bin/sh", script}, {{"INPUT_WAV", in}}, 30000);
//   if (r.timed_out || r.exit_status != 0) fail(r.describe());
//
// The child gets the test's environment plus the given overrides; its stdout and stderr are captured
// to memory. On timeout the child's whole process group is sent SIGINT, then SIGKILL 3 s later.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace gst_test {

struct ProcessResult {
  bool started = false;
  bool timed_out = false;
  int exit_status = -1;   // exit code when it exited normally; -1 otherwise
  int term_signal = 0;    // the signal that killed it, if any
  std::string out;        // stdout
  std::string err;        // stderr
  double wall_ms = 0;
  std::string spawn_error;

  bool ok() const { return started && !timed_out && exit_status == 0; }
  // "exit 1 after 1234 ms; stderr: …" (stdout/stderr tails), for failure messages.
  std::string describe(size_t tail_chars = 4000) const;
};

ProcessResult run_process(const std::vector<std::string> &argv, const std::map<std::string, std::string> &env_overrides,
                          int timeout_ms, const std::string &working_dir = {});

}  // namespace gst_test
