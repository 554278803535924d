// Settings (see config.h, CONTRACT.md §2). One table describes every setting once: its option,
// environment variable, key-file key, help text and parser. Command line, environment, config file
// and --help are all driven by that table, so they cannot drift apart.
#include "config.h"

#include <gio/gio.h>
#include <glib.h>

#include <unistd.h>

#include <climits>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>

#ifndef VERSION
#define VERSION "unknown"
#endif

namespace vb {

const char *const kDefaultInstructions =
    "You are a helpful voice assistant answering a phone call for a business. "
    "Keep your answers short and conversational: one or two sentences at a time, then let the caller speak. "
    "Always reply in the language the caller speaks. "
    "Be polite and friendly, and if you do not know something, say so instead of guessing. "
    "If asked, say that you are an AI assistant.";

namespace {

enum class Source { CommandLine, Environment, File };

struct Value {
  std::string text;
  Source source = Source::CommandLine;
};

// What a parser needs besides the value: where relative @FILE paths are anchored.
struct ParseContext {
  Source source;
  std::string config_dir;  // directory of the config file, for values that came from it
};

// A parser stores the value in the config, or returns false with the reason, which is everything
// after "invalid --opt (ENV): " (it quotes the value itself, or a redacted form of it).
using Parser = bool (*)(Config *c, const std::string &v, const ParseContext &ctx, std::string *reason);
using DefaultText = std::string (*)(const Config &defaults);

struct OptionDef {
  const char *name;  // long option without "--"; also the key in the [voicebridge] group
  const char *env;
  const char *group;
  const char *arg;   // placeholder shown in --help; nullptr: a flag that takes no value
  DefaultText default_text;
  const char *help;  // may contain '\n' for a second line
  Parser parse;
};

std::string quoted(const std::string &v) { return "'" + v + "'"; }

std::string trimmed(const std::string &v) {
  size_t b = v.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  size_t e = v.find_last_not_of(" \t\r\n");
  return v.substr(b, e - b + 1);
}

bool parse_int(const std::string &raw, long long min, long long max, long long *out, std::string *reason) {
  std::string v = trimmed(raw);
  gint64 n = 0;
  if (v.empty() || !g_ascii_string_to_signed(v.c_str(), 10, min, max, &n, nullptr)) {
    if (max >= INT_MAX) {
      *reason = quoted(raw) + " is not a whole number ≥ " + std::to_string(min);
    } else {
      *reason = quoted(raw) + " is not a whole number between " + std::to_string(min) + " and " + std::to_string(max);
    }
    return false;
  }
  *out = n;
  return true;
}

bool parse_int_into(int *field, const std::string &raw, long long min, long long max, std::string *reason) {
  long long n;
  if (!parse_int(raw, min, max, &n, reason)) return false;
  *field = (int)n;
  return true;
}

bool parse_bool(const std::string &raw, bool *out) {
  std::string v = trimmed(raw);
  static const char *const yes[] = {"1", "true", "yes", "on"};
  static const char *const no[] = {"0", "false", "no", "off"};
  for (const char *y : yes) {
    if (g_ascii_strcasecmp(v.c_str(), y) == 0) {
      *out = true;
      return true;
    }
  }
  for (const char *n : no) {
    if (g_ascii_strcasecmp(v.c_str(), n) == 0) {
      *out = false;
      return true;
    }
  }
  return false;
}

bool is_ip(const std::string &v, GSocketFamily *family = nullptr) {
  GInetAddress *a = g_inet_address_new_from_string(v.c_str());
  if (!a) return false;
  if (family) *family = g_inet_address_get_family(a);
  g_object_unref(a);
  return true;
}

// Host names as resolvers accept them; IP literals are checked by is_ip().
bool is_hostname(const std::string &h) {
  if (h.empty() || h.size() > 253 || h.front() == '-' || h.front() == '.') return false;
  for (char c : h) {
    if (!g_ascii_isalnum(c) && c != '-' && c != '.' && c != '_') return false;
  }
  return true;
}

bool parse_port(const std::string &v, int min, int *out) {
  guint64 n = 0;
  if (v.empty() || !g_ascii_string_to_unsigned(v.c_str(), 10, (guint64)min, 65535, &n, nullptr)) return false;
  *out = (int)n;
  return true;
}

// HOST:PORT or [IPv6]:PORT. On failure, *why says what is wrong (without the value).
bool check_host_port(const std::string &v, int min_port, std::string *why) {
  std::string host, port;
  if (!v.empty() && v[0] == '[') {
    size_t close = v.find(']');
    if (close == std::string::npos || close + 1 >= v.size() || v[close + 1] != ':') {
      *why = "is not [IPv6]:PORT";
      return false;
    }
    host = v.substr(1, close - 1);
    port = v.substr(close + 2);
    GSocketFamily family;
    if (!is_ip(host, &family) || family != G_SOCKET_FAMILY_IPV6) {
      *why = "has no valid IPv6 address between the brackets";
      return false;
    }
  } else {
    size_t colon = v.rfind(':');
    if (colon == std::string::npos) {
      *why = "has no :PORT";
      return false;
    }
    host = v.substr(0, colon);
    port = v.substr(colon + 1);
    if (host.find(':') != std::string::npos) {
      *why = "needs brackets around an IPv6 address, e.g. [::1]:8080";
      return false;
    }
    if (host.empty()) {
      *why = "has no host";
      return false;
    }
    if (!is_ip(host) && !is_hostname(host)) {
      *why = "has an invalid host name";
      return false;
    }
  }
  int p;
  if (!parse_port(port, min_port, &p)) {
    *why = "has no port between " + std::to_string(min_port) + " and 65535";
    return false;
  }
  return true;
}

struct TurnParts {
  std::string scheme, user, password, host_port, query;
};

// turn(s)://user:pass@host:port[?transport=udp|tcp]; the password is split at the last '@' so
// that one containing '@' still parses.
bool split_turn(const std::string &v, TurnParts *out) {
  size_t sep = v.find("://");
  if (sep == std::string::npos) return false;
  out->scheme = v.substr(0, sep);
  std::string rest = v.substr(sep + 3);
  size_t q = rest.find('?');
  if (q != std::string::npos) {
    out->query = rest.substr(q + 1);
    rest.erase(q);
  }
  size_t at = rest.rfind('@');
  if (at == std::string::npos) return false;
  std::string userinfo = rest.substr(0, at);
  out->host_port = rest.substr(at + 1);
  size_t colon = userinfo.find(':');
  if (colon == std::string::npos) {
    out->user = userinfo;
    return true;
  }
  out->user = userinfo.substr(0, colon);
  out->password = userinfo.substr(colon + 1);
  return true;
}

// Error messages quote the TURN URI without its password: they go to standard error and logs.
std::string redacted_turn(const std::string &v) {
  TurnParts t;
  if (!split_turn(v, &t) || t.password.empty()) return v.find('@') == std::string::npos ? v : "(redacted)";
  std::string out = t.scheme + "://" + t.user + ":***@" + t.host_port;
  if (!t.query.empty()) out += "?" + t.query;
  return out;
}

bool check_url(const std::string &v, std::initializer_list<const char *> schemes, std::string *reason) {
  GError *err = nullptr;
  GUri *uri = g_uri_parse(v.c_str(), G_URI_FLAGS_NONE, &err);
  if (!uri) {
    *reason = quoted(v) + " is not a URL (" + err->message + ")";
    g_error_free(err);
    return false;
  }
  std::string scheme = g_uri_get_scheme(uri);
  const char *host = g_uri_get_host(uri);
  bool has_host = host && *host;
  g_uri_unref(uri);
  bool scheme_ok = false;
  std::string expected;
  for (const char *s : schemes) {
    if (g_ascii_strcasecmp(scheme.c_str(), s) == 0) scheme_ok = true;
    expected += expected.empty() ? std::string(s) + "://" : std::string(" or ") + s + "://";
  }
  if (!scheme_ok) {
    *reason = quoted(v) + " does not start with " + expected;
    return false;
  }
  if (!has_host) {
    *reason = quoted(v) + " has no host";
    return false;
  }
  return true;
}

// --- parsers, one per setting ------------------------------------------------------------------

bool parse_listen(Config *c, const std::string &raw, const ParseContext &, std::string *reason) {
  std::string v = trimmed(raw);
  if (g_str_has_prefix(v.c_str(), "unix:")) {
    if (v.size() == strlen("unix:")) {
      *reason = quoted(raw) + " has an empty socket path";
      return false;
    }
    c->listen = v;
    return true;
  }
  std::string why;
  if (!check_host_port(v, 0, &why)) {
    *reason = quoted(raw) + " " + why + " (expected HOST:PORT, [IPv6]:PORT or unix:PATH)";
    return false;
  }
  c->listen = v;
  return true;
}

bool parse_max_calls(Config *c, const std::string &v, const ParseContext &, std::string *reason) {
  return parse_int_into(&c->max_calls, v, 1, INT_MAX, reason);
}

bool parse_max_body(Config *c, const std::string &v, const ParseContext &, std::string *reason) {
  // Below 1 KiB not even an SDP offer fits; above 1 GiB a client could exhaust memory.
  long long n;
  if (!parse_int(v, 1024, 1LL << 30, &n, reason)) return false;
  c->max_body_bytes = (size_t)n;
  return true;
}

bool parse_ice_addresses(Config *c, const std::string &raw, const ParseContext &, std::string *reason) {
  std::vector<std::string> out;
  gchar **parts = g_strsplit(raw.c_str(), ",", -1);
  for (gchar **p = parts; *p; p++) {
    std::string a = trimmed(*p);
    if (a.empty()) continue;  // tolerate "a,b," and spaces after commas
    if (!is_ip(a)) {
      *reason = quoted(a) + " is not an IP address";
      if (a != raw) *reason += " (in " + quoted(raw) + ")";
      g_strfreev(parts);
      return false;
    }
    out.push_back(a);
  }
  g_strfreev(parts);
  c->ice_addresses = std::move(out);
  return true;
}

bool parse_rtp_range(Config *c, const std::string &raw, const ParseContext &, std::string *reason) {
  std::string v = trimmed(raw);
  if (v.empty()) {
    c->rtp_port_min = c->rtp_port_max = 0;
    return true;
  }
  size_t dash = v.find('-');
  int lo = 0, hi = 0;
  if (dash == std::string::npos || !parse_port(trimmed(v.substr(0, dash)), 1, &lo) ||
      !parse_port(trimmed(v.substr(dash + 1)), 1, &hi)) {
    *reason = quoted(raw) + " is not MIN-MAX with ports between 1 and 65535";
    return false;
  }
  if (lo > hi) {
    *reason = quoted(raw) + " has MIN above MAX";
    return false;
  }
  if (hi - lo < 1) {
    // ICE needs a second port to fall back on when the first is taken.
    *reason = quoted(raw) + " must span at least 2 ports";
    return false;
  }
  c->rtp_port_min = lo;
  c->rtp_port_max = hi;
  return true;
}

bool parse_public_ip(Config *c, const std::string &raw, const ParseContext &, std::string *reason) {
  std::string v = trimmed(raw);
  if (!v.empty() && !is_ip(v)) {
    *reason = quoted(raw) + " is not an IP address";
    return false;
  }
  c->public_ip = v;
  return true;
}

bool parse_stun(Config *c, const std::string &raw, const ParseContext &, std::string *reason) {
  std::string v = trimmed(raw);
  if (v.empty()) {
    c->stun_server.clear();
    return true;
  }
  if (!g_str_has_prefix(v.c_str(), "stun://")) {
    *reason = quoted(raw) + " does not start with stun://";
    return false;
  }
  std::string why;
  if (!check_host_port(v.substr(strlen("stun://")), 1, &why)) {
    *reason = quoted(raw) + " " + why + " (expected stun://HOST:PORT)";
    return false;
  }
  c->stun_server = v;
  return true;
}

bool parse_turn(Config *c, const std::string &raw, const ParseContext &, std::string *reason) {
  std::string v = trimmed(raw);
  if (v.empty()) {
    c->turn_server.clear();
    return true;
  }
  const std::string shown = quoted(redacted_turn(v));
  if (!g_str_has_prefix(v.c_str(), "turn://") && !g_str_has_prefix(v.c_str(), "turns://")) {
    *reason = shown + " does not start with turn:// or turns://";
    return false;
  }
  TurnParts t;
  if (!split_turn(v, &t) || t.user.empty() || t.password.empty()) {
    *reason = shown + " has no USER:PASS@ (expected turn(s)://USER:PASS@HOST:PORT)";
    return false;
  }
  std::string why;
  if (!check_host_port(t.host_port, 1, &why)) {
    *reason = shown + " " + why + " (expected turn(s)://USER:PASS@HOST:PORT)";
    return false;
  }
  if (!t.query.empty() && t.query != "transport=udp" && t.query != "transport=tcp") {
    *reason = shown + " has an unsupported query (only ?transport=udp or ?transport=tcp)";
    return false;
  }
  c->turn_server = v;
  return true;
}

bool parse_jitter(Config *c, const std::string &v, const ParseContext &, std::string *reason) {
  return parse_int_into(&c->jitter_latency_ms, v, 0, 2000, reason);
}

bool parse_opus_complexity(Config *c, const std::string &v, const ParseContext &, std::string *reason) {
  return parse_int_into(&c->opus_complexity, v, 0, 10, reason);
}

bool parse_gather_timeout(Config *c, const std::string &v, const ParseContext &, std::string *reason) {
  return parse_int_into(&c->gather_timeout_ms, v, 100, 60000, reason);
}

bool parse_api_key(Config *c, const std::string &v, const ParseContext &, std::string *) {
  c->api_key = trimmed(v);  // a pasted key often carries a newline
  return true;
}

bool parse_realtime_url(Config *c, const std::string &raw, const ParseContext &, std::string *reason) {
  std::string v = trimmed(raw);
  if (!v.empty() && !check_url(v, {"ws", "wss"}, reason)) return false;
  c->realtime_url = v;
  return true;
}

bool parse_non_empty(std::string *field, const std::string &raw, std::string *reason) {
  std::string v = trimmed(raw);
  if (v.empty()) {
    *reason = "must not be empty";
    return false;
  }
  *field = v;
  return true;
}

bool parse_model(Config *c, const std::string &v, const ParseContext &, std::string *reason) {
  return parse_non_empty(&c->model, v, reason);
}

bool parse_voice(Config *c, const std::string &v, const ParseContext &, std::string *reason) {
  return parse_non_empty(&c->voice, v, reason);
}

bool parse_instructions(Config *c, const std::string &v, const ParseContext &ctx, std::string *reason) {
  if (v.empty() || v[0] != '@') {
    c->instructions = v;
    return true;
  }
  if (v.size() > 1 && v[1] == '@') {  // "@@text": literal text that starts with '@'
    c->instructions = v.substr(1);
    return true;
  }
  std::string path = trimmed(v.substr(1));
  if (path.empty()) {
    *reason = "'@' names no file (use @FILE)";
    return false;
  }
  // A relative path in a config file means "next to the config file", wherever the service
  // was started from.
  if (ctx.source == Source::File && !g_path_is_absolute(path.c_str()) && !ctx.config_dir.empty()) {
    char *joined = g_build_filename(ctx.config_dir.c_str(), path.c_str(), nullptr);
    path = joined;
    g_free(joined);
  }
  char *contents = nullptr;
  gsize length = 0;
  GError *err = nullptr;
  if (!g_file_get_contents(path.c_str(), &contents, &length, &err)) {
    *reason = "cannot read " + quoted(path) + ": " + err->message;
    g_error_free(err);
    return false;
  }
  std::string text(contents, length);
  g_free(contents);
  if (!g_utf8_validate(text.data(), (gssize)text.size(), nullptr)) {
    *reason = quoted(path) + " is not UTF-8 text";
    return false;
  }
  text = trimmed(text);
  if (text.empty()) {
    *reason = quoted(path) + " is empty";
    return false;
  }
  c->instructions = text;
  return true;
}

bool parse_greeting(Config *c, const std::string &v, const ParseContext &, std::string *) {
  c->greeting = v;
  return true;
}

bool parse_transcription_model(Config *c, const std::string &v, const ParseContext &, std::string *) {
  c->transcription_model = trimmed(v);  // empty: no transcription of the caller
  return true;
}

bool parse_media_timeout(Config *c, const std::string &v, const ParseContext &, std::string *reason) {
  return parse_int_into(&c->media_timeout_s, v, 1, 3600, reason);
}

bool parse_max_call(Config *c, const std::string &v, const ParseContext &, std::string *reason) {
  return parse_int_into(&c->max_call_s, v, 1, 86400, reason);
}

bool parse_drain_timeout(Config *c, const std::string &v, const ParseContext &, std::string *reason) {
  return parse_int_into(&c->drain_timeout_s, v, 0, 3600, reason);
}

// An optional http(s) URL of the operator's own service (the hooks below); empty: unset.
bool parse_hook_url(std::string *field, const std::string &raw, std::string *reason) {
  std::string v = trimmed(raw);
  if (!v.empty() && !check_url(v, {"http", "https"}, reason)) return false;
  *field = v;
  return true;
}

bool parse_call_config_url(Config *c, const std::string &v, const ParseContext &, std::string *reason) {
  return parse_hook_url(&c->call_config_url, v, reason);
}

bool parse_call_config_timeout(Config *c, const std::string &v, const ParseContext &, std::string *reason) {
  // The hook delays the answer to the caller: WhatsApp and browsers give up after a few seconds.
  return parse_int_into(&c->call_config_timeout_ms, v, 50, 10000, reason);
}

bool parse_tool_webhook_url(Config *c, const std::string &v, const ParseContext &, std::string *reason) {
  return parse_hook_url(&c->tool_webhook_url, v, reason);
}

bool parse_tool_timeout(Config *c, const std::string &v, const ParseContext &, std::string *reason) {
  return parse_int_into(&c->tool_timeout_ms, v, 100, 120000, reason);
}

bool parse_transcript_dir(Config *c, const std::string &raw, const ParseContext &ctx, std::string *reason) {
  std::string path = trimmed(raw);
  if (path.empty()) {
    c->transcript_dir.clear();
    return true;
  }
  // Like @FILE, a relative path in a config file is anchored at the file's directory.
  if (ctx.source == Source::File && !g_path_is_absolute(path.c_str()) && !ctx.config_dir.empty()) {
    char *joined = g_build_filename(ctx.config_dir.c_str(), path.c_str(), nullptr);
    path = joined;
    g_free(joined);
  }
  // Checked now: a transcript that cannot be written is only noticed when the first call ends.
  if (!g_file_test(path.c_str(), G_FILE_TEST_IS_DIR)) {
    *reason = quoted(path) + " is not a directory";
    return false;
  }
  if (access(path.c_str(), W_OK | X_OK) != 0) {
    *reason = quoted(path) + " is not writable";
    return false;
  }
  c->transcript_dir = path;
  return true;
}

bool parse_transcript_url(Config *c, const std::string &v, const ParseContext &, std::string *reason) {
  return parse_hook_url(&c->transcript_url, v, reason);
}

bool parse_price(double *field, const std::string &raw, std::string *reason) {
  std::string v = trimmed(raw);
  char *end = nullptr;
  double d = v.empty() ? 0 : g_ascii_strtod(v.c_str(), &end);
  if (v.empty() || !end || *end || !std::isfinite(d) || d < 0 || d > 1e6) {
    *reason = quoted(raw) + " is not a price in USD per 1M tokens (a number from 0 to 1000000)";
    return false;
  }
  *field = d;
  return true;
}

bool parse_price_audio_in(Config *c, const std::string &v, const ParseContext &, std::string *reason) {
  return parse_price(&c->price_audio_in, v, reason);
}

bool parse_price_audio_out(Config *c, const std::string &v, const ParseContext &, std::string *reason) {
  return parse_price(&c->price_audio_out, v, reason);
}

bool parse_price_text_in(Config *c, const std::string &v, const ParseContext &, std::string *reason) {
  return parse_price(&c->price_text_in, v, reason);
}

bool parse_price_text_out(Config *c, const std::string &v, const ParseContext &, std::string *reason) {
  return parse_price(&c->price_text_out, v, reason);
}

bool parse_price_cached_in(Config *c, const std::string &v, const ParseContext &, std::string *reason) {
  return parse_price(&c->price_cached_in, v, reason);
}

// "0.4", "32": the shortest form, for --help.
std::string price_text(double v) {
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  return g_ascii_formatd(buf, sizeof buf, "%g", v);
}

bool parse_control_token(Config *c, const std::string &v, const ParseContext &, std::string *) {
  c->control_token = trimmed(v);
  return true;
}

bool parse_wa_token(Config *c, const std::string &v, const ParseContext &, std::string *) {
  c->whatsapp_token = trimmed(v);
  return true;
}

bool parse_wa_app_secret(Config *c, const std::string &v, const ParseContext &, std::string *) {
  c->whatsapp_app_secret = trimmed(v);
  return true;
}

bool parse_wa_verify_token(Config *c, const std::string &v, const ParseContext &, std::string *) {
  c->whatsapp_verify_token = trimmed(v);
  return true;
}

bool parse_wa_phone_id(Config *c, const std::string &v, const ParseContext &, std::string *) {
  c->whatsapp_phone_number_id = trimmed(v);
  return true;
}

bool parse_graph_url(Config *c, const std::string &raw, const ParseContext &, std::string *reason) {
  std::string v = trimmed(raw);
  if (!check_url(v, {"http", "https"}, reason)) return false;
  // Callers append "/<phone-number-id>/calls": a trailing slash would double it.
  while (v.size() > 1 && v.back() == '/') v.pop_back();
  c->whatsapp_graph_url = v;
  return true;
}

bool parse_insecure(Config *c, const std::string &v, const ParseContext &, std::string *reason) {
  if (!parse_bool(v, &c->insecure_skip_signature)) {
    *reason = quoted(v) + " is not true or false";
    return false;
  }
  return true;
}

bool parse_log_format(Config *c, const std::string &raw, const ParseContext &, std::string *reason) {
  std::string v = trimmed(raw);
  if (g_ascii_strcasecmp(v.c_str(), "text") == 0) {
    c->log_format = LogFormat::Text;
  } else if (g_ascii_strcasecmp(v.c_str(), "json") == 0) {
    c->log_format = LogFormat::Json;
  } else {
    *reason = quoted(raw) + " is not text or json";
    return false;
  }
  return true;
}

bool parse_log_level(Config *c, const std::string &raw, const ParseContext &, std::string *reason) {
  std::string v = trimmed(raw);
  static const std::pair<const char *, LogLevel> levels[] = {
      {"debug", LogLevel::Debug}, {"info", LogLevel::Info},       {"warning", LogLevel::Warning},
      {"warn", LogLevel::Warning}, {"error", LogLevel::Error}};
  for (const auto &l : levels) {
    if (g_ascii_strcasecmp(v.c_str(), l.first) == 0) {
      c->log_level = l.second;
      return true;
    }
  }
  *reason = quoted(raw) + " is not debug, info, warning or error";
  return false;
}

std::string unset(const Config &) { return "unset"; }

const char *const kHttp = "HTTP API";
const char *const kMedia = "Media and network";
const char *const kModel = "Realtime model";
const char *const kLimits = "Call limits";
const char *const kAgent = "Agent: per-call configuration, tools, transcripts";
const char *const kWhatsApp = "WhatsApp";
const char *const kLogging = "Logging";

// Order: the order of --help, and the order in which settings are validated (the first bad one
// is reported).
const OptionDef kOptions[] = {
    {"listen", "VOICEBRIDGE_LISTEN", kHttp, "HOST:PORT", [](const Config &d) { return d.listen; },
     "HTTP listen address: HOST:PORT, [IPv6]:PORT or unix:PATH", parse_listen},
    {"control-token", "VOICEBRIDGE_CONTROL_TOKEN", kHttp, "TOKEN", unset,
     "when set, every /v1/* request needs 'Authorization: Bearer TOKEN'", parse_control_token},
    {"max-calls", "VOICEBRIDGE_MAX_CALLS", kHttp, "N", [](const Config &d) { return std::to_string(d.max_calls); },
     "concurrent calls admitted; more get 503 at_capacity", parse_max_calls},
    {"max-body-bytes", "VOICEBRIDGE_MAX_BODY_BYTES", kHttp, "BYTES",
     [](const Config &d) { return std::to_string(d.max_body_bytes); },
     "larger request bodies get 413 body_too_large (1 KiB to 1 GiB)", parse_max_body},

    {"ice-addresses", "VOICEBRIDGE_ICE_ADDRESSES", kMedia, "IP,IP…",
     [](const Config &) { return std::string("all usable interfaces"); },
     "comma-separated local IP addresses ICE may gather candidates on", parse_ice_addresses},
    {"rtp-port-range", "VOICEBRIDGE_RTP_PORT_RANGE", kMedia, "MIN-MAX",
     [](const Config &) { return std::string("system-chosen"); },
     "UDP ports for media (open them in the firewall; at least 2)", parse_rtp_range},
    {"public-ip", "VOICEBRIDGE_PUBLIC_IP", kMedia, "IP", unset,
     "1:1 NAT address to advertise in answers (cloud VMs behind NAT)", parse_public_ip},
    {"stun-server", "VOICEBRIDGE_STUN_SERVER", kMedia, "stun://HOST:PORT", unset, "STUN server for ICE",
     parse_stun},
    {"turn-server", "VOICEBRIDGE_TURN_SERVER", kMedia, "turn://USER:PASS@HOST:PORT", unset,
     "TURN relay for ICE (turns:// for TLS)", parse_turn},
    {"jitter-latency-ms", "VOICEBRIDGE_JITTER_LATENCY_MS", kMedia, "MS",
     [](const Config &d) { return std::to_string(d.jitter_latency_ms); },
     "jitter buffer for the caller's audio (0 to 2000)", parse_jitter},
    {"opus-complexity", "VOICEBRIDGE_OPUS_COMPLEXITY", kMedia, "0-10",
     [](const Config &d) { return std::to_string(d.opus_complexity); },
     "Opus encoder complexity for audio to the caller", parse_opus_complexity},
    {"gather-timeout-ms", "VOICEBRIDGE_GATHER_TIMEOUT_MS", kMedia, "MS",
     [](const Config &d) { return std::to_string(d.gather_timeout_ms); },
     "answer with the candidates gathered so far after this long\n(100 to 60000)", parse_gather_timeout},

    {"api-key", "OPENAI_API_KEY", kModel, "KEY", unset,
     "key for the Realtime API (without it and without --realtime-url:\nthe built-in local agent answers)",
     parse_api_key},
    {"realtime-url", "OPENAI_REALTIME_URL", kModel, "URL",
     [](const Config &) { return std::string("wss://api.openai.com/v1/realtime"); },
     "WebSocket URL of the Realtime API (ws:// or wss://)", parse_realtime_url},
    {"model", "OPENAI_REALTIME_MODEL", kModel, "NAME", [](const Config &d) { return d.model; },
     "model name (sent as ?model=)", parse_model},
    {"voice", "OPENAI_REALTIME_VOICE", kModel, "NAME", [](const Config &d) { return d.voice; }, "voice of the agent",
     parse_voice},
    {"instructions", "VOICEBRIDGE_INSTRUCTIONS", kModel, "TEXT|@FILE",
     [](const Config &) { return std::string("a short, polite phone-agent prompt"); },
     "system instructions; @FILE reads them from a file\n(@@ for text that starts with '@')", parse_instructions},
    {"greeting", "VOICEBRIDGE_GREETING", kModel, "TEXT", [](const Config &) { return std::string("none"); },
     "first words of the agent when a call starts", parse_greeting},
    {"transcription-model", "VOICEBRIDGE_TRANSCRIPTION_MODEL", kModel, "NAME",
     [](const Config &d) { return d.transcription_model; },
     "model transcribing the caller (empty: no transcription)", parse_transcription_model},

    {"media-timeout-s", "VOICEBRIDGE_MEDIA_TIMEOUT_S", kLimits, "S",
     [](const Config &d) { return std::to_string(d.media_timeout_s); },
     "no media from the caller for this long ends the call (1 to 3600)", parse_media_timeout},
    {"max-call-s", "VOICEBRIDGE_MAX_CALL_S", kLimits, "S", [](const Config &d) { return std::to_string(d.max_call_s); },
     "maximum call length (1 to 86400)", parse_max_call},
    {"drain-timeout-s", "VOICEBRIDGE_DRAIN_TIMEOUT_S", kLimits, "S",
     [](const Config &d) { return std::to_string(d.drain_timeout_s); },
     "on SIGTERM, calls still up after this long are ended (0 to 3600)", parse_drain_timeout},

    {"call-config-url", "VOICEBRIDGE_CALL_CONFIG_URL", kAgent, "URL", unset,
     "POSTed before each call; its JSON reply may set the call's\ninstructions, voice, greeting, tools and metadata",
     parse_call_config_url},
    {"call-config-timeout-ms", "VOICEBRIDGE_CALL_CONFIG_TIMEOUT_MS", kAgent, "MS",
     [](const Config &d) { return std::to_string(d.call_config_timeout_ms); },
     "without a reply by then the call uses the defaults (50 to 10000)", parse_call_config_timeout},
    {"tool-webhook-url", "VOICEBRIDGE_TOOL_WEBHOOK_URL", kAgent, "URL", unset,
     "the model's function calls (except end_call) are POSTed here;\nthe reply is the function's output",
     parse_tool_webhook_url},
    {"tool-timeout-ms", "VOICEBRIDGE_TOOL_TIMEOUT_MS", kAgent, "MS",
     [](const Config &d) { return std::to_string(d.tool_timeout_ms); },
     "a tool without a reply by then returns an error (100 to 120000)", parse_tool_timeout},
    {"transcript-dir", "VOICEBRIDGE_TRANSCRIPT_DIR", kAgent, "DIR", unset,
     "write each call's transcript, usage and cost to DIR/<call_id>.json", parse_transcript_dir},
    {"transcript-url", "VOICEBRIDGE_TRANSCRIPT_URL", kAgent, "URL", unset,
     "POST each call's transcript JSON here when the call ends", parse_transcript_url},
    {"price-audio-in", "VOICEBRIDGE_PRICE_AUDIO_IN", kAgent, "USD",
     [](const Config &d) { return price_text(d.price_audio_in); },
     "price of 1M audio input tokens, for the cost estimate", parse_price_audio_in},
    {"price-audio-out", "VOICEBRIDGE_PRICE_AUDIO_OUT", kAgent, "USD",
     [](const Config &d) { return price_text(d.price_audio_out); },
     "price of 1M audio output tokens", parse_price_audio_out},
    {"price-text-in", "VOICEBRIDGE_PRICE_TEXT_IN", kAgent, "USD",
     [](const Config &d) { return price_text(d.price_text_in); },
     "price of 1M text input tokens", parse_price_text_in},
    {"price-text-out", "VOICEBRIDGE_PRICE_TEXT_OUT", kAgent, "USD",
     [](const Config &d) { return price_text(d.price_text_out); },
     "price of 1M text output tokens", parse_price_text_out},
    {"price-cached-in", "VOICEBRIDGE_PRICE_CACHED_IN", kAgent, "USD",
     [](const Config &d) { return price_text(d.price_cached_in); },
     "price of 1M cached input tokens", parse_price_cached_in},

    {"whatsapp-token", "WHATSAPP_ACCESS_TOKEN", kWhatsApp, "TOKEN", unset,
     "Graph API bearer token (enables WhatsApp calling)", parse_wa_token},
    {"whatsapp-app-secret", "WHATSAPP_APP_SECRET", kWhatsApp, "SECRET", unset,
     "app secret that signs webhooks (required for WhatsApp)", parse_wa_app_secret},
    {"whatsapp-verify-token", "WHATSAPP_VERIFY_TOKEN", kWhatsApp, "TOKEN", unset,
     "token of the webhook GET handshake", parse_wa_verify_token},
    {"whatsapp-phone-number-id", "WHATSAPP_PHONE_NUMBER_ID", kWhatsApp, "ID", unset,
     "the business phone number's id", parse_wa_phone_id},
    {"whatsapp-graph-url", "WHATSAPP_GRAPH_URL", kWhatsApp, "URL", [](const Config &d) { return d.whatsapp_graph_url; },
     "Graph API base, version included", parse_graph_url},
    {"insecure-skip-signature", "VOICEBRIDGE_INSECURE_SKIP_SIGNATURE", kWhatsApp, nullptr,
     [](const Config &) { return std::string("off"); },
     "accept unsigned webhooks (testing only; warned at every start)", parse_insecure},

    {"log-format", "VOICEBRIDGE_LOG_FORMAT", kLogging, "text|json", [](const Config &) { return std::string("text"); },
     "text, or one JSON object per line", parse_log_format},
    {"log-level", "VOICEBRIDGE_LOG_LEVEL", kLogging, "LEVEL", [](const Config &) { return std::string("info"); },
     "debug, info, warning or error", parse_log_level},
};

const char *const kConfigEnv = "VOICEBRIDGE_CONFIG";

const OptionDef *find_option(const std::string &name) {
  for (const auto &o : kOptions) {
    if (name == o.name) return &o;
  }
  return nullptr;
}

std::string setting_name(const char *option, const char *env) {
  return std::string("--") + option + " (" + env + ")";
}

void append_option_help(std::string *out, const std::string &left, const std::string &help, const std::string &env,
                        const std::string &def) {
  constexpr size_t kColumn = 34;
  std::string line = "  " + left;
  const std::string indent(kColumn, ' ');
  // Columns are counted in characters, not bytes: placeholders may contain "…".
  size_t width = (size_t)g_utf8_strlen(line.c_str(), -1);
  if (width + 1 >= kColumn) {
    *out += line + "\n";
    line = indent;
  } else {
    line.append(kColumn - width, ' ');
  }
  gchar **help_lines = g_strsplit(help.c_str(), "\n", -1);
  for (gchar **l = help_lines; *l; l++) {
    *out += (l == help_lines ? line : indent) + *l + "\n";
  }
  g_strfreev(help_lines);
  *out += indent + "[" + env + "; default: " + def + "]\n";
}

std::string usage_text() {
  const Config defaults;
  std::string out;
  out +=
      "Usage: voicebridge [OPTION…]\n"
      "\n"
      "Answers WebRTC and WhatsApp calls with an AI voice agent (OpenAI Realtime API, or a built-in\n"
      "local agent when no key and no --realtime-url are given).\n"
      "\n"
      "Every option can also come from its environment variable [shown in brackets] or from a config\n"
      "file. The command line wins over the environment, which wins over the file; an empty\n"
      "variable counts as unset. Options take their value as --option VALUE or --option=VALUE.\n";
  const char *groups[] = {kHttp, kMedia, kModel, kLimits, kAgent, kWhatsApp, kLogging};
  for (const char *group : groups) {
    out += std::string("\n") + group + ":\n";
    for (const auto &o : kOptions) {
      if (strcmp(o.group, group) != 0) continue;
      std::string left = std::string("--") + o.name + (o.arg ? std::string("=") + o.arg : std::string());
      append_option_help(&out, left, o.help, o.env, o.default_text(defaults));
    }
  }
  out += "\nGeneral:\n";
  append_option_help(&out, "--config=FILE",
                     "read settings from a GLib key-file: group [voicebridge], keys named\n"
                     "like the options (listen=…, max-calls=…, api-key=…)",
                     kConfigEnv, "none");
  out += "  -h, --help                      show this help and exit\n";
  out += "  -V, --version                   show the version and exit\n";
  out +=
      "\n"
      "Examples:\n"
      "  # Try it locally with the built-in agent (no account needed):\n"
      "  voicebridge --listen 127.0.0.1:8080\n"
      "\n"
      "  # Answer calls with the OpenAI Realtime API, HTTP API protected by a token:\n"
      "  OPENAI_API_KEY=sk-... voicebridge --listen 0.0.0.0:8080 --control-token s3cret \\\n"
      "      --voice marin --instructions @/etc/voicebridge/prompt.txt\n"
      "\n"
      "  # WhatsApp Business calling on a cloud VM (webhook at https://YOUR-HOST/whatsapp/webhook):\n"
      "  OPENAI_API_KEY=sk-... WHATSAPP_ACCESS_TOKEN=EAAG... WHATSAPP_APP_SECRET=... \\\n"
      "  WHATSAPP_VERIFY_TOKEN=... WHATSAPP_PHONE_NUMBER_ID=1234567890 \\\n"
      "      voicebridge --listen 0.0.0.0:8080 --public-ip 203.0.113.10 --rtp-port-range 40000-40999\n"
      "\n"
      "Config file example (voicebridge --config /etc/voicebridge.conf):\n"
      "  [voicebridge]\n"
      "  listen=0.0.0.0:8080\n"
      "  max-calls=20\n"
      "  # a relative @FILE is read from the config file's directory\n"
      "  instructions=@prompt.txt\n"
      "\n"
      "Exit status: 0 after --help or --version, 2 for a bad option or setting.\n";
  return out;
}

struct KeyFileDeleter {
  void operator()(GKeyFile *k) const { g_key_file_free(k); }
};

// Loads the [voicebridge] group of a key-file into *values. Every key must be a known setting:
// a typo in a file would otherwise be silently ignored.
bool load_config_file(const std::string &path, std::map<std::string, Value> *values, std::string *message) {
  const std::string setting = setting_name("config", kConfigEnv);
  std::unique_ptr<GKeyFile, KeyFileDeleter> kf(g_key_file_new());
  GError *err = nullptr;
  if (!g_key_file_load_from_file(kf.get(), path.c_str(), G_KEY_FILE_NONE, &err)) {
    *message = "invalid " + setting + ": cannot read " + quoted(path) + ": " + err->message;
    g_error_free(err);
    return false;
  }
  gchar **groups = g_key_file_get_groups(kf.get(), nullptr);
  for (gchar **g = groups; *g; g++) {
    if (strcmp(*g, "voicebridge") != 0) {
      *message = "invalid " + setting + ": " + quoted(path) + " has an unknown group [" + *g +
                 "] (settings go in [voicebridge])";
      g_strfreev(groups);
      return false;
    }
  }
  g_strfreev(groups);
  if (!g_key_file_has_group(kf.get(), "voicebridge")) return true;

  gchar **keys = g_key_file_get_keys(kf.get(), "voicebridge", nullptr, nullptr);
  bool ok = true;
  for (gchar **k = keys; *k && ok; k++) {
    if (!find_option(*k)) {
      *message = "invalid " + setting + ": unknown key " + quoted(*k) + " in " + quoted(path);
      ok = false;
      break;
    }
    // get_string undoes the key-file escapes (\n, \s, \\), so multi-line instructions work.
    gchar *v = g_key_file_get_string(kf.get(), "voicebridge", *k, &err);
    if (!v) {
      *message = "invalid " + setting + ": key " + quoted(*k) + " in " + quoted(path) + ": " + err->message;
      g_error_free(err);
      ok = false;
      break;
    }
    (*values)[*k] = Value{v, Source::File};
    g_free(v);
  }
  g_strfreev(keys);
  return ok;
}

}  // namespace

ParseOutcome parse_config(int argc, char **argv, Config *config, std::string *message) {
  message->clear();
  std::map<std::string, Value> cli;
  std::string config_path;
  bool have_config_path = false, help = false, version = false;
  std::string first_error;

  for (int i = 1; i < argc; i++) {
    std::string arg = argv[i] ? argv[i] : "";
    if (arg == "-h" || arg == "--help") {
      help = true;
      continue;
    }
    if (arg == "--version" || arg == "-V") {
      version = true;
      continue;
    }
    if (arg.size() < 3 || arg.compare(0, 2, "--") != 0) {
      // Positional arguments and short options: nothing takes them, and silently ignoring
      // "-listen" would start the service with a default the user tried to change.
      if (first_error.empty()) {
        first_error = arg.size() > 1 && arg[0] == '-' ? "unknown option " + quoted(arg) + " (see --help)"
                                                      : "unexpected argument " + quoted(arg) + " (see --help)";
      }
      continue;
    }
    std::string name = arg.substr(2), value;
    bool has_value = false;
    size_t eq = name.find('=');
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.erase(eq);
      has_value = true;
    }
    const OptionDef *opt = find_option(name);
    bool is_config = name == "config";
    if (!opt && !is_config) {
      if (first_error.empty()) first_error = "unknown option --" + name + " (see --help)";
      continue;
    }
    if (opt && !opt->arg) {  // a flag: --insecure-skip-signature[=BOOL]
      cli[name] = Value{has_value ? value : "true", Source::CommandLine};
      continue;
    }
    if (!has_value) {
      // A following "--something" is far more likely a forgotten value than a value.
      if (i + 1 >= argc) {
        if (first_error.empty()) first_error = "missing value for --" + name;
        continue;
      }
      if (g_str_has_prefix(argv[i + 1], "--")) {
        if (first_error.empty()) {
          first_error = "missing value for --" + name + " (write --" + name + "=VALUE for a value starting with --)";
        }
        continue;
      }
      value = argv[++i];
    }
    if (is_config) {
      config_path = value;
      have_config_path = true;
    } else {
      cli[name] = Value{value, Source::CommandLine};
    }
  }

  if (help) {
    *message = usage_text();
    return ParseOutcome::Help;
  }
  if (version) {
    *message = std::string("voicebridge ") + VERSION;
    return ParseOutcome::Version;
  }
  if (!first_error.empty()) {
    *message = first_error;
    return ParseOutcome::Error;
  }

  if (!have_config_path) {
    const char *env = g_getenv(kConfigEnv);
    if (env && *env) {
      config_path = env;
      have_config_path = true;
    }
  }
  std::map<std::string, Value> file;
  std::string config_dir;
  if (have_config_path) {
    if (config_path.empty()) {
      *message = "invalid " + setting_name("config", kConfigEnv) + ": empty file name";
      return ParseOutcome::Error;
    }
    if (!load_config_file(config_path, &file, message)) return ParseOutcome::Error;
    char *dir = g_path_get_dirname(config_path.c_str());
    config_dir = dir;
    g_free(dir);
  }

  Config c;
  for (const auto &o : kOptions) {
    const Value *v = nullptr;
    Value env_value;
    auto it = cli.find(o.name);
    if (it != cli.end()) {
      v = &it->second;
    } else if (const char *env = g_getenv(o.env); env && *env) {
      // An empty variable counts as unset: `FOO=` in compose files and unit files usually means
      // "not configured", and must not override the config file with nothing.
      env_value = Value{env, Source::Environment};
      v = &env_value;
    } else if (auto f = file.find(o.name); f != file.end()) {
      v = &f->second;
    }
    if (!v) continue;
    std::string reason;
    ParseContext ctx{v->source, v->source == Source::File ? config_dir : std::string()};
    if (!o.parse(&c, v->text, ctx, &reason)) {
      *message = "invalid " + setting_name(o.name, o.env) + ": " + reason;
      if (v->source == Source::File) *message += " (in " + config_path + ")";
      return ParseOutcome::Error;
    }
  }

  if (c.instructions.empty()) c.instructions = kDefaultInstructions;

  // CONTRACT.md §3: without the app secret, webhooks cannot be authenticated, so WhatsApp mode
  // refuses to start unless the operator explicitly opted out.
  if (c.whatsapp_enabled() && c.whatsapp_app_secret.empty() && !c.insecure_skip_signature) {
    *message = "invalid " + setting_name("whatsapp-app-secret", "WHATSAPP_APP_SECRET") +
               ": required when WhatsApp calling is configured (or pass --insecure-skip-signature for testing)";
    return ParseOutcome::Error;
  }

  *config = std::move(c);
  return ParseOutcome::Ok;
}

std::vector<std::string> config_secrets(const Config &config) {
  std::vector<std::string> out;
  auto add = [&out](const std::string &s) {
    if (!s.empty()) out.push_back(s);
  };
  add(config.api_key);
  add(config.control_token);
  add(config.whatsapp_token);
  add(config.whatsapp_app_secret);
  add(config.whatsapp_verify_token);
  TurnParts t;
  if (!config.turn_server.empty() && split_turn(config.turn_server, &t)) add(t.password);
  return out;
}

}  // namespace vb
