// The process-wide Realtime hub: one thread with its own GMainContext that owns the SoupSession and
// every Realtime WebSocket. Streaming threads never touch the network; they hand work to the hub.
// Created on first use, so the elements work under gst-launch-1.0 as well as inside the app.
#pragma once

#include <functional>

#include <glib.h>
#include <libsoup/soup.h>

namespace realtime {

class Hub {
 public:
  static Hub &get();

  GMainContext *context() const { return context_; }
  // Only to be used on the hub thread.
  SoupSession *soup() const { return soup_; }
  bool on_hub_thread() const;

  // Runs fn on the hub thread, always asynchronously (never inline in the caller), in FIFO order.
  void post(std::function<void()> fn);
  // Runs fn on the hub thread after delay_ms; returns a source id for cancel_timer (hub thread only).
  guint add_timer(guint delay_ms, std::function<void()> fn);
  void cancel_timer(guint id);

 private:
  Hub();
  static gpointer thread_main(gpointer self);

  GMainContext *context_ = nullptr;
  GMainLoop *loop_ = nullptr;
  SoupSession *soup_ = nullptr;
  GThread *thread_ = nullptr;
};

// A wake-up of the hub that any thread can raise without allocating: the hub runs fn once per
// raise (raises before it runs coalesce). For work that recurs every 20 ms per call, where posting
// a new idle source each time would allocate a GSource, a closure and a task.
class HubWakeup {
 public:
  explicit HubWakeup(std::function<void()> fn);
  ~HubWakeup();  // any thread; fn is never run after this returns unless it is already running
  HubWakeup(const HubWakeup &) = delete;
  HubWakeup &operator=(const HubWakeup &) = delete;

  void raise();

 private:
  GSource *source_;
};

}  // namespace realtime
