// Checks shared by the GstHarness tests of openairealtimesink and openairealtimesrc: both elements
// carry the same session properties (openairealtime-common.cpp), so both must pass the same
// round-trip, default-value, write-only and validation checks.
#pragma once

#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>

#include <string>
#include <vector>

#include "openairealtimesink.h"
#include "openairealtimesrc.h"

namespace element_checks {

// The exact caps of both pads (CONTRACT.md §7).
inline const char *kCaps = "audio/x-raw,format=S16LE,rate=24000,channels=1,layout=interleaved";

// A WebSocket URL on which nothing listens (connection refused at once): harness tests must not
// depend on the network, and the elements try to connect as soon as they start.
inline const char *kDeadUrl = "ws://127.0.0.1:9/v1/realtime";

inline void register_elements() {
  // Statically, from the elements library (not from the plugin .so on GST_PLUGIN_PATH).
  // Runs in the suite function, outside any test: check's fail_unless is not usable there.
  if (!GST_ELEMENT_REGISTER(openairealtimesink, nullptr) || !GST_ELEMENT_REGISTER(openairealtimesrc, nullptr))
    g_error("cannot register openairealtimesink/openairealtimesrc");
}

struct PropCase {
  const char *name;
  const char *value;  // as gst-launch-1.0 would write it
};

// One non-default value for every read-write session property.
inline std::vector<PropCase> property_cases() {
  return {
      {"session", "call-42"},
      {"url", "wss://example.invalid/openai/v1/realtime?deployment=x"},
      {"model", "gpt-realtime-mini"},
      {"voice", "cedar"},
      {"instructions", "You are a test. Say only beep."},
      {"api-shape", "beta"},
      {"auth-style", "api-key"},
      {"turn-detection", "semantic-vad"},
      {"vad-threshold", "0.75"},
      {"prefix-padding-ms", "120"},
      {"silence-duration-ms", "650"},
      {"eagerness", "high"},
      {"create-response", "false"},
      {"interrupt-response", "false"},
      {"transcription-model", "whisper-1"},
      {"transcription-language", "de"},
      {"noise-reduction", "far-field"},
      {"tools", "[{\"type\":\"function\",\"name\":\"end_call\",\"description\":\"Hang up\",\"parameters\":{}}]"},
      {"tool-choice", "required"},
      {"greeting", "Hello, how can I help?"},
      {"keepalive-interval", "7"},
      {"max-reconnect-attempts", "3"},
      {"max-queue-time", "5000"},
      {"renew-margin", "30"},
  };
}

// Reads a property and compares it with the value parsed from text for the property's type.
inline void check_property_equals(GstElement *e, const char *name, const char *text) {
  GParamSpec *spec = g_object_class_find_property(G_OBJECT_GET_CLASS(e), name);
  fail_unless(spec != nullptr, "no property %s", name);
  fail_unless(spec->flags & G_PARAM_READABLE, "%s not readable", name);
  GValue expected = G_VALUE_INIT, actual = G_VALUE_INIT;
  g_value_init(&expected, spec->value_type);
  g_value_init(&actual, spec->value_type);
  fail_unless(gst_value_deserialize(&expected, text), "cannot parse '%s' for %s", text, name);
  g_object_get_property(G_OBJECT(e), name, &actual);
  gchar *got = gst_value_serialize(&actual);
  fail_unless(gst_value_compare(&expected, &actual) == GST_VALUE_EQUAL, "%s: set '%s', read back '%s'", name, text,
              got ? got : "(null)");
  g_free(got);
  g_value_unset(&expected);
  g_value_unset(&actual);
}

// Every session property round-trips: what is set (as gst-launch would) is read back.
inline void check_property_round_trip(const char *factory) {
  GstElement *e = gst_element_factory_make(factory, nullptr);
  fail_unless(e != nullptr);
  for (const PropCase &c : property_cases()) {
    gst_util_set_object_arg(G_OBJECT(e), c.name, c.value);
    check_property_equals(e, c.name, c.value);
  }
  // Each value is independent: re-read all after setting all.
  for (const PropCase &c : property_cases()) check_property_equals(e, c.name, c.value);
  // An empty session name falls back to "default".
  g_object_set(e, "session", "", nullptr);
  check_property_equals(e, "session", "default");
  gst_object_unref(e);
}

// Defaults: the documented ones (CONTRACT.md §2, §7; openairealtime-common.cpp).
inline void check_defaults(const char *factory) {
  GstElement *e = gst_element_factory_make(factory, nullptr);
  fail_unless(e != nullptr);
  check_property_equals(e, "session", "default");
  check_property_equals(e, "url", "wss://api.openai.com/v1/realtime");
  check_property_equals(e, "model", "gpt-realtime");
  check_property_equals(e, "voice", "marin");
  check_property_equals(e, "api-shape", "ga");
  check_property_equals(e, "auth-style", "bearer");
  check_property_equals(e, "turn-detection", "server-vad");
  check_property_equals(e, "create-response", "true");
  check_property_equals(e, "interrupt-response", "true");
  gchar *tools = nullptr, *greeting = nullptr;
  g_object_get(e, "tools", &tools, "greeting", &greeting, nullptr);
  fail_unless(tools == nullptr || *tools == '\0', "tools default '%s'", tools);
  fail_unless(greeting == nullptr || *greeting == '\0', "greeting default '%s'", greeting);
  g_free(tools);
  g_free(greeting);
  gst_object_unref(e);
}

// api-key is write-only (never printed by gst-launch -v or property dumps) and can be set.
inline void check_api_key_write_only(const char *factory) {
  GstElement *e = gst_element_factory_make(factory, nullptr);
  GParamSpec *spec = g_object_class_find_property(G_OBJECT_GET_CLASS(e), "api-key");
  fail_unless(spec != nullptr);
  fail_unless(spec->flags & G_PARAM_WRITABLE, "api-key must be writable");
  fail_if(spec->flags & G_PARAM_READABLE, "api-key must not be readable");
  fail_unless(spec->value_type == G_TYPE_STRING);
  g_object_set(e, "api-key", "sk-test-secret", nullptr);
  // And no other property echoes it.
  guint n = 0;
  GParamSpec **specs = g_object_class_list_properties(G_OBJECT_GET_CLASS(e), &n);
  for (guint i = 0; i < n; i++) {
    if (!(specs[i]->flags & G_PARAM_READABLE) || specs[i]->value_type != G_TYPE_STRING) continue;
    gchar *v = nullptr;
    g_object_get(e, specs[i]->name, &v, nullptr);
    fail_if(v && strstr(v, "sk-test-secret"), "property %s leaks the key", specs[i]->name);
    g_free(v);
  }
  g_free(specs);
  gst_object_unref(e);
}

// tools accepts a JSON array (or empty) and rejects anything else, keeping the previous value.
inline void check_tools_validation(const char *factory) {
  GstElement *e = gst_element_factory_make(factory, nullptr);
  const char *good = "[{\"type\":\"function\",\"name\":\"get_weather\",\"parameters\":{\"type\":\"object\"}}]";
  g_object_set(e, "tools", good, nullptr);
  check_property_equals(e, "tools", good);
  for (const char *bad : {"{\"type\":\"function\",\"name\":\"x\"}", "\"just a string\"", "42", "not json at all",
                          "[{\"type\":\"function\"", "null"}) {
    g_object_set(e, "tools", bad, nullptr);
    gchar *v = nullptr;
    g_object_get(e, "tools", &v, nullptr);
    fail_unless(g_strcmp0(v, good) == 0, "tools accepted non-array '%s' (now '%s')", bad, v);
    g_free(v);
  }
  g_object_set(e, "tools", "[]", nullptr);
  check_property_equals(e, "tools", "[]");
  g_object_set(e, "tools", "", nullptr);
  gchar *v = nullptr;
  g_object_get(e, "tools", &v, nullptr);
  fail_unless(v == nullptr || *v == '\0', "empty tools not accepted: '%s'", v);
  g_free(v);
  gst_object_unref(e);
}

// The stats property: a read-only GstStructure with the documented counters.
inline void check_stats_property(GstElement *e) {
  GParamSpec *spec = g_object_class_find_property(G_OBJECT_GET_CLASS(e), "stats");
  fail_unless(spec != nullptr);
  fail_unless(spec->value_type == GST_TYPE_STRUCTURE);
  fail_if(spec->flags & G_PARAM_WRITABLE, "stats must be read-only");
  GstStructure *s = nullptr;
  g_object_get(e, "stats", &s, nullptr);
  fail_unless(s != nullptr);
  for (const char *f : {"ready", "input-ms-appended", "input-ms-dropped", "output-ms-received", "output-ms-played",
                        "output-ms-dropped", "barge-ins", "responses", "input-tokens", "output-tokens", "underruns",
                        "reconnects", "errors", "last-append-latency-ms", "input-ms-replayed"})
    fail_unless(gst_structure_has_field(s, f), "stats lacks %s", f);
  gst_structure_free(s);
}

// The four action signals exist with the documented signatures.
inline void check_action_signals(const char *factory) {
  GType type = g_type_from_name(factory == std::string("openairealtimesink") ? "GstOpenAIRealtimeSink"
                                                                             : "GstOpenAIRealtimeSrc");
  fail_unless(type != 0);
  struct Sig {
    const char *name;
    guint n_params;
  };
  for (Sig s : {Sig{"function-call-output", 2}, Sig{"add-text-item", 2}, Sig{"request-response", 1},
                Sig{"interrupt", 0}}) {
    guint id = g_signal_lookup(s.name, type);
    fail_unless(id != 0, "no signal %s", s.name);
    GSignalQuery q;
    g_signal_query(id, &q);
    fail_unless(q.signal_flags & G_SIGNAL_ACTION, "%s is not an action", s.name);
    fail_unless_equals_int(q.n_params, s.n_params);
    fail_unless(q.return_type == G_TYPE_BOOLEAN);
  }
  // Without a session (element not started) the actions report failure instead of crashing.
  GstElement *e = gst_element_factory_make(factory, nullptr);
  gboolean ok = TRUE;
  g_signal_emit_by_name(e, "interrupt", &ok);
  fail_if(ok);
  ok = TRUE;
  g_signal_emit_by_name(e, "function-call-output", "call_1", "{}", &ok);
  fail_if(ok);
  gst_object_unref(e);
}

}  // namespace element_checks
