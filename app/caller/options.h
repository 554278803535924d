// Command-line settings of voicebridge-call. Parsing never exits: main() decides (0 for --help and
// --version, 2 for a bad option or an unusable setting, CONTRACT.md §1).
#pragma once

#include <string>
#include <vector>

namespace vbcall {

struct Options {
  std::string url = "http://127.0.0.1:8080";  // as given; see http_base / unix_socket for the parsed form
  std::string token;                          // --token, else $VOICEBRIDGE_CONTROL_TOKEN; empty: no auth
  std::string input;                          // WAV to play; empty: send silence only
  std::string output;                         // WAV to record into; empty: do not record
  double duration_s = 0;                      // > 0: hang up this long after media connected
  double tail_s = 5;                          // without --duration: hang up this long after the input ends
  std::vector<std::string> ice_addresses;     // never empty after parsing (the default is resolved)
  std::string instructions;                   // passed through to POST /v1/calls when set
  std::string voice;
  std::string greeting;
  std::string call_id;
  bool json = false;
  bool quiet = false;

  // Derived from `url`.
  std::string http_base;    // scheme://authority[/prefix], no trailing slash, for building request URLs
  std::string unix_socket;  // non-empty for --url unix:PATH (requests then go over that socket)
};

enum class ParseOutcome { Run, Help, Version, Error };

// argv as given to main. On Help/Version `message` is the text to print on stdout; on Error it is
// one line (no trailing newline) naming the offending option.
ParseOutcome parse_options(int argc, char **argv, Options &out, std::string &message);

}  // namespace vbcall
