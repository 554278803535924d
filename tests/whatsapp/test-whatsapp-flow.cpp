// In-process tests of the WhatsApp orchestration (app/whatsapp.cpp) with the real CallManager,
// Api and HttpServer on this thread's main context, the fake Realtime server and the fake Graph
// API: the orderings and timers that the end-to-end tests cannot reach quickly (no answer after
// RINGING, webhooks that overtake the Graph response, ending a call Meta has not named yet, retries
// running out, refusing calls when full, error counting).
#include <gst/check/gstcheck.h>

#include <fcntl.h>
#include <unistd.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "api.h"
#include "call-manager.h"
#include "fake-graph.h"
#include "fake-realtime-server.h"
#include "http-server.h"
#include "log.h"
#include "metrics.h"
#include "service.h"
#include "wa-harness.h"
#include "whatsapp.h"

namespace {

// Runs the main context until pred() or the deadline.
bool spin_until(const std::function<bool()> &pred, int timeout_ms) {
  gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
  while (!pred()) {
    if (g_get_monotonic_time() > deadline) return false;
    g_main_context_iteration(nullptr, FALSE);
    g_usleep(1000);
  }
  return true;
}

void spin(int ms) {
  spin_until([] { return false; }, ms);
}

// The service's log lines, captured from stderr (fd 2) while the fixture lives.
class LogCapture {
 public:
  LogCapture() {
    fflush(stderr);
    saved_ = dup(2);
    int fds[2];
    if (pipe(fds) != 0) return;
    dup2(fds[1], 2);
    close(fds[1]);
    read_fd_ = fds[0];
    reader_ = std::thread([this] {
      char buf[4096];
      ssize_t n;
      while ((n = read(read_fd_, buf, sizeof buf)) > 0) {
        std::lock_guard<std::mutex> lock(mutex_);
        text_.append(buf, (size_t)n);
      }
    });
  }
  ~LogCapture() {
    fflush(stderr);
    dup2(saved_, 2);  // closes the pipe's write end: the reader sees EOF
    close(saved_);
    if (reader_.joinable()) reader_.join();
    close(read_fd_);
    if (g_getenv("WA_TEST_VERBOSE")) fputs(text().c_str(), stderr);
  }
  std::string text() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return text_;
  }
  // A JSON log line with this event (and call id, when given).
  bool has(const std::string &event, const std::string &call_id = {}) const {
    std::string t = text();
    size_t at = 0;
    std::string key = "\"event\":\"" + event + "\"";
    while ((at = t.find(key, at)) != std::string::npos) {
      size_t start = t.rfind('\n', at);
      size_t end = t.find('\n', at);
      std::string line = t.substr(start == std::string::npos ? 0 : start, end - (start == std::string::npos ? 0 : start));
      if (call_id.empty() || line.find("\"call_id\":\"" + call_id + "\"") != std::string::npos) return true;
      at += key.size();
    }
    return false;
  }

 private:
  int saved_ = -1, read_fd_ = -1;
  std::thread reader_;
  mutable std::mutex mutex_;
  std::string text_;
};

// The service's parts, wired as service.cpp wires them, on this thread's main context.
struct Bridge {
  LogCapture logs;
  fake_realtime::Server realtime;
  fake_graph::Server graph{wa_test::kPhoneId, wa_test::kToken};
  vb::Config config;
  std::unique_ptr<vb::CallManager> calls;
  std::unique_ptr<vb::Api> api;
  std::shared_ptr<vb::WhatsApp> whatsapp;
  std::unique_ptr<vb::HttpServer> server;
  std::string base_url;

  explicit Bridge(vb::WhatsAppOptions options = {}, int max_calls = 10) {
    vb::log_init(vb::LogFormat::Json, vb::LogLevel::Debug);
    std::string error;
    fail_unless(realtime.start(0, &error), "%s", error.c_str());
    fail_unless(graph.start(&error), "%s", error.c_str());
    config.ice_addresses = {"127.0.0.1"};
    config.realtime_url = realtime.url();
    config.max_calls = max_calls;
    config.whatsapp_token = wa_test::kToken;
    config.whatsapp_app_secret = wa_test::kAppSecret;
    config.whatsapp_verify_token = wa_test::kVerifyToken;
    config.whatsapp_phone_number_id = wa_test::kPhoneId;
    config.whatsapp_graph_url = graph.base_url();
    config.instructions = "test";
    calls = std::make_unique<vb::CallManager>(config, realtime.url());
    api = std::make_unique<vb::Api>(config, *calls);
    whatsapp = std::make_shared<vb::WhatsApp>(config, *calls, options);
    std::weak_ptr<vb::WhatsApp> weak = whatsapp;
    api->add_route([weak](vb::HttpRequest &r) {
      auto w = weak.lock();
      return w && w->handle(r);
    });
    calls->set_ended_observer([weak](vb::Call &c) {
      if (auto w = weak.lock()) w->on_call_ended(c);
    });
    vb::Api *a = api.get();
    server = std::make_unique<vb::HttpServer>(config.max_body_bytes, [a](vb::HttpRequest &r) { a->handle(r); });
    fail_unless(server->listen("127.0.0.1:0", &error), "%s", error.c_str());
    base_url = server->addresses().at(0);
  }
  ~Bridge() {
    server.reset();
    calls->end_all("shutdown");
    spin(50);
    whatsapp.reset();
    api.reset();
    calls.reset();
    graph.stop();
    realtime.stop();
  }

  // An HTTP request from another thread while this one runs the main context (the server's).
  wa_test::HttpResponse request(const std::string &method, const std::string &path, const std::string &body = {}) {
    wa_test::HttpResponse out;
    bool done = false;
    std::mutex m;
    std::thread t([&] {
      auto r = wa_test::http(method, base_url + path, body);
      std::lock_guard<std::mutex> lock(m);
      out = r;
      done = true;
    });
    spin_until(
        [&] {
          std::lock_guard<std::mutex> lock(m);
          return done;
        },
        30000);
    t.join();
    return out;
  }

  std::shared_ptr<vb::Call> call(const std::string &id) const { return calls->find(id); }
  // Waits (running the main context, where the service's parts live) for Graph requests or a log line.
  bool wait_requests(const std::string &action, size_t n, int timeout_ms) {
    return spin_until([&] { return graph.requests_of(action).size() >= n; }, timeout_ms);
  }
  bool saw(const std::string &event, const std::string &call_id, int timeout_ms = 3000) {
    return spin_until([&] { return logs.has(event, call_id); }, timeout_ms);
  }
  bool ended_with(const std::string &id, const std::string &reason, int timeout_ms) {
    return spin_until(
        [&] {
          auto c = call(id);
          return c && c->state() == vb::CallState::Ended && c->end_reason() == reason;
        },
        timeout_ms);
  }
};

// POST /v1/whatsapp/calls in the background; the fixture keeps spinning the main context.
struct Placing {
  std::thread thread;
  std::mutex m;
  bool done = false;
  wa_test::HttpResponse response;
  Placing(const std::string &base_url, const std::string &body) {
    thread = std::thread([this, base_url, body] {
      auto r = wa_test::http("POST", base_url + "/v1/whatsapp/calls", body);
      std::lock_guard<std::mutex> lock(m);
      response = r;
      done = true;
    });
  }
  ~Placing() {
    if (thread.joinable()) thread.join();
  }
  bool finished() {
    std::lock_guard<std::mutex> lock(m);
    return done;
  }
};

}  // namespace

GST_START_TEST(test_no_answer_after_ringing) {
  vb::WhatsAppOptions options;
  options.ring_timeout_s = 1;
  Bridge b(options);
  auto r = b.request("POST", "/v1/whatsapp/calls", "{\"to\":\"15551234567\"}");
  fail_unless_equals_int(r.status, 202);
  std::string wacid = wa_test::json_path(r.body, "call_id");
  auto connect = b.graph.requests_of("connect");
  fail_unless_equals_int((int)connect.size(), 1);
  wa_test::SilentPort peer;
  b.whatsapp->process_webhook(wa_test::bic_connect_webhook(wacid, wa_test::meta_answer(connect[0].sdp, peer.port())));
  b.whatsapp->process_webhook(wa_test::status_webhook(wacid, "RINGING"));
  fail_unless(b.saw("WA_CALL_RINGING", wacid));
  fail_unless(b.ended_with(wacid, "no_answer", 4000), "%s", b.logs.text().c_str());
  fail_unless(b.wait_requests("terminate", 1, 5000));
  WA_ASSERT_STR_EQ(b.graph.requests_of("terminate")[0].call_id, wacid);
  fail_unless(b.saw("WA_CALL_NO_ANSWER", wacid));
}
GST_END_TEST;

GST_START_TEST(test_accepted_stops_ring_timer) {
  vb::WhatsAppOptions options;
  options.ring_timeout_s = 1;
  Bridge b(options);
  auto r = b.request("POST", "/v1/whatsapp/calls", "{\"to\":\"15551234567\"}");
  fail_unless_equals_int(r.status, 202);
  std::string wacid = wa_test::json_path(r.body, "call_id");
  b.whatsapp->process_webhook(wa_test::status_webhook(wacid, "RINGING"));
  b.whatsapp->process_webhook(wa_test::status_webhook(wacid, "ACCEPTED"));
  fail_unless(b.saw("WA_CALL_ACCEPTED", wacid));
  spin(1800);
  auto call = b.call(wacid);
  fail_unless(call && call->state() != vb::CallState::Ended, "ended: %s", call ? call->end_reason().c_str() : "?");
  fail_unless_equals_int((int)b.graph.requests_of("terminate").size(), 0);
}
GST_END_TEST;

GST_START_TEST(test_webhooks_before_graph_response) {
  // Meta's webhooks may overtake the Graph response that names the call: they are held and replayed.
  Bridge b;
  const std::string wacid = "wacid.early-1";
  b.graph.set_next_call_id(wacid);
  b.graph.add_rule({"connect", 1, 200, "{\"messaging_product\":\"whatsapp\",\"calls\":[{\"id\":\"" + wacid + "\"}]}", 800});
  Placing placing(b.base_url, "{\"to\":\"15551234567\"}");
  fail_unless(spin_until([&] { return !b.graph.requests_of("connect").empty(); }, 10000));
  std::string offer = b.graph.requests_of("connect")[0].sdp;
  wa_test::SilentPort peer;
  b.whatsapp->process_webhook(wa_test::bic_connect_webhook(wacid, wa_test::meta_answer(offer, peer.port())));
  b.whatsapp->process_webhook(wa_test::status_webhook(wacid, "RINGING"));
  b.whatsapp->process_webhook(wa_test::status_webhook(wacid, "ACCEPTED"));
  fail_unless(b.saw("WA_WEBHOOK_EARLY", wacid));
  fail_if(b.logs.has("WA_CALL_ACCEPTED", wacid));
  fail_unless(spin_until([&] { return placing.finished(); }, 10000));
  fail_unless_equals_int(placing.response.status, 202);
  WA_ASSERT_STR_EQ(wa_test::json_path(placing.response.body, "call_id"), wacid);
  fail_unless(b.saw("WA_CALL_ANSWER_APPLIED", wacid, 5000), "%s", b.logs.text().c_str());
  fail_unless(b.saw("WA_CALL_RINGING", wacid));
  fail_unless(b.saw("WA_CALL_ACCEPTED", wacid));
  fail_unless(b.saw("CALL_ROLES", wacid));
}
GST_END_TEST;

GST_START_TEST(test_terminate_before_graph_response) {
  Bridge b;
  const std::string wacid = "wacid.early-2";
  b.graph.add_rule({"connect", 1, 200, "{\"messaging_product\":\"whatsapp\",\"calls\":[{\"id\":\"" + wacid + "\"}]}", 600});
  Placing placing(b.base_url, "{\"to\":\"15551234567\"}");
  fail_unless(spin_until([&] { return !b.graph.requests_of("connect").empty(); }, 10000));
  b.whatsapp->process_webhook(wa_test::terminate_webhook(wacid));
  fail_unless(spin_until([&] { return placing.finished(); }, 10000));
  fail_unless_equals_int(placing.response.status, 202);
  fail_unless(b.ended_with(wacid, "terminated", 3000), "%s", b.logs.text().c_str());
  spin(300);
  fail_unless_equals_int((int)b.graph.requests_of("terminate").size(), 0);
}
GST_END_TEST;

GST_START_TEST(test_ended_before_named) {
  // The client deletes the call while Meta is still creating it: once named, it is terminated there.
  Bridge b;
  const std::string wacid = "wacid.late-1";
  b.graph.add_rule({"connect", 1, 200, "{\"messaging_product\":\"whatsapp\",\"calls\":[{\"id\":\"" + wacid + "\"}]}", 800});
  Placing placing(b.base_url, "{\"to\":\"15551234567\"}");
  fail_unless(spin_until([&] { return !b.graph.requests_of("connect").empty(); }, 10000));
  auto live = b.calls->list();
  fail_unless_equals_int((int)live.size(), 1);
  std::string temp_id = live[0]->id();
  auto del = b.request("DELETE", "/v1/calls/" + temp_id);
  fail_unless_equals_int(del.status, 200);
  fail_unless(spin_until([&] { return placing.finished(); }, 10000));
  fail_unless_equals_int(placing.response.status, 503);
  WA_ASSERT_STR_EQ(wa_test::json_path(placing.response.body, "error.code"), "call_ended");
  fail_unless(b.wait_requests("terminate", 1, 5000));
  WA_ASSERT_STR_EQ(b.graph.requests_of("terminate")[0].call_id, wacid);
}
GST_END_TEST;

GST_START_TEST(test_accept_retries_exhausted) {
  vb::WhatsAppOptions options;
  options.graph.total_ms = 1200;
  options.graph.first_backoff_ms = 100;
  Bridge b(options);
  b.graph.add_rule({"accept", -1, 503});
  wa_test::SilentPort peer;
  const std::string id = "wacid.flow-accept-fails";
  b.whatsapp->process_webhook(wa_test::connect_webhook(id, wa_test::local_offer(peer.port())));
  fail_unless(b.ended_with(id, "graph_error", 10000), "%s", b.logs.text().c_str());
  size_t attempts = b.graph.requests_of("accept").size();
  fail_unless(attempts >= 3 && attempts <= 5, "%zu accept attempts", attempts);
  // Ended by the bridge: Meta is told.
  fail_unless(b.wait_requests("terminate", 1, 5000));
  // The media stayed held: the call never got past pre_accept.
  fail_if(b.logs.has("WA_CALL_ACCEPTED", id));
}
GST_END_TEST;

GST_START_TEST(test_full_refuses_calls) {
  Bridge b(vb::WhatsAppOptions{}, 1);
  wa_test::SilentPort peer;
  b.whatsapp->process_webhook(wa_test::connect_webhook("wacid.first", wa_test::local_offer(peer.port())));
  fail_unless(b.wait_requests("accept", 1, 10000));
  spin(50);
  b.whatsapp->process_webhook(wa_test::connect_webhook("wacid.second", wa_test::local_offer(peer.port())));
  fail_unless(b.wait_requests("reject", 1, 5000));
  WA_ASSERT_STR_EQ(b.graph.requests_of("reject")[0].call_id, "wacid.second");
  fail_unless(b.call("wacid.second") == nullptr);
  fail_unless(b.saw("WA_CALL_REFUSED", "wacid.second"));
  // The first call is untouched.
  auto first = b.call("wacid.first");
  fail_unless(first && first->state() != vb::CallState::Ended);
  // Placing a call when full: the manager's 503, and nothing sent to Meta.
  auto placed = b.request("POST", "/v1/whatsapp/calls", "{\"to\":\"15551234567\"}");
  fail_unless_equals_int(placed.status, 503);
  WA_ASSERT_STR_EQ(wa_test::json_path(placed.body, "error.code"), "at_capacity");
  fail_unless(b.graph.requests_of("connect").empty());
}
GST_END_TEST;

GST_START_TEST(test_errors_counted_once) {
  Bridge b;
  vb::Metrics::get().reset_for_tests();
  // The fixture carries 138021 at call and at value level: one error, counted once.
  std::string body = wa_test::terminate_webhook("wacid.errors-1");
  b.whatsapp->process_webhook(body);
  b.whatsapp->process_webhook(body);  // Meta's retry
  std::string metrics = vb::Metrics::get().render();
  fail_unless(metrics.find("voicebridge_whatsapp_errors_total{code=\"138021\",source=\"webhook\"} 1\n") != std::string::npos,
              "%s", metrics.c_str());
  fail_unless(b.saw("WA_ERROR", "wacid.errors-1"));
  fail_unless(b.logs.text().find("media receive timeout") != std::string::npos);
  // An error webhook naming no call is counted once per delivery content.
  std::string lone =
      "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\",\"changes\":[{\"field\":\"calls\",\"value\":"
      "{\"messaging_product\":\"whatsapp\",\"errors\":[{\"code\":131044,\"title\":\"Payment\",\"message\":\"x\"}]}}]}]}";
  b.whatsapp->process_webhook(lone);
  b.whatsapp->process_webhook(lone);
  metrics = vb::Metrics::get().render();
  fail_unless(metrics.find("voicebridge_whatsapp_errors_total{code=\"131044\",source=\"webhook\"} 1\n") != std::string::npos,
              "%s", metrics.c_str());
}
GST_END_TEST;

static Suite *whatsapp_flow_suite() {
  Suite *s = suite_create("whatsapp-flow");
  TCase *t = tcase_create("flow");
  tcase_set_timeout(t, 40);
  tcase_add_test(t, test_no_answer_after_ringing);
  tcase_add_test(t, test_accepted_stops_ring_timer);
  tcase_add_test(t, test_webhooks_before_graph_response);
  tcase_add_test(t, test_terminate_before_graph_response);
  tcase_add_test(t, test_ended_before_named);
  tcase_add_test(t, test_accept_retries_exhausted);
  tcase_add_test(t, test_full_refuses_calls);
  tcase_add_test(t, test_errors_counted_once);
  suite_add_tcase(s, t);
  return s;
}

int main(int argc, char **argv) {
  gst_check_init(&argc, &argv);
  std::string missing;
  if (!vb::init_gstreamer_elements(&missing)) {
    fprintf(stderr, "%s\n", missing.c_str());
    return 1;
  }
  return gst_check_run_suite(whatsapp_flow_suite(), "whatsapp-flow", __FILE__);
}
