// What the service's end-to-end tests share: the real voicebridge binary as a child process
// (logging JSON on stderr), libsoup requests to its API, voicebridge-call runs, SDP offers, and the
// audio checks on what both ends heard.
//
//   fake_realtime::Server fake;                  // the Realtime API (tests/fake-realtime)
//   fake.start();
//   svc_test::Service vb;
//   fail_unless(vb.start(fake.url(), {"--max-calls", "1"}, &error), "%s", error.c_str());
//   svc_test::HttpResponse r = vb.http().request("GET", "/healthz");
//   auto ended = vb.wait_event("CALL_ENDED", call_id, 10000);
//
// Every wait is bounded; the service and the callers are killed when their objects go away (see
// child-process.h for the case of a failing test).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <json-glib/json-glib.h>

#include "child-process.h"

namespace svc_test {

// ---- files ----

std::string build_path(const std::string &relative);    // $VOICEBRIDGE_BUILD_ROOT/relative
std::string fixture_path(const std::string &relative);  // $VOICEBRIDGE_FIXTURES/relative
std::string read_file(const std::string &path);         // "" when unreadable

// A private temporary directory, removed with its files (by the test program at its end if a
// failing test skipped the destructor).
struct TempDir {
  std::string path;
  TempDir();
  ~TempDir();
  std::string file(const std::string &name) const { return path + "/" + name; }
};

// ---- JSON ----

// A read-only view of a JSON value (shares the parsed tree). Accessors return the fallback when the
// member is missing or of another type, so that checks read naturally.
class Json {
 public:
  Json() = default;
  static Json parse(const std::string &text);  // invalid Json when the text is not JSON

  bool valid() const { return node_ != nullptr; }
  bool is_object() const;
  bool is_array() const;
  bool is_string() const;
  bool has(const char *key) const;
  Json get(const char *key) const;
  std::string str(const char *key, const std::string &fallback = "") const;
  double num(const char *key, double fallback = -1e300) const;
  bool boolean(const char *key, bool fallback = false) const;
  std::vector<std::string> keys() const;
  size_t size() const;  // array length
  Json at(size_t index) const;
  std::string text() const;  // serialised

 private:
  std::shared_ptr<JsonNode> root_;  // keeps the tree alive
  JsonNode *node_ = nullptr;
};

std::string json_quote(const std::string &s);  // a JSON string literal

// ---- HTTP ----

struct HttpResponse {
  int status = 0;            // 0: no response (see error)
  std::string body;
  std::string content_type;  // without parameters
  std::string error;         // transport error
  Json json() const { return Json::parse(body); }
  std::string describe() const;  // "HTTP 400 {…}" for failure messages
};

// A client of the service's API over TCP (base "http://127.0.0.1:PORT") or a unix socket. Each
// request uses a fresh connection that is closed afterwards, so that the test's own keep-alive
// sockets never show up in the service's descriptor count.
class Http {
 public:
  Http() = default;
  Http(std::string base_url, std::string unix_socket = {}) : base_(std::move(base_url)), unix_(std::move(unix_socket)) {}
  HttpResponse request(const std::string &method, const std::string &path, const std::string &body = {},
                       const std::map<std::string, std::string> &headers = {}, int timeout_s = 20) const;
  // The same with the body sent chunked (no Content-Length).
  HttpResponse request_chunked(const std::string &method, const std::string &path, const std::string &body) const;
  const std::string &base() const { return base_; }

 private:
  HttpResponse send(const std::string &method, const std::string &path, const std::string &body,
                    const std::map<std::string, std::string> &headers, int timeout_s, bool chunked) const;
  std::string base_;
  std::string unix_;
};

// Empty when r is exactly `status` with the body {"error":{"code":code,"message":"<non-empty>"}}
// (and a JSON content type); otherwise what is wrong.
std::string error_reply_problem(const HttpResponse &r, int status, const std::string &code);

// ---- the service ----

// One line of the service's JSON log.
struct LogEvent {
  int64_t mono_us = 0;  // when the test read it
  Json json;
  std::string line;
  std::string event() const { return json.str("event"); }
  std::string call_id() const { return json.str("call_id"); }
};

class Service {
 public:
  ~Service();

  // Starts build/app/voicebridge with `--listen LISTEN --ice-addresses 127.0.0.1 --realtime-url
  // URL --log-format json` plus extra, and waits for SERVICE_LISTENING. listen "127.0.0.1:0" picks
  // a port; "unix:/path" listens on a socket.
  bool start(const std::string &realtime_url, const std::vector<std::string> &extra = {}, std::string *error = nullptr,
             const std::string &listen = "127.0.0.1:0", const std::map<std::string, std::string> &env = {});
  const std::string &base_url() const { return base_url_; }  // http://127.0.0.1:PORT, or "" on a socket
  Http http() const;
  ChildProcess &process() { return proc_; }
  pid_t pid() const { return proc_.pid(); }

  // Parsed log lines (non-JSON lines are skipped).
  std::vector<LogEvent> events(const std::string &name = {}, const std::string &call_id = {}) const;
  std::optional<LogEvent> wait_event(const std::string &name, const std::string &call_id, int timeout_ms) const;
  // Waits until `count` events of that name exist.
  bool wait_events(const std::string &name, size_t count, int timeout_ms) const;
  std::string log_text() const { return proc_.stderr_text(); }
  // The log lines of one call, for failure messages.
  std::string call_log(const std::string &call_id) const;
  // Log lines of GLib/GStreamer criticals and warnings that reached the service's log (the "domain"
  // field of a GLib message), one per line; "" when there were none.
  std::string glib_complaints() const;

  // "" when every stderr line so far is one JSON object with ts, level and msg, and every line
  // with a call_id also names its event (CONTRACT.md §6); otherwise the first offending line.
  std::string log_format_problem() const;

  // SIGTERM, then waits for the exit; false (and SIGKILL) if it takes longer than timeout_ms.
  bool stop(int timeout_ms = 5000);

 private:
  ChildProcess proc_;
  std::string base_url_;
  std::string unix_socket_;
};

// ---- calls ----

// "" when call is a CALL object of CONTRACT.md §3 (call_id, state, direction, created_at in RFC
// 3339, duration_s, end_reason exactly when ending/ended, and the nine stats); else what is wrong.
std::string call_shape_problem(const Json &call);

// {"sdp":…, "call_id":… (when not empty)}
std::string offer_body(const std::string &sdp, const std::string &call_id = {});
// A real WhatsApp offer (tests/fixtures/whatsapp/offer-user-initiated-N.sdp). Its candidates are
// Meta's public addresses, so nothing connects: such a call stays live (connecting) until it is
// deleted or its media timeout.
std::string whatsapp_offer(int n = 1);

// voicebridge-call against the service.
struct CallerResult {
  bool exited = false;
  int exit_status = -1;
  Json report;          // its --json line (invalid if none)
  std::string stderr_text;
  std::string describe;
};
// Starts a caller in the background: --url URL --json --quiet plus args.
std::unique_ptr<ChildProcess> start_caller(const std::string &url, const std::vector<std::string> &args,
                                           std::string *error = nullptr);
// Waits for it (killing it after timeout_ms) and reads its report.
CallerResult finish_caller(ChildProcess &caller, int timeout_ms);
CallerResult run_caller(const std::string &url, const std::vector<std::string> &args, int timeout_ms);

// ---- audio ----

constexpr int kCallerRate = 48000;  // voicebridge-call records 16-bit mono at 48 kHz
constexpr int kModelRate = 24000;   // the Realtime API's rate (what the fake received)

// Writes a mono 48 kHz WAV of 300 Hz bursts at -12 dBFS peak: burst i starts at starts_ms[i] and
// lasts lengths_ms[i]; silence elsewhere, up to total_ms.
bool write_bursts_wav(const std::string &path, const std::vector<double> &starts_ms,
                      const std::vector<double> &lengths_ms, double total_ms, double hz = 300.0,
                      double peak_dbfs = -12.0);

// A stretch of tone found in a recording.
struct Tone {
  double start_ms = 0, end_ms = 0, hz = 0, rms_dbfs = -200;
  double length_ms() const { return end_ms - start_ms; }
};
// The stretches of sound above -40 dBFS (gaps under 100 ms merged), each with its frequency.
std::vector<Tone> find_tones(const std::vector<int16_t> &samples, int rate);
// Those whose frequency is within tolerance_hz of hz.
std::vector<Tone> tones_at(const std::vector<Tone> &tones, double hz, double tolerance_hz = 10.0);
std::string describe_tones(const std::vector<Tone> &tones);
// The mono samples of a WAV file; empty (with *error) when unreadable.
std::vector<int16_t> read_wav_mono(const std::string &path, int *rate, std::string *error);

}  // namespace svc_test
