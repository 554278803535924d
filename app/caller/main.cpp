// voicebridge-call: places one WebRTC call at a voicebridge from a WAV file, records what it hears
// and prints the call's timings. See --help, and CONTRACT.md §1 and §3 for the interface it uses.
#include <cstdio>

#include <gst/gst.h>

#include "call.h"
#include "options.h"
#include "report.h"

int main(int argc, char **argv) {
  gint64 t_start = g_get_monotonic_time();
  vbcall::Options options;
  std::string message;
  switch (vbcall::parse_options(argc, argv, options, message)) {
    case vbcall::ParseOutcome::Help:
    case vbcall::ParseOutcome::Version:
      fputs(message.c_str(), stdout);
      return 0;
    case vbcall::ParseOutcome::Error:
      fprintf(stderr, "%s\n", message.c_str());
      return 2;
    case vbcall::ParseOutcome::Run:
      break;
  }
  // argv is ours (parsed above); GStreamer's own --gst-* options are not offered.
  gst_init(nullptr, nullptr);
  vbcall::set_quiet(options.quiet);

  GMainLoop *loop = g_main_loop_new(nullptr, FALSE);
  int status;
  {
    vbcall::Call call(options, loop, t_start);
    call.start();
    if (!call.done())
      g_main_loop_run(loop);
    call.stop();
    const vbcall::Report &report = call.report();
    if (report.t_media >= 0 && report.t_first_audio < 0)
      vbcall::report_error("no audio was heard from the bridge (nothing above -40 dBFS)");
    fputs((options.json ? report.format_json() : report.format_text()).c_str(), stdout);
    fflush(stdout);
    status = call.exit_code();
  }
  // Cancelled requests complete on a later iteration; let them release what they hold. Bounded:
  // each is one idle dispatch.
  for (int i = 0; i < 100 && g_main_context_pending(nullptr); i++)
    g_main_context_iteration(nullptr, FALSE);
  g_main_loop_unref(loop);
  gst_deinit();
  return status;
}
