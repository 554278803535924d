#include "fake-state.h"

#include <cinttypes>
#include <cstdio>

namespace fake_realtime::detail {

using Lock = std::lock_guard<std::mutex>;

Config SharedState::config() const {
  Lock l(mutex_);
  return config_;
}

void SharedState::set_config(const Config &config) {
  Lock l(mutex_);
  config_ = config;
}

std::string SharedState::make_id(const char *prefix) {
  uint64_t n;
  {
    Lock l(mutex_);
    n = next_id_++;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s_fake%016" PRIx64, prefix, n);
  return buf;
}

int SharedState::add_connection(ConnectionLog log) {
  Lock l(mutex_);
  connections_.push_back(std::move(log));
  return static_cast<int>(connections_.size()) - 1;
}

void SharedState::record_event(int index, const std::string &json, const std::string &type) {
  Lock l(mutex_);
  if (!config_.record)
    return;
  connections_.at(index).events.push_back(json);
  connections_.at(index).types.push_back(type);
}

void SharedState::record_audio(int index, const std::vector<uint8_t> &pcm) {
  Lock l(mutex_);
  if (!config_.record)
    return;
  auto &log = connections_.at(index).input_audio;
  log.insert(log.end(), pcm.begin(), pcm.end());
  all_input_audio_.insert(all_input_audio_.end(), pcm.begin(), pcm.end());
}

void SharedState::record_closed(int index) {
  Lock l(mutex_);
  connections_.at(index).closed = true;
}

void SharedState::record_rejected_handshake(const std::string &authorization) {
  Lock l(mutex_);
  rejected_handshakes_.push_back(authorization);
}

void SharedState::record_error(const std::string &code) {
  Lock l(mutex_);
  errors_.push_back(code);
}

void SharedState::record_truncate(const TruncateRecord &record) {
  Lock l(mutex_);
  truncates_.push_back(record);
}

void SharedState::record_deleted(const std::string &item_id) {
  Lock l(mutex_);
  deleted_.push_back(item_id);
}

void SharedState::record_response_started(const std::string &instructions) {
  Lock l(mutex_);
  responses_started_++;
  response_instructions_.push_back(instructions);
}

void SharedState::record_response_cancelled() {
  Lock l(mutex_);
  responses_cancelled_++;
}

void SharedState::record_speech_started() {
  Lock l(mutex_);
  speech_started_++;
}

void SharedState::record_function_output(const std::string &call_id, const std::string &output) {
  Lock l(mutex_);
  function_outputs_.push_back(call_id + "=" + output);
}

int SharedState::connection_count() const {
  Lock l(mutex_);
  return static_cast<int>(connections_.size());
}

ConnectionLog SharedState::connection(int index) const {
  Lock l(mutex_);
  if (index < 0 || index >= static_cast<int>(connections_.size()))
    return {};
  return connections_[index];
}

std::vector<uint8_t> SharedState::all_input_audio() const {
  Lock l(mutex_);
  return all_input_audio_;
}

std::vector<TruncateRecord> SharedState::truncates() const {
  Lock l(mutex_);
  return truncates_;
}

std::vector<std::string> SharedState::deleted_items() const {
  Lock l(mutex_);
  return deleted_;
}

std::vector<std::string> SharedState::errors_sent() const {
  Lock l(mutex_);
  return errors_;
}

int SharedState::responses_started() const {
  Lock l(mutex_);
  return responses_started_;
}

int SharedState::responses_cancelled() const {
  Lock l(mutex_);
  return responses_cancelled_;
}

int SharedState::speech_started_count() const {
  Lock l(mutex_);
  return speech_started_;
}

std::vector<std::string> SharedState::function_outputs() const {
  Lock l(mutex_);
  return function_outputs_;
}

std::vector<std::string> SharedState::response_instructions() const {
  Lock l(mutex_);
  return response_instructions_;
}

std::vector<std::string> SharedState::rejected_handshakes() const {
  Lock l(mutex_);
  return rejected_handshakes_;
}

}  // namespace fake_realtime::detail
