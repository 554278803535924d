#include "realtime-fixture.h"

#include <gst/app/gstappsrc.h>
#include <json-glib/json-glib.h>

#include <atomic>
#include <cmath>
#include <cstdlib>

#include "openairealtimesink.h"
#include "openairealtimesrc.h"

namespace rt_fixture {

void register_elements() {
  // Runs in the suite function, outside any test: check's fail_unless is not usable there.
  if (!GST_ELEMENT_REGISTER(openairealtimesink, nullptr) || !GST_ELEMENT_REGISTER(openairealtimesrc, nullptr))
    g_error("cannot register openairealtimesink/openairealtimesrc");
}

std::unique_ptr<fake_realtime::Server> start_server(const fake_realtime::Config &config) {
  auto server = std::make_unique<fake_realtime::Server>(config);
  std::string error;
  fail_unless(server->start(0, &error), "fake server did not start: %s", error.c_str());
  fail_unless(server->port() != 0);
  return server;
}

std::string unique_session(const char *prefix) {
  static std::atomic<int> counter{0};
  return std::string(prefix) + "-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
}

Pipeline::Pipeline(const Options &o) {
  const std::string session = "session=" + o.session + " ";
  const std::string common = session + "url=\"" + o.url + "\" " + o.props;
  std::string desc;
  if (o.with_sink)
    desc += std::string("appsrc name=in format=time caps=\"") + kCaps + "\" ! openairealtimesink name=rtsink " +
            (o.common_on_sink ? common : session) + " " + o.sink_props + " ";
  if (o.with_src)
    desc += "openairealtimesrc name=rtsrc " + (o.common_on_src ? common : session) + " " + o.src_props +
            " ! appsink name=out sync=false max-buffers=0 drop=false";
  GError *error = nullptr;
  pipeline = gst_parse_launch(desc.c_str(), &error);
  fail_unless(pipeline != nullptr && error == nullptr, "cannot build '%s': %s", desc.c_str(),
              error ? error->message : "?");
  bus = std::make_unique<gst_test::BusLog>(pipeline);
  if (o.with_sink) {
    appsrc = gst_bin_get_by_name(GST_BIN(pipeline), "in");
    rtsink = gst_bin_get_by_name(GST_BIN(pipeline), "rtsink");
  }
  if (o.with_src) {
    rtsrc = gst_bin_get_by_name(GST_BIN(pipeline), "rtsrc");
    out = std::make_unique<gst_test::AudioCollector>(gst_bin_get_by_name(GST_BIN(pipeline), "out"), pipeline);
  }
}

Pipeline::~Pipeline() {
  stop();
  out.reset();
  bus.reset();
  if (appsrc) gst_object_unref(appsrc);
  if (rtsink) gst_object_unref(rtsink);
  if (rtsrc) gst_object_unref(rtsrc);
  if (pipeline) gst_object_unref(pipeline);
}

void Pipeline::play() {
  GstStateChangeReturn r = gst_element_set_state(pipeline, GST_STATE_PLAYING);
  fail_if(r == GST_STATE_CHANGE_FAILURE, "pipeline did not start: %s", bus->dump().c_str());
}

void Pipeline::stop() {
  if (pipeline) gst_element_set_state(pipeline, GST_STATE_NULL);
}

gst_test::BusRecord Pipeline::wait_ready(int timeout_ms) { return expect("openairealtime-session-ready", timeout_ms); }

gst_test::BusRecord Pipeline::expect(const std::string &name, int timeout_ms, int nth) {
  auto r = bus->wait_for(name, timeout_ms, nth);
  fail_unless(r.has_value(), "no '%s' (#%d) within %d ms; bus:\n%s", name.c_str(), nth, timeout_ms,
              bus->dump().c_str());
  return *r;
}

void Pipeline::push(const std::vector<int16_t> &samples, size_t chunk_samples, const std::vector<size_t> &cycle) {
  fail_unless(appsrc != nullptr, "no sink in this pipeline");
  size_t pos = 0, k = 0;
  while (pos < samples.size()) {
    size_t n = cycle.empty() ? chunk_samples : cycle[k++ % cycle.size()];
    n = std::min(n, samples.size() - pos);
    GstBuffer *b = gst_buffer_new_allocate(nullptr, n * 2, nullptr);
    GstMapInfo map;
    gst_buffer_map(b, &map, GST_MAP_WRITE);
    for (size_t i = 0; i < n; i++) {
      uint16_t u = (uint16_t)samples[pos + i];
      map.data[2 * i] = (uint8_t)(u & 0xff);
      map.data[2 * i + 1] = (uint8_t)(u >> 8);
    }
    gst_buffer_unmap(b, &map);
    GST_BUFFER_PTS(b) = gst_util_uint64_scale_int(pushed_samples_, GST_SECOND, kRate);
    GST_BUFFER_DURATION(b) = gst_util_uint64_scale_int(n, GST_SECOND, kRate);
    pushed_samples_ += n;
    fail_unless_equals_int(gst_app_src_push_buffer(GST_APP_SRC(appsrc), b), GST_FLOW_OK);
    pos += n;
  }
  pushed_time_ = gst_util_uint64_scale_int(pushed_samples_, GST_SECOND, kRate);
}

void Pipeline::push_paced(const std::vector<int16_t> &samples) {
  const int64_t start = gst_test::now_us();
  for (size_t pos = 0, k = 0; pos < samples.size(); pos += 480, k++) {
    const int64_t due = start + (int64_t)k * 20000;
    const int64_t now = gst_test::now_us();
    if (due > now) g_usleep((gulong)(due - now));
    std::vector<int16_t> chunk(samples.begin() + (std::ptrdiff_t)pos,
                               samples.begin() + (std::ptrdiff_t)std::min(samples.size(), pos + 480));
    push(chunk);
  }
}

void Pipeline::push_eos() {
  fail_unless(appsrc != nullptr);
  fail_unless_equals_int(gst_app_src_end_of_stream(GST_APP_SRC(appsrc)), GST_FLOW_OK);
}

double Pipeline::stat(const char *field) const { return gst_test::structure_property_number(element(), "stats", field); }

std::string Pipeline::stats_string() const {
  GstStructure *s = gst_test::get_structure_property(element(), "stats");
  if (!s) return "(no stats)";
  gchar *t = gst_structure_to_string(s);
  std::string out = t;
  g_free(t);
  gst_structure_free(s);
  return out;
}

std::string Playback::describe() const {
  return audio_test::describe_segments(samples.data(), segments, kRate) + " in " +
         std::to_string((int)audio_test::samples_to_ms(samples.size())) + " ms of output";
}

Playback analyse(const gst_test::AudioCollector &out, double threshold_dbfs) {
  Playback p;
  p.samples = out.samples();
  p.buffers = out.buffers();
  p.segments = audio_test::find_segments(p.samples, kRate, threshold_dbfs, 5.0, 50.0);
  return p;
}

void check_continuous_20ms(const std::vector<gst_test::BufferRecord> &buffers, double max_late_ms) {
  fail_unless(buffers.size() > 2, "only %zu buffers", buffers.size());
  const GstClockTime first_pts = buffers[0].pts;
  double worst_late = 0, worst_early = 0;
  for (size_t i = 0; i < buffers.size(); i++) {
    const auto &b = buffers[i];
    fail_unless_equals_int(b.n_samples, 480);
    fail_unless_equals_uint64(b.duration, 20 * GST_MSECOND);
    fail_unless_equals_uint64(b.pts, first_pts + i * 20 * GST_MSECOND);
    if (i > 0) {
      fail_unless_equals_uint64(b.offset, buffers[i - 1].offset_end);
      fail_if(b.discont, "DISCONT at buffer %zu", i);
    }
    double late = ((double)b.running_time - (double)b.pts) / 1e6;
    worst_late = std::max(worst_late, late);
    worst_early = std::min(worst_early, late);
  }
  fail_unless(worst_early > -5.0, "a buffer left %.1f ms before its running time", -worst_early);
  fail_unless(worst_late < max_late_ms, "a buffer left %.1f ms after its running time", worst_late);
}

void check_tone(const Playback &p, const audio_test::Segment &seg, double hz, double expected_ms, double tolerance_ms) {
  const int16_t *s = p.samples.data() + seg.start;
  double f = audio_test::dominant_frequency(s, seg.length(), kRate);
  fail_unless(std::fabs(f - hz) < 2.0, "tone at %.1f Hz, expected %.0f: %s", f, hz, p.describe().c_str());
  double z = audio_test::zero_crossing_frequency(s, seg.length(), kRate);
  fail_unless(std::fabs(z - hz) < 2.0, "zero crossings say %.1f Hz, expected %.0f", z, hz);
  fail_unless(audio_test::tone_purity(s, seg.length(), hz, kRate) > 0.9, "not a clean tone: %s", p.describe().c_str());
  if (expected_ms > 0) {
    double d = audio_test::duration_ms(seg, kRate);
    fail_unless(std::fabs(d - expected_ms) <= tolerance_ms, "tone lasted %.1f ms, expected %.0f ± %.0f: %s", d,
                expected_ms, tolerance_ms, p.describe().c_str());
  }
}

size_t played_extent_samples(const Playback &p) {
  size_t first = SIZE_MAX, last = 0;
  for (const auto &b : p.buffers) {
    if (b.nonzero == 0) continue;
    first = std::min(first, b.first_sample);
    last = std::max(last, b.first_sample + b.n_samples);
  }
  return first == SIZE_MAX ? 0 : last - first;
}

namespace {

JsonNode *parse(const std::string &json, JsonParser **parser) {
  *parser = json_parser_new();
  if (!json_parser_load_from_data(*parser, json.c_str(), (gssize)json.size(), nullptr)) return nullptr;
  return json_parser_get_root(*parser);
}

JsonNode *walk(JsonNode *node, const std::string &path) {
  gchar **parts = g_strsplit(path.c_str(), ".", -1);
  for (gchar **p = parts; *p && node; p++) {
    if (JSON_NODE_HOLDS_OBJECT(node)) {
      JsonObject *o = json_node_get_object(node);
      node = json_object_has_member(o, *p) ? json_object_get_member(o, *p) : nullptr;
    } else if (JSON_NODE_HOLDS_ARRAY(node)) {
      JsonArray *a = json_node_get_array(node);
      guint i = (guint)atoi(*p);
      node = i < json_array_get_length(a) ? json_array_get_element(a, i) : nullptr;
    } else {
      node = nullptr;
    }
  }
  g_strfreev(parts);
  return node;
}

}  // namespace

std::vector<std::string> events_of_type(const fake_realtime::ConnectionLog &log, const std::string &type) {
  std::vector<std::string> out;
  for (size_t i = 0; i < log.types.size() && i < log.events.size(); i++)
    if (log.types[i] == type) out.push_back(log.events[i]);
  return out;
}

std::string json_path_string(const std::string &json, const std::string &path) {
  JsonParser *parser = nullptr;
  JsonNode *root = parse(json, &parser);
  std::string out;
  JsonNode *n = root ? walk(root, path) : nullptr;
  if (n && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING) out = json_node_get_string(n);
  g_object_unref(parser);
  return out;
}

int64_t json_path_int(const std::string &json, const std::string &path, int64_t fallback) {
  JsonParser *parser = nullptr;
  JsonNode *root = parse(json, &parser);
  int64_t out = fallback;
  JsonNode *n = root ? walk(root, path) : nullptr;
  if (n && JSON_NODE_HOLDS_VALUE(n)) {
    if (json_node_get_value_type(n) == G_TYPE_INT64) out = json_node_get_int(n);
    if (json_node_get_value_type(n) == G_TYPE_DOUBLE) out = (int64_t)json_node_get_double(n);
  }
  g_object_unref(parser);
  return out;
}

std::vector<std::string> created_text_items(const fake_realtime::ConnectionLog &log) {
  std::vector<std::string> out;
  for (const auto &e : events_of_type(log, "conversation.item.create")) {
    if (json_path_string(e, "item.type") != "message") continue;
    out.push_back(json_path_string(e, "item.role") + ": " + json_path_string(e, "item.content.0.text"));
  }
  return out;
}

int first_index(const fake_realtime::ConnectionLog &log, const std::string &type) {
  for (size_t i = 0; i < log.types.size(); i++)
    if (log.types[i] == type) return (int)i;
  return -1;
}

void measure(const char *name, double value, const char *unit) {
  g_print("MEASURE %s=%.2f %s\n", name, value, unit);
}

}  // namespace rt_fixture
