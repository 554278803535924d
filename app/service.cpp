#include "service.h"

#include <glib-unix.h>
#include <gst/gst.h>

#include "api.h"
#include "call-manager.h"
#include "http-server.h"
#include "local-agent.h"
#include "log.h"
#include "metrics.h"
#include "tools.h"
#include "transcript.h"
#include "whatsapp.h"
#include "openairealtimesink.h"
#include "openairealtimesrc.h"
#include "vbopusdec.h"
#include "vbopusenc.h"

namespace vb {

bool init_gstreamer_elements(std::string *missing) {
  GST_ELEMENT_REGISTER(openairealtimesink, nullptr);
  GST_ELEMENT_REGISTER(openairealtimesrc, nullptr);
  GST_ELEMENT_REGISTER(vbopusenc, nullptr);
  GST_ELEMENT_REGISTER(vbopusdec, nullptr);
  struct Need {
    const char *factory;
    const char *package;
  };
  // Opus itself is ours (vbopusenc/vbopusdec, linked in): only the WebRTC stack and RTP payloading
  // come from the system's plugins.
  const Need needs[] = {{"webrtcbin", "gstreamer1.0-plugins-bad"},     {"nicesrc", "gstreamer1.0-nice"},
                        {"dtlssrtpenc", "gstreamer1.0-plugins-bad"},   {"rtpopuspay", "gstreamer1.0-plugins-good"},
                        {"rtpopusdepay", "gstreamer1.0-plugins-good"}};
  for (const auto &need : needs) {
    GstElementFactory *f = gst_element_factory_find(need.factory);
    if (!f) {
      *missing = std::string("GStreamer element '") + need.factory + "' is not installed (Debian package " +
                 need.package + ")";
      return false;
    }
    gst_object_unref(f);
  }
  return true;
}

struct Service::Impl {
  Config config;
  GMainLoop *loop = nullptr;
  std::unique_ptr<LocalAgent> agent;
  std::unique_ptr<CallManager> calls;
  std::unique_ptr<Api> api;
  std::unique_ptr<HttpServer> server;
  std::shared_ptr<WhatsApp> whatsapp;  // held weakly by the API route and the ended observer
  guint sigterm = 0, sigint = 0, drain_timer = 0;
  int signals_seen = 0;

  void drain(const char *why);
};

Service::Service(Config config) : impl_(new Impl()) { impl_->config = std::move(config); }

Service::~Service() {
  Impl &d = *impl_;
  if (d.sigterm) g_source_remove(d.sigterm);
  if (d.sigint) g_source_remove(d.sigint);
  if (d.drain_timer) g_source_remove(d.drain_timer);
  d.server.reset();
  d.api.reset();
  d.calls.reset();
  d.agent.reset();
  if (d.loop) g_main_loop_unref(d.loop);
}

void Service::Impl::drain(const char *why) {
  if (++signals_seen > 1) {
    log_event(LogLevel::Warning, "SERVICE_DRAIN_FORCED", "", "second signal: ending every call now");
    calls->end_all("shutdown");
    return;
  }
  log_event(LogLevel::Info, "SERVICE_DRAINING", "", std::string("draining on ") + why,
            {{"active_calls", calls->active_count()}, {"drain_timeout_s", config.drain_timeout_s}});
  // Calls still up at the deadline are ended; then the drained callback quits the loop.
  drain_timer = g_timeout_add_seconds(
      (guint)config.drain_timeout_s,
      [](gpointer data) -> gboolean {
        auto *self = static_cast<Impl *>(data);
        self->drain_timer = 0;
        log_event(LogLevel::Warning, "SERVICE_DRAIN_TIMEOUT", "", "drain timeout: ending the remaining calls",
                  {{"active_calls", self->calls->active_count()}});
        self->calls->end_all("shutdown");
        return G_SOURCE_REMOVE;
      },
      this);
  calls->start_drain([this] {
    log_event(LogLevel::Info, "SERVICE_STOPPED", "", "all calls ended; exiting");
    g_main_loop_quit(loop);
  });
}

int Service::run() {
  Impl &d = *impl_;
  const Config &config = d.config;

  std::string realtime_url = config.effective_realtime_url();
  if (config.use_local_agent()) {
    d.agent = std::make_unique<LocalAgent>();
    std::string error;
    if (!d.agent->start(&error)) {
      log_line(LogLevel::Error, "cannot start the local agent: " + error);
      return 1;
    }
    realtime_url = d.agent->url();
    log_event(LogLevel::Info, "LOCAL_AGENT", "",
              "no OPENAI_API_KEY or OPENAI_REALTIME_URL: calls are answered by the built-in local agent (it chimes, "
              "then repeats what the caller says)");
  }

  Metrics::get().declare("voicebridge_dtmf_digits_total", "counter", "DTMF key presses received from callers");
  d.loop = g_main_loop_new(nullptr, FALSE);
  d.calls = std::make_unique<CallManager>(d.config, realtime_url);
  // The agent's tools (end_call, the tool webhook) and the transcript with its cost, on every call.
  d.calls->add_call_setup([cfg = &d.config](const std::shared_ptr<Call> &call) {
    call->add_extension(std::make_shared<ToolRouter>(*cfg));
    call->add_extension(std::make_shared<TranscriptRecorder>(*cfg));
  });
  d.api = std::make_unique<Api>(d.config, *d.calls);
  Api *api = d.api.get();
  if (config.insecure_skip_signature)
    log_event(LogLevel::Warning, "WA_INSECURE_SKIP_SIGNATURE", "",
              "--insecure-skip-signature: WhatsApp webhooks are NOT authenticated; anyone who can reach "
              "/whatsapp/webhook can start and end calls. For testing only.");
  if (config.whatsapp_enabled()) {
    d.whatsapp = std::make_shared<WhatsApp>(d.config, *d.calls);
    std::weak_ptr<WhatsApp> wa = d.whatsapp;
    api->add_route([wa](HttpRequest &r) {
      auto w = wa.lock();
      return w && w->handle(r);
    });
    d.calls->set_ended_observer([wa](Call &call) {
      if (auto w = wa.lock()) w->on_call_ended(call);
    });
  }
  d.server = std::make_unique<HttpServer>(config.max_body_bytes, [api](HttpRequest &r) { api->handle(r); });
  std::string error;
  if (!d.server->listen(config.listen, &error)) {
    // An unusable --listen is a setting error: exit 2 with one line naming it.
    fprintf(stderr, "voicebridge: invalid --listen (VOICEBRIDGE_LISTEN): %s\n", error.c_str());
    return 2;
  }
  std::string where;
  for (const auto &a : d.server->addresses()) where += (where.empty() ? "" : ", ") + a;
  log_event(LogLevel::Info, "SERVICE_LISTENING", "", "voicebridge " VERSION " listening on " + where,
            {{"listen", where},
             {"max_calls", config.max_calls},
             {"model", config.use_local_agent() ? std::string("local-agent") : config.model},
             {"control_token", !config.control_token.empty()}});

  d.sigterm = g_unix_signal_add(SIGTERM, [](gpointer data) -> gboolean {
    static_cast<Impl *>(data)->drain("SIGTERM");
    return G_SOURCE_CONTINUE;
  }, &d);
  d.sigint = g_unix_signal_add(SIGINT, [](gpointer data) -> gboolean {
    static_cast<Impl *>(data)->drain("SIGINT");
    return G_SOURCE_CONTINUE;
  }, &d);

  g_main_loop_run(d.loop);
  d.server->disconnect();
  return 0;
}

}  // namespace vb
