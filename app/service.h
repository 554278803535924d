// The voicebridge service: wires the configuration, the HTTP API, the call manager and the local
// agent together on the main loop, and drains gracefully on SIGTERM.
#pragma once

#include <memory>

#include "config.h"

namespace vb {

class Service {
 public:
  explicit Service(Config config);
  ~Service();
  // Runs until drained after SIGTERM/SIGINT. Returns the process exit code.
  int run();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Registers the openairealtime elements statically (no plugin file needed) and checks that the
// GStreamer elements a call needs are installed. Returns false with a message naming what is missing.
bool init_gstreamer_elements(std::string *missing);

}  // namespace vb
