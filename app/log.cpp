// Structured logging (see log.h). Lines are formatted outside any lock and written with a single
// write(2) under a mutex, so concurrent threads (main loop, webrtcbin, streaming threads) never
// interleave within a line even when standard error is a pipe shared with other processes.
#include "log.h"

#include <glib.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>
#include <vector>

namespace vb {

namespace {

struct LogState {
  std::mutex mutex;  // guards the fields below
  LogFormat format = LogFormat::Text;
  LogLevel min_level = LogLevel::Info;
  // Longest first, so that a secret containing another one is masked as a whole.
  std::vector<std::string> secrets;
  std::mutex write_mutex;  // one line at a time on fd 2
};

LogState &state() {
  // Never destroyed: threads may still log while static destructors run at exit.
  static LogState *s = new LogState();
  return *s;
}

// Shorter values would mask ordinary words and numbers all over the log.
constexpr size_t kMinSecretLength = 4;

const char *level_json_name(LogLevel level) {
  switch (level) {
    case LogLevel::Debug: return "debug";
    case LogLevel::Info: return "info";
    case LogLevel::Warning: return "warning";
    case LogLevel::Error: return "error";
  }
  return "info";
}

// Padded to one width so that text lines stay aligned.
const char *level_text_name(LogLevel level) {
  switch (level) {
    case LogLevel::Debug: return "DEBUG";
    case LogLevel::Info: return "INFO ";
    case LogLevel::Warning: return "WARN ";
    case LogLevel::Error: return "ERROR";
  }
  return "INFO ";
}

std::string timestamp_now() {
  gint64 us = g_get_real_time();
  time_t secs = (time_t)(us / G_USEC_PER_SEC);
  int ms = (int)((us % G_USEC_PER_SEC) / 1000);
  struct tm tm_utc;
  gmtime_r(&secs, &tm_utc);
  char buf[64];
  size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm_utc);
  snprintf(buf + n, sizeof buf - n, ".%03dZ", ms);
  return buf;
}

void replace_all(std::string *s, const std::string &needle, const std::string &with) {
  if (needle.empty()) return;
  size_t pos = 0;
  while ((pos = s->find(needle, pos)) != std::string::npos) {
    s->replace(pos, needle.size(), with);
    pos += with.size();
  }
}

std::string mask(std::string s, const std::vector<std::string> &secrets) {
  for (const auto &secret : secrets) replace_all(&s, secret, "***");
  return s;
}

// JSON and the text format both promise UTF-8; peers (SDP, webhooks, model output) may send
// anything, so invalid sequences become U+FFFD instead of producing unparseable lines.
std::string valid_utf8(const std::string &s) {
  if (g_utf8_validate(s.data(), (gssize)s.size(), nullptr)) return s;
  char *fixed = g_utf8_make_valid(s.data(), (gssize)s.size());
  std::string out(fixed);
  g_free(fixed);
  return out;
}

void append_json_string(std::string *out, const std::string &s) {
  out->push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      case '\b': out->append("\\b"); break;
      case '\f': out->append("\\f"); break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          snprintf(buf, sizeof buf, "\\u%04x", c);
          out->append(buf);
        } else {
          out->push_back((char)c);
        }
    }
  }
  out->push_back('"');
}

// Only values that are JSON literals may go out unquoted; anything else (a masked number, a field
// built by hand with number=true, "nan") is quoted so the line always parses.
bool is_json_literal(const std::string &v) {
  if (v == "true" || v == "false" || v == "null") return true;
  size_t i = 0, n = v.size();
  if (i < n && v[i] == '-') i++;
  if (i >= n || !g_ascii_isdigit(v[i])) return false;
  if (v[i] == '0') {
    i++;
  } else {
    while (i < n && g_ascii_isdigit(v[i])) i++;
  }
  if (i < n && v[i] == '.') {
    i++;
    if (i >= n || !g_ascii_isdigit(v[i])) return false;
    while (i < n && g_ascii_isdigit(v[i])) i++;
  }
  if (i < n && (v[i] == 'e' || v[i] == 'E')) {
    i++;
    if (i < n && (v[i] == '+' || v[i] == '-')) i++;
    if (i >= n || !g_ascii_isdigit(v[i])) return false;
    while (i < n && g_ascii_isdigit(v[i])) i++;
  }
  return i == n;
}

// Text format: control characters would split a line or garble a terminal, so they are escaped
// the way a C string would show them.
void append_text_escaped(std::string *out, const std::string &s, bool in_quotes) {
  for (unsigned char c : s) {
    switch (c) {
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      case '"':
        if (in_quotes) out->append("\\\"");
        else out->push_back('"');
        break;
      case '\\':
        if (in_quotes) out->append("\\\\");
        else out->push_back('\\');
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          snprintf(buf, sizeof buf, "\\x%02x", c);
          out->append(buf);
        } else {
          out->push_back((char)c);
        }
    }
  }
}

// key=value stays unquoted when it can be read back unambiguously (no spaces, quotes, '=' or
// control characters); otherwise the value is quoted with backslash escapes.
bool text_needs_quotes(const std::string &v) {
  if (v.empty()) return true;
  for (unsigned char c : v) {
    if (c <= 0x20 || c == 0x7f || c == '"' || c == '\\' || c == '=') return true;
  }
  return false;
}

// Field keys that would collide with the fixed members of a JSON line get a prefix instead of
// producing duplicate keys (which parsers resolve differently).
std::string json_field_key(const std::string &key) {
  static const char *const reserved[] = {"ts", "level", "event", "call_id", "msg"};
  for (const char *r : reserved) {
    if (key == r) return "field_" + key;
  }
  return key;
}

std::vector<std::string> secrets_snapshot() {
  auto &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  return s.secrets;
}

std::string format_line(LogFormat format, LogLevel level, const std::string &event, const std::string &call_id,
                        const std::string &message, const LogField *fields, size_t n_fields) {
  const std::vector<std::string> secrets = secrets_snapshot();
  // Masking happens on every part before escaping, so that a secret containing characters that
  // the format escapes (a quote, a backslash) is still recognised; the finished line gets a last
  // pass for whatever spans parts.
  auto clean = [&](const std::string &s) { return valid_utf8(mask(s, secrets)); };

  std::string line;
  line.reserve(128 + message.size());
  const std::string ts = timestamp_now();
  if (format == LogFormat::Json) {
    line.append("{\"ts\":");
    append_json_string(&line, ts);
    line.append(",\"level\":");
    append_json_string(&line, level_json_name(level));
    if (!event.empty()) {
      line.append(",\"event\":");
      append_json_string(&line, clean(event));
    }
    if (!call_id.empty()) {
      line.append(",\"call_id\":");
      append_json_string(&line, clean(call_id));
    }
    line.append(",\"msg\":");
    append_json_string(&line, clean(message));
    for (size_t i = 0; i < n_fields; i++) {
      const LogField &f = fields[i];
      line.push_back(',');
      append_json_string(&line, clean(json_field_key(f.key)));
      line.push_back(':');
      std::string value = clean(f.value);
      if (f.number && is_json_literal(value)) {
        line.append(value);
      } else {
        append_json_string(&line, value);
      }
    }
    line.push_back('}');
    // No final pass here: every byte outside the fixed skeleton came from a masked part, and a
    // replacement across JSON punctuation could make the line unparseable.
    return line;
  }

  line.append(ts);
  line.push_back(' ');
  line.append(level_text_name(level));
  if (!event.empty()) {
    line.push_back(' ');
    append_text_escaped(&line, clean(event), false);
  }
  if (!call_id.empty()) {
    line.append(" call_id=");
    std::string id = clean(call_id);
    if (text_needs_quotes(id)) {
      line.push_back('"');
      append_text_escaped(&line, id, true);
      line.push_back('"');
    } else {
      line.append(id);
    }
  }
  if (!message.empty()) {
    line.push_back(' ');
    append_text_escaped(&line, clean(message), false);
  }
  for (size_t i = 0; i < n_fields; i++) {
    const LogField &f = fields[i];
    line.push_back(' ');
    append_text_escaped(&line, clean(f.key), false);
    line.push_back('=');
    std::string value = clean(f.value);
    if (text_needs_quotes(value)) {
      line.push_back('"');
      append_text_escaped(&line, value, true);
      line.push_back('"');
    } else {
      line.append(value);
    }
  }
  return mask(line, secrets);
}

void write_line(std::string line) {
  line.push_back('\n');
  auto &s = state();
  std::lock_guard<std::mutex> lock(s.write_mutex);
  const char *p = line.data();
  size_t left = line.size();
  // One write(2) normally carries the whole line; the loop only matters for EINTR and for lines
  // longer than a pipe buffer, where the mutex still keeps our own threads from interleaving.
  while (left > 0) {
    ssize_t n = write(STDERR_FILENO, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // nowhere left to report a failing standard error
    }
    p += n;
    left -= (size_t)n;
  }
}

bool enabled(LogLevel level) {
  auto &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  return (int)level >= (int)s.min_level;
}

LogFormat current_format() {
  auto &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  return s.format;
}

void emit(LogLevel level, const std::string &event, const std::string &call_id, const std::string &message,
          const LogField *fields, size_t n_fields) {
  if (!enabled(level)) return;
  write_line(format_line(current_format(), level, event, call_id, message, fields, n_fields));
}

GLogWriterOutput glib_writer(GLogLevelFlags log_level, const GLogField *fields, gsize n_fields, gpointer) {
  LogLevel level;
  if (log_level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL)) {
    level = LogLevel::Error;
  } else if (log_level & G_LOG_LEVEL_WARNING) {
    level = LogLevel::Warning;
  } else if (log_level & (G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO)) {
    level = LogLevel::Info;
  } else {
    level = LogLevel::Debug;
  }
  if (!enabled(level)) return G_LOG_WRITER_HANDLED;

  std::string message, domain;
  for (gsize i = 0; i < n_fields; i++) {
    const GLogField &f = fields[i];
    if (!f.value) continue;
    // length -1 means NUL-terminated; other lengths are raw bytes (only MESSAGE and GLIB_DOMAIN
    // are used here, and both are strings).
    std::string value = f.length < 0 ? std::string((const char *)f.value)
                                     : std::string((const char *)f.value, (size_t)f.length);
    if (strcmp(f.key, "MESSAGE") == 0) {
      message = std::move(value);
    } else if (strcmp(f.key, "GLIB_DOMAIN") == 0) {
      domain = std::move(value);
    }
  }
  if (domain.empty()) {
    emit(level, "", "", message, nullptr, 0);
  } else {
    LogField field("domain", domain);
    emit(level, "", "", message, &field, 1);
  }
  return G_LOG_WRITER_HANDLED;
}

}  // namespace

LogField::LogField(std::string k, double v) : key(std::move(k)) {
  if (!std::isfinite(v)) {
    // JSON has no NaN or infinity literals: these stay strings (number remains false).
    value = std::isnan(v) ? "NaN" : (v > 0 ? "Inf" : "-Inf");
    return;
  }
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  // g_ascii_formatd: always a '.' whatever LC_NUMERIC says.
  g_ascii_formatd(buf, sizeof buf, "%.3f", v);
  std::string s(buf);
  size_t dot = s.find('.');
  if (dot != std::string::npos) {
    size_t end = s.find_last_not_of('0');
    if (end == dot) end--;  // "2.000" → "2"
    s.erase(end + 1);
  }
  if (s == "-0") s = "0";
  value = s;
  number = true;
}

void log_init(LogFormat format, LogLevel min_level) {
  auto &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.format = format;
  s.min_level = min_level;
}

LogFormat log_format() { return current_format(); }

LogLevel log_min_level() {
  auto &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  return s.min_level;
}

void log_register_secret(const std::string &secret) {
  if (secret.size() < kMinSecretLength) return;
  auto &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (std::find(s.secrets.begin(), s.secrets.end(), secret) != s.secrets.end()) return;
  s.secrets.push_back(secret);
  std::stable_sort(s.secrets.begin(), s.secrets.end(),
                   [](const std::string &a, const std::string &b) { return a.size() > b.size(); });
}

void log_event(LogLevel level, const std::string &event, const std::string &call_id, const std::string &message,
               std::initializer_list<LogField> fields) {
  emit(level, event, call_id, message, fields.begin(), fields.size());
}

void log_line(LogLevel level, const std::string &message, std::initializer_list<LogField> fields) {
  emit(level, "", "", message, fields.begin(), fields.size());
}

void log_capture_glib() {
  // GLib aborts when the writer is set twice, and tests or main() may call this more than once.
  static std::once_flag once;
  std::call_once(once, [] { g_log_set_writer_func(glib_writer, nullptr, nullptr); });
}

std::string log_format_line(LogLevel level, const std::string &event, const std::string &call_id,
                            const std::string &message, std::initializer_list<LogField> fields) {
  return format_line(current_format(), level, event, call_id, message, fields.begin(), fields.size());
}

}  // namespace vb
