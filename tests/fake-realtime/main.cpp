// fake-realtime-server: the fake OpenAI Realtime server as a standalone process, for trying the
// elements or the service by hand without an account. Runs until SIGINT or SIGTERM.
#include "fake-realtime-server.h"

#include <glib-unix.h>
#include <glib.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

namespace {

gboolean on_signal(gpointer loop) {
  g_main_loop_quit(static_cast<GMainLoop *>(loop));
  return G_SOURCE_CONTINUE;  // main() removes both handlers once the loop is done
}

// "NAME:ARGS_JSON" → a scripted tool call; the arguments are sent verbatim.
bool parse_tool(const char *spec, fake_realtime::ToolCallScript *out) {
  const char *colon = std::strchr(spec, ':');
  if (!colon || colon == spec)
    return false;
  out->name.assign(spec, static_cast<size_t>(colon - spec));
  out->arguments = colon + 1;
  return true;
}

int usage_error(GOptionContext *context, const std::string &message) {
  std::fprintf(stderr, "fake-realtime-server: %s (see --help)\n", message.c_str());
  g_option_context_free(context);
  return 2;
}

}  // namespace

int main(int argc, char **argv) {
  fake_realtime::Config config;
  config.record = false;  // a manual session may run for hours; nobody reads the logs
  gint port = 0;
  gchar *shape = nullptr;
  gint reply_ms = config.reply_duration_ms;
  gdouble reply_hz = config.reply_tone_hz;
  gdouble speed = config.speed;
  gboolean echo = FALSE;
  gchar *api_key = nullptr;
  gint lifetime_s = config.session_lifetime_s;
  gchar **tools = nullptr;
  gboolean verbose = FALSE;

  const GOptionEntry entries[] = {
      {"port", 0, 0, G_OPTION_ARG_INT, &port, "TCP port on 127.0.0.1 (0 picks a free one)", "N"},
      {"shape", 0, 0, G_OPTION_ARG_STRING, &shape, "API shape: ga (default) or beta", "ga|beta"},
      {"reply-ms", 0, 0, G_OPTION_ARG_INT, &reply_ms, "length of each reply's audio (default 1000)", "MS"},
      {"reply-hz", 0, 0, G_OPTION_ARG_DOUBLE, &reply_hz, "frequency of the reply tone (default 440)", "HZ"},
      {"speed", 0, 0, G_OPTION_ARG_DOUBLE, &speed,
       "send audio this many times faster than real time; 0 = all at once (default 10)", "X"},
      {"echo", 0, 0, G_OPTION_ARG_NONE, &echo, "reply with the caller's last turn instead of a tone", nullptr},
      {"api-key", 0, 0, G_OPTION_ARG_STRING, &api_key, "require this key (Bearer or api-key header); otherwise 401",
       "KEY"},
      {"lifetime-s", 0, 0, G_OPTION_ARG_INT, &lifetime_s,
       "session lifetime before session_expired (default 3600; 0 = never)", "S"},
      {"tool", 0, 0, G_OPTION_ARG_STRING_ARRAY, &tools, "script a function call for the first response (repeatable)",
       "NAME:ARGS_JSON"},
      {"verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose, "log every event to stderr", nullptr},
      {nullptr, 0, 0, G_OPTION_ARG_NONE, nullptr, nullptr, nullptr}};

  GOptionContext *context = g_option_context_new("- a fake OpenAI Realtime WebSocket server");
  g_option_context_add_main_entries(context, entries, nullptr);
  GError *err = nullptr;
  if (!g_option_context_parse(context, &argc, &argv, &err)) {
    std::string message = err->message;
    g_clear_error(&err);
    return usage_error(context, message);
  }
  if (argc > 1)
    return usage_error(context, std::string("unexpected argument '") + argv[1] + "'");
  config.shape = shape ? shape : "ga";
  if (config.shape != "ga" && config.shape != "beta")
    return usage_error(context, "--shape must be ga or beta");
  if (port < 0 || port > 65535)
    return usage_error(context, "--port must be 0..65535");
  if (reply_ms < 0 || speed < 0 || reply_hz <= 0 || lifetime_s < 0)
    return usage_error(context, "--reply-ms, --reply-hz, --speed and --lifetime-s must be positive");
  config.reply_duration_ms = reply_ms;
  config.reply_tone_hz = reply_hz;
  config.speed = speed;
  config.echo_input = echo;
  config.session_lifetime_s = lifetime_s;
  if (api_key)
    config.required_api_key = api_key;
  for (gchar **t = tools; t && *t; t++) {
    fake_realtime::ToolCallScript script;
    if (!parse_tool(*t, &script))
      return usage_error(context, std::string("--tool wants NAME:ARGS_JSON, got '") + *t + "'");
    config.tool_calls.push_back(script);
  }
  g_free(shape);
  g_free(api_key);
  g_strfreev(tools);
  g_option_context_free(context);
  g_log_writer_default_set_use_stderr(TRUE);  // stdout carries only the "listening" line
  if (verbose)
    g_log_set_debug_enabled(TRUE);

  // Handlers first: whoever reads the "listening" line may signal us at once. They stay installed
  // until the server has stopped, so a second signal (e.g. sent to the whole process group) is
  // absorbed instead of killing us halfway through the shutdown.
  GMainLoop *loop = g_main_loop_new(nullptr, FALSE);
  guint sigint = g_unix_signal_add(SIGINT, on_signal, loop);
  guint sigterm = g_unix_signal_add(SIGTERM, on_signal, loop);

  fake_realtime::Server server(config);
  std::string error;
  int status = 0;
  if (server.start(static_cast<uint16_t>(port), &error)) {
    std::printf("fake-realtime-server listening on %s\n", server.url().c_str());
    std::fflush(stdout);
    g_main_loop_run(loop);
    server.stop();
  } else {
    std::fprintf(stderr, "fake-realtime-server: cannot listen on 127.0.0.1:%d: %s\n", port, error.c_str());
    status = 1;
  }
  g_source_remove(sigint);
  g_source_remove(sigterm);
  g_main_loop_unref(loop);
  return status;
}
