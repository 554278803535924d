// The HTTP API of CONTRACT.md §3: routes, authentication, request validation and JSON replies. The
// WhatsApp routes register through `extra` so this file stays about the call API.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "call-manager.h"
#include "config.h"
#include "http-server.h"

namespace vb {

class Api {
 public:
  Api(const Config &config, CallManager &calls);
  // Dispatches one request (the HttpServer handler).
  void handle(HttpRequest &request);

  // Routes added by other modules (WhatsApp): returns true when it handled the request.
  using ExtraRoute = std::function<bool(HttpRequest &request)>;
  void add_route(ExtraRoute route) { extra_.push_back(std::move(route)); }

 private:
  bool authorized(HttpRequest &request) const;
  void create_call(HttpRequest &request, bool legacy);
  void stop_legacy(HttpRequest &request);
  void call_route(HttpRequest &request, const std::string &rest);

  const Config &config_;
  CallManager &calls_;
  std::vector<ExtraRoute> extra_;
};

}  // namespace vb
