// Unit tests for app/config.{h,cpp}: the settings of CONTRACT.md §2 and our extras, their
// precedence (command line > environment > config file > default), every validation error naming
// its setting, @FILE instructions, --help and the secrets handed to log masking.
#include <gst/check/gstcheck.h>
#include <glib/gstdio.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "config.h"

using namespace vb;

// gstcheck's fail_unless_equals_string keeps the pointer it is given past the statement that made
// it, so c_str() of a returned std::string would dangle: compare copies instead.
#define assert_equals_str(a, b)                                                            \
  G_STMT_START {                                                                           \
    const std::string va_ = (a), vb_ = (b);                                                \
    fail_unless(va_ == vb_, "'%.300s' is not '%.300s'", va_.c_str(), vb_.c_str());         \
  }                                                                                        \
  G_STMT_END

namespace {

// Every variable the parser reads: cleared around each test so that the environment of whoever
// runs the tests cannot leak in.
const char *const kAllEnv[] = {
    "VOICEBRIDGE_LISTEN", "VOICEBRIDGE_CONTROL_TOKEN", "VOICEBRIDGE_MAX_CALLS", "VOICEBRIDGE_ICE_ADDRESSES",
    "VOICEBRIDGE_RTP_PORT_RANGE", "VOICEBRIDGE_PUBLIC_IP", "VOICEBRIDGE_STUN_SERVER", "VOICEBRIDGE_TURN_SERVER",
    "OPENAI_API_KEY", "OPENAI_REALTIME_URL", "OPENAI_REALTIME_MODEL", "OPENAI_REALTIME_VOICE",
    "VOICEBRIDGE_INSTRUCTIONS", "WHATSAPP_ACCESS_TOKEN", "WHATSAPP_APP_SECRET", "WHATSAPP_VERIFY_TOKEN",
    "WHATSAPP_PHONE_NUMBER_ID", "WHATSAPP_GRAPH_URL", "VOICEBRIDGE_MAX_BODY_BYTES", "VOICEBRIDGE_JITTER_LATENCY_MS",
    "VOICEBRIDGE_OPUS_COMPLEXITY", "VOICEBRIDGE_GATHER_TIMEOUT_MS", "VOICEBRIDGE_GREETING",
    "VOICEBRIDGE_TRANSCRIPTION_MODEL", "VOICEBRIDGE_MEDIA_TIMEOUT_S", "VOICEBRIDGE_MAX_CALL_S",
    "VOICEBRIDGE_DRAIN_TIMEOUT_S", "VOICEBRIDGE_INSECURE_SKIP_SIGNATURE", "VOICEBRIDGE_LOG_FORMAT",
    "VOICEBRIDGE_LOG_LEVEL", "VOICEBRIDGE_CONFIG"};

// CONTRACT.md §2, verbatim: option and environment variable of every setting.
const std::pair<const char *, const char *> kContractSettings[] = {
    {"--listen", "VOICEBRIDGE_LISTEN"},
    {"--control-token", "VOICEBRIDGE_CONTROL_TOKEN"},
    {"--max-calls", "VOICEBRIDGE_MAX_CALLS"},
    {"--ice-addresses", "VOICEBRIDGE_ICE_ADDRESSES"},
    {"--rtp-port-range", "VOICEBRIDGE_RTP_PORT_RANGE"},
    {"--public-ip", "VOICEBRIDGE_PUBLIC_IP"},
    {"--stun-server", "VOICEBRIDGE_STUN_SERVER"},
    {"--turn-server", "VOICEBRIDGE_TURN_SERVER"},
    {"--api-key", "OPENAI_API_KEY"},
    {"--realtime-url", "OPENAI_REALTIME_URL"},
    {"--model", "OPENAI_REALTIME_MODEL"},
    {"--voice", "OPENAI_REALTIME_VOICE"},
    {"--instructions", "VOICEBRIDGE_INSTRUCTIONS"},
    {"--whatsapp-token", "WHATSAPP_ACCESS_TOKEN"},
    {"--whatsapp-app-secret", "WHATSAPP_APP_SECRET"},
    {"--whatsapp-verify-token", "WHATSAPP_VERIFY_TOKEN"},
    {"--whatsapp-phone-number-id", "WHATSAPP_PHONE_NUMBER_ID"},
    {"--whatsapp-graph-url", "WHATSAPP_GRAPH_URL"},
};

void clear_env() {
  for (const char *e : kAllEnv) g_unsetenv(e);
}

ParseOutcome parse(const std::vector<std::string> &args, Config *config, std::string *message) {
  std::vector<std::string> storage = {"voicebridge"};
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char *> argv;
  for (auto &s : storage) argv.push_back(&s[0]);
  argv.push_back(nullptr);
  return parse_config((int)storage.size(), argv.data(), config, message);
}

bool contains(const std::string &haystack, const std::string &needle) {
  return haystack.find(needle) != std::string::npos;
}

// A scratch directory removed at the end of the test.
struct TempDir {
  std::string path;
  std::vector<std::string> files;
  TempDir() {
    char *p = g_dir_make_tmp("vb-test-config-XXXXXX", nullptr);
    fail_unless(p != nullptr);
    path = p;
    g_free(p);
  }
  std::string write(const std::string &name, const std::string &contents) {
    char *p = g_build_filename(path.c_str(), name.c_str(), nullptr);
    std::string file = p;
    g_free(p);
    fail_unless(g_file_set_contents(file.c_str(), contents.data(), (gssize)contents.size(), nullptr));
    files.push_back(file);
    return file;
  }
  ~TempDir() {
    for (const auto &f : files) g_unlink(f.c_str());
    g_rmdir(path.c_str());
  }
};

std::string join(const std::vector<std::string> &v) {
  std::string out;
  for (const auto &s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

// Parses args expecting an error; checks it is one line naming the option and its variable.
void expect_error(const std::vector<std::string> &args, const char *option, const char *env) {
  Config c;
  std::string msg;
  ParseOutcome outcome = parse(args, &c, &msg);
  std::string shown = join(args);
  fail_unless(outcome == ParseOutcome::Error, "no error for %s", shown.c_str());
  fail_unless(contains(msg, option), "error for %s does not name %s: %s", shown.c_str(), option, msg.c_str());
  if (env) fail_unless(contains(msg, env), "error for %s does not name %s: %s", shown.c_str(), env, msg.c_str());
  fail_unless(!contains(msg, "\n"), "error for %s is not one line: %s", shown.c_str(), msg.c_str());
}

}  // namespace

GST_START_TEST(test_defaults) {
  Config c;
  std::string msg;
  fail_unless(parse({}, &c, &msg) == ParseOutcome::Ok, "%s", msg.c_str());
  assert_equals_str(c.listen.c_str(), "127.0.0.1:8080");
  fail_unless(c.control_token.empty());
  fail_unless_equals_int(c.max_calls, 100);
  fail_unless(c.ice_addresses.empty());
  fail_unless_equals_int(c.rtp_port_min, 0);
  fail_unless_equals_int(c.rtp_port_max, 0);
  fail_unless(c.public_ip.empty() && c.stun_server.empty() && c.turn_server.empty());
  fail_unless(c.api_key.empty() && c.realtime_url.empty());
  fail_unless(c.use_local_agent());
  assert_equals_str(c.effective_realtime_url().c_str(), "wss://api.openai.com/v1/realtime");
  assert_equals_str(c.model.c_str(), "gpt-realtime");
  assert_equals_str(c.voice.c_str(), "marin");
  assert_equals_str(c.instructions.c_str(), kDefaultInstructions);
  assert_equals_str(c.whatsapp_graph_url.c_str(), "https://graph.facebook.com/v23.0");
  fail_unless(!c.whatsapp_enabled());
  fail_unless(!c.insecure_skip_signature);
  fail_unless(c.log_format == LogFormat::Text);
  fail_unless(c.log_level == LogLevel::Info);
  fail_unless_equals_int(c.media_timeout_s, 30);
}
GST_END_TEST;

GST_START_TEST(test_default_instructions) {
  // Short and polite, as the contract asks: a few sentences, not an essay.
  std::string text = kDefaultInstructions;
  fail_unless(text.size() > 100 && text.size() < 800, "%zu characters", text.size());
  fail_unless(contains(text, "phone"));
  fail_unless(contains(text, "AI assistant"));
  fail_unless(contains(text, "language"));
}
GST_END_TEST;

// One row per setting: a value for the file, one for the environment, one for the command line,
// and how to read the setting back. All three differ from each other and from the default.
struct PrecedenceRow {
  const char *option;  // without "--"; also the key-file key
  const char *env;
  const char *file_value, *env_value, *cli_value;
  std::function<std::string(const Config &)> get;
};

GST_START_TEST(test_precedence_every_setting) {
  auto num = [](int v) { return std::to_string(v); };
  const std::vector<PrecedenceRow> rows = {
      {"listen", "VOICEBRIDGE_LISTEN", "10.0.0.1:1000", "[::1]:2000", "unix:/tmp/vb.sock",
       [](const Config &c) { return c.listen; }},
      {"control-token", "VOICEBRIDGE_CONTROL_TOKEN", "file-token", "env-token", "cli-token",
       [](const Config &c) { return c.control_token; }},
      {"max-calls", "VOICEBRIDGE_MAX_CALLS", "3", "4", "5", [num](const Config &c) { return num(c.max_calls); }},
      {"max-body-bytes", "VOICEBRIDGE_MAX_BODY_BYTES", "2048", "4096", "8192",
       [](const Config &c) { return std::to_string(c.max_body_bytes); }},
      {"ice-addresses", "VOICEBRIDGE_ICE_ADDRESSES", "10.0.0.1", "10.0.0.2,::1", "192.168.1.5",
       [](const Config &c) { return join(c.ice_addresses); }},
      {"rtp-port-range", "VOICEBRIDGE_RTP_PORT_RANGE", "10000-10010", "20000-20010", "30000-30010",
       [num](const Config &c) { return num(c.rtp_port_min) + "-" + num(c.rtp_port_max); }},
      {"public-ip", "VOICEBRIDGE_PUBLIC_IP", "203.0.113.1", "203.0.113.2", "2001:db8::3",
       [](const Config &c) { return c.public_ip; }},
      {"stun-server", "VOICEBRIDGE_STUN_SERVER", "stun://a.example:3478", "stun://b.example:3478",
       "stun://[2001:db8::1]:19302", [](const Config &c) { return c.stun_server; }},
      {"turn-server", "VOICEBRIDGE_TURN_SERVER", "turn://u:p1@a.example:3478", "turns://u:p2@b.example:5349",
       "turn://u:p3@10.1.1.1:3478?transport=tcp", [](const Config &c) { return c.turn_server; }},
      {"jitter-latency-ms", "VOICEBRIDGE_JITTER_LATENCY_MS", "40", "80", "120",
       [num](const Config &c) { return num(c.jitter_latency_ms); }},
      {"opus-complexity", "VOICEBRIDGE_OPUS_COMPLEXITY", "1", "2", "10",
       [num](const Config &c) { return num(c.opus_complexity); }},
      {"gather-timeout-ms", "VOICEBRIDGE_GATHER_TIMEOUT_MS", "500", "1000", "1500",
       [num](const Config &c) { return num(c.gather_timeout_ms); }},
      {"api-key", "OPENAI_API_KEY", "sk-file", "sk-env", "sk-cli", [](const Config &c) { return c.api_key; }},
      {"realtime-url", "OPENAI_REALTIME_URL", "ws://127.0.0.1:1/f", "wss://env.example/v1/realtime",
       "ws://[::1]:9000/cli", [](const Config &c) { return c.realtime_url; }},
      {"model", "OPENAI_REALTIME_MODEL", "model-f", "model-e", "model-c", [](const Config &c) { return c.model; }},
      {"voice", "OPENAI_REALTIME_VOICE", "alloy", "verse", "cedar", [](const Config &c) { return c.voice; }},
      {"instructions", "VOICEBRIDGE_INSTRUCTIONS", "Be brief.", "Be kind.", "Be quick.",
       [](const Config &c) { return c.instructions; }},
      {"greeting", "VOICEBRIDGE_GREETING", "Hi", "Hello", "Good day", [](const Config &c) { return c.greeting; }},
      {"transcription-model", "VOICEBRIDGE_TRANSCRIPTION_MODEL", "t-f", "t-e", "t-c",
       [](const Config &c) { return c.transcription_model; }},
      {"media-timeout-s", "VOICEBRIDGE_MEDIA_TIMEOUT_S", "10", "20", "40",
       [num](const Config &c) { return num(c.media_timeout_s); }},
      {"max-call-s", "VOICEBRIDGE_MAX_CALL_S", "60", "120", "180",
       [num](const Config &c) { return num(c.max_call_s); }},
      {"drain-timeout-s", "VOICEBRIDGE_DRAIN_TIMEOUT_S", "0", "5", "15",
       [num](const Config &c) { return num(c.drain_timeout_s); }},
      {"whatsapp-token", "WHATSAPP_ACCESS_TOKEN", "EAAf", "EAAe", "EAAc",
       [](const Config &c) { return c.whatsapp_token; }},
      {"whatsapp-app-secret", "WHATSAPP_APP_SECRET", "sec-f", "sec-e", "sec-c",
       [](const Config &c) { return c.whatsapp_app_secret; }},
      {"whatsapp-verify-token", "WHATSAPP_VERIFY_TOKEN", "ver-f", "ver-e", "ver-c",
       [](const Config &c) { return c.whatsapp_verify_token; }},
      {"whatsapp-phone-number-id", "WHATSAPP_PHONE_NUMBER_ID", "111", "222", "333",
       [](const Config &c) { return c.whatsapp_phone_number_id; }},
      {"whatsapp-graph-url", "WHATSAPP_GRAPH_URL", "https://f.example/v1", "http://127.0.0.1:8999/v2",
       "https://c.example/v3", [](const Config &c) { return c.whatsapp_graph_url; }},
      {"insecure-skip-signature", "VOICEBRIDGE_INSECURE_SKIP_SIGNATURE", "true", "false", "true",
       [](const Config &c) { return std::string(c.insecure_skip_signature ? "true" : "false"); }},
      {"log-format", "VOICEBRIDGE_LOG_FORMAT", "json", "text", "json",
       [](const Config &c) { return std::string(c.log_format == LogFormat::Json ? "json" : "text"); }},
      {"log-level", "VOICEBRIDGE_LOG_LEVEL", "debug", "error", "warning", [](const Config &c) {
         const char *names[] = {"debug", "info", "warning", "error"};
         return std::string(names[(int)c.log_level]);
       }},
  };

  TempDir dir;
  for (const auto &row : rows) {
    clear_env();
    std::string file = dir.write("vb.conf", std::string("[voicebridge]\n") + row.option + "=" + row.file_value + "\n");
    // WhatsApp settings need the signature question answered; the flag's own row is left alone.
    std::vector<std::string> base = {"--config", file};
    if (strcmp(row.option, "insecure-skip-signature") != 0) base.push_back("--insecure-skip-signature");

    Config c;
    std::string msg;
    fail_unless(parse(base, &c, &msg) == ParseOutcome::Ok, "%s: %s", row.option, msg.c_str());
    assert_equals_str(row.get(c).c_str(), row.file_value);

    g_setenv(row.env, row.env_value, TRUE);
    c = Config();
    fail_unless(parse(base, &c, &msg) == ParseOutcome::Ok, "%s: %s", row.option, msg.c_str());
    assert_equals_str(row.get(c).c_str(), row.env_value);

    // Both spellings of a command-line option.
    for (bool with_equals : {false, true}) {
      std::vector<std::string> args = base;
      if (with_equals) {
        args.push_back(std::string("--") + row.option + "=" + row.cli_value);
      } else if (strcmp(row.option, "insecure-skip-signature") == 0) {
        args.push_back(std::string("--") + row.option);  // a flag: its bare form means true
      } else {
        args.push_back(std::string("--") + row.option);
        args.push_back(row.cli_value);
      }
      c = Config();
      fail_unless(parse(args, &c, &msg) == ParseOutcome::Ok, "%s: %s", row.option, msg.c_str());
      assert_equals_str(row.get(c).c_str(), row.cli_value);
    }
  }
  clear_env();
}
GST_END_TEST;

GST_START_TEST(test_config_file_from_environment) {
  TempDir dir;
  std::string a = dir.write("a.conf", "[voicebridge]\nmax-calls=7\n");
  std::string b = dir.write("b.conf", "[voicebridge]\nmax-calls=8\n");
  Config c;
  std::string msg;
  g_setenv("VOICEBRIDGE_CONFIG", a.c_str(), TRUE);
  fail_unless(parse({}, &c, &msg) == ParseOutcome::Ok, "%s", msg.c_str());
  fail_unless_equals_int(c.max_calls, 7);
  // --config wins over VOICEBRIDGE_CONFIG like every other setting.
  fail_unless(parse({"--config=" + b}, &c, &msg) == ParseOutcome::Ok, "%s", msg.c_str());
  fail_unless_equals_int(c.max_calls, 8);
  g_unsetenv("VOICEBRIDGE_CONFIG");
}
GST_END_TEST;

GST_START_TEST(test_empty_environment_is_unset) {
  TempDir dir;
  std::string file = dir.write("vb.conf", "[voicebridge]\nvoice=alloy\n");
  g_setenv("OPENAI_REALTIME_VOICE", "", TRUE);
  Config c;
  std::string msg;
  fail_unless(parse({"--config", file}, &c, &msg) == ParseOutcome::Ok, "%s", msg.c_str());
  assert_equals_str(c.voice.c_str(), "alloy");
  g_unsetenv("OPENAI_REALTIME_VOICE");
}
GST_END_TEST;

GST_START_TEST(test_key_file_escapes_and_comments) {
  TempDir dir;
  std::string file = dir.write("vb.conf",
                               "# a comment\n[voicebridge]\n# another\ninstructions=Line one\\nLine two\n"
                               "greeting=  Hello there\n");
  Config c;
  std::string msg;
  fail_unless(parse({"--config", file}, &c, &msg) == ParseOutcome::Ok, "%s", msg.c_str());
  assert_equals_str(c.instructions.c_str(), "Line one\nLine two");
  assert_equals_str(c.greeting.c_str(), "Hello there");
}
GST_END_TEST;

GST_START_TEST(test_last_occurrence_wins) {
  Config c;
  std::string msg;
  fail_unless(parse({"--max-calls", "2", "--max-calls=9"}, &c, &msg) == ParseOutcome::Ok, "%s", msg.c_str());
  fail_unless_equals_int(c.max_calls, 9);
}
GST_END_TEST;

GST_START_TEST(test_accepted_forms) {
  Config c;
  std::string msg;
  fail_unless(parse({"--listen=[::1]:8080"}, &c, &msg) == ParseOutcome::Ok, "%s", msg.c_str());
  fail_unless(parse({"--listen=0.0.0.0:0"}, &c, &msg) == ParseOutcome::Ok, "%s", msg.c_str());
  fail_unless(parse({"--listen=localhost:65535"}, &c, &msg) == ParseOutcome::Ok, "%s", msg.c_str());
  fail_unless(parse({"--listen=unix:/run/vb.sock"}, &c, &msg) == ParseOutcome::Ok, "%s", msg.c_str());
  assert_equals_str(c.listen.c_str(), "unix:/run/vb.sock");

  fail_unless(parse({"--ice-addresses", " 127.0.0.1, ::1 ,"}, &c, &msg) == ParseOutcome::Ok, "%s", msg.c_str());
  fail_unless_equals_int(c.ice_addresses.size(), 2);
  assert_equals_str(c.ice_addresses[1].c_str(), "::1");

  fail_unless(parse({"--rtp-port-range=1-2"}, &c, &msg) == ParseOutcome::Ok, "%s", msg.c_str());
  fail_unless(parse({"--rtp-port-range=65534-65535"}, &c, &msg) == ParseOutcome::Ok, "%s", msg.c_str());
  fail_unless_equals_int(c.rtp_port_min, 65534);
  fail_unless_equals_int(c.rtp_port_max, 65535);

  // The Graph base is used as a prefix: a trailing slash is dropped.
  fail_unless(parse({"--whatsapp-graph-url=https://graph.example/v23.0/"}, &c, &msg) == ParseOutcome::Ok);
  assert_equals_str(c.whatsapp_graph_url.c_str(), "https://graph.example/v23.0");

  fail_unless(parse({"--realtime-url=ws://127.0.0.1:9000/v1/realtime"}, &c, &msg) == ParseOutcome::Ok);
  fail_unless(!c.use_local_agent());
  fail_unless(c.api_key.empty());

  fail_unless(parse({"--insecure-skip-signature=no"}, &c, &msg) == ParseOutcome::Ok);
  fail_unless(!c.insecure_skip_signature);
  g_setenv("VOICEBRIDGE_INSECURE_SKIP_SIGNATURE", "1", TRUE);
  fail_unless(parse({}, &c, &msg) == ParseOutcome::Ok);
  fail_unless(c.insecure_skip_signature);
  g_unsetenv("VOICEBRIDGE_INSECURE_SKIP_SIGNATURE");

  fail_unless(parse({"--log-format", "JSON", "--log-level", "debug"}, &c, &msg) == ParseOutcome::Ok);
  fail_unless(c.log_format == LogFormat::Json);
  fail_unless(c.log_level == LogLevel::Debug);
}
GST_END_TEST;

GST_START_TEST(test_exact_error_message) {
  Config c;
  std::string msg;
  g_setenv("VOICEBRIDGE_MAX_CALLS", "abc", TRUE);
  fail_unless(parse({}, &c, &msg) == ParseOutcome::Error);
  assert_equals_str(msg.c_str(), "invalid --max-calls (VOICEBRIDGE_MAX_CALLS): 'abc' is not a whole number ≥ 1");
  g_unsetenv("VOICEBRIDGE_MAX_CALLS");
}
GST_END_TEST;

GST_START_TEST(test_validation_errors) {
  struct Bad {
    const char *arg;
    const char *option;
    const char *env;
  };
  const Bad bad[] = {
      {"--listen=8080", "--listen", "VOICEBRIDGE_LISTEN"},
      {"--listen=:8080", "--listen", "VOICEBRIDGE_LISTEN"},
      {"--listen=127.0.0.1:65536", "--listen", "VOICEBRIDGE_LISTEN"},
      {"--listen=127.0.0.1:http", "--listen", "VOICEBRIDGE_LISTEN"},
      {"--listen=::1:8080", "--listen", "VOICEBRIDGE_LISTEN"},
      {"--listen=[1.2.3.4]:80", "--listen", "VOICEBRIDGE_LISTEN"},
      {"--listen=[::1]8080", "--listen", "VOICEBRIDGE_LISTEN"},
      {"--listen=unix:", "--listen", "VOICEBRIDGE_LISTEN"},
      {"--listen=bad host:80", "--listen", "VOICEBRIDGE_LISTEN"},
      {"--max-calls=abc", "--max-calls", "VOICEBRIDGE_MAX_CALLS"},
      {"--max-calls=0", "--max-calls", "VOICEBRIDGE_MAX_CALLS"},
      {"--max-calls=-3", "--max-calls", "VOICEBRIDGE_MAX_CALLS"},
      {"--max-calls=1.5", "--max-calls", "VOICEBRIDGE_MAX_CALLS"},
      {"--max-calls=99999999999", "--max-calls", "VOICEBRIDGE_MAX_CALLS"},
      {"--max-body-bytes=10", "--max-body-bytes", "VOICEBRIDGE_MAX_BODY_BYTES"},
      {"--ice-addresses=10.0.0.1,eth0", "--ice-addresses", "VOICEBRIDGE_ICE_ADDRESSES"},
      {"--ice-addresses=300.1.1.1", "--ice-addresses", "VOICEBRIDGE_ICE_ADDRESSES"},
      {"--rtp-port-range=5000", "--rtp-port-range", "VOICEBRIDGE_RTP_PORT_RANGE"},
      {"--rtp-port-range=5000-4000", "--rtp-port-range", "VOICEBRIDGE_RTP_PORT_RANGE"},
      {"--rtp-port-range=5000-5000", "--rtp-port-range", "VOICEBRIDGE_RTP_PORT_RANGE"},
      {"--rtp-port-range=0-10", "--rtp-port-range", "VOICEBRIDGE_RTP_PORT_RANGE"},
      {"--rtp-port-range=60000-70000", "--rtp-port-range", "VOICEBRIDGE_RTP_PORT_RANGE"},
      {"--rtp-port-range=a-b", "--rtp-port-range", "VOICEBRIDGE_RTP_PORT_RANGE"},
      {"--public-ip=1.2.3", "--public-ip", "VOICEBRIDGE_PUBLIC_IP"},
      {"--public-ip=example.com", "--public-ip", "VOICEBRIDGE_PUBLIC_IP"},
      {"--stun-server=stun.l.google.com:19302", "--stun-server", "VOICEBRIDGE_STUN_SERVER"},
      {"--stun-server=stun://stun.l.google.com", "--stun-server", "VOICEBRIDGE_STUN_SERVER"},
      {"--stun-server=stun://:3478", "--stun-server", "VOICEBRIDGE_STUN_SERVER"},
      {"--turn-server=turn://turn.example:3478", "--turn-server", "VOICEBRIDGE_TURN_SERVER"},
      {"--turn-server=turn://user@turn.example:3478", "--turn-server", "VOICEBRIDGE_TURN_SERVER"},
      {"--turn-server=turn://u:p@turn.example", "--turn-server", "VOICEBRIDGE_TURN_SERVER"},
      {"--turn-server=stun://u:p@turn.example:3478", "--turn-server", "VOICEBRIDGE_TURN_SERVER"},
      {"--turn-server=turn://u:p@turn.example:3478?transport=sctp", "--turn-server", "VOICEBRIDGE_TURN_SERVER"},
      {"--realtime-url=https://api.openai.com/v1/realtime", "--realtime-url", "OPENAI_REALTIME_URL"},
      {"--realtime-url=api.openai.com", "--realtime-url", "OPENAI_REALTIME_URL"},
      {"--realtime-url=wss://", "--realtime-url", "OPENAI_REALTIME_URL"},
      {"--model=", "--model", "OPENAI_REALTIME_MODEL"},
      {"--voice= ", "--voice", "OPENAI_REALTIME_VOICE"},
      {"--instructions=@/nonexistent/prompt.txt", "--instructions", "VOICEBRIDGE_INSTRUCTIONS"},
      {"--instructions=@", "--instructions", "VOICEBRIDGE_INSTRUCTIONS"},
      {"--whatsapp-graph-url=ftp://graph.facebook.com", "--whatsapp-graph-url", "WHATSAPP_GRAPH_URL"},
      {"--whatsapp-graph-url=graph.facebook.com/v23.0", "--whatsapp-graph-url", "WHATSAPP_GRAPH_URL"},
      {"--jitter-latency-ms=5000", "--jitter-latency-ms", "VOICEBRIDGE_JITTER_LATENCY_MS"},
      {"--opus-complexity=11", "--opus-complexity", "VOICEBRIDGE_OPUS_COMPLEXITY"},
      {"--gather-timeout-ms=10", "--gather-timeout-ms", "VOICEBRIDGE_GATHER_TIMEOUT_MS"},
      {"--media-timeout-s=0", "--media-timeout-s", "VOICEBRIDGE_MEDIA_TIMEOUT_S"},
      {"--max-call-s=0", "--max-call-s", "VOICEBRIDGE_MAX_CALL_S"},
      {"--drain-timeout-s=-1", "--drain-timeout-s", "VOICEBRIDGE_DRAIN_TIMEOUT_S"},
      {"--insecure-skip-signature=maybe", "--insecure-skip-signature", "VOICEBRIDGE_INSECURE_SKIP_SIGNATURE"},
      {"--log-format=xml", "--log-format", "VOICEBRIDGE_LOG_FORMAT"},
      {"--log-level=verbose", "--log-level", "VOICEBRIDGE_LOG_LEVEL"},
  };
  for (const auto &b : bad) expect_error({b.arg}, b.option, b.env);

  // The same checks apply to values from the environment and from a file.
  g_setenv("VOICEBRIDGE_RTP_PORT_RANGE", "9-9", TRUE);
  expect_error({}, "--rtp-port-range", "VOICEBRIDGE_RTP_PORT_RANGE");
  g_unsetenv("VOICEBRIDGE_RTP_PORT_RANGE");

  TempDir dir;
  std::string file = dir.write("vb.conf", "[voicebridge]\nopus-complexity=loud\n");
  expect_error({"--config", file}, "--opus-complexity", "VOICEBRIDGE_OPUS_COMPLEXITY");
  Config c;
  std::string msg;
  parse({"--config", file}, &c, &msg);
  fail_unless(contains(msg, file), "the error does not say which file: %s", msg.c_str());
}
GST_END_TEST;

GST_START_TEST(test_turn_password_not_echoed) {
  Config c;
  std::string msg;
  fail_unless(parse({"--turn-server=turn://alice:hunter22@turn.example"}, &c, &msg) == ParseOutcome::Error);
  fail_unless(contains(msg, "--turn-server"), "%s", msg.c_str());
  fail_unless(!contains(msg, "hunter22"), "password in error: %s", msg.c_str());
}
GST_END_TEST;

GST_START_TEST(test_command_line_errors) {
  expect_error({"--no-such-option"}, "--no-such-option", nullptr);
  expect_error({"--no-such-option=1"}, "--no-such-option", nullptr);
  expect_error({"-x"}, "-x", nullptr);
  expect_error({"stray"}, "stray", nullptr);
  expect_error({"--listen"}, "--listen", nullptr);
  // A forgotten value must not swallow the next option.
  expect_error({"--max-calls", "--voice", "alloy"}, "--max-calls", nullptr);
}
GST_END_TEST;

GST_START_TEST(test_config_file_errors) {
  expect_error({"--config", "/nonexistent/voicebridge.conf"}, "--config", "VOICEBRIDGE_CONFIG");
  Config c;
  std::string msg;
  parse({"--config", "/nonexistent/voicebridge.conf"}, &c, &msg);
  fail_unless(contains(msg, "/nonexistent/voicebridge.conf"), "%s", msg.c_str());

  g_setenv("VOICEBRIDGE_CONFIG", "/nonexistent/env.conf", TRUE);
  expect_error({}, "--config", "VOICEBRIDGE_CONFIG");
  g_unsetenv("VOICEBRIDGE_CONFIG");

  TempDir dir;
  std::string unknown_key = dir.write("k.conf", "[voicebridge]\nmax_calls=3\n");
  expect_error({"--config", unknown_key}, "max_calls", "VOICEBRIDGE_CONFIG");
  std::string unknown_group = dir.write("g.conf", "[voicebrige]\nmax-calls=3\n");
  expect_error({"--config", unknown_group}, "voicebrige", "VOICEBRIDGE_CONFIG");
  std::string syntax = dir.write("s.conf", "[voicebridge]\nthis is not a key file\n");
  expect_error({"--config", syntax}, "--config", "VOICEBRIDGE_CONFIG");
  std::string nested = dir.write("n.conf", "[voicebridge]\nconfig=/etc/other.conf\n");
  expect_error({"--config", nested}, "config", "VOICEBRIDGE_CONFIG");
}
GST_END_TEST;

GST_START_TEST(test_instructions_from_file) {
  TempDir dir;
  std::string prompt = dir.write("prompt.txt", "You sell pizza.\nBe brief.\n\n");
  Config c;
  std::string msg;
  fail_unless(parse({"--instructions", "@" + prompt}, &c, &msg) == ParseOutcome::Ok, "%s", msg.c_str());
  assert_equals_str(c.instructions.c_str(), "You sell pizza.\nBe brief.");

  g_setenv("VOICEBRIDGE_INSTRUCTIONS", ("@" + prompt).c_str(), TRUE);
  fail_unless(parse({}, &c, &msg) == ParseOutcome::Ok, "%s", msg.c_str());
  assert_equals_str(c.instructions.c_str(), "You sell pizza.\nBe brief.");
  g_unsetenv("VOICEBRIDGE_INSTRUCTIONS");

  // In a config file, a relative path is relative to the file, not to the working directory.
  std::string conf = dir.write("vb.conf", "[voicebridge]\ninstructions=@prompt.txt\n");
  fail_unless(parse({"--config", conf}, &c, &msg) == ParseOutcome::Ok, "%s", msg.c_str());
  assert_equals_str(c.instructions.c_str(), "You sell pizza.\nBe brief.");

  // "@@" escapes a literal leading '@'.
  fail_unless(parse({"--instructions=@@home is where you are"}, &c, &msg) == ParseOutcome::Ok);
  assert_equals_str(c.instructions.c_str(), "@home is where you are");

  std::string empty = dir.write("empty.txt", " \n");
  expect_error({"--instructions=@" + empty}, "--instructions", "VOICEBRIDGE_INSTRUCTIONS");
  std::string binary = dir.write("binary.txt", std::string("\xff\xfe\x00\x01", 4));
  expect_error({"--instructions=@" + binary}, "--instructions", "VOICEBRIDGE_INSTRUCTIONS");
}
GST_END_TEST;

GST_START_TEST(test_whatsapp_needs_app_secret) {
  expect_error({"--whatsapp-token=EAAx"}, "--whatsapp-app-secret", "WHATSAPP_APP_SECRET");
  g_setenv("WHATSAPP_PHONE_NUMBER_ID", "123", TRUE);
  expect_error({}, "--whatsapp-app-secret", "WHATSAPP_APP_SECRET");
  g_unsetenv("WHATSAPP_PHONE_NUMBER_ID");

  Config c;
  std::string msg;
  fail_unless(parse({"--whatsapp-token=EAAx", "--whatsapp-app-secret=s3cret"}, &c, &msg) == ParseOutcome::Ok);
  fail_unless(c.whatsapp_enabled());
  fail_unless(parse({"--whatsapp-token=EAAx", "--insecure-skip-signature"}, &c, &msg) == ParseOutcome::Ok);
  fail_unless(c.insecure_skip_signature);
}
GST_END_TEST;

GST_START_TEST(test_help) {
  Config c;
  std::string help;
  fail_unless(parse({"--help"}, &c, &help) == ParseOutcome::Help);
  // --help wins wherever it is, even after a bad option: the user is asking how to fix it.
  std::string again;
  fail_unless(parse({"--max-calls=abc", "--bogus", "-h"}, &c, &again) == ParseOutcome::Help);
  assert_equals_str(again.c_str(), help.c_str());

  // Each contract setting is documented with its own variable: the variable appears in the
  // option's entry (between its "--option" and the next option), not just somewhere.
  for (const auto &s : kContractSettings) {
    std::string entry_start = std::string("  ") + s.first + "=";
    size_t at = help.find(entry_start);
    fail_unless(at != std::string::npos, "help lacks %s", s.first);
    size_t next = help.find("\n  --", at + 1);
    std::string entry = help.substr(at, next == std::string::npos ? std::string::npos : next - at);
    fail_unless(contains(entry, s.second), "help entry of %s lacks %s:\n%s", s.first, s.second, entry.c_str());
    fail_unless(contains(entry, "default"), "help entry of %s lacks its default", s.first);
  }
  for (const char *e : kAllEnv) fail_unless(contains(help, e), "help lacks %s", e);
  for (const char *topic : {"HTTP API", "Media", "model", "Call limits", "WhatsApp", "Logging", "Examples"})
    fail_unless(contains(help, topic), "help lacks the section %s", topic);
  fail_unless(contains(help, "127.0.0.1:8080"));
  fail_unless(contains(help, "wss://api.openai.com/v1/realtime"));
  fail_unless(contains(help, "https://graph.facebook.com/v23.0"));
  fail_unless(contains(help, "[voicebridge]"));

  std::string version;
  fail_unless(parse({"--version"}, &c, &version) == ParseOutcome::Version);
  fail_unless(g_str_has_prefix(version.c_str(), "voicebridge "), "%s", version.c_str());
}
GST_END_TEST;

GST_START_TEST(test_secrets) {
  Config c;
  std::string msg;
  fail_unless(parse({"--api-key=sk-abc123", "--control-token=ctl-token", "--whatsapp-token=EAAtoken",
                     "--whatsapp-app-secret=appsecret", "--whatsapp-verify-token=verifytok",
                     "--turn-server=turn://alice:turnpass@turn.example:3478"},
                    &c, &msg) == ParseOutcome::Ok,
              "%s", msg.c_str());
  std::vector<std::string> secrets = config_secrets(c);
  for (const char *s : {"sk-abc123", "ctl-token", "EAAtoken", "appsecret", "verifytok", "turnpass"}) {
    fail_unless(std::find(secrets.begin(), secrets.end(), s) != secrets.end(), "%s is not a secret", s);
  }
  fail_unless(std::find(secrets.begin(), secrets.end(), "alice") == secrets.end());
  fail_unless_equals_int(secrets.size(), 6);

  // Unset secrets are not returned (an empty "secret" would mask nothing, or everything).
  Config plain;
  fail_unless(config_secrets(plain).empty());
}
GST_END_TEST;

static Suite *config_suite(void) {
  Suite *s = suite_create("config");
  TCase *tc = tcase_create("config");
  suite_add_tcase(s, tc);
  tcase_add_checked_fixture(tc, clear_env, clear_env);
  tcase_add_test(tc, test_defaults);
  tcase_add_test(tc, test_default_instructions);
  tcase_add_test(tc, test_precedence_every_setting);
  tcase_add_test(tc, test_config_file_from_environment);
  tcase_add_test(tc, test_empty_environment_is_unset);
  tcase_add_test(tc, test_key_file_escapes_and_comments);
  tcase_add_test(tc, test_last_occurrence_wins);
  tcase_add_test(tc, test_accepted_forms);
  tcase_add_test(tc, test_exact_error_message);
  tcase_add_test(tc, test_validation_errors);
  tcase_add_test(tc, test_turn_password_not_echoed);
  tcase_add_test(tc, test_command_line_errors);
  tcase_add_test(tc, test_config_file_errors);
  tcase_add_test(tc, test_instructions_from_file);
  tcase_add_test(tc, test_whatsapp_needs_app_secret);
  tcase_add_test(tc, test_help);
  tcase_add_test(tc, test_secrets);
  return s;
}

GST_CHECK_MAIN(config);
