#include "report.h"

#include <cmath>
#include <cstdarg>
#include <cstdio>

namespace vbcall {
namespace {

bool g_quiet = false;
// Progress lines carry the time since the first one, which is close enough to program start.
gint64 g_epoch = 0;

void vline(const char *prefix, const char *fmt, va_list ap) {
  gint64 now = g_get_monotonic_time();
  if (!g_epoch)
    g_epoch = now;
  gchar *text = g_strdup_vprintf(fmt, ap);
  fprintf(stderr, "[%7.3f] %s%s\n", (now - g_epoch) / 1e6, prefix, text);
  fflush(stderr);
  g_free(text);
}

// Milliseconds between two instants, or -1 when either is unknown (printed as null / "-").
gint64 span_ms(gint64 from, gint64 to) {
  if (from < 0 || to < 0)
    return -1;
  return to >= from ? (to - from + 500) / 1000 : 0;
}

std::string json_string(const std::string &s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += (char)c;  // UTF-8 passes through unchanged
        }
    }
  }
  return out + "\"";
}

// Seconds with three decimals, independent of the locale (JSON needs a '.').
std::string seconds(double s) {
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  return g_ascii_formatd(buf, sizeof buf, "%.3f", s);
}

struct Fields {
  gint64 answer_ms, setup_ms, media_ms, first_audio_ms;
  double duration_s;
};

Fields fields(const Report &r) {
  Fields f;
  f.answer_ms = span_ms(r.t_post, r.t_answer);
  f.setup_ms = span_ms(r.t_start, r.t_answer);
  f.media_ms = span_ms(r.t_answer, r.t_media);
  f.first_audio_ms = span_ms(r.t_media, r.t_first_audio);
  f.duration_s = (r.t_media >= 0 && r.t_end >= r.t_media) ? (r.t_end - r.t_media) / 1e6 : 0.0;
  return f;
}

}  // namespace

void set_quiet(bool quiet) {
  g_quiet = quiet;
  g_epoch = g_get_monotonic_time();
}

void progress(const char *fmt, ...) {
  if (g_quiet)
    return;
  va_list ap;
  va_start(ap, fmt);
  vline("", fmt, ap);
  va_end(ap);
}

void report_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vline("voicebridge-call: ", fmt, ap);
  va_end(ap);
}

std::string Report::format_text() const {
  Fields f = fields(*this);
  auto ms = [](gint64 v) { return v < 0 ? std::string("-") : std::to_string(v); };
  std::string out;
  auto line = [&out](const char *name, const std::string &value) {
    char buf[32];
    snprintf(buf, sizeof buf, "%-20s", name);
    out += buf + value + "\n";
  };
  line("call_id", call_id.empty() ? "-" : call_id);
  line("answer_ms", ms(f.answer_ms));
  line("setup_ms", ms(f.setup_ms));
  line("media_connected_ms", ms(f.media_ms));
  line("first_audio_ms", ms(f.first_audio_ms) + (t_media >= 0 && t_first_audio < 0 ? " (no audio heard)" : ""));
  line("duration_s", seconds(f.duration_s));
  line("heard_audio_s", seconds(heard_audio_s));
  line("received_audio_s", seconds(received_audio_s));
  line("rtp_packets", std::to_string(rtp_packets));
  line("end", end);
  if (!bridge_end_reason.empty())
    line("bridge_end_reason", bridge_end_reason);
  if (!error.empty())
    line("error", error);
  return out;
}

std::string Report::format_json() const {
  Fields f = fields(*this);
  auto ms = [](gint64 v) { return v < 0 ? std::string("null") : std::to_string(v); };
  auto str = [](const std::string &s) { return s.empty() ? std::string("null") : json_string(s); };
  std::string out = "{";
  out += "\"call_id\":" + str(call_id);
  out += ",\"answer_ms\":" + ms(f.answer_ms);
  out += ",\"setup_ms\":" + ms(f.setup_ms);
  out += ",\"media_connected_ms\":" + ms(f.media_ms);
  out += ",\"first_audio_ms\":" + ms(f.first_audio_ms);
  out += ",\"duration_s\":" + seconds(f.duration_s);
  out += ",\"heard_audio_s\":" + seconds(heard_audio_s);
  out += ",\"received_audio_s\":" + seconds(received_audio_s);
  out += ",\"rtp_packets\":" + std::to_string(rtp_packets);
  out += std::string(",\"audio_heard\":") + (t_first_audio >= 0 ? "true" : "false");
  out += ",\"end\":" + str(end);
  out += ",\"bridge_end_reason\":" + str(bridge_end_reason);
  out += ",\"error\":" + str(error);
  return out + "}\n";
}

}  // namespace vbcall
