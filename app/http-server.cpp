#include "http-server.h"

#include <algorithm>

#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

namespace vb {

std::string error_json(const std::string &code, const std::string &message) {
  JsonBuilder *b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "error");
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "code");
  json_builder_add_string_value(b, code.c_str());
  json_builder_set_member_name(b, "message");
  json_builder_add_string_value(b, message.c_str());
  json_builder_end_object(b);
  json_builder_end_object(b);
  JsonNode *root = json_builder_get_root(b);
  gchar *text = json_to_string(root, FALSE);
  std::string out(text);
  g_free(text);
  json_node_unref(root);
  g_object_unref(b);
  return out;
}

static void set_response(SoupServerMessage *msg, int status, const std::string &content_type,
                         const std::string &body) {
  soup_server_message_set_status(msg, status, nullptr);
  // libsoup 3.2 leaves a server socket in CLOSE_WAIT when a keep-alive client goes away: one fd
  // per connection, forever. Closing after each reply costs a TCP handshake per API request only.
  soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Connection", "close");
  soup_server_message_set_response(msg, content_type.c_str(), SOUP_MEMORY_COPY, body.data(), body.size());
}

// ---- HttpRequest ----

HttpRequest::HttpRequest(SoupServerMessage *msg, const std::string &path) : msg_(msg), path_(path) {
  method_ = soup_server_message_get_method(msg);
  SoupMessageBody *body = soup_server_message_get_request_body(msg);
  if (body) {
    // Flattening gives one contiguous, NUL-terminated buffer owned by the message.
    GBytes *flat = soup_message_body_flatten(body);
    g_bytes_unref(flat);
    body_ = body->data;
    body_size_ = (size_t)body->length;
  }
}

HttpRequest::~HttpRequest() = default;

std::string HttpRequest::header(const char *name) const {
  const char *v = soup_message_headers_get_one(soup_server_message_get_request_headers(msg_), name);
  return v ? v : "";
}

std::string HttpRequest::query(const char *name) const {
  GUri *uri = soup_server_message_get_uri(msg_);
  const char *q = g_uri_get_query(uri);
  if (!q) return "";
  GHashTable *params = g_uri_parse_params(q, -1, "&", G_URI_PARAMS_NONE, nullptr);
  if (!params) return "";
  const char *v = static_cast<const char *>(g_hash_table_lookup(params, name));
  std::string out = v ? v : "";
  g_hash_table_unref(params);
  return out;
}

void HttpRequest::reply(int status, const std::string &content_type, const std::string &body) {
  set_response(msg_, status, content_type, body);
}

void HttpRequest::reply_error(int status, const std::string &code, const std::string &message) {
  reply_json(status, error_json(code, message));
}

std::shared_ptr<HttpRequest::Deferred> HttpRequest::defer() {
  deferred_ = true;
  return std::make_shared<Deferred>(msg_);
}

HttpRequest::Deferred::Deferred(SoupServerMessage *msg) : msg_(SOUP_SERVER_MESSAGE(g_object_ref(msg))) {
  soup_server_message_pause(msg_);
}

HttpRequest::Deferred::~Deferred() {
  // Never leave a client hanging: a deferred reply that nobody sent becomes a 500.
  if (!done_) reply_error(500, "internal_error", "the request was dropped without a reply");
  g_object_unref(msg_);
}

void HttpRequest::Deferred::reply(int status, const std::string &content_type, const std::string &body) {
  if (done_) return;
  done_ = true;
  set_response(msg_, status, content_type, body);
  soup_server_message_unpause(msg_);
}

void HttpRequest::Deferred::reply_error(int status, const std::string &code, const std::string &message) {
  reply_json(status, error_json(code, message));
}

// ---- HttpServer ----

HttpServer::HttpServer(size_t max_body_bytes, Handler handler)
    : max_body_bytes_(max_body_bytes), handler_(std::move(handler)) {
  server_ = soup_server_new("server-header", "voicebridge/" VERSION " ", nullptr);
  soup_server_add_early_handler(server_, nullptr, &HttpServer::on_early, this, nullptr);
  soup_server_add_handler(server_, nullptr, &HttpServer::on_request, this, nullptr);
}

HttpServer::~HttpServer() {
  disconnect();
  g_object_unref(server_);
}

void HttpServer::disconnect() {
  if (service_) {
    g_socket_service_stop(service_);
    g_socket_listener_close(G_SOCKET_LISTENER(service_));
    g_signal_handlers_disconnect_by_data(service_, this);
    g_clear_object(&service_);
  }
  soup_server_disconnect(server_);
  if (!unix_path_.empty()) {
    g_unlink(unix_path_.c_str());
    unix_path_.clear();
  }
}

void HttpServer::on_early(SoupServer *, SoupServerMessage *msg, const char *, GHashTable *, gpointer user_data) {
  auto *self = static_cast<HttpServer *>(user_data);
  // Refuse an announced oversized body before reading it.
  goffset length = soup_message_headers_get_content_length(soup_server_message_get_request_headers(msg));
  if (length > 0 && (size_t)length > self->max_body_bytes_)
    set_response(msg, 413, "application/json",
                 error_json("body_too_large", "request bodies are limited to " + std::to_string(self->max_body_bytes_) +
                                                  " bytes"));
}

void HttpServer::on_request(SoupServer *, SoupServerMessage *msg, const char *path, GHashTable *, gpointer user_data) {
  auto *self = static_cast<HttpServer *>(user_data);
  if (soup_server_message_get_status(msg) == 413) return;  // answered by the early handler
  HttpRequest request(msg, path ? path : "/");
  // Bodies without a Content-Length (chunked) are checked once read.
  if (request.body_size() > self->max_body_bytes_) {
    request.reply_error(413, "body_too_large",
                        "request bodies are limited to " + std::to_string(self->max_body_bytes_) + " bytes");
    return;
  }
  self->handler_(request);
}

// Hands each accepted connection to libsoup. We accept ourselves instead of soup_server_listen()
// because libsoup 3.2's listener leaks the GSocket of every accepted connection (fixed upstream in
// 3.4, commit b545d5f0): ~340 bytes per HTTP request, forever.
gboolean HttpServer::on_incoming(GSocketService *, GSocketConnection *connection, GObject *, gpointer user_data) {
  auto *self = static_cast<HttpServer *>(user_data);
  GSocketAddress *local = g_socket_connection_get_local_address(connection, nullptr);
  GSocketAddress *remote = g_socket_connection_get_remote_address(connection, nullptr);
  GError *err = nullptr;
  if (!soup_server_accept_iostream(self->server_, G_IO_STREAM(connection), local, remote, &err)) {
    g_warning("HTTP connection refused: %s", err ? err->message : "unknown error");
    g_clear_error(&err);
  }
  if (local) g_object_unref(local);
  if (remote) g_object_unref(remote);
  return TRUE;
}

bool HttpServer::listen(const std::string &address, std::string *error) {
  GSocketAddress *socket_address = nullptr;
  std::string unix_path;
  if (address.rfind("unix:", 0) == 0) {
    unix_path = address.substr(5);
    g_unlink(unix_path.c_str());  // a stale socket of an earlier run
    socket_address = g_unix_socket_address_new(unix_path.c_str());
  } else {
    size_t colon = address.rfind(':');
    if (colon == std::string::npos) {
      *error = "cannot listen on " + address + ": expected HOST:PORT or unix:PATH";
      return false;
    }
    std::string host = address.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    if (host == "localhost") host = "127.0.0.1";
    if (host.empty() || host == "*") host = "0.0.0.0";
    guint64 port = g_ascii_strtoull(address.c_str() + colon + 1, nullptr, 10);
    GInetAddress *inet = g_inet_address_new_from_string(host.c_str());
    if (!inet) {
      *error = "cannot listen on " + address + ": '" + host + "' is not an IP address";
      return false;
    }
    socket_address = g_inet_socket_address_new(inet, (guint16)port);
    g_object_unref(inet);
  }
  if (!service_) {
    service_ = g_socket_service_new();
    g_signal_connect(service_, "incoming", G_CALLBACK(&HttpServer::on_incoming), this);
  }
  GError *err = nullptr;
  GSocketAddress *effective = nullptr;
  gboolean ok = g_socket_listener_add_address(G_SOCKET_LISTENER(service_), socket_address, G_SOCKET_TYPE_STREAM,
                                              G_SOCKET_PROTOCOL_DEFAULT, nullptr, &effective, &err);
  g_object_unref(socket_address);
  if (!ok) {
    *error = std::string("cannot listen on ") + address + ": " + err->message;
    g_error_free(err);
    return false;
  }
  g_socket_service_start(service_);
  if (!unix_path.empty()) {
    unix_path_ = unix_path;
    addresses_.push_back(address);
  } else if (effective && G_IS_INET_SOCKET_ADDRESS(effective)) {
    // The bound port (port 0 picks one).
    GInetSocketAddress *isa = G_INET_SOCKET_ADDRESS(effective);
    gchar *ip = g_inet_address_to_string(g_inet_socket_address_get_address(isa));
    std::string shown = g_inet_address_get_family(g_inet_socket_address_get_address(isa)) == G_SOCKET_FAMILY_IPV6
                            ? std::string("[") + ip + "]"
                            : std::string(ip);
    std::string url = "http://" + shown + ":" + std::to_string(g_inet_socket_address_get_port(isa));
    if (std::find(addresses_.begin(), addresses_.end(), url) == addresses_.end()) addresses_.push_back(url);
    g_free(ip);
  }
  if (effective) g_object_unref(effective);
  return true;
}

std::vector<std::string> HttpServer::addresses() const { return addresses_; }

}  // namespace vb
