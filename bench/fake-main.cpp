// bench-realtime: the benchmarks' cheap fake Realtime server (bench-fake.h) as its own process, so
// that its CPU is measured apart from voicebridge's and the callers'. Prints
// "bench-realtime listening on URL" on stdout, runs until SIGINT/SIGTERM, then prints its counters
// as one JSON line.
#include <glib-unix.h>
#include <glib.h>

#include <cstdio>
#include <string>

#include "bench-fake.h"
#include "bench-util.h"

namespace {

gboolean on_signal(gpointer loop) {
  g_main_loop_quit(static_cast<GMainLoop *>(loop));
  return G_SOURCE_CONTINUE;
}

}  // namespace

int main(int argc, char **argv) {
  bench::FakeConfig config;
  gint port = 0;
  gint reply_ms = config.reply_ms;
  gint delta_ms = config.delta_ms;
  gint silence_ms = config.vad_silence_ms;
  gdouble speed = config.speed;
  gdouble threshold = config.vad_threshold_dbfs;
  const GOptionEntry entries[] = {
      {"port", 0, 0, G_OPTION_ARG_INT, &port, "TCP port on 127.0.0.1 (0: a free one)", "N"},
      {"reply-ms", 0, 0, G_OPTION_ARG_INT, &reply_ms, "length of each reply (default 3000)", "MS"},
      {"delta-ms", 0, 0, G_OPTION_ARG_INT, &delta_ms, "audio per delta event (default 100)", "MS"},
      {"speed", 0, 0, G_OPTION_ARG_DOUBLE, &speed, "replies this many times faster than real time (default 10)", "X"},
      {"vad-silence-ms", 0, 0, G_OPTION_ARG_INT, &silence_ms, "silence that ends a turn (default 300)", "MS"},
      {"vad-threshold-dbfs", 0, 0, G_OPTION_ARG_DOUBLE, &threshold, "speech above this frame RMS (default -40)",
       "DB"},
      {nullptr, 0, 0, G_OPTION_ARG_NONE, nullptr, nullptr, nullptr}};
  GOptionContext *context = g_option_context_new("- the benchmarks' cheap fake Realtime server");
  g_option_context_add_main_entries(context, entries, nullptr);
  GError *err = nullptr;
  if (!g_option_context_parse(context, &argc, &argv, &err)) {
    fprintf(stderr, "bench-realtime: %s\n", err->message);
    g_clear_error(&err);
    g_option_context_free(context);
    return 2;
  }
  g_option_context_free(context);
  if (port < 0 || port > 65535 || reply_ms <= 0 || reply_ms > 600000 || delta_ms < 10 || delta_ms > 1000 ||
      speed < 0 || silence_ms < 20) {
    fprintf(stderr, "bench-realtime: an option is out of range (see --help)\n");
    return 2;
  }
  config.reply_ms = reply_ms;
  config.delta_ms = delta_ms;
  config.speed = speed;
  config.vad_silence_ms = silence_ms;
  config.vad_threshold_dbfs = threshold;

  GMainLoop *loop = g_main_loop_new(nullptr, FALSE);
  guint sigint = g_unix_signal_add(SIGINT, on_signal, loop);
  guint sigterm = g_unix_signal_add(SIGTERM, on_signal, loop);
  bench::FakeRealtime fake(config);
  std::string error;
  int status = 0;
  if (fake.start((uint16_t)port, &error)) {
    printf("bench-realtime listening on %s\n", fake.url().c_str());
    fflush(stdout);
    g_main_loop_run(loop);
    bench::FakeStats s = fake.stats();
    fake.stop();
    const double speech = s.frames ? (double)s.speech_frames / (double)s.frames : 0;
    printf("%s\n", bench::JsonLine()
                       .num("connections", s.connections)
                       .num("appends", (double)s.appends)
                       .num("append_s", (double)s.append_bytes / 48000.0)
                       .num("speech_fraction", speech)
                       .num("responses", (double)s.responses)
                       .num("responses_cancelled", (double)s.responses_cancelled)
                       .num("speech_started", (double)s.speech_started)
                       .num("deltas", (double)s.deltas)
                       .num("reply_s", (double)s.reply_bytes_sent / 48000.0)
                       .num("truncates", (double)s.truncates)
                       .num("unknown_events", (double)s.unknown_events)
                       .text()
                       .c_str());
  } else {
    fprintf(stderr, "bench-realtime: cannot listen on 127.0.0.1:%d: %s\n", port, error.c_str());
    status = 1;
  }
  g_source_remove(sigint);
  g_source_remove(sigterm);
  g_main_loop_unref(loop);
  return status;
}
