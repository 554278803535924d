// The command line of CONTRACT.md §1-§2: --help, exit 2 with one line naming a bad option or an
// unusable setting, and the unix-socket listener.
#include <gst/check/gstcheck.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "fake-realtime-server.h"
#include "service-harness.h"

using namespace svc_test;

namespace {

// A Realtime URL nobody listens on: setting it keeps the service from starting its local agent
// (and from printing the line that says so), and no call is placed in these tests.
const char *const kUnusedRealtimeUrl = "ws://127.0.0.1:9/v1/realtime";

struct Run {
  bool exited = false;
  int status = -1;
  std::string out, err, describe;
};

Run run_voicebridge(const std::vector<std::string> &args, const std::map<std::string, std::string> &env = {}) {
  Run r;
  ChildProcess p;
  std::vector<std::string> argv = {build_path("app/voicebridge")};
  argv.insert(argv.end(), args.begin(), args.end());
  if (!p.start(argv, env, &r.describe)) return r;
  // A setting error is found before anything starts; 10 s only bounds a service that would run.
  r.exited = p.wait_exit(10000);
  if (!r.exited) p.kill_now();
  r.status = p.exit_status();
  r.out = p.out();
  r.err = p.stderr_text();
  r.describe = (r.exited ? "" : "STILL RUNNING AFTER 10 s; ") + p.describe();
  return r;
}

bool contains(const std::string &haystack, const std::string &needle) {
  return haystack.find(needle) != std::string::npos;
}

// Exactly one non-empty line.
bool one_line(const std::string &s) {
  size_t nl = s.find('\n');
  return nl != std::string::npos && nl > 0 && nl == s.size() - 1;
}

// A TCP port that is taken (listening) while the returned socket is open.
int occupy_port(int *port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || bind(fd, (sockaddr *)&a, sizeof a) != 0 || listen(fd, 1) != 0 || getsockname(fd, (sockaddr *)&a, &len) != 0)
    return -1;
  *port = ntohs(a.sin_port);
  return fd;
}

}  // namespace

GST_START_TEST(test_help) {
  Run r = run_voicebridge({"--help"});
  fail_unless(r.exited && r.status == 0, "--help: %s", r.describe.c_str());
  fail_unless(g_str_has_prefix(r.out.c_str(), "Usage:"), "--help does not start with Usage:\n%s", r.out.c_str());
  for (const char *item : {"--listen", "--control-token", "--max-calls", "--max-body-bytes", "--ice-addresses",
                           "--api-key", "--realtime-url", "--media-timeout-s", "--max-call-s", "--drain-timeout-s",
                           "--log-format", "--config", "VOICEBRIDGE_LISTEN", "OPENAI_API_KEY", "unix:"})
    fail_unless(contains(r.out, item), "--help does not mention %s:\n%s", item, r.out.c_str());
  fail_unless(r.err.empty(), "--help wrote to stderr: %s", r.err.c_str());
}
GST_END_TEST;

GST_START_TEST(test_bad_option) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--bogus"}, "--bogus"},
      {{"--listen"}, "--listen"},          // missing value
      {{"--max-calls"}, "--max-calls"},    // missing value
      {{"stray-argument"}, "stray-argument"},
  };
  for (const auto &c : cases) {
    Run r = run_voicebridge(c.first);
    fail_unless(r.exited && r.status == 2, "%s: expected exit 2: %s", c.first[0].c_str(), r.describe.c_str());
    fail_unless(one_line(r.err) && contains(r.err, c.second), "%s: not one line naming it: '%s'", c.first[0].c_str(),
                r.err.c_str());
    fail_unless(r.out.empty(), "%s: wrote to stdout: %s", c.first[0].c_str(), r.out.c_str());
  }
}
GST_END_TEST;

// Values that parse as text but cannot work; the listen cases are found only when binding.
GST_START_TEST(test_unusable_settings) {
  TempDir dir;
  int busy_port = 0;
  int busy_fd = occupy_port(&busy_port);
  fail_unless(busy_fd >= 0, "cannot occupy a port");
  struct Case {
    std::vector<std::string> args;
    std::map<std::string, std::string> env;
    std::vector<std::string> names;  // the message must contain one of these
  };
  const std::vector<Case> cases = {
      {{"--max-calls", "0"}, {}, {"--max-calls"}},
      {{"--max-calls", "many"}, {}, {"--max-calls"}},
      {{"--media-timeout-s", "0"}, {}, {"--media-timeout-s"}},
      {{"--max-body-bytes", "10"}, {}, {"--max-body-bytes"}},
      {{"--ice-addresses", "not-an-ip"}, {}, {"--ice-addresses"}},
      {{"--listen", "no-port-here"}, {}, {"--listen"}},
      {{"--realtime-url", "http://example.com/v1/realtime"}, {}, {"--realtime-url"}},
      {{}, {{"VOICEBRIDGE_MAX_CALLS", "0"}}, {"VOICEBRIDGE_MAX_CALLS", "--max-calls"}},
      {{"--listen", "unix:" + dir.file("no-such-dir/vb.sock")}, {}, {"--listen"}},
      {{"--listen", "unix:/proc/vb-test.sock"}, {}, {"--listen"}},
      {{"--listen", "127.0.0.1:" + std::to_string(busy_port)}, {}, {"--listen"}},
  };
  for (const auto &c : cases) {
    std::vector<std::string> args = c.args;
    bool sets_url = std::find(args.begin(), args.end(), "--realtime-url") != args.end();
    if (!sets_url) args.insert(args.end(), {"--realtime-url", kUnusedRealtimeUrl});
    Run r = run_voicebridge(args, c.env);
    std::string what = c.args.empty() ? c.env.begin()->first + "=" + c.env.begin()->second
                                      : c.args[0] + " " + c.args[1];
    fail_unless(r.exited && r.status == 2, "%s: expected exit 2: %s", what.c_str(), r.describe.c_str());
    bool named = std::any_of(c.names.begin(), c.names.end(), [&](const std::string &n) { return contains(r.err, n); });
    fail_unless(one_line(r.err) && named, "%s: not one line naming the setting: '%s'", what.c_str(), r.err.c_str());
  }
  close(busy_fd);
}
GST_END_TEST;

// --listen unix:PATH serves the API on a socket (here: the probes and a whole call), and removes the
// socket file at exit.
GST_START_TEST(test_unix_socket_listener) {
  TempDir dir;
  std::string path = dir.file("vb.sock");
  fake_realtime::Server fake;
  std::string error;
  fail_unless(fake.start(0, &error), "fake server: %s", error.c_str());
  Service vb;
  fail_unless(vb.start(fake.url(), {}, &error, "unix:" + path), "%s", error.c_str());
  struct stat st;
  fail_unless(stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode), "%s is not a socket", path.c_str());
  fail_unless(vb.events("SERVICE_LISTENING").at(0).json.str("listen") == "unix:" + path, "%s",
              vb.events("SERVICE_LISTENING").at(0).line.c_str());

  Http http = vb.http();
  HttpResponse health = http.request("GET", "/healthz");
  fail_unless(health.status == 200 && health.json().str("status") == "ok" && health.json().num("active_calls") == 0,
              "healthz over the socket: %s", health.describe().c_str());
  fail_unless(http.request("GET", "/readyz").status == 200, "readyz over the socket");

  CallerResult call = run_caller("unix:" + path, {"--duration", "1", "--call-id", "unix-1"}, 20000);
  fail_unless(call.exited && call.exit_status == 0 && call.report.num("rtp_packets") > 0, "a call over the socket: %s",
              call.describe.c_str());
  HttpResponse c = http.request("GET", "/v1/calls/unix-1");
  fail_unless(c.json().str("state") == "ended" && c.json().str("end_reason") == "hangup", "%s", c.describe().c_str());

  fail_unless(vb.stop(5000), "no exit on SIGTERM: %s", vb.process().describe().c_str());
  fail_unless(vb.process().exit_status() == 0, "%s", vb.process().describe().c_str());
  fail_unless(stat(path.c_str(), &st) != 0, "the socket file is left behind");
}
GST_END_TEST;

static Suite *service_cli_suite(void) {
  Suite *s = suite_create("service_cli");
  TCase *tc = tcase_create("cli");
  tcase_set_timeout(tc, 40);
  tcase_add_test(tc, test_help);
  tcase_add_test(tc, test_bad_option);
  tcase_add_test(tc, test_unusable_settings);
  tcase_add_test(tc, test_unix_socket_listener);
  suite_add_tcase(s, tc);
  return s;
}

GST_CHECK_MAIN(service_cli);
