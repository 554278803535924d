// voicebridge: answers WebRTC (and WhatsApp) calls with an OpenAI Realtime voice agent.
#include <cstdio>

#include <gst/gst.h>

#include "config.h"
#include "log.h"
#include "service.h"

int main(int argc, char **argv) {
  vb::Config config;
  std::string message;
  switch (vb::parse_config(argc, argv, &config, &message)) {
    case vb::ParseOutcome::Help:
      fputs(message.c_str(), stdout);
      return 0;
    case vb::ParseOutcome::Version:
      printf("voicebridge %s\n", VERSION);
      return 0;
    case vb::ParseOutcome::Error:
      fprintf(stderr, "voicebridge: %s\n", message.c_str());
      return 2;
    case vb::ParseOutcome::Ok:
      break;
  }
  vb::log_init(config.log_format, config.log_level);
  for (const auto &secret : vb::config_secrets(config)) vb::log_register_secret(secret);
  vb::log_capture_glib();

  gst_init(nullptr, nullptr);
  std::string missing;
  if (!vb::init_gstreamer_elements(&missing)) {
    vb::log_line(vb::LogLevel::Error, missing);
    return 1;
  }
  int code;
  {
    vb::Service service(std::move(config));
    code = service.run();
  }
  gst_deinit();
  return code;
}
