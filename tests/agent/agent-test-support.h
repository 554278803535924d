// What the agent tests share: a fake HTTP service for the operator's hooks (call config, tool
// webhook, transcript receiver), child processes read line by line (voicebridge, voicebridge-call),
// bounded waits that keep the default main context running, and JSON access.
//
// Everything runs on the test's main thread and its default GMainContext, as the code under test
// does; every wait iterates that context, so the fake service answers while a test waits.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

namespace agent_test {

// Iterates the default main context until pred() is true or timeout_ms passed; pred()'s last value.
bool wait_until(const std::function<bool()> &pred, int timeout_ms);
// Iterates the default main context for ms.
void run_for(int ms);

// ---- JSON ----

// A parsed JSON document (nullptr root when the text is not JSON).
class Json {
 public:
  explicit Json(const std::string &text);
  ~Json();
  Json(const Json &) = delete;
  Json &operator=(const Json &) = delete;
  JsonNode *root() const { return root_; }
  JsonObject *object() const;  // nullptr unless the root is an object

 private:
  JsonNode *root_ = nullptr;
};

// Member access on an object node; fallbacks when missing or of another type.
JsonNode *member(JsonObject *o, const char *name);
std::string str(JsonObject *o, const char *name, const std::string &fallback = "");
double num(JsonObject *o, const char *name, double fallback = -1);
JsonObject *obj(JsonObject *o, const char *name);
JsonArray *arr(JsonObject *o, const char *name);

// ---- the operator's services ----

struct HttpRequestRecord {
  std::string path;
  std::string body;
  int64_t mono_us = 0;
};

struct HttpReplySpec {
  int status = 200;
  std::string body = "{}";
  int delay_ms = 0;  // answer this much later (a slow or hung service)
};

// A SoupServer on 127.0.0.1 (a free port) that records every request and answers with what
// `reply` returns for it (default: 200 {}).
class FakeService {
 public:
  using Replier = std::function<HttpReplySpec(const HttpRequestRecord &)>;
  FakeService();
  ~FakeService();
  FakeService(const FakeService &) = delete;
  FakeService &operator=(const FakeService &) = delete;

  bool start(std::string *error = nullptr);
  std::string url(const std::string &path) const;  // "http://127.0.0.1:<port><path>"
  void set_replier(Replier replier) { replier_ = std::move(replier); }
  // Every path answers this.
  void set_reply(const HttpReplySpec &spec) {
    replier_ = [spec](const HttpRequestRecord &) { return spec; };
  }
  const std::vector<HttpRequestRecord> &requests() const { return requests_; }

 private:
  static void on_request(SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
                         gpointer self);
  SoupServer *server_ = nullptr;
  int port_ = 0;
  Replier replier_;
  std::vector<HttpRequestRecord> requests_;
  std::vector<GSource *> delayed_;  // delayed replies (owned refs; destroyed with the service)
};

// ---- child processes ----

struct Line {
  int64_t mono_us = 0;
  std::string text;
};

// A child process whose stderr is read line by line as it arrives (on a thread), and whose stdout is
// collected. The environment is the test's, minus every voicebridge/OpenAI/WhatsApp setting, plus
// `env`. Killed (SIGKILL) when the object goes away, and when the test process dies.
class Child {
 public:
  Child() = default;
  ~Child();
  Child(const Child &) = delete;
  Child &operator=(const Child &) = delete;

  bool start(const std::vector<std::string> &argv, const std::map<std::string, std::string> &env,
             std::string *error);
  // Waits (iterating the main context) for a stderr line at index >= from that satisfies pred.
  bool wait_line(const std::function<bool(const std::string &)> &pred, int timeout_ms, Line *found = nullptr,
                 size_t from = 0);
  bool wait_exit(int timeout_ms);  // true when it exited; output is complete then
  void terminate();                // SIGTERM
  void kill_now();                 // SIGKILL and reap
  bool exited() const { return exited_; }
  int exit_status() const { return exit_status_; }
  std::vector<Line> lines() const;
  std::string out() const;
  std::string describe() const;  // exit state and output tails, for failure messages

 private:
  GSubprocess *proc_ = nullptr;
  std::thread err_reader_, out_reader_;
  mutable std::mutex mutex_;
  std::vector<Line> lines_;
  std::string out_;
  bool exited_ = false;
  int exit_status_ = -1;
};

// ---- the binaries under test ----

std::string build_path(const std::string &relative);  // $VOICEBRIDGE_BUILD_ROOT/relative

// The voicebridge service as a child with JSON logs on stderr, listening on a free loopback port.
class Service {
 public:
  // realtime_url: the fake Realtime server; extra: more options (the agent settings).
  bool start(const std::string &realtime_url, const std::vector<std::string> &extra, std::string *error);
  const std::string &base_url() const { return base_url_; }  // "http://127.0.0.1:<port>"
  Child &process() { return child_; }
  // Waits for a log line with this event (and call_id, when given); returns its parsed text.
  bool wait_event(const std::string &event, const std::string &call_id, int timeout_ms, std::string *line = nullptr,
                  int64_t *mono_us = nullptr);
  // Every log line with this event (and call_id, when given), in order.
  std::vector<Line> events(const std::string &event, const std::string &call_id = "") const;

 private:
  Child child_;
  std::string base_url_;
};

// voicebridge-call arguments for a call at `base_url` (JSON report, quiet).
std::vector<std::string> caller_argv(const std::string &base_url, const std::vector<std::string> &extra);

// A synchronous GET on the test's thread (the service under test is another process): status and
// body, status 0 on failure.
int http_get(const std::string &url, std::string *body);

}  // namespace agent_test
