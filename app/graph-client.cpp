#include "graph-client.h"

#include <algorithm>
#include <set>

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include "log.h"
#include "metrics.h"
#include "request-util.h"
#include "whatsapp-webhook.h"

namespace vb {
namespace wa {

namespace {

const char *const kRequestsMetric = "voicebridge_whatsapp_graph_requests_total";
const char *const kErrorsMetric = "voicebridge_whatsapp_errors_total";

std::string builder_text(JsonBuilder *b) {
  JsonNode *root = json_builder_get_root(b);
  gchar *text = json_to_string(root, FALSE);
  std::string out(text);
  g_free(text);
  json_node_unref(root);
  g_object_unref(b);
  return out;
}

void add_string(JsonBuilder *b, const char *name, const std::string &value) {
  json_builder_set_member_name(b, name);
  json_builder_add_string_value(b, value.c_str());
}

void add_session(JsonBuilder *b, const char *sdp_type, const std::string &sdp) {
  json_builder_set_member_name(b, "session");
  json_builder_begin_object(b);
  add_string(b, "sdp_type", sdp_type);
  add_string(b, "sdp", sdp);
  json_builder_end_object(b);
}

JsonObject *object_member(JsonObject *o, const char *name) {
  if (!o || !json_object_has_member(o, name)) return nullptr;
  JsonNode *n = json_object_get_member(o, name);
  return JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : nullptr;
}

std::string string_member(JsonObject *o, const char *name) {
  if (!o || !json_object_has_member(o, name)) return "";
  JsonNode *n = json_object_get_member(o, name);
  if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING) return "";
  return json_node_get_string(n);
}

long long int_member(JsonObject *o, const char *name) {
  if (!o || !json_object_has_member(o, name)) return 0;
  JsonNode *n = json_object_get_member(o, name);
  if (!JSON_NODE_HOLDS_VALUE(n)) return 0;
  if (json_node_get_value_type(n) == G_TYPE_INT64) return json_node_get_int(n);
  if (json_node_get_value_type(n) == G_TYPE_STRING) return g_ascii_strtoll(json_node_get_string(n), nullptr, 10);
  return 0;
}

bool retriable(const GraphError &e) { return e.http_status == 0 || e.http_status >= 500 || e.http_status == 429; }

}  // namespace

std::string GraphError::describe(const std::string &action) const {
  std::string out = "Graph API " + action + " failed: ";
  out += http_status ? "HTTP " + std::to_string(http_status) : std::string("no response");
  if (code) {
    const char *meaning = meta_error_meaning(code);
    out += ", Meta error " + std::to_string(code);
    if (meaning) out += std::string(" (") + meaning + ")";
    if (subcode) out += ", subcode " + std::to_string(subcode);
  }
  if (!message.empty()) out += ": " + message;
  // Meta often repeats the message as the details.
  if (!details.empty() && details != message) out += " [" + details + "]";
  return out;
}

// ---- Bodies ------------------------------------------------------------------------------------

std::string GraphClient::answer_body(const std::string &action, const std::string &call_id, const std::string &sdp) {
  JsonBuilder *b = json_builder_new();
  json_builder_begin_object(b);
  add_string(b, "messaging_product", "whatsapp");
  add_string(b, "call_id", call_id);
  add_string(b, "action", action);
  // "answer" on both pre_accept and accept, whatever the parameter tables say (docs §3, pitfall 1).
  add_session(b, "answer", sdp);
  json_builder_end_object(b);
  return builder_text(b);
}

std::string GraphClient::simple_body(const std::string &action, const std::string &call_id) {
  JsonBuilder *b = json_builder_new();
  json_builder_begin_object(b);
  add_string(b, "messaging_product", "whatsapp");
  add_string(b, "call_id", call_id);
  add_string(b, "action", action);
  json_builder_end_object(b);
  return builder_text(b);
}

std::string GraphClient::connect_body(const std::string &to, const std::string &sdp) {
  JsonBuilder *b = json_builder_new();
  json_builder_begin_object(b);
  add_string(b, "messaging_product", "whatsapp");
  add_string(b, "to", to);
  add_string(b, "action", "connect");
  add_session(b, "offer", sdp);
  json_builder_end_object(b);
  return builder_text(b);
}

GraphResult GraphClient::read_response(const std::string &action, int http_status, const std::string &body) {
  GraphResult r;
  r.error.http_status = http_status;
  // Checked for depth and strictness before json-glib parses it (request-util.h): a hostile or
  // broken endpoint (a proxy, a mistyped Graph URL) must not be able to overflow the stack.
  std::string why;
  JsonNode *node = body.empty() ? nullptr : parse_untrusted_json(body.data(), body.size(), &why);
  JsonObject *root = node && JSON_NODE_HOLDS_OBJECT(node) ? json_node_get_object(node) : nullptr;
  if (http_status >= 200 && http_status < 300) {
    if (!node && !body.empty()) {
      r.error.message = "the response is " + why;
    } else if (action == "connect") {
      // {"messaging_product":"whatsapp","calls":[{"id":"wacid.…"}]}
      JsonArray *calls = nullptr;
      if (root && json_object_has_member(root, "calls") && JSON_NODE_HOLDS_ARRAY(json_object_get_member(root, "calls")))
        calls = json_object_get_array_member(root, "calls");
      if (calls && json_array_get_length(calls) > 0 && JSON_NODE_HOLDS_OBJECT(json_array_get_element(calls, 0)))
        r.call_id = string_member(json_node_get_object(json_array_get_element(calls, 0)), "id");
      r.ok = !r.call_id.empty();
      if (!r.ok) r.error.message = "the response has no calls[0].id";
    } else {
      JsonNode *success = root && json_object_has_member(root, "success") ? json_object_get_member(root, "success") : nullptr;
      r.ok = success && JSON_NODE_HOLDS_VALUE(success) && json_node_get_value_type(success) == G_TYPE_BOOLEAN &&
             json_node_get_boolean(success);
      if (!r.ok) r.error.message = "the response does not say \"success\":true";
    }
  } else {
    JsonObject *error = object_member(root, "error");
    if (error) {
      r.error.message = string_member(error, "message");
      r.error.code = int_member(error, "code");
      r.error.subcode = int_member(error, "error_subcode");
      r.error.details = string_member(object_member(error, "error_data"), "details");
    } else if (check_json_text(body.data(), body.size()) == JsonCheck::TooDeep) {
      r.error.message = "the response is " + why;  // an excerpt would be a line of brackets
    } else {
      // Not Meta's shape (a proxy's page, say): keep a short excerpt for the log.
      r.error.message = body.substr(0, 200);
    }
  }
  if (node) json_node_unref(node);
  return r;
}

// ---- Requests ----------------------------------------------------------------------------------

struct GraphClient::Impl {
  SoupSession *session = nullptr;
  std::set<std::shared_ptr<Request>> pending;
};

struct GraphClient::Request {
  GraphClient *owner = nullptr;
  std::string action;
  std::string call_id;  // for logs ("" for connect until Meta names the call)
  std::string body;
  Done done;
  int attempts = 0;
  gint64 start_us = 0;
  int backoff_ms = 0;
  GCancellable *cancellable = nullptr;
  guint retry_timer = 0;
  guint attempt_timer = 0;
  bool timed_out = false;

  ~Request() {
    if (retry_timer) g_source_remove(retry_timer);
    if (attempt_timer) g_source_remove(attempt_timer);
    if (cancellable) {
      g_cancellable_cancel(cancellable);
      g_object_unref(cancellable);
    }
  }
  double elapsed_ms() const { return (g_get_monotonic_time() - start_us) / 1000.0; }
};

GraphClient::GraphClient(GraphOptions options) : options_(std::move(options)), impl_(new Impl()) {
  url_ = options_.base_url + "/" + options_.phone_number_id + "/calls";
  // Timeouts are ours (attempt_timeout_ms, total_ms), so libsoup's own stay off.
  impl_->session = soup_session_new_with_options("user-agent", "voicebridge/" VERSION " ", "timeout", 0u, nullptr);
  Metrics::get().declare_labelled(kRequestsMetric, "counter",
                                  "WhatsApp Graph API calling actions, by action and final result.", true);
  Metrics::get().declare_labelled(kErrorsMetric, "counter",
                                  "WhatsApp errors reported by Meta (webhooks and Graph API responses), by code.", true);
}

GraphClient::~GraphClient() {
  // Dropping the requests cancels them; their callbacks find nothing (weak references).
  impl_->pending.clear();
  soup_session_abort(impl_->session);
  g_object_unref(impl_->session);
}

size_t GraphClient::in_flight() const { return impl_->pending.size(); }

void GraphClient::flush(int timeout_ms) {
  gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
  while (!impl_->pending.empty() && g_get_monotonic_time() < deadline) {
    // Never block: a request's own timers wake the context, but the deadline must be honoured too.
    if (!g_main_context_iteration(nullptr, FALSE)) g_usleep(1000);
  }
}

void GraphClient::pre_accept(const std::string &call_id, const std::string &answer_sdp, Done done) {
  post("pre_accept", call_id, answer_body("pre_accept", call_id, answer_sdp), std::move(done));
}

void GraphClient::accept(const std::string &call_id, const std::string &answer_sdp, Done done) {
  post("accept", call_id, answer_body("accept", call_id, answer_sdp), std::move(done));
}

void GraphClient::reject(const std::string &call_id, Done done) {
  post("reject", call_id, simple_body("reject", call_id), std::move(done));
}

void GraphClient::terminate(const std::string &call_id, Done done) {
  post("terminate", call_id, simple_body("terminate", call_id), std::move(done));
}

void GraphClient::connect(const std::string &to, const std::string &offer_sdp, Done done) {
  post("connect", "", connect_body(to, offer_sdp), std::move(done));
}

void GraphClient::post(const std::string &action, const std::string &call_id, std::string body, Done done) {
  auto request = std::make_shared<Request>();
  request->owner = this;
  request->action = action;
  request->call_id = call_id;
  request->body = std::move(body);
  request->done = std::move(done);
  request->start_us = g_get_monotonic_time();
  request->backoff_ms = options_.first_backoff_ms;
  impl_->pending.insert(request);
  send(request);
}

void GraphClient::send(const std::shared_ptr<Request> &request) {
  request->attempts++;
  request->timed_out = false;
  if (request->cancellable) g_object_unref(request->cancellable);
  request->cancellable = g_cancellable_new();

  SoupMessage *msg = soup_message_new("POST", url_.c_str());
  if (!msg) {
    GraphResult r;
    r.error.message = "the Graph API URL is not usable: " + options_.base_url;
    finish(request, r);
    return;
  }
  SoupMessageHeaders *headers = soup_message_get_request_headers(msg);
  std::string auth = "Bearer " + options_.token;
  soup_message_headers_replace(headers, "Authorization", auth.c_str());
  soup_message_headers_replace(headers, "Accept", "application/json");
  GBytes *bytes = g_bytes_new(request->body.data(), request->body.size());
  soup_message_set_request_body_from_bytes(msg, "application/json", bytes);
  g_bytes_unref(bytes);

  // Bounded: no attempt outlives the total budget.
  int remaining = options_.total_ms - (int)request->elapsed_ms();
  int timeout = std::max(1, std::min(options_.attempt_timeout_ms, remaining));
  request->attempt_timer = g_timeout_add_full(
      G_PRIORITY_DEFAULT, (guint)timeout,
      [](gpointer data) -> gboolean {
        if (auto r = static_cast<std::weak_ptr<Request> *>(data)->lock()) {
          r->attempt_timer = 0;
          r->timed_out = true;
          g_cancellable_cancel(r->cancellable);
        }
        return G_SOURCE_REMOVE;
      },
      new std::weak_ptr<Request>(request), [](gpointer data) { delete static_cast<std::weak_ptr<Request> *>(data); });
  // The callback gets a weak reference (the client may be gone by then) and the message's reference.
  soup_session_send_and_read_async(impl_->session, msg, G_PRIORITY_DEFAULT, request->cancellable, &GraphClient::on_sent,
                                   new SendData(request, msg));
}

void GraphClient::on_sent(GObject *source, GAsyncResult *res, gpointer data) {
  auto *sent = static_cast<SendData *>(data);
  GError *err = nullptr;
  GBytes *bytes = soup_session_send_and_read_finish(SOUP_SESSION(source), res, &err);
  auto request = sent->first.lock();
  SoupMessage *msg = sent->second;
  delete sent;
  if (!request) {  // the client is gone
    g_clear_error(&err);
    if (bytes) g_bytes_unref(bytes);
    g_object_unref(msg);
    return;
  }
  GraphClient *self = request->owner;
  if (request->attempt_timer) {
    g_source_remove(request->attempt_timer);
    request->attempt_timer = 0;
  }
  GraphResult result;
  if (err) {
    result.error.http_status = 0;
    result.error.message = request->timed_out ? "no response within the attempt timeout" : err->message;
    g_error_free(err);
  } else {
    gsize size = 0;
    const char *data_ptr = static_cast<const char *>(g_bytes_get_data(bytes, &size));
    std::string body(data_ptr ? data_ptr : "", size);
    result = read_response(request->action, (int)soup_message_get_status(msg), body);
  }
  if (bytes) g_bytes_unref(bytes);
  g_object_unref(msg);
  if (result.ok) {
    self->finish(request, result);
  } else if (retriable(result.error)) {
    self->schedule_retry(request, result);
  } else {
    self->finish(request, result);
  }
}

void GraphClient::schedule_retry(const std::shared_ptr<Request> &request, const GraphResult &failed) {
  int delay = request->backoff_ms;
  if (request->elapsed_ms() + delay >= options_.total_ms) {
    finish(request, failed);
    return;
  }
  log_event(LogLevel::Warning, "WA_GRAPH_RETRY", request->call_id, failed.error.describe(request->action),
            {{"action", request->action},
             {"attempt", request->attempts},
             {"http_status", failed.error.http_status},
             {"retry_in_ms", delay}});
  request->backoff_ms = std::min(request->backoff_ms * 2, options_.max_backoff_ms);
  request->retry_timer = g_timeout_add_full(
      G_PRIORITY_DEFAULT, (guint)delay,
      [](gpointer data) -> gboolean {
        if (auto r = static_cast<std::weak_ptr<Request> *>(data)->lock()) {
          r->retry_timer = 0;
          r->owner->send(r);
        }
        return G_SOURCE_REMOVE;
      },
      new std::weak_ptr<Request>(request), [](gpointer data) { delete static_cast<std::weak_ptr<Request> *>(data); });
}

void GraphClient::finish(const std::shared_ptr<Request> &request, GraphResult result) {
  result.attempts = request->attempts;
  result.elapsed_ms = request->elapsed_ms();
  std::string call_id = result.call_id.empty() ? request->call_id : result.call_id;
  Metrics::get().counter_add(kRequestsMetric, {{"action", request->action}, {"result", result.ok ? "ok" : "error"}});
  if (result.ok) {
    log_event(LogLevel::Debug, "WA_GRAPH_OK", call_id, "Graph API " + request->action + " succeeded",
              {{"action", request->action}, {"attempts", result.attempts}, {"elapsed_ms", result.elapsed_ms}});
  } else {
    if (result.error.code)
      Metrics::get().counter_add(kErrorsMetric, {{"code", std::to_string(result.error.code)}, {"source", "graph"}});
    log_event(LogLevel::Error, "WA_GRAPH_ERROR", call_id, result.error.describe(request->action),
              {{"action", request->action},
               {"attempts", result.attempts},
               {"elapsed_ms", result.elapsed_ms},
               {"http_status", result.error.http_status},
               {"code", result.error.code}});
  }
  // Out of the pending set before the callback: it may destroy this client.
  Done done = std::move(request->done);
  impl_->pending.erase(request);
  if (done) done(result);
}

}  // namespace wa
}  // namespace vb
