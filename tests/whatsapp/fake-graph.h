// A fake WhatsApp Cloud API for tests: POST /{version}/{phone_number_id}/calls on 127.0.0.1, on its
// own thread and GMainContext (so a test may block while the service talks to it). It records
// every request (action, body, Authorization, arrival and reply times) and answers as Meta does:
// {"messaging_product":"whatsapp","success":true}, and for connect
// {"messaging_product":"whatsapp","calls":[{"id":"wacid.…"}]}. Scripted rules replace the answer
// (5xx n times, 429, a 4xx with a Meta error code) or delay it.
//
//   fake_graph::Server graph("123", "graph-token");
//   graph.start(&error);
//   graph.add_rule({"pre_accept", 2, 500});            // the first two pre_accepts fail with 500
//   graph.add_rule({"accept", 1, 200, "", 1000});        // the first accept answers after 1 s
//   ... --whatsapp-graph-url graph.base_url() ...
//   graph.wait_actions("accept", 1, 10000);
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace fake_graph {

struct Request {
  std::string path;           // "/v23.0/123/calls"
  std::string action;         // "" when the body had none
  std::string call_id;
  std::string to;
  std::string sdp;            // session.sdp
  std::string sdp_type;       // session.sdp_type
  std::string messaging_product;
  std::string body;
  std::string authorization;  // the Authorization header
  std::string content_type;
  int status = 0;             // what the fake answered
  std::string reply_call_id;  // connect: the wacid it returned
  int64_t received_us = 0;    // monotonic (g_get_monotonic_time)
  int64_t replied_us = 0;     // monotonic, when the reply was handed to libsoup
};

// One scripted answer: for the next `times` requests of `action` ("" matches any), answer
// `status` with `body` (empty: Meta's success body for a 2xx, or a Meta error for others), after
// delay_ms. times < 0: forever. Rules apply in the order added; the first that matches is used.
struct Rule {
  std::string action;
  int times = 1;
  int status = 200;
  std::string body;
  int delay_ms = 0;
};

// Meta's error body: {"error":{"message","type":"OAuthException","code",…}}.
std::string meta_error_body(long long code, const std::string &message, const std::string &details = {});

class Server {
 public:
  // Requests for another phone number id get 400; without "Bearer <token>" they get 401.
  Server(std::string phone_number_id, std::string token);
  ~Server();
  Server(const Server &) = delete;
  Server &operator=(const Server &) = delete;

  bool start(std::string *error = nullptr);
  void stop();
  std::string base_url() const;  // "http://127.0.0.1:PORT/v23.0"

  void add_rule(const Rule &rule);
  void clear_rules();
  // The wacid of the next connect (default: "wacid.fake-<n>").
  void set_next_call_id(const std::string &id);

  std::vector<Request> requests() const;
  std::vector<Request> requests_of(const std::string &action) const;
  // Waits (bounded) until `count` requests of `action` ("" = any) arrived.
  bool wait_requests(const std::string &action, size_t count, int timeout_ms) const;
  // Waits until `count` requests of `action` have been answered.
  bool wait_replies(const std::string &action, size_t count, int timeout_ms) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fake_graph
