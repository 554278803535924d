// A named, shared Realtime session: the one WebSocket conversation that an openairealtimesink and an
// openairealtimesrc with the same `session` name use together (as interaudiosink/src share a
// surface by channel). It owns the input queue (sink → model), the playout queue (model → src), the
// played-time accounting that barge-in truncation needs, tool calls, history for reconnects, and
// the events that elements post on the bus.
//
// Threads: push_input() is called from the sink's streaming thread and pull_output() from the src's;
// both only take the session mutex. Everything that touches the socket runs on the hub thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <gst/gst.h>
#include <libsoup/soup.h>

#include "realtime-hub.h"
#include "realtime-protocol.h"

namespace realtime {

enum class AuthStyle { Bearer, ApiKeyHeader };

// Property values of an element, as they apply to the shared session. `explicit_mask` records which
// fields a user set, so that settings made on the sink and on the src of one session merge.
struct SessionSettings {
  enum Field : uint32_t {
    kUrl = 1u << 0, kApiKey = 1u << 1, kModel = 1u << 2, kVoice = 1u << 3,
    kInstructions = 1u << 4, kShape = 1u << 5, kAuth = 1u << 6, kTurnType = 1u << 7,
    kThreshold = 1u << 8, kPrefixPadding = 1u << 9, kSilence = 1u << 10, kEagerness = 1u << 11,
    kCreateResponse = 1u << 12, kInterruptResponse = 1u << 13, kTranscription = 1u << 14,
    kLanguage = 1u << 15, kNoiseReduction = 1u << 16, kTools = 1u << 17, kToolChoice = 1u << 18,
    kGreeting = 1u << 19, kKeepalive = 1u << 20, kMaxReconnects = 1u << 21, kMaxQueue = 1u << 22,
    kRenewMargin = 1u << 23,
  };

  std::string url = "wss://api.openai.com/v1/realtime";
  std::string api_key;
  std::string model = "gpt-realtime";
  ApiShape shape = ApiShape::GA;
  AuthStyle auth = AuthStyle::Bearer;
  SessionConfig config = default_config();
  std::string greeting;
  int keepalive_s = 20;
  int max_reconnect_attempts = 10;
  int max_queue_ms = 120000;
  int renew_margin_s = 60;  // renew this long before the server's expires_at
  uint32_t explicit_mask = 0;

  static SessionConfig default_config();
  // Copies every field that `other` set explicitly.
  void merge_explicit(const SessionSettings &other);
};

// Snapshot of a session's counters, for the `stats` property and the app's call stats.
struct SessionStats {
  uint64_t input_bytes_appended = 0;
  uint64_t output_bytes_received = 0;
  uint64_t output_bytes_played = 0;
  uint64_t output_bytes_dropped = 0;  // discarded by barge-in or the queue limit
  uint64_t input_bytes_dropped = 0;   // caller audio discarded while not ready (over 10 s queued)
  uint64_t input_bytes_replayed = 0;  // an unfinished turn sent again to a new socket
  uint64_t barge_ins = 0;
  uint64_t responses = 0;
  uint64_t input_tokens = 0;
  uint64_t output_tokens = 0;
  uint64_t underruns = 0;
  uint64_t reconnects = 0;
  uint64_t errors = 0;
  double last_append_latency_ms = 0;  // push_input → frame handed to libsoup, for the last append
  bool ready = false;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  // Registry: the elements of one session find it by name. acquire() adds a user; release() drops
  // one, and the last release closes the connection and removes the name.
  static std::shared_ptr<Session> acquire(const std::string &name);
  static void release(const std::shared_ptr<Session> &session);

  const std::string &name() const { return name_; }

  // Element lifecycle. attach() merges the element's settings. The src's attach opens the
  // connection (asynchronously, on the hub); a sink alone opens it on its first audio or after a
  // short grace. Messages are posted through an attached element, the src when there is one.
  void attach(GstElement *element, const SessionSettings &settings, bool prefer_for_messages);
  void detach(GstElement *element);

  // Sink side (streaming thread): queue caller audio; never blocks on the network.
  void push_input(const uint8_t *pcm, size_t len);
  // Sink EOS: send what is queued even below 20 ms; without turn detection, commit and respond.
  void finish_input();

  // Src side (streaming thread): fills dst (len bytes) with model audio, zero-filling the rest.
  // Returns the number of bytes of model audio it copied.
  size_t pull_output(uint8_t *dst, size_t len);

  // Application actions (any thread).
  void send_function_output(const std::string &call_id, const std::string &output);
  bool add_text_item(const std::string &role, const std::string &text);
  void request_response(const std::string &instructions);
  void interrupt();  // a local barge-in: stop playback, truncate, cancel

  SessionStats stats() const;
  ~Session();

  // Internal: use acquire().
  explicit Session(std::string name);

 private:
  struct Segment {
    std::string response_id;
    std::string item_id;
    std::vector<uint8_t> data;
    size_t offset = 0;
  };
  struct ItemAudio {
    uint64_t received = 0;
    uint64_t played = 0;
  };
  struct HistoryEntry {
    std::string role;  // user | assistant | system
    std::string text;
  };

  // All below run on the hub thread.
  void connect();
  void restart_connection();
  static void on_connected(GObject *source, GAsyncResult *result, gpointer user_data);
  static void on_message(SoupWebsocketConnection *ws, gint type, GBytes *message, gpointer user_data);
  static void on_closed(SoupWebsocketConnection *ws, gpointer user_data);
  static void on_error(SoupWebsocketConnection *ws, GError *error, gpointer user_data);
  void handle_event(ServerEvent &event);
  void handle_error(const ErrorInfo &error);
  void handle_closed(const std::string &why);
  void schedule_reconnect(const std::string &reason);
  void schedule_renewal(int64_t expires_at);
  void renew();
  void drop_socket();
  void send(const std::string &frame);
  void flush_input_on_hub(bool final);
  void keep_turn_audio_locked(const uint8_t *pcm, size_t len);
  void replay_turn_audio();
  void barge_in(const char *trigger, bool send_cancel);
  void on_ready();
  void replay_history();
  void reset_socket_state();
  bool ready_flag() const;
  void maybe_send_queued_response();
  void shutdown();

  // Posting (any thread).
  void post(GstStructure *structure);
  void post_error(const std::string &code, const std::string &message, bool fatal, bool benign);
  void wake_hub();

  std::string name_;
  int users_ = 0;  // guarded by the registry mutex
  std::atomic<bool> connect_requested_{false};

  mutable std::mutex mutex_;
  // --- guarded by mutex_ ---
  SessionSettings settings_;
  std::vector<GstElement *> elements_;  // attached, not reffed (detach() before they go)
  GstElement *message_element_ = nullptr;
  std::vector<uint8_t> input_;           // caller audio not yet appended
  gint64 input_oldest_us_ = 0;           // monotonic time of the oldest queued input byte
  bool wake_scheduled_ = false;
  std::once_flag input_wakeup_once_;
  std::unique_ptr<HubWakeup> input_wakeup_;  // made on the first wake, raised for each append
  bool ever_attached_ = false;
  uint64_t input_since_commit_ = 0;      // bytes appended since the last commit (G6 guard)
  // The caller's turn not yet committed by the server, as appended: sent again to a new socket
  // (renewal or reconnect) so that a turn spanning the switch reaches the model whole. Between
  // turns only a short lead-in is kept; during one, up to kMaxTurnReplayBytes.
  std::deque<uint8_t> turn_audio_;
  bool caller_turn_open_ = false;        // speech_started seen, the turn not committed yet
  bool input_final_ = false;
  bool ready_ = false;                   // session.updated received on the current socket
  std::deque<Segment> playout_;
  uint64_t playout_bytes_ = 0;
  std::map<std::string, ItemAudio> item_audio_;
  std::string audible_item_;             // the assistant item whose audio is playing or next
  std::string audible_response_;
  std::set<std::string> interrupted_responses_;
  std::set<std::string> playback_started_;  // responses whose first audio was played
  bool playing_ = false;                 // the last buffer pulled carried model audio
  std::string active_response_;          // between response.created and response.done
  bool response_active_ = false;
  SessionStats stats_;
  // --- hub thread only ---
  SoupWebsocketConnection *ws_ = nullptr;
  GCancellable *connect_cancellable_ = nullptr;
  SoupMessage *connect_msg_ = nullptr;
  gint64 connect_started_us_ = 0;
  std::string overflow_item_;            // playout queue overflow: truncate this item…
  int64_t overflow_ms_ = 0;              // …at this many ms
  bool connecting_ = false;
  bool restart_pending_ = false;
  bool shutting_down_ = false;
  bool fatal_ = false;
  bool ever_ready_ = false;
  bool server_interrupts_ = true;        // the server cancels responses itself on speech
  bool turn_detection_ = true;
  bool create_in_flight_ = false;        // response.create sent, response.created not yet seen
  std::string in_flight_instructions_;
  std::deque<std::string> queued_responses_;  // instructions of response.create requests waiting
  std::set<std::string> dispatched_calls_;
  std::vector<HistoryEntry> history_;
  int reconnect_attempt_ = 0;
  guint reconnect_timer_ = 0;
  guint renew_timer_ = 0;
  bool renew_pending_ = false;
  bool renewing_ = false;
  std::string close_reason_;
};

}  // namespace realtime
