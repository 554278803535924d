#include "local-agent.h"

#include "fake-realtime-server.h"

namespace vb {

LocalAgent::LocalAgent() {
  fake_realtime::Config config;
  config.echo_input = true;          // each caller turn is played back
  config.reply_tone_hz = 660;        // the greeting: a short, soft tone
  config.reply_amplitude = 0.2;
  config.reply_duration_ms = 400;
  config.vad_threshold_dbfs = -45;   // phone speech after Opus is often quiet
  config.vad_silence_ms = 600;       // let the caller finish a sentence
  config.speed = 4.0;                // faster than real time, as the real API
  config.record = false;             // a test fake records everything; a service must not
  config.session_lifetime_s = 0;     // calls may be long: the local agent never expires them
  server_ = std::make_unique<fake_realtime::Server>(config);
}

LocalAgent::~LocalAgent() {
  if (server_) server_->stop();
}

bool LocalAgent::start(std::string *error) { return server_->start(0, error); }

std::string LocalAgent::url() const { return server_->url(); }

}  // namespace vb
