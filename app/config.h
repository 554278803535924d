// Settings of the voicebridge service (CONTRACT.md §2): each one from the command line, the
// environment or a GLib key-file (--config FILE); the command line wins over the environment,
// which wins over the file. Parsing never exits: main() decides (exit 0 for --help, 2 for errors).
#pragma once

#include <string>
#include <vector>

#include "log.h"

namespace vb {

struct Config {
  // HTTP control API
  std::string listen = "127.0.0.1:8080";  // HOST:PORT, [IPv6]:PORT or unix:PATH
  std::string control_token;              // Bearer token for /v1/* (empty: no auth)
  int max_calls = 100;
  size_t max_body_bytes = 256 * 1024;      // request bodies above this get 413 body_too_large

  // Media
  std::vector<std::string> ice_addresses;  // empty: all usable interfaces
  int rtp_port_min = 0, rtp_port_max = 0;  // 0/0: system-chosen
  std::string public_ip;
  std::string stun_server;                 // stun://host:port
  std::string turn_server;                 // turn(s)://user:pass@host:port
  int jitter_latency_ms = 60;
  int opus_complexity = 3;                 // SILK wideband speech: 3 sounds as 5 does, costs less (bench/RESULTS.md)
  int gather_timeout_ms = 2000;            // answer anyway (with what was gathered) after this

  // Realtime model
  std::string api_key;                     // OPENAI_API_KEY
  std::string realtime_url;                // empty: wss://api.openai.com/v1/realtime, or the local agent
  std::string model = "gpt-realtime";
  std::string voice = "marin";
  std::string instructions;                // resolved text (a @FILE value is read at parse time)
  std::string greeting;                    // optional first words of the agent
  std::string transcription_model = "gpt-4o-mini-transcribe";

  // Call limits
  int media_timeout_s = 30;                // no caller media for this long ends the call
  int max_call_s = 3600;                   // maximum call length
  int drain_timeout_s = 30;                // SIGTERM: calls still up after this are ended

  // Agent: per-call configuration hook, tools, transcripts and their cost estimate
  std::string call_config_url;             // POSTed before each call; empty: no hook
  int call_config_timeout_ms = 1500;       // the hook's reply is awaited at most this long
  std::string tool_webhook_url;            // function calls other than end_call go here; empty: none
  int tool_timeout_ms = 8000;
  std::string transcript_dir;              // one <call_id>.json per call; empty: no files
  std::string transcript_url;              // the same JSON is POSTed here; empty: not sent
  // USD per 1M tokens, for estimated_cost_usd (gpt-realtime list prices).
  double price_audio_in = 32;
  double price_audio_out = 64;
  double price_text_in = 4;
  double price_text_out = 16;
  double price_cached_in = 0.4;

  // WhatsApp
  std::string whatsapp_token;
  std::string whatsapp_app_secret;
  std::string whatsapp_verify_token;
  std::string whatsapp_phone_number_id;
  std::string whatsapp_graph_url = "https://graph.facebook.com/v23.0";
  bool insecure_skip_signature = false;

  // Logging
  LogFormat log_format = LogFormat::Text;
  LogLevel log_level = LogLevel::Info;

  // Derived
  bool use_local_agent() const { return api_key.empty() && realtime_url.empty(); }
  std::string effective_realtime_url() const {
    return realtime_url.empty() ? "wss://api.openai.com/v1/realtime" : realtime_url;
  }
  bool whatsapp_enabled() const { return !whatsapp_token.empty() || !whatsapp_phone_number_id.empty(); }
};

extern const char *const kDefaultInstructions;

enum class ParseOutcome { Ok, Help, Version, Error };

// argv as given to main (argv[0] is the program). `environ` is read through g_getenv.
// On Error, *message is one line naming the setting; on Help, *message is the usage text.
ParseOutcome parse_config(int argc, char **argv, Config *config, std::string *message);

// The secrets of a config (for log masking).
std::vector<std::string> config_secrets(const Config &config);

}  // namespace vb
