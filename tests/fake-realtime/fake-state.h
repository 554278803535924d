// What the fake server records for tests, shared between the server thread (which writes) and the
// test thread (which reads copies). One mutex guards everything: the volume is small and a single
// lock keeps snapshots consistent.
#pragma once

#include "fake-realtime-server.h"

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace fake_realtime::detail {

class SharedState {
 public:
  explicit SharedState(Config config) : config_(std::move(config)) {}

  Config config() const;
  void set_config(const Config &config);

  // A new id such as "item_fake000000000000002a", unique across connections of this server.
  std::string make_id(const char *prefix);

  int add_connection(ConnectionLog log);  // returns its index
  void record_event(int index, const std::string &json, const std::string &type);
  void record_audio(int index, const std::vector<uint8_t> &pcm);
  void record_closed(int index);
  void record_rejected_handshake(const std::string &authorization);
  void record_error(const std::string &code);
  void record_truncate(const TruncateRecord &record);
  void record_deleted(const std::string &item_id);
  void record_response_started(const std::string &instructions);
  void record_response_cancelled();
  void record_speech_started();
  void record_function_output(const std::string &call_id, const std::string &output);

  int connection_count() const;
  ConnectionLog connection(int index) const;
  std::vector<uint8_t> all_input_audio() const;
  std::vector<TruncateRecord> truncates() const;
  std::vector<std::string> deleted_items() const;
  std::vector<std::string> errors_sent() const;
  int responses_started() const;
  int responses_cancelled() const;
  int speech_started_count() const;
  std::vector<std::string> function_outputs() const;
  std::vector<std::string> response_instructions() const;
  std::vector<std::string> rejected_handshakes() const;

 private:
  mutable std::mutex mutex_;
  Config config_;
  uint64_t next_id_ = 1;
  std::vector<ConnectionLog> connections_;
  std::vector<uint8_t> all_input_audio_;
  std::vector<TruncateRecord> truncates_;
  std::vector<std::string> deleted_;
  std::vector<std::string> errors_;
  std::vector<std::string> function_outputs_;
  std::vector<std::string> response_instructions_;
  std::vector<std::string> rejected_handshakes_;
  int responses_started_ = 0;
  int responses_cancelled_ = 0;
  int speech_started_ = 0;
};

}  // namespace fake_realtime::detail
