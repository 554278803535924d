// A small asynchronous JSON POST to the operator's own services (the call-config hook, the tool
// webhook, the transcript receiver), on the main context, with a hard deadline in milliseconds.
//
//   http_post_json(url, R"({"a":1})", 1500, [](const HttpPostResult &r) {
//     if (r.ok()) use(r.body); else log(r.error);
//   });
//
// `done` runs exactly once, on the main context, never from inside http_post_json itself (so a
// caller may hold state across the call). Redirects are not followed: a 3xx is reported as it is.
// Errors never contain the URL, which may carry credentials.
#pragma once

#include <functional>
#include <string>

namespace vb {

struct HttpPostResult {
  int status = 0;          // HTTP status; 0 when no response arrived (see error)
  std::string body;        // the response body (at most kHttpPostMaxReplyBytes)
  std::string error;       // empty on a complete response; else why there is none (human text)
  bool timed_out = false;  // the deadline passed first
  double duration_ms = 0;  // request sent → reply read (or failure)

  bool ok() const { return error.empty() && status >= 200 && status < 300; }
};

// Replies above this are an error: the services answer with small JSON documents, and a runaway
// reply must not grow the service's memory.
constexpr size_t kHttpPostMaxReplyBytes = 1024 * 1024;

void http_post_json(const std::string &url, const std::string &json_body, int timeout_ms,
                    std::function<void(const HttpPostResult &)> done);

}  // namespace vb
