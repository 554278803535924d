// Structured logging for the service: one line per event on standard error, human-readable text
// or one JSON object per line (--log-format=json). Call events carry `call_id` and a fixed `event`
// name (CONTRACT.md §6). Registered secrets are masked in every line, whatever field they hide in.
#pragma once

#include <initializer_list>
#include <string>

namespace vb {

enum class LogLevel { Debug, Info, Warning, Error };
enum class LogFormat { Text, Json };

struct LogField {
  LogField(std::string k, std::string v) : key(std::move(k)), value(std::move(v)) {}
  LogField(std::string k, const char *v) : key(std::move(k)), value(v ? v : "") {}
  LogField(std::string k, long long v) : key(std::move(k)), value(std::to_string(v)), number(true) {}
  LogField(std::string k, int v) : LogField(std::move(k), (long long)v) {}
  LogField(std::string k, unsigned v) : LogField(std::move(k), (long long)v) {}
  LogField(std::string k, long v) : LogField(std::move(k), (long long)v) {}
  // The unsigned 64-bit ones not through long long: values above LLONG_MAX must not print negative.
  LogField(std::string k, unsigned long v) : key(std::move(k)), value(std::to_string(v)), number(true) {}
  LogField(std::string k, unsigned long long v) : key(std::move(k)), value(std::to_string(v)), number(true) {}
  LogField(std::string k, double v);  // up to 3 decimals ("1.5", "0.123", "2"); NaN/inf as strings
  LogField(std::string k, bool v) : key(std::move(k)), value(v ? "true" : "false"), number(true) {}
  std::string key;
  std::string value;
  bool number = false;  // emitted unquoted in JSON
};

void log_init(LogFormat format, LogLevel min_level);
LogFormat log_format();
LogLevel log_min_level();
// Every later line has each occurrence of `secret` replaced by "***" (empty and very short values
// are ignored). Register keys and tokens as soon as they are read.
void log_register_secret(const std::string &secret);

// A call event: event is one of the contract's names (CALL_CREATED, WA_CALL_CONNECT, …) or another
// UPPER_SNAKE name of ours. call_id may be empty for service-level events.
void log_event(LogLevel level, const std::string &event, const std::string &call_id, const std::string &message,
               std::initializer_list<LogField> fields = {});
// A plain line with no event name.
void log_line(LogLevel level, const std::string &message, std::initializer_list<LogField> fields = {});

// Routes GLib g_log (g_warning, g_critical, …) through the same writer.
void log_capture_glib();

// Exposed for tests: the line that would be written, secrets masked, without the final newline.
std::string log_format_line(LogLevel level, const std::string &event, const std::string &call_id,
                            const std::string &message, std::initializer_list<LogField> fields);

}  // namespace vb
