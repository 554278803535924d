#include "realtime-hub.h"

#include <condition_variable>
#include <mutex>

namespace realtime {

namespace {

struct Task {
  std::function<void()> fn;
};

gboolean run_task(gpointer data) {
  static_cast<Task *>(data)->fn();
  return G_SOURCE_REMOVE;
}

void free_task(gpointer data) { delete static_cast<Task *>(data); }

struct ReadyLatch {
  std::mutex mutex;
  std::condition_variable cond;
  bool ready = false;
};

}  // namespace

Hub &Hub::get() {
  // Never destroyed: the hub lives as long as the process, like GStreamer's own system clock thread.
  static Hub *hub = new Hub();
  return *hub;
}

Hub::Hub() {
  context_ = g_main_context_new();
  loop_ = g_main_loop_new(context_, FALSE);
  ReadyLatch latch;
  thread_ = g_thread_new("realtime-hub", &Hub::thread_main, this);
  // The SoupSession must be created on the hub thread (libsoup: session APIs belong to the thread
  // that created the session), so wait until the thread has made it.
  post([&latch] {
    std::lock_guard<std::mutex> lock(latch.mutex);
    latch.ready = true;
    latch.cond.notify_one();
  });
  std::unique_lock<std::mutex> lock(latch.mutex);
  latch.cond.wait(lock, [&] { return latch.ready; });
}

gpointer Hub::thread_main(gpointer data) {
  auto *self = static_cast<Hub *>(data);
  g_main_context_push_thread_default(self->context_);
  self->soup_ = soup_session_new_with_options("user-agent", "voicebridge-openairealtime/" VERSION,
                                              "timeout", 30, "idle-timeout", 60, nullptr);
  g_main_loop_run(self->loop_);
  return nullptr;
}

bool Hub::on_hub_thread() const { return g_main_context_is_owner(context_); }

void Hub::post(std::function<void()> fn) {
  GSource *source = g_idle_source_new();
  g_source_set_priority(source, G_PRIORITY_DEFAULT);
  g_source_set_callback(source, run_task, new Task{std::move(fn)}, free_task);
  g_source_attach(source, context_);
  g_source_unref(source);
}

guint Hub::add_timer(guint delay_ms, std::function<void()> fn) {
  GSource *source = g_timeout_source_new(delay_ms);
  g_source_set_callback(source, run_task, new Task{std::move(fn)}, free_task);
  guint id = g_source_attach(source, context_);
  g_source_unref(source);
  return id;
}

void Hub::cancel_timer(guint id) {
  if (id == 0) return;
  GSource *source = g_main_context_find_source_by_id(context_, id);
  if (source) g_source_destroy(source);
}

namespace {

struct WakeupSource {
  GSource source;
  std::function<void()> *fn;
};

gboolean wakeup_dispatch(GSource *source, GSourceFunc, gpointer) {
  g_source_set_ready_time(source, -1);  // disarm first: a raise during fn arms it again
  (*reinterpret_cast<WakeupSource *>(source)->fn)();
  return G_SOURCE_CONTINUE;
}

void wakeup_finalize(GSource *source) { delete reinterpret_cast<WakeupSource *>(source)->fn; }

GSourceFuncs wakeup_funcs = {nullptr, nullptr, wakeup_dispatch, wakeup_finalize, nullptr, nullptr};

}  // namespace

HubWakeup::HubWakeup(std::function<void()> fn) {
  source_ = g_source_new(&wakeup_funcs, sizeof(WakeupSource));
  reinterpret_cast<WakeupSource *>(source_)->fn = new std::function<void()>(std::move(fn));
  g_source_set_priority(source_, G_PRIORITY_DEFAULT);
  g_source_set_name(source_, "realtime-hub-wakeup");
  g_source_attach(source_, Hub::get().context());
}

HubWakeup::~HubWakeup() {
  g_source_destroy(source_);
  g_source_unref(source_);  // the closure goes with the last reference, after a running dispatch
}

// g_source_set_ready_time() is thread-safe and wakes the hub's context when called from another
// thread; setting 0 makes the source ready at once.
void HubWakeup::raise() { g_source_set_ready_time(source_, 0); }

}  // namespace realtime
