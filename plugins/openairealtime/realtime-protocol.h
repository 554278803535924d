// Pure builders and parsers for the OpenAI Realtime WebSocket protocol (GA shape, and the legacy
// beta shape for old Azure deployments and compatible servers). No I/O and no global state, so every
// function here is unit-tested and fuzzed without a socket.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace realtime {

// Which wire shape to speak. OpenAI itself accepts only GA; beta is for legacy endpoints.
enum class ApiShape { GA, Beta };

enum class TurnDetectionType { ServerVad, SemanticVad, None };

struct TurnDetection {
  TurnDetectionType type = TurnDetectionType::ServerVad;
  double threshold = 0.5;          // server_vad
  int prefix_padding_ms = 300;     // server_vad
  int silence_duration_ms = 500;   // server_vad
  std::string eagerness = "auto";  // semantic_vad: low | medium | high | auto
  bool create_response = true;
  bool interrupt_response = true;
};

struct SessionConfig {
  std::string instructions;            // empty: not sent
  std::string voice;                   // empty: not sent
  TurnDetection turn_detection;
  std::string transcription_model;     // empty: input transcription off
  std::string transcription_language;  // empty: not sent
  std::string noise_reduction;         // "" (off) | "near_field" | "far_field"
  std::string tools_json;              // a JSON array of tool objects, or empty for none
  std::string tool_choice;             // "auto" | "none" | "required" | a function name; empty: not sent
};

// ---- client events (each returns one JSON text frame) ----

std::string build_session_update(ApiShape shape, const SessionConfig &config);
// The hot path: base64 of raw S16LE 24 kHz mono bytes, built without a JSON tree.
std::string build_input_audio_append(const uint8_t *pcm, size_t len);
std::string build_input_audio_commit();
std::string build_input_audio_clear();
// instructions may be empty (plain response.create).
std::string build_response_create(ApiShape shape, const std::string &instructions = {});
// response_id may be empty (cancel the active response).
std::string build_response_cancel(const std::string &response_id = {});
std::string build_item_truncate(const std::string &item_id, int content_index, int64_t audio_end_ms);
std::string build_item_delete(const std::string &item_id);
// A text message item. role: "user" | "assistant" | "system". Assistant text uses "output_text" in
// GA and "text" in beta; user and system use "input_text".
std::string build_text_item(ApiShape shape, const std::string &role, const std::string &text);
std::string build_function_call_output(const std::string &call_id, const std::string &output);

// ---- server events ----

enum class EventType {
  Unknown,           // any type we do not act on (ignored, never an error)
  SessionCreated,
  SessionUpdated,
  Error,
  SpeechStarted,     // input_audio_buffer.speech_started
  SpeechStopped,     // input_audio_buffer.speech_stopped
  InputCommitted,    // input_audio_buffer.committed
  InputCleared,      // input_audio_buffer.cleared
  ItemAdded,         // conversation.item.added, or beta conversation.item.created
  ItemDone,          // conversation.item.done
  ItemTruncated,     // conversation.item.truncated
  ItemDeleted,       // conversation.item.deleted
  InputTranscriptionCompleted,  // conversation.item.input_audio_transcription.completed
  InputTranscriptionFailed,     // conversation.item.input_audio_transcription.failed
  ResponseCreated,
  OutputItemAdded,   // response.output_item.added
  OutputItemDone,    // response.output_item.done
  AudioDelta,        // response.output_audio.delta (beta response.audio.delta)
  AudioDone,         // response.output_audio.done
  AudioTranscriptDelta,  // response.output_audio_transcript.delta
  AudioTranscriptDone,   // response.output_audio_transcript.done
  TextDone,              // response.output_text.done (beta response.text.done)
  FunctionCallArgumentsDone,  // response.function_call_arguments.done
  ResponseDone,
  RateLimitsUpdated,
};

struct Usage {
  int64_t total_tokens = 0;
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  int64_t input_audio_tokens = 0;
  int64_t input_text_tokens = 0;
  int64_t input_cached_tokens = 0;
  int64_t output_audio_tokens = 0;
  int64_t output_text_tokens = 0;
};

struct ErrorInfo {
  std::string type;     // e.g. invalid_request_error
  std::string code;     // e.g. unknown_parameter; may be empty (the server sends null at times)
  std::string message;
  std::string param;
  std::string event_id; // the offending client event, often empty
};

struct ServerEvent {
  EventType type = EventType::Unknown;
  std::string type_name;    // normalised to the GA name (beta names mapped), as received otherwise
  std::string event_id;
  std::string response_id;  // response.* events; response.created/done: response.id
  std::string item_id;      // item.* events: item.id; delta events: item_id
  std::string previous_item_id;
  int content_index = 0;
  std::string item_type;    // "message" | "function_call" | "function_call_output" | …
  std::string item_role;    // "user" | "assistant" | "system"
  std::string call_id;      // function calls
  std::string name;         // function calls
  std::string arguments;    // function calls: the JSON string as sent
  std::string text;         // transcript / transcript delta / text
  std::vector<uint8_t> audio;  // AudioDelta: the decoded PCM bytes
  int64_t audio_start_ms = -1;
  int64_t audio_end_ms = -1;
  int64_t expires_at = 0;   // session.created/updated: epoch seconds, 0 when absent
  bool interrupt_response = true;  // session.created/updated: turn detection's interrupt_response
  bool turn_detection_enabled = true;  // session.created/updated: false when turn_detection is null
  std::string status;         // response.done: completed | cancelled | failed | incomplete
  std::string status_reason;  // response.done: turn_detected | client_cancelled | max_output_tokens | …
  Usage usage;                // response.done
  ErrorInfo error;            // Error, and response.done with status failed (status_details.error)
};

// Maps beta event names to their GA names; returns the input for anything else.
std::string normalise_event_name(const std::string &name);

// Parses one text frame. Returns false (with *error set) for frames that are not a JSON object with
// a string "type", and for JSON nested deeper than 128 levels or in non-standard syntax (json-glib
// 1.6 overflows its stack on very deep nesting); unknown types parse fine as EventType::Unknown.
bool parse_server_event(const char *data, size_t len, ServerEvent *out, std::string *error);

// Error codes after which reconnecting cannot help (bad key, no quota, …).
bool is_fatal_error_code(const std::string &code);
// Error codes that are expected in normal operation and only worth a debug line (G5, G6, G7).
bool is_benign_error(const ErrorInfo &error);

// Audio maths at the Realtime API's fixed format: S16LE, 24 kHz, mono.
constexpr int kSampleRate = 24000;
constexpr int kBytesPerSample = 2;
constexpr int kBytesPerMs = kSampleRate * kBytesPerSample / 1000;  // 48
inline int64_t bytes_to_ms(uint64_t bytes) { return (int64_t)(bytes / kBytesPerMs); }

}  // namespace realtime
