// The Realtime session object of the fake server: defaults for session.created, strict validation
// of session.update and response.create parameters (GA or beta schema, docs/openai-realtime.md §2.2
// and §8 G2/G3), the deep merge, and a typed view of the fields the server acts on.
#pragma once

#include <json-glib/json-glib.h>

#include <cstdint>
#include <string>

namespace fake_realtime::detail {

enum class Shape { Ga, Beta };

// The "error" member of an error event. An empty code or param is sent as null.
struct ApiError {
  std::string code;
  std::string message;
  std::string param;
};

struct SessionContext {
  Shape shape = Shape::Ga;
  std::string model;             // from ?model=
  int64_t expires_at = 0;        // epoch seconds
  int default_silence_ms = 300;  // Config::vad_silence_ms, used wherever the client sent none
};

// The session as session.created reports it (a new reference).
JsonObject *default_session(const SessionContext &ctx);

// Validates the "session" member of a session.update and merges it into a copy of current. Returns the
// new session (a new reference), or nullptr with *err set; a rejected update changes nothing.
JsonObject *merge_session_update(JsonObject *current, JsonNode *update, const SessionContext &ctx,
                                 bool assistant_audio_present, ApiError *err);

// Validates the optional "response" member of a response.create.
bool validate_response_params(JsonNode *response, Shape shape, ApiError *err);

struct SessionView {
  bool vad = false;  // turn_detection is not null
  int silence_ms = 300;
  int prefix_padding_ms = 300;
  bool create_response = true;
  bool interrupt_response = true;
  bool text_only = false;      // output modalities without audio
  bool transcription = false;  // input transcription configured
  std::string voice;           // JSON text of the voice, for comparisons and response.created
  std::string instructions;
};

SessionView view_session(JsonObject *session, const SessionContext &ctx);

// The current voice as a JSON node (a new reference) for response.created.
JsonNode *session_voice(JsonObject *session, Shape shape);

}  // namespace fake_realtime::detail
