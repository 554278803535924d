#include "http-post.h"

#include <gio/gio.h>
#include <libsoup/soup.h>

#include <utility>

#ifndef VERSION
#define VERSION "unknown"
#endif

namespace vb {

namespace {

constexpr gsize kReadChunk = 16 * 1024;

// One session for every POST: connections to the same service are reused between calls. Created on
// first use, on the main context, which libsoup binds it to; never freed (it lives as long as the
// process, like the main context).
SoupSession *shared_session() {
  static SoupSession *session = nullptr;
  if (!session) {
    // No libsoup I/O timeout: every request has its own deadline (Pending::timer), in milliseconds.
    // libsoup allows 2 connections per host by default: calls starting together would queue for the
    // hook behind each other and miss its deadline.
    session = soup_session_new_with_options("timeout", 0u, "user-agent", "voicebridge/" VERSION, "max-conns", 256,
                                            "max-conns-per-host", 64, nullptr);
  }
  return session;
}

struct Pending {
  std::function<void(const HttpPostResult &)> done;
  HttpPostResult result;
  SoupMessage *msg = nullptr;
  GCancellable *cancellable = nullptr;
  GInputStream *stream = nullptr;
  guint timer = 0;
  gint64 started_us = 0;
  int timeout_ms = 0;
};

// Reports the result and frees everything. The only exit of a request.
void finish(Pending *p, const std::string &error) {
  if (p->timer) g_source_remove(p->timer);
  p->timer = 0;
  if (!error.empty()) {
    p->result.error = p->result.timed_out
                          ? "no reply within " + std::to_string(p->timeout_ms) + " ms"
                          : error;
  }
  p->result.duration_ms = (g_get_monotonic_time() - p->started_us) / 1000.0;
  if (p->stream) g_object_unref(p->stream);
  if (p->msg) g_object_unref(p->msg);
  g_object_unref(p->cancellable);
  auto done = std::move(p->done);
  HttpPostResult result = std::move(p->result);
  delete p;
  done(result);
}

void on_read(GObject *source, GAsyncResult *res, gpointer data) {
  auto *p = static_cast<Pending *>(data);
  GError *err = nullptr;
  GBytes *bytes = g_input_stream_read_bytes_finish(G_INPUT_STREAM(source), res, &err);
  if (!bytes) {
    std::string why = std::string("reading the reply failed: ") + err->message;
    g_error_free(err);
    finish(p, why);
    return;
  }
  gsize n = 0;
  const char *chunk = static_cast<const char *>(g_bytes_get_data(bytes, &n));
  if (n == 0) {  // end of the body
    g_bytes_unref(bytes);
    finish(p, "");
    return;
  }
  if (p->result.body.size() + n > kHttpPostMaxReplyBytes) {
    g_bytes_unref(bytes);
    finish(p, "the reply is larger than " + std::to_string(kHttpPostMaxReplyBytes) + " bytes");
    return;
  }
  p->result.body.append(chunk, n);
  g_bytes_unref(bytes);
  g_input_stream_read_bytes_async(p->stream, kReadChunk, G_PRIORITY_DEFAULT, p->cancellable, on_read, p);
}

void on_sent(GObject *source, GAsyncResult *res, gpointer data) {
  auto *p = static_cast<Pending *>(data);
  GError *err = nullptr;
  p->stream = soup_session_send_finish(SOUP_SESSION(source), res, &err);
  if (!p->stream) {
    std::string why = std::string("no reply: ") + err->message;
    g_error_free(err);
    finish(p, why);
    return;
  }
  p->result.status = (int)soup_message_get_status(p->msg);
  g_input_stream_read_bytes_async(p->stream, kReadChunk, G_PRIORITY_DEFAULT, p->cancellable, on_read, p);
}

gboolean on_deadline(gpointer data) {
  auto *p = static_cast<Pending *>(data);
  p->timer = 0;
  p->result.timed_out = true;
  // The pending send or read then completes with G_IO_ERROR_CANCELLED and calls finish().
  g_cancellable_cancel(p->cancellable);
  return G_SOURCE_REMOVE;
}

}  // namespace

void http_post_json(const std::string &url, const std::string &json_body, int timeout_ms,
                    std::function<void(const HttpPostResult &)> done) {
  auto *p = new Pending();
  p->done = std::move(done);
  p->started_us = g_get_monotonic_time();
  p->timeout_ms = timeout_ms;
  p->cancellable = g_cancellable_new();
  p->msg = soup_message_new("POST", url.c_str());
  if (!p->msg) {
    // Settings validate the URLs; this is only reached through a programming error. Still async, as
    // promised.
    g_idle_add(
        [](gpointer data) -> gboolean {
          finish(static_cast<Pending *>(data), "the URL is not usable");
          return G_SOURCE_REMOVE;
        },
        p);
    return;
  }
  // A redirect would turn the POST into a GET (RFC 9110 §15.4): report it instead.
  soup_message_add_flags(p->msg, SOUP_MESSAGE_NO_REDIRECT);
  soup_message_headers_replace(soup_message_get_request_headers(p->msg), "Accept", "application/json");
  GBytes *body = g_bytes_new(json_body.data(), json_body.size());
  soup_message_set_request_body_from_bytes(p->msg, "application/json", body);
  g_bytes_unref(body);
  p->timer = g_timeout_add((guint)(timeout_ms > 0 ? timeout_ms : 1), on_deadline, p);
  soup_session_send_async(shared_session(), p->msg, G_PRIORITY_DEFAULT, p->cancellable, on_sent, p);
}

}  // namespace vb
