#include "wa-harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <set>
#include <sstream>

#include <glib.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

extern char **environ;

namespace wa_test {

const char *const kToken = "test-graph-token-7f3a9c";
const char *const kAppSecret = "test-app-secret-51d2e8";
const char *const kVerifyToken = "test-verify-token-c04b";
const char *const kPhoneId = "123";

namespace {

// Children still running when check's fork mode exit()s a failed test.
std::mutex g_children_mutex;
std::set<pid_t> g_children;

void kill_children_at_exit() {
  std::lock_guard<std::mutex> lock(g_children_mutex);
  for (pid_t pid : g_children) kill(pid, SIGKILL);
}

std::string node_text(JsonNode *node) {
  if (JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == G_TYPE_STRING) return json_node_get_string(node);
  gchar *text = json_to_string(node, FALSE);
  std::string out(text);
  g_free(text);
  return out;
}

std::string to_text(JsonNode *root) {
  gchar *text = json_to_string(root, FALSE);
  std::string out(text);
  g_free(text);
  return out;
}

JsonObject *obj(JsonObject *o, const char *name) { return json_object_get_object_member(o, name); }

JsonObject *first_in(JsonObject *o, const char *array) {
  return json_node_get_object(json_array_get_element(json_object_get_array_member(o, array), 0));
}

// The fixture's first change value: entry[0].changes[0].value.
JsonObject *fixture_value(JsonNode *root) {
  JsonObject *entry = first_in(json_node_get_object(root), "entry");
  return obj(first_in(entry, "changes"), "value");
}

JsonNode *parse_fixture(const std::string &name) {
  std::string text = fixture(name);
  JsonParser *parser = json_parser_new();
  JsonNode *root = nullptr;
  if (json_parser_load_from_data(parser, text.data(), (gssize)text.size(), nullptr))
    root = json_node_copy(json_parser_get_root(parser));
  g_object_unref(parser);
  if (!root) g_error("fixture %s is not JSON", name.c_str());
  return root;
}

std::string ts_text(long long ts) { return std::to_string(ts ? ts : now_s()); }

std::vector<std::string> sdp_lines(const std::string &sdp) {
  std::vector<std::string> out;
  std::string line;
  std::istringstream in(sdp);
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

}  // namespace

std::string fixture(const std::string &name) {
  const char *dir = g_getenv("VOICEBRIDGE_FIXTURES");
  std::string path = std::string(dir ? dir : "tests/fixtures") + "/whatsapp/" + name;
  gchar *text = nullptr;
  gsize size = 0;
  if (!g_file_get_contents(path.c_str(), &text, &size, nullptr)) g_error("cannot read fixture %s", path.c_str());
  std::string out(text, size);
  g_free(text);
  return out;
}

long long now_s() { return g_get_real_time() / G_USEC_PER_SEC; }
int64_t now_us() { return g_get_monotonic_time(); }

// ---- HTTP ----

std::string HttpResponse::describe() const {
  if (status == 0) return "no response: " + error;
  return "HTTP " + std::to_string(status) + " " + body.substr(0, 800);
}

HttpResponse http(const std::string &method, const std::string &url, const std::string &body,
                  const std::map<std::string, std::string> &headers) {
  HttpResponse r;
  SoupSession *session = soup_session_new_with_options("timeout", 20u, nullptr);
  SoupMessage *msg = soup_message_new(method.c_str(), url.c_str());
  if (!msg) {
    r.error = "bad URL " + url;
    g_object_unref(session);
    return r;
  }
  for (const auto &kv : headers)
    soup_message_headers_replace(soup_message_get_request_headers(msg), kv.first.c_str(), kv.second.c_str());
  if (!body.empty() || method == "POST") {
    GBytes *bytes = g_bytes_new(body.data(), body.size());
    soup_message_set_request_body_from_bytes(msg, "application/json", bytes);
    g_bytes_unref(bytes);
  }
  GError *err = nullptr;
  GBytes *reply = soup_session_send_and_read(session, msg, nullptr, &err);
  if (!reply) {
    r.error = err ? err->message : "failed";
    g_clear_error(&err);
  } else {
    r.status = (int)soup_message_get_status(msg);
    gsize size = 0;
    const char *data = static_cast<const char *>(g_bytes_get_data(reply, &size));
    r.body.assign(data ? data : "", size);
    const char *ct = soup_message_headers_get_content_type(soup_message_get_response_headers(msg), nullptr);
    r.content_type = ct ? ct : "";
    g_bytes_unref(reply);
  }
  g_object_unref(msg);
  g_object_unref(session);
  return r;
}

std::string json_path(const std::string &json, const std::string &path) {
  JsonParser *parser = json_parser_new();
  std::string out;
  if (json_parser_load_from_data(parser, json.data(), (gssize)json.size(), nullptr)) {
    JsonNode *node = json_parser_get_root(parser);
    gchar **parts = g_strsplit(path.c_str(), ".", -1);
    for (gchar **p = parts; *p && node; p++) {
      if (!JSON_NODE_HOLDS_OBJECT(node) || !json_object_has_member(json_node_get_object(node), *p)) node = nullptr;
      else node = json_object_get_member(json_node_get_object(node), *p);
    }
    g_strfreev(parts);
    if (node) out = node_text(node);
  }
  g_object_unref(parser);
  return out;
}

// ---- the service ----

Service::~Service() { stop(); }

bool Service::start(const std::string &realtime_url, const std::string &graph_url,
                    const std::vector<std::string> &extra, std::string *error) {
  const char *root = g_getenv("VOICEBRIDGE_BUILD_ROOT");
  std::string binary = std::string(root ? root : ".") + "/app/voicebridge";
  std::vector<std::string> args = {binary,
                                   "--listen", "127.0.0.1:0",
                                   "--ice-addresses", "127.0.0.1",
                                   "--realtime-url", realtime_url,
                                   "--log-format", "json",
                                   "--log-level", "debug",
                                   "--whatsapp-token", kToken,
                                   "--whatsapp-app-secret", kAppSecret,
                                   "--whatsapp-verify-token", kVerifyToken,
                                   "--whatsapp-phone-number-id", kPhoneId,
                                   "--whatsapp-graph-url", graph_url};
  args.insert(args.end(), extra.begin(), extra.end());

  // The developer's shell must not change what is tested: no inherited service settings.
  std::vector<std::string> env;
  for (char **e = environ; *e; e++) {
    std::string kv = *e;
    if (kv.rfind("VOICEBRIDGE_", 0) == 0 || kv.rfind("OPENAI_", 0) == 0 || kv.rfind("WHATSAPP_", 0) == 0) continue;
    env.push_back(kv);
  }
  std::vector<char *> argv, envp;
  for (auto &a : args) argv.push_back(const_cast<char *>(a.c_str()));
  argv.push_back(nullptr);
  for (auto &e : env) envp.push_back(const_cast<char *>(e.c_str()));
  envp.push_back(nullptr);

  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) {
    *error = "pipe failed";
    return false;
  }
  static bool registered = false;
  if (!registered) {
    atexit(kill_children_at_exit);
    registered = true;
  }
  pid_t parent = getpid();
  pid_ = fork();
  if (pid_ == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    setpgid(0, 0);
    int devnull = open("/dev/null", O_RDWR);
    dup2(devnull, 0);
    dup2(devnull, 1);
    dup2(pipe_fds[1], 2);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  close(pipe_fds[1]);
  if (pid_ < 0) {
    close(pipe_fds[0]);
    *error = "fork failed";
    return false;
  }
  {
    std::lock_guard<std::mutex> lock(g_children_mutex);
    g_children.insert(pid_);
  }
  reader_ = std::thread(&Service::read_stderr, this, pipe_fds[0]);
  auto listening = wait_event("SERVICE_LISTENING", "", 15000);
  if (!listening) {
    *error = "voicebridge did not log SERVICE_LISTENING; log:\n" + log_tail();
    return false;
  }
  base_url_ = listening->get("listen");
  if (base_url_.rfind("http://", 0) != 0) {
    *error = "unexpected listen field: " + base_url_;
    return false;
  }
  return true;
}

void Service::read_stderr(int fd) {
  std::string pending;
  char buf[8192];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    pending.append(buf, (size_t)n);
    size_t nl;
    while ((nl = pending.find('\n')) != std::string::npos) {
      LogLine line;
      line.mono_us = g_get_monotonic_time();
      line.text = pending.substr(0, nl);
      pending.erase(0, nl + 1);
      JsonParser *parser = json_parser_new();
      if (json_parser_load_from_data(parser, line.text.data(), (gssize)line.text.size(), nullptr) &&
          JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser))) {
        JsonObject *o = json_node_get_object(json_parser_get_root(parser));
        GList *members = json_object_get_members(o);
        for (GList *m = members; m; m = m->next) {
          const char *key = static_cast<const char *>(m->data);
          line.fields[key] = node_text(json_object_get_member(o, key));
        }
        g_list_free(members);
      }
      g_object_unref(parser);
      std::lock_guard<std::mutex> lock(mutex_);
      lines_.push_back(std::move(line));
    }
  }
  close(fd);
}

void Service::stop() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    int status = 0;
    gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
    bool reaped = false;
    while (g_get_monotonic_time() < deadline) {
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        reaped = true;
        break;
      }
      g_usleep(10000);
    }
    if (!reaped) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
    }
    std::lock_guard<std::mutex> lock(g_children_mutex);
    g_children.erase(pid_);
    pid_ = -1;
  }
  if (reader_.joinable()) reader_.join();
}

HttpResponse Service::get(const std::string &path, const std::map<std::string, std::string> &headers) const {
  return http("GET", base_url_ + path, "", headers);
}

HttpResponse Service::post(const std::string &path, const std::string &body,
                           const std::map<std::string, std::string> &headers) const {
  return http("POST", base_url_ + path, body, headers);
}

HttpResponse Service::del(const std::string &path, const std::map<std::string, std::string> &headers) const {
  return http("DELETE", base_url_ + path, "", headers);
}

HttpResponse Service::post_webhook(const std::string &body, bool sign) const {
  std::map<std::string, std::string> headers;
  if (sign) headers["X-Hub-Signature-256"] = signature(body, kAppSecret);
  return post("/whatsapp/webhook", body, headers);
}

std::vector<LogLine> Service::events(const std::string &name, const std::string &call_id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<LogLine> out;
  for (const auto &l : lines_)
    if ((name.empty() || l.event() == name) && (call_id.empty() || l.call_id() == call_id)) out.push_back(l);
  return out;
}

std::optional<LogLine> Service::wait_event(const std::string &name, const std::string &call_id, int timeout_ms,
                                           size_t nth) const {
  gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
  for (;;) {
    auto found = events(name, call_id);
    if (found.size() >= nth) return found[nth - 1];
    if (g_get_monotonic_time() > deadline) return std::nullopt;
    g_usleep(5000);
  }
}

std::string Service::log_text() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string out;
  for (const auto &l : lines_) out += l.text + "\n";
  return out;
}

std::string Service::log_tail(size_t chars) const {
  std::string text = log_text();
  return text.size() > chars ? "…" + text.substr(text.size() - chars) : text;
}

// ---- webhooks ----

std::string signature(const std::string &body, const std::string &secret) {
  gchar *hex = g_compute_hmac_for_data(G_CHECKSUM_SHA256, reinterpret_cast<const guchar *>(secret.data()),
                                       secret.size(), reinterpret_cast<const guchar *>(body.data()), body.size());
  std::string out = std::string("sha256=") + hex;
  g_free(hex);
  return out;
}

std::string connect_webhook(const std::string &id, const std::string &offer_sdp, long long ts,
                            const std::string &from) {
  JsonNode *root = parse_fixture("webhook-connect-user-initiated.json");
  JsonObject *value = fixture_value(root);
  JsonObject *call = first_in(value, "calls");
  json_object_set_string_member(call, "id", id.c_str());
  json_object_set_string_member(call, "from", from.c_str());
  json_object_set_string_member(call, "timestamp", ts_text(ts).c_str());
  json_object_set_string_member(obj(call, "session"), "sdp", offer_sdp.c_str());
  JsonObject *contact = first_in(value, "contacts");
  json_object_set_string_member(contact, "wa_id", from.c_str());
  json_object_set_string_member(obj(contact, "profile"), "name", "Test Caller");
  json_object_set_string_member(obj(value, "metadata"), "phone_number_id", kPhoneId);
  std::string out = to_text(root);
  json_node_unref(root);
  return out;
}

std::string terminate_webhook(const std::string &id, long long ts, bool with_error) {
  JsonNode *root = parse_fixture("webhook-terminate-failed.json");
  JsonObject *value = fixture_value(root);
  JsonObject *call = first_in(value, "calls");
  json_object_set_string_member(call, "id", id.c_str());
  json_object_set_string_member(call, "timestamp", ts_text(ts).c_str());
  json_object_set_string_member(obj(value, "metadata"), "phone_number_id", kPhoneId);
  if (!with_error) {
    json_object_remove_member(call, "errors");
    json_object_remove_member(value, "errors");
    json_object_set_string_member(call, "status", "COMPLETED");
  }
  std::string out = to_text(root);
  json_node_unref(root);
  return out;
}

std::string bic_connect_webhook(const std::string &id, const std::string &answer_sdp, long long ts) {
  // The legacy connection.webrtc.sdp stays, in its JSON-in-a-string form, but holds an SDP without
  // media: a service that read it instead of session.sdp could not apply it.
  JsonNode *root = parse_fixture("webhook-connect-business-initiated.json");
  JsonObject *value = fixture_value(root);
  JsonObject *call = first_in(value, "calls");
  json_object_set_string_member(obj(obj(call, "connection"), "webrtc"), "sdp",
                                "{\"sdp\":\"v=0\\r\\no=- 1 2 IN IP4 127.0.0.1\\r\\ns=-\\r\\nt=0 0\\r\\n\",\"type\":\"answer\"}");
  json_object_set_string_member(call, "id", id.c_str());
  json_object_set_string_member(call, "timestamp", ts_text(ts).c_str());
  json_object_set_string_member(obj(call, "session"), "sdp", answer_sdp.c_str());
  json_object_set_string_member(obj(value, "metadata"), "phone_number_id", kPhoneId);
  std::string out = to_text(root);
  json_node_unref(root);
  return out;
}

std::string status_webhook(const std::string &id, const std::string &status, long long ts) {
  JsonNode *root = parse_fixture("webhook-status-ringing.json");
  JsonObject *value = fixture_value(root);
  JsonObject *s = first_in(value, "statuses");
  json_object_set_string_member(s, "id", id.c_str());
  json_object_set_string_member(s, "status", status.c_str());
  json_object_set_string_member(s, "timestamp", ts_text(ts).c_str());
  json_object_set_string_member(obj(value, "metadata"), "phone_number_id", kPhoneId);
  std::string out = to_text(root);
  json_node_unref(root);
  return out;
}

std::string merge_webhooks(const std::vector<std::string> &bodies) {
  JsonArray *entries = json_array_new();
  for (const auto &b : bodies) {
    JsonParser *parser = json_parser_new();
    if (json_parser_load_from_data(parser, b.data(), (gssize)b.size(), nullptr)) {
      JsonArray *a = json_object_get_array_member(json_node_get_object(json_parser_get_root(parser)), "entry");
      for (guint i = 0; i < json_array_get_length(a); i++)
        json_array_add_element(entries, json_node_copy(json_array_get_element(a, i)));
    }
    g_object_unref(parser);
  }
  JsonObject *o = json_object_new();
  json_object_set_string_member(o, "object", "whatsapp_business_account");
  json_object_set_array_member(o, "entry", entries);
  JsonNode *root = json_node_new(JSON_NODE_OBJECT);
  json_node_take_object(root, o);
  std::string out = to_text(root);
  json_node_unref(root);
  return out;
}

// ---- SDP ----

SilentPort::SilentPort() {
  fd_ = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (fd_ >= 0 && bind(fd_, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0 &&
      getsockname(fd_, reinterpret_cast<sockaddr *>(&a), &len) == 0)
    port_ = ntohs(a.sin_port);
}

SilentPort::~SilentPort() {
  if (fd_ >= 0) close(fd_);
}

std::string local_offer(int port) {
  std::string out;
  bool candidate_done = false;
  for (const auto &line : sdp_lines(fixture("offer-user-initiated-1.sdp"))) {
    std::string l = line;
    if (l.rfind("m=audio ", 0) == 0) {
      l = "m=audio " + std::to_string(port) + l.substr(l.find(' ', 8));
    } else if (l.rfind("c=IN IP4 ", 0) == 0) {
      l = "c=IN IP4 127.0.0.1";
    } else if (l.rfind("a=candidate:", 0) == 0) {
      if (candidate_done) continue;
      candidate_done = true;
      l = "a=candidate:3935165743 1 udp 2122260223 127.0.0.1 " + std::to_string(port) +
          " typ host generation 0 network-cost 50";
    }
    out += l + "\r\n";
  }
  return out;
}

std::string sdp_mid(const std::string &sdp) {
  for (const auto &l : sdp_lines(sdp))
    if (l.rfind("a=mid:", 0) == 0) return l.substr(6);
  return "";
}

std::string meta_answer(const std::string &offer, int port) {
  std::string mid = sdp_mid(offer);
  std::string p = std::to_string(port);
  return "v=0\r\n"
         "o=- 1749196894817 2 IN IP4 127.0.0.1\r\n"
         "s=-\r\n"
         "t=0 0\r\n"
         "a=group:BUNDLE " + mid + "\r\n"
         "a=ice-lite\r\n"
         "m=audio " + p + " UDP/TLS/RTP/SAVPF 111 126\r\n"
         "c=IN IP4 127.0.0.1\r\n"
         "a=candidate:2754936280 1 udp 2113937151 127.0.0.1 " + p + " typ host generation 0 network-cost 50\r\n"
         "a=ice-ufrag:JHqAXFH4HcAY/8\r\n"
         "a=ice-pwd:1RkFlOeZBzOYcxVER4hF4w==\r\n"
         "a=fingerprint:sha-256 9C:97:5C:C3:68:9D:48:A6:AC:D6:3B:DB:27:F9:0B:8C:D4:48:DC:BC:D1:05:11:7A:C7:3D:5C:69:A8:89:F0:F6\r\n"
         "a=setup:active\r\n"
         "a=mid:" + mid + "\r\n"
         "a=sendrecv\r\n"
         "a=rtcp-mux\r\n"
         "a=rtpmap:111 opus/48000/2\r\n"
         "a=fmtp:111 minptime=10;useinbandfec=1\r\n"
         "a=rtpmap:126 telephone-event/8000\r\n";
}

}  // namespace wa_test
