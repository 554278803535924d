// Unit tests of the agent features, linked against the real vb_core code: the settings, the
// call-config hook (reply parsing, fallbacks on timeout / bad JSON / wrong types / errors), the tool
// list, the tool webhook client, the end_call hang-up logic, and transcripts (document, usage sums,
// cost arithmetic, atomic files, sanitised names, the POST). The operator's services are a
// SoupServer on loopback (agent-test-support.h); calls are bare vb::Call objects (no pipeline).
#include <gst/check/gstcheck.h>

#include <glib/gstdio.h>
#include <sys/stat.h>

#include <cmath>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "agent-test-support.h"
#include "call-config-hook.h"
#include "call.h"
#include "check-strings.h"
#include "config.h"
#include "http-post.h"
#include "tools.h"
#include "transcript.h"

using namespace vb;
using agent_test::FakeService;
using agent_test::HttpReplySpec;
using agent_test::Json;

namespace {

bool contains(const std::string &haystack, const std::string &needle) {
  return haystack.find(needle) != std::string::npos;
}

// Replies json-glib would recurse 100 000 levels into, which overflows the stack unless they are
// refused first: plain nesting, and nesting behind the non-standard syntax json-glib accepts (a
// comment or a single-quoted string holding a '"', which hides brackets from a scan that knows only
// double-quoted strings). Each with what the refusal says.
struct HostileJson {
  std::string body;
  const char *why;
};
std::vector<HostileJson> hostile_json() {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  return {
      {deep, "nested deeper than 64 levels"},
      {R"({"voice":"cedar","x":)" + deep + "}", "nested deeper than 64 levels"},
      {R"({"voice":"cedar","x":/*"*/)" + deep + R"(/*"*/})", "not strict JSON"},
      {R"({"voice":"cedar","x":'"',"y":)" + deep + R"(,"z":'"'})", "not strict JSON"},
  };
}

struct TempDir {
  std::string path;
  TempDir() {
    char *p = g_dir_make_tmp("vb-agent-unit-XXXXXX", nullptr);
    fail_unless(p != nullptr);
    path = p;
    g_free(p);
  }
  std::vector<std::string> entries() const {
    std::vector<std::string> out;
    GDir *d = g_dir_open(path.c_str(), 0, nullptr);
    if (!d) return out;
    while (const char *name = g_dir_read_name(d)) out.push_back(name);
    g_dir_close(d);
    return out;
  }
  ~TempDir() {
    for (const auto &e : entries()) g_unlink((path + "/" + e).c_str());
    g_rmdir(path.c_str());
  }
};

ParseOutcome parse(const std::vector<std::string> &args, Config *config, std::string *message) {
  std::vector<std::string> storage = {"voicebridge"};
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char *> argv;
  for (auto &s : storage) argv.push_back(&s[0]);
  argv.push_back(nullptr);
  return parse_config((int)storage.size(), argv.data(), config, message);
}

// A call with no pipeline: enough for extensions (duration, options, end()).
std::shared_ptr<Call> bare_call(const Config &config, CallOptions options) {
  if (options.call_id.empty()) options.call_id = "call_unit";
  return std::make_shared<Call>(config, std::move(options), "ws://127.0.0.1:9/", nullptr);
}

GstStructure *response_done(gint64 in, gint64 out, gint64 in_audio, gint64 in_text, gint64 cached, gint64 out_audio,
                            gint64 out_text) {
  return gst_structure_new("openairealtime-response-done", "response-id", G_TYPE_STRING, "resp_1", "status",
                           G_TYPE_STRING, "completed", "reason", G_TYPE_STRING, "", "input-tokens", G_TYPE_INT64, in,
                           "output-tokens", G_TYPE_INT64, out, "input-audio-tokens", G_TYPE_INT64, in_audio,
                           "input-text-tokens", G_TYPE_INT64, in_text, "input-cached-tokens", G_TYPE_INT64, cached,
                           "output-audio-tokens", G_TYPE_INT64, out_audio, "output-text-tokens", G_TYPE_INT64,
                           out_text, nullptr);
}

// fetch_call_config against a service answering `spec`; returns what `done` got (fails if it never
// ran within the bound).
CallConfigOverrides fetch_with(const HttpReplySpec &spec, int timeout_ms, FakeService *service,
                               const CallConfigRequest &request = {}) {
  fail_unless(service->start());
  service->set_reply(spec);
  Config config;
  config.call_config_url = service->url("/call-config");
  config.call_config_timeout_ms = timeout_ms;
  bool called = false;
  CallConfigOverrides got;
  CallConfigRequest r = request;
  if (r.call_id.empty()) r.call_id = "call_hook";
  fetch_call_config(config, r, [&](CallConfigOverrides o) {
    fail_if(called, "done ran twice");
    called = true;
    got = std::move(o);
  });
  fail_if(called, "done ran inside fetch_call_config with a hook configured");
  fail_unless(agent_test::wait_until([&] { return called; }, timeout_ms + 3000), "the hook's done never ran");
  return got;
}

bool overrides_empty(const CallConfigOverrides &o) {
  return !o.instructions && !o.voice && !o.greeting && !o.tools_json && !o.metadata_json;
}

ToolResult invoke_with(const HttpReplySpec &spec, int timeout_ms, FakeService *service,
                       const ToolInvocation &invocation) {
  fail_unless(service->start());
  service->set_reply(spec);
  Config config;
  config.tool_webhook_url = service->url("/tools");
  config.tool_timeout_ms = timeout_ms;
  bool called = false;
  ToolResult got;
  invoke_tool_webhook(config, invocation, [&](const ToolResult &r) {
    fail_if(called, "done ran twice");
    called = true;
    got = r;
  });
  fail_unless(agent_test::wait_until([&] { return called; }, timeout_ms + 3000), "the webhook's done never ran");
  return got;
}

ToolInvocation weather_invocation() {
  ToolInvocation inv;
  inv.call_id = "call_42";
  inv.caller = "+15550001111";
  inv.metadata_json = R"({"tier":"gold"})";
  inv.tool = "get_weather";
  inv.tool_call_id = "call_abc";
  inv.arguments = R"({"city":"Paris"})";
  return inv;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Settings

GST_START_TEST(test_settings_defaults_and_values) {
  Config c;
  std::string msg;
  fail_unless(parse({}, &c, &msg) == ParseOutcome::Ok, "%s", msg.c_str());
  fail_unless(c.call_config_url.empty() && c.tool_webhook_url.empty() && c.transcript_dir.empty() &&
              c.transcript_url.empty());
  fail_unless_equals_int(c.call_config_timeout_ms, 1500);
  fail_unless_equals_int(c.tool_timeout_ms, 8000);
  fail_unless(c.price_audio_in == 32 && c.price_audio_out == 64 && c.price_text_in == 4 && c.price_text_out == 16 &&
              c.price_cached_in == 0.4);

  TempDir dir;
  g_setenv("VOICEBRIDGE_PRICE_CACHED_IN", "0.3", TRUE);
  g_setenv("VOICEBRIDGE_TOOL_TIMEOUT_MS", "250", TRUE);
  ParseOutcome outcome =
      parse({"--call-config-url", "http://127.0.0.1:1/hook", "--call-config-timeout-ms=900", "--tool-webhook-url",
             "https://tools.example/run", "--transcript-dir", dir.path, "--transcript-url", "http://127.0.0.1:2/t",
             "--price-audio-in", "10", "--price-audio-out=20", "--price-text-in", "0.6", "--price-text-out", "2.4"},
            &c, &msg);
  g_unsetenv("VOICEBRIDGE_PRICE_CACHED_IN");
  g_unsetenv("VOICEBRIDGE_TOOL_TIMEOUT_MS");
  fail_unless(outcome == ParseOutcome::Ok, "%s", msg.c_str());
  assert_str(c.call_config_url, "http://127.0.0.1:1/hook");
  fail_unless_equals_int(c.call_config_timeout_ms, 900);
  assert_str(c.tool_webhook_url, "https://tools.example/run");
  fail_unless_equals_int(c.tool_timeout_ms, 250);
  assert_str(c.transcript_dir, dir.path);
  assert_str(c.transcript_url, "http://127.0.0.1:2/t");
  fail_unless(c.price_audio_in == 10 && c.price_audio_out == 20 && c.price_text_in == 0.6 && c.price_text_out == 2.4 &&
              c.price_cached_in == 0.3);

  fail_unless(parse({"--help"}, &c, &msg) == ParseOutcome::Help);
  for (const char *name : {"--call-config-url", "--call-config-timeout-ms", "--tool-webhook-url", "--tool-timeout-ms",
                           "--transcript-dir", "--transcript-url", "--price-audio-in", "--price-audio-out",
                           "--price-text-in", "--price-text-out", "--price-cached-in", "VOICEBRIDGE_CALL_CONFIG_URL",
                           "VOICEBRIDGE_PRICE_CACHED_IN"})
    fail_unless(contains(msg, name), "--help does not mention %s", name);
}
GST_END_TEST;

GST_START_TEST(test_settings_errors_name_the_setting) {
  struct Case {
    std::vector<std::string> args;
    const char *named;
  };
  const Case cases[] = {
      {{"--call-config-url", "ftp://x/hook"}, "--call-config-url (VOICEBRIDGE_CALL_CONFIG_URL)"},
      {{"--call-config-url", "not a url"}, "--call-config-url"},
      {{"--call-config-timeout-ms", "0"}, "--call-config-timeout-ms (VOICEBRIDGE_CALL_CONFIG_TIMEOUT_MS)"},
      {{"--call-config-timeout-ms", "99999"}, "--call-config-timeout-ms"},
      {{"--tool-webhook-url", "ws://x/"}, "--tool-webhook-url (VOICEBRIDGE_TOOL_WEBHOOK_URL)"},
      {{"--tool-timeout-ms", "abc"}, "--tool-timeout-ms (VOICEBRIDGE_TOOL_TIMEOUT_MS)"},
      {{"--transcript-dir", "/nonexistent/vb-transcripts"}, "--transcript-dir (VOICEBRIDGE_TRANSCRIPT_DIR)"},
      {{"--transcript-url", "file:///tmp/x"}, "--transcript-url (VOICEBRIDGE_TRANSCRIPT_URL)"},
      {{"--price-audio-in", "-1"}, "--price-audio-in (VOICEBRIDGE_PRICE_AUDIO_IN)"},
      {{"--price-audio-out", "lots"}, "--price-audio-out (VOICEBRIDGE_PRICE_AUDIO_OUT)"},
      {{"--price-text-in", "nan"}, "--price-text-in (VOICEBRIDGE_PRICE_TEXT_IN)"},
      {{"--price-text-out", "1e9"}, "--price-text-out (VOICEBRIDGE_PRICE_TEXT_OUT)"},
      {{"--price-cached-in", "0.4x"}, "--price-cached-in (VOICEBRIDGE_PRICE_CACHED_IN)"},
  };
  for (const auto &c : cases) {
    Config config;
    std::string msg;
    fail_unless(parse(c.args, &config, &msg) == ParseOutcome::Error, "no error for %s %s", c.args[0].c_str(),
                c.args[1].c_str());
    fail_unless(contains(msg, c.named), "error does not name %s: %s", c.named, msg.c_str());
    fail_unless(!contains(msg, "\n"), "error is not one line: %s", msg.c_str());
  }
}
GST_END_TEST;

// ---------------------------------------------------------------------------------------------
// Call-config hook: reply parsing

GST_START_TEST(test_hook_reply_sets_everything) {
  CallConfigOverrides o;
  std::string reason;
  fail_unless(parse_call_config_reply(200,
                                      R"({"instructions":"Be Bob.","voice":"cedar","greeting":"Hi!",)"
                                      R"("tools":[{"type":"function","name":"get_weather","parameters":{"type":"object"}}],)"
                                      R"("metadata":{"tier":"gold"},"unknown":1})",
                                      &o, &reason),
              "%s", reason.c_str());
  fail_unless(o.instructions && o.voice && o.greeting && o.tools_json && o.metadata_json);
  assert_str(*o.instructions, "Be Bob.");
  assert_str(*o.voice, "cedar");
  assert_str(*o.greeting, "Hi!");
  fail_unless(contains(*o.tools_json, "get_weather"));
  Json meta(*o.metadata_json);
  assert_str(agent_test::str(meta.object(), "tier"), "gold");
  fail_unless(o.fallback_reason.empty());

  CallOptions options;
  options.instructions = "api instructions";
  options.voice = "marin";
  options.model = "gpt-realtime";
  options.metadata_json = R"({"from":"api"})";
  apply_overrides(o, &options);
  assert_str(options.instructions, "Be Bob.");
  assert_str(options.voice, "cedar");
  assert_str(options.greeting, "Hi!");
  assert_str(options.model, "gpt-realtime");  // not the hook's to set
  assert_str(options.metadata_json, *o.metadata_json);
  assert_str(options.tools_json, *o.tools_json);
}
GST_END_TEST;

GST_START_TEST(test_hook_reply_absent_and_null_keep_defaults) {
  for (const char *body : {"{}", R"({"instructions":null,"voice":null,"greeting":null,"tools":null,"metadata":null})"}) {
    CallConfigOverrides o;
    std::string reason;
    fail_unless(parse_call_config_reply(200, body, &o, &reason), "%s: %s", body, reason.c_str());
    fail_unless(overrides_empty(o), "%s set something", body);
    CallOptions options;
    options.instructions = "keep";
    apply_overrides(o, &options);
    assert_str(options.instructions, "keep");
  }
}
GST_END_TEST;

GST_START_TEST(test_hook_reply_rejections) {
  struct Case {
    int status;
    const char *body;
    const char *reason_has;
  };
  const Case cases[] = {
      {500, R"({"instructions":"x"})", "HTTP 500"},
      {204, "", "HTTP 204"},
      {201, R"({"voice":"cedar"})", "HTTP 201"},
      {200, "", "not JSON"},
      {200, "instructions: be nice", "not JSON"},
      {200, R"({"voice":"cedar")", "not JSON"},
      {200, R"(["voice","cedar"])", "not a JSON object"},
      {200, R"("cedar")", "not a JSON object"},
      {200, R"({"instructions":42})", "\"instructions\" is not a string"},
      {200, R"({"voice":true})", "\"voice\" is not a string"},
      {200, R"({"greeting":{"text":"hi"}})", "\"greeting\" is not a string"},
      {200, R"({"tools":{"name":"x"}})", "\"tools\" is not an array"},
      {200, R"({"tools":[{"type":"function"}]})", "entry 0 has no string \"name\""},
      {200, R"({"tools":[{"name":"ok"},{"name":"has space"}]})", "entry 1"},
      {200, R"({"tools":[{"type":"code_interpreter","name":"x"}]})", "\"type\""},
      {200, R"({"tools":[{"name":"x","parameters":"{}"}]})", "\"parameters\""},
      {200, R"({"tools":[{"name":"x","description":5}]})", "\"description\""},
      {200, R"({"tools":["get_weather"]})", "not an object"},
      {200, R"({"metadata":[1,2]})", "\"metadata\" is not an object"},
      {200, R"({"metadata":"tier=gold"})", "\"metadata\" is not an object"},
      // All or nothing: one bad member discards the good ones.
      {200, R"({"instructions":"Be Bob.","voice":7})", "\"voice\""},
  };
  for (const auto &c : cases) {
    CallConfigOverrides o;
    o.instructions = "stale";
    std::string reason;
    fail_if(parse_call_config_reply(c.status, c.body, &o, &reason), "accepted %d %s", c.status, c.body);
    fail_unless(contains(reason, c.reason_has), "reason for %d %s is '%s', expected '%s'", c.status, c.body,
                reason.c_str(), c.reason_has);
    fail_unless(overrides_empty(o), "a rejected reply left overrides (%s)", c.body);
  }
}
GST_END_TEST;

GST_START_TEST(test_hook_reply_hostile_json) {
  for (const auto &h : hostile_json()) {
    CallConfigOverrides o;
    std::string reason;
    fail_if(parse_call_config_reply(200, h.body, &o, &reason), "a hostile reply was accepted");
    fail_unless(contains(reason, h.why), "reason '%s' lacks '%s'", reason.c_str(), h.why);
    fail_unless(overrides_empty(o));
  }
  // json-glib's own error quotes the offending token; the reason (which is logged) does not.
  CallConfigOverrides o;
  std::string reason;
  fail_if(parse_call_config_reply(200, R"({"instructions":"secret plan" "voice":"x"})", &o, &reason));
  fail_unless(contains(reason, "not JSON") && !contains(reason, "secret"), "reason: %s", reason.c_str());
}
GST_END_TEST;

// ---------------------------------------------------------------------------------------------
// Call-config hook: over HTTP

GST_START_TEST(test_hook_fetch_round_trip) {
  FakeService service;
  CallConfigRequest request;
  request.call_id = "wacid.ABC==";
  request.caller = "+15551234567";
  request.caller_name = "Ann";
  request.direction = Direction::Outbound;
  request.metadata_json = R"({"campaign":"spring"})";
  CallConfigOverrides o = fetch_with({200, R"({"instructions":"Be Bob.","voice":"cedar"})", 0}, 1500, &service, request);
  fail_unless(o.fallback_reason.empty(), "%s", o.fallback_reason.c_str());
  fail_unless(o.instructions && *o.instructions == "Be Bob." && o.voice && *o.voice == "cedar");
  fail_unless(!o.greeting && !o.tools_json && !o.metadata_json);

  fail_unless_equals_int((int)service.requests().size(), 1);
  assert_str(service.requests()[0].path, "/call-config");
  Json body(service.requests()[0].body);
  JsonObject *b = body.object();
  fail_unless(b != nullptr, "the hook request is not a JSON object: %s", service.requests()[0].body.c_str());
  assert_str(agent_test::str(b, "call_id"), "wacid.ABC==");
  assert_str(agent_test::str(b, "caller"), "+15551234567");
  assert_str(agent_test::str(b, "caller_name"), "Ann");
  assert_str(agent_test::str(b, "direction"), "outbound");
  assert_str(agent_test::str(agent_test::obj(b, "metadata"), "campaign"), "spring");

  // Without metadata the member is left out; unknown caller fields are empty strings.
  std::string plain = call_config_request_body(CallConfigRequest{"c1", "", "", Direction::Inbound, ""});
  Json p(plain);
  fail_unless(p.object() && !agent_test::member(p.object(), "metadata"), "%s", plain.c_str());
  assert_str(agent_test::str(p.object(), "direction"), "inbound");
  assert_str(agent_test::str(p.object(), "caller", "missing"), "");
}
GST_END_TEST;

GST_START_TEST(test_hook_timeout_falls_back) {
  FakeService service;
  gint64 start = g_get_monotonic_time();
  // The service answers, but only after the call would have had to wait 5 s.
  CallConfigOverrides o = fetch_with({200, R"({"instructions":"too late"})", 5000}, 300, &service);
  double waited_ms = (g_get_monotonic_time() - start) / 1000.0;
  fail_unless(overrides_empty(o), "a late reply was used");
  fail_unless(contains(o.fallback_reason, "300 ms"), "reason: %s", o.fallback_reason.c_str());
  fail_unless(waited_ms >= 290 && waited_ms < 1500, "waited %.0f ms for a 300 ms timeout", waited_ms);
  fail_unless_equals_int((int)service.requests().size(), 1);
}
GST_END_TEST;

GST_START_TEST(test_hook_failures_fall_back) {
  struct Case {
    HttpReplySpec spec;
    const char *reason_has;
  };
  const Case cases[] = {
      {{200, "{not json", 0}, "not JSON"},
      {{503, R"({"instructions":"x"})", 0}, "HTTP 503"},
      {{200, R"({"instructions":["a","b"]})", 0}, "\"instructions\" is not a string"},
      {{200, R"({"tools":"get_weather"})", 0}, "\"tools\" is not an array"},
  };
  for (const auto &c : cases) {
    FakeService service;
    CallConfigOverrides o = fetch_with(c.spec, 1500, &service);
    fail_unless(overrides_empty(o), "overrides from a bad reply (%s)", c.spec.body.c_str());
    fail_unless(contains(o.fallback_reason, c.reason_has), "reason '%s' lacks '%s'", o.fallback_reason.c_str(),
                c.reason_has);
  }
}
GST_END_TEST;

GST_START_TEST(test_hook_hostile_reply_falls_back) {
  // Over HTTP, as the service meets it: the call keeps the defaults and the reason says why.
  for (const auto &h : hostile_json()) {
    FakeService service;
    CallConfigOverrides o = fetch_with({200, h.body, 0}, 3000, &service);
    fail_unless(overrides_empty(o), "overrides from a hostile reply");
    fail_unless(contains(o.fallback_reason, h.why), "reason '%s' lacks '%s'", o.fallback_reason.c_str(), h.why);
  }
}
GST_END_TEST;

GST_START_TEST(test_hook_unreachable_and_off) {
  // A port nobody listens on (the fake service's, after it is gone).
  std::string dead_url;
  {
    FakeService gone;
    fail_unless(gone.start());
    dead_url = gone.url("/hook");
  }
  Config config;
  config.call_config_url = dead_url;
  config.call_config_timeout_ms = 2000;
  bool called = false;
  CallConfigOverrides got;
  fetch_call_config(config, CallConfigRequest{"c1", "", "", Direction::Inbound, ""}, [&](CallConfigOverrides o) {
    called = true;
    got = std::move(o);
  });
  fail_unless(agent_test::wait_until([&] { return called; }, 5000));
  fail_unless(overrides_empty(got));
  fail_unless(!got.fallback_reason.empty());
  fail_if(contains(got.fallback_reason, "within"), "a refused connection is not a timeout: %s",
          got.fallback_reason.c_str());

  // No hook configured: done at once, nothing overridden, nothing to report.
  Config off;
  called = false;
  fetch_call_config(off, CallConfigRequest{"c2", "", "", Direction::Inbound, ""}, [&](CallConfigOverrides o) {
    called = true;
    got = std::move(o);
  });
  fail_unless(called, "without a hook, done must run at once");
  fail_unless(overrides_empty(got) && got.fallback_reason.empty());
}
GST_END_TEST;

GST_START_TEST(test_configure_call_applies_and_adds_tools) {
  FakeService service;
  fail_unless(service.start());
  service.set_reply({200,
                     R"({"instructions":"Be Bob.","greeting":"Hello from the hook",)"
                     R"("tools":[{"name":"get_weather","description":"Weather","parameters":{"type":"object"}}]})",
                     0});
  Config config;
  config.call_config_url = service.url("/hook");
  config.tool_webhook_url = "http://127.0.0.1:9/tools";
  CallOptions options;  // no call id yet: configure_call names the call
  options.caller = "+4915112345678";
  bool called = false;
  CallOptions got;
  configure_call(config, options, [&](CallOptions o) {
    called = true;
    got = std::move(o);
  });
  fail_unless(agent_test::wait_until([&] { return called; }, 3000));
  fail_unless(g_str_has_prefix(got.call_id.c_str(), "call_"), "call id '%s'", got.call_id.c_str());
  Json request(service.requests().at(0).body);
  assert_str(agent_test::str(request.object(), "call_id"), got.call_id);
  assert_str(agent_test::str(request.object(), "caller"), "+4915112345678");
  assert_str(got.instructions, "Be Bob.");
  assert_str(got.greeting, "Hello from the hook");
  Json tools(got.tools_json);
  fail_unless(tools.root() && JSON_NODE_HOLDS_ARRAY(tools.root()), "%s", got.tools_json.c_str());
  JsonArray *a = json_node_get_array(tools.root());
  fail_unless_equals_int(json_array_get_length(a), 2);
  assert_str(json_object_get_string_member(json_array_get_object_element(a, 0), "name"), "end_call");
  assert_str(json_object_get_string_member(json_array_get_object_element(a, 1), "name"), "get_weather");

  // Without a hook the call still gets end_call.
  Config off;
  called = false;
  configure_call(off, CallOptions(), [&](CallOptions o) {
    called = true;
    got = std::move(o);
  });
  fail_unless(called);
  fail_unless(contains(got.tools_json, "\"end_call\""), "%s", got.tools_json.c_str());
}
GST_END_TEST;

// ---------------------------------------------------------------------------------------------
// Tools

GST_START_TEST(test_tools_builtin_end_call) {
  Config config;
  std::string tools = tools_for_call(config, "");
  Json j(tools);
  fail_unless(j.root() && JSON_NODE_HOLDS_ARRAY(j.root()), "%s", tools.c_str());
  JsonArray *a = json_node_get_array(j.root());
  fail_unless_equals_int(json_array_get_length(a), 1);
  JsonObject *t = json_array_get_object_element(a, 0);
  assert_str(agent_test::str(t, "type"), "function");
  assert_str(agent_test::str(t, "name"), "end_call");
  assert_str(agent_test::str(t, "description"),
             "Hang up the call. Say a short goodbye first, in the same turn, then call this.");
  JsonObject *params = agent_test::obj(t, "parameters");
  assert_str(agent_test::str(params, "type"), "object");
  assert_str(agent_test::str(agent_test::obj(agent_test::obj(params, "properties"), "reason"), "type"), "string");
  fail_unless_equals_int(json_object_get_size(t), 4);
}
GST_END_TEST;

GST_START_TEST(test_tools_operator_tools) {
  Config config;
  config.tool_webhook_url = "http://127.0.0.1:9/tools";
  std::string extra =
      R"([{"type":"function","name":"get_weather","description":"Weather","parameters":{"type":"object"},"strict":true},)"
      R"({"name":"book_table"},)"
      R"({"name":"end_call","description":"an impostor"},)"
      R"({"name":"get_weather","description":"a duplicate"},)"
      R"({"description":"no name"},)"
      R"(42])";
  Json j(tools_for_call(config, extra));
  fail_unless(j.root() && JSON_NODE_HOLDS_ARRAY(j.root()));
  JsonArray *a = json_node_get_array(j.root());
  fail_unless_equals_int(json_array_get_length(a), 3);
  JsonObject *end_call = json_array_get_object_element(a, 0);
  JsonObject *weather = json_array_get_object_element(a, 1);
  JsonObject *book = json_array_get_object_element(a, 2);
  assert_str(agent_test::str(end_call, "name"), "end_call");
  fail_if(contains(agent_test::str(end_call, "description"), "impostor"), "an operator tool replaced end_call");
  assert_str(agent_test::str(weather, "name"), "get_weather");
  assert_str(agent_test::str(weather, "description"), "Weather");
  fail_unless(agent_test::obj(weather, "parameters") != nullptr);
  fail_if(agent_test::member(weather, "strict") != nullptr, "an unknown key reached the model's tools");
  assert_str(agent_test::str(book, "name"), "book_table");
  assert_str(agent_test::str(book, "type"), "function");  // added when the operator left it out

  // Not an array: only the built-in.
  for (const char *bad : {"{", R"({"name":"x"})", "null"}) {
    Json k(tools_for_call(config, bad));
    fail_unless(k.root() && JSON_NODE_HOLDS_ARRAY(k.root()));
    fail_unless_equals_int(json_array_get_length(json_node_get_array(k.root())), 1);
  }
}
GST_END_TEST;

// ---------------------------------------------------------------------------------------------
// Tool webhook

GST_START_TEST(test_webhook_round_trip) {
  FakeService service;
  ToolResult r = invoke_with({200, R"({"output":{"temp_c":21}})", 0}, 2000, &service, weather_invocation());
  fail_unless(r.ok, "%s", r.error.c_str());
  assert_str(r.output, R"({"temp_c":21})");
  fail_unless_equals_int(r.status, 200);

  fail_unless_equals_int((int)service.requests().size(), 1);
  Json body(service.requests()[0].body);
  JsonObject *b = body.object();
  fail_unless(b != nullptr);
  assert_str(agent_test::str(b, "call_id"), "call_42");
  assert_str(agent_test::str(b, "caller"), "+15550001111");
  assert_str(agent_test::str(b, "tool"), "get_weather");
  assert_str(agent_test::str(b, "tool_call_id"), "call_abc");
  assert_str(agent_test::str(agent_test::obj(b, "arguments"), "city"), "Paris");  // parsed, not a string
  assert_str(agent_test::str(agent_test::obj(b, "metadata"), "tier"), "gold");
}
GST_END_TEST;

GST_START_TEST(test_webhook_reply_shapes) {
  struct Case {
    const char *body;
    const char *output;
  };
  const Case cases[] = {
      {R"({"output":"It is sunny."})", "It is sunny."},      // a string output is passed unquoted
      {R"({"temp_c":21,"sky":"clear"})", R"({"temp_c":21,"sky":"clear"})"},  // any JSON, as it is
      {R"([1,2,3])", "[1,2,3]"},
      {R"("just text")", R"("just text")"},
      {"", "{}"},  // an empty 200: done, nothing to report
  };
  for (const auto &c : cases) {
    FakeService service;
    ToolResult r = invoke_with({200, c.body, 0}, 2000, &service, weather_invocation());
    fail_unless(r.ok, "%s: %s", c.body, r.error.c_str());
    assert_str(r.output, c.output);
  }
  // Arguments that are not JSON reach the webhook as the raw string.
  FakeService service;
  ToolInvocation inv = weather_invocation();
  inv.arguments = "{\"city\": \"Par";
  invoke_with({200, "{}", 0}, 2000, &service, inv);
  Json body(service.requests().at(0).body);
  assert_str(agent_test::str(body.object(), "arguments"), "{\"city\": \"Par");
  // No metadata: an empty object.
  FakeService service2;
  inv.metadata_json.clear();
  invoke_with({200, "{}", 0}, 2000, &service2, inv);
  Json body2(service2.requests().at(0).body);
  fail_unless(agent_test::obj(body2.object(), "metadata") != nullptr);
}
GST_END_TEST;

GST_START_TEST(test_webhook_failures_give_error_outputs) {
  struct Case {
    HttpReplySpec spec;
    int timeout_ms;
    const char *code;
    const char *message_has;
  };
  const Case cases[] = {
      {{200, R"({"output":"too late"})", 3000}, 300, "timeout", "300 ms"},
      {{500, R"({"output":"stack trace"})", 0}, 2000, "http_status", "HTTP 500"},
      {{404, "", 0}, 2000, "http_status", "HTTP 404"},
      {{200, "<html>oops</html>", 0}, 2000, "invalid_json", "not JSON"},
  };
  for (const auto &c : cases) {
    FakeService service;
    gint64 start = g_get_monotonic_time();
    ToolResult r = invoke_with(c.spec, c.timeout_ms, &service, weather_invocation());
    double ms = (g_get_monotonic_time() - start) / 1000.0;
    fail_if(r.ok, "%s was ok", c.code);
    assert_str(r.error, c.code);
    Json out(r.output);
    std::string message = agent_test::str(out.object(), "error");
    fail_unless(contains(message, c.message_has), "output %s lacks '%s'", r.output.c_str(), c.message_has);
    fail_if(contains(r.output, "stack trace"), "the service's error body reached the model");
    fail_unless(ms < c.timeout_ms + 1000, "took %.0f ms", ms);
  }
}
GST_END_TEST;

GST_START_TEST(test_webhook_hostile_replies) {
  // A failed tool call, as for any reply that is not JSON: the model gets an error output.
  for (const auto &h : hostile_json()) {
    FakeService service;
    ToolResult r = invoke_with({200, h.body, 0}, 3000, &service, weather_invocation());
    fail_if(r.ok, "a hostile reply was passed to the model (%s)", h.why);
    assert_str(r.error, "invalid_json");
    Json out(r.output);
    fail_unless(contains(agent_test::str(out.object(), "error"), "not JSON"), "output %s", r.output.c_str());
  }
  // The model's arguments are from outside too: deep ones reach the webhook as the raw string.
  ToolInvocation inv = weather_invocation();
  inv.arguments = std::string(100000, '[') + std::string(100000, ']');
  Json body(tool_webhook_body(inv));
  assert_str(agent_test::str(body.object(), "arguments"), inv.arguments);
}
GST_END_TEST;

GST_START_TEST(test_webhook_none_configured) {
  Config config;
  bool called = false;
  ToolResult got;
  invoke_tool_webhook(config, weather_invocation(), [&](const ToolResult &r) {
    called = true;
    got = r;
  });
  fail_unless(called, "without a webhook, done must run at once");
  fail_if(got.ok);
  assert_str(got.error, "no_webhook");
  assert_str(got.output, R"({"error":"no such tool"})");
}
GST_END_TEST;

// ---------------------------------------------------------------------------------------------
// ToolRouter: end_call

GST_START_TEST(test_router_end_call_waits_for_response_done) {
  Config config;
  auto call = bare_call(config, {});
  auto router = std::make_shared<ToolRouter>(config, HangupTiming{150, 10000});
  call->add_extension(router);
  fail_unless(router->on_function_call(*call, "end_call", "fc_1", R"({"reason":"done"})"));
  fail_unless(router->hangup_pending());
  // The response that carried end_call is not done: its goodbye may still be arriving.
  agent_test::run_for(400);
  fail_if(call->state() == CallState::Ended, "hung up before the goodbye's response was done");

  GstStructure *done = response_done(10, 20, 5, 5, 0, 15, 5);
  gint64 t0 = g_get_monotonic_time();
  router->on_response_done(*call, done);
  gst_structure_free(done);
  // Nothing is playing: after the settle delay (audio that just arrived would have started) it ends.
  fail_unless(agent_test::wait_until([&] { return call->state() == CallState::Ended; }, 2000));
  double waited = (g_get_monotonic_time() - t0) / 1000.0;
  fail_unless(waited >= 140, "hung up %.0f ms after response done, before the settle delay", waited);
  assert_str(call->end_reason(), "agent_hangup");
}
GST_END_TEST;

GST_START_TEST(test_router_end_call_after_playback_stopped) {
  Config config;
  auto call = bare_call(config, {});
  auto router = std::make_shared<ToolRouter>(config, HangupTiming{5000, 10000});
  call->add_extension(router);
  router->on_function_call(*call, "end_call", "fc_1", "{}");
  // Playback stopping before the response is done is not the end of the goodbye.
  router->on_playback_stopped(*call);
  fail_if(call->state() == CallState::Ended);
  GstStructure *done = response_done(1, 1, 0, 1, 0, 0, 1);
  router->on_response_done(*call, done);
  gst_structure_free(done);
  fail_if(call->state() == CallState::Ended);
  // The goodbye has been played in full: hang up now, not after the settle delay.
  router->on_playback_stopped(*call);
  fail_unless(call->state() == CallState::Ended);
  assert_str(call->end_reason(), "agent_hangup");
  // A second end_call after the end changes nothing.
  fail_unless(router->on_function_call(*call, "end_call", "fc_2", "{}"));
  assert_str(call->end_reason(), "agent_hangup");
}
GST_END_TEST;

GST_START_TEST(test_router_end_call_safety_timeout) {
  Config config;
  auto call = bare_call(config, {});
  auto router = std::make_shared<ToolRouter>(config, HangupTiming{100, 500});
  call->add_extension(router);
  gint64 t0 = g_get_monotonic_time();
  router->on_function_call(*call, "end_call", "fc_1", "{}");
  // No response.done ever arrives (a stuck session): the safety timeout ends the call anyway.
  fail_unless(agent_test::wait_until([&] { return call->state() == CallState::Ended; }, 3000));
  double waited = (g_get_monotonic_time() - t0) / 1000.0;
  fail_unless(waited >= 490, "ended after %.0f ms, before the safety timeout", waited);
  assert_str(call->end_reason(), "agent_hangup");
}
GST_END_TEST;

GST_START_TEST(test_router_other_tools) {
  FakeService service;
  fail_unless(service.start());
  service.set_reply({200, R"({"output":"ok"})", 300});
  Config config;
  config.tool_webhook_url = service.url("/tools");
  config.tool_timeout_ms = 2000;
  CallOptions options;
  options.call_id = "call_tools";
  options.caller = "+15550002222";
  options.metadata_json = R"({"tier":"gold"})";
  auto call = bare_call(config, options);
  auto router = std::make_shared<ToolRouter>(config);
  call->add_extension(router);
  fail_unless(router->on_function_call(*call, "get_weather", "fc_7", R"({"city":"Oslo"})"), "not handled");
  fail_if(router->hangup_pending());
  fail_unless(agent_test::wait_until([&] { return service.requests().size() == 1; }, 2000));
  Json body(service.requests()[0].body);
  assert_str(agent_test::str(body.object(), "call_id"), "call_tools");
  assert_str(agent_test::str(body.object(), "caller"), "+15550002222");
  assert_str(agent_test::str(body.object(), "tool_call_id"), "fc_7");
  // The call ends while the webhook is still working: its late reply is dropped without harm.
  call->end("hangup");
  agent_test::run_for(600);
  assert_str(call->end_reason(), "hangup");
}
GST_END_TEST;

// ---------------------------------------------------------------------------------------------
// Transcripts

GST_START_TEST(test_cost_arithmetic) {
  TokenPrices p;  // 32 / 64 / 4 / 16 / 0.4
  TokenUsage u;
  u.input_text_tokens = 1000;
  u.input_audio_tokens = 2000;
  u.input_tokens = 3000;
  u.input_cached_tokens = 500;
  u.output_text_tokens = 300;
  u.output_audio_tokens = 4000;
  u.output_tokens = 4300;
  // (1000-500)*4 + 2000*32 + 500*0.4 + 300*16 + 4000*64 = 327000 per 1M
  fail_unless(std::fabs(estimate_cost_usd(u, p) - 0.327) < 1e-12, "%.9f", estimate_cost_usd(u, p));

  // More cached than text input: the rest is cached audio.
  TokenUsage v;
  v.input_text_tokens = 100;
  v.input_audio_tokens = 1000;
  v.input_tokens = 1100;
  v.input_cached_tokens = 300;
  // 0*4 + 800*32 + 300*0.4 = 25720 per 1M
  fail_unless(std::fabs(estimate_cost_usd(v, p) - 0.02572) < 1e-12, "%.9f", estimate_cost_usd(v, p));

  // Totals without their kinds are charged at the audio rates (the estimate errs high).
  TokenUsage w;
  w.input_tokens = 50;
  w.output_tokens = 10;
  fail_unless(std::fabs(estimate_cost_usd(w, p) - (50 * 32 + 10 * 64) / 1e6) < 1e-12);

  // The prices are the configured ones.
  Config config;
  config.price_audio_in = 10;
  config.price_audio_out = 20;
  config.price_text_in = 0.6;
  config.price_text_out = 2.4;
  config.price_cached_in = 0.3;
  TokenPrices q = TokenPrices::from_config(config);
  // 500*0.6 + 2000*10 + 500*0.3 + 300*2.4 + 4000*20 = 101170 per 1M
  fail_unless(std::fabs(estimate_cost_usd(u, q) - 0.10117) < 1e-12, "%.9f", estimate_cost_usd(u, q));
  fail_unless(estimate_cost_usd(TokenUsage(), p) == 0);
}
GST_END_TEST;

GST_START_TEST(test_usage_sums) {
  TokenUsage u;
  GstStructure *a = response_done(132, 121, 13, 119, 64, 91, 30);
  GstStructure *b = response_done(200, 50, 100, 100, 0, 40, 10);
  GstStructure *empty = gst_structure_new_empty("openairealtime-response-done");  // a failed response
  u.add(a);
  u.add(b);
  u.add(empty);
  gst_structure_free(a);
  gst_structure_free(b);
  gst_structure_free(empty);
  fail_unless_equals_int(u.responses, 3);
  fail_unless_equals_int(u.input_tokens, 332);
  fail_unless_equals_int(u.output_tokens, 171);
  fail_unless_equals_int(u.input_audio_tokens, 113);
  fail_unless_equals_int(u.input_text_tokens, 219);
  fail_unless_equals_int(u.input_cached_tokens, 64);
  fail_unless_equals_int(u.output_audio_tokens, 131);
  fail_unless_equals_int(u.output_text_tokens, 40);
}
GST_END_TEST;

GST_START_TEST(test_transcript_file_names) {
  assert_str(transcript_file_name("call_0a1b-2c.3"), "call_0a1b-2c.3.json");
  std::string wa = transcript_file_name("wacid.HBgL+MTU/NTU==");
  fail_unless(g_str_has_prefix(wa.c_str(), "wacid.HBgL_MTU_NTU__-"), "%s", wa.c_str());
  fail_unless(g_str_has_suffix(wa.c_str(), ".json"));
  fail_unless_equals_int((int)wa.size(), (int)strlen("wacid.HBgL_MTU_NTU__-") + 12 + 5);
  // Ids that sanitise alike still get different files.
  fail_unless(transcript_file_name("a/b") != transcript_file_name("a_b"));
  fail_unless(transcript_file_name("a/b") != transcript_file_name("a:b"));
  // Nothing hidden, nothing outside the directory.
  for (const char *id : {"..", ".", "../../etc/passwd", "/abs", ".hidden", ""}) {
    std::string name = transcript_file_name(id);
    fail_if(name[0] == '.', "'%s' gave a hidden name %s", id, name.c_str());
    fail_if(contains(name, "/"), "'%s' gave %s", id, name.c_str());
    fail_unless(g_str_has_suffix(name.c_str(), ".json"));
  }
  std::string long_id(300, 'x');
  std::string name = transcript_file_name(long_id);
  fail_unless(name.size() < 160, "%zu", name.size());
  fail_unless(name != transcript_file_name(long_id + "y"));
}
GST_END_TEST;

GST_START_TEST(test_transcript_document_and_file) {
  TempDir dir;
  Config config;
  config.transcript_dir = dir.path;
  config.price_audio_in = 10;
  config.price_audio_out = 20;
  config.price_text_in = 1;
  config.price_text_out = 2;
  config.price_cached_in = 0.5;
  CallOptions options;
  options.call_id = "wacid.X/Y+Z==";
  options.caller = "+15550003333";
  options.caller_name = "Ann";
  options.metadata_json = R"({"tier":"gold"})";
  auto call = bare_call(config, options);
  auto recorder = std::make_shared<TranscriptRecorder>(config);
  call->add_extension(recorder);

  recorder->on_transcript(*call, "agent", "Hello, how can I help?", false);
  agent_test::run_for(30);
  recorder->on_transcript(*call, "caller", "What's the weather?", false);
  recorder->on_dtmf(*call, '5');
  recorder->on_transcript(*call, "agent", "It is sunny and", true);
  recorder->on_transcript(*call, "agent", "", false);  // nothing said: no turn
  GstStructure *a = response_done(132, 121, 13, 119, 64, 91, 30);
  GstStructure *b = response_done(200, 50, 100, 100, 0, 40, 10);
  recorder->on_response_done(*call, a);
  recorder->on_response_done(*call, b);
  gst_structure_free(a);
  gst_structure_free(b);
  call->end("hangup");
  call->end("again");  // idempotent: one file, unchanged

  std::string name = transcript_file_name(options.call_id);
  std::vector<std::string> entries = dir.entries();
  fail_unless_equals_int((int)entries.size(), 1);  // no temporary file left behind
  assert_str(entries[0], name);
  std::string path = dir.path + "/" + name;
  GStatBuf st;
  fail_unless(g_stat(path.c_str(), &st) == 0);
  fail_unless_equals_int(st.st_mode & 0777, 0640);

  gchar *text = nullptr;
  fail_unless(g_file_get_contents(path.c_str(), &text, nullptr, nullptr));
  std::string contents = text;
  g_free(text);
  Json doc(contents);
  JsonObject *d = doc.object();
  fail_unless(d != nullptr, "%s", contents.c_str());
  assert_str(agent_test::str(d, "call_id"), options.call_id);
  assert_str(agent_test::str(d, "direction"), "inbound");
  assert_str(agent_test::str(d, "caller"), "+15550003333");
  assert_str(agent_test::str(d, "caller_name"), "Ann");
  assert_str(agent_test::str(d, "end_reason"), "hangup");
  assert_str(agent_test::str(agent_test::obj(d, "metadata"), "tier"), "gold");
  GTimeZone *utc = g_time_zone_new_utc();
  for (const char *key : {"created_at", "ended_at"}) {
    GDateTime *t = g_date_time_new_from_iso8601(agent_test::str(d, key).c_str(), utc);
    fail_unless(t != nullptr, "%s is not RFC 3339: %s", key, agent_test::str(d, key).c_str());
    g_date_time_unref(t);
  }
  fail_unless(agent_test::num(d, "duration_s") >= 0.03, "duration_s %f", agent_test::num(d, "duration_s"));

  JsonArray *turns = agent_test::arr(d, "turns");
  fail_unless(turns != nullptr);
  fail_unless_equals_int(json_array_get_length(turns), 3);
  const char *roles[] = {"agent", "caller", "agent"};
  const char *texts[] = {"Hello, how can I help?", "What's the weather?", "It is sunny and"};
  double last_at = -1;
  for (guint i = 0; i < 3; i++) {
    JsonObject *t = json_array_get_object_element(turns, i);
    assert_str(agent_test::str(t, "role"), roles[i]);
    assert_str(agent_test::str(t, "text"), texts[i]);
    double at_s = agent_test::num(t, "at_s");
    fail_unless(at_s >= last_at && at_s >= 0, "turn %u at_s %f", i, at_s);
    last_at = at_s;
    GDateTime *at = g_date_time_new_from_iso8601(agent_test::str(t, "at").c_str(), utc);
    fail_unless(at != nullptr, "turn %u at '%s'", i, agent_test::str(t, "at").c_str());
    g_date_time_unref(at);
    bool interrupted = agent_test::member(t, "interrupted") && json_object_get_boolean_member(t, "interrupted");
    fail_unless(interrupted == (i == 2), "turn %u interrupted=%d", i, interrupted);
  }
  g_time_zone_unref(utc);
  fail_unless(agent_test::num(json_array_get_object_element(turns, 1), "at_s") >= 0.03);

  JsonArray *dtmf = agent_test::arr(d, "dtmf");
  fail_unless(dtmf && json_array_get_length(dtmf) == 1);
  assert_str(agent_test::str(json_array_get_object_element(dtmf, 0), "digit"), "5");

  JsonObject *usage = agent_test::obj(d, "usage");
  struct Expect {
    const char *key;
    double value;
  };
  const Expect expect[] = {{"responses", 2},          {"input_tokens", 332},       {"output_tokens", 171},
                           {"input_audio_tokens", 113}, {"input_text_tokens", 219}, {"input_cached_tokens", 64},
                           {"output_audio_tokens", 131}, {"output_text_tokens", 40}};
  for (const auto &e : expect)
    fail_unless(agent_test::num(usage, e.key) == e.value, "usage.%s = %f, expected %f", e.key,
                agent_test::num(usage, e.key), e.value);
  // (219-64)*1 + 113*10 + 64*0.5 + 40*2 + 131*20 = 155 + 1130 + 32 + 80 + 2620 = 4017 per 1M
  double cost = agent_test::num(d, "estimated_cost_usd");
  fail_unless(std::fabs(cost - 0.004017) < 1e-9, "estimated_cost_usd %.9f", cost);
  fail_unless(agent_test::num(agent_test::obj(d, "prices_usd_per_1m_tokens"), "audio_out") == 20);
}
GST_END_TEST;

GST_START_TEST(test_transcript_nothing_configured) {
  TempDir dir;
  Config config;  // neither --transcript-dir nor --transcript-url
  auto call = bare_call(config, {});
  auto recorder = std::make_shared<TranscriptRecorder>(config);
  call->add_extension(recorder);
  recorder->on_transcript(*call, "caller", "hi", false);
  GstStructure *a = response_done(10, 20, 5, 5, 0, 15, 5);
  recorder->on_response_done(*call, a);
  gst_structure_free(a);
  call->end("hangup");
  fail_unless(dir.entries().empty());
  // Usage is still summed (for the CALL_COST line).
  fail_unless_equals_int(recorder->usage().responses, 1);
  fail_unless_equals_int(recorder->usage().output_tokens, 20);
  // Events after the end are not recorded.
  recorder->on_transcript(*call, "caller", "late", false);
  fail_unless(!contains(recorder->to_json(*call), "late"));
}
GST_END_TEST;

GST_START_TEST(test_transcript_post) {
  FakeService receiver;
  fail_unless(receiver.start());
  receiver.set_reply({200, "{}", 0});
  TempDir dir;
  Config config;
  config.transcript_dir = dir.path;
  config.transcript_url = receiver.url("/transcripts");
  CallOptions options;
  options.call_id = "call_post";
  auto call = bare_call(config, options);
  auto recorder = std::make_shared<TranscriptRecorder>(config);
  call->add_extension(recorder);
  recorder->on_transcript(*call, "caller", "hello", false);
  call->end("hangup");
  fail_unless(agent_test::wait_until([&] { return receiver.requests().size() == 1; }, 3000));
  gchar *text = nullptr;
  fail_unless(g_file_get_contents((dir.path + "/call_post.json").c_str(), &text, nullptr, nullptr));
  std::string file = text;
  g_free(text);
  // The same document as the file (which ends with a newline).
  assert_str(receiver.requests()[0].body + "\n", file);
  assert_str(receiver.requests()[0].path, "/transcripts");

  // A receiver that never answers does not hold up the end of a call.
  FakeService hung;
  fail_unless(hung.start());
  hung.set_reply({200, "{}", 20000});
  Config slow;
  slow.transcript_url = hung.url("/t");
  auto call2 = bare_call(slow, {});
  call2->add_extension(std::make_shared<TranscriptRecorder>(slow));
  gint64 t0 = g_get_monotonic_time();
  call2->end("hangup");
  fail_unless(g_get_monotonic_time() - t0 < 200 * 1000, "end() waited for the transcript receiver");
  fail_unless(agent_test::wait_until([&] { return hung.requests().size() == 1; }, 3000));
}
GST_END_TEST;

GST_START_TEST(test_write_transcript_file_atomic) {
  TempDir dir;
  std::string path, error;
  fail_unless(write_transcript_file(dir.path, "call_x", R"({"v":1})", &path, &error), "%s", error.c_str());
  fail_unless(write_transcript_file(dir.path, "call_x", R"({"v":2})", &path, &error), "%s", error.c_str());
  assert_str(path, dir.path + "/call_x.json");
  gchar *text = nullptr;
  fail_unless(g_file_get_contents(path.c_str(), &text, nullptr, nullptr));
  assert_str(text, "{\"v\":2}\n");
  g_free(text);
  fail_unless_equals_int((int)dir.entries().size(), 1);
  fail_if(write_transcript_file(dir.path + "/missing", "call_x", "{}", &path, &error));
  fail_unless(!error.empty());
}
GST_END_TEST;

// ---------------------------------------------------------------------------------------------
// http_post_json

GST_START_TEST(test_http_post_limits) {
  FakeService service;
  fail_unless(service.start());
  service.set_reply({200, std::string(kHttpPostMaxReplyBytes + 10, 'x'), 0});
  bool called = false;
  HttpPostResult got;
  http_post_json(service.url("/big"), "{}", 5000, [&](const HttpPostResult &r) {
    called = true;
    got = r;
  });
  fail_if(called, "done ran inside http_post_json");
  fail_unless(agent_test::wait_until([&] { return called; }, 6000));
  fail_if(got.ok());
  fail_unless(contains(got.error, "larger"), "%s", got.error.c_str());

  // The body and content type arrive as sent.
  service.set_reply({201, R"({"ok":true})", 0});
  called = false;
  http_post_json(service.url("/echo"), R"({"a":"ü"})", 5000, [&](const HttpPostResult &r) {
    called = true;
    got = r;
  });
  fail_unless(agent_test::wait_until([&] { return called; }, 6000));
  fail_unless(got.ok(), "%d %s", got.status, got.error.c_str());
  fail_unless_equals_int(got.status, 201);
  assert_str(got.body, R"({"ok":true})");
  assert_str(service.requests().back().body, R"({"a":"ü"})");
}
GST_END_TEST;

GST_START_TEST(test_http_post_concurrent) {
  // Calls that start together all ask the hook at once: none may queue behind the others (libsoup's
  // default of 2 connections per host would make the later ones miss a deadline like this).
  FakeService service;
  fail_unless(service.start());
  service.set_reply({200, "{}", 300});
  constexpr int kRequests = 8;
  int ok = 0, done = 0;
  for (int i = 0; i < kRequests; i++)
    http_post_json(service.url("/hook"), "{}", 1000, [&](const HttpPostResult &r) {
      done++;
      if (r.ok()) ok++;
    });
  fail_unless(agent_test::wait_until([&] { return done == kRequests; }, 5000));
  fail_unless_equals_int(ok, kRequests);
}
GST_END_TEST;

static Suite *agent_unit_suite() {
  Suite *s = suite_create("agent-unit");
  TCase *tc = tcase_create("agent");
  tcase_set_timeout(tc, 60);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_settings_defaults_and_values);
  tcase_add_test(tc, test_settings_errors_name_the_setting);
  tcase_add_test(tc, test_hook_reply_sets_everything);
  tcase_add_test(tc, test_hook_reply_absent_and_null_keep_defaults);
  tcase_add_test(tc, test_hook_reply_rejections);
  tcase_add_test(tc, test_hook_reply_hostile_json);
  tcase_add_test(tc, test_hook_fetch_round_trip);
  tcase_add_test(tc, test_hook_timeout_falls_back);
  tcase_add_test(tc, test_hook_failures_fall_back);
  tcase_add_test(tc, test_hook_hostile_reply_falls_back);
  tcase_add_test(tc, test_hook_unreachable_and_off);
  tcase_add_test(tc, test_configure_call_applies_and_adds_tools);
  tcase_add_test(tc, test_tools_builtin_end_call);
  tcase_add_test(tc, test_tools_operator_tools);
  tcase_add_test(tc, test_webhook_round_trip);
  tcase_add_test(tc, test_webhook_reply_shapes);
  tcase_add_test(tc, test_webhook_failures_give_error_outputs);
  tcase_add_test(tc, test_webhook_hostile_replies);
  tcase_add_test(tc, test_webhook_none_configured);
  tcase_add_test(tc, test_router_end_call_waits_for_response_done);
  tcase_add_test(tc, test_router_end_call_after_playback_stopped);
  tcase_add_test(tc, test_router_end_call_safety_timeout);
  tcase_add_test(tc, test_router_other_tools);
  tcase_add_test(tc, test_cost_arithmetic);
  tcase_add_test(tc, test_usage_sums);
  tcase_add_test(tc, test_transcript_file_names);
  tcase_add_test(tc, test_transcript_document_and_file);
  tcase_add_test(tc, test_transcript_nothing_configured);
  tcase_add_test(tc, test_transcript_post);
  tcase_add_test(tc, test_write_transcript_file_atomic);
  tcase_add_test(tc, test_http_post_limits);
  tcase_add_test(tc, test_http_post_concurrent);
  return s;
}

GST_CHECK_MAIN(agent_unit);
