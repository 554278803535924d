#include "child-process.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>

#include <glib.h>

extern char **environ;

namespace svc_test {

namespace {

// Children still running, killed at exit() in case a failing test skipped the destructors.
std::mutex &registry_mutex() {
  static std::mutex *m = new std::mutex();
  return *m;
}
std::set<pid_t> &registry() {
  static std::set<pid_t> *s = new std::set<pid_t>();
  return *s;
}
void kill_registered_children() {
  std::lock_guard<std::mutex> lock(registry_mutex());
  for (pid_t pid : registry()) {
    ::kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
  registry().clear();
}
void register_child(pid_t pid) {
  static bool hooked = false;
  std::lock_guard<std::mutex> lock(registry_mutex());
  if (!hooked) {
    atexit(kill_registered_children);
    hooked = true;
  }
  registry().insert(pid);
}
void unregister_child(pid_t pid) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  registry().erase(pid);
}

// Settings the service and the caller read from the environment: a test states its own.
bool is_setting_variable(const char *entry) {
  static const char *const keep[] = {"VOICEBRIDGE_BUILD_ROOT=", "VOICEBRIDGE_SOURCE_ROOT=", "VOICEBRIDGE_FIXTURES="};
  for (const char *k : keep)
    if (g_str_has_prefix(entry, k)) return false;
  return g_str_has_prefix(entry, "VOICEBRIDGE_") || g_str_has_prefix(entry, "OPENAI_") ||
         g_str_has_prefix(entry, "WHATSAPP_");
}

std::string tail(const std::string &s, size_t n) { return s.size() <= n ? s : "…" + s.substr(s.size() - n); }

int count_dir_entries(const std::string &path) {
  DIR *d = opendir(path.c_str());
  if (!d) return -1;
  int n = 0;
  while (struct dirent *e = readdir(d))
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n++;
  closedir(d);
  return n;
}

}  // namespace

ChildProcess::~ChildProcess() {
  kill_now();
  join_readers();
}

bool ChildProcess::start(const std::vector<std::string> &argv, const std::map<std::string, std::string> &env,
                         std::string *error) {
  // Everything the child needs is prepared before fork(): between fork and exec only
  // async-signal-safe calls are allowed (the test process has threads).
  std::vector<std::string> env_strings;
  for (char **e = environ; *e; e++)
    if (!is_setting_variable(*e)) {
      std::string entry = *e;
      std::string name = entry.substr(0, entry.find('='));
      if (!env.count(name)) env_strings.push_back(entry);
    }
  for (const auto &kv : env) env_strings.push_back(kv.first + "=" + kv.second);
  std::vector<char *> envp, args;
  for (auto &s : env_strings) envp.push_back(const_cast<char *>(s.c_str()));
  envp.push_back(nullptr);
  for (const auto &a : argv) args.push_back(const_cast<char *>(a.c_str()));
  args.push_back(nullptr);

  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) {
    if (error) *error = std::string("pipe: ") + strerror(errno);
    return false;
  }
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    close(out_pipe[0]);
    close(out_pipe[1]);
    if (error) *error = std::string("pipe: ") + strerror(errno);
    return false;
  }
  int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    // Killed with the test process whatever way it ends (see the header).
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    dup2(devnull, 0);
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    // Descriptors the test framework opened without O_CLOEXEC (check's temporary files) must not
    // show up in the child's descriptor count.
    close_range(3, ~0U, 0);
    execve(args[0], args.data(), envp.data());
    const char msg[] = "exec failed\n";
    ssize_t ignored = write(2, msg, sizeof msg - 1);
    (void)ignored;
    _exit(127);
  }
  close(devnull);
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (pid < 0) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    if (error) *error = std::string("fork: ") + strerror(errno);
    return false;
  }
  pid_ = pid;
  started_us_ = g_get_monotonic_time();
  register_child(pid);

  // The readers end at EOF, i.e. when the child (the only writer) has exited.
  out_reader_ = std::thread([this, fd = out_pipe[0]] {
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
      if (n <= 0) continue;
      std::lock_guard<std::mutex> lock(mutex_);
      out_.append(buf, (size_t)n);
    }
    close(fd);
  });
  err_reader_ = std::thread([this, fd = err_pipe[0]] {
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
      if (n <= 0) continue;
      int64_t now = g_get_monotonic_time();
      std::lock_guard<std::mutex> lock(mutex_);
      err_partial_.append(buf, (size_t)n);
      size_t nl;
      while ((nl = err_partial_.find('\n')) != std::string::npos) {
        err_lines_.push_back({now, err_partial_.substr(0, nl)});
        err_partial_.erase(0, nl + 1);
      }
    }
    std::lock_guard<std::mutex> lock(mutex_);
    if (!err_partial_.empty()) err_lines_.push_back({g_get_monotonic_time(), err_partial_});
    err_partial_.clear();
    close(fd);
  });
  return true;
}

void ChildProcess::reap(int status) {
  exited_ = true;
  exited_us_ = g_get_monotonic_time();
  if (WIFEXITED(status)) exit_status_ = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) term_signal_ = WTERMSIG(status);
  unregister_child(pid_);
}

bool ChildProcess::running() {
  if (pid_ <= 0 || exited_) return false;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    reap(status);
    return false;
  }
  return r == 0;
}

void ChildProcess::send_signal(int sig) {
  if (running()) ::kill(pid_, sig);
}

bool ChildProcess::wait_exit(int timeout_ms) {
  if (pid_ <= 0) return false;
  int64_t deadline = g_get_monotonic_time() + (int64_t)timeout_ms * 1000;
  while (running()) {
    if (g_get_monotonic_time() >= deadline) return false;
    g_usleep(5000);
  }
  join_readers();
  return true;
}

void ChildProcess::kill_now() {
  if (!running()) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  if (waitpid(pid_, &status, 0) == pid_) reap(status);
  join_readers();
}

void ChildProcess::join_readers() {
  if (out_reader_.joinable()) out_reader_.join();
  if (err_reader_.joinable()) err_reader_.join();
}

std::string ChildProcess::out() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return out_;
}

std::vector<StderrLine> ChildProcess::stderr_lines() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return err_lines_;
}

std::string ChildProcess::stderr_text() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string text;
  for (const auto &l : err_lines_) text += l.text + "\n";
  return text + err_partial_;
}

std::optional<std::pair<size_t, StderrLine>> ChildProcess::wait_stderr_line(
    const std::function<bool(const std::string &)> &pred, int timeout_ms, size_t from) const {
  int64_t deadline = g_get_monotonic_time() + (int64_t)timeout_ms * 1000;
  size_t next = from;
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (; next < err_lines_.size(); next++)
        if (pred(err_lines_[next].text)) return std::make_pair(next, err_lines_[next]);
    }
    if (g_get_monotonic_time() >= deadline) return std::nullopt;
    g_usleep(5000);
  }
}

std::string ChildProcess::describe(size_t tail_chars) const {
  std::string d;
  if (pid_ <= 0) d = "not started";
  else if (!exited_) d = "running";
  else if (term_signal_) d = "killed by signal " + std::to_string(term_signal_);
  else d = "exit " + std::to_string(exit_status_);
  return d + "\n--- stdout ---\n" + tail(out(), tail_chars) + "\n--- stderr ---\n" + tail(stderr_text(), tail_chars);
}

int thread_count(pid_t pid) { return count_dir_entries("/proc/" + std::to_string(pid) + "/task"); }

int fd_count(pid_t pid) { return count_dir_entries("/proc/" + std::to_string(pid) + "/fd"); }

std::string fd_summary(pid_t pid) {
  std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  std::map<std::string, int> kinds;
  DIR *d = opendir(dir.c_str());
  if (!d) return "(gone)";
  while (struct dirent *e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    char target[512];
    ssize_t n = readlink((dir + "/" + e->d_name).c_str(), target, sizeof target - 1);
    std::string kind = n > 0 ? std::string(target, (size_t)n) : "?";
    // "socket:[12345]" and "pipe:[678]": the inode number says nothing here.
    size_t bracket = kind.find(":[");
    if (bracket != std::string::npos && (g_str_has_prefix(kind.c_str(), "socket") || g_str_has_prefix(kind.c_str(), "pipe")))
      kind.resize(bracket);
    kinds[kind]++;
  }
  closedir(d);
  std::string out;
  for (const auto &kv : kinds) out += (out.empty() ? "" : ", ") + kv.first + " x" + std::to_string(kv.second);
  return out;
}

double cpu_seconds(pid_t pid) {
  gchar *text = nullptr;
  std::string path = "/proc/" + std::to_string(pid) + "/stat";
  if (!g_file_get_contents(path.c_str(), &text, nullptr, nullptr)) return -1;
  // The command name (field 2) may contain spaces and parentheses: count fields after the last ')'.
  const char *p = strrchr(text, ')');
  double seconds = -1;
  if (p) {
    gchar **fields = g_strsplit(p + 2, " ", -1);
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    if (g_strv_length(fields) > 13) {
      long ticks = sysconf(_SC_CLK_TCK);
      seconds = (g_ascii_strtod(fields[11], nullptr) + g_ascii_strtod(fields[12], nullptr)) / (double)ticks;
    }
    g_strfreev(fields);
  }
  g_free(text);
  return seconds;
}

}  // namespace svc_test
