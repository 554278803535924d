// The session's conversation with the fake Realtime server beyond audio:
//  - a session.update the server rejects is fatal: openairealtime-error with fatal=true and a
//    pipeline ERROR (e) — for a voice the server does not know, a tools list it refuses, and the
//    beta shape against a GA server;
//  - a refused API key is fatal the same way and is not retried;
//  - the handshake carries the key (Bearer) and the model (?model=);
//  - the tool-call round trip: function call on the bus → function-call-output → the server
//    records it → the next reply plays (g).
#include <gst/check/gstcheck.h>

#include <atomic>
#include <cmath>
#include <cstring>

#include "realtime-fixture.h"

using namespace rt_fixture;

namespace {

// Runs a pipeline whose session the server rejects; returns the error message, after checking that
// it is fatal, that the pipeline got an ERROR, and that the session gave up (no reconnect loop).
gst_test::BusRecord expect_fatal(fake_realtime::Server &server, const std::string &props, const char *code) {
  Pipeline p({unique_session("reject"), server.url(), true, true, props});
  p.play();
  auto err = p.bus->wait_for_match("openairealtime-error", [](const gst_test::BusRecord &r) { return r.boolean("fatal"); },
                                   5000);
  fail_unless(err.has_value(), "no fatal openairealtime-error; bus:\n%s", p.bus->dump().c_str());
  fail_unless_str_eq(err->str("code").c_str(), code);
  fail_unless(!err->str("message").empty());
  fail_if(err->boolean("benign"));
  auto error = p.expect("error", 2000);  // the pipeline ERROR (gst-launch stops on it)
  fail_unless(error.error_text.find(code) != std::string::npos, "ERROR does not name %s: %s", code,
              error.error_text.c_str());
  // Never ready, and no retry with the same settings.
  gst_test::sleep_ms(1000);
  fail_unless_equals_int(p.bus->count("openairealtime-session-ready"), 0);
  fail_unless_equals_int(p.bus->count("openairealtime-reconnecting"), 0);
  fail_unless(server.connection_count() <= 1, "%d connections", server.connection_count());
  return *err;
}

}  // namespace

// (e) A voice the server does not offer: session.update is rejected with invalid_value.
GST_START_TEST(test_rejected_voice_is_fatal)
{
  auto server = start_server();
  expect_fatal(*server, "voice=robotic-overlord", "invalid_value");
  auto errors = server->errors_sent();
  fail_unless(std::find(errors.begin(), errors.end(), "invalid_value") != errors.end());
  // The update was sent with that voice.
  auto updates = events_of_type(server->connection(0), "session.update");
  fail_unless_equals_int(updates.size(), 1);
  fail_unless_str_eq(json_path_string(updates[0], "session.audio.output.voice").c_str(), "robotic-overlord");
}
GST_END_TEST;

// (e) A tools list with a key the server does not accept (a JSON array, so the element takes it).
GST_START_TEST(test_rejected_tools_are_fatal)
{
  auto server = start_server();
  expect_fatal(*server,
               "tools=\"[{\\\"type\\\":\\\"function\\\",\\\"name\\\":\\\"f\\\",\\\"strict\\\":true}]\"",
               "unknown_parameter");
}
GST_END_TEST;

// (e) api-shape=beta against a GA server: error beta_api_shape_disabled and close 4000.
GST_START_TEST(test_beta_shape_against_ga_is_fatal)
{
  auto server = start_server();
  expect_fatal(*server, "api-shape=beta", "beta_api_shape_disabled");
  fail_unless_str_eq(server->connection(0).beta_header.c_str(), "realtime=v1");
}
GST_END_TEST;

// A refused key: HTTP 401 at the handshake, reported as fatal invalid_api_key, never retried.
GST_START_TEST(test_refused_key_is_fatal)
{
  fake_realtime::Config cfg;
  cfg.required_api_key = "sk-right";
  auto server = start_server(cfg);
  expect_fatal(*server, "api-key=sk-wrong", "invalid_api_key");
  auto rejected = server->rejected_handshakes();
  fail_unless_equals_int(rejected.size(), 1);
  fail_unless_str_eq(rejected[0].c_str(), "Bearer sk-wrong");
  fail_unless_equals_int(server->connection_count(), 0);
}
GST_END_TEST;

// The handshake: Authorization: Bearer <key>, ?model=<model>, no beta header; then a GA
// session.update with the configured voice, instructions and turn detection.
GST_START_TEST(test_handshake_and_session_update)
{
  fake_realtime::Config cfg;
  cfg.required_api_key = "sk-right";
  auto server = start_server(cfg);
  Pipeline p({unique_session("handshake"), server->url(), true, true,
              "api-key=sk-right model=gpt-realtime-mini voice=cedar instructions=\"Be brief.\" "
              "silence-duration-ms=450 vad-threshold=0.6"});
  p.play();
  p.wait_ready();
  auto log = server->connection(0);
  fail_unless_str_eq(log.authorization.c_str(), "Bearer sk-right");
  fail_unless_str_eq(log.model.c_str(), "gpt-realtime-mini");
  fail_unless(log.beta_header.empty());
  auto updates = events_of_type(log, "session.update");
  fail_unless_equals_int(updates.size(), 1);
  const std::string &u = updates[0];
  fail_unless_str_eq(json_path_string(u, "session.type").c_str(), "realtime");
  fail_unless_str_eq(json_path_string(u, "session.audio.output.voice").c_str(), "cedar");
  fail_unless_str_eq(json_path_string(u, "session.instructions").c_str(), "Be brief.");
  fail_unless_str_eq(json_path_string(u, "session.audio.input.turn_detection.type").c_str(), "server_vad");
  fail_unless_equals_int(json_path_int(u, "session.audio.input.turn_detection.silence_duration_ms"), 450);
  fail_unless_str_eq(json_path_string(u, "session.audio.input.format.type").c_str(), "audio/pcm");
  fail_unless_equals_int(json_path_int(u, "session.audio.input.format.rate"), 24000);
  fail_unless(server->errors_sent().empty(), "the server sent errors: %s", p.bus->dump().c_str());
  fail_if(p.bus->has_error(), "%s", p.bus->errors_text().c_str());
  fail_unless_equals_int(p.bus->count("openairealtime-error"), 0);
}
GST_END_TEST;

// (g) Tool call round trip. The model calls get_weather; the application sees it on the bus with its
// name, call id and arguments, answers with "function-call-output", the server records the output,
// and the session asks for the next response, whose audio plays.
GST_START_TEST(test_tool_call_round_trip)
{
  fake_realtime::Config cfg;
  cfg.tool_calls = {{"get_weather", "{\"city\":\"Paris\"}"}};
  cfg.reply_duration_ms = 600;
  cfg.reply_tone_hz = 660;
  auto server = start_server(cfg);
  const char *tools =
      "tools=\"[{\\\"type\\\":\\\"function\\\",\\\"name\\\":\\\"get_weather\\\",\\\"description\\\":\\\"Weather "
      "now\\\",\\\"parameters\\\":{\\\"type\\\":\\\"object\\\",\\\"properties\\\":{\\\"city\\\":{\\\"type\\\":"
      "\\\"string\\\"}}}}]\" tool-choice=auto";
  Pipeline p({unique_session("tools"), server->url(), true, true, tools});
  p.play();
  p.wait_ready();
  // The tools went out in the session.update and were accepted.
  auto updates = events_of_type(server->connection(0), "session.update");
  fail_unless_str_eq(json_path_string(updates[0], "session.tools.0.name").c_str(), "get_weather");
  fail_unless(server->errors_sent().empty());

  server->start_response();
  auto call = p.expect("openairealtime-function-call", 3000);
  fail_unless_str_eq(call.str("name").c_str(), "get_weather");
  fail_unless_str_eq(call.str("arguments").c_str(), "{\"city\":\"Paris\"}");
  const std::string call_id = call.str("call-id");
  fail_unless(!call_id.empty());
  // Nothing plays for a tool-only response, and the session does not ask for more by itself.
  p.expect("openairealtime-response-done", 2000);
  gst_test::sleep_ms(300);
  fail_unless_equals_int(server->responses_started(), 1);
  fail_unless_equals_int(p.out->nonzero_count(), 0);

  gboolean ok = FALSE;
  g_signal_emit_by_name(p.rtsrc, "function-call-output", call_id.c_str(), "{\"temp_c\":21}", &ok);
  fail_unless(ok);
  fail_unless(server->wait_for([&] { return !server->function_outputs().empty(); }, 2000));
  auto outputs = server->function_outputs();
  fail_unless_equals_int(outputs.size(), 1);
  fail_unless_str_eq(outputs[0].c_str(), (call_id + "={\"temp_c\":21}").c_str());
  // The follow-up response plays.
  p.expect("openairealtime-playback-started", 3000);
  fail_unless(p.out->wait_until(
                  [](const std::vector<int16_t> &s) {
                    auto segs = audio_test::find_segments(s, kRate, -50.0);
                    return !segs.empty() && s.size() - segs.back().end > audio_test::ms_to_samples(200);
                  },
                  3000),
              "follow-up reply did not play: %s", analyse(*p.out).describe().c_str());
  p.stop();
  Playback pb = analyse(*p.out);
  fail_unless_equals_int(pb.segments.size(), 1);
  check_tone(pb, pb.segments[0], 660, 600, 20);
  fail_unless_equals_int(server->responses_started(), 2);
  // One function call message (dispatched once although two events describe the call), one output,
  // one response.create, after the output.
  fail_unless_equals_int(p.bus->count("openairealtime-function-call"), 1);
  auto log = server->connection(0);
  fail_unless_equals_int(events_of_type(log, "response.create").size(), 1);
  int output_at = -1;
  for (size_t i = 0; i < log.types.size(); i++)
    if (log.types[i] == "conversation.item.create" &&
        json_path_string(log.events[i], "item.type") == "function_call_output")
      output_at = (int)i;
  fail_unless(output_at >= 0 && first_index(log, "response.create") > output_at);
  fail_unless(server->errors_sent().empty(), "errors: %s", p.bus->dump().c_str());
}
GST_END_TEST;

// add-text-item and request-response: the application injects a message and asks for a reply with
// per-response instructions.
GST_START_TEST(test_text_item_and_request_response)
{
  fake_realtime::Config cfg;
  cfg.reply_duration_ms = 400;
  auto server = start_server(cfg);
  Pipeline p({unique_session("text"), server->url(), false, true});
  p.play();
  p.wait_ready();
  gboolean ok = FALSE;
  g_signal_emit_by_name(p.rtsrc, "add-text-item", "user", "What is the capital of France?", &ok);
  fail_unless(ok);
  ok = TRUE;
  g_signal_emit_by_name(p.rtsrc, "add-text-item", "narrator", "not a role", &ok);
  fail_if(ok, "an unknown role was accepted");
  g_signal_emit_by_name(p.rtsrc, "request-response", "Answer in one word.", &ok);
  fail_unless(ok);
  p.expect("openairealtime-response-done", 3000);
  auto items = created_text_items(server->connection(0));
  fail_unless_equals_int(items.size(), 1);
  fail_unless_str_eq(items[0].c_str(), "user: What is the capital of France?");
  auto instructions = server->response_instructions();
  fail_unless_equals_int(instructions.size(), 1);
  fail_unless_str_eq(instructions[0].c_str(), "Answer in one word.");
  fail_unless(server->errors_sent().empty());
}
GST_END_TEST;

// Regression: the session used to connect at the first attach, with the first element's settings
// only; the src's url/api-key were used only after a failed attempt at the default URL.
//
// Either element of a session may carry its settings (openairealtime-common.h: "both elements take
// every session setting, so either one can configure the shared connection"). gst-launch starts
// sinks before sources, so in `… ! openairealtimesink session=s   openairealtimesrc session=s url=…
// api-key=… ! …` the sink, without settings, attaches first. The first connection must still go to
// the configured URL, with the configured key and voice: no attempt at the default URL, no
// reconnect, no handshake without the key.
static void check_settings_on_one_element(bool on_src) {
  fake_realtime::Config cfg;
  cfg.required_api_key = "sk-one";
  auto server = start_server(cfg);
  Options o;
  o.session = unique_session(on_src ? "src-settings" : "sink-settings");
  o.url = server->url();
  o.props = "api-key=sk-one voice=cedar";
  o.common_on_sink = !on_src;
  o.common_on_src = on_src;
  Pipeline p(o);
  // Both elements start in the same set_state(PLAYING), the sink first (as in gst-launch). Hold that
  // state change for 100 ms right after the sink started, so the outcome does not depend on how
  // fast the hub thread runs: the src must still be able to configure the connection.
  GstElement *first = p.rtsink;
  p.bus->set_hook([first](GstMessage *m) {
    if (GST_MESSAGE_TYPE(m) != GST_MESSAGE_STATE_CHANGED || GST_MESSAGE_SRC(m) != GST_OBJECT(first)) return;
    GstState old_state, new_state;
    gst_message_parse_state_changed(m, &old_state, &new_state, nullptr);
    if (old_state == GST_STATE_READY && new_state == GST_STATE_PAUSED) g_usleep(100 * 1000);
  });
  p.play();
  auto ready = p.bus->wait_for("openairealtime-session-ready", 5000);
  fail_unless(ready.has_value(), "never ready; bus:\n%s", p.bus->dump().c_str());
  fail_unless(p.bus->count("openairealtime-reconnecting") == 0,
              "the first connection did not use the src's settings (an attempt failed first). Bus:\n%s",
              p.bus->dump().c_str());
  fail_unless_equals_int(p.bus->count("openairealtime-error"), 0);
  fail_unless(server->rejected_handshakes().empty(), "a handshake without the key: '%s'",
              server->rejected_handshakes()[0].c_str());
  fail_unless_equals_int(server->connection_count(), 1);
  auto updates = events_of_type(server->connection(0), "session.update");
  fail_unless_equals_int(updates.size(), 1);
  fail_unless_str_eq(json_path_string(updates[0], "session.audio.output.voice"), "cedar");
}

GST_START_TEST(test_settings_on_src_only) { check_settings_on_one_element(true); }
GST_END_TEST;

GST_START_TEST(test_settings_on_sink_only) { check_settings_on_one_element(false); }
GST_END_TEST;

// The legacy beta shape against a beta server (old Azure deployments): the OpenAI-Beta header, the
// beta session.update, beta event names (response.audio.delta) — and the reply plays. With
// auth-style=api-key the key goes in Azure's api-key header instead of Authorization.
GST_START_TEST(test_beta_shape_and_api_key_header)
{
  fake_realtime::Config cfg;
  cfg.shape = "beta";
  cfg.required_api_key = "azure-key";
  cfg.reply_duration_ms = 500;
  cfg.reply_tone_hz = 480;
  auto server = start_server(cfg);
  Pipeline p({unique_session("beta"), server->url(), true, true,
              "api-shape=beta auth-style=api-key api-key=azure-key voice=alloy"});
  p.play();
  p.wait_ready();
  auto log = server->connection(0);
  fail_unless_str_eq(log.beta_header, "realtime=v1");
  fail_unless_str_eq(log.authorization, "api-key: azure-key");
  auto updates = events_of_type(log, "session.update");
  fail_unless_equals_int(updates.size(), 1);
  fail_unless_str_eq(json_path_string(updates[0], "session.voice"), "alloy");
  fail_unless_str_eq(json_path_string(updates[0], "session.type"), "");
  server->start_response();
  fail_unless(p.out->wait_until(
                  [](const std::vector<int16_t> &s) {
                    auto segs = audio_test::find_segments(s, kRate, -50.0);
                    return !segs.empty() && s.size() - segs.back().end > audio_test::ms_to_samples(200);
                  },
                  3000),
              "no reply: %s", p.bus->dump().c_str());
  p.stop();
  Playback pb = analyse(*p.out);
  fail_unless_equals_int(pb.segments.size(), 1);
  check_tone(pb, pb.segments[0], 480, 500, 20);
  fail_unless(server->errors_sent().empty());
}
GST_END_TEST;

// CONTRACT.md §6: secrets never appear in logs. With every debug category at its most verbose, a
// whole session (connect, update, appends, a reply, a reconnect) never logs the API key.
static std::atomic<int> g_key_leaks{0};
static std::atomic<int> g_log_lines{0};
static void find_key_in_log(GstDebugCategory *category, GstDebugLevel, const gchar *file, const gchar *function,
                            gint line, GObject *, GstDebugMessage *message, gpointer) {
  g_log_lines++;
  const gchar *text = gst_debug_message_get(message);
  if (text && strstr(text, "sk-very-secret-4711")) {
    if (g_key_leaks++ < 5)
      g_printerr("KEY IN LOG: %s %s:%d %s(): %.300s\n", gst_debug_category_get_name(category), file, line, function,
                 text);
  }
}

GST_START_TEST(test_api_key_never_logged)
{
  fake_realtime::Config cfg;
  cfg.required_api_key = "sk-very-secret-4711";
  cfg.reply_duration_ms = 300;
  auto server = start_server(cfg);
  {
    // The key is set as a property, not in a pipeline description: GStreamer's own parser logs
    // descriptions verbatim (GST_PIPELINE:5), which is not the plugin's doing.
    Pipeline p({unique_session("secret"), server->url(), true, true});
    g_object_set(p.rtsink, "api-key", "sk-very-secret-4711", nullptr);
    g_object_set(p.rtsrc, "api-key", "sk-very-secret-4711", nullptr);
    gst_debug_remove_log_function(gst_debug_log_default);
    gst_debug_add_log_function(find_key_in_log, nullptr, nullptr);
    gst_debug_set_active(TRUE);
    gst_debug_set_default_threshold(GST_LEVEL_MEMDUMP);
    p.play();
    p.wait_ready();
    p.push(audio_test::make_tone(300, 200, -12.0));
    server->start_response();
    p.expect("openairealtime-response-done", 3000);
    server->drop_connections();
    p.expect("openairealtime-reconnected", 5000);
    p.stop();
  }
  gst_debug_set_default_threshold(GST_LEVEL_NONE);
  gst_debug_remove_log_function(find_key_in_log);
  fail_unless(g_log_lines > 100, "only %d debug lines: the check saw nothing", g_log_lines.load());
  fail_unless_equals_int(g_key_leaks.load(), 0);
  fail_unless_equals_int(server->connection_count(), 2);
}
GST_END_TEST;

static Suite *realtime_session_suite(void) {
  register_elements();
  Suite *s = suite_create("realtime-session");
  TCase *tc = tcase_create("fake-server");
  tcase_set_timeout(tc, 60);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_rejected_voice_is_fatal);
  tcase_add_test(tc, test_rejected_tools_are_fatal);
  tcase_add_test(tc, test_beta_shape_against_ga_is_fatal);
  tcase_add_test(tc, test_refused_key_is_fatal);
  tcase_add_test(tc, test_handshake_and_session_update);
  tcase_add_test(tc, test_tool_call_round_trip);
  tcase_add_test(tc, test_text_item_and_request_response);
  tcase_add_test(tc, test_settings_on_src_only);
  tcase_add_test(tc, test_settings_on_sink_only);
  tcase_add_test(tc, test_beta_shape_and_api_key_header);
  tcase_add_test(tc, test_api_key_never_logged);
  return s;
}

GST_CHECK_MAIN(realtime_session);
