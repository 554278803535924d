#include "transcript.h"

#include <fcntl.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

#include "http-post.h"
#include "log.h"

namespace vb {

namespace {

// RFC 3339 in UTC with milliseconds.
std::string wall_clock_now() {
  GDateTime *dt = g_date_time_new_now_utc();
  gchar *s = g_date_time_format(dt, "%Y-%m-%dT%H:%M:%S.%fZ");  // %f: microseconds
  std::string out(s);
  g_free(s);
  g_date_time_unref(dt);
  // Keep milliseconds: "…:05.123456Z" → "…:05.123Z".
  size_t dot = out.rfind('.');
  if (dot != std::string::npos && out.size() > dot + 4) out = out.substr(0, dot + 4) + "Z";
  return out;
}

double round3(double v) { return std::round(v * 1000.0) / 1000.0; }

unsigned long long field(const GstStructure *s, const char *name) {
  gint64 v = 0;
  if (!gst_structure_get_int64(s, name, &v) || v < 0) return 0;
  return (unsigned long long)v;
}

// created_at exactly as the call's API view shows it.
std::string created_at_of(const Call &call) {
  JsonBuilder *b = json_builder_new();
  call.to_json(b);
  JsonNode *root = json_builder_get_root(b);
  std::string out;
  if (root && JSON_NODE_HOLDS_OBJECT(root)) {
    const char *v = json_object_get_string_member_with_default(json_node_get_object(root), "created_at", "");
    out = v ? v : "";
  }
  if (root) json_node_unref(root);
  g_object_unref(b);
  return out;
}

void set_uint(JsonBuilder *b, const char *name, unsigned long long v) {
  json_builder_set_member_name(b, name);
  json_builder_add_int_value(b, (gint64)std::min<unsigned long long>(v, G_MAXINT64));
}

void set_string(JsonBuilder *b, const char *name, const std::string &v) {
  json_builder_set_member_name(b, name);
  json_builder_add_string_value(b, v.c_str());
}

void set_double(JsonBuilder *b, const char *name, double v) {
  json_builder_set_member_name(b, name);
  json_builder_add_double_value(b, v);
}

bool write_all(int fd, const std::string &data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += (size_t)n;
  }
  return true;
}

bool safe_file_char(char c) { return g_ascii_isalnum(c) || c == '.' || c == '_' || c == '-'; }

}  // namespace

void TokenUsage::add(const GstStructure *s) {
  responses++;
  input_tokens += field(s, "input-tokens");
  output_tokens += field(s, "output-tokens");
  input_audio_tokens += field(s, "input-audio-tokens");
  input_text_tokens += field(s, "input-text-tokens");
  input_cached_tokens += field(s, "input-cached-tokens");
  output_audio_tokens += field(s, "output-audio-tokens");
  output_text_tokens += field(s, "output-text-tokens");
}

TokenPrices TokenPrices::from_config(const Config &c) {
  TokenPrices p;
  p.audio_in = c.price_audio_in;
  p.audio_out = c.price_audio_out;
  p.text_in = c.price_text_in;
  p.text_out = c.price_text_out;
  p.cached_in = c.price_cached_in;
  return p;
}

double estimate_cost_usd(const TokenUsage &u, const TokenPrices &p) {
  // Doubles throughout: token counts of a call are far below 2^53.
  double text_in = (double)u.input_text_tokens, audio_in = (double)u.input_audio_tokens;
  double cached = std::min((double)u.input_cached_tokens, text_in + audio_in);
  double cached_text = std::min(cached, text_in);
  double cached_audio = cached - cached_text;
  double unknown_in = std::max(0.0, (double)u.input_tokens - text_in - audio_in);
  double unknown_out = std::max(0.0, (double)u.output_tokens - (double)u.output_text_tokens - (double)u.output_audio_tokens);
  double usd_per_1m = (text_in - cached_text) * p.text_in + (audio_in - cached_audio + unknown_in) * p.audio_in +
                      cached * p.cached_in + (double)u.output_text_tokens * p.text_out +
                      ((double)u.output_audio_tokens + unknown_out) * p.audio_out;
  return usd_per_1m / 1e6;
}

std::string transcript_file_name(const std::string &call_id) {
  constexpr size_t kMaxStem = 128;
  std::string stem;
  bool changed = call_id.empty() || call_id.size() > kMaxStem;
  for (char c : call_id.substr(0, kMaxStem)) {
    stem += safe_file_char(c) ? c : '_';
    changed = changed || !safe_file_char(c);
  }
  // No hidden files, and never "." or "..".
  if (!stem.empty() && stem[0] == '.') {
    stem[0] = '_';
    changed = true;
  }
  if (stem.empty()) stem = "call";
  if (changed) {
    gchar *hash = g_compute_checksum_for_string(G_CHECKSUM_SHA256, call_id.c_str(), (gssize)call_id.size());
    stem += "-" + std::string(hash).substr(0, 12);
    g_free(hash);
  }
  return stem + ".json";
}

bool write_transcript_file(const std::string &dir, const std::string &call_id, const std::string &json,
                           std::string *path, std::string *error) {
  std::string name = transcript_file_name(call_id);
  std::string final_path = dir + "/" + name;
  // In the same directory, so that the rename is atomic: readers see no file or the whole file.
  std::string temp = dir + "/." + name + ".XXXXXX";
  int fd = g_mkstemp_full(&temp[0], O_WRONLY | O_CLOEXEC, 0640);
  if (fd < 0) {
    *error = "cannot create a file in the transcript directory: " + std::string(g_strerror(errno));
    return false;
  }
  // The mode does not depend on the service's umask: the group (e.g. a log shipper) reads them.
  bool ok = fchmod(fd, 0640) == 0 && write_all(fd, json) && write_all(fd, "\n") && fsync(fd) == 0;
  int saved = errno;
  ok = close(fd) == 0 && ok;
  if (ok && rename(temp.c_str(), final_path.c_str()) != 0) {
    ok = false;
    saved = errno;
  }
  if (!ok) {
    g_unlink(temp.c_str());
    *error = "cannot write " + name + ": " + g_strerror(saved);
    return false;
  }
  *path = final_path;
  return true;
}

TranscriptRecorder::TranscriptRecorder(const Config &config) : config_(config) {}

void TranscriptRecorder::on_transcript(Call &call, const std::string &role, const std::string &text,
                                       bool interrupted) {
  if (finished_ || text.empty()) return;
  turns_.push_back({role, text, call.duration_s(), wall_clock_now(), interrupted});
}

void TranscriptRecorder::on_response_done(Call &, const GstStructure *message) {
  if (!finished_) usage_.add(message);
}

void TranscriptRecorder::on_dtmf(Call &call, char digit) {
  if (!finished_) dtmf_.push_back({digit, call.duration_s(), wall_clock_now()});
}

std::string TranscriptRecorder::to_json(const Call &call) const {
  const CallOptions &o = call.options();
  JsonBuilder *b = json_builder_new();
  json_builder_begin_object(b);
  set_string(b, "call_id", call.id());
  set_string(b, "direction", call.direction() == Direction::Inbound ? "inbound" : "outbound");
  set_string(b, "caller", o.caller);
  set_string(b, "caller_name", o.caller_name);
  set_string(b, "created_at", created_at_of(call));
  json_builder_set_member_name(b, "ended_at");
  if (ended_at_.empty())
    json_builder_add_null_value(b);
  else
    json_builder_add_string_value(b, ended_at_.c_str());
  set_double(b, "duration_s", round3(call.duration_s()));
  json_builder_set_member_name(b, "end_reason");
  if (call.end_reason().empty())
    json_builder_add_null_value(b);
  else
    json_builder_add_string_value(b, call.end_reason().c_str());
  json_builder_set_member_name(b, "metadata");
  JsonNode *metadata = o.metadata_json.empty() ? nullptr : json_from_string(o.metadata_json.c_str(), nullptr);
  if (metadata && JSON_NODE_HOLDS_OBJECT(metadata)) {
    json_builder_add_value(b, metadata);  // takes ownership
  } else {
    if (metadata) json_node_unref(metadata);
    json_builder_add_null_value(b);
  }

  json_builder_set_member_name(b, "turns");
  json_builder_begin_array(b);
  for (const Turn &t : turns_) {
    json_builder_begin_object(b);
    set_string(b, "role", t.role);
    set_string(b, "text", t.text);
    set_double(b, "at_s", round3(t.at_s));
    set_string(b, "at", t.at);
    if (t.interrupted) {
      json_builder_set_member_name(b, "interrupted");
      json_builder_add_boolean_value(b, TRUE);
    }
    json_builder_end_object(b);
  }
  json_builder_end_array(b);

  json_builder_set_member_name(b, "dtmf");
  json_builder_begin_array(b);
  for (const Key &k : dtmf_) {
    json_builder_begin_object(b);
    set_string(b, "digit", std::string(1, k.digit));
    set_double(b, "at_s", round3(k.at_s));
    set_string(b, "at", k.at);
    json_builder_end_object(b);
  }
  json_builder_end_array(b);

  json_builder_set_member_name(b, "usage");
  json_builder_begin_object(b);
  set_uint(b, "responses", usage_.responses);
  set_uint(b, "input_tokens", usage_.input_tokens);
  set_uint(b, "output_tokens", usage_.output_tokens);
  set_uint(b, "input_audio_tokens", usage_.input_audio_tokens);
  set_uint(b, "input_text_tokens", usage_.input_text_tokens);
  set_uint(b, "input_cached_tokens", usage_.input_cached_tokens);
  set_uint(b, "output_audio_tokens", usage_.output_audio_tokens);
  set_uint(b, "output_text_tokens", usage_.output_text_tokens);
  json_builder_end_object(b);

  TokenPrices prices = TokenPrices::from_config(config_);
  json_builder_set_member_name(b, "prices_usd_per_1m_tokens");
  json_builder_begin_object(b);
  set_double(b, "audio_in", prices.audio_in);
  set_double(b, "audio_out", prices.audio_out);
  set_double(b, "text_in", prices.text_in);
  set_double(b, "text_out", prices.text_out);
  set_double(b, "cached_in", prices.cached_in);
  json_builder_end_object(b);
  // Micro-dollars are below any bill's resolution.
  set_double(b, "estimated_cost_usd", std::round(estimate_cost_usd(usage_, prices) * 1e6) / 1e6);
  json_builder_end_object(b);

  JsonNode *root = json_builder_get_root(b);
  gchar *text = json_to_string(root, FALSE);
  std::string out(text);
  g_free(text);
  json_node_unref(root);
  g_object_unref(b);
  return out;
}

void TranscriptRecorder::on_ended(Call &call) {
  if (finished_) return;
  finished_ = true;
  ended_at_ = wall_clock_now();
  double cost = estimate_cost_usd(usage_, TokenPrices::from_config(config_));
  // Six decimals, as in the file: a call costs fractions of a cent, below LogField's three.
  char cost_text[G_ASCII_DTOSTR_BUF_SIZE];
  LogField cost_field("estimated_cost_usd", g_ascii_formatd(cost_text, sizeof cost_text, "%.6f", cost));
  cost_field.number = true;
  log_event(LogLevel::Info, "CALL_COST", call.id(), "estimated model cost of the call",
            {cost_field,
             {"responses", usage_.responses},
             {"input_tokens", usage_.input_tokens},
             {"output_tokens", usage_.output_tokens},
             {"input_audio_tokens", usage_.input_audio_tokens},
             {"input_text_tokens", usage_.input_text_tokens},
             {"input_cached_tokens", usage_.input_cached_tokens},
             {"output_audio_tokens", usage_.output_audio_tokens},
             {"output_text_tokens", usage_.output_text_tokens}});
  if (config_.transcript_dir.empty() && config_.transcript_url.empty()) return;

  std::string json = to_json(call);
  if (!config_.transcript_dir.empty()) {
    // Written here, synchronously (a small file): at shutdown the last call's transcript must be on
    // disk before the main loop stops, and a worker thread could still be writing then.
    std::string path, error;
    if (write_transcript_file(config_.transcript_dir, call.id(), json, &path, &error))
      log_event(LogLevel::Info, "TRANSCRIPT_WRITTEN", call.id(), "transcript written",
                {{"file", transcript_file_name(call.id())}, {"turns", (unsigned long)turns_.size()}});
    else
      log_event(LogLevel::Warning, "TRANSCRIPT_WRITE_FAILED", call.id(), error);
  }
  if (!config_.transcript_url.empty()) {
    std::string id = call.id();
    http_post_json(config_.transcript_url, json, kTranscriptPostTimeoutMs, [id](const HttpPostResult &r) {
      if (r.ok())
        log_event(LogLevel::Info, "TRANSCRIPT_SENT", id, "transcript sent",
                  {{"status", r.status}, {"duration_ms", r.duration_ms}});
      else
        log_event(LogLevel::Warning, "TRANSCRIPT_SEND_FAILED", id,
                  r.error.empty() ? "the receiver answered HTTP " + std::to_string(r.status) : r.error,
                  {{"status", r.status}, {"duration_ms", r.duration_ms}});
    });
  }
}

}  // namespace vb
