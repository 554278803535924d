#include "process-runner.h"

#include <glib.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace gst_test {

namespace {

void child_setup(gpointer) {
  // Own process group, so that a timeout can stop the script and everything it started.
  setpgid(0, 0);
}

void drain(int fd, std::string *into, bool *open) {
  char buf[4096];
  while (true) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
      into->append(buf, (size_t)n);
      continue;
    }
    if (n == 0) *open = false;
    return;  // EAGAIN or EOF or error
  }
}

std::string tail(const std::string &s, size_t n) { return s.size() <= n ? s : "…" + s.substr(s.size() - n); }

}  // namespace

std::string ProcessResult::describe(size_t tail_chars) const {
  std::string d;
  if (!started) return "not started: " + spawn_error;
  if (timed_out) d = "TIMED OUT";
  else if (term_signal) d = "killed by signal " + std::to_string(term_signal);
  else d = "exit " + std::to_string(exit_status);
  d += " after " + std::to_string((int)wall_ms) + " ms";
  d += "\n--- stdout ---\n" + tail(out, tail_chars) + "\n--- stderr ---\n" + tail(err, tail_chars);
  return d;
}

ProcessResult run_process(const std::vector<std::string> &argv, const std::map<std::string, std::string> &env_overrides,
                          int timeout_ms, const std::string &working_dir) {
  ProcessResult r;
  std::vector<gchar *> args;
  for (const auto &a : argv) args.push_back(const_cast<gchar *>(a.c_str()));
  args.push_back(nullptr);
  gchar **envp = g_get_environ();
  for (const auto &kv : env_overrides) envp = g_environ_setenv(envp, kv.first.c_str(), kv.second.c_str(), TRUE);

  GPid pid = 0;
  gint out_fd = -1, err_fd = -1;
  GError *error = nullptr;
  const int64_t start = g_get_monotonic_time();
  gboolean ok = g_spawn_async_with_pipes(working_dir.empty() ? nullptr : working_dir.c_str(), args.data(), envp,
                                         (GSpawnFlags)(G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_SEARCH_PATH), child_setup,
                                         nullptr, &pid, nullptr, &out_fd, &err_fd, &error);
  g_strfreev(envp);
  if (!ok) {
    r.spawn_error = error ? error->message : "unknown";
    g_clear_error(&error);
    return r;
  }
  r.started = true;
  fcntl(out_fd, F_SETFL, fcntl(out_fd, F_GETFL) | O_NONBLOCK);
  fcntl(err_fd, F_SETFL, fcntl(err_fd, F_GETFL) | O_NONBLOCK);
  bool out_open = true, err_open = true;
  int status = 0;
  bool exited = false;
  int64_t deadline = start + (int64_t)timeout_ms * 1000;
  int64_t kill_at = 0;
  while (!exited) {
    drain(out_fd, &r.out, &out_open);
    drain(err_fd, &r.err, &err_open);
    pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid) {
      exited = true;
      break;
    }
    int64_t now = g_get_monotonic_time();
    if (!r.timed_out && now >= deadline) {
      r.timed_out = true;
      kill(-pid, SIGINT);  // lets gst-launch -e finish its files
      kill_at = now + 3 * G_USEC_PER_SEC;
    }
    if (kill_at && now >= kill_at) {
      kill(-pid, SIGKILL);
      kill_at = 0;
    }
    g_usleep(5000);
  }
  // Read what is left (the process may have left children holding the pipes: bounded).
  int64_t drain_end = g_get_monotonic_time() + G_USEC_PER_SEC;
  while ((out_open || err_open) && g_get_monotonic_time() < drain_end) {
    drain(out_fd, &r.out, &out_open);
    drain(err_fd, &r.err, &err_open);
    if (out_open || err_open) g_usleep(2000);
  }
  close(out_fd);
  close(err_fd);
  g_spawn_close_pid(pid);
  r.wall_ms = (g_get_monotonic_time() - start) / 1000.0;
  if (WIFEXITED(status)) r.exit_status = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.term_signal = WTERMSIG(status);
  return r;
}

}  // namespace gst_test
