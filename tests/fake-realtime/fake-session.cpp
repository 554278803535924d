#include "fake-session.h"

#include "fake-json.h"

#include <algorithm>
#include <initializer_list>

namespace fake_realtime::detail {
namespace {

using Names = std::initializer_list<const char *>;

const Names kGaVoices = {"alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar"};
const Names kBetaVoices = {"alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse"};

bool contains(Names names, const std::string &value) {
  return std::any_of(names.begin(), names.end(), [&](const char *n) { return value == n; });
}

// "'a' and 'b'" / "'a', 'b', and 'c'", as the real server lists supported values.
std::string quoted_list(Names names) {
  std::string out;
  size_t i = 0;
  for (const char *n : names) {
    if (i > 0)
      out += names.size() == 2 ? " and " : (i + 1 == names.size() ? ", and " : ", ");
    out += std::string("'") + n + "'";
    i++;
  }
  return out;
}

bool fail(ApiError *err, const std::string &code, const std::string &message, const std::string &param) {
  *err = ApiError{code, message, param};
  return false;
}

bool unknown_parameter(ApiError *err, const std::string &path) {
  return fail(err, "unknown_parameter", "Unknown parameter: '" + path + "'.", path);
}

bool invalid_type(ApiError *err, const std::string &path, const char *expected, JsonNode *got) {
  return fail(err, "invalid_type",
              "Invalid type for '" + path + "': expected " + expected + ", but got " + describe_type(got) + " instead.",
              path);
}

bool invalid_value(ApiError *err, const std::string &path, const std::string &value, Names supported) {
  return fail(err, "invalid_value",
              "Invalid value: '" + value + "'. Supported values are: " + quoted_list(supported) + ".", path);
}

// Every key of o must be in allowed; the first stranger names the error, like the real server.
bool check_keys(JsonObject *o, const std::string &path, Names allowed, ApiError *err) {
  GList *members = json_object_get_members(o);
  bool ok = true;
  for (GList *l = members; l && ok; l = l->next) {
    const char *key = static_cast<const char *>(l->data);
    if (!contains(allowed, key))
      ok = unknown_parameter(err, path + "." + key);
  }
  g_list_free(members);
  return ok;
}

bool is_type(JsonNode *n, GType t) {
  return n && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == t;
}

bool is_number(JsonNode *n) {
  return is_type(n, G_TYPE_INT64) || is_type(n, G_TYPE_DOUBLE);
}

double number(JsonNode *n) {
  return is_type(n, G_TYPE_INT64) ? static_cast<double>(json_node_get_int(n)) : json_node_get_double(n);
}

bool want_string(JsonNode *n, const std::string &path, ApiError *err) {
  return is_type(n, G_TYPE_STRING) || invalid_type(err, path, "a string", n);
}

bool want_bool(JsonNode *n, const std::string &path, ApiError *err) {
  return is_type(n, G_TYPE_BOOLEAN) || invalid_type(err, path, "a boolean", n);
}

bool want_number(JsonNode *n, const std::string &path, double min, double max, ApiError *err) {
  if (!is_number(n))
    return invalid_type(err, path, "a decimal", n);
  double v = number(n);
  if (v < min || v > max)
    return fail(err, "decimal_out_of_range",
                "Invalid '" + path + "': " + std::to_string(v) + " is out of range [" + std::to_string(min) + ", " +
                    std::to_string(max) + "].",
                path);
  return true;
}

bool want_int(JsonNode *n, const std::string &path, int64_t min, ApiError *err) {
  if (!is_type(n, G_TYPE_INT64))
    return invalid_type(err, path, "an integer", n);
  if (json_node_get_int(n) < min)
    return fail(err, "integer_below_min_value",
                "Invalid '" + path + "': integer below minimum value. Expected a value >= " + std::to_string(min) +
                    ", but got " + std::to_string(json_node_get_int(n)) + " instead.",
                path);
  return true;
}

bool want_enum(JsonNode *n, const std::string &path, Names values, ApiError *err) {
  if (!want_string(n, path, err))
    return false;
  std::string v = json_node_get_string(n);
  return contains(values, v) || invalid_value(err, path, v, values);
}

// nullable: JSON null is a valid value (e.g. turn_detection: null selects manual turns).
bool want_object(JsonNode *n, const std::string &path, bool nullable, ApiError *err) {
  if (n && JSON_NODE_HOLDS_OBJECT(n))
    return true;
  if (nullable && n && JSON_NODE_HOLDS_NULL(n))
    return true;
  return invalid_type(err, path, "an object", n);
}

bool want_array(JsonNode *n, const std::string &path, ApiError *err) {
  return (n && JSON_NODE_HOLDS_ARRAY(n)) || invalid_type(err, path, "an array", n);
}

JsonNode *member(JsonObject *o, const char *key) {
  return json_object_get_member(o, key);
}

// Validates every present member of o with check(key, node, path).
template <typename Check>
bool each_member(JsonObject *o, const std::string &path, Check check) {
  GList *members = json_object_get_members(o);
  bool ok = true;
  for (GList *l = members; l && ok; l = l->next) {
    const char *key = static_cast<const char *>(l->data);
    ok = check(std::string(key), member(o, key), path + "." + key);
  }
  g_list_free(members);
  return ok;
}

bool validate_pcm_only(const std::string &value, const std::string &path, ApiError *err) {
  // The fake only synthesises PCM16; accepting G.711 would silently send the wrong bytes.
  if (value == "audio/pcm" || value == "pcm16")
    return true;
  return fail(err, "invalid_value", "Invalid value: '" + value + "'. The fake Realtime server implements only PCM16.",
              path);
}

bool validate_ga_format(JsonNode *n, const std::string &path, ApiError *err) {
  if (!want_object(n, path, false, err))
    return false;
  JsonObject *o = json_node_get_object(n);
  if (!check_keys(o, path, {"type", "rate"}, err))
    return false;
  JsonNode *type = member(o, "type");
  if (!type)
    return fail(err, "missing_required_parameter", "Missing required parameter: '" + path + ".type'.", path + ".type");
  if (!want_enum(type, path + ".type", {"audio/pcm", "audio/pcmu", "audio/pcma"}, err) ||
      !validate_pcm_only(json_node_get_string(type), path + ".type", err))
    return false;
  JsonNode *rate = member(o, "rate");
  if (rate && (!is_type(rate, G_TYPE_INT64) || json_node_get_int(rate) != 24000))
    return fail(err, "invalid_value", "Invalid value for '" + path + ".rate': only 24000 is supported.",
                path + ".rate");
  return true;
}

bool validate_turn_detection(JsonNode *n, const std::string &path, Shape shape, ApiError *err) {
  if (!want_object(n, path, true, err))
    return false;
  if (JSON_NODE_HOLDS_NULL(n))
    return true;
  JsonObject *o = json_node_get_object(n);
  Names ga_keys = {"type",
                   "threshold",
                   "prefix_padding_ms",
                   "silence_duration_ms",
                   "idle_timeout_ms",
                   "create_response",
                   "interrupt_response",
                   "eagerness"};
  Names beta_keys = {"type",      "threshold",       "prefix_padding_ms", "silence_duration_ms",
                     "eagerness", "create_response", "interrupt_response"};
  if (!check_keys(o, path, shape == Shape::Ga ? ga_keys : beta_keys, err))
    return false;
  if (!member(o, "type"))
    return fail(err, "missing_required_parameter", "Missing required parameter: '" + path + ".type'.", path + ".type");
  return each_member(o, path, [&](const std::string &key, JsonNode *v, const std::string &p) {
    if (key == "type")
      return want_enum(v, p, {"server_vad", "semantic_vad"}, err);
    if (key == "threshold")
      return want_number(v, p, 0.0, 1.0, err);
    if (key == "prefix_padding_ms" || key == "silence_duration_ms")
      return want_int(v, p, 0, err);
    if (key == "idle_timeout_ms")
      return JSON_NODE_HOLDS_NULL(v) || want_int(v, p, 0, err);
    if (key == "eagerness")
      return want_enum(v, p, {"low", "medium", "high", "auto"}, err);
    return want_bool(v, p, err);  // create_response, interrupt_response
  });
}

bool validate_transcription(JsonNode *n, const std::string &path, ApiError *err) {
  if (!want_object(n, path, true, err))
    return false;
  if (JSON_NODE_HOLDS_NULL(n))
    return true;
  JsonObject *o = json_node_get_object(n);
  return check_keys(o, path, {"model", "language", "prompt"}, err) &&
         each_member(o, path,
                     [&](const std::string &, JsonNode *v, const std::string &p) { return want_string(v, p, err); });
}

bool validate_noise_reduction(JsonNode *n, const std::string &path, ApiError *err) {
  if (!want_object(n, path, true, err))
    return false;
  if (JSON_NODE_HOLDS_NULL(n))
    return true;
  JsonObject *o = json_node_get_object(n);
  return check_keys(o, path, {"type"}, err) &&
         want_enum(member(o, "type"), path + ".type", {"near_field", "far_field"}, err);
}

bool validate_voice(JsonNode *n, const std::string &path, Shape shape, ApiError *err) {
  if (shape == Shape::Ga && n && JSON_NODE_HOLDS_OBJECT(n)) {  // a custom voice {"id": …}
    JsonObject *o = json_node_get_object(n);
    return check_keys(o, path, {"id"}, err) && want_string(member(o, "id"), path + ".id", err);
  }
  return want_enum(n, path, shape == Shape::Ga ? kGaVoices : kBetaVoices, err);
}

bool validate_tools(JsonNode *n, const std::string &path, ApiError *err) {
  if (!want_array(n, path, err))
    return false;
  JsonArray *a = json_node_get_array(n);
  for (guint i = 0; i < json_array_get_length(a); i++) {
    std::string p = path + "[" + std::to_string(i) + "]";
    JsonNode *tool = json_array_get_element(a, i);
    if (!want_object(tool, p, false, err))
      return false;
    JsonObject *o = json_node_get_object(tool);
    if (!check_keys(o, p, {"type", "name", "description", "parameters"}, err) ||
        !want_enum(member(o, "type"), p + ".type", {"function"}, err) ||
        !want_string(member(o, "name"), p + ".name", err))
      return false;
  }
  return true;
}

bool validate_tool_choice(JsonNode *n, const std::string &path, ApiError *err) {
  if (n && JSON_NODE_HOLDS_OBJECT(n)) {
    JsonObject *o = json_node_get_object(n);
    return check_keys(o, path, {"type", "name"}, err) &&
           want_enum(member(o, "type"), path + ".type", {"function"}, err) &&
           want_string(member(o, "name"), path + ".name", err);
  }
  return want_enum(n, path, {"auto", "none", "required"}, err);
}

bool validate_max_tokens(JsonNode *n, const std::string &path, ApiError *err) {
  if (is_type(n, G_TYPE_STRING))
    return want_enum(n, path, {"inf"}, err);
  if (!want_int(n, path, 1, err))
    return false;
  if (json_node_get_int(n) > 4096)
    return fail(err, "integer_above_max_value",
                "Invalid '" + path + "': integer above maximum value. Expected a value <= 4096.", path);
  return true;
}

// GA output_modalities is ["audio"] or ["text"], never both.
bool validate_ga_modalities(JsonNode *n, const std::string &path, ApiError *err) {
  if (!want_array(n, path, err))
    return false;
  JsonArray *a = json_node_get_array(n);
  if (json_array_get_length(a) != 1)
    return fail(err, "invalid_value", "Invalid '" + path + "': expected exactly one of 'audio' or 'text'.", path);
  return want_enum(json_array_get_element(a, 0), path + "[0]", {"audio", "text"}, err);
}

// Beta modalities is ["text"] or ["audio","text"] in any order.
bool validate_beta_modalities(JsonNode *n, const std::string &path, ApiError *err) {
  if (!want_array(n, path, err))
    return false;
  JsonArray *a = json_node_get_array(n);
  bool text = false;
  for (guint i = 0; i < json_array_get_length(a); i++) {
    JsonNode *e = json_array_get_element(a, i);
    if (!want_enum(e, path + "[" + std::to_string(i) + "]", {"text", "audio"}, err))
      return false;
    text = text || std::string(json_node_get_string(e)) == "text";
  }
  if (!text)
    return fail(err, "invalid_value", "Invalid modalities: supported combinations are ['text'] and ['audio', 'text'].",
                path);
  return true;
}

bool validate_ga_audio(JsonNode *n, const std::string &path, Shape shape, ApiError *err) {
  if (!want_object(n, path, false, err))
    return false;
  JsonObject *audio = json_node_get_object(n);
  if (!check_keys(audio, path, {"input", "output"}, err))
    return false;
  if (JsonNode *in = member(audio, "input")) {
    std::string p = path + ".input";
    if (!want_object(in, p, false, err))
      return false;
    JsonObject *o = json_node_get_object(in);
    if (!check_keys(o, p, {"format", "noise_reduction", "transcription", "turn_detection"}, err) ||
        !each_member(o, p, [&](const std::string &key, JsonNode *v, const std::string &kp) {
          if (key == "format")
            return validate_ga_format(v, kp, err);
          if (key == "noise_reduction")
            return validate_noise_reduction(v, kp, err);
          if (key == "transcription")
            return validate_transcription(v, kp, err);
          return validate_turn_detection(v, kp, shape, err);
        }))
      return false;
  }
  if (JsonNode *out = member(audio, "output")) {
    std::string p = path + ".output";
    if (!want_object(out, p, false, err))
      return false;
    JsonObject *o = json_node_get_object(out);
    if (!check_keys(o, p, {"format", "voice", "speed"}, err) ||
        !each_member(o, p, [&](const std::string &key, JsonNode *v, const std::string &kp) {
          if (key == "format")
            return validate_ga_format(v, kp, err);
          if (key == "voice")
            return validate_voice(v, kp, shape, err);
          return want_number(v, kp, 0.25, 1.5, err);  // speed
        }))
      return false;
  }
  return true;
}

bool validate_ga_session(JsonObject *s, ApiError *err) {
  // The discriminator is checked first: a pure beta update (no type) is answered with
  // missing_required_parameter, as captured from the real server (docs §2.2).
  JsonNode *type = member(s, "type");
  if (!type)
    return fail(err, "missing_required_parameter", "Missing required parameter: 'session.type'.", "session.type");
  if (!want_enum(type, "session.type", {"realtime", "transcription"}, err))
    return false;
  if (std::string(json_node_get_string(type)) != "realtime")
    return fail(err, "invalid_value",
                "Invalid value: 'transcription'. The fake Realtime server implements only "
                "'realtime' sessions.",
                "session.type");
  Names keys = {"type",
                "model",
                "output_modalities",
                "instructions",
                "audio",
                "tools",
                "tool_choice",
                "max_output_tokens",
                "tracing",
                "prompt",
                "truncation",
                "include",
                "reasoning",
                "parallel_tool_calls"};
  if (!check_keys(s, "session", keys, err))
    return false;
  return each_member(s, "session", [&](const std::string &key, JsonNode *v, const std::string &p) {
    if (key == "output_modalities")
      return validate_ga_modalities(v, p, err);
    if (key == "instructions" || key == "model")
      return want_string(v, p, err);
    if (key == "audio")
      return validate_ga_audio(v, p, Shape::Ga, err);
    if (key == "tools")
      return validate_tools(v, p, err);
    if (key == "tool_choice")
      return validate_tool_choice(v, p, err);
    if (key == "max_output_tokens")
      return validate_max_tokens(v, p, err);
    if (key == "parallel_tool_calls")
      return want_bool(v, p, err);
    return true;  // type (checked above), tracing, prompt, truncation, include, reasoning
  });
}

bool validate_beta_session(JsonObject *s, ApiError *err) {
  Names keys = {"model",
                "modalities",
                "instructions",
                "voice",
                "input_audio_format",
                "output_audio_format",
                "input_audio_transcription",
                "input_audio_noise_reduction",
                "turn_detection",
                "tools",
                "tool_choice",
                "temperature",
                "max_response_output_tokens",
                "speed",
                "tracing"};
  if (!check_keys(s, "session", keys, err))  // includes 'session.type': unknown in beta
    return false;
  return each_member(s, "session", [&](const std::string &key, JsonNode *v, const std::string &p) {
    if (key == "modalities")
      return validate_beta_modalities(v, p, err);
    if (key == "instructions" || key == "model")
      return want_string(v, p, err);
    if (key == "voice")
      return validate_voice(v, p, Shape::Beta, err);
    if (key == "input_audio_format" || key == "output_audio_format")
      return want_enum(v, p, {"pcm16", "g711_ulaw", "g711_alaw"}, err) &&
             validate_pcm_only(json_node_get_string(v), p, err);
    if (key == "input_audio_transcription")
      return validate_transcription(v, p, err);
    if (key == "input_audio_noise_reduction")
      return validate_noise_reduction(v, p, err);
    if (key == "turn_detection")
      return validate_turn_detection(v, p, Shape::Beta, err);
    if (key == "tools")
      return validate_tools(v, p, err);
    if (key == "tool_choice")
      return validate_tool_choice(v, p, err);
    if (key == "temperature")
      return want_number(v, p, 0.6, 1.2, err);
    if (key == "max_response_output_tokens")
      return validate_max_tokens(v, p, err);
    if (key == "speed")
      return want_number(v, p, 0.25, 1.5, err);
    return true;  // tracing
  });
}

Obj default_turn_detection(const std::string &type, const SessionContext &ctx) {
  Obj td;
  td.str("type", type);
  if (type == "server_vad") {
    td.dbl("threshold", 0.5).num("prefix_padding_ms", 300).num("silence_duration_ms", ctx.default_silence_ms);
    if (ctx.shape == Shape::Ga)
      td.null("idle_timeout_ms");
  } else {
    td.str("eagerness", "auto");
  }
  td.boolean("create_response", true).boolean("interrupt_response", true);
  return td;
}

// The server reports a complete turn_detection object: defaults for its type under the sent fields.
JsonNode *normalized_turn_detection(JsonNode *sent, const SessionContext &ctx) {
  if (JSON_NODE_HOLDS_NULL(sent))
    return json_node_new(JSON_NODE_NULL);
  JsonObject *in = json_node_get_object(sent);
  Obj td = default_turn_detection(get_string(in, "type"), ctx);
  GList *members = json_object_get_members(in);
  for (GList *l = members; l; l = l->next) {
    const char *key = static_cast<const char *>(l->data);
    json_object_set_member(td.get(), key, deep_copy(member(in, key)));
  }
  g_list_free(members);
  JsonNode *node = json_node_new(JSON_NODE_OBJECT);
  json_node_take_object(node, td.release());
  return node;
}

JsonObject *ensure_object(JsonObject *parent, const char *key) {
  JsonObject *o = get_object(parent, key);
  if (!o) {
    json_object_set_object_member(parent, key, json_object_new());
    o = get_object(parent, key);
  }
  return o;
}

// Replaces each sent member of dst; turn_detection is normalised on the way in.
void overlay(JsonObject *dst, JsonObject *src, const SessionContext &ctx) {
  GList *members = json_object_get_members(src);
  for (GList *l = members; l; l = l->next) {
    const char *key = static_cast<const char *>(l->data);
    JsonNode *v = member(src, key);
    json_object_set_member(dst, key,
                           std::string(key) == "turn_detection" ? normalized_turn_detection(v, ctx) : deep_copy(v));
  }
  g_list_free(members);
}

Obj pcm_format() {
  Obj format;
  format.str("type", "audio/pcm").num("rate", 24000);
  return format;
}

}  // namespace

JsonObject *default_session(const SessionContext &ctx) {
  const std::string model = ctx.model.empty() ? "gpt-realtime" : ctx.model;
  const std::string instructions =
      "You are a helpful, witty, and friendly AI. Act like a human, but remember that you aren't a "
      "human. Your voice and personality should be warm and engaging.";
  Obj s;
  if (ctx.shape == Shape::Beta) {
    Arr modalities;
    modalities.add_str("audio").add_str("text");
    s.str("id", "sess_fake")
        .str("object", "realtime.session")
        .str("model", model)
        .num("expires_at", ctx.expires_at)
        .arr("modalities", std::move(modalities))
        .str("instructions", instructions)
        .str("voice", "alloy")
        .str("input_audio_format", "pcm16")
        .str("output_audio_format", "pcm16")
        .null("input_audio_transcription")
        .null("input_audio_noise_reduction")
        .obj("turn_detection", default_turn_detection("server_vad", ctx))
        .arr("tools", Arr())
        .str("tool_choice", "auto")
        .dbl("temperature", 0.8)
        .str("max_response_output_tokens", "inf")
        .dbl("speed", 1.0)
        .null("tracing");
    return s.release();
  }
  Arr modalities;
  modalities.add_str("audio");
  Obj input;
  input.obj("format", pcm_format())
      .null("transcription")
      .null("noise_reduction")
      .obj("turn_detection", default_turn_detection("server_vad", ctx));
  Obj output;
  output.obj("format", pcm_format()).str("voice", "marin").num("speed", 1);
  Obj audio;
  audio.obj("input", std::move(input)).obj("output", std::move(output));
  s.str("type", "realtime")
      .str("object", "realtime.session")
      .str("id", "sess_fake")
      .str("model", model)
      .arr("output_modalities", std::move(modalities))
      .str("instructions", instructions)
      .arr("tools", Arr())
      .str("tool_choice", "auto")
      .str("max_output_tokens", "inf")
      .null("tracing")
      .str("truncation", "auto")
      .null("prompt")
      .num("expires_at", ctx.expires_at)
      .obj("audio", std::move(audio))
      .null("include");
  return s.release();
}

JsonObject *merge_session_update(JsonObject *current, JsonNode *update, const SessionContext &ctx,
                                 bool assistant_audio_present, ApiError *err) {
  if (!update) {
    fail(err, "missing_required_parameter", "Missing required parameter: 'session'.", "session");
    return nullptr;
  }
  if (!want_object(update, "session", false, err))
    return nullptr;
  JsonObject *sent = json_node_get_object(update);
  if (!(ctx.shape == Shape::Ga ? validate_ga_session(sent, err) : validate_beta_session(sent, err)))
    return nullptr;

  JsonObject *merged = deep_copy(current);
  GList *members = json_object_get_members(sent);
  for (GList *l = members; l; l = l->next) {
    const std::string key = static_cast<const char *>(l->data);
    JsonNode *v = member(sent, key.c_str());
    if (ctx.shape == Shape::Ga && key == "audio") {
      // audio.input and audio.output merge member by member (docs §9).
      JsonObject *audio_in = json_node_get_object(v);
      JsonObject *audio = ensure_object(merged, "audio");
      for (const char *dir : {"input", "output"})
        if (JsonObject *part = get_object(audio_in, dir))
          overlay(ensure_object(audio, dir), part, ctx);
    } else if (key == "turn_detection") {
      json_object_set_member(merged, key.c_str(), normalized_turn_detection(v, ctx));
    } else if (key != "model") {  // the model is fixed by the URL
      json_object_set_member(merged, key.c_str(), deep_copy(v));
    }
  }
  g_list_free(members);

  if (assistant_audio_present && view_session(merged, ctx).voice != view_session(current, ctx).voice) {
    json_object_unref(merged);
    fail(err, "cannot_update_voice", "Cannot update a conversation's voice if assistant audio is present.",
         ctx.shape == Shape::Ga ? "session.audio.output.voice" : "session.voice");
    return nullptr;
  }
  return merged;
}

bool validate_response_params(JsonNode *response, Shape shape, ApiError *err) {
  if (!response)
    return true;
  if (!want_object(response, "response", false, err))
    return false;
  JsonObject *r = json_node_get_object(response);
  Names ga_keys = {"output_modalities", "audio", "max_output_tokens", "instructions", "tools",    "tool_choice",
                   "conversation",      "input", "metadata",          "prompt",       "reasoning"};
  Names beta_keys = {"modalities",
                     "voice",
                     "output_audio_format",
                     "max_response_output_tokens",
                     "temperature",
                     "instructions",
                     "tools",
                     "tool_choice",
                     "conversation",
                     "input",
                     "metadata"};
  if (!check_keys(r, "response", shape == Shape::Ga ? ga_keys : beta_keys, err))
    return false;
  return each_member(r, "response", [&](const std::string &key, JsonNode *v, const std::string &p) {
    if (key == "instructions")
      return want_string(v, p, err);
    if (key == "conversation")
      return want_enum(v, p, {"auto", "none"}, err);
    if (key == "output_modalities")
      return validate_ga_modalities(v, p, err);
    if (key == "modalities")
      return validate_beta_modalities(v, p, err);
    if (key == "tools")
      return validate_tools(v, p, err);
    if (key == "tool_choice")
      return validate_tool_choice(v, p, err);
    if (key == "max_output_tokens" || key == "max_response_output_tokens")
      return validate_max_tokens(v, p, err);
    if (key == "voice")
      return validate_voice(v, p, shape, err);
    if (key == "audio") {
      if (!want_object(v, p, false, err))
        return false;
      JsonObject *a = json_node_get_object(v);
      if (!check_keys(a, p, {"output"}, err))
        return false;
      JsonNode *out = member(a, "output");
      if (!out)
        return true;
      if (!want_object(out, p + ".output", false, err))
        return false;
      JsonObject *o = json_node_get_object(out);
      return check_keys(o, p + ".output", {"format", "voice"}, err) &&
             each_member(o, p + ".output", [&](const std::string &k, JsonNode *ov, const std::string &op) {
               return k == "format" ? validate_ga_format(ov, op, err) : validate_voice(ov, op, shape, err);
             });
    }
    return true;  // input, metadata, prompt, reasoning, temperature, output_audio_format
  });
}

SessionView view_session(JsonObject *session, const SessionContext &ctx) {
  SessionView v;
  JsonObject *td = nullptr;
  JsonNode *voice = nullptr;
  JsonNode *modalities = nullptr;
  if (ctx.shape == Shape::Ga) {
    JsonObject *audio = get_object(session, "audio");
    JsonObject *in = get_object(audio, "input");
    JsonObject *out = get_object(audio, "output");
    td = get_object(in, "turn_detection");
    v.transcription = get_object(in, "transcription") != nullptr;
    voice = out ? json_object_get_member(out, "voice") : nullptr;
    modalities = json_object_get_member(session, "output_modalities");
  } else {
    td = get_object(session, "turn_detection");
    v.transcription = get_object(session, "input_audio_transcription") != nullptr;
    voice = json_object_get_member(session, "voice");
    modalities = json_object_get_member(session, "modalities");
  }
  v.vad = td != nullptr;
  int64_t n = 0;
  v.silence_ms = td && get_int(td, "silence_duration_ms", &n) ? static_cast<int>(n) : ctx.default_silence_ms;
  v.prefix_padding_ms = td && get_int(td, "prefix_padding_ms", &n) ? static_cast<int>(n) : 300;
  v.create_response = get_bool(td, "create_response", true);
  v.interrupt_response = get_bool(td, "interrupt_response", true);
  v.voice = voice ? to_text(voice) : "";
  v.text_only = true;
  if (modalities && JSON_NODE_HOLDS_ARRAY(modalities)) {
    JsonArray *a = json_node_get_array(modalities);
    for (guint i = 0; i < json_array_get_length(a); i++)
      if (std::string(json_array_get_string_element(a, i)) == "audio")
        v.text_only = false;
  }
  v.instructions = get_string(session, "instructions");
  return v;
}

JsonNode *session_voice(JsonObject *session, Shape shape) {
  JsonObject *holder = shape == Shape::Ga ? get_object(get_object(session, "audio"), "output") : session;
  JsonNode *voice = holder ? json_object_get_member(holder, "voice") : nullptr;
  return voice ? deep_copy(voice) : json_node_new(JSON_NODE_NULL);
}

}  // namespace fake_realtime::detail
