// One call: its GStreamer pipeline (webrtcbin ⇄ Opus ⇄ the openairealtime elements) and its state
// machine, connecting → active → ending → ended (CONTRACT.md §4). Everything public runs on the main
// context; webrtcbin's and the streaming threads' callbacks hop there before touching the state.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <gst/gst.h>
#include <json-glib/json-glib.h>

#include "config.h"
#include "sdp.h"

namespace vb {

enum class CallState { Connecting, Active, Ending, Ended };
enum class Direction { Inbound, Outbound };

const char *call_state_name(CallState state);

struct CallOptions {
  std::string call_id;
  Direction direction = Direction::Inbound;
  std::string instructions;   // empty: the service default
  std::string voice;          // empty: the service default
  std::string model;          // empty: the service default
  std::string greeting;       // empty: the service default (may be empty too)
  std::string metadata_json;  // opaque JSON object echoed in CALL
  std::string tools_json;     // JSON array of function tools for the model (empty: none)
  std::string caller;         // the caller's number or id, when known (WhatsApp)
  std::string caller_name;    // the caller's profile name, when known
  // Hold the caller's audio until allow_media() (WhatsApp: only after `accept` succeeded).
  bool hold_media = false;
};

struct CallStats {
  unsigned long long rtp_packets_received = 0;
  long long rtp_packets_lost = 0;
  double jitter_ms = 0;
  unsigned long long audio_to_model_ms = 0;
  unsigned long long audio_to_caller_ms = 0;
  unsigned long long barge_ins = 0;
  unsigned long long responses = 0;
  unsigned long long input_tokens = 0;
  unsigned long long output_tokens = 0;
  unsigned long long underruns = 0;
};

class Call;

// A per-call extension (tools, transcripts): Call forwards the Realtime session's events to it, on
// the main context. Several may be attached; each sees every event.
class CallExtension {
 public:
  virtual ~CallExtension() = default;
  // role: "caller" or "agent"; an agent turn cut short by a barge-in has interrupted=true.
  virtual void on_transcript(Call &, const std::string &role, const std::string &text, bool interrupted) {}
  // The usage of one model response (tokens), as in the openairealtime-response-done message.
  virtual void on_response_done(Call &, const GstStructure *message) {}
  // A function call of the model. Return true when handled: the extension then answers with
  // Call::send_function_output (or ends the call). Unhandled calls get an error output.
  virtual bool on_function_call(Call &, const std::string &name, const std::string &call_id,
                                const std::string &arguments) { return false; }
  // The model's audio queued for the caller has all been played and no reply is being generated.
  virtual void on_playback_stopped(Call &) {}
  virtual void on_dtmf(Call &, char digit) {}
  // The call has ended (end_reason set); its pipeline is gone.
  virtual void on_ended(Call &) {}
};

class Call : public std::enable_shared_from_this<Call> {
 public:
  // ok: answer_or_code is the answer SDP. !ok: an API error code, with an HTTP status and message.
  using AnswerCallback = std::function<void(bool ok, int status, const std::string &answer_or_code,
                                            const std::string &message)>;
  using EndedCallback = std::function<void(Call &)>;

  Call(const Config &config, CallOptions options, std::string realtime_url, EndedCallback on_ended);
  ~Call();

  // Builds the pipeline, opens the Realtime session (in parallel with ICE) and answers the offer.
  // `done` runs once on the main context when the answer is ready, or on failure.
  void start_inbound(const std::string &offer_sdp, const OfferInfo &offer, AnswerCallback done);
  // Outbound: builds the pipeline and makes the offer; `done` gets the offer SDP (every candidate
  // in it) once gathering completes. The callee's answer then goes to apply_answer().
  void start_outbound(AnswerCallback done);
  void apply_answer(const std::string &answer_sdp, std::function<void(bool ok, const std::string &error)> done);
  // Ends the call (idempotent). The pipeline is gone when this returns.
  void end(const std::string &reason);
  // Lets the model's audio flow to the caller (see CallOptions::hold_media).
  void allow_media();

  // Extensions and the model, for them (main context).
  void add_extension(std::shared_ptr<CallExtension> extension) { extensions_.push_back(std::move(extension)); }
  void send_function_output(const std::string &call_id, const std::string &output);
  void add_text_item(const std::string &role, const std::string &text);
  void request_response(const std::string &instructions);
  // True while model audio is queued for or being played to the caller, or a reply is in progress.
  bool agent_speaking() const;
  double media_connected_s() const;  // seconds since media connected (0 before)

  const std::string &id() const { return options_.call_id; }
  // Renames the call (CallManager::rekey). The pipeline keeps its first name.
  void set_id(const std::string &id) { options_.call_id = id; }
  const CallOptions &options() const { return options_; }
  CallState state() const { return state_; }
  Direction direction() const { return options_.direction; }
  const std::string &end_reason() const { return end_reason_; }
  double duration_s() const;
  const CallStats &stats() const { return stats_; }
  void to_json(JsonBuilder *builder) const;
  std::string graph_dot() const;

 private:
  struct Impl;
  bool build_pipeline(const OfferInfo &offer, std::string *error);
  void configure_ice();
  void on_local_description(const std::string &sdp);
  void on_answer_ready(const std::string &answer_sdp);
  void on_offer_ready(const std::string &offer_sdp);
  static OfferInfo outbound_offer_info();
  void start_timers();
  void watch_caller_rtp();
  void log_roles();
  void fail_answer(int status, const std::string &code, const std::string &message);
  void on_media_connected();
  bool remote_certificate_matches();
  void on_peer_state(int ice_state, int peer_state);
  void poll_stats();
  void apply_stats(const GstStructure *report);
  void read_session_stats();
  void handle_bus_message(GstMessage *message);
  void handle_realtime_message(const GstStructure *s);
  void on_dtmf(char digit);
  void dump_graph(const char *moment) const;
  void teardown();

  // Runs fn on the main context later, if the call is still alive then.
  void on_main(std::function<void(Call &)> fn);

  void allow_media_internal();
  static void on_remote_set(GstPromise *promise, gpointer data);
  static void on_answer_created(GstPromise *promise, gpointer data);
  static void on_offer_created(GstPromise *promise, gpointer data);
  static void on_pad_added(GstElement *webrtc, GstPad *pad, gpointer user_data);
  static void on_gathering_state(GstElement *webrtc, GParamSpec *, gpointer user_data);
  static void on_connection_state(GstElement *webrtc, GParamSpec *, gpointer user_data);
  static GstPadProbeReturn on_rtp_probe(GstPad *pad, GstPadProbeInfo *info, gpointer user_data);
  static gboolean on_bus(GstBus *bus, GstMessage *message, gpointer user_data);

  const Config &config_;
  CallOptions options_;
  std::string realtime_url_;
  EndedCallback on_ended_;
  CallState state_ = CallState::Connecting;
  std::string end_reason_;
  gint64 created_us_ = 0;        // monotonic
  gint64 created_real_us_ = 0;   // wall clock, for created_at
  gint64 media_connected_us_ = 0;
  gint64 ended_us_ = 0;
  CallStats stats_;
  AnswerCallback answer_done_;
  std::unique_ptr<Impl> impl_;
  std::atomic<bool> ending_{false};
  std::vector<std::shared_ptr<CallExtension>> extensions_;
  bool agent_speaking_ = false;
};

}  // namespace vb
