// The fake Realtime server: a SoupServer on its own thread and GMainContext, the handshake checks,
// and the public API, which marshals every action onto that thread. The protocol itself lives in
// fake-connection.cpp and fake-response.cpp.
#include "fake-realtime-server.h"

#include "fake-connection.h"
#include "fake-state.h"

#include <libsoup/soup.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <list>
#include <mutex>
#include <thread>

namespace fake_realtime {

using detail::ConnectInfo;
using detail::Connection;

namespace {

constexpr const char *kPath = "/v1/realtime";
constexpr gsize kMaxIncomingPayload = 32 * 1024 * 1024;  // appends may carry up to 15 MiB (docs §7)
constexpr int kInvokeTimeoutMs = 5000;
constexpr int kCloseGraceMs = 200;  // how long stop() waits for clients to answer a close frame
constexpr int kDrainTimeoutMs = 1000;

std::string header(SoupServerMessage *msg, const char *name) {
  const char *v = soup_message_headers_get_one(soup_server_message_get_request_headers(msg), name);
  return v ? v : "";
}

// The credential as ConnectionLog.authorization records it.
std::string authorization_of(SoupServerMessage *msg) {
  std::string auth = header(msg, "Authorization");
  if (!auth.empty())
    return auth;
  std::string key = header(msg, "api-key");
  return key.empty() ? "" : "api-key: " + key;
}

// Bearer token, Azure's api-key header, or the browser subprotocol "openai-insecure-api-key.<key>".
bool key_matches(SoupServerMessage *msg, const std::string &key) {
  if (header(msg, "Authorization") == "Bearer " + key || header(msg, "api-key") == key)
    return true;
  const std::string protocols = header(msg, "Sec-WebSocket-Protocol");
  const std::string wanted = "openai-insecure-api-key." + key;
  gchar **list = g_strsplit(protocols.c_str(), ",", -1);
  bool found = false;
  for (gchar **p = list; *p && !found; p++)
    found = wanted == g_strstrip(*p);
  g_strfreev(list);
  return found;
}

std::string model_of(SoupServerMessage *msg) {
  const char *query = g_uri_get_query(soup_server_message_get_uri(msg));
  if (!query)
    return "";
  GHashTable *params = g_uri_parse_params(query, -1, "&", G_URI_PARAMS_NONE, nullptr);
  if (!params)
    return "";
  const char *model = static_cast<const char *>(g_hash_table_lookup(params, "model"));
  std::string out = model ? model : "";
  g_hash_table_unref(params);
  return out;
}

}  // namespace

struct Server::Impl {
  explicit Impl(Config config) : state(std::move(config)) {}

  detail::SharedState state;
  GThread *thread = nullptr;
  GMainContext *context = nullptr;
  GMainLoop *loop = nullptr;
  std::atomic<uint16_t> bound_port{0};
  std::atomic<bool> running{false};

  // Startup report from the server thread.
  std::mutex start_mutex;
  std::condition_variable start_cv;
  bool start_done = false;
  std::string start_error;
  uint16_t requested_port = 0;

  // Server thread only.
  SoupServer *soup = nullptr;
  std::list<std::unique_ptr<Connection>> connections;
  bool reap_scheduled = false;
  std::atomic<int> live_websockets{0};  // SoupWebsocketConnections not yet finalized
  gint64 shutdown_started_us = 0;

  static gpointer thread_main(gpointer self);
  void run();
  bool listen();
  void drain();
  bool invoke(const std::function<void()> &fn);
  Connection *latest_open();
  void schedule_reap();
  static void on_handshake(SoupServer *, SoupServerMessage *msg, const char *, GHashTable *, gpointer self);
  static void on_websocket(SoupServer *, SoupServerMessage *msg, const char *, SoupWebsocketConnection *ws,
                           gpointer self);
  static void on_websocket_finalized(gpointer self, GObject *);
  static gboolean on_shutdown_tick(gpointer self);
};

gpointer Server::Impl::thread_main(gpointer self) {
  static_cast<Impl *>(self)->run();
  return nullptr;
}

void Server::Impl::run() {
  // Everything libsoup creates from here on attaches its sources to this context.
  g_main_context_push_thread_default(context);
  soup = soup_server_new("server-header", "fake-realtime/1 ", nullptr);
  const bool ok = listen();
  {
    std::lock_guard<std::mutex> l(start_mutex);
    start_done = true;
  }
  start_cv.notify_all();
  if (ok)
    g_main_loop_run(loop);
  g_debug("server loop finished, %zu connections left", connections.size());
  connections.clear();
  soup_server_disconnect(soup);
  g_object_unref(soup);
  soup = nullptr;
  drain();
  g_debug("server thread done (%d websockets not finalized)", live_websockets.load());
  g_main_context_pop_thread_default(context);
}

bool Server::Impl::listen() {
  // A plain handler on the same path runs before the WebSocket upgrade, so it can answer 401.
  soup_server_add_handler(soup, kPath, on_handshake, this, nullptr);
  char *protocols[] = {const_cast<char *>("realtime"), nullptr};
  soup_server_add_websocket_handler(soup, kPath, nullptr, protocols, on_websocket, this, nullptr);
  GSocketAddress *address = g_inet_socket_address_new_from_string("127.0.0.1", requested_port);
  GError *err = nullptr;
  const bool ok = soup_server_listen(soup, address, static_cast<SoupServerListenOptions>(0), &err);
  g_object_unref(address);
  if (!ok) {
    start_error = err ? err->message : "soup_server_listen failed";
    g_clear_error(&err);
    return false;
  }
  GSList *listeners = soup_server_get_listeners(soup);
  if (listeners) {
    GSocketAddress *local = g_socket_get_local_address(G_SOCKET(listeners->data), nullptr);
    if (local) {
      bound_port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(local));
      g_object_unref(local);
    }
  }
  g_slist_free(listeners);
  if (bound_port == 0) {
    start_error = "could not read the listening port";
    return false;
  }
  return true;
}

// libsoup finishes closing dropped sockets asynchronously; let it, so nothing outlives the server.
void Server::Impl::drain() {
  const gint64 deadline = g_get_monotonic_time() + kDrainTimeoutMs * 1000;
  while (g_get_monotonic_time() < deadline) {
    while (g_main_context_iteration(context, FALSE)) {
    }
    if (live_websockets == 0)
      break;
    g_usleep(1000);
  }
  while (g_main_context_iteration(context, FALSE)) {
  }
}

bool Server::Impl::invoke(const std::function<void()> &fn) {
  if (!running)
    return false;
  struct Call {
    std::function<void()> fn;
    std::mutex mutex;
    std::condition_variable cv;
    bool done = false;
  };
  auto call = std::make_shared<Call>();
  call->fn = fn;
  g_main_context_invoke_full(
      context, G_PRIORITY_DEFAULT,
      [](gpointer data) -> gboolean {
        auto &c = *static_cast<std::shared_ptr<Call> *>(data);
        c->fn();
        {
          std::lock_guard<std::mutex> l(c->mutex);
          c->done = true;
        }
        c->cv.notify_all();
        return G_SOURCE_REMOVE;
      },
      new std::shared_ptr<Call>(call), [](gpointer data) { delete static_cast<std::shared_ptr<Call> *>(data); });
  std::unique_lock<std::mutex> l(call->mutex);
  return call->cv.wait_for(l, std::chrono::milliseconds(kInvokeTimeoutMs), [&] { return call->done; });
}

Connection *Server::Impl::latest_open() {
  for (auto it = connections.rbegin(); it != connections.rend(); ++it)
    if ((*it)->is_open())
      return it->get();
  return nullptr;
}

// Connections report themselves finished from inside libsoup signal emissions; delete them later.
void Server::Impl::schedule_reap() {
  if (reap_scheduled)
    return;
  reap_scheduled = true;
  GSource *idle = g_idle_source_new();
  g_source_set_callback(
      idle,
      [](gpointer data) -> gboolean {
        auto *impl = static_cast<Impl *>(data);
        impl->reap_scheduled = false;
        impl->connections.remove_if([](const std::unique_ptr<Connection> &c) { return c->is_gone(); });
        return G_SOURCE_REMOVE;
      },
      this, nullptr);
  g_source_attach(idle, context);
  g_source_unref(idle);
}

void Server::Impl::on_handshake(SoupServer *, SoupServerMessage *msg, const char *, GHashTable *, gpointer self) {
  auto *impl = static_cast<Impl *>(self);
  const std::string key = impl->state.config().required_api_key;
  if (key.empty() || key_matches(msg, key))
    return;  // no status set: libsoup goes on with the WebSocket upgrade
  impl->state.record_rejected_handshake(authorization_of(msg));
  static const char body[] =
      "{\"error\":{\"message\":\"Incorrect API key provided.\",\"type\":\"invalid_request_error\","
      "\"param\":null,\"code\":\"invalid_api_key\"}}";
  soup_server_message_set_status(msg, SOUP_STATUS_UNAUTHORIZED, nullptr);
  soup_server_message_set_response(msg, "application/json", SOUP_MEMORY_STATIC, body, sizeof body - 1);
}

void Server::Impl::on_websocket(SoupServer *, SoupServerMessage *msg, const char *, SoupWebsocketConnection *ws,
                                gpointer self) {
  auto *impl = static_cast<Impl *>(self);
  ConnectInfo info{authorization_of(msg), model_of(msg), header(msg, "OpenAI-Beta")};
  ConnectionLog log;
  log.authorization = info.authorization;
  log.model = info.model;
  log.beta_header = info.beta_header;
  const int index = impl->state.add_connection(std::move(log));
  soup_websocket_connection_set_max_incoming_payload_size(ws, kMaxIncomingPayload);
  impl->live_websockets++;
  g_object_weak_ref(G_OBJECT(ws), on_websocket_finalized, impl);
  g_debug("connection %d accepted (model '%s')", index, info.model.c_str());
  impl->connections.push_back(std::make_unique<Connection>(impl->state, index, ws, std::move(info),
                                                           [impl](Connection *) { impl->schedule_reap(); }));
  impl->connections.back()->start();
}

void Server::Impl::on_websocket_finalized(gpointer self, GObject *) {
  static_cast<Impl *>(self)->live_websockets--;
}

// Stopping: close frames first, then, after a short grace period, drop whoever did not answer.
gboolean Server::Impl::on_shutdown_tick(gpointer self) {
  auto *impl = static_cast<Impl *>(self);
  bool all_gone = true;
  for (auto &c : impl->connections)
    all_gone = all_gone && c->is_gone();
  if (!all_gone && g_get_monotonic_time() - impl->shutdown_started_us < kCloseGraceMs * 1000)
    return G_SOURCE_CONTINUE;
  for (auto &c : impl->connections)
    c->drop();
  g_main_loop_quit(impl->loop);
  return G_SOURCE_REMOVE;
}

Server::Server(Config config) : impl_(std::make_unique<Impl>(std::move(config))) {}

Server::~Server() {
  stop();
}

bool Server::start(uint16_t port, std::string *error) {
  Impl &d = *impl_;
  if (d.thread) {
    if (error)
      *error = "already started";
    return false;
  }
  d.context = g_main_context_new();
  d.loop = g_main_loop_new(d.context, FALSE);
  d.requested_port = port;
  d.start_done = false;
  d.start_error.clear();
  d.bound_port = 0;
  d.thread = g_thread_new("fake-realtime", Impl::thread_main, &d);
  {
    std::unique_lock<std::mutex> l(d.start_mutex);
    d.start_cv.wait(l, [&] { return d.start_done; });  // listen() never blocks
  }
  if (d.bound_port == 0) {
    g_thread_join(d.thread);
    d.thread = nullptr;
    g_main_loop_unref(d.loop);
    g_main_context_unref(d.context);
    d.loop = nullptr;
    d.context = nullptr;
    if (error)
      *error = d.start_error;
    return false;
  }
  d.running = true;
  return true;
}

void Server::stop() {
  Impl &d = *impl_;
  if (!d.thread)
    return;
  d.invoke([&d] {
    d.shutdown_started_us = g_get_monotonic_time();
    for (auto &c : d.connections)
      c->close(SOUP_WEBSOCKET_CLOSE_GOING_AWAY, "server shutting down");
    GSource *tick = g_timeout_source_new(5);
    g_source_set_callback(tick, Impl::on_shutdown_tick, &d, nullptr);
    g_source_attach(tick, d.context);
    g_source_unref(tick);
  });
  d.running = false;
  g_thread_join(d.thread);
  d.thread = nullptr;
  g_main_loop_unref(d.loop);
  g_main_context_unref(d.context);
  d.loop = nullptr;
  d.context = nullptr;
}

uint16_t Server::port() const {
  return impl_->bound_port;
}

std::string Server::url() const {
  return "ws://127.0.0.1:" + std::to_string(port()) + kPath;
}

int Server::connection_count() const {
  return impl_->state.connection_count();
}
ConnectionLog Server::connection(int index) const {
  return impl_->state.connection(index);
}
std::vector<uint8_t> Server::all_input_audio() const {
  return impl_->state.all_input_audio();
}
std::vector<TruncateRecord> Server::truncates() const {
  return impl_->state.truncates();
}
std::vector<std::string> Server::deleted_items() const {
  return impl_->state.deleted_items();
}
std::vector<std::string> Server::errors_sent() const {
  return impl_->state.errors_sent();
}
int Server::responses_started() const {
  return impl_->state.responses_started();
}
int Server::responses_cancelled() const {
  return impl_->state.responses_cancelled();
}
int Server::speech_started_count() const {
  return impl_->state.speech_started_count();
}
std::vector<std::string> Server::function_outputs() const {
  return impl_->state.function_outputs();
}
std::vector<std::string> Server::response_instructions() const {
  return impl_->state.response_instructions();
}
std::vector<std::string> Server::rejected_handshakes() const {
  return impl_->state.rejected_handshakes();
}

bool Server::wait_for(const std::function<bool()> &pred, int timeout_ms) const {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline)
      return pred();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

void Server::drop_connections() {
  impl_->invoke([this] {
    for (auto &c : impl_->connections)
      c->drop();
  });
}

void Server::start_response(const std::string &instructions) {
  impl_->invoke([this, instructions] {
    if (Connection *c = impl_->latest_open())
      c->start_unprompted_response(instructions);
  });
}

void Server::emit_speech_started() {
  impl_->invoke([this] {
    if (Connection *c = impl_->latest_open())
      c->emit_speech_started();
  });
}

void Server::expire_sessions() {
  impl_->invoke([this] {
    for (auto &c : impl_->connections)
      c->expire();
  });
}

void Server::set_config(const Config &config) {
  impl_->state.set_config(config);
}

}  // namespace fake_realtime
