// What the WhatsApp tests share: the real voicebridge binary as a child process (JSON logs read
// line by line from its stderr), a small HTTP client, Meta-shaped webhook bodies built from the
// fixtures (tests/fixtures/whatsapp) and signed like Meta signs them, and SDP shaped like
// WhatsApp's with its media address pointing at a local port.
//
//   wa_test::Service vb;
//   fail_unless(vb.start(realtime_url, graph.base_url(), {}, &error), "%s", error.c_str());
//   auto r = vb.post_webhook(wa_test::connect_webhook(id, offer), /*sign=*/true);
//   auto pre = vb.wait_event("WA_CALL_PRE_ACCEPTED", id, 10000);
//
// Every wait is bounded. The child dies with the test: PR_SET_PDEATHSIG, plus an atexit() kill
// because check's fork mode ends a failing test with exit().
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

// String equality for check tests. (gst-check's fail_unless_equals_string keeps a `const char *`
// of its arguments, which dangles for a temporary std::string's c_str().)
#define WA_ASSERT_STR_EQ(actual, expected)                                                              \
  do {                                                                                                 \
    const std::string wa_actual_ = (actual), wa_expected_ = (expected);                                \
    fail_unless(wa_actual_ == wa_expected_, "'%s' is \"%s\", expected \"%s\"", #actual, wa_actual_.c_str(), \
                wa_expected_.c_str());                                                                 \
  } while (0)

namespace wa_test {

// The settings every test service gets (the fake Graph API checks the token and the number).
extern const char *const kToken;        // --whatsapp-token
extern const char *const kAppSecret;    // --whatsapp-app-secret
extern const char *const kVerifyToken;  // --whatsapp-verify-token
extern const char *const kPhoneId;      // --whatsapp-phone-number-id

std::string fixture(const std::string &name);  // the text of tests/fixtures/whatsapp/<name>
long long now_s();
int64_t now_us();  // monotonic

// ---- JSON log lines ----

struct LogLine {
  int64_t mono_us = 0;  // when the test read it
  std::string text;
  std::map<std::string, std::string> fields;  // top-level members; strings raw, others as JSON text
  std::string get(const std::string &key) const {
    auto it = fields.find(key);
    return it == fields.end() ? "" : it->second;
  }
  std::string event() const { return get("event"); }
  std::string call_id() const { return get("call_id"); }
};

// ---- HTTP ----

struct HttpResponse {
  int status = 0;  // 0: no response
  std::string body;
  std::string content_type;
  std::string error;
  std::string describe() const;
};
HttpResponse http(const std::string &method, const std::string &url, const std::string &body = {},
                  const std::map<std::string, std::string> &headers = {});
// A JSON member of a reply as text ("" when absent): "error.code" walks objects.
std::string json_path(const std::string &json, const std::string &path);

// ---- the service ----

class Service {
 public:
  Service() = default;
  ~Service();
  Service(const Service &) = delete;
  Service &operator=(const Service &) = delete;

  // build/app/voicebridge --listen 127.0.0.1:0 --ice-addresses 127.0.0.1 --realtime-url URL
  // --log-format json --whatsapp-* (the constants above, graph_url) plus extra; waits for
  // SERVICE_LISTENING.
  bool start(const std::string &realtime_url, const std::string &graph_url, const std::vector<std::string> &extra,
             std::string *error);
  void stop();  // SIGTERM, then SIGKILL after 5 s
  const std::string &base_url() const { return base_url_; }

  HttpResponse get(const std::string &path, const std::map<std::string, std::string> &headers = {}) const;
  HttpResponse post(const std::string &path, const std::string &body,
                    const std::map<std::string, std::string> &headers = {}) const;
  HttpResponse del(const std::string &path, const std::map<std::string, std::string> &headers = {}) const;
  // POST /whatsapp/webhook, signed with kAppSecret unless sign is false.
  HttpResponse post_webhook(const std::string &body, bool sign = true) const;

  std::vector<LogLine> events(const std::string &name = {}, const std::string &call_id = {}) const;
  std::optional<LogLine> wait_event(const std::string &name, const std::string &call_id, int timeout_ms,
                                    size_t nth = 1) const;
  std::string log_text() const;
  // The tail of the log, for failure messages (check refuses messages over ~4 KiB).
  std::string log_tail(size_t chars = 1500) const;

 private:
  void read_stderr(int fd);
  pid_t pid_ = -1;
  std::thread reader_;
  std::string base_url_;
  mutable std::mutex mutex_;
  std::vector<LogLine> lines_;
};

// ---- webhooks ----

// X-Hub-Signature-256 of body with secret: "sha256=<hex>".
std::string signature(const std::string &body, const std::string &secret);

// Meta-shaped bodies (the fixtures, with id, SDP and timestamp replaced; ts 0 means now).
std::string connect_webhook(const std::string &id, const std::string &offer_sdp, long long ts = 0,
                            const std::string &from = "917358580180");
std::string terminate_webhook(const std::string &id, long long ts = 0, bool with_error = true);
std::string bic_connect_webhook(const std::string &id, const std::string &answer_sdp, long long ts = 0);
std::string status_webhook(const std::string &id, const std::string &status, long long ts = 0);
// Several bodies' entries in one envelope (Meta batches).
std::string merge_webhooks(const std::vector<std::string> &bodies);

// ---- SDP ----

// A UDP port on 127.0.0.1 that is bound (so nobody else gets it) and never answers.
class SilentPort {
 public:
  SilentPort();
  ~SilentPort();
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// WhatsApp's real user-initiated offer (fixture 1) with its candidates replaced by one host
// candidate 127.0.0.1:port (and c= to match).
std::string local_offer(int port);
// What Meta answers to a business offer (docs §4.6: ice-lite, setup:active, Opus 111 and
// telephone-event 126), with its candidate at 127.0.0.1:port and the offer's mid.
std::string meta_answer(const std::string &offer, int port);
// The a=mid of the first m-line ("" if none).
std::string sdp_mid(const std::string &sdp);

}  // namespace wa_test
