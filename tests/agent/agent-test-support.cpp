#include "agent-test-support.h"

#include <signal.h>
#include <sys/prctl.h>

#include <cstring>

namespace agent_test {

bool wait_until(const std::function<bool()> &pred, int timeout_ms) {
  gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
  while (!pred()) {
    if (g_get_monotonic_time() >= deadline) return pred();
    // Non-blocking iterations with a short sleep: sources on the context (fake services, timers of
    // the code under test) run promptly, and conditions set by other threads are seen within 2 ms.
    while (g_main_context_iteration(nullptr, FALSE)) {
    }
    g_usleep(2000);
  }
  return true;
}

void run_for(int ms) {
  wait_until([] { return false; }, ms);
}

// ---- JSON ----

Json::Json(const std::string &text) {
  if (!text.empty()) root_ = json_from_string(text.c_str(), nullptr);
}

Json::~Json() {
  if (root_) json_node_unref(root_);
}

JsonObject *Json::object() const { return root_ && JSON_NODE_HOLDS_OBJECT(root_) ? json_node_get_object(root_) : nullptr; }

JsonNode *member(JsonObject *o, const char *name) { return o ? json_object_get_member(o, name) : nullptr; }

std::string str(JsonObject *o, const char *name, const std::string &fallback) {
  JsonNode *n = member(o, name);
  if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING) return fallback;
  return json_node_get_string(n);
}

double num(JsonObject *o, const char *name, double fallback) {
  JsonNode *n = member(o, name);
  if (!n || !JSON_NODE_HOLDS_VALUE(n)) return fallback;
  GType t = json_node_get_value_type(n);
  if (t == G_TYPE_INT64) return (double)json_node_get_int(n);
  if (t == G_TYPE_DOUBLE) return json_node_get_double(n);
  return fallback;
}

JsonObject *obj(JsonObject *o, const char *name) {
  JsonNode *n = member(o, name);
  return n && JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : nullptr;
}

JsonArray *arr(JsonObject *o, const char *name) {
  JsonNode *n = member(o, name);
  return n && JSON_NODE_HOLDS_ARRAY(n) ? json_node_get_array(n) : nullptr;
}

// ---- FakeService ----

FakeService::FakeService() {
  replier_ = [](const HttpRequestRecord &) { return HttpReplySpec(); };
}

FakeService::~FakeService() {
  // Pending delayed replies: their sources hold the messages; destroying them drops those refs.
  for (GSource *s : delayed_) {
    g_source_destroy(s);
    g_source_unref(s);
  }
  if (server_) {
    soup_server_disconnect(server_);
    g_object_unref(server_);
  }
}

bool FakeService::start(std::string *error) {
  server_ = soup_server_new(nullptr, nullptr);
  soup_server_add_handler(server_, nullptr, &FakeService::on_request, this, nullptr);
  GError *err = nullptr;
  if (!soup_server_listen_local(server_, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &err)) {
    if (error) *error = err->message;
    g_error_free(err);
    return false;
  }
  GSList *uris = soup_server_get_uris(server_);
  if (uris) port_ = g_uri_get_port(static_cast<GUri *>(uris->data));
  g_slist_free_full(uris, (GDestroyNotify)g_uri_unref);
  return port_ > 0;
}

std::string FakeService::url(const std::string &path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

namespace {

void answer(SoupServerMessage *msg, const HttpReplySpec &spec) {
  soup_server_message_set_status(msg, (guint)spec.status, nullptr);
  soup_server_message_set_response(msg, "application/json", SOUP_MEMORY_COPY, spec.body.data(), spec.body.size());
}

struct Delayed {
  SoupServerMessage *msg;
  HttpReplySpec spec;
};

}  // namespace

void FakeService::on_request(SoupServer *, SoupServerMessage *msg, const char *path, GHashTable *, gpointer self) {
  auto *service = static_cast<FakeService *>(self);
  SoupMessageBody *body = soup_server_message_get_request_body(msg);
  HttpRequestRecord record;
  record.path = path;
  if (body && body->data) record.body.assign(body->data, (size_t)body->length);
  record.mono_us = g_get_monotonic_time();
  service->requests_.push_back(record);
  HttpReplySpec spec = service->replier_(record);
  if (spec.delay_ms <= 0) {
    answer(msg, spec);
    return;
  }
  soup_server_message_pause(msg);
  GSource *source = g_timeout_source_new((guint)spec.delay_ms);
  g_source_set_callback(
      source,
      [](gpointer data) -> gboolean {
        auto *d = static_cast<Delayed *>(data);
        answer(d->msg, d->spec);
        soup_server_message_unpause(d->msg);
        return G_SOURCE_REMOVE;
      },
      new Delayed{static_cast<SoupServerMessage *>(g_object_ref(msg)), spec},
      [](gpointer data) {
        auto *d = static_cast<Delayed *>(data);
        g_object_unref(d->msg);
        delete d;
      });
  g_source_attach(source, nullptr);
  service->delayed_.push_back(source);  // keeps a ref: destroyed with the service
}

// ---- Child ----

namespace {

void child_setup(gpointer) {
  // The check framework ends a failing test with exit(), without destructors: the child must not
  // outlive the test process.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
}

bool is_setting(const char *entry) {
  for (const char *prefix : {"VOICEBRIDGE_", "OPENAI_", "WHATSAPP_"})
    if (g_str_has_prefix(entry, prefix)) return true;
  return false;
}

}  // namespace

Child::~Child() { kill_now(); }

bool Child::start(const std::vector<std::string> &argv, const std::map<std::string, std::string> &env,
                  std::string *error) {
  GSubprocessLauncher *launcher =
      g_subprocess_launcher_new((GSubprocessFlags)(G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE));
  gchar **environ_now = g_get_environ();
  std::vector<gchar *> kept;
  for (gchar **e = environ_now; *e; e++)
    if (!is_setting(*e)) kept.push_back(*e);
  kept.push_back(nullptr);
  g_subprocess_launcher_set_environ(launcher, kept.data());
  g_strfreev(environ_now);
  for (const auto &kv : env) g_subprocess_launcher_setenv(launcher, kv.first.c_str(), kv.second.c_str(), TRUE);
  g_subprocess_launcher_set_child_setup(launcher, child_setup, nullptr, nullptr);
  std::vector<const gchar *> args;
  for (const auto &a : argv) args.push_back(a.c_str());
  args.push_back(nullptr);
  GError *err = nullptr;
  proc_ = g_subprocess_launcher_spawnv(launcher, args.data(), &err);
  g_object_unref(launcher);
  if (!proc_) {
    if (error) *error = err->message;
    g_error_free(err);
    return false;
  }
  GInputStream *err_stream = g_subprocess_get_stderr_pipe(proc_);
  GInputStream *out_stream = g_subprocess_get_stdout_pipe(proc_);
  // Blocking reads on threads: lines carry the time they arrived, whatever the test thread does.
  err_reader_ = std::thread([this, err_stream] {
    char buf[4096];
    std::string partial;
    for (;;) {
      gssize n = g_input_stream_read(err_stream, buf, sizeof buf, nullptr, nullptr);
      if (n <= 0) break;
      partial.append(buf, (size_t)n);
      size_t nl;
      while ((nl = partial.find('\n')) != std::string::npos) {
        std::lock_guard<std::mutex> lock(mutex_);
        lines_.push_back({g_get_monotonic_time(), partial.substr(0, nl)});
        partial.erase(0, nl + 1);
      }
    }
    std::lock_guard<std::mutex> lock(mutex_);
    if (!partial.empty()) lines_.push_back({g_get_monotonic_time(), partial});
  });
  out_reader_ = std::thread([this, out_stream] {
    char buf[4096];
    for (;;) {
      gssize n = g_input_stream_read(out_stream, buf, sizeof buf, nullptr, nullptr);
      if (n <= 0) break;
      std::lock_guard<std::mutex> lock(mutex_);
      out_.append(buf, (size_t)n);
    }
  });
  return true;
}

bool Child::wait_line(const std::function<bool(const std::string &)> &pred, int timeout_ms, Line *found,
                      size_t from) {
  size_t next = from;
  return wait_until(
      [&] {
        std::lock_guard<std::mutex> lock(mutex_);
        for (; next < lines_.size(); next++) {
          if (pred(lines_[next].text)) {
            if (found) *found = lines_[next];
            return true;
          }
        }
        return false;
      },
      timeout_ms);
}

bool Child::wait_exit(int timeout_ms) {
  if (!proc_) return true;
  if (!exited_) {
    bool done = wait_until(
        [this] {
          // Reaps without blocking: GSubprocess's own child watch may already have.
          if (g_subprocess_get_identifier(proc_) == nullptr) return true;
          return false;
        },
        timeout_ms);
    if (!done) return false;
    g_subprocess_wait(proc_, nullptr, nullptr);
    exited_ = true;
    exit_status_ = g_subprocess_get_if_exited(proc_) ? g_subprocess_get_exit_status(proc_) : -1;
  }
  if (err_reader_.joinable()) err_reader_.join();
  if (out_reader_.joinable()) out_reader_.join();
  return true;
}

void Child::terminate() {
  if (proc_ && !exited_) g_subprocess_send_signal(proc_, SIGTERM);
}

void Child::kill_now() {
  if (!proc_) return;
  if (!exited_) {
    g_subprocess_force_exit(proc_);
    g_subprocess_wait(proc_, nullptr, nullptr);
    exited_ = true;
    exit_status_ = -1;
  }
  if (err_reader_.joinable()) err_reader_.join();
  if (out_reader_.joinable()) out_reader_.join();
  g_object_unref(proc_);
  proc_ = nullptr;
}

std::vector<Line> Child::lines() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return lines_;
}

std::string Child::out() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return out_;
}

std::string Child::describe() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string err;
  for (const auto &l : lines_) err += l.text + "\n";
  if (err.size() > 6000) err = "…" + err.substr(err.size() - 6000);
  std::string state = exited_ ? "exit " + std::to_string(exit_status_) : std::string("running");
  return state + "\n--- stdout ---\n" + out_ + "\n--- stderr ---\n" + err;
}

// ---- the binaries ----

std::string build_path(const std::string &relative) {
  const char *root = g_getenv("VOICEBRIDGE_BUILD_ROOT");
  return std::string(root ? root : ".") + "/" + relative;
}

bool Service::start(const std::string &realtime_url, const std::vector<std::string> &extra, std::string *error) {
  std::vector<std::string> argv{build_path("app/voicebridge"), "--listen", "127.0.0.1:0", "--ice-addresses",
                                "127.0.0.1", "--realtime-url", realtime_url, "--log-format", "json"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  if (!child_.start(argv, {}, error)) return false;
  Line line;
  if (!child_.wait_line([](const std::string &l) { return l.find("\"SERVICE_LISTENING\"") != std::string::npos; },
                        15000, &line)) {
    *error = "no SERVICE_LISTENING within 15 s: " + child_.describe();
    return false;
  }
  Json j(line.text);
  std::string listen = str(j.object(), "listen");
  if (listen.rfind("http://", 0) != 0) {
    *error = "SERVICE_LISTENING without an http:// listen field: " + line.text;
    return false;
  }
  base_url_ = listen;
  return true;
}

namespace {

bool line_is(const std::string &text, const std::string &event, const std::string &call_id) {
  if (text.find("\"" + event + "\"") == std::string::npos) return false;
  Json j(text);
  return str(j.object(), "event") == event && (call_id.empty() || str(j.object(), "call_id") == call_id);
}

}  // namespace

bool Service::wait_event(const std::string &event, const std::string &call_id, int timeout_ms, std::string *line,
                         int64_t *mono_us) {
  Line found;
  bool ok = child_.wait_line([&](const std::string &l) { return line_is(l, event, call_id); }, timeout_ms, &found);
  if (ok && line) *line = found.text;
  if (ok && mono_us) *mono_us = found.mono_us;
  return ok;
}

std::vector<Line> Service::events(const std::string &event, const std::string &call_id) const {
  std::vector<Line> out;
  for (const auto &l : child_.lines())
    if (line_is(l.text, event, call_id)) out.push_back(l);
  return out;
}

std::vector<std::string> caller_argv(const std::string &base_url, const std::vector<std::string> &extra) {
  std::vector<std::string> argv{build_path("app/caller/voicebridge-call"), "--url", base_url, "--json", "--quiet"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

int http_get(const std::string &url, std::string *body) {
  SoupSession *session = soup_session_new();
  SoupMessage *msg = soup_message_new("GET", url.c_str());
  int status = 0;
  if (msg) {
    GBytes *bytes = soup_session_send_and_read(session, msg, nullptr, nullptr);
    if (bytes) {
      status = (int)soup_message_get_status(msg);
      gsize n = 0;
      const char *data = static_cast<const char *>(g_bytes_get_data(bytes, &n));
      body->assign(data ? data : "", n);
      g_bytes_unref(bytes);
    }
    g_object_unref(msg);
  }
  g_object_unref(session);
  return status;
}

}  // namespace agent_test
