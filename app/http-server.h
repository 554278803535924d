// The HTTP control server: a SoupServer on TCP or a unix socket, with request size limits, the
// contract's JSON error shape, and replies that may come later (a call's answer waits for ICE
// gathering). Runs on the main context.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <libsoup/soup.h>

namespace vb {

// One request. A handler either replies at once, or calls defer() and replies later through the
// returned Reply (which stays valid even if the client went away).
class HttpRequest {
 public:
  HttpRequest(SoupServerMessage *msg, const std::string &path);
  ~HttpRequest();

  const std::string &method() const { return method_; }
  const std::string &path() const { return path_; }
  std::string header(const char *name) const;
  std::string query(const char *name) const;
  const char *body() const { return body_; }
  size_t body_size() const { return body_size_; }

  void reply(int status, const std::string &content_type, const std::string &body);
  void reply_json(int status, const std::string &json) { reply(status, "application/json", json); }
  void reply_error(int status, const std::string &code, const std::string &message);

  // For replies that come later: pauses the message; the returned object replies and unpauses.
  class Deferred {
   public:
    explicit Deferred(SoupServerMessage *msg);
    ~Deferred();
    void reply(int status, const std::string &content_type, const std::string &body);
    void reply_json(int status, const std::string &json) { reply(status, "application/json", json); }
    void reply_error(int status, const std::string &code, const std::string &message);

   private:
    SoupServerMessage *msg_;
    bool done_ = false;
  };
  std::shared_ptr<Deferred> defer();

 private:
  SoupServerMessage *msg_;
  std::string method_;
  std::string path_;
  const char *body_ = nullptr;
  size_t body_size_ = 0;
  bool deferred_ = false;
};

std::string error_json(const std::string &code, const std::string &message);

class HttpServer {
 public:
  using Handler = std::function<void(HttpRequest &)>;
  HttpServer(size_t max_body_bytes, Handler handler);
  ~HttpServer();

  // listen: "HOST:PORT", "[V6]:PORT" or "unix:PATH". Port 0 picks a free port.
  bool listen(const std::string &address, std::string *error);
  // Where it listens, for the start-up line: "http://127.0.0.1:8080" or "unix:/run/vb.sock".
  std::vector<std::string> addresses() const;
  void disconnect();

 private:
  static void on_request(SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
                         gpointer user_data);
  static void on_early(SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
                       gpointer user_data);

  static gboolean on_incoming(GSocketService *service, GSocketConnection *connection, GObject *source,
                              gpointer user_data);

  SoupServer *server_ = nullptr;
  GSocketService *service_ = nullptr;
  size_t max_body_bytes_;
  Handler handler_;
  std::vector<std::string> addresses_;
  std::string unix_path_;
};

}  // namespace vb
