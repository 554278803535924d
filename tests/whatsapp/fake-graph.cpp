#include "fake-graph.h"

#include <chrono>
#include <cstring>
#include <condition_variable>
#include <mutex>

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

namespace fake_graph {

namespace {

std::string json_text(JsonBuilder *b) {
  JsonNode *root = json_builder_get_root(b);
  gchar *text = json_to_string(root, FALSE);
  std::string out(text);
  g_free(text);
  json_node_unref(root);
  g_object_unref(b);
  return out;
}

std::string str_member(JsonObject *o, const char *name) {
  if (!o || !json_object_has_member(o, name)) return "";
  JsonNode *n = json_object_get_member(o, name);
  if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING) return "";
  return json_node_get_string(n);
}

}  // namespace

std::string meta_error_body(long long code, const std::string &message, const std::string &details) {
  JsonBuilder *b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "error");
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "message");
  json_builder_add_string_value(b, message.c_str());
  json_builder_set_member_name(b, "type");
  json_builder_add_string_value(b, "OAuthException");
  json_builder_set_member_name(b, "code");
  json_builder_add_int_value(b, code);
  json_builder_set_member_name(b, "error_data");
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "messaging_product");
  json_builder_add_string_value(b, "whatsapp");
  json_builder_set_member_name(b, "details");
  json_builder_add_string_value(b, details.empty() ? message.c_str() : details.c_str());
  json_builder_end_object(b);
  json_builder_set_member_name(b, "fbtrace_id");
  json_builder_add_string_value(b, "AbCdEfFakeTrace");
  json_builder_end_object(b);
  json_builder_end_object(b);
  return json_text(b);
}

struct Server::Impl {
  std::string phone_number_id;
  std::string token;
  GThread *thread = nullptr;
  GMainContext *context = nullptr;
  GMainLoop *loop = nullptr;
  SoupServer *soup = nullptr;
  uint16_t port = 0;
  std::string start_error;

  mutable std::mutex mutex;
  mutable std::condition_variable cv;
  bool started = false;
  std::vector<Rule> rules;
  std::vector<Request> requests;
  std::string next_call_id;
  int connects = 0;

  static gpointer thread_main(gpointer data);
  static void on_request(SoupServer *, SoupServerMessage *msg, const char *path, GHashTable *, gpointer data);
  void answer(SoupServerMessage *msg, size_t index, int status, const std::string &body);
};

gpointer Server::Impl::thread_main(gpointer data) {
  auto *d = static_cast<Impl *>(data);
  g_main_context_push_thread_default(d->context);
  d->soup = soup_server_new("server-header", "fake-graph/1 ", nullptr);
  soup_server_add_handler(d->soup, "/", &Impl::on_request, d, nullptr);
  GSocketAddress *address = g_inet_socket_address_new_from_string("127.0.0.1", 0);
  GError *err = nullptr;
  bool ok = soup_server_listen(d->soup, address, (SoupServerListenOptions)0, &err);
  g_object_unref(address);
  if (ok) {
    GSList *listeners = soup_server_get_listeners(d->soup);
    GSocketAddress *local = listeners ? g_socket_get_local_address(G_SOCKET(listeners->data), nullptr) : nullptr;
    if (local) {
      d->port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(local));
      g_object_unref(local);
    }
    g_slist_free(listeners);
  } else {
    d->start_error = err ? err->message : "listen failed";
    g_clear_error(&err);
  }
  {
    std::lock_guard<std::mutex> lock(d->mutex);
    d->started = true;
  }
  d->cv.notify_all();
  if (ok) g_main_loop_run(d->loop);
  soup_server_disconnect(d->soup);
  g_object_unref(d->soup);
  d->soup = nullptr;
  while (g_main_context_iteration(d->context, FALSE)) {
  }
  g_main_context_pop_thread_default(d->context);
  return nullptr;
}

void Server::Impl::answer(SoupServerMessage *msg, size_t index, int status, const std::string &body) {
  soup_server_message_set_status(msg, status, nullptr);
  soup_server_message_set_response(msg, "application/json", SOUP_MEMORY_COPY, body.data(), body.size());
  std::lock_guard<std::mutex> lock(mutex);
  requests[index].status = status;
  requests[index].replied_us = g_get_monotonic_time();
  cv.notify_all();
}

void Server::Impl::on_request(SoupServer *, SoupServerMessage *msg, const char *path, GHashTable *, gpointer data) {
  auto *d = static_cast<Impl *>(data);
  Request r;
  r.received_us = g_get_monotonic_time();
  r.path = path ? path : "";
  SoupMessageHeaders *headers = soup_server_message_get_request_headers(msg);
  const char *auth = soup_message_headers_get_one(headers, "Authorization");
  r.authorization = auth ? auth : "";
  const char *ctype = soup_message_headers_get_content_type(headers, nullptr);
  r.content_type = ctype ? ctype : "";
  SoupMessageBody *body = soup_server_message_get_request_body(msg);
  if (body) {
    GBytes *flat = soup_message_body_flatten(body);
    gsize size = 0;
    const char *p = static_cast<const char *>(g_bytes_get_data(flat, &size));
    r.body.assign(p ? p : "", size);
    g_bytes_unref(flat);
  }
  JsonParser *parser = json_parser_new();
  if (!r.body.empty() && json_parser_load_from_data(parser, r.body.data(), (gssize)r.body.size(), nullptr) &&
      JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser))) {
    JsonObject *o = json_node_get_object(json_parser_get_root(parser));
    r.action = str_member(o, "action");
    r.call_id = str_member(o, "call_id");
    r.to = str_member(o, "to");
    r.messaging_product = str_member(o, "messaging_product");
    if (json_object_has_member(o, "session") && JSON_NODE_HOLDS_OBJECT(json_object_get_member(o, "session"))) {
      JsonObject *s = json_object_get_object_member(o, "session");
      r.sdp = str_member(s, "sdp");
      r.sdp_type = str_member(s, "sdp_type");
    }
  }
  g_object_unref(parser);

  // What Meta would answer, unless a rule says otherwise.
  int status = 200;
  std::string reply;
  int delay_ms = 0;
  size_t index;
  {
    std::lock_guard<std::mutex> lock(d->mutex);
    std::string expected_path_tail = "/" + d->phone_number_id + "/calls";
    bool path_ok = strcmp(soup_server_message_get_method(msg), "POST") == 0 && r.path.rfind("/v", 0) == 0 &&
                   r.path.size() > expected_path_tail.size() &&
                   r.path.compare(r.path.size() - expected_path_tail.size(), expected_path_tail.size(),
                                  expected_path_tail) == 0;
    if (r.authorization != "Bearer " + d->token) {
      status = 401;
      reply = meta_error_body(190, "Invalid OAuth access token - Cannot parse access token");
    } else if (!path_ok) {
      status = 400;
      reply = meta_error_body(100, "Unsupported post request: wrong path " + r.path);
    } else {
      for (auto &rule : d->rules) {
        if (rule.times == 0 || (!rule.action.empty() && rule.action != r.action)) continue;
        if (rule.times > 0) rule.times--;
        status = rule.status;
        reply = rule.body;
        delay_ms = rule.delay_ms;
        break;
      }
    }
    if (reply.empty() && status >= 200 && status < 300) {
      if (r.action == "connect") {
        r.reply_call_id = d->next_call_id.empty() ? "wacid.fake-" + std::to_string(++d->connects) : d->next_call_id;
        d->next_call_id.clear();
        reply = "{\"messaging_product\":\"whatsapp\",\"calls\":[{\"id\":\"" + r.reply_call_id + "\"}]}";
      } else {
        reply = "{\"messaging_product\":\"whatsapp\",\"success\":true}";
      }
    } else if (reply.empty()) {
      reply = meta_error_body(status == 429 ? 138005 : 131000, "scripted failure " + std::to_string(status));
    }
    index = d->requests.size();
    d->requests.push_back(r);
    d->cv.notify_all();
  }
  if (delay_ms <= 0) {
    d->answer(msg, index, status, reply);
    return;
  }
  // A slow Meta: hold the reply on this thread's context.
  struct Later {
    Impl *impl;
    SoupServerMessage *msg;
    size_t index;
    int status;
    std::string body;
  };
  soup_server_message_pause(msg);
  auto *later = new Later{d, SOUP_SERVER_MESSAGE(g_object_ref(msg)), index, status, reply};
  GSource *timer = g_timeout_source_new((guint)delay_ms);
  g_source_set_callback(
      timer,
      [](gpointer data) -> gboolean {
        auto *l = static_cast<Later *>(data);
        l->impl->answer(l->msg, l->index, l->status, l->body);
        soup_server_message_unpause(l->msg);
        return G_SOURCE_REMOVE;
      },
      later,
      [](gpointer data) {
        auto *l = static_cast<Later *>(data);
        g_object_unref(l->msg);
        delete l;
      });
  g_source_attach(timer, d->context);
  g_source_unref(timer);
}

Server::Server(std::string phone_number_id, std::string token) : impl_(new Impl()) {
  impl_->phone_number_id = std::move(phone_number_id);
  impl_->token = std::move(token);
}

Server::~Server() { stop(); }

bool Server::start(std::string *error) {
  Impl &d = *impl_;
  d.context = g_main_context_new();
  d.loop = g_main_loop_new(d.context, FALSE);
  d.thread = g_thread_new("fake-graph", &Impl::thread_main, &d);
  std::unique_lock<std::mutex> lock(d.mutex);
  d.cv.wait_for(lock, std::chrono::seconds(10), [&] { return d.started; });
  if (!d.started || d.port == 0) {
    if (error) *error = d.start_error.empty() ? "the fake Graph API did not start" : d.start_error;
    return false;
  }
  return true;
}

void Server::stop() {
  Impl &d = *impl_;
  if (!d.thread) return;
  g_main_context_invoke(
      d.context,
      [](gpointer data) -> gboolean {
        g_main_loop_quit(static_cast<GMainLoop *>(data));
        return G_SOURCE_REMOVE;
      },
      d.loop);
  g_thread_join(d.thread);
  d.thread = nullptr;
  g_main_loop_unref(d.loop);
  g_main_context_unref(d.context);
  d.loop = nullptr;
  d.context = nullptr;
}

std::string Server::base_url() const { return "http://127.0.0.1:" + std::to_string(impl_->port) + "/v23.0"; }

void Server::add_rule(const Rule &rule) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->rules.push_back(rule);
}

void Server::clear_rules() {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->rules.clear();
}

void Server::set_next_call_id(const std::string &id) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->next_call_id = id;
}

std::vector<Request> Server::requests() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->requests;
}

std::vector<Request> Server::requests_of(const std::string &action) const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  std::vector<Request> out;
  for (const auto &r : impl_->requests)
    if (r.action == action) out.push_back(r);
  return out;
}

bool Server::wait_requests(const std::string &action, size_t count, int timeout_ms) const {
  std::unique_lock<std::mutex> lock(impl_->mutex);
  return impl_->cv.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] {
    size_t n = 0;
    for (const auto &r : impl_->requests)
      if (action.empty() || r.action == action) n++;
    return n >= count;
  });
}

bool Server::wait_replies(const std::string &action, size_t count, int timeout_ms) const {
  std::unique_lock<std::mutex> lock(impl_->mutex);
  return impl_->cv.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] {
    size_t n = 0;
    for (const auto &r : impl_->requests)
      if ((action.empty() || r.action == action) && r.replied_us) n++;
    return n >= count;
  });
}

}  // namespace fake_graph
