#include "call.h"

#include <algorithm>
#include <cmath>
#include <csignal>

#include <glib-unix.h>
#include <json-glib/json-glib.h>

#include "json-guard.h"

namespace vbcall {
namespace {

constexpr guint kPostTimeoutMs = 15000;     // the bridge gathers its own candidates before answering
constexpr guint kConnectTimeoutMs = 10000;  // answer -> ICE connected; loopback takes milliseconds
constexpr guint kRequestTimeoutMs = 5000;   // GET / DELETE
constexpr guint kPollIntervalMs = 1000;
constexpr gint64 kMediaSilenceUs = 10 * G_USEC_PER_SEC;
// Upper bound of the hang-up: DELETE, GET and the recording's EOS, each bounded themselves.
constexpr guint kHangUpGuardMs = 2 * kRequestTimeoutMs + 3000;

gint64 ms_between(gint64 from, gint64 to) { return (to - from + 500) / 1000; }

// Parses a CALL object; returns false when the body is not one.
bool parse_call(const std::string &body, std::string &state, std::string &end_reason) {
  JsonParser *parser = json_parser_new();
  bool ok = false;
  if (vb::json_depth_ok(body.data(), body.size()) &&
      json_parser_load_from_data(parser, body.data(), (gssize)body.size(), nullptr)) {
    JsonNode *root = json_parser_get_root(parser);
    if (root && JSON_NODE_HOLDS_OBJECT(root)) {
      JsonObject *o = json_node_get_object(root);
      state = json_object_get_string_member_with_default(o, "state", "");
      end_reason = json_object_get_string_member_with_default(o, "end_reason", "");
      ok = true;
    }
  }
  g_object_unref(parser);
  return ok;
}

}  // namespace

Call::Call(const Options &options, GMainLoop *loop, gint64 t_start)
    : options_(options), loop_(loop), http_(options.http_base, options.unix_socket, options.token) {
  report_.t_start = t_start;
  sigint_ = g_unix_signal_add(SIGINT, on_signal, this);
  sigterm_ = g_unix_signal_add(SIGTERM, on_signal, this);
}

Call::~Call() {
  for (guint *id : {&connect_timer_, &duration_timer_, &poll_timer_, &media_timer_, &guard_timer_, &sigint_, &sigterm_})
    if (*id) {
      g_source_remove(*id);
      *id = 0;
    }
  stop();
}

guint Call::add_timer(guint ms, void (Call::*fn)(), bool repeat) {
  struct Timer {
    Call *self;
    void (Call::*fn)();
    bool repeat;
  };
  return g_timeout_add_full(
      G_PRIORITY_DEFAULT, ms,
      [](gpointer d) -> gboolean {
        auto *t = static_cast<Timer *>(d);
        (t->self->*(t->fn))();
        return t->repeat ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
      },
      new Timer{this, fn, repeat}, [](gpointer d) { delete static_cast<Timer *>(d); });
}

void Call::start() {
  CallMedia::Config cfg;
  cfg.input = options_.input;
  cfg.output = options_.output;
  cfg.ice_addresses = options_.ice_addresses;
  media_ = std::make_unique<CallMedia>(cfg, *this);
  std::string error;
  if (!media_->start(error)) {
    report_error("%s", error.c_str());
    recording_done_ = true;  // nothing was recorded; the file (if any) is not ours to finish
    hang_up("error", 1, error);
    return;
  }
  std::string where = options_.ice_addresses.empty() ? std::string("all interfaces") : "";
  for (const std::string &a : options_.ice_addresses)
    where += (where.empty() ? "" : ", ") + a;
  progress("gathering ICE candidates on %s", where.c_str());
}

void Call::stop() {
  if (!media_)
    return;
  media_->stop();
  // Read after stop(): no streaming thread can add to the counters any more.
  report_.rtp_packets = media_->rtp_packets();
  report_.heard_audio_s = media_->heard_audio_s();
  report_.received_audio_s = media_->received_audio_s();
}

std::string Call::call_path() const {
  gchar *escaped = g_uri_escape_string(report_.call_id.c_str(), nullptr, FALSE);
  std::string path = std::string("/v1/calls/") + escaped;
  g_free(escaped);
  return path;
}

void Call::on_offer(const std::string &sdp, guint candidates, bool complete) {
  if (phase_ != Phase::Starting)
    return;
  if (!complete)
    report_error("warning: ICE gathering did not complete within 3 s; offering the %u candidate(s) found", candidates);
  if (candidates == 0)
    report_error("warning: no ICE candidate was gathered (check --ice-address); the call cannot connect");
  progress("offer ready with %u ICE candidate(s) after %" G_GINT64_FORMAT " ms", candidates,
           ms_between(report_.t_start, g_get_monotonic_time()));

  JsonBuilder *b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "sdp");
  json_builder_add_string_value(b, sdp.c_str());
  const std::pair<const char *, const std::string *> optional[] = {
      {"call_id", &options_.call_id},
      {"instructions", &options_.instructions},
      {"voice", &options_.voice},
      {"greeting", &options_.greeting},
  };
  for (const auto &[name, value] : optional)
    if (!value->empty()) {
      json_builder_set_member_name(b, name);
      json_builder_add_string_value(b, value->c_str());
    }
  json_builder_end_object(b);
  JsonGenerator *gen = json_generator_new();
  JsonNode *root = json_builder_get_root(b);
  json_generator_set_root(gen, root);
  gchar *body = json_generator_to_data(gen, nullptr);
  std::string json = body;
  g_free(body);
  json_node_unref(root);
  g_object_unref(gen);
  g_object_unref(b);

  phase_ = Phase::Offered;
  report_.call_id = options_.call_id;
  report_.t_post = g_get_monotonic_time();
  post_in_flight_ = true;
  progress("POST %s/v1/calls", options_.url.c_str());
  http_.request("POST", "/v1/calls", json, kPostTimeoutMs, [this](const HttpResponse &r) { on_post_reply(r); });
}

void Call::on_post_reply(const HttpResponse &resp) {
  post_in_flight_ = false;
  gint64 now = g_get_monotonic_time();
  if (!resp.ok()) {
    std::string what = "POST /v1/calls failed: " + resp.describe();
    if (phase_ == Phase::HangingUp) {  // hung up meanwhile: nothing was created, nothing to delete
      http_done_ = true;
      maybe_quit();
      return;
    }
    report_error("%s", what.c_str());
    hang_up("http_error", 1, what);
    return;
  }
  // Any 2xx means the bridge holds a call now, whatever else is wrong with the reply.
  std::string call_id, sdp;
  JsonParser *parser = json_parser_new();
  if (vb::json_depth_ok(resp.body.data(), resp.body.size()) &&
      json_parser_load_from_data(parser, resp.body.data(), (gssize)resp.body.size(), nullptr)) {
    JsonNode *root = json_parser_get_root(parser);
    if (root && JSON_NODE_HOLDS_OBJECT(root)) {
      JsonObject *o = json_node_get_object(root);
      call_id = json_object_get_string_member_with_default(o, "call_id", "");
      sdp = json_object_get_string_member_with_default(o, "sdp", "");
    }
  }
  g_object_unref(parser);
  if (!call_id.empty())
    report_.call_id = call_id;
  call_created_ = !report_.call_id.empty();
  if (phase_ == Phase::HangingUp) {  // hung up while the POST was out: undo it
    if (call_created_) {
      delete_call();
    } else {
      http_done_ = true;
      maybe_quit();
    }
    return;
  }
  report_.t_answer = now;
  if (sdp.empty() || call_id.empty()) {
    std::string what = "the bridge answered HTTP " + std::to_string(resp.status) + " without " +
                       (sdp.empty() ? "an sdp" : "a call_id");
    report_error("%s", what.c_str());
    hang_up("http_error", 1, what);
    return;
  }
  on_answer(sdp);
}

void Call::on_answer(const std::string &sdp) {
  phase_ = Phase::Answered;
  progress("answered: call_id %s after %" G_GINT64_FORMAT " ms", report_.call_id.c_str(),
           ms_between(report_.t_post, report_.t_answer));
  std::string error;
  if (!media_->set_answer(sdp, error)) {
    report_error("%s", error.c_str());
    hang_up("error", 1, "bad answer from the bridge: " + error);
    return;
  }
  connect_timer_ = add_timer(kConnectTimeoutMs, &Call::on_connect_timeout);
  poll_timer_ = add_timer(kPollIntervalMs, &Call::poll, true);
}

void Call::media_connected(const char *how) {
  if (phase_ != Phase::Answered)
    return;
  phase_ = Phase::Connected;
  report_.t_media = g_get_monotonic_time();
  if (connect_timer_) {
    g_source_remove(connect_timer_);
    connect_timer_ = 0;
  }
  progress("media connected (%s) %" G_GINT64_FORMAT " ms after the answer", how,
           ms_between(report_.t_answer, report_.t_media));
  if (options_.duration_s > 0)
    duration_timer_ = add_timer((guint)std::lround(options_.duration_s * 1000), &Call::on_duration_elapsed);
  media_timer_ = add_timer(1000, &Call::check_media, true);
}

void Call::on_ice_connected() { media_connected("ICE connected"); }

void Call::on_first_rtp() {
  progress("first RTP packet received");
  media_connected("first RTP");
}

void Call::on_input_started() {
  if (options_.input.empty())
    progress("DTLS up: sending silence");
  else
    progress("DTLS up: sending %s", options_.input.c_str());
}

void Call::on_input_end() {
  if (phase_ >= Phase::HangingUp || options_.duration_s > 0)
    return;
  if (!options_.input.empty())
    progress("input sent; listening %.1f s more", options_.tail_s);
  else
    progress("no input; listening %.1f s", options_.tail_s);
  if (!duration_timer_)
    duration_timer_ = add_timer((guint)std::lround(options_.tail_s * 1000), &Call::on_tail_elapsed);
}

void Call::on_first_audio(gint64 when_us) {
  report_.t_first_audio = when_us;
  if (report_.t_media >= 0)
    progress("first audio heard %" G_GINT64_FORMAT " ms after media connected", ms_between(report_.t_media, when_us));
}

void Call::on_failure(Failure kind, const std::string &what) {
  if (phase_ >= Phase::HangingUp)
    return;
  report_error("%s", what.c_str());
  if (kind == Failure::Pipeline)
    hang_up("error", 1, what);
  else if (media_->rtp_packets() == 0)
    hang_up("ice_failed", 1, what);
  else
    hang_up("remote", 0, "");  // media flowed, then the path died: the bridge went away
}

void Call::on_connect_timeout() {
  connect_timer_ = 0;
  if (phase_ != Phase::Answered)
    return;
  std::string what = "media did not connect within " + std::to_string(kConnectTimeoutMs / 1000) +
                     " s of the answer (ICE/DTLS)";
  report_error("%s", what.c_str());
  hang_up("ice_failed", 1, what);
}

void Call::on_duration_elapsed() {
  duration_timer_ = 0;
  hang_up("duration", 0, "");
}

void Call::on_tail_elapsed() {
  duration_timer_ = 0;
  hang_up("input_end", 0, "");
}

void Call::check_media() {
  // Without ICE consent freshness (reverted in 1.22) a vanished peer is only visible as silence on
  // the wire; count from media connected, so a bridge that never sends is caught as well.
  gint64 last = std::max(media_->last_rtp_us(), report_.t_media);
  if (g_get_monotonic_time() - last <= kMediaSilenceUs)
    return;
  progress("no media from the bridge for %" G_GINT64_FORMAT " s", kMediaSilenceUs / G_USEC_PER_SEC);
  hang_up("remote", 0, "");
}

void Call::poll() {
  if (poll_in_flight_ || phase_ >= Phase::HangingUp)
    return;
  poll_in_flight_ = true;
  http_.request("GET", call_path(), "", kRequestTimeoutMs, [this](const HttpResponse &r) { on_poll_reply(r); });
}

void Call::on_poll_reply(const HttpResponse &resp) {
  poll_in_flight_ = false;
  if (phase_ >= Phase::HangingUp) {
    maybe_quit();
    return;
  }
  std::string state, end_reason;
  if (resp.status == 404) {
    bridge_ended_ = true;
    progress("the bridge no longer knows the call");
    hang_up("remote", 0, "");
  } else if (resp.status == 200 && parse_call(resp.body, state, end_reason) && state == "ended") {
    bridge_ended_ = true;
    report_.bridge_end_reason = end_reason;
    progress("the bridge ended the call (%s)", end_reason.empty() ? "no reason given" : end_reason.c_str());
    hang_up("remote", 0, "");
  }
  // Anything else (a slow reply, a 5xx) says nothing about the call; the next poll will tell.
}

void Call::hang_up(const std::string &end, int exit_code, const std::string &error) {
  if (phase_ >= Phase::HangingUp)
    return;
  phase_ = Phase::HangingUp;
  report_.t_end = g_get_monotonic_time();
  report_.end = end;
  report_.error = error;
  exit_code_ = exit_code;
  for (guint *id : {&connect_timer_, &duration_timer_, &poll_timer_, &media_timer_})
    if (*id) {
      g_source_remove(*id);
      *id = 0;
    }
  progress("hanging up (%s)", end.c_str());
  guard_timer_ = g_timeout_add(kHangUpGuardMs, [](gpointer d) -> gboolean {
    auto *self = static_cast<Call *>(d);
    self->guard_timer_ = 0;
    report_error("warning: hang-up did not finish within %u ms; quitting", kHangUpGuardMs);
    self->quit_now();
    return G_SOURCE_REMOVE;
  }, this);

  if (!recording_done_)
    media_->finish_recording([this](bool ok) {
      recording_done_ = true;
      if (!ok)
        report_error("warning: the recording was not finalised in time; %s may be incomplete",
                     options_.output.c_str());
      maybe_quit();
    });

  if (post_in_flight_)
    return;  // on_post_reply deletes the call if the bridge created it; deleting by a guessed id could hit another's call
  if (call_created_ && !bridge_ended_)
    delete_call();
  else
    http_done_ = true;
  maybe_quit();
}

void Call::delete_call() {
  progress("DELETE %s", call_path().c_str());
  http_.request("DELETE", call_path(), "", kRequestTimeoutMs, [this](const HttpResponse &resp) {
    if (resp.ok())
      read_end_reason(resp);
    else
      report_error("warning: DELETE %s: %s", call_path().c_str(), resp.describe().c_str());
    // Once more, for the end_reason as the bridge finally recorded it.
    http_.request("GET", call_path(), "", kRequestTimeoutMs, [this](const HttpResponse &r) {
      if (r.ok())
        read_end_reason(r);
      if (!report_.bridge_end_reason.empty())
        progress("bridge end_reason: %s", report_.bridge_end_reason.c_str());
      http_done_ = true;
      maybe_quit();
    });
  });
}

void Call::read_end_reason(const HttpResponse &resp) {
  std::string state, end_reason;
  if (parse_call(resp.body, state, end_reason) && !end_reason.empty())
    report_.bridge_end_reason = end_reason;
}

void Call::maybe_quit() {
  if (phase_ != Phase::HangingUp || !recording_done_ || !http_done_ || poll_in_flight_ || http_.pending() > 0)
    return;
  quit_now();
}

void Call::quit_now() {
  if (phase_ == Phase::Done)
    return;
  phase_ = Phase::Done;
  if (guard_timer_) {
    g_source_remove(guard_timer_);
    guard_timer_ = 0;
  }
  http_.cancel_all();
  g_main_loop_quit(loop_);
}

gboolean Call::on_signal(gpointer data) {
  auto *self = static_cast<Call *>(data);
  if (++self->signals_ == 1 && self->phase_ < Phase::HangingUp) {
    progress("signal received: hanging up (again to quit at once)");
    self->hang_up("signal", 0, "");
  } else {
    report_error("second signal: quitting without waiting for the hang-up");
    if (self->report_.end.empty())
      self->report_.end = "signal";
    self->quit_now();
  }
  return G_SOURCE_CONTINUE;
}

}  // namespace vbcall
