// End-to-end tests of the agent features: the built voicebridge (VOICEBRIDGE_BUILD_ROOT/app/
// voicebridge, JSON logs) answers real WebRTC calls on loopback placed by the built voicebridge-call,
// with the in-process fake Realtime server as the model and loopback fake services as the operator's
// hooks. Covered: end_call only after the goodbye was heard in full, a tool webhook round trip, the
// transcript file, and the call-config hook (its reply reaching the model; its timeout falling back).
//
// The hook tests need POST /v1/calls to run configure_call (app/api.cpp).
#include <gst/check/gstcheck.h>

#include <glib/gstdio.h>
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "agent-test-support.h"
#include "audio-analysis.h"
#include "check-strings.h"
#include "fake-realtime-server.h"
#include "wav-file.h"

using agent_test::FakeService;
using agent_test::HttpReplySpec;
using agent_test::Json;
using agent_test::Line;

namespace {

constexpr int kRecordRate = 48000;  // voicebridge-call records 48 kHz mono

bool contains(const std::string &haystack, const std::string &needle) {
  return haystack.find(needle) != std::string::npos;
}

struct TempDir {
  std::string path;
  TempDir() {
    char *p = g_dir_make_tmp("vb-agent-e2e-XXXXXX", nullptr);
    fail_unless(p != nullptr);
    path = p;
    g_free(p);
  }
  std::string file(const std::string &name) const { return path + "/" + name; }
  std::vector<std::string> entries() const {
    std::vector<std::string> out;
    GDir *d = g_dir_open(path.c_str(), 0, nullptr);
    if (!d) return out;
    while (const char *name = g_dir_read_name(d)) out.push_back(name);
    g_dir_close(d);
    return out;
  }
  ~TempDir() {
    for (const auto &e : entries()) g_unlink(file(e).c_str());
    g_rmdir(path.c_str());
  }
};

// The fake model, the service under test and one caller.
struct Rig {
  fake_realtime::Config model;
  std::unique_ptr<fake_realtime::Server> fake;
  agent_test::Service vb;
  agent_test::Child caller;
  TempDir tmp;

  explicit Rig(const fake_realtime::Config &config) : model(config) {}

  void start(const std::vector<std::string> &vb_args) {
    fake = std::make_unique<fake_realtime::Server>(model);
    std::string error;
    fail_unless(fake->start(0, &error), "fake Realtime server: %s", error.c_str());
    fail_unless(vb.start(fake->url(), vb_args, &error), "voicebridge: %s", error.c_str());
  }

  void call(const std::vector<std::string> &args) {
    std::string error;
    fail_unless(caller.start(agent_test::caller_argv(vb.base_url(), args), {}, &error), "voicebridge-call: %s",
                error.c_str());
  }

  // Waits for the caller to finish; returns its JSON report's text.
  std::string finish_call(int timeout_ms) {
    fail_unless(caller.wait_exit(timeout_ms), "voicebridge-call did not finish: %s\n=== voicebridge ===\n%s",
                caller.describe().c_str(), vb.process().describe().c_str());
    fail_unless(caller.exit_status() == 0, "voicebridge-call failed: %s\n=== voicebridge ===\n%s",
                caller.describe().c_str(), vb.process().describe().c_str());
    return caller.out();
  }

  std::string failure_context() { return "=== voicebridge ===\n" + vb.process().describe(); }
};

// The first client event of this type the fake server received on connection 0, parsed.
std::string first_event(const fake_realtime::ConnectionLog &log, const std::string &type) {
  for (size_t i = 0; i < log.types.size(); i++)
    if (log.types[i] == type) return log.events[i];
  return "";
}

int count_type(const fake_realtime::ConnectionLog &log, const std::string &type) {
  return (int)std::count(log.types.begin(), log.types.end(), type);
}

// The call id of the first CALL_CREATED line.
std::string created_call_id(Rig &rig, int timeout_ms) {
  std::string line;
  fail_unless(rig.vb.wait_event("CALL_CREATED", "", timeout_ms, &line), "no CALL_CREATED\n%s",
              rig.failure_context().c_str());
  Json j(line);
  return agent_test::str(j.object(), "call_id");
}

// Starts a model response from the server side, retrying while another one is still streaming (the
// fake starts none then). True once the number of started responses went up.
bool start_response(fake_realtime::Server &fake) {
  int before = fake.responses_started();
  for (int attempt = 0; attempt < 20; attempt++) {
    fake.start_response();
    if (agent_test::wait_until([&] { return fake.responses_started() > before; }, 250)) return true;
  }
  return false;
}

std::vector<int16_t> recording(const std::string &path) {
  audio_test::WavData w;
  std::string error;
  fail_unless(audio_test::read_wav(path, &w, &error), "recording %s: %s", path.c_str(), error.c_str());
  fail_unless(w.rate == kRecordRate, "recording at %d Hz", w.rate);
  return w.channel(0);
}

}  // namespace

// (a) The model says something and then calls end_call: the call is hung up only once that audio has
// been played to the caller in full, with end_reason agent_hangup, and no function output (which
// would make the model speak again) is sent.
GST_START_TEST(test_end_call_after_goodbye_played) {
  fake_realtime::Config model;
  model.reply_duration_ms = 1500;
  model.reply_tone_hz = 440;
  Rig rig(model);
  rig.start({});
  std::string out_wav = rig.tmp.file("heard.wav");
  rig.call({"--output", out_wav, "--duration", "12"});
  std::string call_id = created_call_id(rig, 15000);
  fail_unless(rig.vb.wait_event("CALL_MEDIA_CONNECTED", call_id, 15000), "%s", rig.failure_context().c_str());
  // Media (and DTLS on the caller's side) settled, so that every packet of the goodbye is heard.
  agent_test::run_for(800);

  // The goodbye: 1500 ms of tone, sent to the bridge 10× faster than real time.
  fail_unless(start_response(*rig.fake), "the fake did not start the goodbye");
  int64_t first_audio_us = 0;
  fail_unless(rig.vb.wait_event("CALL_FIRST_AUDIO", call_id, 5000, nullptr, &first_audio_us), "%s",
              rig.failure_context().c_str());
  // The model then calls end_call while the caller is still hearing the goodbye.
  fake_realtime::Config hang_up = model;
  hang_up.tool_calls = {fake_realtime::ToolCallScript{"end_call", R"({"reason":"the caller said goodbye"})"}};
  rig.fake->set_config(hang_up);
  fail_unless(start_response(*rig.fake), "the fake did not start the end_call response");
  int64_t requested_us = 0;
  fail_unless(rig.vb.wait_event("AGENT_HANGUP_REQUESTED", call_id, 5000, nullptr, &requested_us), "%s",
              rig.failure_context().c_str());

  std::string ended;
  int64_t ended_us = 0;
  fail_unless(rig.vb.wait_event("CALL_ENDED", call_id, 10000, &ended, &ended_us), "%s", rig.failure_context().c_str());
  Json e(ended);
  assert_str(agent_test::str(e.object(), "end_reason"), "agent_hangup");
  double played_ms = (ended_us - first_audio_us) / 1000.0;
  double after_request_ms = (ended_us - requested_us) / 1000.0;
  fail_unless(requested_us < first_audio_us + 1000 * 1000, "end_call came %.0f ms into the goodbye, too late to test",
              (requested_us - first_audio_us) / 1000.0);
  // Ended when the 1500 ms had been played, not when end_call arrived.
  fail_unless(played_ms >= 1450 && played_ms < 3000, "hung up %.0f ms after the goodbye started (1500 ms long)",
              played_ms);
  fail_unless(after_request_ms >= 300, "hung up %.0f ms after end_call: the goodbye was cut", after_request_ms);
  std::string hangup_line;
  fail_unless(rig.vb.wait_event("AGENT_HANGUP", call_id, 1000, &hangup_line));
  Json h(hangup_line);
  assert_str(agent_test::str(h.object(), "after"), "goodbye_played");
  fail_unless(contains(hangup_line, "\"level\":\"info\""), "%s", hangup_line.c_str());

  // The caller hears the whole goodbye, then the bridge's end.
  Json report(rig.finish_call(20000));
  assert_str(agent_test::str(report.object(), "end"), "remote");
  assert_str(agent_test::str(report.object(), "bridge_end_reason"), "agent_hangup");
  std::vector<int16_t> heard = recording(out_wav);
  auto segments = audio_test::find_segments(heard, kRecordRate, -40.0, 5.0, 50.0);
  std::string shown = audio_test::describe_segments(heard.data(), segments, kRecordRate);
  fail_unless(segments.size() == 1, "heard %zu stretches of sound: %s", segments.size(), shown.c_str());
  double tone_ms = audio_test::duration_ms(segments[0], kRecordRate);
  fail_unless(std::fabs(tone_ms - 1500) <= 60, "heard %.1f ms of the 1500 ms goodbye: %s", tone_ms, shown.c_str());
  double hz = audio_test::dominant_frequency(&heard[segments[0].start], segments[0].length(), kRecordRate);
  fail_unless(std::fabs(hz - 440) < 5, "heard %.1f Hz", hz);

  // What the model saw: the goodbye and the end_call responses, no function output and nothing
  // asked of it afterwards.
  fail_unless(rig.fake->function_outputs().empty(), "a function output was sent for end_call: %s",
              rig.fake->function_outputs()[0].c_str());
  fail_unless_equals_int(rig.fake->responses_started(), 2);
  fake_realtime::ConnectionLog log = rig.fake->connection(0);
  fail_unless_equals_int(count_type(log, "response.create"), 0);
  for (const auto &event : log.events)
    fail_if(contains(event, "function_call_output"), "the bridge sent %s", event.c_str());
  // The hang-up reason is the caller's business: not in the info log.
  fail_if(contains(rig.vb.process().describe(), "the caller said goodbye"), "end_call arguments in the info log");
}
GST_END_TEST;

// (b) A tool call goes to the webhook with the call's context; its reply reaches the model as the
// function output, and the model then speaks.
GST_START_TEST(test_tool_webhook_round_trip) {
  FakeService webhook;
  fail_unless(webhook.start());
  webhook.set_reply({200, R"({"output":{"temp_c":21,"sky":"clear"}})", 150});
  fake_realtime::Config model;
  model.reply_duration_ms = 800;
  model.tool_calls = {fake_realtime::ToolCallScript{"get_weather", R"({"city":"Paris"})"}};
  Rig rig(model);
  // The greeting's response is the tool call (the fake's scripted calls come first).
  rig.start({"--greeting", "Hello", "--tool-webhook-url", webhook.url("/tools"), "--tool-timeout-ms", "3000"});
  std::string out_wav = rig.tmp.file("heard.wav");
  rig.call({"--output", out_wav, "--duration", "5"});
  std::string call_id = created_call_id(rig, 15000);

  fail_unless(agent_test::wait_until([&] { return webhook.requests().size() == 1; }, 10000),
              "the webhook got no request\n%s", rig.failure_context().c_str());
  fail_unless(agent_test::wait_until([&] { return rig.fake->function_outputs().size() == 1; }, 5000),
              "no function output reached the model\n%s", rig.failure_context().c_str());
  fail_unless(agent_test::wait_until([&] { return rig.fake->responses_started() >= 2; }, 5000),
              "the model was not asked to continue after the output\n%s", rig.failure_context().c_str());
  Json report(rig.finish_call(20000));
  assert_str(agent_test::str(report.object(), "call_id"), call_id);

  // The webhook saw the call's context and the parsed arguments.
  Json body(webhook.requests()[0].body);
  JsonObject *b = body.object();
  fail_unless(b != nullptr, "%s", webhook.requests()[0].body.c_str());
  assert_str(agent_test::str(b, "call_id"), call_id);
  assert_str(agent_test::str(b, "tool"), "get_weather");
  assert_str(agent_test::str(agent_test::obj(b, "arguments"), "city"), "Paris");
  fail_unless(agent_test::obj(b, "metadata") != nullptr);
  fail_unless(agent_test::member(b, "caller") != nullptr);
  std::string tool_call_id = agent_test::str(b, "tool_call_id");
  fail_unless(!tool_call_id.empty());

  // Its answer is the output, for that call id; then a response follows, which the caller hears.
  assert_str(rig.fake->function_outputs()[0], tool_call_id + R"(={"temp_c":21,"sky":"clear"})");
  fake_realtime::ConnectionLog log = rig.fake->connection(0);
  size_t output_at = log.types.size(), create_after = log.types.size();
  for (size_t i = 0; i < log.types.size(); i++) {
    if (log.types[i] == "conversation.item.create" && contains(log.events[i], "function_call_output") &&
        output_at == log.types.size())
      output_at = i;
    if (log.types[i] == "response.create" && output_at < i) create_after = i;
  }
  fail_unless(output_at < log.types.size(), "no function_call_output item");
  fail_unless(create_after < log.types.size(), "no response.create after the function output");
  fail_unless(agent_test::num(report.object(), "heard_audio_s") >= 0.3, "the model's answer was not heard: %s",
              rig.caller.out().c_str());

  // Logged with its timing; the arguments (the caller's words) never at info level.
  auto results = rig.vb.events("RT_FUNCTION_CALL", call_id);
  bool result_logged = false;
  for (const auto &l : results) {
    Json j(l.text);
    if (agent_test::str(j.object(), "msg") == "tool result") {
      result_logged = true;
      fail_unless(agent_test::num(j.object(), "duration_ms") >= 140, "%s", l.text.c_str());
      fail_unless(contains(l.text, "\"ok\":true"), "%s", l.text.c_str());
    }
  }
  fail_unless(result_logged, "no RT_FUNCTION_CALL result line\n%s", rig.failure_context().c_str());
  fail_if(contains(rig.vb.process().describe(), "Paris"), "tool arguments in the info log");
}
GST_END_TEST;

// (c) After a call, its transcript file holds the turns, the usage the model reported and the cost.
GST_START_TEST(test_transcript_file_after_call) {
  fake_realtime::Config model;
  model.reply_duration_ms = 1000;
  Rig rig(model);
  TempDir transcripts;
  rig.start({"--greeting", "Hello", "--transcript-dir", transcripts.path, "--price-audio-in", "10",
             "--price-audio-out", "20", "--price-text-in", "1", "--price-text-out", "2", "--price-cached-in", "0.5"});
  // 2.5 s of silence (the greeting plays), then the caller speaks for 1 s, then listens to the reply.
  std::vector<int16_t> input = audio_test::concat(audio_test::make_silence(2500, kRecordRate),
                                                  audio_test::make_tone(300, 1000, -12, kRecordRate));
  std::string in_wav = rig.tmp.file("say.wav");
  fail_unless(audio_test::write_wav(in_wav, input, kRecordRate));
  rig.call({"--input", in_wav, "--duration", "6"});
  Json report(rig.finish_call(30000));
  std::string call_id = agent_test::str(report.object(), "call_id");
  std::string written;
  fail_unless(rig.vb.wait_event("TRANSCRIPT_WRITTEN", call_id, 5000, &written), "%s", rig.failure_context().c_str());

  std::vector<std::string> files = transcripts.entries();
  fail_unless(files.size() == 1, "%zu files in the transcript directory", files.size());
  assert_str(files[0], call_id + ".json");
  std::string path = transcripts.file(files[0]);
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
  assert_str(agent_test::str(d, "call_id"), call_id);
  assert_str(agent_test::str(d, "direction"), "inbound");
  assert_str(agent_test::str(d, "end_reason"), "hangup");
  fail_unless(agent_test::num(d, "duration_s") > 3, "%s", contents.c_str());

  // Turns: the greeting, the caller, the reply, with their roles and times.
  JsonArray *turns = agent_test::arr(d, "turns");
  fail_unless(turns && json_array_get_length(turns) >= 3, "%s", contents.c_str());
  JsonObject *greeting = json_array_get_object_element(turns, 0);
  assert_str(agent_test::str(greeting, "role"), "agent");
  fail_unless(contains(agent_test::str(greeting, "text"), "Hello"), "%s", contents.c_str());
  int caller_turns = 0, agent_turns = 0;
  size_t agent_text_tokens = 0;
  for (guint i = 0; i < json_array_get_length(turns); i++) {
    JsonObject *t = json_array_get_object_element(turns, i);
    std::string role = agent_test::str(t, "role");
    if (role == "caller") {
      caller_turns++;
      fail_unless(contains(agent_test::str(t, "text"), "ms of caller audio"), "%s", contents.c_str());
      fail_unless(agent_test::num(t, "at_s") > 2.5, "the caller's turn at %.3f s", agent_test::num(t, "at_s"));
    } else {
      fail_unless(role == "agent", "role '%s'", role.c_str());
      agent_turns++;
      // The fake bills output text at 4 characters per token, per response.
      agent_text_tokens += (agent_test::str(t, "text").size() + 3) / 4;
    }
    fail_if(agent_test::member(t, "interrupted") != nullptr, "a turn was interrupted: %s", contents.c_str());
  }
  fail_unless(caller_turns == 1 && agent_turns == 2, "%d caller and %d agent turns: %s", caller_turns, agent_turns,
              contents.c_str());

  // Usage: every response the model made, as the model reported it.
  JsonObject *usage = agent_test::obj(d, "usage");
  int responses = rig.fake->responses_started();
  fail_unless_equals_int((int)agent_test::num(usage, "responses"), responses);
  fail_unless_equals_int((int)agent_test::num(usage, "output_audio_tokens"), responses * 1000 / 50);
  fail_unless_equals_int((int)agent_test::num(usage, "output_text_tokens"), (int)agent_text_tokens);
  std::string call_json;
  fail_unless_equals_int(agent_test::http_get(rig.vb.base_url() + "/v1/calls/" + call_id, &call_json), 200);
  Json api(call_json);
  JsonObject *stats = agent_test::obj(api.object(), "stats");
  fail_unless(agent_test::num(usage, "input_tokens") == agent_test::num(stats, "input_tokens"), "%s vs %s",
              contents.c_str(), call_json.c_str());
  fail_unless(agent_test::num(usage, "output_tokens") == agent_test::num(stats, "output_tokens"), "%s vs %s",
              contents.c_str(), call_json.c_str());
  fail_unless(agent_test::num(usage, "input_tokens") ==
              agent_test::num(usage, "input_audio_tokens") + agent_test::num(usage, "input_text_tokens"));
  fail_unless(agent_test::num(usage, "input_audio_tokens") >= 10, "the caller's second of audio was not billed");

  // Cost, from the configured prices.
  double expected = ((agent_test::num(usage, "input_text_tokens") - agent_test::num(usage, "input_cached_tokens")) * 1 +
                     agent_test::num(usage, "input_audio_tokens") * 10 + agent_test::num(usage, "input_cached_tokens") * 0.5 +
                     agent_test::num(usage, "output_text_tokens") * 2 + agent_test::num(usage, "output_audio_tokens") * 20) /
                    1e6;
  double cost = agent_test::num(d, "estimated_cost_usd");
  fail_unless(expected > 0 && std::fabs(cost - expected) < 2e-6, "estimated_cost_usd %.6f, expected %.6f", cost,
              expected);
  std::string cost_line;
  fail_unless(rig.vb.wait_event("CALL_COST", call_id, 1000, &cost_line));
  Json c(cost_line);
  fail_unless(std::fabs(agent_test::num(c.object(), "estimated_cost_usd") - cost) < 2e-6, "%s", cost_line.c_str());
  // The words are in the file, not in the info log.
  fail_if(contains(rig.vb.process().describe(), "ms of caller audio"), "transcript text in the info log");
}
GST_END_TEST;

// (d) The call-config hook's reply reaches the model (session.update), with the built-in and the
// hook's tools; without a reply in time the call runs with the defaults.
GST_START_TEST(test_call_config_hook_applied) {
  FakeService hook;
  fail_unless(hook.start());
  hook.set_reply({200,
                  R"({"instructions":"You are Bob, the hook's test agent.","voice":"cedar",)"
                  R"("greeting":"Hi from the hook","metadata":{"tier":"gold"},)"
                  R"("tools":[{"type":"function","name":"get_weather","description":"Weather",)"
                  R"("parameters":{"type":"object","properties":{"city":{"type":"string"}}}}]})",
                  0});
  fake_realtime::Config model;
  model.reply_duration_ms = 600;
  Rig rig(model);
  rig.start({"--call-config-url", hook.url("/call-config"), "--call-config-timeout-ms", "2000"});
  rig.call({"--duration", "3"});
  Json report(rig.finish_call(30000));
  std::string call_id = agent_test::str(report.object(), "call_id");

  fail_unless(hook.requests().size() == 1, "%zu hook requests\n%s", hook.requests().size(),
              rig.failure_context().c_str());
  Json request(hook.requests()[0].body);
  assert_str(agent_test::str(request.object(), "call_id"), call_id);
  assert_str(agent_test::str(request.object(), "direction"), "inbound");
  fail_unless(agent_test::member(request.object(), "caller") && agent_test::member(request.object(), "caller_name"));

  Json update(first_event(rig.fake->connection(0), "session.update"));
  JsonObject *session = agent_test::obj(update.object(), "session");
  fail_unless(session != nullptr, "no session.update");
  assert_str(agent_test::str(session, "instructions"), "You are Bob, the hook's test agent.");
  assert_str(agent_test::str(agent_test::obj(agent_test::obj(session, "audio"), "output"), "voice"), "cedar");
  JsonArray *tools = agent_test::arr(session, "tools");
  fail_unless(tools && json_array_get_length(tools) == 2, "tools: %s", first_event(rig.fake->connection(0), "session.update").c_str());
  assert_str(agent_test::str(json_array_get_object_element(tools, 0), "name"), "end_call");
  assert_str(agent_test::str(json_array_get_object_element(tools, 1), "name"), "get_weather");
  fail_if(rig.fake->errors_sent().size() > 0, "the model rejected something: %s", rig.fake->errors_sent()[0].c_str());
  std::vector<std::string> instructions = rig.fake->response_instructions();
  fail_unless(!instructions.empty() && contains(instructions[0], "Hi from the hook"), "greeting not from the hook");

  std::string call_json;
  fail_unless_equals_int(agent_test::http_get(rig.vb.base_url() + "/v1/calls/" + call_id, &call_json), 200);
  Json api(call_json);
  assert_str(agent_test::str(agent_test::obj(api.object(), "metadata"), "tier"), "gold");
  fail_unless(rig.vb.wait_event("CALL_CONFIG_APPLIED", call_id, 1000), "%s", rig.failure_context().c_str());
  // The instructions are the operator's business: not in the info log.
  fail_if(contains(rig.vb.process().describe(), "Bob"), "hook instructions in the info log");
}
GST_END_TEST;

GST_START_TEST(test_call_config_hook_timeout_uses_defaults) {
  FakeService hook;
  fail_unless(hook.start());
  hook.set_reply({200, R"({"instructions":"too late","voice":"cedar"})", 5000});
  fake_realtime::Config model;
  model.reply_duration_ms = 800;
  Rig rig(model);
  rig.start({"--call-config-url", hook.url("/call-config"), "--call-config-timeout-ms", "400", "--greeting", "Hello"});
  rig.call({"--duration", "3"});
  Json report(rig.finish_call(30000));
  std::string call_id = agent_test::str(report.object(), "call_id");

  // The call waited for the hook, then went on with the defaults, and works.
  fail_unless(agent_test::num(report.object(), "answer_ms") >= 400, "answered after %.0f ms, before the hook timed out",
              agent_test::num(report.object(), "answer_ms"));
  fail_unless(agent_test::num(report.object(), "heard_audio_s") >= 0.3, "nothing heard: %s", rig.caller.out().c_str());
  auto fallbacks = rig.vb.events("CALL_CONFIG_FALLBACK", call_id);
  fail_unless(fallbacks.size() == 1, "%zu CALL_CONFIG_FALLBACK lines\n%s", fallbacks.size(),
              rig.failure_context().c_str());
  Json f(fallbacks[0].text);
  fail_unless(contains(agent_test::str(f.object(), "reason"), "400 ms"), "%s", fallbacks[0].text.c_str());
  fail_unless(contains(fallbacks[0].text, "\"level\":\"warning\""), "%s", fallbacks[0].text.c_str());

  Json update(first_event(rig.fake->connection(0), "session.update"));
  JsonObject *session = agent_test::obj(update.object(), "session");
  fail_unless(session != nullptr, "no session.update");
  fail_unless(g_str_has_prefix(agent_test::str(session, "instructions").c_str(), "You are a helpful voice assistant"),
              "instructions: %s", agent_test::str(session, "instructions").c_str());
  assert_str(agent_test::str(agent_test::obj(agent_test::obj(session, "audio"), "output"), "voice"), "marin");
  JsonArray *tools = agent_test::arr(session, "tools");
  fail_unless(tools && json_array_get_length(tools) == 1, "the defaults still include end_call");
  fail_unless(rig.vb.events("CALL_CONFIG_APPLIED", call_id).empty());
}
GST_END_TEST;

static Suite *agent_e2e_suite() {
  Suite *s = suite_create("agent-e2e");
  TCase *tc = tcase_create("agent-e2e");
  tcase_set_timeout(tc, 90);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_end_call_after_goodbye_played);
  tcase_add_test(tc, test_tool_webhook_round_trip);
  tcase_add_test(tc, test_transcript_file_after_call);
  tcase_add_test(tc, test_call_config_hook_applied);
  tcase_add_test(tc, test_call_config_hook_timeout_uses_defaults);
  return s;
}

GST_CHECK_MAIN(agent_e2e);
