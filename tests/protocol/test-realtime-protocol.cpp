// Unit tests for realtime-protocol.{h,cpp}: the client-event builders (checked by parsing their
// output back with json-glib) and the server-event parser (fed the example events of
// /work/shared/docs/openai-realtime.md §4, their beta spellings, and mutated versions of them).
#include <gst/check/gstcheck.h>
#include <json-glib/json-glib.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "realtime-protocol.h"

using namespace realtime;

namespace {

// ---------------------------------------------------------------------------------------------
// JSON inspection helpers
// ---------------------------------------------------------------------------------------------

JsonNode *parse_or_null(const std::string &text) {
  JsonParser *parser = json_parser_new();
  GError *error = nullptr;
  JsonNode *root = nullptr;
  if (json_parser_load_from_data(parser, text.data(), (gssize)text.size(), &error))
    root = json_parser_steal_root(parser);
  g_clear_error(&error);
  g_object_unref(parser);
  return root;
}

std::string to_text(JsonNode *node) {
  JsonGenerator *gen = json_generator_new();
  json_generator_set_root(gen, node);
  gsize len = 0;
  gchar *text = json_generator_to_data(gen, &len);
  std::string out(text, len);
  g_free(text);
  g_object_unref(gen);
  return out;
}

// Dotted path lookup; numeric segments index arrays. nullptr when any step is missing.
JsonNode *node_at(JsonNode *node, const std::string &path) {
  if (path.empty())
    return node;
  gchar **parts = g_strsplit(path.c_str(), ".", -1);
  for (gchar **p = parts; *p != nullptr && node != nullptr; p++) {
    if (JSON_NODE_HOLDS_OBJECT(node)) {
      JsonObject *o = json_node_get_object(node);
      node = json_object_has_member(o, *p) ? json_object_get_member(o, *p) : nullptr;
    } else if (JSON_NODE_HOLDS_ARRAY(node)) {
      JsonArray *a = json_node_get_array(node);
      gchar *end = nullptr;
      guint64 idx = g_ascii_strtoull(*p, &end, 10);
      node = (end != *p && *end == '\0' && idx < json_array_get_length(a))
                 ? json_array_get_element(a, (guint)idx)
                 : nullptr;
    } else {
      node = nullptr;
    }
  }
  g_strfreev(parts);
  return node;
}

// A parsed client event, kept with its text for failure messages.
class Doc {
 public:
  explicit Doc(std::string text) : text_(std::move(text)), root_(parse_or_null(text_)) {
    fail_unless(root_ != nullptr, "not valid JSON: %s", text_.c_str());
  }
  ~Doc() {
    if (root_)
      json_node_unref(root_);
  }
  Doc(const Doc &) = delete;
  Doc &operator=(const Doc &) = delete;

  JsonNode *root() const { return root_; }
  const char *text() const { return text_.c_str(); }
  JsonNode *at(const std::string &path) const { return node_at(root_, path); }

  void expect_str(const std::string &path, const std::string &want) const {
    JsonNode *n = at(path);
    fail_unless(n && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING,
                "%s is not a string in %s", path.c_str(), text());
    fail_unless(want == json_node_get_string(n), "%s: want \"%s\", got \"%s\" in %s", path.c_str(),
                want.c_str(), json_node_get_string(n), text());
  }
  void expect_int(const std::string &path, int64_t want) const {
    JsonNode *n = at(path);
    fail_unless(n && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_INT64,
                "%s is not an integer in %s", path.c_str(), text());
    fail_unless(json_node_get_int(n) == want, "%s: want %" G_GINT64_FORMAT ", got %" G_GINT64_FORMAT,
                path.c_str(), (gint64)want, (gint64)json_node_get_int(n));
  }
  void expect_double(const std::string &path, double want) const {
    JsonNode *n = at(path);
    fail_unless(n && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_DOUBLE,
                "%s is not a double in %s", path.c_str(), text());
    fail_unless(json_node_get_double(n) == want, "%s: want %g, got %g", path.c_str(), want,
                json_node_get_double(n));
  }
  void expect_bool(const std::string &path, bool want) const {
    JsonNode *n = at(path);
    fail_unless(n && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_BOOLEAN,
                "%s is not a boolean in %s", path.c_str(), text());
    fail_unless((json_node_get_boolean(n) != FALSE) == want, "%s: want %d", path.c_str(), want);
  }
  void expect_null(const std::string &path) const {
    JsonNode *n = at(path);
    fail_unless(n && JSON_NODE_HOLDS_NULL(n), "%s is not null in %s", path.c_str(), text());
  }
  void expect_absent(const std::string &path) const {
    fail_unless(at(path) == nullptr, "%s should be absent in %s", path.c_str(), text());
  }
  // The object at `path` has exactly these members: catches both missing and stray keys (a stray
  // beta key makes a GA server reject the whole session.update, §8 G2).
  void expect_members(const std::string &path, std::set<std::string> want) const {
    JsonNode *n = at(path);
    fail_unless(n && JSON_NODE_HOLDS_OBJECT(n), "%s is not an object in %s", path.c_str(), text());
    std::set<std::string> got;
    GList *members = json_object_get_members(json_node_get_object(n));
    for (GList *l = members; l; l = l->next)
      got.insert((const char *)l->data);
    g_list_free(members);
    std::string got_s, want_s;
    for (const auto &m : got)
      got_s += m + " ";
    for (const auto &m : want)
      want_s += m + " ";
    fail_unless(got == want, "%s: want members {%s}, got {%s}", path.c_str(), want_s.c_str(),
                got_s.c_str());
  }
  void expect_array_len(const std::string &path, guint want) const {
    JsonNode *n = at(path);
    fail_unless(n && JSON_NODE_HOLDS_ARRAY(n), "%s is not an array in %s", path.c_str(), text());
    fail_unless(json_array_get_length(json_node_get_array(n)) == want, "%s: want %u elements",
                path.c_str(), want);
  }

 private:
  std::string text_;
  JsonNode *root_;
};

ServerEvent parse_ok(const std::string &frame) {
  ServerEvent ev;
  std::string error;
  fail_unless(parse_server_event(frame.data(), frame.size(), &ev, &error), "parse failed (%s): %s",
              error.c_str(), frame.c_str());
  return ev;
}

void expect_parse_fails(const std::string &frame) {
  ServerEvent ev;
  std::string error;
  fail_if(parse_server_event(frame.data(), frame.size(), &ev, &error), "should fail: %.200s",
          frame.c_str());
  fail_if(error.empty(), "no error message for: %.200s", frame.c_str());
}

const char *const kWeatherTools =
    R"([{"type":"function","name":"get_weather","description":"Get weather for a city.",)"
    R"("parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}])";

SessionConfig full_config(TurnDetectionType type) {
  SessionConfig c;
  c.instructions = "You are a helpful voice assistant.";
  c.voice = "marin";
  c.turn_detection.type = type;
  c.turn_detection.threshold = 0.625;
  c.turn_detection.prefix_padding_ms = 250;
  c.turn_detection.silence_duration_ms = 700;
  c.turn_detection.eagerness = "high";
  c.turn_detection.create_response = false;
  c.turn_detection.interrupt_response = true;
  c.transcription_model = "gpt-4o-mini-transcribe";
  c.transcription_language = "en";
  c.noise_reduction = "near_field";
  c.tools_json = kWeatherTools;
  c.tool_choice = "auto";
  return c;
}

// The beta keys a GA server rejects with unknown_parameter (§2.2).
void expect_no_beta_keys(const Doc &d) {
  for (const char *k : {"modalities", "voice", "input_audio_format", "output_audio_format",
                        "input_audio_transcription", "turn_detection", "input_audio_noise_reduction",
                        "temperature", "max_response_output_tokens"})
    d.expect_absent(std::string("session.") + k);
}

void expect_ga_turn_detection(const Doc &d, const std::string &td_path, const SessionConfig &c) {
  const TurnDetection &td = c.turn_detection;
  switch (td.type) {
    case TurnDetectionType::ServerVad:
      d.expect_members(td_path, {"type", "threshold", "prefix_padding_ms", "silence_duration_ms",
                                 "create_response", "interrupt_response"});
      d.expect_str(td_path + ".type", "server_vad");
      d.expect_double(td_path + ".threshold", td.threshold);
      d.expect_int(td_path + ".prefix_padding_ms", td.prefix_padding_ms);
      d.expect_int(td_path + ".silence_duration_ms", td.silence_duration_ms);
      break;
    case TurnDetectionType::SemanticVad:
      d.expect_members(td_path, {"type", "eagerness", "create_response", "interrupt_response"});
      d.expect_str(td_path + ".type", "semantic_vad");
      d.expect_str(td_path + ".eagerness", td.eagerness);
      break;
    case TurnDetectionType::None:
      d.expect_null(td_path);
      return;
  }
  d.expect_bool(td_path + ".create_response", td.create_response);
  d.expect_bool(td_path + ".interrupt_response", td.interrupt_response);
}

void check_ga_full(TurnDetectionType type) {
  const SessionConfig c = full_config(type);
  Doc d(build_session_update(ApiShape::GA, c));
  d.expect_members("", {"type", "session"});
  d.expect_str("type", "session.update");
  d.expect_members("session",
                   {"type", "output_modalities", "instructions", "audio", "tools", "tool_choice"});
  d.expect_str("session.type", "realtime");
  d.expect_array_len("session.output_modalities", 1);
  d.expect_str("session.output_modalities.0", "audio");
  d.expect_str("session.instructions", c.instructions);
  d.expect_members("session.audio", {"input", "output"});
  d.expect_members("session.audio.input",
                   {"format", "noise_reduction", "transcription", "turn_detection"});
  d.expect_members("session.audio.input.format", {"type", "rate"});
  d.expect_str("session.audio.input.format.type", "audio/pcm");
  d.expect_int("session.audio.input.format.rate", 24000);
  d.expect_members("session.audio.input.noise_reduction", {"type"});
  d.expect_str("session.audio.input.noise_reduction.type", "near_field");
  d.expect_members("session.audio.input.transcription", {"model", "language"});
  d.expect_str("session.audio.input.transcription.model", "gpt-4o-mini-transcribe");
  d.expect_str("session.audio.input.transcription.language", "en");
  expect_ga_turn_detection(d, "session.audio.input.turn_detection", c);
  d.expect_members("session.audio.output", {"format", "voice"});
  d.expect_str("session.audio.output.format.type", "audio/pcm");
  d.expect_int("session.audio.output.format.rate", 24000);
  d.expect_str("session.audio.output.voice", "marin");
  d.expect_array_len("session.tools", 1);
  d.expect_str("session.tools.0.name", "get_weather");
  d.expect_str("session.tools.0.parameters.required.0", "city");
  d.expect_str("session.tool_choice", "auto");
  expect_no_beta_keys(d);
}

void check_beta_full(TurnDetectionType type) {
  const SessionConfig c = full_config(type);
  Doc d(build_session_update(ApiShape::Beta, c));
  d.expect_members("", {"type", "session"});
  d.expect_str("type", "session.update");
  d.expect_members("session", {"modalities", "instructions", "voice", "input_audio_format",
                               "output_audio_format", "input_audio_transcription",
                               "turn_detection", "input_audio_noise_reduction", "tools",
                               "tool_choice"});
  d.expect_absent("session.type");  // beta servers reject it
  d.expect_absent("session.audio");
  d.expect_absent("session.output_modalities");
  d.expect_array_len("session.modalities", 2);
  d.expect_str("session.modalities.0", "text");
  d.expect_str("session.modalities.1", "audio");
  d.expect_str("session.instructions", c.instructions);
  d.expect_str("session.voice", "marin");
  d.expect_str("session.input_audio_format", "pcm16");
  d.expect_str("session.output_audio_format", "pcm16");
  d.expect_str("session.input_audio_transcription.model", "gpt-4o-mini-transcribe");
  d.expect_str("session.input_audio_noise_reduction.type", "near_field");
  d.expect_members("session.input_audio_noise_reduction", {"type"});
  expect_ga_turn_detection(d, "session.turn_detection", c);
  d.expect_str("session.tools.0.name", "get_weather");
  d.expect_str("session.tool_choice", "auto");
}

std::vector<uint8_t> pattern_bytes(size_t len) {
  std::vector<uint8_t> v(len);
  for (size_t i = 0; i < len; i++)
    v[i] = (uint8_t)((i * 131 + 7) ^ (i >> 8));
  return v;
}

std::string b64(const std::vector<uint8_t> &bytes) {
  gchar *s = g_base64_encode(bytes.data(), bytes.size());
  std::string out(s);
  g_free(s);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Server event fixtures: doc §4 examples (SPEC x-oaiMeta), copied shape for shape. Those marked
// "built" are assembled from the §4/§6 prose or the beta (PYBETA) type where §4 shows no example.
// ---------------------------------------------------------------------------------------------

const char *const kSessionCreatedGA = R"({"type":"session.created","event_id":"event_C9G5RJeJ2gF77mV7f2B1j","session":{
  "type":"realtime","object":"realtime.session","id":"sess_C9G5QPteg4UIbotdKLoYQ",
  "model":"gpt-realtime-2025-08-28","output_modalities":["audio"],"instructions":"…default…",
  "tools":[],"tool_choice":"auto","max_output_tokens":"inf","tracing":null,"prompt":null,
  "expires_at":1756324625,
  "audio":{"input":{"format":{"type":"audio/pcm","rate":24000},"transcription":null,"noise_reduction":null,
     "turn_detection":{"type":"server_vad","threshold":0.5,"prefix_padding_ms":300,"silence_duration_ms":200,
                       "idle_timeout_ms":null,"create_response":true,"interrupt_response":true}},
   "output":{"format":{"type":"audio/pcm","rate":24000},"voice":"marin","speed":1}},
  "include":null}})";

// session.updated after a push-to-talk update: turn_detection null.
const char *const kSessionUpdatedGANoVad = R"({"type":"session.updated","event_id":"event_C9G5x","session":{
  "type":"realtime","object":"realtime.session","id":"sess_C9G5QPteg4UIbotdKLoYQ","expires_at":1756324999,
  "audio":{"input":{"format":{"type":"audio/pcm","rate":24000},"transcription":{"model":"gpt-4o-mini-transcribe"},
     "noise_reduction":{"type":"far_field"},"turn_detection":null},
   "output":{"format":{"type":"audio/pcm","rate":24000},"voice":"marin","speed":1}}}})";

// Built: the beta session (PYBETA session.py, §2.6 "beta sends modalities and input_audio_format").
const char *const kSessionCreatedBeta = R"({"event_id":"event_1234","type":"session.created","session":{
  "id":"sess_001","object":"realtime.session","model":"gpt-4o-realtime-preview-2024-12-17",
  "modalities":["text","audio"],"instructions":"…","voice":"alloy","input_audio_format":"pcm16",
  "output_audio_format":"pcm16","input_audio_transcription":null,
  "turn_detection":{"type":"server_vad","threshold":0.5,"prefix_padding_ms":300,"silence_duration_ms":200,
                    "create_response":true,"interrupt_response":false},
  "tools":[],"tool_choice":"auto","temperature":0.8,"max_response_output_tokens":"inf"}})";

const char *const kSessionUpdatedBetaNoVad = R"({"event_id":"event_1235","type":"session.updated","session":{
  "id":"sess_001","object":"realtime.session","modalities":["text","audio"],"voice":"alloy",
  "input_audio_format":"pcm16","output_audio_format":"pcm16","turn_detection":null}})";

const char *const kError = R"({"event_id":"event_890","type":"error","error":{"type":"invalid_request_error","code":"invalid_event",
  "message":"The 'type' field is missing.","param":null,"event_id":"event_567"}})";

// pipecat #925 / luke #564: the truncate error with null code and null event_id.
const char *const kErrorTruncateNulls = R"({"event_id":"event_891","type":"error","error":{"type":"invalid_request_error",
  "code":null,"message":"Audio content of 9800ms is already shorter than 11579ms","param":null,"event_id":null}})";

const char *const kSpeechStarted =
    R"({"event_id":"event_1516","type":"input_audio_buffer.speech_started","audio_start_ms":1000,"item_id":"msg_003"})";
const char *const kSpeechStopped =
    R"({"event_id":"event_1718","type":"input_audio_buffer.speech_stopped","audio_end_ms":2000,"item_id":"msg_003"})";
const char *const kCommitted =
    R"({"event_id":"event_1121","type":"input_audio_buffer.committed","previous_item_id":"msg_001","item_id":"msg_002"})";
const char *const kCleared = R"({"event_id":"event_1314","type":"input_audio_buffer.cleared"})";
const char *const kTimeoutTriggered =
    R"({"type":"input_audio_buffer.timeout_triggered","event_id":"event_CEKK…","audio_start_ms":13216,"audio_end_ms":19232,"item_id":"item_CEKK…"})";

const char *const kItemAdded = R"({"type":"conversation.item.added","event_id":"event_C9G8…","previous_item_id":null,
 "item":{"id":"item_C9G8pGVKYnaZu8PH5YQ9O","type":"message","status":"completed","role":"user",
         "content":[{"type":"input_text","text":"hi"}]}})";
const char *const kItemDone = R"({"type":"conversation.item.done","event_id":"event_CCXL…","previous_item_id":"item_CCXLecNJVIVR2HUy3ABLj",
 "item":{"id":"item_CCXLfxmM5sXVJVz4mCa2S","type":"message","status":"completed","role":"assistant",
         "content":[{"type":"output_audio","transcript":"Oh, I can hear you loud and clear!…"}]}})";
// Beta spelling (still in the GA union, §2.1).
const char *const kItemCreatedBeta = R"({"event_id":"event_1920","type":"conversation.item.created","previous_item_id":"msg_002",
 "item":{"id":"msg_003","object":"realtime.item","type":"message","status":"completed","role":"user",
         "content":[{"type":"input_audio","transcript":"hello how are you"}]}})";
// Built from the §3 truncate/delete descriptions (SPEC shapes).
const char *const kItemTruncated =
    R"({"event_id":"event_2526","type":"conversation.item.truncated","item_id":"msg_004","content_index":0,"audio_end_ms":1500})";
const char *const kItemDeleted =
    R"({"event_id":"event_2728","type":"conversation.item.deleted","item_id":"msg_005"})";

const char *const kTranscriptionCompleted = R"({"type":"conversation.item.input_audio_transcription.completed","event_id":"event_CCXG…",
 "item_id":"item_CCXGQ4e1ht4cOraEYcuR2","content_index":0,"transcript":"Hey, can you hear me?",
 "usage":{"type":"tokens","total_tokens":22,"input_tokens":13,"input_token_details":{"text_tokens":0,"audio_tokens":13},"output_tokens":9}})";
const char *const kTranscriptionFailed = R"({"event_id":"event_2324","type":"conversation.item.input_audio_transcription.failed","item_id":"msg_003","content_index":0,
 "error":{"type":"transcription_error","code":"audio_unintelligible","message":"The audio could not be transcribed.","param":null}})";

const char *const kResponseCreated = R"({"type":"response.created","event_id":"event_C9G8…","response":{"object":"realtime.response",
 "id":"resp_C9G8p7IH2WxLbkgPNouYL","status":"in_progress","status_details":null,"output":[],
 "conversation_id":"conv_C9G8mmBkLhQJwCon3hoJN","output_modalities":["audio"],"max_output_tokens":"inf",
 "audio":{"output":{"format":{"type":"audio/pcm","rate":24000},"voice":"marin"}},"usage":null,"metadata":null}})";

const char *const kOutputItemAdded = R"({"event_id":"event_3334","type":"response.output_item.added","response_id":"resp_001","output_index":0,
 "item":{"id":"msg_007","object":"realtime.item","type":"message","status":"in_progress","role":"assistant","content":[]}})";
// Built from §6 step 2: a function_call output item.
const char *const kOutputItemDoneFunctionCall = R"({"event_id":"event_3740","type":"response.output_item.done","response_id":"resp_002","output_index":0,
 "item":{"id":"fc_001","object":"realtime.item","type":"function_call","status":"completed",
         "name":"get_weather","call_id":"call_001","arguments":"{\"location\": \"San Francisco\"}"}})";
const char *const kContentPartAdded = R"({"event_id":"event_3738","type":"response.content_part.added","response_id":"resp_001","item_id":"msg_007",
 "output_index":0,"content_index":0,"part":{"type":"audio","transcript":""}})";

const char *const kAudioDeltaDoc = R"({"event_id":"event_4950","type":"response.output_audio.delta","response_id":"resp_001","item_id":"msg_008",
 "output_index":0,"content_index":0,"delta":"Base64EncodedAudioDelta"})";
const char *const kAudioDone = R"({"event_id":"event_5152","type":"response.output_audio.done","response_id":"resp_001","item_id":"msg_008",
 "output_index":0,"content_index":0})";
const char *const kTranscriptDelta = R"({"event_id":"event_4546","type":"response.output_audio_transcript.delta","response_id":"resp_001","item_id":"msg_008",
 "output_index":0,"content_index":0,"delta":"Hello, how can I a"})";
const char *const kTranscriptDone = R"({"event_id":"event_4748","type":"response.output_audio_transcript.done","response_id":"resp_001","item_id":"msg_008",
 "output_index":0,"content_index":0,"transcript":"Hello, how can I assist you today?"})";
// Built: §4 says output_text.done carries `text`.
const char *const kTextDone = R"({"event_id":"event_4344","type":"response.output_text.done","response_id":"resp_001","item_id":"msg_007",
 "output_index":0,"content_index":0,"text":"Sure, I can help with that."})";

const char *const kArgsDelta = R"({"event_id":"event_5354","type":"response.function_call_arguments.delta","response_id":"resp_002","item_id":"fc_001",
 "output_index":0,"call_id":"call_001","delta":"{\"location\": \"San\""})";
const char *const kArgsDone = R"({"event_id":"event_5556","type":"response.function_call_arguments.done","response_id":"resp_002","item_id":"fc_001",
 "output_index":0,"call_id":"call_001","name":"get_weather","arguments":"{\"location\": \"San Francisco\"}"})";

const char *const kResponseDone = R"({"type":"response.done","event_id":"event_CCXHxcMy86rrKhBLDdqCh","response":{"object":"realtime.response",
 "id":"resp_CCXHw0UJld10EzIUXQCNh","status":"completed","status_details":null,
 "output":[{"id":"item_CCXHwGjjDUfOXbiySlK7i","type":"message","status":"completed","role":"assistant",
            "content":[{"type":"output_audio","transcript":"Loud and clear! …"}]}],
 "conversation_id":"conv_CCXHsurMKcaVxIZvaCI5m","output_modalities":["audio"],"max_output_tokens":"inf",
 "audio":{"output":{"format":{"type":"audio/pcm","rate":24000},"voice":"alloy"}},
 "usage":{"total_tokens":253,"input_tokens":132,"output_tokens":121,
   "input_token_details":{"text_tokens":119,"audio_tokens":13,"image_tokens":0,"cached_tokens":64,
     "cached_tokens_details":{"text_tokens":64,"audio_tokens":0,"image_tokens":0}},
   "output_token_details":{"text_tokens":30,"audio_tokens":91}},"metadata":null}})";
// Built from the §4 schema notes: barge-in and failure.
const char *const kResponseDoneCancelled = R"({"type":"response.done","event_id":"event_9","response":{"object":"realtime.response",
 "id":"resp_003","status":"cancelled","status_details":{"type":"cancelled","reason":"turn_detected"},"output":[],"usage":null}})";
const char *const kResponseDoneFailed = R"({"type":"response.done","event_id":"event_10","response":{"object":"realtime.response",
 "id":"resp_004","status":"failed","status_details":{"type":"failed","error":{"type":"server_error","code":"rate_limit_exceeded",
 "message":"Rate limit reached."}},"output":[]}})";

const char *const kRateLimits = R"({"event_id":"event_5758","type":"rate_limits.updated","rate_limits":[
 {"name":"requests","limit":1000,"remaining":999,"reset_seconds":60},
 {"name":"tokens","limit":50000,"remaining":49950,"reset_seconds":60}]})";

// Beta spellings of the renamed events (§2.1), same bodies as the GA examples above.
const char *const kAudioDeltaBeta = R"({"event_id":"event_4950","type":"response.audio.delta","response_id":"resp_001","item_id":"msg_008",
 "output_index":0,"content_index":0,"delta":"AAECAwQF"})";
const char *const kAudioDoneBeta = R"({"event_id":"event_5152","type":"response.audio.done","response_id":"resp_001","item_id":"msg_008",
 "output_index":0,"content_index":0})";
const char *const kTranscriptDeltaBeta = R"({"event_id":"event_4546","type":"response.audio_transcript.delta","response_id":"resp_001","item_id":"msg_008",
 "output_index":0,"content_index":0,"delta":"Hello, how can I a"})";
const char *const kTranscriptDoneBeta = R"({"event_id":"event_4748","type":"response.audio_transcript.done","response_id":"resp_001","item_id":"msg_008",
 "output_index":0,"content_index":0,"transcript":"Hello, how can I assist you today?"})";
const char *const kTextDeltaBeta = R"({"event_id":"event_4142","type":"response.text.delta","response_id":"resp_001","item_id":"msg_007",
 "output_index":0,"content_index":0,"delta":"Sure, I can h"})";
const char *const kTextDoneBeta = R"({"event_id":"event_4344","type":"response.text.done","response_id":"resp_001","item_id":"msg_007",
 "output_index":0,"content_index":0,"text":"Sure, I can help with that."})";
// The beta arguments.done had no name (§2.4).
const char *const kArgsDoneBeta = R"({"event_id":"event_5556","type":"response.function_call_arguments.done","response_id":"resp_002","item_id":"fc_001",
 "output_index":0,"call_id":"call_001","arguments":"{\"location\": \"San Francisco\"}"})";

const char *const kAllFixtures[] = {
    kSessionCreatedGA, kSessionUpdatedGANoVad, kSessionCreatedBeta, kSessionUpdatedBetaNoVad,
    kError, kErrorTruncateNulls, kSpeechStarted, kSpeechStopped, kCommitted, kCleared,
    kTimeoutTriggered, kItemAdded, kItemDone, kItemCreatedBeta, kItemTruncated, kItemDeleted,
    kTranscriptionCompleted, kTranscriptionFailed, kResponseCreated, kOutputItemAdded,
    kOutputItemDoneFunctionCall, kContentPartAdded, kAudioDeltaDoc, kAudioDone, kTranscriptDelta,
    kTranscriptDone, kTextDone, kArgsDelta, kArgsDone, kResponseDone, kResponseDoneCancelled,
    kResponseDoneFailed, kRateLimits, kAudioDeltaBeta, kAudioDoneBeta, kTranscriptDeltaBeta,
    kTranscriptDoneBeta, kTextDeltaBeta, kTextDoneBeta, kArgsDoneBeta,
};

// ---- tree mutation for the robustness tests ----

struct Step {
  std::string key;  // object member, or empty for an array index
  guint index = 0;
};
using Path = std::vector<Step>;

void collect_paths(JsonNode *node, Path &prefix, std::vector<Path> *out) {
  if (JSON_NODE_HOLDS_OBJECT(node)) {
    JsonObject *o = json_node_get_object(node);
    GList *members = json_object_get_members(o);
    for (GList *l = members; l; l = l->next) {
      prefix.push_back({(const char *)l->data, 0});
      out->push_back(prefix);
      collect_paths(json_object_get_member(o, (const char *)l->data), prefix, out);
      prefix.pop_back();
    }
    g_list_free(members);
  } else if (JSON_NODE_HOLDS_ARRAY(node)) {
    JsonArray *a = json_node_get_array(node);
    for (guint i = 0; i < json_array_get_length(a); i++) {
      prefix.push_back({"", i});
      out->push_back(prefix);
      collect_paths(json_array_get_element(a, i), prefix, out);
      prefix.pop_back();
    }
  }
}

// A copy of `node` with the value at path[i..] replaced by a copy of `repl`, or removed when
// `repl` is nullptr.
JsonNode *rebuild(JsonNode *node, const Path &path, size_t i, JsonNode *repl) {
  if (i == path.size())
    return json_node_copy(repl);
  const Step &step = path[i];
  const bool last = i + 1 == path.size();
  if (JSON_NODE_HOLDS_OBJECT(node)) {
    JsonObject *src = json_node_get_object(node);
    JsonObject *dst = json_object_new();
    GList *members = json_object_get_members(src);
    for (GList *l = members; l; l = l->next) {
      const char *name = (const char *)l->data;
      JsonNode *child = json_object_get_member(src, name);
      if (step.key == name) {
        if (!(last && repl == nullptr))
          json_object_set_member(dst, name, rebuild(child, path, i + 1, repl));
      } else {
        json_object_set_member(dst, name, json_node_copy(child));
      }
    }
    g_list_free(members);
    JsonNode *out = json_node_init_object(json_node_alloc(), dst);
    json_object_unref(dst);
    return out;
  }
  JsonArray *src = json_node_get_array(node);
  JsonArray *dst = json_array_new();
  for (guint k = 0; k < json_array_get_length(src); k++) {
    JsonNode *child = json_array_get_element(src, k);
    if (k == step.index) {
      if (!(last && repl == nullptr))
        json_array_add_element(dst, rebuild(child, path, i + 1, repl));
    } else {
      json_array_add_element(dst, json_node_copy(child));
    }
  }
  JsonNode *out = json_node_init_array(json_node_alloc(), dst);
  json_array_unref(dst);
  return out;
}

}  // namespace

// =============================================================================================
// session.update
// =============================================================================================

GST_START_TEST(test_session_update_ga_server_vad) {
  check_ga_full(TurnDetectionType::ServerVad);
}
GST_END_TEST;

GST_START_TEST(test_session_update_ga_semantic_vad) {
  check_ga_full(TurnDetectionType::SemanticVad);
}
GST_END_TEST;

GST_START_TEST(test_session_update_ga_no_vad) {
  check_ga_full(TurnDetectionType::None);
}
GST_END_TEST;

GST_START_TEST(test_session_update_beta_server_vad) {
  check_beta_full(TurnDetectionType::ServerVad);
}
GST_END_TEST;

GST_START_TEST(test_session_update_beta_semantic_vad) {
  check_beta_full(TurnDetectionType::SemanticVad);
}
GST_END_TEST;

GST_START_TEST(test_session_update_beta_no_vad) {
  check_beta_full(TurnDetectionType::None);
}
GST_END_TEST;

// Everything optional left empty: omitted, or null where the server needs an explicit "off".
GST_START_TEST(test_session_update_ga_minimal) {
  SessionConfig c;
  c.turn_detection.type = TurnDetectionType::None;
  Doc d(build_session_update(ApiShape::GA, c));
  d.expect_members("session", {"type", "output_modalities", "audio"});
  d.expect_str("session.type", "realtime");
  d.expect_members("session.audio.input",
                   {"format", "noise_reduction", "transcription", "turn_detection"});
  d.expect_null("session.audio.input.noise_reduction");
  d.expect_null("session.audio.input.transcription");
  d.expect_null("session.audio.input.turn_detection");
  d.expect_members("session.audio.output", {"format"});
  expect_no_beta_keys(d);
}
GST_END_TEST;

GST_START_TEST(test_session_update_beta_minimal) {
  SessionConfig c;
  c.turn_detection.type = TurnDetectionType::None;
  Doc d(build_session_update(ApiShape::Beta, c));
  d.expect_members("session", {"modalities", "input_audio_format", "output_audio_format",
                               "input_audio_transcription", "turn_detection",
                               "input_audio_noise_reduction"});
  d.expect_null("session.input_audio_transcription");
  d.expect_null("session.turn_detection");
  d.expect_null("session.input_audio_noise_reduction");
}
GST_END_TEST;

GST_START_TEST(test_session_update_defaults) {
  // The header's defaults: server_vad 0.5/300/500, both flags true.
  SessionConfig c;
  Doc d(build_session_update(ApiShape::GA, c));
  d.expect_str("session.audio.input.turn_detection.type", "server_vad");
  d.expect_double("session.audio.input.turn_detection.threshold", 0.5);
  d.expect_int("session.audio.input.turn_detection.prefix_padding_ms", 300);
  d.expect_int("session.audio.input.turn_detection.silence_duration_ms", 500);
  d.expect_bool("session.audio.input.turn_detection.create_response", true);
  d.expect_bool("session.audio.input.turn_detection.interrupt_response", true);
  c.turn_detection.type = TurnDetectionType::SemanticVad;
  Doc s(build_session_update(ApiShape::GA, c));
  s.expect_str("session.audio.input.turn_detection.eagerness", "auto");
}
GST_END_TEST;

GST_START_TEST(test_session_update_transcription_and_noise) {
  SessionConfig c;
  c.transcription_model = "whisper-1";  // no language: not sent
  c.noise_reduction = "far_field";
  Doc ga(build_session_update(ApiShape::GA, c));
  ga.expect_members("session.audio.input.transcription", {"model"});
  ga.expect_str("session.audio.input.transcription.model", "whisper-1");
  ga.expect_str("session.audio.input.noise_reduction.type", "far_field");
  Doc beta(build_session_update(ApiShape::Beta, c));
  beta.expect_members("session.input_audio_transcription", {"model"});
  beta.expect_str("session.input_audio_transcription.model", "whisper-1");
  beta.expect_str("session.input_audio_noise_reduction.type", "far_field");
  // Language is part of the beta transcription object too (PYBETA), so it is sent in both shapes.
  c.transcription_language = "de";
  Doc beta_lang(build_session_update(ApiShape::Beta, c));
  beta_lang.expect_str("session.input_audio_transcription.language", "de");
}
GST_END_TEST;

GST_START_TEST(test_session_update_tool_choice) {
  for (ApiShape shape : {ApiShape::GA, ApiShape::Beta}) {
    SessionConfig c;
    c.tools_json = kWeatherTools;
    for (const char *mode : {"auto", "none", "required"}) {
      c.tool_choice = mode;
      Doc d(build_session_update(shape, c));
      d.expect_str("session.tool_choice", mode);
    }
    c.tool_choice = "get_weather";
    Doc fn(build_session_update(shape, c));
    fn.expect_members("session.tool_choice", {"type", "name"});
    fn.expect_str("session.tool_choice.type", "function");
    fn.expect_str("session.tool_choice.name", "get_weather");
    c.tool_choice.clear();
    Doc none(build_session_update(shape, c));
    none.expect_absent("session.tool_choice");
    none.expect_str("session.tools.0.type", "function");
  }
}
GST_END_TEST;

GST_START_TEST(test_session_update_tools) {
  for (ApiShape shape : {ApiShape::GA, ApiShape::Beta}) {
    SessionConfig c;
    // An explicit empty array clears the tools, so it is sent.
    c.tools_json = "[]";
    Doc empty(build_session_update(shape, c));
    empty.expect_array_len("session.tools", 0);
    // Not JSON, or not an array: omitted (the elements validate earlier), never a broken frame.
    for (const char *bad : {"not json", "{\"type\":\"function\"}", "[", "\"[]\"", "42", "null", "",
                            "   ", "[1,]"}) {
      c.tools_json = bad;
      Doc d(build_session_update(shape, c));
      d.expect_absent("session.tools");
    }
    // Deep nesting is refused rather than parsed recursively.
    c.tools_json = std::string(100000, '[') + std::string(100000, ']');
    Doc deep(build_session_update(shape, c));
    deep.expect_absent("session.tools");
  }
}
GST_END_TEST;

GST_START_TEST(test_session_update_string_escaping) {
  SessionConfig c;
  c.instructions = "Say \"hi\"\\ then\nnewline\ttab \x01 ctrl, héllo ✓ 日本";
  c.voice = "ce\"dar";
  Doc d(build_session_update(ApiShape::GA, c));
  d.expect_str("session.instructions", c.instructions);
  d.expect_str("session.audio.output.voice", c.voice);
  // Invalid UTF-8 would make the text frame itself invalid: it is repaired, the rest kept.
  c.instructions = std::string("ok \xff\xfe end");
  std::string frame = build_session_update(ApiShape::GA, c);
  fail_unless(g_utf8_validate(frame.data(), (gssize)frame.size(), nullptr));
  Doc r(frame);
  const char *got = json_node_get_string(r.at("session.instructions"));
  fail_unless(g_str_has_prefix(got, "ok ") && g_str_has_suffix(got, " end"), "%s", got);
}
GST_END_TEST;

GST_START_TEST(test_session_update_non_finite_threshold) {
  SessionConfig c;
  c.turn_detection.threshold = NAN;
  Doc d(build_session_update(ApiShape::GA, c));  // Doc fails the test if the JSON is invalid
  d.expect_double("session.audio.input.turn_detection.threshold", 0.5);
  c.turn_detection.threshold = INFINITY;
  Doc b(build_session_update(ApiShape::Beta, c));
  b.expect_double("session.turn_detection.threshold", 0.5);
}
GST_END_TEST;

// =============================================================================================
// Other builders
// =============================================================================================

GST_START_TEST(test_input_audio_append_round_trip) {
  for (size_t len : std::initializer_list<size_t>{0, 1, 2, 3, 4, 5, 959, 960, 961, 4800}) {
    std::vector<uint8_t> pcm = pattern_bytes(len);
    std::string frame = build_input_audio_append(pcm.data(), pcm.size());
    // Byte-exact with what a JSON generator would produce for the same event.
    std::string want = "{\"type\":\"input_audio_buffer.append\",\"audio\":\"" + b64(pcm) + "\"}";
    fail_unless(frame == want, "len %zu: %s", len, frame.c_str());
    Doc d(frame);
    d.expect_members("", {"type", "audio"});
    d.expect_str("type", "input_audio_buffer.append");
    gsize out_len = 0;
    guchar *decoded = g_base64_decode(json_node_get_string(d.at("audio")), &out_len);
    fail_unless(out_len == len, "len %zu decoded to %zu", len, (size_t)out_len);
    fail_unless(len == 0 || memcmp(decoded, pcm.data(), len) == 0, "len %zu differs", len);
    g_free(decoded);
  }
  // 20 ms at 24 kHz: 960 bytes -> 1280 base64 characters (§2.3).
  std::vector<uint8_t> pcm20 = pattern_bytes(960);
  Doc d(build_input_audio_append(pcm20.data(), pcm20.size()));
  fail_unless_equals_int(strlen(json_node_get_string(d.at("audio"))), 1280);
  // No data at all is an empty append, not a crash.
  Doc null_pcm(build_input_audio_append(nullptr, 16));
  null_pcm.expect_str("audio", "");
}
GST_END_TEST;

GST_START_TEST(test_input_audio_commit_clear) {
  Doc commit(build_input_audio_commit());
  commit.expect_members("", {"type"});
  commit.expect_str("type", "input_audio_buffer.commit");
  Doc clear(build_input_audio_clear());
  clear.expect_members("", {"type"});
  clear.expect_str("type", "input_audio_buffer.clear");
}
GST_END_TEST;

GST_START_TEST(test_response_create) {
  for (ApiShape shape : {ApiShape::GA, ApiShape::Beta}) {
    Doc plain(build_response_create(shape));
    plain.expect_members("", {"type"});
    plain.expect_str("type", "response.create");
    Doc empty(build_response_create(shape, ""));
    empty.expect_members("", {"type"});
    Doc with(build_response_create(shape, "Provide a concise answer."));
    with.expect_members("", {"type", "response"});
    with.expect_members("response", {"instructions"});
    with.expect_str("response.instructions", "Provide a concise answer.");
  }
}
GST_END_TEST;

GST_START_TEST(test_response_cancel) {
  Doc plain(build_response_cancel());
  plain.expect_members("", {"type"});
  plain.expect_str("type", "response.cancel");
  Doc with(build_response_cancel("resp_12345"));
  with.expect_members("", {"type", "response_id"});
  with.expect_str("response_id", "resp_12345");
}
GST_END_TEST;

GST_START_TEST(test_item_truncate_delete) {
  Doc t(build_item_truncate("item_002", 0, 1500));
  t.expect_members("", {"type", "item_id", "content_index", "audio_end_ms"});
  t.expect_str("type", "conversation.item.truncate");
  t.expect_str("item_id", "item_002");
  t.expect_int("content_index", 0);
  t.expect_int("audio_end_ms", 1500);
  Doc big(build_item_truncate("item_003", 1, (int64_t)1 << 40));
  big.expect_int("audio_end_ms", (int64_t)1 << 40);
  big.expect_int("content_index", 1);
  Doc del(build_item_delete("item_002"));
  del.expect_members("", {"type", "item_id"});
  del.expect_str("type", "conversation.item.delete");
  del.expect_str("item_id", "item_002");
}
GST_END_TEST;

GST_START_TEST(test_text_item) {
  struct Case {
    ApiShape shape;
    const char *role;
    const char *content_type;
  } cases[] = {
      {ApiShape::GA, "user", "input_text"},       {ApiShape::GA, "system", "input_text"},
      {ApiShape::GA, "assistant", "output_text"}, {ApiShape::Beta, "user", "input_text"},
      {ApiShape::Beta, "system", "input_text"},   {ApiShape::Beta, "assistant", "text"},
  };
  for (const Case &c : cases) {
    Doc d(build_text_item(c.shape, c.role, "hi \"there\""));
    d.expect_members("", {"type", "item"});
    d.expect_str("type", "conversation.item.create");
    d.expect_members("item", {"type", "role", "content"});
    d.expect_str("item.type", "message");
    d.expect_str("item.role", c.role);
    d.expect_array_len("item.content", 1);
    d.expect_members("item.content.0", {"type", "text"});
    d.expect_str("item.content.0.type", c.content_type);
    d.expect_str("item.content.0.text", "hi \"there\"");
  }
}
GST_END_TEST;

GST_START_TEST(test_function_call_output) {
  Doc d(build_function_call_output("call_001", "{\"temp_c\":21}"));
  d.expect_members("", {"type", "item"});
  d.expect_str("type", "conversation.item.create");
  d.expect_members("item", {"type", "call_id", "output"});
  d.expect_str("item.type", "function_call_output");
  d.expect_str("item.call_id", "call_001");
  // The output stays a string (JSON-encoded by the caller), not an embedded object (§6 step 5).
  d.expect_str("item.output", "{\"temp_c\":21}");
}
GST_END_TEST;

// =============================================================================================
// Server events
// =============================================================================================

GST_START_TEST(test_parse_session_events) {
  ServerEvent ev = parse_ok(kSessionCreatedGA);
  fail_unless(ev.type == EventType::SessionCreated);
  fail_unless_equals_string(ev.type_name.c_str(), "session.created");
  fail_unless_equals_string(ev.event_id.c_str(), "event_C9G5RJeJ2gF77mV7f2B1j");
  fail_unless_equals_int64(ev.expires_at, 1756324625);
  fail_unless(ev.turn_detection_enabled);
  fail_unless(ev.interrupt_response);

  ev = parse_ok(kSessionUpdatedGANoVad);
  fail_unless(ev.type == EventType::SessionUpdated);
  fail_unless_equals_int64(ev.expires_at, 1756324999);
  fail_if(ev.turn_detection_enabled);

  // GA with interrupt_response false.
  std::string ga_no_interrupt = kSessionCreatedGA;
  ga_no_interrupt.replace(ga_no_interrupt.find("\"interrupt_response\":true"),
                          strlen("\"interrupt_response\":true"), "\"interrupt_response\":false");
  ev = parse_ok(ga_no_interrupt);
  fail_unless(ev.turn_detection_enabled);
  fail_if(ev.interrupt_response);

  // Beta: turn_detection at the top of the session.
  ev = parse_ok(kSessionCreatedBeta);
  fail_unless(ev.type == EventType::SessionCreated);
  fail_unless_equals_int64(ev.expires_at, 0);
  fail_unless(ev.turn_detection_enabled);
  fail_if(ev.interrupt_response);
  ev = parse_ok(kSessionUpdatedBetaNoVad);
  fail_unless(ev.type == EventType::SessionUpdated);
  fail_if(ev.turn_detection_enabled);

  // A turn_detection object without interrupt_response means the server default, true.
  ev = parse_ok(R"({"type":"session.updated","session":{"audio":{"input":{"turn_detection":{"type":"semantic_vad"}}}}})");
  fail_unless(ev.turn_detection_enabled);
  fail_unless(ev.interrupt_response);
}
GST_END_TEST;

GST_START_TEST(test_parse_error_events) {
  ServerEvent ev = parse_ok(kError);
  fail_unless(ev.type == EventType::Error);
  fail_unless_equals_string(ev.event_id.c_str(), "event_890");
  fail_unless_equals_string(ev.error.type.c_str(), "invalid_request_error");
  fail_unless_equals_string(ev.error.code.c_str(), "invalid_event");
  fail_unless_equals_string(ev.error.message.c_str(), "The 'type' field is missing.");
  fail_unless_equals_string(ev.error.param.c_str(), "");
  fail_unless_equals_string(ev.error.event_id.c_str(), "event_567");
  fail_if(is_benign_error(ev.error));
  fail_if(is_fatal_error_code(ev.error.code));

  ev = parse_ok(kErrorTruncateNulls);
  fail_unless(ev.type == EventType::Error);
  fail_unless_equals_string(ev.error.code.c_str(), "");
  fail_unless_equals_string(ev.error.event_id.c_str(), "");
  fail_unless(is_benign_error(ev.error));

  // param is set for unknown_parameter errors.
  ev = parse_ok(R"({"type":"error","error":{"type":"invalid_request_error","code":"unknown_parameter",
    "message":"Unknown parameter: 'session.turn_detection'.","param":"session.turn_detection","event_id":null}})");
  fail_unless_equals_string(ev.error.param.c_str(), "session.turn_detection");

  // A numeric code (compatible servers) is kept as text.
  ev = parse_ok(R"({"type":"error","error":{"code":401,"message":"bad key"}})");
  fail_unless_equals_string(ev.error.code.c_str(), "401");

  // No error object at all, or the wrong type: an Error with empty info.
  ev = parse_ok(R"({"type":"error"})");
  fail_unless(ev.type == EventType::Error);
  fail_unless(ev.error.message.empty());
  ev = parse_ok(R"({"type":"error","error":"boom"})");
  fail_unless(ev.error.message.empty());
}
GST_END_TEST;

GST_START_TEST(test_parse_input_buffer_events) {
  ServerEvent ev = parse_ok(kSpeechStarted);
  fail_unless(ev.type == EventType::SpeechStarted);
  fail_unless_equals_int64(ev.audio_start_ms, 1000);
  fail_unless_equals_int64(ev.audio_end_ms, -1);
  fail_unless_equals_string(ev.item_id.c_str(), "msg_003");

  ev = parse_ok(kSpeechStopped);
  fail_unless(ev.type == EventType::SpeechStopped);
  fail_unless_equals_int64(ev.audio_end_ms, 2000);
  fail_unless_equals_int64(ev.audio_start_ms, -1);
  fail_unless_equals_string(ev.item_id.c_str(), "msg_003");

  ev = parse_ok(kCommitted);
  fail_unless(ev.type == EventType::InputCommitted);
  fail_unless_equals_string(ev.item_id.c_str(), "msg_002");
  fail_unless_equals_string(ev.previous_item_id.c_str(), "msg_001");

  ev = parse_ok(kCleared);
  fail_unless(ev.type == EventType::InputCleared);
  fail_unless_equals_string(ev.event_id.c_str(), "event_1314");
}
GST_END_TEST;

GST_START_TEST(test_parse_item_events) {
  ServerEvent ev = parse_ok(kItemAdded);
  fail_unless(ev.type == EventType::ItemAdded);
  fail_unless_equals_string(ev.item_id.c_str(), "item_C9G8pGVKYnaZu8PH5YQ9O");
  fail_unless_equals_string(ev.item_type.c_str(), "message");
  fail_unless_equals_string(ev.item_role.c_str(), "user");
  fail_unless_equals_string(ev.previous_item_id.c_str(), "");  // null

  ev = parse_ok(kItemDone);
  fail_unless(ev.type == EventType::ItemDone);
  fail_unless_equals_string(ev.item_id.c_str(), "item_CCXLfxmM5sXVJVz4mCa2S");
  fail_unless_equals_string(ev.item_role.c_str(), "assistant");
  fail_unless_equals_string(ev.previous_item_id.c_str(), "item_CCXLecNJVIVR2HUy3ABLj");

  ev = parse_ok(kItemCreatedBeta);
  fail_unless(ev.type == EventType::ItemAdded);
  fail_unless_equals_string(ev.type_name.c_str(), "conversation.item.added");
  fail_unless_equals_string(ev.item_id.c_str(), "msg_003");
  fail_unless_equals_string(ev.item_type.c_str(), "message");
  fail_unless_equals_string(ev.item_role.c_str(), "user");
  fail_unless_equals_string(ev.previous_item_id.c_str(), "msg_002");

  ev = parse_ok(kItemTruncated);
  fail_unless(ev.type == EventType::ItemTruncated);
  fail_unless_equals_string(ev.item_id.c_str(), "msg_004");
  fail_unless_equals_int(ev.content_index, 0);
  fail_unless_equals_int64(ev.audio_end_ms, 1500);
  ev = parse_ok(R"({"type":"conversation.item.truncated","item_id":"msg_009","content_index":1,"audio_end_ms":9840})");
  fail_unless_equals_int(ev.content_index, 1);
  fail_unless_equals_int64(ev.audio_end_ms, 9840);

  ev = parse_ok(kItemDeleted);
  fail_unless(ev.type == EventType::ItemDeleted);
  fail_unless_equals_string(ev.item_id.c_str(), "msg_005");
}
GST_END_TEST;

GST_START_TEST(test_parse_transcription_events) {
  ServerEvent ev = parse_ok(kTranscriptionCompleted);
  fail_unless(ev.type == EventType::InputTranscriptionCompleted);
  fail_unless_equals_string(ev.item_id.c_str(), "item_CCXGQ4e1ht4cOraEYcuR2");
  fail_unless_equals_string(ev.text.c_str(), "Hey, can you hear me?");

  ev = parse_ok(kTranscriptionFailed);
  fail_unless(ev.type == EventType::InputTranscriptionFailed);
  fail_unless_equals_string(ev.item_id.c_str(), "msg_003");
  fail_unless_equals_string(ev.error.type.c_str(), "transcription_error");
  fail_unless_equals_string(ev.error.code.c_str(), "audio_unintelligible");
  fail_unless_equals_string(ev.error.message.c_str(), "The audio could not be transcribed.");
}
GST_END_TEST;

GST_START_TEST(test_parse_response_lifecycle) {
  ServerEvent ev = parse_ok(kResponseCreated);
  fail_unless(ev.type == EventType::ResponseCreated);
  fail_unless_equals_string(ev.response_id.c_str(), "resp_C9G8p7IH2WxLbkgPNouYL");
  fail_unless_equals_int64(ev.usage.total_tokens, 0);  // usage null

  ev = parse_ok(kResponseDone);
  fail_unless(ev.type == EventType::ResponseDone);
  fail_unless_equals_string(ev.response_id.c_str(), "resp_CCXHw0UJld10EzIUXQCNh");
  fail_unless_equals_string(ev.status.c_str(), "completed");
  fail_unless_equals_string(ev.status_reason.c_str(), "");
  fail_unless_equals_int64(ev.usage.total_tokens, 253);
  fail_unless_equals_int64(ev.usage.input_tokens, 132);
  fail_unless_equals_int64(ev.usage.output_tokens, 121);
  fail_unless_equals_int64(ev.usage.input_audio_tokens, 13);
  fail_unless_equals_int64(ev.usage.input_text_tokens, 119);
  fail_unless_equals_int64(ev.usage.input_cached_tokens, 64);
  fail_unless_equals_int64(ev.usage.output_audio_tokens, 91);
  fail_unless_equals_int64(ev.usage.output_text_tokens, 30);
  // The item ids of response.done's output array are not the event's item.
  fail_unless_equals_string(ev.item_id.c_str(), "");

  ev = parse_ok(kResponseDoneCancelled);
  fail_unless_equals_string(ev.response_id.c_str(), "resp_003");
  fail_unless_equals_string(ev.status.c_str(), "cancelled");
  fail_unless_equals_string(ev.status_reason.c_str(), "turn_detected");
  fail_unless(ev.error.code.empty());

  ev = parse_ok(kResponseDoneFailed);
  fail_unless_equals_string(ev.status.c_str(), "failed");
  fail_unless_equals_string(ev.error.type.c_str(), "server_error");
  fail_unless_equals_string(ev.error.code.c_str(), "rate_limit_exceeded");
  fail_unless_equals_string(ev.error.message.c_str(), "Rate limit reached.");

  ev = parse_ok(kRateLimits);
  fail_unless(ev.type == EventType::RateLimitsUpdated);
  fail_unless_equals_string(ev.event_id.c_str(), "event_5758");
}
GST_END_TEST;

GST_START_TEST(test_parse_output_items) {
  ServerEvent ev = parse_ok(kOutputItemAdded);
  fail_unless(ev.type == EventType::OutputItemAdded);
  fail_unless_equals_string(ev.response_id.c_str(), "resp_001");
  fail_unless_equals_string(ev.item_id.c_str(), "msg_007");
  fail_unless_equals_string(ev.item_type.c_str(), "message");
  fail_unless_equals_string(ev.item_role.c_str(), "assistant");
  fail_unless(ev.call_id.empty() && ev.name.empty() && ev.arguments.empty());

  ev = parse_ok(kOutputItemDoneFunctionCall);
  fail_unless(ev.type == EventType::OutputItemDone);
  fail_unless_equals_string(ev.response_id.c_str(), "resp_002");
  fail_unless_equals_string(ev.item_id.c_str(), "fc_001");
  fail_unless_equals_string(ev.item_type.c_str(), "function_call");
  fail_unless_equals_string(ev.call_id.c_str(), "call_001");
  fail_unless_equals_string(ev.name.c_str(), "get_weather");
  fail_unless_equals_string(ev.arguments.c_str(), "{\"location\": \"San Francisco\"}");

  ev = parse_ok(kArgsDone);
  fail_unless(ev.type == EventType::FunctionCallArgumentsDone);
  fail_unless_equals_string(ev.response_id.c_str(), "resp_002");
  fail_unless_equals_string(ev.item_id.c_str(), "fc_001");
  fail_unless_equals_string(ev.call_id.c_str(), "call_001");
  fail_unless_equals_string(ev.name.c_str(), "get_weather");
  fail_unless_equals_string(ev.arguments.c_str(), "{\"location\": \"San Francisco\"}");

  ev = parse_ok(kArgsDoneBeta);
  fail_unless(ev.type == EventType::FunctionCallArgumentsDone);
  fail_unless_equals_string(ev.call_id.c_str(), "call_001");
  fail_unless_equals_string(ev.name.c_str(), "");
  fail_unless_equals_string(ev.arguments.c_str(), "{\"location\": \"San Francisco\"}");

  ev = parse_ok(kArgsDelta);
  fail_unless(ev.type == EventType::Unknown);
  fail_unless_equals_string(ev.type_name.c_str(), "response.function_call_arguments.delta");
}
GST_END_TEST;

GST_START_TEST(test_parse_audio_and_transcript) {
  for (const char *frame : {kAudioDeltaDoc, kAudioDeltaBeta}) {
    ServerEvent ev = parse_ok(frame);
    fail_unless(ev.type == EventType::AudioDelta);
    fail_unless_equals_string(ev.type_name.c_str(), "response.output_audio.delta");
    fail_unless_equals_string(ev.response_id.c_str(), "resp_001");
    fail_unless_equals_string(ev.item_id.c_str(), "msg_008");
    fail_unless_equals_int(ev.content_index, 0);
  }
  // The doc's placeholder delta is decoded exactly as GLib would.
  ServerEvent ev = parse_ok(kAudioDeltaDoc);
  gsize want_len = 0;
  guchar *want = g_base64_decode("Base64EncodedAudioDelta", &want_len);
  fail_unless(ev.audio.size() == want_len && memcmp(ev.audio.data(), want, want_len) == 0);
  g_free(want);
  ev = parse_ok(kAudioDeltaBeta);
  const std::vector<uint8_t> beta_bytes = {0, 1, 2, 3, 4, 5};
  fail_unless(ev.audio == beta_bytes);

  // Real PCM of several sizes, including a frame above 1 MiB (§7 G12).
  for (size_t len : std::initializer_list<size_t>{0, 1, 2, 3, 960, 4800, 1536 * 1024}) {
    std::vector<uint8_t> pcm = pattern_bytes(len);
    std::string frame = R"({"type":"response.output_audio.delta","response_id":"resp_9","item_id":"it_9","output_index":0,"content_index":0,"delta":")" +
                        b64(pcm) + "\"}";
    ev = parse_ok(frame);
    fail_unless(ev.audio == pcm, "audio of %zu bytes differs", len);
  }
  // JSON-escaped slashes in the base64 are unescaped before decoding.
  ev = parse_ok(R"({"type":"response.output_audio.delta","delta":"\/\/8="})");
  const std::vector<uint8_t> ff = {0xff, 0xff};
  fail_unless(ev.audio == ff);

  for (const char *frame : {kAudioDone, kAudioDoneBeta}) {
    ev = parse_ok(frame);
    fail_unless(ev.type == EventType::AudioDone);
    fail_unless_equals_string(ev.type_name.c_str(), "response.output_audio.done");
    fail_unless_equals_string(ev.response_id.c_str(), "resp_001");
    fail_unless_equals_string(ev.item_id.c_str(), "msg_008");
    fail_unless(ev.audio.empty());
  }
  for (const char *frame : {kTranscriptDelta, kTranscriptDeltaBeta}) {
    ev = parse_ok(frame);
    fail_unless(ev.type == EventType::AudioTranscriptDelta);
    fail_unless_equals_string(ev.type_name.c_str(), "response.output_audio_transcript.delta");
    fail_unless_equals_string(ev.text.c_str(), "Hello, how can I a");
    fail_unless_equals_string(ev.item_id.c_str(), "msg_008");
  }
  for (const char *frame : {kTranscriptDone, kTranscriptDoneBeta}) {
    ev = parse_ok(frame);
    fail_unless(ev.type == EventType::AudioTranscriptDone);
    fail_unless_equals_string(ev.type_name.c_str(), "response.output_audio_transcript.done");
    fail_unless_equals_string(ev.text.c_str(), "Hello, how can I assist you today?");
  }
  for (const char *frame : {kTextDone, kTextDoneBeta}) {
    ev = parse_ok(frame);
    fail_unless(ev.type == EventType::TextDone);
    fail_unless_equals_string(ev.type_name.c_str(), "response.output_text.done");
    fail_unless_equals_string(ev.text.c_str(), "Sure, I can help with that.");
    fail_unless_equals_string(ev.item_id.c_str(), "msg_007");
  }
  // Text deltas are not acted on, but the beta name is still normalised.
  ev = parse_ok(kTextDeltaBeta);
  fail_unless(ev.type == EventType::Unknown);
  fail_unless_equals_string(ev.type_name.c_str(), "response.output_text.delta");
}
GST_END_TEST;

GST_START_TEST(test_parse_unknown_types) {
  ServerEvent ev = parse_ok(kContentPartAdded);
  fail_unless(ev.type == EventType::Unknown);
  fail_unless_equals_string(ev.type_name.c_str(), "response.content_part.added");
  fail_unless_equals_string(ev.item_id.c_str(), "msg_007");

  ev = parse_ok(kTimeoutTriggered);
  fail_unless(ev.type == EventType::Unknown);
  fail_unless_equals_string(ev.type_name.c_str(), "input_audio_buffer.timeout_triggered");
  fail_unless_equals_int64(ev.audio_start_ms, 13216);
  fail_unless_equals_int64(ev.audio_end_ms, 19232);

  for (const char *name : {"mcp_list_tools.in_progress", "output_audio_buffer.started",
                           "transcription_session.updated", "", "response.output_audio.delta.x",
                           "RESPONSE.DONE"}) {
    std::string frame = std::string("{\"type\":\"") + name + "\",\"event_id\":\"e1\",\"extra\":[1,{\"a\":null}]}";
    ev = parse_ok(frame);
    fail_unless(ev.type == EventType::Unknown, "%s", name);
    fail_unless_equals_string(ev.type_name.c_str(), name);
    fail_unless_equals_string(ev.event_id.c_str(), "e1");
  }
  // Unknown top-level members are ignored on known types too.
  ev = parse_ok(R"({"type":"input_audio_buffer.cleared","future_field":{"x":[1,2,3]},"another":null})");
  fail_unless(ev.type == EventType::InputCleared);
}
GST_END_TEST;

GST_START_TEST(test_normalise_event_name) {
  const char *pairs[][2] = {
      {"response.audio.delta", "response.output_audio.delta"},
      {"response.audio.done", "response.output_audio.done"},
      {"response.audio_transcript.delta", "response.output_audio_transcript.delta"},
      {"response.audio_transcript.done", "response.output_audio_transcript.done"},
      {"response.text.delta", "response.output_text.delta"},
      {"response.text.done", "response.output_text.done"},
      {"conversation.item.created", "conversation.item.added"},
  };
  // (The results are held in locals: the check macros keep the pointer they are given.)
  for (const auto &p : pairs) {
    const std::string mapped = normalise_event_name(p[0]);
    fail_unless_equals_string(mapped.c_str(), p[1]);
    // GA names are fixed points.
    const std::string fixed = normalise_event_name(p[1]);
    fail_unless_equals_string(fixed.c_str(), p[1]);
  }
  for (const char *same : {"session.created", "error", "conversation.item.done", "response.done",
                           "", "response.audio", "response.audio.delta "}) {
    const std::string out = normalise_event_name(same);
    fail_unless_equals_string(out.c_str(), same);
  }
}
GST_END_TEST;

GST_START_TEST(test_parse_malformed_frames) {
  const std::string bad[] = {
      "",
      "   \n",
      "not json",
      "{",
      "{\"type\":\"error\"",
      "[1,2]",
      "[{\"type\":\"error\"}]",
      "\"session.created\"",
      "42",
      "null",
      "true",
      "{}",
      "{\"event_id\":\"e\"}",
      "{\"type\":5}",
      "{\"type\":null}",
      "{\"type\":true}",
      "{\"type\":{}}",
      "{\"type\":[\"error\"]}",
      "{\"Type\":\"error\"}",
      "{\"type\":\"\xff\xfe\"}",                         // invalid UTF-8
      std::string("{\"type\":\"er\0ror\"}", 17),         // embedded NUL
      std::string(200000, '['),                          // deep nesting, unterminated
      "{\"type\":\"error\",\"x\":" + std::string(100000, '[') + std::string(100000, ']') + "}",
      // json-glib extensions and escape quirks that could hide brackets from the depth guard
      // (each of these crashed json-glib with a deep tail before the guard knew about them).
      "{\"type\":\"error\",\"a\":'\"',\"b\":" + std::string(300000, '[') + std::string(300000, ']') + "}",
      "{\"type\":\"error\",\"a\":/* \" */" + std::string(300000, '[') + std::string(300000, ']') + "}",
      "{\"type\":\"error\",\"a\":\"\\u00\"\",\"b\":" + std::string(300000, '[') + std::string(300000, ']') + "}",
      "{\"type\":\"error\",\"a\":\"\\ud83d\"\",\"b\":" + std::string(300000, '[') + std::string(300000, ']') + "}",
      // The same constructs in an otherwise harmless frame: not strict JSON, refused.
      "{\"type\":'error'}",
      "{\"type\":\"error\" /* c */}",
      "{\"type\":\"error\",\"m\":\"\\x\"}",
      "{\"type\":\"error\",\"m\":\"\\u12\"}",
      "{\"type\":\"error\",\"m\":\"\\ud800\"}",
      "{\"type\":\"error\",\"m\":\"\\udc00\"}",
      "{\"type\":\"error\",\"m\":\"\\ud800\\u0041\"}",
      "{\"type\":\"error\",\"m\":\"\\",
  };
  for (const std::string &frame : bad)
    expect_parse_fails(frame);

  // Nesting that real events could plausibly reach still parses.
  ServerEvent ev = parse_ok("{\"type\":\"error\",\"x\":" + std::string(100, '[') +
                            std::string(100, ']') + "}");
  fail_unless(ev.type == EventType::Error);
  // Brackets inside strings do not count as nesting.
  ev = parse_ok("{\"type\":\"error\",\"error\":{\"message\":\"" + std::string(1000, '[') + "\\\"" +
                std::string(1000, '{') + "\"}}");
  fail_unless_equals_int(ev.error.message.size(), 2001);

  // Null buffers and a null error pointer are tolerated.
  std::string error;
  fail_if(parse_server_event(nullptr, 0, &ev, &error));
  fail_if(error.empty());
  fail_if(parse_server_event(nullptr, 10, &ev, &error));
  fail_if(parse_server_event("[]", 2, &ev, nullptr));
  fail_if(parse_server_event("{\"type\":\"error\"}", 16, nullptr, &error));
  fail_unless(parse_server_event("{\"type\":\"error\"}", 16, &ev, nullptr));
  // The length is honoured: trailing bytes beyond len are not read.
  fail_unless(parse_server_event("{\"type\":\"error\"}garbage", 16, &ev, &error));
}
GST_END_TEST;

GST_START_TEST(test_parse_wrong_types) {
  ServerEvent ev;
  // Strings that are numbers, numbers that are strings, objects that are arrays…
  ev = parse_ok(R"({"type":"response.output_audio.delta","response_id":7,"item_id":["x"],"content_index":"0","delta":12345})");
  fail_unless(ev.type == EventType::AudioDelta);
  fail_unless(ev.response_id.empty() && ev.item_id.empty());
  fail_unless_equals_int(ev.content_index, 0);
  fail_unless(ev.audio.empty());

  ev = parse_ok(R"({"type":"conversation.item.truncated","item_id":"m","audio_end_ms":"1500","content_index":1e30})");
  fail_unless_equals_int64(ev.audio_end_ms, -1);
  fail_unless_equals_int(ev.content_index, 0);
  // A double that holds an integer is accepted; out-of-range and overflowing values are not.
  ev = parse_ok(R"({"type":"conversation.item.truncated","audio_end_ms":1500.0,"content_index":3000000000})");
  fail_unless_equals_int64(ev.audio_end_ms, 1500);
  fail_unless_equals_int(ev.content_index, 0);
  ev = parse_ok(R"({"type":"conversation.item.truncated","audio_end_ms":1e999})");
  fail_unless_equals_int64(ev.audio_end_ms, -1);
  ev = parse_ok(R"({"type":"conversation.item.truncated","audio_end_ms":-1e300})");
  fail_unless_equals_int64(ev.audio_end_ms, -1);
  ev = parse_ok(R"({"type":"conversation.item.truncated","audio_end_ms":9223372036854775807})");
  fail_unless_equals_int64(ev.audio_end_ms, G_MAXINT64);

  ev = parse_ok(R"({"type":"session.created","session":"nope"})");
  fail_unless(ev.turn_detection_enabled && ev.interrupt_response);
  fail_unless_equals_int64(ev.expires_at, 0);
  ev = parse_ok(R"({"type":"session.created","session":{"expires_at":"soon","audio":{"input":{"turn_detection":"server_vad"}}}})");
  fail_unless(ev.turn_detection_enabled && ev.interrupt_response);
  fail_unless_equals_int64(ev.expires_at, 0);
  ev = parse_ok(R"({"type":"session.created","session":{"audio":{"input":{"turn_detection":{"interrupt_response":"no"}}}}})");
  fail_unless(ev.turn_detection_enabled && ev.interrupt_response);
  ev = parse_ok(R"({"type":"session.created","session":{"audio":[],"turn_detection":{"interrupt_response":false}}})");
  fail_if(ev.interrupt_response);

  ev = parse_ok(R"({"type":"response.done","response":{"id":null,"status":1,"status_details":{"reason":null,"error":"x"},
    "usage":{"total_tokens":"5","input_token_details":null,"output_token_details":[1]}}})");
  fail_unless(ev.response_id.empty() && ev.status.empty() && ev.status_reason.empty());
  fail_unless_equals_int64(ev.usage.total_tokens, 0);
  fail_unless_equals_int64(ev.usage.output_audio_tokens, 0);
  ev = parse_ok(R"({"type":"response.done","response":[]})");
  fail_unless(ev.type == EventType::ResponseDone);

  ev = parse_ok(R"({"type":"response.output_item.done","item":{"id":1,"type":"function_call","call_id":null,"name":{},"arguments":[]}})");
  fail_unless_equals_string(ev.item_type.c_str(), "function_call");
  fail_unless(ev.item_id.empty() && ev.call_id.empty() && ev.name.empty() && ev.arguments.empty());
  ev = parse_ok(R"({"type":"conversation.item.added","item":"msg_1"})");
  fail_unless(ev.item_id.empty());

  // Every valid JSON escape is decoded, surrogate pairs included.
  ev = parse_ok(R"({"type":"error","error":{"message":"q\" b\\ s\/ \b\f\n\r\t \u00e9 \ud83d\ude00 \u0041"}})");
  fail_unless_equals_string(ev.error.message.c_str(), "q\" b\\ s/ \b\f\n\r\t \u00e9 \U0001F600 A");

  // Duplicate keys: json-glib keeps the last one; a non-string last "type" is rejected.
  expect_parse_fails(R"({"type":"error","type":5})");
}
GST_END_TEST;

// Every member of every fixture replaced by each JSON type, and removed: the parser must never
// crash or emit a critical (fatal under gst-check), and only a broken "type" may fail the parse.
GST_START_TEST(test_parse_mutated_fixtures) {
  const char *mutant_texts[] = {"null", "0", "-1", "42", "-1.5", "1e300", "9223372036854775807",
                                "-9223372036854775808", "18446744073709551616", "\"\"", "\"x\"",
                                "\"!!!\"", "true", "false", "[]", "{}", "[null]",
                                "{\"type\":null,\"id\":null}"};
  std::vector<JsonNode *> mutants;
  for (const char *m : mutant_texts)
    mutants.push_back(parse_or_null(m));
  mutants.push_back(nullptr);  // removal
  size_t parsed = 0;
  for (const char *fixture : kAllFixtures) {
    Doc d(fixture);
    std::vector<Path> paths;
    Path prefix;
    collect_paths(d.root(), prefix, &paths);
    for (const Path &path : paths) {
      const bool is_type = path.size() == 1 && path[0].key == "type";
      for (JsonNode *m : mutants) {
        JsonNode *tree = rebuild(d.root(), path, 0, m);
        const std::string text = to_text(tree);
        json_node_unref(tree);
        ServerEvent ev;
        std::string error;
        const bool ok = parse_server_event(text.data(), text.size(), &ev, &error);
        const bool want_ok = !is_type || (m != nullptr && JSON_NODE_HOLDS_VALUE(m) &&
                                          json_node_get_value_type(m) == G_TYPE_STRING);
        fail_unless(ok == want_ok, "%s -> %d (%s)", text.c_str(), ok, error.c_str());
        parsed++;
      }
    }
  }
  for (JsonNode *m : mutants)
    if (m)
      json_node_unref(m);
  GST_INFO("parsed %zu mutated events", parsed);
  fail_unless(parsed > 5000);
}
GST_END_TEST;

// Every prefix of every fixture, and random byte corruption: no crash, no critical.
GST_START_TEST(test_parse_truncated_and_corrupted) {
  for (const char *fixture : kAllFixtures) {
    const std::string full = fixture;
    for (size_t len = 0; len <= full.size(); len++) {
      ServerEvent ev;
      std::string error;
      const bool ok = parse_server_event(full.data(), len, &ev, &error);
      if (len == full.size())
        fail_unless(ok, "%s: %s", error.c_str(), fixture);
      else
        fail_unless(ok || !error.empty());
    }
  }
  GRand *rand = g_rand_new_with_seed(20260901);
  const size_t n_fixtures = G_N_ELEMENTS(kAllFixtures);
  ServerEvent ev;  // reused, as the hub does
  for (int iter = 0; iter < 20000; iter++) {
    std::string frame = kAllFixtures[g_rand_int_range(rand, 0, (gint32)n_fixtures)];
    const int flips = g_rand_int_range(rand, 1, 6);
    for (int f = 0; f < flips; f++) {
      const size_t pos = (size_t)g_rand_int_range(rand, 0, (gint32)frame.size());
      static const char kInteresting[] = "{}[]\",:\\0123456789-.eEtfn \x80\xff";
      frame[pos] = g_rand_boolean(rand)
                       ? kInteresting[g_rand_int_range(rand, 0, (gint32)sizeof(kInteresting) - 1)]
                       : (char)g_rand_int_range(rand, 0, 256);
    }
    std::string error;
    if (!parse_server_event(frame.data(), frame.size(), &ev, &error))
      fail_if(error.empty());
  }
  g_rand_free(rand);
}
GST_END_TEST;

GST_START_TEST(test_parse_resets_reused_event) {
  ServerEvent ev;
  std::string error;
  std::vector<uint8_t> pcm = pattern_bytes(4800);
  std::string delta = R"({"type":"response.output_audio.delta","response_id":"r1","item_id":"i1","content_index":2,"delta":")" +
                      b64(pcm) + "\"}";
  fail_unless(parse_server_event(delta.data(), delta.size(), &ev, &error));
  fail_unless(ev.audio == pcm);
  fail_unless_equals_int(ev.content_index, 2);
  // A later event leaves nothing behind from the earlier one.
  const std::string frame = kSpeechStarted;
  fail_unless(parse_server_event(frame.data(), frame.size(), &ev, &error));
  fail_unless(ev.type == EventType::SpeechStarted);
  fail_unless(ev.audio.empty());
  fail_unless(ev.response_id.empty());
  fail_unless_equals_int(ev.content_index, 0);
  fail_unless_equals_int64(ev.audio_end_ms, -1);
  // A failed parse also leaves a clean event.
  fail_unless(parse_server_event(delta.data(), delta.size(), &ev, &error));
  fail_if(parse_server_event("[]", 2, &ev, &error));
  fail_unless(ev.type == EventType::Unknown && ev.audio.empty() && ev.type_name.empty());
}
GST_END_TEST;

// =============================================================================================
// Error classification and helpers
// =============================================================================================

GST_START_TEST(test_error_classification) {
  for (const char *code : {"invalid_api_key", "insufficient_quota", "account_deactivated",
                           "billing_hard_limit_reached", "beta_api_shape_disabled",
                           "model_not_found", "invalid_model"})
    fail_unless(is_fatal_error_code(code), "%s should be fatal", code);
  for (const char *code : {"", "session_expired", "rate_limit_exceeded", "server_error",
                           "invalid_event", "unknown_parameter", "cannot_update_voice",
                           "response_cancel_not_active", "INVALID_API_KEY", "invalid_api_key "})
    fail_if(is_fatal_error_code(code), "%s should not be fatal", code);

  ErrorInfo e;
  for (const char *code : {"response_cancel_not_active", "input_audio_buffer_commit_empty",
                           "conversation_already_has_active_response"}) {
    e = ErrorInfo{};
    e.code = code;
    fail_unless(is_benign_error(e), "%s should be benign", code);
    fail_if(is_fatal_error_code(code));
  }
  // G7(a): matched on the message whatever the code.
  e = ErrorInfo{};
  e.message = "Audio content of 9800ms is already shorter than 11579ms";
  fail_unless(is_benign_error(e));
  e.code = "invalid_value";
  fail_unless(is_benign_error(e));
  for (const char *code : {"", "invalid_event", "unknown_parameter", "cannot_update_voice",
                           "session_expired", "invalid_api_key"}) {
    e = ErrorInfo{};
    e.code = code;
    e.message = "Something else.";
    fail_if(is_benign_error(e), "%s should not be benign", code);
  }
}
GST_END_TEST;

GST_START_TEST(test_audio_maths) {
  fail_unless_equals_int(kBytesPerMs, 48);
  fail_unless_equals_int64(bytes_to_ms(0), 0);
  fail_unless_equals_int64(bytes_to_ms(47), 0);
  fail_unless_equals_int64(bytes_to_ms(960), 20);
  fail_unless_equals_int64(bytes_to_ms(4800), 100);
}
GST_END_TEST;

static Suite *realtime_protocol_suite(void) {
  Suite *s = suite_create("realtime-protocol");

  TCase *builders = tcase_create("builders");
  suite_add_tcase(s, builders);
  tcase_add_test(builders, test_session_update_ga_server_vad);
  tcase_add_test(builders, test_session_update_ga_semantic_vad);
  tcase_add_test(builders, test_session_update_ga_no_vad);
  tcase_add_test(builders, test_session_update_beta_server_vad);
  tcase_add_test(builders, test_session_update_beta_semantic_vad);
  tcase_add_test(builders, test_session_update_beta_no_vad);
  tcase_add_test(builders, test_session_update_ga_minimal);
  tcase_add_test(builders, test_session_update_beta_minimal);
  tcase_add_test(builders, test_session_update_defaults);
  tcase_add_test(builders, test_session_update_transcription_and_noise);
  tcase_add_test(builders, test_session_update_tool_choice);
  tcase_add_test(builders, test_session_update_tools);
  tcase_add_test(builders, test_session_update_string_escaping);
  tcase_add_test(builders, test_session_update_non_finite_threshold);
  tcase_add_test(builders, test_input_audio_append_round_trip);
  tcase_add_test(builders, test_input_audio_commit_clear);
  tcase_add_test(builders, test_response_create);
  tcase_add_test(builders, test_response_cancel);
  tcase_add_test(builders, test_item_truncate_delete);
  tcase_add_test(builders, test_text_item);
  tcase_add_test(builders, test_function_call_output);

  TCase *parser = tcase_create("parser");
  suite_add_tcase(s, parser);
  tcase_add_test(parser, test_parse_session_events);
  tcase_add_test(parser, test_parse_error_events);
  tcase_add_test(parser, test_parse_input_buffer_events);
  tcase_add_test(parser, test_parse_item_events);
  tcase_add_test(parser, test_parse_transcription_events);
  tcase_add_test(parser, test_parse_response_lifecycle);
  tcase_add_test(parser, test_parse_output_items);
  tcase_add_test(parser, test_parse_audio_and_transcript);
  tcase_add_test(parser, test_parse_unknown_types);
  tcase_add_test(parser, test_normalise_event_name);
  tcase_add_test(parser, test_parse_malformed_frames);
  tcase_add_test(parser, test_parse_wrong_types);
  tcase_add_test(parser, test_parse_mutated_fixtures);
  tcase_add_test(parser, test_parse_truncated_and_corrupted);
  tcase_add_test(parser, test_parse_resets_reused_event);

  TCase *misc = tcase_create("classification");
  suite_add_tcase(s, misc);
  tcase_add_test(misc, test_error_classification);
  tcase_add_test(misc, test_audio_maths);

  return s;
}

GST_CHECK_MAIN(realtime_protocol);
