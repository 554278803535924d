#include "openairealtime-common.h"

#include <json-glib/json-glib.h>

GST_DEBUG_CATEGORY(openairealtime_debug);
#define GST_CAT_DEFAULT openairealtime_debug

namespace realtime {

namespace {

// Offsets from the element's first common property id.
enum CommonProp {
  PROP_SESSION,
  PROP_URL,
  PROP_API_KEY,
  PROP_MODEL,
  PROP_VOICE,
  PROP_INSTRUCTIONS,
  PROP_API_SHAPE,
  PROP_AUTH_STYLE,
  PROP_TURN_DETECTION,
  PROP_VAD_THRESHOLD,
  PROP_PREFIX_PADDING,
  PROP_SILENCE_DURATION,
  PROP_EAGERNESS,
  PROP_CREATE_RESPONSE,
  PROP_INTERRUPT_RESPONSE,
  PROP_TRANSCRIPTION_MODEL,
  PROP_TRANSCRIPTION_LANGUAGE,
  PROP_NOISE_REDUCTION,
  PROP_TOOLS,
  PROP_TOOL_CHOICE,
  PROP_GREETING,
  PROP_KEEPALIVE,
  PROP_MAX_RECONNECTS,
  PROP_MAX_QUEUE,
  PROP_RENEW_MARGIN,
  PROP_STATS,
  N_COMMON_PROPS
};

GQuark common_quark() {
  static GQuark q = g_quark_from_static_string("openairealtime-common");
  return q;
}

GType api_shape_get_type() {
  static GType type = 0;
  static const GEnumValue values[] = {
      {(gint)ApiShape::GA, "GA shape (OpenAI and current Azure)", "ga"},
      {(gint)ApiShape::Beta, "Legacy beta shape (OpenAI-Beta: realtime=v1; old Azure deployments)", "beta"},
      {0, nullptr, nullptr}};
  if (g_once_init_enter(&type)) g_once_init_leave(&type, g_enum_register_static("GstOpenAIRealtimeApiShape", values));
  return type;
}

GType auth_style_get_type() {
  static GType type = 0;
  static const GEnumValue values[] = {
      {(gint)AuthStyle::Bearer, "Authorization: Bearer <key> (OpenAI, Azure Entra tokens)", "bearer"},
      {(gint)AuthStyle::ApiKeyHeader, "api-key: <key> (Azure OpenAI resource keys)", "api-key"},
      {0, nullptr, nullptr}};
  if (g_once_init_enter(&type)) g_once_init_leave(&type, g_enum_register_static("GstOpenAIRealtimeAuthStyle", values));
  return type;
}

GType turn_detection_get_type() {
  static GType type = 0;
  static const GEnumValue values[] = {
      {(gint)TurnDetectionType::ServerVad, "Server VAD (threshold, prefix padding, silence duration)", "server-vad"},
      {(gint)TurnDetectionType::SemanticVad, "Semantic VAD (eagerness)", "semantic-vad"},
      {(gint)TurnDetectionType::None, "None: the sink commits and asks for a reply at end of stream", "none"},
      {0, nullptr, nullptr}};
  if (g_once_init_enter(&type))
    g_once_init_leave(&type, g_enum_register_static("GstOpenAIRealtimeTurnDetection", values));
  return type;
}

enum Eagerness { EAGER_AUTO, EAGER_LOW, EAGER_MEDIUM, EAGER_HIGH };
const char *const kEagerness[] = {"auto", "low", "medium", "high"};

GType eagerness_get_type() {
  static GType type = 0;
  static const GEnumValue values[] = {{EAGER_AUTO, "auto (medium)", "auto"},
                                      {EAGER_LOW, "low: lets the caller finish (up to 8 s)", "low"},
                                      {EAGER_MEDIUM, "medium (up to 4 s)", "medium"},
                                      {EAGER_HIGH, "high: answers quickly (up to 2 s)", "high"},
                                      {0, nullptr, nullptr}};
  if (g_once_init_enter(&type)) g_once_init_leave(&type, g_enum_register_static("GstOpenAIRealtimeEagerness", values));
  return type;
}

enum NoiseReduction { NR_NONE, NR_NEAR, NR_FAR };
const char *const kNoiseReduction[] = {"", "near_field", "far_field"};

GType noise_reduction_get_type() {
  static GType type = 0;
  static const GEnumValue values[] = {{NR_NONE, "off", "none"},
                                      {NR_NEAR, "near field (headsets, phones at the ear)", "near-field"},
                                      {NR_FAR, "far field (speakerphones, laptops)", "far-field"},
                                      {0, nullptr, nullptr}};
  if (g_once_init_enter(&type))
    g_once_init_leave(&type, g_enum_register_static("GstOpenAIRealtimeNoiseReduction", values));
  return type;
}

int index_of(const char *const *names, int n, const std::string &value) {
  for (int i = 0; i < n; i++)
    if (value == names[i]) return i;
  return 0;
}

ElementCommon *common_of(gpointer instance) {
  return static_cast<ElementCommon *>(g_object_get_qdata(G_OBJECT(instance), common_quark()));
}

// ---- action signal handlers ----

gboolean action_function_call_output(GstElement *element, const gchar *call_id, const gchar *output) {
  auto session = common_session(common_of(element));
  if (!session || !call_id || !*call_id) return FALSE;
  session->send_function_output(call_id, output ? output : "");
  return TRUE;
}

gboolean action_add_text_item(GstElement *element, const gchar *role, const gchar *text) {
  auto session = common_session(common_of(element));
  if (!session || !role || !text) return FALSE;
  return session->add_text_item(role, text);
}

gboolean action_request_response(GstElement *element, const gchar *instructions) {
  auto session = common_session(common_of(element));
  if (!session) return FALSE;
  session->request_response(instructions ? instructions : "");
  return TRUE;
}

gboolean action_interrupt(GstElement *element) {
  auto session = common_session(common_of(element));
  if (!session) return FALSE;
  session->interrupt();
  return TRUE;
}

const GParamFlags kRW = (GParamFlags)(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY);

}  // namespace

void common_class_init(GObjectClass *klass, guint first) {
  static gsize debug_once = 0;
  if (g_once_init_enter(&debug_once)) {
    GST_DEBUG_CATEGORY_INIT(openairealtime_debug, "openairealtime", 0, "OpenAI Realtime session and elements");
    g_once_init_leave(&debug_once, 1);
  }
  SessionSettings d;
  const TurnDetection &td = d.config.turn_detection;
  auto install = [&](int id, GParamSpec *spec) { g_object_class_install_property(klass, first + id, spec); };

  install(PROP_SESSION, g_param_spec_string("session", "Session",
                                            "Name of the Realtime session: a sink and a src with the same name in one "
                                            "process share one connection",
                                            "default", kRW));
  install(PROP_URL, g_param_spec_string("url", "URL",
                                        "WebSocket URL of the Realtime API (Azure: wss://RESOURCE.openai.azure.com/"
                                        "openai/v1/realtime with model=DEPLOYMENT and auth-style=api-key)",
                                        d.url.c_str(), kRW));
  // Write-only, so that gst-launch -v and property dumps never print the key.
  install(PROP_API_KEY,
          g_param_spec_string("api-key", "API key",
                              "Key for the Realtime API (write-only). When empty, OPENAI_API_KEY from the environment is used for api.openai.com; other URLs get no key", nullptr,
                              (GParamFlags)(G_PARAM_WRITABLE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY)));
  install(PROP_MODEL, g_param_spec_string("model", "Model",
                                          "Model name, sent as ?model= (Azure: the deployment name; empty: not sent)",
                                          d.model.c_str(), kRW));
  install(PROP_VOICE, g_param_spec_string("voice", "Voice", "Voice of the model (e.g. marin, cedar, alloy)",
                                          d.config.voice.c_str(), kRW));
  install(PROP_INSTRUCTIONS, g_param_spec_string("instructions", "Instructions",
                                                 "System instructions for the model (empty: the server's default)",
                                                 nullptr, kRW));
  install(PROP_API_SHAPE, g_param_spec_enum("api-shape", "API shape", "Protocol shape to speak", api_shape_get_type(),
                                            (gint)ApiShape::GA, kRW));
  install(PROP_AUTH_STYLE, g_param_spec_enum("auth-style", "Auth style", "How the API key is sent",
                                             auth_style_get_type(), (gint)AuthStyle::Bearer, kRW));
  install(PROP_TURN_DETECTION, g_param_spec_enum("turn-detection", "Turn detection", "How the server detects turns",
                                                 turn_detection_get_type(), (gint)td.type, kRW));
  install(PROP_VAD_THRESHOLD, g_param_spec_double("vad-threshold", "VAD threshold",
                                                  "server-vad: activation threshold (higher needs louder speech)", 0.0,
                                                  1.0, td.threshold, kRW));
  install(PROP_PREFIX_PADDING, g_param_spec_int("prefix-padding-ms", "Prefix padding",
                                                "server-vad: audio kept before detected speech (ms)", 0, 10000,
                                                td.prefix_padding_ms, kRW));
  install(PROP_SILENCE_DURATION, g_param_spec_int("silence-duration-ms", "Silence duration",
                                                  "server-vad: silence that ends a turn (ms)", 0, 10000,
                                                  td.silence_duration_ms, kRW));
  install(PROP_EAGERNESS, g_param_spec_enum("eagerness", "Eagerness", "semantic-vad: how quickly the model answers",
                                            eagerness_get_type(), EAGER_AUTO, kRW));
  install(PROP_CREATE_RESPONSE, g_param_spec_boolean("create-response", "Create response",
                                                     "The server answers automatically at the end of a turn",
                                                     td.create_response, kRW));
  install(PROP_INTERRUPT_RESPONSE,
          g_param_spec_boolean("interrupt-response", "Interrupt response",
                               "The server cancels its reply when the caller speaks (when false, the session sends "
                               "response.cancel itself on barge-in)",
                               td.interrupt_response, kRW));
  install(PROP_TRANSCRIPTION_MODEL,
          g_param_spec_string("transcription-model", "Transcription model",
                              "Model that transcribes the caller's audio (empty: no caller transcripts)",
                              d.config.transcription_model.c_str(), kRW));
  install(PROP_TRANSCRIPTION_LANGUAGE,
          g_param_spec_string("transcription-language", "Transcription language",
                              "ISO-639-1 language hint for caller transcripts (empty: detect)", nullptr, kRW));
  install(PROP_NOISE_REDUCTION, g_param_spec_enum("noise-reduction", "Noise reduction",
                                                  "Server-side noise reduction of the caller's audio",
                                                  noise_reduction_get_type(), NR_NONE, kRW));
  install(PROP_TOOLS, g_param_spec_string("tools", "Tools",
                                          "JSON array of function tools, e.g. [{\"type\":\"function\",\"name\":"
                                          "\"end_call\",\"description\":\"…\",\"parameters\":{…}}]",
                                          nullptr, kRW));
  install(PROP_TOOL_CHOICE, g_param_spec_string("tool-choice", "Tool choice",
                                                "auto, none, required, or a function name (empty: server default)",
                                                nullptr, kRW));
  install(PROP_GREETING, g_param_spec_string("greeting", "Greeting",
                                             "Text the model says first, once the session is ready (empty: wait for "
                                             "the caller)",
                                             nullptr, kRW));
  install(PROP_KEEPALIVE, g_param_spec_int("keepalive-interval", "Keepalive interval",
                                           "Seconds between WebSocket pings (0: off)", 0, 3600, d.keepalive_s, kRW));
  install(PROP_MAX_RECONNECTS, g_param_spec_int("max-reconnect-attempts", "Max reconnect attempts",
                                                "Reconnect attempts in a row before the session fails", 0, 1000,
                                                d.max_reconnect_attempts, kRW));
  install(PROP_MAX_QUEUE, g_param_spec_int("max-queue-time", "Max queue time",
                                           "Model audio buffered ahead of playback (ms); a reply longer than this is "
                                           "cancelled and truncated where the buffer ends",
                                           1000, 3600000, d.max_queue_ms, kRW));
  install(PROP_RENEW_MARGIN, g_param_spec_int("renew-margin", "Renew margin",
                                              "Seconds before the server's session expiry at which the session is "
                                              "renewed (history replayed)",
                                              1, 3600, d.renew_margin_s, kRW));
  install(PROP_STATS, g_param_spec_boxed("stats", "Statistics",
                                         "Counters of the session (audio appended, replayed after a reconnect, received, played, dropped; "
                                         "barge-ins; responses; tokens; underruns; reconnects; errors)",
                                         GST_TYPE_STRUCTURE, (GParamFlags)(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS)));

  GType type = G_OBJECT_CLASS_TYPE(klass);
  // Actions. The application returns a tool's result…
  g_signal_new_class_handler("function-call-output", type, (GSignalFlags)(G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION),
                             G_CALLBACK(action_function_call_output), nullptr, nullptr, nullptr, G_TYPE_BOOLEAN, 2,
                             G_TYPE_STRING, G_TYPE_STRING);
  // …adds a text message to the conversation (role: user, assistant or system)…
  g_signal_new_class_handler("add-text-item", type, (GSignalFlags)(G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION),
                             G_CALLBACK(action_add_text_item), nullptr, nullptr, nullptr, G_TYPE_BOOLEAN, 2,
                             G_TYPE_STRING, G_TYPE_STRING);
  // …asks the model to speak (optional per-response instructions), queued behind an active reply…
  g_signal_new_class_handler("request-response", type, (GSignalFlags)(G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION),
                             G_CALLBACK(action_request_response), nullptr, nullptr, nullptr, G_TYPE_BOOLEAN, 1,
                             G_TYPE_STRING);
  // …or interrupts the model as if the caller had barged in.
  g_signal_new_class_handler("interrupt", type, (GSignalFlags)(G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION),
                             G_CALLBACK(action_interrupt), nullptr, nullptr, nullptr, G_TYPE_BOOLEAN, 0);
}

void common_instance_init(GObject *object, ElementCommon *common) {
  g_object_set_qdata(object, common_quark(), common);
}

static std::string str_or_empty(const GValue *value) {
  const char *s = g_value_get_string(value);
  return s ? s : "";
}

bool common_set_property(ElementCommon *c, guint prop_id, const GValue *value, guint first) {
  if (prop_id < first || prop_id >= first + N_COMMON_PROPS) return false;
  std::lock_guard<std::mutex> lock(c->lock);
  SessionSettings &s = c->settings;
  TurnDetection &td = s.config.turn_detection;
  using F = SessionSettings;
  switch (prop_id - first) {
    case PROP_SESSION: c->session_name = str_or_empty(value); if (c->session_name.empty()) c->session_name = "default"; return true;
    case PROP_URL: s.url = str_or_empty(value); s.explicit_mask |= F::kUrl; break;
    case PROP_API_KEY: s.api_key = str_or_empty(value); s.explicit_mask |= F::kApiKey; break;
    case PROP_MODEL: s.model = str_or_empty(value); s.explicit_mask |= F::kModel; break;
    case PROP_VOICE: s.config.voice = str_or_empty(value); s.explicit_mask |= F::kVoice; break;
    case PROP_INSTRUCTIONS: s.config.instructions = str_or_empty(value); s.explicit_mask |= F::kInstructions; break;
    case PROP_API_SHAPE: s.shape = (ApiShape)g_value_get_enum(value); s.explicit_mask |= F::kShape; break;
    case PROP_AUTH_STYLE: s.auth = (AuthStyle)g_value_get_enum(value); s.explicit_mask |= F::kAuth; break;
    case PROP_TURN_DETECTION: td.type = (TurnDetectionType)g_value_get_enum(value); s.explicit_mask |= F::kTurnType; break;
    case PROP_VAD_THRESHOLD: td.threshold = g_value_get_double(value); s.explicit_mask |= F::kThreshold; break;
    case PROP_PREFIX_PADDING: td.prefix_padding_ms = g_value_get_int(value); s.explicit_mask |= F::kPrefixPadding; break;
    case PROP_SILENCE_DURATION: td.silence_duration_ms = g_value_get_int(value); s.explicit_mask |= F::kSilence; break;
    case PROP_EAGERNESS: td.eagerness = kEagerness[g_value_get_enum(value)]; s.explicit_mask |= F::kEagerness; break;
    case PROP_CREATE_RESPONSE: td.create_response = g_value_get_boolean(value); s.explicit_mask |= F::kCreateResponse; break;
    case PROP_INTERRUPT_RESPONSE: td.interrupt_response = g_value_get_boolean(value); s.explicit_mask |= F::kInterruptResponse; break;
    case PROP_TRANSCRIPTION_MODEL: s.config.transcription_model = str_or_empty(value); s.explicit_mask |= F::kTranscription; break;
    case PROP_TRANSCRIPTION_LANGUAGE: s.config.transcription_language = str_or_empty(value); s.explicit_mask |= F::kLanguage; break;
    case PROP_NOISE_REDUCTION: s.config.noise_reduction = kNoiseReduction[g_value_get_enum(value)]; s.explicit_mask |= F::kNoiseReduction; break;
    case PROP_TOOLS: {
      std::string tools = str_or_empty(value);
      if (!tools.empty()) {
        // Catch a malformed tools list here, where the user set it, not as a rejected session.
        JsonParser *parser = json_parser_new();
        bool ok = json_parser_load_from_data(parser, tools.c_str(), (gssize)tools.size(), nullptr) &&
                  JSON_NODE_HOLDS_ARRAY(json_parser_get_root(parser));
        g_object_unref(parser);
        if (!ok) {
          GST_ERROR("'tools' must be a JSON array of tool objects; ignoring it");
          return true;
        }
      }
      s.config.tools_json = tools;
      s.explicit_mask |= F::kTools;
      break;
    }
    case PROP_TOOL_CHOICE: s.config.tool_choice = str_or_empty(value); s.explicit_mask |= F::kToolChoice; break;
    case PROP_GREETING: s.greeting = str_or_empty(value); s.explicit_mask |= F::kGreeting; break;
    case PROP_KEEPALIVE: s.keepalive_s = g_value_get_int(value); s.explicit_mask |= F::kKeepalive; break;
    case PROP_MAX_RECONNECTS: s.max_reconnect_attempts = g_value_get_int(value); s.explicit_mask |= F::kMaxReconnects; break;
    case PROP_MAX_QUEUE: s.max_queue_ms = g_value_get_int(value); s.explicit_mask |= F::kMaxQueue; break;
    case PROP_RENEW_MARGIN: s.renew_margin_s = g_value_get_int(value); s.explicit_mask |= F::kRenewMargin; break;
    default: return false;
  }
  return true;
}

bool common_get_property(ElementCommon *c, guint prop_id, GValue *value, guint first) {
  if (prop_id < first || prop_id >= first + N_COMMON_PROPS) return false;
  if (prop_id - first == PROP_STATS) {
    auto session = common_session(c);
    SessionStats st = session ? session->stats() : SessionStats{};
    g_value_take_boxed(
        value,
        gst_structure_new("openairealtime-stats", "ready", G_TYPE_BOOLEAN, st.ready, "input-ms-appended", G_TYPE_UINT64,
                          (guint64)bytes_to_ms(st.input_bytes_appended), "input-ms-dropped", G_TYPE_UINT64,
                          (guint64)bytes_to_ms(st.input_bytes_dropped), "input-ms-replayed", G_TYPE_UINT64,
                          (guint64)bytes_to_ms(st.input_bytes_replayed), "output-ms-received", G_TYPE_UINT64,
                          (guint64)bytes_to_ms(st.output_bytes_received), "output-ms-played", G_TYPE_UINT64,
                          (guint64)bytes_to_ms(st.output_bytes_played), "output-ms-dropped", G_TYPE_UINT64,
                          (guint64)bytes_to_ms(st.output_bytes_dropped), "barge-ins", G_TYPE_UINT64, st.barge_ins,
                          "responses", G_TYPE_UINT64, st.responses, "input-tokens", G_TYPE_UINT64, st.input_tokens,
                          "output-tokens", G_TYPE_UINT64, st.output_tokens, "underruns", G_TYPE_UINT64, st.underruns,
                          "reconnects", G_TYPE_UINT64, st.reconnects, "errors", G_TYPE_UINT64, st.errors,
                          "last-append-latency-ms", G_TYPE_DOUBLE, st.last_append_latency_ms, nullptr));
    return true;
  }
  std::lock_guard<std::mutex> lock(c->lock);
  const SessionSettings &s = c->settings;
  const TurnDetection &td = s.config.turn_detection;
  switch (prop_id - first) {
    case PROP_SESSION: g_value_set_string(value, c->session_name.c_str()); break;
    case PROP_URL: g_value_set_string(value, s.url.c_str()); break;
    case PROP_API_KEY: g_value_set_string(value, nullptr); break;  // write-only
    case PROP_MODEL: g_value_set_string(value, s.model.c_str()); break;
    case PROP_VOICE: g_value_set_string(value, s.config.voice.c_str()); break;
    case PROP_INSTRUCTIONS: g_value_set_string(value, s.config.instructions.c_str()); break;
    case PROP_API_SHAPE: g_value_set_enum(value, (gint)s.shape); break;
    case PROP_AUTH_STYLE: g_value_set_enum(value, (gint)s.auth); break;
    case PROP_TURN_DETECTION: g_value_set_enum(value, (gint)td.type); break;
    case PROP_VAD_THRESHOLD: g_value_set_double(value, td.threshold); break;
    case PROP_PREFIX_PADDING: g_value_set_int(value, td.prefix_padding_ms); break;
    case PROP_SILENCE_DURATION: g_value_set_int(value, td.silence_duration_ms); break;
    case PROP_EAGERNESS: g_value_set_enum(value, index_of(kEagerness, 4, td.eagerness)); break;
    case PROP_CREATE_RESPONSE: g_value_set_boolean(value, td.create_response); break;
    case PROP_INTERRUPT_RESPONSE: g_value_set_boolean(value, td.interrupt_response); break;
    case PROP_TRANSCRIPTION_MODEL: g_value_set_string(value, s.config.transcription_model.c_str()); break;
    case PROP_TRANSCRIPTION_LANGUAGE: g_value_set_string(value, s.config.transcription_language.c_str()); break;
    case PROP_NOISE_REDUCTION: g_value_set_enum(value, index_of(kNoiseReduction, 3, s.config.noise_reduction)); break;
    case PROP_TOOLS: g_value_set_string(value, s.config.tools_json.c_str()); break;
    case PROP_TOOL_CHOICE: g_value_set_string(value, s.config.tool_choice.c_str()); break;
    case PROP_GREETING: g_value_set_string(value, s.greeting.c_str()); break;
    case PROP_KEEPALIVE: g_value_set_int(value, s.keepalive_s); break;
    case PROP_MAX_RECONNECTS: g_value_set_int(value, s.max_reconnect_attempts); break;
    case PROP_MAX_QUEUE: g_value_set_int(value, s.max_queue_ms); break;
    case PROP_RENEW_MARGIN: g_value_set_int(value, s.renew_margin_s); break;
    default: return false;
  }
  return true;
}

bool common_start(GstElement *element, ElementCommon *c, bool prefer_for_messages) {
  std::string name;
  SessionSettings settings;
  {
    std::lock_guard<std::mutex> lock(c->lock);
    name = c->session_name;
    settings = c->settings;
  }
  auto session = Session::acquire(name);
  session->attach(element, settings, prefer_for_messages);
  std::lock_guard<std::mutex> lock(c->lock);
  c->session = session;
  GST_DEBUG_OBJECT(element, "attached to session '%s'", name.c_str());
  return true;
}

void common_stop(GstElement *element, ElementCommon *c) {
  std::shared_ptr<Session> session;
  {
    std::lock_guard<std::mutex> lock(c->lock);
    session.swap(c->session);
  }
  if (!session) return;
  session->detach(element);
  Session::release(session);
}

std::shared_ptr<Session> common_session(ElementCommon *c) {
  if (!c) return nullptr;
  std::lock_guard<std::mutex> lock(c->lock);
  return c->session;
}

}  // namespace realtime
