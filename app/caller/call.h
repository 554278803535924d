// One call from offer to hang-up: sends the offer (POST /v1/calls), applies the answer, watches
// media, decides when and why to hang up (DELETE /v1/calls/{id}) and collects the timings.
// Everything runs on the default main context.
#pragma once

#include <memory>
#include <string>

#include <glib.h>

#include "http-client.h"
#include "media.h"
#include "options.h"
#include "report.h"

namespace vbcall {

class Call : public MediaListener {
 public:
  Call(const Options &options, GMainLoop *loop, gint64 t_start);
  ~Call() override;
  Call(const Call &) = delete;
  Call &operator=(const Call &) = delete;

  void start();  // the loop quits once the call is over
  // Tears the media down; the report's media counters are final afterwards.
  void stop();
  int exit_code() const { return exit_code_; }
  // True once the call is over; start() can get there before the loop runs (e.g. a missing plugin).
  bool done() const { return phase_ == Phase::Done; }
  const Report &report() const { return report_; }

 private:
  enum class Phase { Starting, Offered, Answered, Connected, HangingUp, Done };

  // MediaListener
  void on_offer(const std::string &sdp, guint candidates, bool complete) override;
  void on_ice_connected() override;
  void on_first_rtp() override;
  void on_input_started() override;
  void on_input_end() override;
  void on_first_audio(gint64 when_us) override;
  void on_failure(Failure kind, const std::string &what) override;

  void on_post_reply(const HttpResponse &resp);
  void on_answer(const std::string &sdp);
  void media_connected(const char *how);
  void on_connect_timeout();
  void on_duration_elapsed();
  void on_tail_elapsed();
  void poll();
  void on_poll_reply(const HttpResponse &resp);
  void check_media();
  void hang_up(const std::string &end, int exit_code, const std::string &error);
  void delete_call();
  void read_end_reason(const HttpResponse &resp);
  void maybe_quit();
  void quit_now();
  std::string call_path() const;

  guint add_timer(guint ms, void (Call::*fn)(), bool repeat = false);
  static gboolean on_signal(gpointer data);

  const Options &options_;
  GMainLoop *loop_;
  HttpClient http_;
  std::unique_ptr<CallMedia> media_;
  Report report_;
  Phase phase_ = Phase::Starting;
  int exit_code_ = 0;

  bool post_in_flight_ = false;
  bool call_created_ = false;   // the bridge answered 201: the call exists there until DELETE
  bool bridge_ended_ = false;   // the bridge itself said the call is over (or forgot it)
  bool poll_in_flight_ = false;
  bool recording_done_ = false;
  bool http_done_ = false;
  int signals_ = 0;

  guint connect_timer_ = 0;   // answer -> media connected, bounded
  guint duration_timer_ = 0;  // --duration, or input end + --tail
  guint poll_timer_ = 0;      // GET /v1/calls/{id} every second
  guint media_timer_ = 0;     // no RTP for 10 s ends the call
  guint guard_timer_ = 0;     // bounds the whole hang-up
  guint sigint_ = 0, sigterm_ = 0;
};

}  // namespace vbcall
