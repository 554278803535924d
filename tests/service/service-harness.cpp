#include "service-harness.h"

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstring>

#include <unistd.h>

#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>
#include <libsoup/soup.h>

#include "audio-analysis.h"
#include "wav-file.h"

namespace svc_test {

// ---- files ----

namespace {
std::string env_or(const char *name, const char *fallback) {
  const char *v = g_getenv(name);
  return v && *v ? v : fallback;
}
}  // namespace

std::string build_path(const std::string &relative) { return env_or("VOICEBRIDGE_BUILD_ROOT", ".") + "/" + relative; }

std::string fixture_path(const std::string &relative) {
  return env_or("VOICEBRIDGE_FIXTURES", "tests/fixtures") + "/" + relative;
}

std::string read_file(const std::string &path) {
  gchar *text = nullptr;
  gsize len = 0;
  if (!g_file_get_contents(path.c_str(), &text, &len, nullptr)) return "";
  std::string out(text, len);
  g_free(text);
  return out;
}

namespace {

// Removes a directory and everything in it.
void remove_tree(const std::string &path) {
  GDir *d = g_dir_open(path.c_str(), 0, nullptr);
  if (d) {
    while (const gchar *name = g_dir_read_name(d)) {
      std::string child = path + "/" + name;
      if (g_file_test(child.c_str(), G_FILE_TEST_IS_DIR) && !g_file_test(child.c_str(), G_FILE_TEST_IS_SYMLINK))
        remove_tree(child);
      else
        g_unlink(child.c_str());
    }
    g_dir_close(d);
  }
  g_rmdir(path.c_str());
}

// Every TempDir lives under one directory per test program, made when the program starts and
// removed when it ends. check runs each test in a forked process and ends a failing one with
// _exit(), so a test's own destructors may not run; the program's (check's parent) do.
class TempRoot {
 public:
  TempRoot() : owner_(getpid()) {
    gchar *p = g_dir_make_tmp("vb-service-test-XXXXXX", nullptr);
    path_ = p ? p : g_get_tmp_dir();
    g_free(p);
  }
  ~TempRoot() {
    if (getpid() == owner_) remove_tree(path_);
  }
  const std::string &path() const { return path_; }

 private:
  pid_t owner_;
  std::string path_;
};

TempRoot g_temp_root;

}  // namespace

TempDir::TempDir() {
  std::string tmpl = g_temp_root.path() + "/test-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  gchar *made = g_mkdtemp(buf.data());
  path = made ? made : g_temp_root.path();
}

TempDir::~TempDir() { remove_tree(path); }

// ---- JSON ----

Json Json::parse(const std::string &text) {
  Json j;
  JsonParser *parser = json_parser_new();
  if (json_parser_load_from_data(parser, text.data(), (gssize)text.size(), nullptr) && json_parser_get_root(parser)) {
    JsonNode *root = json_node_copy(json_parser_get_root(parser));
    j.root_ = std::shared_ptr<JsonNode>(root, [](JsonNode *n) { json_node_unref(n); });
    j.node_ = root;
  }
  g_object_unref(parser);
  return j;
}

bool Json::is_object() const { return node_ && JSON_NODE_HOLDS_OBJECT(node_); }
bool Json::is_array() const { return node_ && JSON_NODE_HOLDS_ARRAY(node_); }
bool Json::is_string() const {
  return node_ && JSON_NODE_HOLDS_VALUE(node_) && json_node_get_value_type(node_) == G_TYPE_STRING;
}

bool Json::has(const char *key) const { return is_object() && json_object_has_member(json_node_get_object(node_), key); }

Json Json::get(const char *key) const {
  Json j;
  if (!has(key)) return j;
  j.root_ = root_;
  j.node_ = json_object_get_member(json_node_get_object(node_), key);
  return j;
}

std::string Json::str(const char *key, const std::string &fallback) const {
  Json m = get(key);
  return m.is_string() ? json_node_get_string(m.node_) : fallback;
}

double Json::num(const char *key, double fallback) const {
  Json m = get(key);
  if (!m.node_ || !JSON_NODE_HOLDS_VALUE(m.node_)) return fallback;
  GType t = json_node_get_value_type(m.node_);
  if (t == G_TYPE_INT64) return (double)json_node_get_int(m.node_);
  if (t == G_TYPE_DOUBLE) return json_node_get_double(m.node_);
  return fallback;
}

bool Json::boolean(const char *key, bool fallback) const {
  Json m = get(key);
  if (!m.node_ || !JSON_NODE_HOLDS_VALUE(m.node_) || json_node_get_value_type(m.node_) != G_TYPE_BOOLEAN) return fallback;
  return json_node_get_boolean(m.node_);
}

std::vector<std::string> Json::keys() const {
  std::vector<std::string> out;
  if (!is_object()) return out;
  GList *members = json_object_get_members(json_node_get_object(node_));
  for (GList *l = members; l; l = l->next) out.push_back(static_cast<const char *>(l->data));
  g_list_free(members);
  return out;
}

size_t Json::size() const { return is_array() ? json_array_get_length(json_node_get_array(node_)) : 0; }

Json Json::at(size_t index) const {
  Json j;
  if (index >= size()) return j;
  j.root_ = root_;
  j.node_ = json_array_get_element(json_node_get_array(node_), (guint)index);
  return j;
}

std::string Json::text() const {
  if (!node_) return "(not JSON)";
  gchar *t = json_to_string(node_, FALSE);
  std::string out(t);
  g_free(t);
  return out;
}

std::string json_quote(const std::string &s) {
  JsonNode *n = json_node_new(JSON_NODE_VALUE);
  json_node_set_string(n, s.c_str());
  gchar *t = json_to_string(n, FALSE);
  std::string out(t);
  g_free(t);
  json_node_unref(n);
  return out;
}

// ---- HTTP ----

std::string HttpResponse::describe() const {
  if (status == 0) return "no response: " + error;
  std::string shown = body.size() > 600 ? body.substr(0, 600) + "…" : body;
  return "HTTP " + std::to_string(status) + " (" + content_type + ") " + shown;
}

HttpResponse Http::request(const std::string &method, const std::string &path, const std::string &body,
                           const std::map<std::string, std::string> &headers, int timeout_s) const {
  return send(method, path, body, headers, timeout_s, false);
}

HttpResponse Http::request_chunked(const std::string &method, const std::string &path, const std::string &body) const {
  return send(method, path, body, {}, 20, true);
}

HttpResponse Http::send(const std::string &method, const std::string &path, const std::string &body,
                        const std::map<std::string, std::string> &headers, int timeout_s, bool chunked) const {
  HttpResponse r;
  SoupSession *session;
  std::string url;
  if (unix_.empty()) {
    session = soup_session_new_with_options("timeout", (guint)timeout_s, nullptr);
    url = base_ + path;
  } else {
    GSocketAddress *address = g_unix_socket_address_new(unix_.c_str());
    session = soup_session_new_with_options("timeout", (guint)timeout_s, "remote-connectable", address, nullptr);
    g_object_unref(address);
    url = "http://localhost" + path;
  }
  SoupMessage *msg = soup_message_new(method.c_str(), url.c_str());
  if (!msg) {
    r.error = "invalid URL " + url;
    g_object_unref(session);
    return r;
  }
  SoupMessageHeaders *req_headers = soup_message_get_request_headers(msg);
  for (const auto &kv : headers) soup_message_headers_replace(req_headers, kv.first.c_str(), kv.second.c_str());
  if (chunked) {
    // A stream of unknown length is sent with Transfer-Encoding: chunked.
    GBytes *bytes = g_bytes_new(body.data(), body.size());
    GInputStream *stream = g_memory_input_stream_new_from_bytes(bytes);
    soup_message_set_request_body(msg, "application/json", stream, -1);
    g_object_unref(stream);
    g_bytes_unref(bytes);
  } else if (!body.empty() || method == "POST") {
    GBytes *bytes = g_bytes_new(body.data(), body.size());
    soup_message_set_request_body_from_bytes(msg, "application/json", bytes);
    g_bytes_unref(bytes);
  }
  GError *err = nullptr;
  GBytes *reply = soup_session_send_and_read(session, msg, nullptr, &err);
  if (reply) {
    r.status = (int)soup_message_get_status(msg);
    gsize len = 0;
    const char *data = static_cast<const char *>(g_bytes_get_data(reply, &len));
    r.body.assign(data ? data : "", len);
    const char *ct = soup_message_headers_get_content_type(soup_message_get_response_headers(msg), nullptr);
    r.content_type = ct ? ct : "";
    g_bytes_unref(reply);
  } else {
    r.error = err ? err->message : "unknown error";
  }
  g_clear_error(&err);
  g_object_unref(msg);
  // Disposing the session closes its connection (see the class comment).
  g_object_unref(session);
  return r;
}

std::string error_reply_problem(const HttpResponse &r, int status, const std::string &code) {
  std::string where = " in " + r.describe();
  if (r.status != status) return "expected HTTP " + std::to_string(status) + where;
  if (r.content_type != "application/json") return "content type is not application/json" + where;
  Json j = r.json();
  if (!j.is_object() || j.keys() != std::vector<std::string>{"error"}) return "body is not {\"error\":{…}}" + where;
  Json e = j.get("error");
  std::vector<std::string> keys = e.keys();
  std::sort(keys.begin(), keys.end());
  if (keys != std::vector<std::string>{"code", "message"}) return "error object is not {code, message}" + where;
  if (e.str("code") != code) return "error code is not '" + code + "'" + where;
  if (e.str("message").empty()) return "error message is empty" + where;
  return "";
}

// ---- the service ----

// Under the sanitizers (scripts/sanitize.sh sets VOICEBRIDGE_SANITIZED), the service is ended the
// way an operator ends it, so that LeakSanitizer checks it at exit (its report lands in
// build-sanitize/sanitizer-logs/ and fails the run): SIGTERM to drain, a second one to end every call
// at once. Elsewhere SIGKILL: fast, and leaks are not what the normal build looks for.
Service::~Service() {
  if (g_getenv("VOICEBRIDGE_SANITIZED") && proc_.running()) {
    proc_.send_signal(SIGTERM);
    if (!proc_.wait_exit(200)) {
      proc_.send_signal(SIGTERM);
      if (proc_.wait_exit(20000)) return;
    } else {
      return;
    }
  }
  proc_.kill_now();
}

bool Service::start(const std::string &realtime_url, const std::vector<std::string> &extra, std::string *error,
                    const std::string &listen, const std::map<std::string, std::string> &env) {
  std::vector<std::string> argv = {build_path("app/voicebridge"), "--listen",      listen,
                                   "--ice-addresses",             "127.0.0.1",     "--realtime-url",
                                   realtime_url,                  "--log-format",  "json"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  std::string why;
  if (!proc_.start(argv, env, &why)) {
    if (error) *error = "cannot start voicebridge: " + why;
    return false;
  }
  // Startup takes well under a second; 15 s leaves room for a loaded machine.
  int64_t deadline = g_get_monotonic_time() + 15 * G_USEC_PER_SEC;
  while (g_get_monotonic_time() < deadline) {
    auto listening = events("SERVICE_LISTENING");
    if (!listening.empty()) {
      // "http://127.0.0.1:PORT" or "unix:/path"
      std::string where = listening[0].json.str("listen");
      if (g_str_has_prefix(where.c_str(), "unix:"))
        unix_socket_ = where.substr(5);
      else
        base_url_ = where;
      return true;
    }
    if (!proc_.running()) break;
    g_usleep(10000);
  }
  if (error) *error = "voicebridge did not report SERVICE_LISTENING: " + proc_.describe();
  proc_.kill_now();
  return false;
}

Http Service::http() const { return Http(base_url_, unix_socket_); }

std::vector<LogEvent> Service::events(const std::string &name, const std::string &call_id) const {
  std::vector<LogEvent> out;
  for (const auto &line : proc_.stderr_lines()) {
    if (line.text.empty() || line.text[0] != '{') continue;
    if (!name.empty() && line.text.find("\"" + name + "\"") == std::string::npos) continue;  // cheap filter
    LogEvent e;
    e.mono_us = line.mono_us;
    e.line = line.text;
    e.json = Json::parse(line.text);
    if (!e.json.is_object()) continue;
    if (!name.empty() && e.event() != name) continue;
    if (!call_id.empty() && e.call_id() != call_id) continue;
    out.push_back(e);
  }
  return out;
}

std::optional<LogEvent> Service::wait_event(const std::string &name, const std::string &call_id, int timeout_ms) const {
  int64_t deadline = g_get_monotonic_time() + (int64_t)timeout_ms * 1000;
  while (true) {
    auto found = events(name, call_id);
    if (!found.empty()) return found.front();
    if (g_get_monotonic_time() >= deadline) return std::nullopt;
    g_usleep(10000);
  }
}

bool Service::wait_events(const std::string &name, size_t count, int timeout_ms) const {
  int64_t deadline = g_get_monotonic_time() + (int64_t)timeout_ms * 1000;
  while (events(name).size() < count) {
    if (g_get_monotonic_time() >= deadline) return false;
    g_usleep(10000);
  }
  return true;
}

std::string Service::call_log(const std::string &call_id) const {
  std::string out;
  for (const auto &e : events({}, call_id)) out += e.line + "\n";
  return out;
}

std::string Service::glib_complaints() const {
  std::string out;
  for (const auto &e : events())
    if (e.json.has("domain") && e.json.str("level") == "error") out += e.line + "\n";
  return out;
}

std::string Service::log_format_problem() const {
  for (const auto &line : proc_.stderr_lines()) {
    Json j = Json::parse(line.text);
    if (!j.is_object() || j.str("ts").empty() || j.str("level").empty() || !j.has("msg"))
      return "not a JSON log line: " + line.text;
    if (j.has("call_id") && j.str("event").empty()) return "a call's line without an event: " + line.text;
  }
  return "";
}

bool Service::stop(int timeout_ms) {
  proc_.send_signal(SIGTERM);
  if (proc_.wait_exit(timeout_ms)) return true;
  proc_.kill_now();
  return false;
}

// ---- calls ----

std::string call_shape_problem(const Json &call) {
  std::string shown = " in " + call.text();
  if (!call.is_object()) return "not an object" + shown;
  if (call.str("call_id").empty()) return "no call_id" + shown;
  std::string state = call.str("state");
  if (state != "connecting" && state != "active" && state != "ending" && state != "ended") return "bad state" + shown;
  std::string direction = call.str("direction");
  if (direction != "inbound" && direction != "outbound") return "bad direction" + shown;
  GDateTime *created = g_date_time_new_from_iso8601(call.str("created_at").c_str(), nullptr);
  if (!created) return "created_at is not RFC 3339" + shown;
  g_date_time_unref(created);
  if (call.num("duration_s", -1) < 0) return "no duration_s" + shown;
  bool over = state == "ending" || state == "ended";
  if (over != !call.str("end_reason").empty()) return "end_reason present iff the call is over, expected" + shown;
  Json stats = call.get("stats");
  for (const char *k : {"rtp_packets_received", "rtp_packets_lost", "jitter_ms", "audio_to_model_ms",
                        "audio_to_caller_ms", "barge_ins", "responses", "input_tokens", "output_tokens"})
    if (stats.num(k, -1) < 0) return std::string("stats.") + k + " missing or negative" + shown;
  return "";
}

std::string offer_body(const std::string &sdp, const std::string &call_id) {
  std::string body = "{\"sdp\":" + json_quote(sdp);
  if (!call_id.empty()) body += ",\"call_id\":" + json_quote(call_id);
  return body + "}";
}

std::string whatsapp_offer(int n) {
  return read_file(fixture_path("whatsapp/offer-user-initiated-" + std::to_string(n) + ".sdp"));
}

std::unique_ptr<ChildProcess> start_caller(const std::string &url, const std::vector<std::string> &args,
                                           std::string *error) {
  std::vector<std::string> argv = {build_path("app/caller/voicebridge-call"), "--url", url, "--json", "--quiet"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto p = std::make_unique<ChildProcess>();
  if (!p->start(argv, {}, error)) return nullptr;
  return p;
}

CallerResult finish_caller(ChildProcess &caller, int timeout_ms) {
  CallerResult r;
  r.exited = caller.wait_exit(timeout_ms);
  if (!r.exited) caller.kill_now();
  r.exit_status = caller.exit_status();
  // The report is the last non-empty line of stdout.
  gchar **lines = g_strsplit(caller.out().c_str(), "\n", -1);
  for (gchar **l = lines; *l; l++)
    if (**l) r.report = Json::parse(*l);
  g_strfreev(lines);
  r.stderr_text = caller.stderr_text();
  r.describe = (r.exited ? "" : "KILLED AFTER TIMEOUT; ") + caller.describe();
  return r;
}

CallerResult run_caller(const std::string &url, const std::vector<std::string> &args, int timeout_ms) {
  std::string error;
  auto caller = start_caller(url, args, &error);
  if (!caller) {
    CallerResult r;
    r.describe = "cannot start voicebridge-call: " + error;
    return r;
  }
  return finish_caller(*caller, timeout_ms);
}

// ---- audio ----

bool write_bursts_wav(const std::string &path, const std::vector<double> &starts_ms,
                      const std::vector<double> &lengths_ms, double total_ms, double hz, double peak_dbfs) {
  std::vector<int16_t> samples = audio_test::make_silence(total_ms, kCallerRate);
  for (size_t i = 0; i < starts_ms.size() && i < lengths_ms.size(); i++) {
    auto tone = audio_test::make_tone(hz, lengths_ms[i], peak_dbfs, kCallerRate, 5.0);
    size_t at = audio_test::ms_to_samples(starts_ms[i], kCallerRate);
    for (size_t k = 0; k < tone.size() && at + k < samples.size(); k++) samples[at + k] = tone[k];
  }
  return audio_test::write_wav(path, samples, kCallerRate);
}

std::vector<Tone> find_tones(const std::vector<int16_t> &samples, int rate) {
  std::vector<Tone> out;
  for (const auto &seg : audio_test::find_segments(samples, rate, -40.0, 10.0, 100.0)) {
    Tone t;
    t.start_ms = audio_test::start_ms(seg, rate);
    t.end_ms = audio_test::end_ms(seg, rate);
    t.hz = audio_test::dominant_frequency(&samples[seg.start], seg.length(), rate);
    t.rms_dbfs = audio_test::rms_dbfs(&samples[seg.start], seg.length());
    out.push_back(t);
  }
  return out;
}

std::vector<Tone> tones_at(const std::vector<Tone> &tones, double hz, double tolerance_hz) {
  std::vector<Tone> out;
  for (const auto &t : tones)
    if (std::abs(t.hz - hz) <= tolerance_hz) out.push_back(t);
  return out;
}

std::string describe_tones(const std::vector<Tone> &tones) {
  if (tones.empty()) return "(no sound)";
  std::string out;
  char buf[160];
  for (const auto &t : tones) {
    snprintf(buf, sizeof buf, "[%.0f-%.0f ms (%.0f ms), %.1f Hz, %.1f dBFS] ", t.start_ms, t.end_ms, t.length_ms(), t.hz,
             t.rms_dbfs);
    out += buf;
  }
  return out;
}

std::vector<int16_t> read_wav_mono(const std::string &path, int *rate, std::string *error) {
  audio_test::WavData wav;
  if (!audio_test::read_wav(path, &wav, error)) return {};
  if (rate) *rate = wav.rate;
  return wav.channel(0);
}

}  // namespace svc_test
