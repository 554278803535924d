#include "options.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>

#include <gio/gio.h>
#include <glib.h>
#include <glib/gstdio.h>

namespace vbcall {
namespace {

constexpr const char *kSummary =
    "Places one WebRTC call at a voicebridge (POST /v1/calls with an SDP offer, no trickle ICE),\n"
    "plays a WAV file to the agent, records what it hears and prints call timings.";

constexpr const char *kDescription =
    "Timings (printed at the end; one JSON object on stdout with --json):\n"
    "  answer_ms           POST /v1/calls sent -> SDP answer received\n"
    "  setup_ms            program start -> SDP answer received\n"
    "  media_connected_ms  answer -> ICE connected (or first RTP packet, whichever is first)\n"
    "  first_audio_ms      media connected -> first received audio above -40 dBFS (decoded)\n"
    "  duration_s          media connected -> hang-up\n"
    "  heard_audio_s       seconds of received audio above -40 dBFS\n"
    "  end                 why the call ended: duration, input_end, signal, remote,\n"
    "                      http_error, ice_failed, error\n"
    "\n"
    "The call is hung up with DELETE /v1/calls/{id}. It also ends on SIGINT/SIGTERM, when the\n"
    "bridge reports the call ended (GET /v1/calls/{id}, polled every second) and when no media\n"
    "has arrived for 10 s (the last two give end=remote).\n"
    "\n"
    "Exit status: 0 the call took place (hearing no audio is reported, not a failure);\n"
    "             1 the call failed (HTTP error: the bridge's error code is printed; ICE/DTLS failure);\n"
    "             2 bad option or unusable setting.\n"
    "\n"
    "Examples:\n"
    "  voicebridge-call --input hello.wav --output reply.wav\n"
    "  voicebridge-call --url unix:/run/voicebridge.sock --duration 20 --json\n"
    "  VOICEBRIDGE_CONTROL_TOKEN=secret voicebridge-call --url http://10.0.0.5:8080 --greeting 'Hi!'";

// Storage GOption writes into; freed in the destructor whatever happens.
struct RawOptions {
  gchar *url = nullptr, *token = nullptr, *input = nullptr, *output = nullptr;
  gchar *duration = nullptr, *tail = nullptr;
  gchar **ice = nullptr;
  gchar *instructions = nullptr, *voice = nullptr, *greeting = nullptr, *call_id = nullptr;
  gboolean json = FALSE, quiet = FALSE, help = FALSE, version = FALSE;
  ~RawOptions() {
    for (gchar *p : {url, token, input, output, duration, tail, instructions, voice, greeting, call_id})
      g_free(p);
    g_strfreev(ice);
  }
};

bool parse_seconds(const char *text, double min, double max, bool min_exclusive, double &out) {
  if (!text || !*text)
    return false;
  char *end = nullptr;
  double v = g_ascii_strtod(text, &end);
  if (*end != '\0' || !std::isfinite(v) || v > max || v < min || (min_exclusive && v == min))
    return false;
  out = v;
  return true;
}

bool host_is_loopback(const char *host) {
  if (!host)
    return false;
  if (g_ascii_strcasecmp(host, "localhost") == 0)
    return true;
  // GUri keeps the brackets of an IPv6 literal out of the host already.
  GInetAddress *addr = g_inet_address_new_from_string(host);
  if (!addr)
    return false;
  bool loop = g_inet_address_get_is_loopback(addr);
  g_object_unref(addr);
  return loop;
}

// A RIFF/WAVE header is what makes the file "FILE.wav"; checking it here turns a wrong path into a
// usage error (exit 2) instead of a decode failure in the middle of a call.
bool looks_like_wav(const char *path, std::string &why) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    why = g_strerror(errno);
    return false;
  }
  unsigned char hdr[12] = {};
  size_t n = fread(hdr, 1, sizeof hdr, f);
  fclose(f);
  if (n != sizeof hdr || (memcmp(hdr, "RIFF", 4) != 0 && memcmp(hdr, "RF64", 4) != 0) ||
      memcmp(hdr + 8, "WAVE", 4) != 0) {
    why = "not a WAV file (no RIFF/WAVE header)";
    return false;
  }
  return true;
}

ParseOutcome fail(std::string &message, const std::string &text) {
  message = "voicebridge-call: " + text + " (see --help)";
  return ParseOutcome::Error;
}

}  // namespace

ParseOutcome parse_options(int argc, char **argv, Options &out, std::string &message) {
  RawOptions raw;
  // Defaults are spelled out in every description: --help is the manual.
  const GOptionEntry entries[] = {
      {"url", 0, 0, G_OPTION_ARG_STRING, &raw.url,
       "voicebridge base URL, http://HOST:PORT or unix:/PATH/TO.sock (default http://127.0.0.1:8080)", "URL"},
      {"token", 0, 0, G_OPTION_ARG_STRING, &raw.token,
       "bearer token for the control API (default: $VOICEBRIDGE_CONTROL_TOKEN, else none)", "TOKEN"},
      {"input", 0, 0, G_OPTION_ARG_FILENAME, &raw.input,
       "WAV file to play to the agent once media is connected, then silence (default: silence only)", "FILE.wav"},
      {"output", 0, 0, G_OPTION_ARG_FILENAME, &raw.output,
       "record what is heard into this WAV file, 16-bit mono 48 kHz (default: no recording)", "FILE.wav"},
      {"duration", 0, 0, G_OPTION_ARG_STRING, &raw.duration,
       "hang up this many seconds after media connected (default: when the input ends plus --tail)", "SECONDS"},
      {"tail", 0, 0, G_OPTION_ARG_STRING, &raw.tail,
       "without --duration, keep listening this many seconds after the input ends (default 5)", "SECONDS"},
      {"ice-address", 0, 0, G_OPTION_ARG_STRING_ARRAY, &raw.ice,
       "local IP that ICE may gather on; repeatable or comma-separated (default 127.0.0.1 when the "
       "URL host is loopback or a unix socket, else all interfaces)", "IP"},
      {"instructions", 0, 0, G_OPTION_ARG_STRING, &raw.instructions,
       "system instructions for the agent; @FILE reads them from FILE (default: the bridge's own)", "TEXT"},
      {"voice", 0, 0, G_OPTION_ARG_STRING, &raw.voice, "agent voice (default: the bridge's own)", "NAME"},
      {"greeting", 0, 0, G_OPTION_ARG_STRING, &raw.greeting,
       "first words the agent says (default: the bridge's own)", "TEXT"},
      {"call-id", 0, 0, G_OPTION_ARG_STRING, &raw.call_id,
       "call id to ask for (default: the bridge chooses one)", "ID"},
      {"json", 0, 0, G_OPTION_ARG_NONE, &raw.json,
       "print the timings as one JSON object on stdout (default: a text summary)", nullptr},
      {"quiet", 'q', 0, G_OPTION_ARG_NONE, &raw.quiet,
       "no progress lines on stderr, only errors (default: progress shown)", nullptr},
      {"help", 'h', 0, G_OPTION_ARG_NONE, &raw.help, "show this help and exit", nullptr},
      {"version", 0, 0, G_OPTION_ARG_NONE, &raw.version, "print the version and exit", nullptr},
      {nullptr, 0, 0, G_OPTION_ARG_NONE, nullptr, nullptr, nullptr},
  };

  GOptionContext *ctx = g_option_context_new(nullptr);
  g_option_context_set_summary(ctx, kSummary);
  g_option_context_set_description(ctx, kDescription);
  // Our own --help: GOption's would print and exit() from inside the parser, bypassing main().
  g_option_context_set_help_enabled(ctx, FALSE);
  g_option_context_add_main_entries(ctx, entries, nullptr);

  // GOption edits the vector it parses; work on a copy so argv stays intact for the caller.
  gchar **args = g_new0(gchar *, argc + 1);
  for (int i = 0; i < argc; i++)
    args[i] = g_strdup(argv[i]);
  gchar **args_owner = static_cast<gchar **>(g_memdup2(args, sizeof(gchar *) * (argc + 1)));
  int n = argc;
  GError *err = nullptr;
  bool parsed = g_option_context_parse(ctx, &n, &args, &err);
  std::string help_text;
  if (parsed && raw.help) {
    gchar *h = g_option_context_get_help(ctx, TRUE, nullptr);
    help_text = h;
    g_free(h);
  }
  std::string stray = (parsed && n > 1) ? args[1] : "";
  g_option_context_free(ctx);
  g_free(args);            // the array GOption rearranged (its strings are owned by args_owner)
  g_strfreev(args_owner);  // every string, once

  if (!parsed) {
    std::string text = err->message;
    g_error_free(err);
    return fail(message, text);
  }
  if (raw.help) {
    message = help_text;
    return ParseOutcome::Help;
  }
  if (raw.version) {
    message = std::string("voicebridge-call ") + VERSION + "\n";
    return ParseOutcome::Version;
  }
  if (!stray.empty())
    return fail(message, "unexpected argument '" + stray + "'");

  Options o;
  if (raw.url)
    o.url = raw.url;
  if (g_str_has_prefix(o.url.c_str(), "unix:")) {
    o.unix_socket = o.url.substr(5);
    if (o.unix_socket.empty() || !g_path_is_absolute(o.unix_socket.c_str()))
      return fail(message, "--url: unix: needs an absolute socket path, e.g. unix:/run/voicebridge.sock");
    // The socket replaces the TCP connection; the host in the request line is cosmetic.
    o.http_base = "http://localhost";
  } else {
    GError *uerr = nullptr;
    GUri *uri = g_uri_parse(o.url.c_str(), G_URI_FLAGS_NONE, &uerr);
    if (!uri) {
      std::string text = "--url: '" + o.url + "' is not a URL: " + uerr->message;
      g_error_free(uerr);
      return fail(message, text);
    }
    const char *scheme = g_uri_get_scheme(uri);
    const char *host = g_uri_get_host(uri);
    bool ok = (g_ascii_strcasecmp(scheme, "http") == 0 || g_ascii_strcasecmp(scheme, "https") == 0) && host &&
              *host && !g_uri_get_query(uri) && !g_uri_get_fragment(uri);
    bool loopback = host_is_loopback(host);
    g_uri_unref(uri);
    if (!ok)
      return fail(message, "--url: '" + o.url + "' must be http(s)://HOST[:PORT][/PREFIX] or unix:/PATH");
    o.http_base = o.url;
    while (!o.http_base.empty() && o.http_base.back() == '/')
      o.http_base.pop_back();
    if (loopback && !raw.ice)
      o.ice_addresses.push_back("127.0.0.1");
  }
  if (!o.unix_socket.empty() && !raw.ice)
    o.ice_addresses.push_back("127.0.0.1");  // a unix socket means the bridge runs on this machine

  if (raw.token)
    o.token = raw.token;
  else if (const char *env = g_getenv("VOICEBRIDGE_CONTROL_TOKEN"))
    o.token = env;
  if (raw.token && o.token.empty())
    return fail(message, "--token: empty token");

  if (raw.input) {
    o.input = raw.input;
    if (!g_file_test(raw.input, G_FILE_TEST_IS_REGULAR))
      return fail(message, "--input: '" + o.input + "' is not a readable file");
    std::string why;
    if (!looks_like_wav(raw.input, why))
      return fail(message, "--input: '" + o.input + "': " + why);
  }
  if (raw.output) {
    o.output = raw.output;
    gchar *dir = g_path_get_dirname(raw.output);
    bool dir_ok = g_file_test(dir, G_FILE_TEST_IS_DIR) && g_access(dir, W_OK) == 0;
    g_free(dir);
    if (o.output.empty() || g_file_test(raw.output, G_FILE_TEST_IS_DIR) || !dir_ok)
      return fail(message, "--output: cannot write '" + o.output + "' (no such or no writable directory)");
    if (!o.input.empty() && o.input == o.output)
      return fail(message, "--output: must not be the --input file");
  }

  // A day bounds a typo like --duration 36000000 without limiting any real test.
  if (raw.duration && !parse_seconds(raw.duration, 0, 86400, true, o.duration_s))
    return fail(message, std::string("--duration: '") + raw.duration + "' is not a number of seconds in (0, 86400]");
  if (raw.tail && !parse_seconds(raw.tail, 0, 3600, false, o.tail_s))
    return fail(message, std::string("--tail: '") + raw.tail + "' is not a number of seconds in [0, 3600]");

  if (raw.ice) {
    for (gchar **p = raw.ice; *p; p++) {
      gchar **parts = g_strsplit(*p, ",", -1);
      for (gchar **q = parts; *q; q++) {
        gchar *ip = g_strstrip(*q);
        GInetAddress *a = g_inet_address_new_from_string(ip);
        if (!a) {
          std::string text = std::string("--ice-address: '") + ip + "' is not an IP address";
          g_strfreev(parts);
          return fail(message, text);
        }
        g_object_unref(a);
        o.ice_addresses.push_back(ip);
      }
      g_strfreev(parts);
    }
  }

  if (raw.instructions) {
    o.instructions = raw.instructions;
    if (o.instructions.size() > 1 && o.instructions[0] == '@') {
      gchar *text = nullptr;
      GError *ferr = nullptr;
      if (!g_file_get_contents(o.instructions.c_str() + 1, &text, nullptr, &ferr)) {
        std::string t = "--instructions: " + std::string(ferr->message);
        g_error_free(ferr);
        return fail(message, t);
      }
      o.instructions = text;
      g_free(text);
    }
  }
  if (raw.voice)
    o.voice = raw.voice;
  if (raw.greeting)
    o.greeting = raw.greeting;
  if (raw.call_id) {
    o.call_id = raw.call_id;
    // It ends up in a URL path (/v1/calls/{id}); keep it to characters that need no escaping.
    bool ok = !o.call_id.empty() && o.call_id.size() <= 128;
    for (char c : o.call_id)
      ok = ok && (g_ascii_isalnum(c) || c == '-' || c == '_' || c == '.');
    if (!ok)
      return fail(message, "--call-id: '" + o.call_id + "' must be 1-128 characters of [A-Za-z0-9._-]");
  }
  o.json = raw.json;
  o.quiet = raw.quiet;
  out = std::move(o);
  return ParseOutcome::Run;
}

}  // namespace vbcall
