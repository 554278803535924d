// The media side of voicebridge-call: one GStreamer pipeline around a webrtcbin that offers one
// sendrecv Opus stream, gathers its ICE candidates before the offer leaves (no trickle), plays the
// input WAV (then silence) live-paced, and decodes, measures and optionally records what comes back.
//
// Every method is called on the main context; every Listener call arrives there too. webrtcbin and
// streaming-thread callbacks only read what they are given and post to the main context.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <gst/gst.h>
#include <gst/webrtc/webrtc.h>

namespace vbcall {

class MediaListener {
 public:
  enum class Failure { Connection, Pipeline };  // ICE/DTLS failed; any other GStreamer error
  virtual ~MediaListener() = default;
  // The local description with every gathered candidate; `complete` is false when gathering did
  // not finish within the bound and the offer goes out with what there is.
  virtual void on_offer(const std::string &sdp, guint candidates, bool complete) = 0;
  virtual void on_ice_connected() = 0;      // ICE connected/completed, first time only
  virtual void on_first_rtp() = 0;          // first RTP packet out of webrtcbin
  virtual void on_input_started() = 0;      // DTLS is up: the input (or silence) is being sent
  virtual void on_input_end() = 0;          // the input file has been sent (at once without --input)
  virtual void on_first_audio(gint64 when_us) = 0;  // decoded audio above the threshold, monotonic time
  virtual void on_failure(Failure kind, const std::string &what) = 0;
};

class CallMedia {
 public:
  struct Config {
    std::string input;                       // WAV path; empty: silence only
    std::string output;                      // WAV path; empty: no recording
    std::vector<std::string> ice_addresses;  // empty: let libnice use every interface
    guint gather_timeout_ms = 3000;
  };
  static constexpr double kHeardThresholdDb = -40.0;  // dBFS RMS per decoded buffer

  CallMedia(Config config, MediaListener &listener);
  ~CallMedia();  // stop()s
  CallMedia(const CallMedia &) = delete;
  CallMedia &operator=(const CallMedia &) = delete;

  // Builds the pipeline, starts it and creates the offer (reported through on_offer).
  bool start(std::string &error);
  // Applies the bridge's SDP answer. A parse error is returned here; a rejection by webrtcbin comes
  // later as on_failure(Pipeline).
  bool set_answer(const std::string &sdp, std::string &error);
  // Ends the recording: the receive branch gets EOS so that wavenc writes its final header. `done`
  // runs on the main context once the EOS reached the file, or with false after a bounded wait.
  void finish_recording(std::function<void(bool)> done);
  // Pipeline to NULL and released; idempotent. Pending posts are dropped.
  void stop();

  guint64 rtp_packets() const { return rtp_packets_.load(); }
  gint64 last_rtp_us() const { return last_rtp_us_.load(); }  // 0 before the first packet
  double heard_audio_s() const { return heard_samples_.load() / (double)kRate; }
  double received_audio_s() const { return received_samples_.load() / (double)kRate; }

 private:
  static constexpr int kRate = 48000;  // every raw audio link in the pipeline is S16LE mono 48 kHz

  bool build(std::string &error);
  GstElement *add(const char *factory, const char *name, std::string &error);
  void configure_ice();
  void post(std::function<void()> fn);  // run fn on the main context, unless stopped by then

  void create_offer();
  void on_offer_created(GstWebRTCSessionDescription *offer, const std::string &error);
  void maybe_offer_ready();
  void start_input();
  void link_received_pad(GstPad *pad, gulong block_probe);
  void recording_finished(bool ok);

  static void on_pad_added(GstElement *webrtc, GstPad *pad, gpointer data);
  static void on_decoded_pad(GstElement *decodebin, GstPad *pad, gpointer data);
  static void on_ice_connection_state(GObject *webrtc, GParamSpec *, gpointer data);
  static void on_connection_state(GObject *webrtc, GParamSpec *, gpointer data);
  static void on_gathering_state(GObject *webrtc, GParamSpec *, gpointer data);
  static gboolean on_bus_message(GstBus *bus, GstMessage *msg, gpointer data);
  static GstPadProbeReturn on_rtp_probe(GstPad *pad, GstPadProbeInfo *info, gpointer data);
  static GstPadProbeReturn on_audio_probe(GstPad *pad, GstPadProbeInfo *info, gpointer data);
  static GstPadProbeReturn on_input_eos_probe(GstPad *pad, GstPadProbeInfo *info, gpointer data);
  static GstPadProbeReturn on_record_eos_probe(GstPad *pad, GstPadProbeInfo *info, gpointer data);

  Config config_;
  MediaListener &listener_;
  GMainContext *context_ = nullptr;
  std::shared_ptr<std::atomic<bool>> alive_ = std::make_shared<std::atomic<bool>>(true);

  GstElement *pipeline_ = nullptr;
  GstElement *webrtc_ = nullptr;     // owned by pipeline_
  GstElement *input_convert_ = nullptr;  // first element after decodebin (input only)
  GstPad *send_pad_ = nullptr;       // mixer -> encoder; buffers dropped until DTLS is up (ref held)
  gulong send_gate_ = 0;
  GstPad *input_pad_ = nullptr;      // input branch -> mixer; blocked until DTLS is up (ref held)
  gulong input_block_ = 0;
  GstPad *depay_sink_ = nullptr;     // head of the receive branch (ref held)
  GstPad *record_sink_ = nullptr;    // wavenc's sink pad when recording (ref held)
  GstPad *received_pad_ = nullptr;   // webrtcbin's src pad once linked (ref held)
  guint bus_watch_ = 0;
  guint gather_timer_ = 0;
  guint record_timer_ = 0;

  bool local_set_ = false;
  bool gathering_complete_ = false;
  bool gather_timed_out_ = false;
  bool offer_delivered_ = false;
  bool ice_connected_ = false;
  bool input_started_ = false;
  bool input_eos_ = false;
  bool recording_closed_ = false;
  bool stopping_ = false;
  std::function<void(bool)> record_done_;

  // Written by streaming threads, read on the main context.
  std::atomic<guint64> rtp_packets_{0};
  std::atomic<gint64> last_rtp_us_{0};
  std::atomic<gint64> heard_samples_{0};
  std::atomic<gint64> received_samples_{0};
  std::atomic<bool> first_audio_seen_{false};
};

}  // namespace vbcall
