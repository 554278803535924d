#include "http-client.h"

#include <vector>

#include <gio/gunixsocketaddress.h>
#include <json-glib/json-glib.h>

#include "json-guard.h"

namespace vbcall {

struct HttpClient::Request {
  HttpClient *client;
  std::shared_ptr<bool> alive;
  SoupMessage *msg = nullptr;
  GCancellable *cancel = nullptr;
  GSource *timer = nullptr;
  bool timed_out = false;
  Callback done;
};

bool HttpResponse::error_body(std::string &code, std::string &message) const {
  JsonParser *parser = json_parser_new();
  bool found = false;
  if (vb::json_depth_ok(body.data(), body.size()) &&
      json_parser_load_from_data(parser, body.data(), (gssize)body.size(), nullptr)) {
    JsonNode *root = json_parser_get_root(parser);
    if (root && JSON_NODE_HOLDS_OBJECT(root)) {
      JsonObject *obj = json_node_get_object(root);
      JsonNode *err = json_object_get_member(obj, "error");
      if (err && JSON_NODE_HOLDS_OBJECT(err)) {
        JsonObject *e = json_node_get_object(err);
        code = json_object_get_string_member_with_default(e, "code", "");
        message = json_object_get_string_member_with_default(e, "message", "");
        found = !code.empty();
      }
    }
  }
  g_object_unref(parser);
  return found;
}

std::string HttpResponse::describe() const {
  if (status == 0)
    return error;
  std::string text = "HTTP " + std::to_string(status);
  std::string code, message;
  if (error_body(code, message)) {
    text += " " + code;
    if (!message.empty())
      text += ": " + message;
  } else if (const char *phrase = soup_status_get_phrase(status)) {
    text += " ";
    text += phrase;
  }
  return text;
}

HttpClient::HttpClient(std::string base, const std::string &unix_socket, std::string token)
    : base_(std::move(base)), token_(std::move(token)), context_(g_main_context_ref_thread_default()) {
  if (!unix_socket.empty()) {
    // libsoup 3.2+: every connection of the session goes to this address, whatever the URL says.
    GSocketAddress *addr = g_unix_socket_address_new(unix_socket.c_str());
    session_ = soup_session_new_with_options("remote-connectable", addr, "user-agent",
                                             "voicebridge-call/" VERSION, nullptr);
    g_object_unref(addr);
  } else {
    session_ = soup_session_new_with_options("user-agent", "voicebridge-call/" VERSION, nullptr);
  }
}

HttpClient::~HttpClient() {
  *alive_ = false;
  // A copy: cancelling may complete a request synchronously, and r must not be touched after that.
  std::vector<Request *> left(pending_.begin(), pending_.end());
  pending_.clear();
  for (Request *r : left) {
    if (r->timer) {
      g_source_destroy(r->timer);
      g_source_unref(r->timer);
      r->timer = nullptr;
    }
    if (!r->msg) {  // never sent: nothing else will free it
      g_object_unref(r->cancel);
      delete r;
      continue;
    }
    g_cancellable_cancel(r->cancel);  // on_sent still frees it, seeing alive == false
  }
  g_object_unref(session_);
  g_main_context_unref(context_);
}

void HttpClient::request(const char *method, const std::string &path, const std::string &json_body,
                         guint timeout_ms, Callback done) {
  auto *r = new Request{this, alive_};
  r->done = std::move(done);
  r->cancel = g_cancellable_new();
  std::string url = base_ + path;
  r->msg = soup_message_new(method, url.c_str());
  pending_.insert(r);
  if (!r->msg) {
    // Reported from an idle callback so that `done` is never re-entered from request().
    r->timer = g_idle_source_new();
    g_source_set_callback(
        r->timer,
        [](gpointer data) -> gboolean {
          auto *req = static_cast<Request *>(data);
          g_source_unref(req->timer);
          req->timer = nullptr;
          HttpResponse resp;
          resp.error = "invalid URL";
          req->client->finish(req, resp);
          return G_SOURCE_REMOVE;
        },
        r, nullptr);
    g_source_attach(r->timer, context_);
    return;
  }
  SoupMessageHeaders *hdrs = soup_message_get_request_headers(r->msg);
  soup_message_headers_replace(hdrs, "Accept", "application/json");
  if (!token_.empty()) {
    std::string auth = "Bearer " + token_;
    soup_message_headers_replace(hdrs, "Authorization", auth.c_str());
  }
  if (!json_body.empty()) {
    GBytes *bytes = g_bytes_new(json_body.data(), json_body.size());
    soup_message_set_request_body_from_bytes(r->msg, "application/json", bytes);
    g_bytes_unref(bytes);
  }
  r->timer = g_timeout_source_new(timeout_ms);
  g_source_set_callback(r->timer, on_timeout, r, nullptr);
  g_source_attach(r->timer, context_);
  soup_session_send_and_read_async(session_, r->msg, G_PRIORITY_DEFAULT, r->cancel, on_sent, r);
}

gboolean HttpClient::on_timeout(gpointer data) {
  auto *r = static_cast<Request *>(data);
  g_source_unref(r->timer);
  r->timer = nullptr;
  r->timed_out = true;
  g_cancellable_cancel(r->cancel);  // on_sent follows with G_IO_ERROR_CANCELLED
  return G_SOURCE_REMOVE;
}

void HttpClient::on_sent(GObject *source, GAsyncResult *res, gpointer data) {
  auto *r = static_cast<Request *>(data);
  GError *err = nullptr;
  GBytes *bytes = soup_session_send_and_read_finish(SOUP_SESSION(source), res, &err);
  HttpResponse resp;
  if (bytes) {
    resp.status = soup_message_get_status(r->msg);
    gsize len = 0;
    const char *p = static_cast<const char *>(g_bytes_get_data(bytes, &len));
    resp.body.assign(p ? p : "", len);
    g_bytes_unref(bytes);
  } else {
    resp.error = r->timed_out ? "timed out" : err->message;
    g_error_free(err);
  }
  if (*r->alive) {
    r->client->finish(r, resp);
    return;
  }
  // The client is gone: only release what the request holds.
  g_object_unref(r->msg);
  g_object_unref(r->cancel);
  delete r;
}

void HttpClient::finish(Request *r, const HttpResponse &resp) {
  if (r->timer) {
    g_source_destroy(r->timer);
    g_source_unref(r->timer);
    r->timer = nullptr;
  }
  pending_.erase(r);
  Callback done = std::move(r->done);
  if (r->msg)
    g_object_unref(r->msg);
  g_object_unref(r->cancel);
  delete r;
  // Last: `done` may start new requests or even destroy this client.
  done(resp);
}

void HttpClient::cancel_all() {
  // A copy: GTask may deliver the cancellation synchronously, which erases from pending_.
  std::vector<GCancellable *> cancels;
  for (Request *r : pending_)
    cancels.push_back(G_CANCELLABLE(g_object_ref(r->cancel)));
  for (GCancellable *c : cancels) {
    g_cancellable_cancel(c);
    g_object_unref(c);
  }
}

}  // namespace vbcall
