// A stand-in for voicebridge's call API (CONTRACT.md §3), for testing voicebridge-call without the
// service: POST /v1/calls answers the offer with its own webrtcbin, which plays a 440 Hz tone and
// records what it receives; GET and DELETE /v1/calls/{id} work as the contract says.
//
// Runs on the default main context of the test (iterate it while the caller runs). The answerer
// uses the bookworm-safe sequence (gstreamer-1.22-notes §1.4 method A): add-transceiver SENDRECV
// before set-remote-description, and the send branch linked to the sink pad webrtcbin creates.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <glib.h>
#include <libsoup/soup.h>

namespace fake_bridge {

struct Config {
  std::string token;          // when set, /v1/* requires "Authorization: Bearer <token>"
  std::string unix_socket;    // when set, listen there as well as on 127.0.0.1
  guint fail_status = 0;      // when set, POST /v1/calls is answered with this status ...
  std::string fail_code;      // ... and {"error":{"code":fail_code,"message":fail_message}}
  std::string fail_message;
  double end_after_s = 0;     // > 0: the bridge ends each call itself this long after answering
  // >= 0: the bridge's media (its whole pipeline) stops this long after answering while the call
  // stays "active" in the API: 0 makes ICE fail, later values look like a peer that vanished.
  double stop_media_after_s = -1;
  bool send_silence = false;  // send digital silence instead of the 440 Hz tone
};

// What one call looked like from the bridge's side.
struct CallRecord {
  std::string call_id;
  std::string state;            // connecting, active, ended
  std::string end_reason;
  std::string request_body;     // the POST body as received
  std::vector<int16_t> received;  // decoded audio from the caller: S16 mono 48 kHz
  bool answered_sendrecv = false;
  int deletes = 0;
  int gets = 0;
};

class FakeBridge {
 public:
  static constexpr int kRate = 48000;

  explicit FakeBridge(Config config = {});
  ~FakeBridge();
  FakeBridge(const FakeBridge &) = delete;
  FakeBridge &operator=(const FakeBridge &) = delete;

  bool start(std::string &error);  // listens on 127.0.0.1 (ephemeral port) and the unix socket
  guint port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  int posts() const { return posts_; }
  std::vector<std::string> call_ids() const;
  // A snapshot (the received audio keeps growing while a call is up).
  bool call(const std::string &id, CallRecord &out) const;

  class Call;  // one answered call: its webrtcbin pipeline (fake-bridge.cpp)

 private:
  static void on_request(SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
                         gpointer data);
  void handle_post(SoupServerMessage *msg);
  void handle_call(SoupServerMessage *msg, const std::string &method, const std::string &id);

  Config config_;
  SoupServer *server_ = nullptr;
  guint port_ = 0;
  int posts_ = 0;
  int next_id_ = 1;
  std::map<std::string, std::unique_ptr<Call>> calls_;
};

}  // namespace fake_bridge
