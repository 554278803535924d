// What voicebridge-call tells its user: progress lines on stderr (silenced by --quiet), errors on
// stderr (always), and the end-of-call summary of timings on stdout (text, or one JSON object).
#pragma once

#include <string>

#include <glib.h>

namespace vbcall {

void set_quiet(bool quiet);
// One progress line on stderr, prefixed with the time since the program started.
void progress(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
// One line on stderr even with --quiet: errors and warnings the user must see.
void report_error(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

// The measurements of one call. Durations are microseconds of g_get_monotonic_time(); -1 = never.
struct Report {
  std::string call_id;
  gint64 t_start = -1;          // program start
  gint64 t_post = -1;           // POST /v1/calls sent
  gint64 t_answer = -1;         // 201 with the SDP answer received
  gint64 t_media = -1;          // ICE connected/completed or first RTP, whichever came first
  gint64 t_first_audio = -1;    // first decoded audio above -40 dBFS
  gint64 t_end = -1;            // hang-up started
  double heard_audio_s = 0;     // decoded audio above -40 dBFS
  double received_audio_s = 0;  // all decoded audio
  guint64 rtp_packets = 0;      // RTP packets that came out of webrtcbin
  std::string end;              // duration, input_end, signal, remote, http_error, ice_failed, error
  std::string bridge_end_reason;  // the bridge's end_reason, when it told us
  std::string error;            // what failed, for exit status 1

  // Text (aligned "name value" lines) or JSON (one object, one line), both ending in a newline.
  std::string format_text() const;
  std::string format_json() const;
};

}  // namespace vbcall
