// Builders and parsers for the OpenAI Realtime WebSocket protocol. Wire shapes follow
// /work/shared/docs/openai-realtime.md (§2 GA vs beta, §3 client events, §4 server events).
//
// Everything that reads server input is written for hostile data (it is fuzzed): every member may
// be missing, null or of the wrong JSON type, and no json-glib call is made in a way that can hit a
// g_return_if_fail() (criticals are fatal under gst-check and abort fuzzers).
#include "realtime-protocol.h"

#include <json-glib/json-glib.h>

#include <cmath>
#include <cstring>
#include <limits>

namespace realtime {

namespace {

// ---------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------

// json-glib's parser and json_node_unref() recurse once per nesting level; ~100k levels overflow
// an 8 MiB stack (and far fewer under ASan). Real events nest < 15 levels (tool schemas in
// session.updated a little more), so 128 leaves ample room while keeping the stack bounded.
constexpr int kMaxJsonNesting = 128;

int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

// The code unit of the \uXXXX escape whose 'u' is at data[i], or -1 when it is malformed.
int unicode_escape(const char *data, size_t len, size_t i) {
  if (len - i < 5)
    return -1;
  int value = 0;
  for (size_t k = 1; k <= 4; k++) {
    const int h = hex_value(data[i + k]);
    if (h < 0)
      return -1;
    value = value * 16 + h;
  }
  return value;
}

// Pre-parse scan that bounds the nesting depth json-glib will recurse to. Counting brackets is
// only sound if this scan agrees with json-glib's tokenizer on where every string starts and ends,
// and that tokenizer is looser than JSON: it accepts '…' strings and /* */ comments, and a
// malformed \u escape or lone surrogate makes it swallow the following character, quotes
// included. So anything beyond strict JSON string syntax is rejected here (no server sends it),
// which leaves a grammar on which both agree. Other syntax errors are left for json-glib.
bool prescan_json(const char *data, size_t len, int limit, std::string *error) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < len; i++) {
    const char c = data[i];
    if (in_string) {
      if (c == '"') {
        in_string = false;
      } else if (c == '\\') {
        if (++i == len)
          break;  // unterminated: json-glib reports it
        const char e = data[i];
        if (e == 'u') {
          const int unit = unicode_escape(data, len, i);
          bool ok = unit >= 0 && !(unit >= 0xdc00 && unit <= 0xdfff);
          if (ok && unit >= 0xd800 && unit <= 0xdbff) {
            // A high surrogate must be followed by an escaped low one.
            const size_t next = i + 5;  // the backslash of the second escape
            int low = -1;
            if (next + 1 < len && data[next] == '\\' && data[next + 1] == 'u')
              low = unicode_escape(data, len, next + 1);
            ok = low >= 0xdc00 && low <= 0xdfff;
            i += 6;
          }
          if (!ok) {
            *error = "malformed \\u escape or lone surrogate";
            return false;
          }
          i += 4;
        } else if (!strchr("\"\\/bfnrt", e) || e == '\0') {
          *error = "invalid escape in string";
          return false;
        }
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) {
        *error = "JSON nested deeper than " + std::to_string(limit) + " levels";
        return false;
      }
    } else if (c == ']' || c == '}') {
      if (depth > 0)  // a stray closer must not buy extra depth later
        depth--;
    } else if (c == '\'' || c == '/') {
      *error = "not strict JSON (single-quoted string or comment)";
      return false;
    }
  }
  return true;
}

// Parses `data` and returns the root, or nullptr with *error set. The returned node is owned by
// the caller.
JsonNode *parse_json(const char *data, size_t len, std::string *error) {
  if (data == nullptr && len > 0) {
    *error = "null data";
    return nullptr;
  }
  if (len > (size_t)G_MAXSSIZE) {
    *error = "frame too large";
    return nullptr;
  }
  if (len > 0 && !prescan_json(data, len, kMaxJsonNesting, error))
    return nullptr;
  g_autoptr(JsonParser) parser = json_parser_new();
  g_autoptr(GError) gerror = nullptr;
  // An empty buffer needs a valid pointer; json-glib reads nothing from it.
  if (!json_parser_load_from_data(parser, data ? data : "", (gssize)len, &gerror)) {
    *error = gerror ? gerror->message : "invalid JSON";
    return nullptr;
  }
  // Empty or whitespace-only input parses successfully with no root.
  JsonNode *root = json_parser_steal_root(parser);
  if (root == nullptr)
    *error = "empty frame";
  return root;
}

// Strings go to GLib/GStreamer APIs (properties, GstStructure, logs) that require UTF-8, but
// json-glib lets a lone \udc00 escape through as invalid UTF-8. Repair it instead of passing it on.
// On the build side, invalid UTF-8 would make the WebSocket text frame itself invalid.
std::string to_valid_utf8(const char *s, size_t len) {
  if (g_utf8_validate(s, (gssize)len, nullptr))
    return std::string(s, len);
  g_autofree gchar *fixed = g_utf8_make_valid(s, (gssize)len);
  return std::string(fixed);
}

// ---------------------------------------------------------------------------------------------
// Builder helpers
// ---------------------------------------------------------------------------------------------

void add_string(JsonBuilder *b, const char *member, const std::string &value) {
  json_builder_set_member_name(b, member);
  if (g_utf8_validate(value.data(), (gssize)value.size(), nullptr)) {
    json_builder_add_string_value(b, value.c_str());
  } else {
    g_autofree gchar *fixed = g_utf8_make_valid(value.data(), (gssize)value.size());
    json_builder_add_string_value(b, fixed);
  }
}

void add_int(JsonBuilder *b, const char *member, int64_t value) {
  json_builder_set_member_name(b, member);
  json_builder_add_int_value(b, value);
}

void add_bool(JsonBuilder *b, const char *member, bool value) {
  json_builder_set_member_name(b, member);
  json_builder_add_boolean_value(b, value);
}

void add_null(JsonBuilder *b, const char *member) {
  json_builder_set_member_name(b, member);
  json_builder_add_null_value(b);
}

void begin_object(JsonBuilder *b, const char *member) {
  json_builder_set_member_name(b, member);
  json_builder_begin_object(b);
}

// The generator writes non-finite doubles as "nan"/"inf", which is not JSON; the whole
// session.update would be rejected (§8 G2), so fall back to the server default instead.
void add_double(JsonBuilder *b, const char *member, double value, double fallback) {
  json_builder_set_member_name(b, member);
  json_builder_add_double_value(b, std::isfinite(value) ? value : fallback);
}

std::string generate(JsonBuilder *b) {
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  g_autoptr(JsonGenerator) gen = json_generator_new();
  json_generator_set_root(gen, root);
  gsize len = 0;
  g_autofree gchar *text = json_generator_to_data(gen, &len);
  return std::string(text, len);
}

// {"type": <type>} — the envelope every client event starts with. The caller closes it.
JsonBuilder *begin_event(const char *type) {
  JsonBuilder *b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "type");
  json_builder_add_string_value(b, type);
  return b;
}

std::string end_event(JsonBuilder *b) {
  json_builder_end_object(b);
  std::string out = generate(b);
  g_object_unref(b);
  return out;
}

void add_audio_pcm_format(JsonBuilder *b) {
  begin_object(b, "format");
  add_string(b, "type", "audio/pcm");
  add_int(b, "rate", kSampleRate);
  json_builder_end_object(b);
}

// The turn_detection value is identical in both shapes; only its location differs. Every field is
// sent because a partial object once produced over-sensitive defaults (§5.1).
void add_turn_detection(JsonBuilder *b, const TurnDetection &td) {
  json_builder_set_member_name(b, "turn_detection");
  switch (td.type) {
    case TurnDetectionType::None:
      json_builder_add_null_value(b);
      return;
    case TurnDetectionType::SemanticVad:
      json_builder_begin_object(b);
      add_string(b, "type", "semantic_vad");
      add_string(b, "eagerness", td.eagerness.empty() ? std::string("auto") : td.eagerness);
      break;
    case TurnDetectionType::ServerVad:
    default:
      json_builder_begin_object(b);
      add_string(b, "type", "server_vad");
      add_double(b, "threshold", td.threshold, TurnDetection{}.threshold);
      add_int(b, "prefix_padding_ms", td.prefix_padding_ms);
      add_int(b, "silence_duration_ms", td.silence_duration_ms);
      break;
  }
  add_bool(b, "create_response", td.create_response);
  add_bool(b, "interrupt_response", td.interrupt_response);
  json_builder_end_object(b);
}

void add_transcription(JsonBuilder *b, const char *member, const SessionConfig &c) {
  if (c.transcription_model.empty()) {
    add_null(b, member);
    return;
  }
  begin_object(b, member);
  add_string(b, "model", c.transcription_model);
  // Beta's input_audio_transcription accepts language too (PYBETA), so both shapes send it.
  if (!c.transcription_language.empty())
    add_string(b, "language", c.transcription_language);
  json_builder_end_object(b);
}

void add_noise_reduction(JsonBuilder *b, const char *member, const std::string &nr) {
  if (nr.empty()) {
    add_null(b, member);
    return;
  }
  begin_object(b, member);
  add_string(b, "type", nr);
  json_builder_end_object(b);
}

// Embeds tools_json when it is a JSON array. Anything else is dropped silently: the elements
// validate the property when it is set, so reaching here with bad JSON is a caller bug, and
// sending it would get the whole session.update rejected (§8 G2).
void add_tools(JsonBuilder *b, const std::string &tools_json) {
  if (tools_json.empty())
    return;
  std::string error;
  JsonNode *tools = parse_json(tools_json.data(), tools_json.size(), &error);
  if (tools == nullptr)
    return;
  if (!JSON_NODE_HOLDS_ARRAY(tools)) {
    json_node_unref(tools);
    return;
  }
  json_builder_set_member_name(b, "tools");
  json_builder_add_value(b, tools);  // takes ownership
}

void add_tool_choice(JsonBuilder *b, const std::string &choice) {
  if (choice.empty())
    return;
  if (choice == "auto" || choice == "none" || choice == "required") {
    add_string(b, "tool_choice", choice);
    return;
  }
  // Anything else names a function to force (PYGA realtime_tool_choice_config.py).
  begin_object(b, "tool_choice");
  add_string(b, "type", "function");
  add_string(b, "name", choice);
  json_builder_end_object(b);
}

void add_session_ga(JsonBuilder *b, const SessionConfig &c) {
  // session.type is required on every GA update (§2.2, §8 G2).
  add_string(b, "type", "realtime");
  json_builder_set_member_name(b, "output_modalities");
  json_builder_begin_array(b);
  json_builder_add_string_value(b, "audio");  // audio implies a transcript; text-only is not wanted
  json_builder_end_array(b);
  if (!c.instructions.empty())
    add_string(b, "instructions", c.instructions);

  begin_object(b, "audio");
  begin_object(b, "input");
  add_audio_pcm_format(b);
  add_noise_reduction(b, "noise_reduction", c.noise_reduction);
  add_transcription(b, "transcription", c);
  add_turn_detection(b, c.turn_detection);
  json_builder_end_object(b);  // input
  begin_object(b, "output");
  add_audio_pcm_format(b);
  if (!c.voice.empty())
    add_string(b, "voice", c.voice);
  json_builder_end_object(b);  // output
  json_builder_end_object(b);  // audio

  add_tools(b, c.tools_json);
  add_tool_choice(b, c.tool_choice);
}

void add_session_beta(JsonBuilder *b, const SessionConfig &c) {
  // No session.type: beta servers reject it as an unknown parameter (§2.6).
  json_builder_set_member_name(b, "modalities");
  json_builder_begin_array(b);
  json_builder_add_string_value(b, "text");
  json_builder_add_string_value(b, "audio");
  json_builder_end_array(b);
  if (!c.instructions.empty())
    add_string(b, "instructions", c.instructions);
  if (!c.voice.empty())
    add_string(b, "voice", c.voice);
  add_string(b, "input_audio_format", "pcm16");
  add_string(b, "output_audio_format", "pcm16");
  add_transcription(b, "input_audio_transcription", c);
  add_turn_detection(b, c.turn_detection);
  add_noise_reduction(b, "input_audio_noise_reduction", c.noise_reduction);
  add_tools(b, c.tools_json);
  add_tool_choice(b, c.tool_choice);
}

// ---------------------------------------------------------------------------------------------
// Parser helpers: each returns the member only when it has the expected JSON type.
// ---------------------------------------------------------------------------------------------

JsonNode *member_value(JsonObject *o, const char *name, GType type) {
  if (o == nullptr)
    return nullptr;
  JsonNode *n = json_object_get_member(o, name);
  if (n == nullptr || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != type)
    return nullptr;
  return n;
}

JsonObject *get_object(JsonObject *o, const char *name) {
  if (o == nullptr)
    return nullptr;
  JsonNode *n = json_object_get_member(o, name);
  return (n != nullptr && JSON_NODE_HOLDS_OBJECT(n)) ? json_node_get_object(n) : nullptr;
}

// Leaves *out untouched when the member is absent, null or not a string.
void get_string(JsonObject *o, const char *name, std::string *out) {
  JsonNode *n = member_value(o, name, G_TYPE_STRING);
  if (n == nullptr)
    return;
  const char *s = json_node_get_string(n);
  if (s != nullptr)
    *out = to_valid_utf8(s, strlen(s));
}

// Integral values written with a fraction or exponent (1500.0, 1.5e3) parse as doubles, and
// json_node_get_int() casts those unchecked, which is undefined behaviour out of range (1e300,
// inf), so convert here with a range check.
int64_t get_int(JsonObject *o, const char *name, int64_t fallback) {
  if (JsonNode *n = member_value(o, name, G_TYPE_INT64))
    return json_node_get_int(n);
  if (JsonNode *n = member_value(o, name, G_TYPE_DOUBLE)) {
    const double d = json_node_get_double(n);
    // 2^63 is exactly representable; anything >= it (or NaN) would overflow the cast.
    if (std::isfinite(d) && d >= -9223372036854775808.0 && d < 9223372036854775808.0)
      return (int64_t)d;
  }
  return fallback;
}

int get_int32(JsonObject *o, const char *name, int fallback) {
  const int64_t v = get_int(o, name, fallback);
  if (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max())
    return fallback;
  return (int)v;
}

bool get_bool(JsonObject *o, const char *name, bool fallback) {
  JsonNode *n = member_value(o, name, G_TYPE_BOOLEAN);
  return n ? json_node_get_boolean(n) != FALSE : fallback;
}

// error.code is a string in every documented event; a number (an HTTP-style status from some
// compatible server) is kept as text rather than dropped, since it is what gets logged.
void get_code(JsonObject *o, const char *name, std::string *out) {
  get_string(o, name, out);
  if (member_value(o, name, G_TYPE_INT64) != nullptr)
    *out = std::to_string(get_int(o, name, 0));
}

void parse_error_object(JsonObject *e, ErrorInfo *out) {
  if (e == nullptr)
    return;
  get_string(e, "type", &out->type);
  get_code(e, "code", &out->code);
  get_string(e, "message", &out->message);
  get_string(e, "param", &out->param);
  get_string(e, "event_id", &out->event_id);
}

// Base64 straight into the event's vector: sized for the worst case once, decoded in place and
// trimmed. The vector keeps its capacity across events when the caller reuses the ServerEvent.
void decode_audio(JsonObject *o, const char *name, std::vector<uint8_t> *out) {
  JsonNode *n = member_value(o, name, G_TYPE_STRING);
  const char *b64 = n ? json_node_get_string(n) : nullptr;
  if (b64 == nullptr)
    return;
  const size_t len = strlen(b64);
  if (len == 0)
    return;
  out->resize(len / 4 * 3 + 3);  // g_base64_decode_step's documented worst case
  gint state = 0;
  guint save = 0;
  const gsize written = g_base64_decode_step(b64, len, out->data(), &state, &save);
  out->resize(written);
}

void parse_item(JsonObject *item, ServerEvent *ev, bool with_function_call) {
  if (item == nullptr)
    return;
  get_string(item, "id", &ev->item_id);
  get_string(item, "type", &ev->item_type);
  get_string(item, "role", &ev->item_role);
  if (with_function_call && ev->item_type == "function_call") {
    get_string(item, "call_id", &ev->call_id);
    get_string(item, "name", &ev->name);
    get_string(item, "arguments", &ev->arguments);
  }
}

void parse_usage(JsonObject *u, Usage *out) {
  if (u == nullptr)
    return;
  out->total_tokens = get_int(u, "total_tokens", 0);
  out->input_tokens = get_int(u, "input_tokens", 0);
  out->output_tokens = get_int(u, "output_tokens", 0);
  JsonObject *in = get_object(u, "input_token_details");
  out->input_audio_tokens = get_int(in, "audio_tokens", 0);
  out->input_text_tokens = get_int(in, "text_tokens", 0);
  out->input_cached_tokens = get_int(in, "cached_tokens", 0);
  JsonObject *outd = get_object(u, "output_token_details");
  out->output_audio_tokens = get_int(outd, "audio_tokens", 0);
  out->output_text_tokens = get_int(outd, "text_tokens", 0);
}

// response.created / response.done: {"response": {"id", "status", "status_details", "usage"}}.
void parse_response(JsonObject *r, ServerEvent *ev) {
  if (r == nullptr)
    return;
  get_string(r, "id", &ev->response_id);
  get_string(r, "status", &ev->status);
  JsonObject *details = get_object(r, "status_details");
  get_string(details, "reason", &ev->status_reason);
  // A failed response (rate limit, server error) reports why here rather than in an error event.
  JsonObject *err = get_object(details, "error");
  if (err != nullptr) {
    get_string(err, "type", &ev->error.type);
    get_code(err, "code", &ev->error.code);
    get_string(err, "message", &ev->error.message);
  }
  parse_usage(get_object(r, "usage"), &ev->usage);
}

// session.created / session.updated. GA nests turn detection under audio.input; beta keeps it at
// the top of the session. Look in the GA place first, since a GA session never has the beta key.
void parse_session(JsonObject *s, ServerEvent *ev) {
  if (s == nullptr)
    return;
  ev->expires_at = get_int(s, "expires_at", 0);
  JsonNode *td = nullptr;
  JsonObject *input = get_object(get_object(s, "audio"), "input");
  if (input != nullptr)
    td = json_object_get_member(input, "turn_detection");
  if (td == nullptr)
    td = json_object_get_member(s, "turn_detection");
  if (td == nullptr)
    return;  // not reported: keep the defaults rather than guess
  if (JSON_NODE_HOLDS_NULL(td)) {
    ev->turn_detection_enabled = false;
  } else if (JSON_NODE_HOLDS_OBJECT(td)) {
    ev->turn_detection_enabled = true;
    // The server default is true (§5.1), so a missing field means true.
    ev->interrupt_response = get_bool(json_node_get_object(td), "interrupt_response", true);
  }
}

struct EventName {
  const char *name;
  EventType type;
};

// Ordered by frequency: audio and transcript deltas dominate the traffic.
constexpr EventName kEventNames[] = {
    {"response.output_audio.delta", EventType::AudioDelta},
    {"response.output_audio_transcript.delta", EventType::AudioTranscriptDelta},
    {"response.output_audio.done", EventType::AudioDone},
    {"response.output_audio_transcript.done", EventType::AudioTranscriptDone},
    {"response.output_text.done", EventType::TextDone},
    {"response.output_item.added", EventType::OutputItemAdded},
    {"response.output_item.done", EventType::OutputItemDone},
    {"response.created", EventType::ResponseCreated},
    {"response.done", EventType::ResponseDone},
    {"response.function_call_arguments.done", EventType::FunctionCallArgumentsDone},
    {"conversation.item.added", EventType::ItemAdded},
    {"conversation.item.done", EventType::ItemDone},
    {"conversation.item.truncated", EventType::ItemTruncated},
    {"conversation.item.deleted", EventType::ItemDeleted},
    {"conversation.item.input_audio_transcription.completed",
     EventType::InputTranscriptionCompleted},
    {"conversation.item.input_audio_transcription.failed", EventType::InputTranscriptionFailed},
    {"input_audio_buffer.speech_started", EventType::SpeechStarted},
    {"input_audio_buffer.speech_stopped", EventType::SpeechStopped},
    {"input_audio_buffer.committed", EventType::InputCommitted},
    {"input_audio_buffer.cleared", EventType::InputCleared},
    {"session.created", EventType::SessionCreated},
    {"session.updated", EventType::SessionUpdated},
    {"error", EventType::Error},
    {"rate_limits.updated", EventType::RateLimitsUpdated},
};

EventType lookup_event_type(const std::string &name) {
  for (const EventName &e : kEventNames) {
    if (name == e.name)
      return e.type;
  }
  return EventType::Unknown;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Client events
// ---------------------------------------------------------------------------------------------

std::string build_session_update(ApiShape shape, const SessionConfig &config) {
  JsonBuilder *b = begin_event("session.update");
  begin_object(b, "session");
  if (shape == ApiShape::Beta)
    add_session_beta(b, config);
  else
    add_session_ga(b, config);
  json_builder_end_object(b);  // session
  return end_event(b);
}

std::string build_input_audio_append(const uint8_t *pcm, size_t len) {
  static constexpr char kPrefix[] = "{\"type\":\"input_audio_buffer.append\",\"audio\":\"";
  static constexpr char kSuffix[] = "\"}";
  constexpr size_t kPrefixLen = sizeof(kPrefix) - 1;
  constexpr size_t kSuffixLen = sizeof(kSuffix) - 1;
  if (pcm == nullptr)
    len = 0;
  // g_base64_encode_step() needs (len / 3 + 1) * 4 + 4 bytes; that also covers the <= 4 bytes
  // g_base64_encode_close() adds, because the step then writes fewer.
  const size_t b64_max = (len / 3 + 1) * 4 + 4;
  std::string out;
  out.resize(kPrefixLen + b64_max + kSuffixLen);
  memcpy(&out[0], kPrefix, kPrefixLen);
  gchar *dst = &out[kPrefixLen];
  gint state = 0, save = 0;
  gsize n = len ? g_base64_encode_step(pcm, len, FALSE, dst, &state, &save) : 0;
  n += g_base64_encode_close(FALSE, dst + n, &state, &save);
  out.resize(kPrefixLen + n);
  out.append(kSuffix, kSuffixLen);  // within the capacity reserved above: no reallocation
  return out;
}

std::string build_input_audio_commit() {
  return end_event(begin_event("input_audio_buffer.commit"));
}

std::string build_input_audio_clear() {
  return end_event(begin_event("input_audio_buffer.clear"));
}

// Both shapes spell per-response instructions the same way (§2.5); the shape parameter is there so
// callers need not care if that ever diverges.
std::string build_response_create(ApiShape /*shape*/, const std::string &instructions) {
  JsonBuilder *b = begin_event("response.create");
  if (!instructions.empty()) {
    begin_object(b, "response");
    add_string(b, "instructions", instructions);
    json_builder_end_object(b);
  }
  return end_event(b);
}

std::string build_response_cancel(const std::string &response_id) {
  JsonBuilder *b = begin_event("response.cancel");
  if (!response_id.empty())
    add_string(b, "response_id", response_id);
  return end_event(b);
}

std::string build_item_truncate(const std::string &item_id, int content_index,
                                int64_t audio_end_ms) {
  JsonBuilder *b = begin_event("conversation.item.truncate");
  add_string(b, "item_id", item_id);
  add_int(b, "content_index", content_index);
  add_int(b, "audio_end_ms", audio_end_ms);
  return end_event(b);
}

std::string build_item_delete(const std::string &item_id) {
  JsonBuilder *b = begin_event("conversation.item.delete");
  add_string(b, "item_id", item_id);
  return end_event(b);
}

std::string build_text_item(ApiShape shape, const std::string &role, const std::string &text) {
  // Assistant history needs the output content type, which beta (and Azure preview) spell "text"
  // (§2.4); user and system content is input_text in both.
  const char *content_type = "input_text";
  if (role == "assistant")
    content_type = shape == ApiShape::Beta ? "text" : "output_text";
  JsonBuilder *b = begin_event("conversation.item.create");
  begin_object(b, "item");
  add_string(b, "type", "message");
  add_string(b, "role", role);
  json_builder_set_member_name(b, "content");
  json_builder_begin_array(b);
  json_builder_begin_object(b);
  add_string(b, "type", content_type);
  add_string(b, "text", text);
  json_builder_end_object(b);
  json_builder_end_array(b);
  json_builder_end_object(b);  // item
  return end_event(b);
}

std::string build_function_call_output(const std::string &call_id, const std::string &output) {
  JsonBuilder *b = begin_event("conversation.item.create");
  begin_object(b, "item");
  add_string(b, "type", "function_call_output");
  add_string(b, "call_id", call_id);
  add_string(b, "output", output);
  json_builder_end_object(b);
  return end_event(b);
}

// ---------------------------------------------------------------------------------------------
// Server events
// ---------------------------------------------------------------------------------------------

std::string normalise_event_name(const std::string &name) {
  // §2.1; the same table as LK _AZURE_EVENT_MAPPING.
  static constexpr const char *kBetaToGa[][2] = {
      {"response.audio.delta", "response.output_audio.delta"},
      {"response.audio.done", "response.output_audio.done"},
      {"response.audio_transcript.delta", "response.output_audio_transcript.delta"},
      {"response.audio_transcript.done", "response.output_audio_transcript.done"},
      {"response.text.delta", "response.output_text.delta"},
      {"response.text.done", "response.output_text.done"},
      {"conversation.item.created", "conversation.item.added"},
  };
  for (const auto &pair : kBetaToGa) {
    if (name == pair[0])
      return pair[1];
  }
  return name;
}

bool parse_server_event(const char *data, size_t len, ServerEvent *out, std::string *error) {
  std::string local_error;
  std::string *err = error ? error : &local_error;
  if (out == nullptr) {
    *err = "no output event";
    return false;
  }
  // Reset every field but keep the audio buffer's capacity: the caller typically reuses one
  // ServerEvent for the whole stream of ~50 audio deltas per second.
  std::vector<uint8_t> audio = std::move(out->audio);
  audio.clear();
  *out = ServerEvent{};
  out->audio = std::move(audio);

  g_autoptr(JsonNode) root = parse_json(data, len, err);
  if (root == nullptr)
    return false;
  if (!JSON_NODE_HOLDS_OBJECT(root)) {
    *err = "event is not a JSON object";
    return false;
  }
  JsonObject *o = json_node_get_object(root);
  JsonNode *type_node = member_value(o, "type", G_TYPE_STRING);
  if (type_node == nullptr) {
    *err = "event has no string \"type\"";
    return false;
  }
  get_string(o, "type", &out->type_name);
  out->type_name = normalise_event_name(out->type_name);
  out->type = lookup_event_type(out->type_name);

  // Top-level members mean the same thing in every event that has them, so read them once for all
  // types (unknown ones included, which helps logging). Nested objects override below.
  get_string(o, "event_id", &out->event_id);
  get_string(o, "response_id", &out->response_id);
  get_string(o, "item_id", &out->item_id);
  get_string(o, "previous_item_id", &out->previous_item_id);
  out->content_index = get_int32(o, "content_index", 0);
  out->audio_start_ms = get_int(o, "audio_start_ms", -1);
  out->audio_end_ms = get_int(o, "audio_end_ms", -1);

  switch (out->type) {
    case EventType::SessionCreated:
    case EventType::SessionUpdated:
      parse_session(get_object(o, "session"), out);
      break;
    case EventType::Error:
      parse_error_object(get_object(o, "error"), &out->error);
      break;
    case EventType::SpeechStarted:
    case EventType::SpeechStopped:
    case EventType::InputCommitted:
    case EventType::InputCleared:
    case EventType::ItemTruncated:
    case EventType::ItemDeleted:
    case EventType::AudioDone:
    case EventType::RateLimitsUpdated:
    case EventType::Unknown:
      break;  // only the top-level members above
    case EventType::ItemAdded:
    case EventType::ItemDone:
      parse_item(get_object(o, "item"), out, false);
      break;
    case EventType::InputTranscriptionCompleted:
      get_string(o, "transcript", &out->text);
      break;
    case EventType::InputTranscriptionFailed:
      parse_error_object(get_object(o, "error"), &out->error);
      break;
    case EventType::ResponseCreated:
    case EventType::ResponseDone:
      parse_response(get_object(o, "response"), out);
      break;
    case EventType::OutputItemAdded:
    case EventType::OutputItemDone:
      parse_item(get_object(o, "item"), out, true);
      break;
    case EventType::AudioDelta:
      decode_audio(o, "delta", &out->audio);
      break;
    case EventType::AudioTranscriptDelta:
      get_string(o, "delta", &out->text);
      break;
    case EventType::AudioTranscriptDone:
      get_string(o, "transcript", &out->text);
      break;
    case EventType::TextDone:
      get_string(o, "text", &out->text);
      break;
    case EventType::FunctionCallArgumentsDone:
      get_string(o, "call_id", &out->call_id);
      get_string(o, "name", &out->name);  // GA only; beta's event had no name (§2.4)
      get_string(o, "arguments", &out->arguments);
      break;
  }
  return true;
}

bool is_fatal_error_code(const std::string &code) {
  // Conditions a reconnect cannot fix, so retrying only burns requests (LK _FATAL_ERROR_CODES, plus
  // §1.1 beta_api_shape_disabled). model_not_found / invalid_model: the model is in the URL, so a
  // reconnect would repeat the same mistake. unsupported_country_region_territory: OpenAI's
  // region block. Deliberately not fatal: session_expired (a new session is the cure) and rate
  // limits (transient).
  static constexpr const char *kFatal[] = {
      "invalid_api_key",
      "insufficient_quota",
      "account_deactivated",
      "billing_hard_limit_reached",
      "beta_api_shape_disabled",
      "model_not_found",
      "invalid_model",
      "unsupported_country_region_territory",
  };
  for (const char *c : kFatal) {
    if (code == c)
      return true;
  }
  return false;
}

bool is_benign_error(const ErrorInfo &error) {
  // G5: cancel raced the end of the response. G6: commit after VAD consumed the buffer. G4: we
  // queue response.create, so hitting it means a benign race with a server-VAD auto-response.
  static constexpr const char *kBenign[] = {
      "response_cancel_not_active",
      "input_audio_buffer_commit_empty",
      "conversation_already_has_active_response",
  };
  for (const char *c : kBenign) {
    if (error.code == c)
      return true;
  }
  // G7(a): a truncate past the end of the item. Its code varies and is often null, so match the
  // message ("Audio content of 9800ms is already shorter than 11579ms").
  return error.message.find("already shorter than") != std::string::npos;
}

}  // namespace realtime
