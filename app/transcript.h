// Call transcripts with usage and a cost estimate. A TranscriptRecorder attached to a call records
// the caller's and the agent's turns, DTMF keys and the token usage of every model response; when
// the call ends it logs CALL_COST and, when configured, writes <dir>/<call id>.json
// (--transcript-dir) and POSTs the same JSON (--transcript-url):
//
//   {"call_id","direction","caller","caller_name","created_at","ended_at","duration_s","end_reason",
//    "metadata","turns":[{"role":"caller"|"agent","text","at_s","at","interrupted"?}],
//    "dtmf":[{"digit","at_s","at"}],
//    "usage":{"responses","input_tokens","output_tokens","input_audio_tokens","input_text_tokens",
//             "input_cached_tokens","output_audio_tokens","output_text_tokens"},
//    "prices_usd_per_1m_tokens":{…},"estimated_cost_usd"}
//
// at_s is seconds since the call was created and at the wall clock (RFC 3339, UTC), both taken when
// the turn's text was complete (the model transcribes after the words). An agent turn cut short by
// the caller has "interrupted":true (its text is what the model meant to say, not all of which was
// heard). Turns are in the order their texts arrived: a caller's transcript may come after the
// agent's answer to it (docs/openai-realtime.md §8 G14).
#pragma once

#include <string>
#include <vector>

#include <gst/gst.h>

#include "call.h"
#include "config.h"

namespace vb {

// Token counts summed over a call's responses (the openairealtime-response-done fields).
struct TokenUsage {
  unsigned long long responses = 0;
  unsigned long long input_tokens = 0;
  unsigned long long output_tokens = 0;
  unsigned long long input_audio_tokens = 0;
  unsigned long long input_text_tokens = 0;
  unsigned long long input_cached_tokens = 0;  // part of the input tokens, billed at the cached rate
  unsigned long long output_audio_tokens = 0;
  unsigned long long output_text_tokens = 0;

  void add(const GstStructure *response_done);
};

// USD per 1M tokens.
struct TokenPrices {
  double audio_in = 32, audio_out = 64, text_in = 4, text_out = 16, cached_in = 0.4;
  static TokenPrices from_config(const Config &config);
};

// The estimated price of the usage in USD. Cached input tokens are billed at the cached rate instead
// of their full rate; the usage gives only their total, so they are counted against the text input
// first (prompts and history are what caches), then the audio input. Input or output tokens whose
// kind is not reported are charged at the audio rate. Both choices make the estimate err high.
double estimate_cost_usd(const TokenUsage &usage, const TokenPrices &prices);

// The file name of a call's transcript: "<call id>.json" when the id is made only of letters,
// digits, '.', '_' and '-' (and does not start with '.'); otherwise those characters kept, others
// replaced by '_', plus "-" and 12 hex digits of the id's SHA-256, so that different ids never share
// a file.
std::string transcript_file_name(const std::string &call_id);

// Writes `json` to dir/transcript_file_name(call_id) atomically (a temporary file in the same
// directory, fsync, rename), mode 0640. On success *path is the file; on failure *error says why.
bool write_transcript_file(const std::string &dir, const std::string &call_id, const std::string &json,
                           std::string *path, std::string *error);

// Bound of the POST to --transcript-url: the call is already gone, but the service must not collect
// requests to a dead receiver.
constexpr int kTranscriptPostTimeoutMs = 10000;

class TranscriptRecorder : public CallExtension {
 public:
  explicit TranscriptRecorder(const Config &config);

  void on_transcript(Call &call, const std::string &role, const std::string &text, bool interrupted) override;
  void on_response_done(Call &call, const GstStructure *message) override;
  void on_dtmf(Call &call, char digit) override;
  void on_ended(Call &call) override;

  const TokenUsage &usage() const { return usage_; }
  // The transcript document of the call as it stands.
  std::string to_json(const Call &call) const;

 private:
  struct Turn {
    std::string role, text;
    double at_s = 0;
    std::string at;
    bool interrupted = false;
  };
  struct Key {
    char digit = 0;
    double at_s = 0;
    std::string at;
  };

  const Config &config_;
  std::vector<Turn> turns_;
  std::vector<Key> dtmf_;
  TokenUsage usage_;
  std::string ended_at_;
  bool finished_ = false;
};

}  // namespace vb
