// The control-API client of voicebridge-call: JSON requests to the bridge over TCP or a unix socket,
// asynchronous on the main context, each bounded by its own timeout.
#pragma once

#include <functional>
#include <memory>
#include <set>
#include <string>

#include <glib.h>
#include <libsoup/soup.h>

namespace vbcall {

struct HttpResponse {
  guint status = 0;     // HTTP status; 0 when no response arrived (see `error`)
  std::string body;     // response body as received
  std::string error;    // transport failure or timeout; empty whenever `status` is set

  bool ok() const { return status >= 200 && status < 300; }
  // The contract's error body {"error":{"code","message"}}; false when the body is not one.
  bool error_body(std::string &code, std::string &message) const;
  // "HTTP 503 at_capacity: no free slot" / "HTTP 502" / "connection refused", for one-line reports.
  std::string describe() const;
};

class HttpClient {
 public:
  using Callback = std::function<void(const HttpResponse &)>;

  // `base` is scheme://authority[/prefix]; a non-empty `unix_socket` carries every connection
  // instead of TCP. `token` (may be empty) goes into Authorization: Bearer on every request.
  HttpClient(std::string base, const std::string &unix_socket, std::string token);
  ~HttpClient();
  HttpClient(const HttpClient &) = delete;
  HttpClient &operator=(const HttpClient &) = delete;

  // Sends `method base+path` with an optional JSON body. `done` runs exactly once on the main
  // context that created the client (never synchronously from here), unless the client is destroyed
  // first. After `timeout_ms` the request is cancelled and `done` gets error "timed out".
  void request(const char *method, const std::string &path, const std::string &json_body, guint timeout_ms,
               Callback done);
  // Cancels everything in flight; each `done` still runs (with an error) on a later iteration.
  void cancel_all();
  size_t pending() const { return pending_.size(); }

 private:
  struct Request;
  static void on_sent(GObject *source, GAsyncResult *res, gpointer data);
  static gboolean on_timeout(gpointer data);
  void finish(Request *r, const HttpResponse &resp);

  std::string base_;
  std::string token_;
  SoupSession *session_ = nullptr;
  GMainContext *context_ = nullptr;
  std::set<Request *> pending_;
  // Requests outlive the client when it is destroyed with work in flight; they check this first.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace vbcall
