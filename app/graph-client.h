// The WhatsApp Cloud API calling actions (docs/whatsapp-calling.md §3): POST
// {graph_url}/{phone_number_id}/calls with a Bearer token. Asynchronous on the main context
// (libsoup). Transport errors, 5xx and 429 are retried with a doubling backoff within a bounded
// total time, which stays inside Meta's 30–60 s window for answering a call; other 4xx are final.
// The token is sent, never logged.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>

#include <libsoup/soup.h>

namespace vb {
namespace wa {

// Why an action failed. Meta's errors: {"error":{"message","type","code","error_subcode",
// "error_data":{"details"},"fbtrace_id"}}.
struct GraphError {
  int http_status = 0;      // 0: no HTTP response (transport error or timeout)
  long long code = 0;       // Meta's error code (0 when the body had none)
  long long subcode = 0;
  std::string message;      // Meta's message, or the transport error
  std::string details;      // error_data.details
  // "Graph API pre_accept failed: HTTP 400, Meta error 138006 (no approved call permission…): …"
  std::string describe(const std::string &action) const;
};

struct GraphResult {
  bool ok = false;
  std::string call_id;    // connect: calls[0].id
  GraphError error;       // when !ok: the last attempt's
  int attempts = 0;
  double elapsed_ms = 0;  // from the first attempt to the final result
};

struct GraphOptions {
  std::string base_url;         // "https://graph.facebook.com/v23.0" (no trailing slash)
  std::string phone_number_id;
  std::string token;
  int first_backoff_ms = 250;   // doubles after each retried failure…
  int max_backoff_ms = 4000;    // …up to this
  int total_ms = 20000;         // no attempt starts, and none runs, past this after the first
  int attempt_timeout_ms = 10000;
};

class GraphClient {
 public:
  using Done = std::function<void(const GraphResult &)>;

  explicit GraphClient(GraphOptions options);
  ~GraphClient();  // cancels what is in flight; their Done callbacks never run
  GraphClient(const GraphClient &) = delete;
  GraphClient &operator=(const GraphClient &) = delete;

  // Inbound calls: both answers carry sdp_type "answer", and the same SDP string.
  void pre_accept(const std::string &call_id, const std::string &answer_sdp, Done done);
  void accept(const std::string &call_id, const std::string &answer_sdp, Done done);
  void reject(const std::string &call_id, Done done);
  void terminate(const std::string &call_id, Done done);
  // Business-initiated: our offer to `to` (digits). The result's call_id is the new call's wacid.
  void connect(const std::string &to, const std::string &offer_sdp, Done done);

  // The request bodies (exposed for tests).
  static std::string answer_body(const std::string &action, const std::string &call_id, const std::string &sdp);
  static std::string simple_body(const std::string &action, const std::string &call_id);
  static std::string connect_body(const std::string &to, const std::string &sdp);
  // Reads a response: a 2xx needs "success":true (or, for connect, calls[0].id); otherwise the
  // error object is parsed. Exposed for tests.
  static GraphResult read_response(const std::string &action, int http_status, const std::string &body);

  size_t in_flight() const;
  // Runs the default main context until nothing is in flight or timeout_ms passed. For shutdown:
  // a terminate queued as the last calls end must still reach Meta (it bills by it).
  void flush(int timeout_ms);

 private:
  struct Request;
  using SendData = std::pair<std::weak_ptr<Request>, SoupMessage *>;
  void post(const std::string &action, const std::string &call_id, std::string body, Done done);
  void send(const std::shared_ptr<Request> &request);
  void finish(const std::shared_ptr<Request> &request, GraphResult result);
  void schedule_retry(const std::shared_ptr<Request> &request, const GraphResult &failed);
  static void on_sent(GObject *source, GAsyncResult *res, gpointer data);

  GraphOptions options_;
  std::string url_;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace wa
}  // namespace vb
