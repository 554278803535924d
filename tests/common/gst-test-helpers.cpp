#include "gst-test-helpers.h"

#include <gst/app/gstappsink.h>

#include <chrono>
#include <sstream>

namespace gst_test {

int64_t now_us() { return g_get_monotonic_time(); }

void sleep_ms(int ms) {
  const int64_t end = now_us() + (int64_t)ms * 1000;
  while (now_us() < end) {
    while (g_main_context_iteration(nullptr, FALSE)) {
    }
    int64_t left = end - now_us();
    if (left > 0) g_usleep((gulong)std::min<int64_t>(left, 2000));
  }
}

bool poll_until(const std::function<bool()> &pred, int timeout_ms, int interval_ms) {
  const int64_t end = now_us() + (int64_t)timeout_ms * 1000;
  while (true) {
    if (pred()) return true;
    if (now_us() >= end) return pred();
    while (g_main_context_iteration(nullptr, FALSE)) {
    }
    g_usleep((gulong)interval_ms * 1000);
  }
}

GstClockTime running_time(GstElement *pipeline) {
  if (!pipeline) return GST_CLOCK_TIME_NONE;
  GstClock *clock = gst_element_get_clock(pipeline);
  if (!clock) return GST_CLOCK_TIME_NONE;
  GstClockTime now = gst_clock_get_time(clock);
  gst_object_unref(clock);
  GstClockTime base = gst_element_get_base_time(pipeline);
  return now > base ? now - base : 0;
}

// ---- BusRecord ----

BusRecord::BusRecord(const BusRecord &o)
    : type(o.type),
      name(o.name),
      source(o.source),
      structure(o.structure ? gst_structure_copy(o.structure) : nullptr),
      error_text(o.error_text),
      mono_us(o.mono_us),
      running_time(o.running_time) {}

BusRecord &BusRecord::operator=(const BusRecord &o) {
  if (this == &o) return *this;
  if (structure) gst_structure_free(structure);
  type = o.type;
  name = o.name;
  source = o.source;
  structure = o.structure ? gst_structure_copy(o.structure) : nullptr;
  error_text = o.error_text;
  mono_us = o.mono_us;
  running_time = o.running_time;
  return *this;
}

BusRecord::~BusRecord() {
  if (structure) gst_structure_free(structure);
}

std::string BusRecord::str(const char *field, const std::string &fallback) const {
  const char *s = structure ? gst_structure_get_string(structure, field) : nullptr;
  return s ? s : fallback;
}

bool BusRecord::boolean(const char *field, bool fallback) const {
  gboolean b;
  if (structure && gst_structure_get_boolean(structure, field, &b)) return b;
  return fallback;
}

int64_t BusRecord::int64(const char *field, int64_t fallback) const {
  if (!structure || !gst_structure_has_field(structure, field)) return fallback;
  const GValue *v = gst_structure_get_value(structure, field);
  if (G_VALUE_HOLDS_INT(v)) return g_value_get_int(v);
  if (G_VALUE_HOLDS_UINT(v)) return g_value_get_uint(v);
  if (G_VALUE_HOLDS_INT64(v)) return g_value_get_int64(v);
  if (G_VALUE_HOLDS_UINT64(v)) return (int64_t)g_value_get_uint64(v);
  return fallback;
}

double BusRecord::dbl(const char *field, double fallback) const {
  if (!structure || !gst_structure_has_field(structure, field)) return fallback;
  const GValue *v = gst_structure_get_value(structure, field);
  if (G_VALUE_HOLDS_DOUBLE(v)) return g_value_get_double(v);
  if (G_VALUE_HOLDS_BOOLEAN(v)) return g_value_get_boolean(v) ? 1.0 : 0.0;
  int64_t i = int64(field, INT64_MIN);
  return i == INT64_MIN ? fallback : (double)i;
}

// ---- BusLog ----

BusLog::BusLog(GstElement *pipeline) : pipeline_(pipeline), bus_(gst_element_get_bus(pipeline)) {
  gst_bus_set_sync_handler(bus_, &BusLog::on_sync, this, nullptr);
}

BusLog::~BusLog() {
  gst_bus_set_sync_handler(bus_, nullptr, nullptr, nullptr);
  gst_object_unref(bus_);
}

// A sync handler that returns GST_BUS_DROP owns the message and must unref it (GstBusSyncHandler
// contract); otherwise every dropped message keeps its source (the pipeline, elements) alive.
GstBusSyncReply BusLog::on_sync(GstBus *, GstMessage *msg, gpointer data) {
  static_cast<BusLog *>(data)->record(msg);
  gst_message_unref(msg);
  return GST_BUS_DROP;
}

void BusLog::record(GstMessage *msg) {
  BusLog *self = this;
  std::function<void(GstMessage *)> hook;
  {
    std::lock_guard<std::mutex> lock(self->mutex_);
    hook = self->hook_;
  }
  if (hook) hook(msg);
  BusRecord r;
  r.type = GST_MESSAGE_TYPE(msg);
  r.mono_us = now_us();
  r.running_time = running_time(self->pipeline_);
  r.source = GST_MESSAGE_SRC(msg) ? GST_OBJECT_NAME(GST_MESSAGE_SRC(msg)) : "";
  switch (r.type) {
    case GST_MESSAGE_ELEMENT:
    case GST_MESSAGE_APPLICATION: {
      const GstStructure *s = gst_message_get_structure(msg);
      if (!s) return;
      r.name = gst_structure_get_name(s);
      r.structure = gst_structure_copy(s);
      break;
    }
    case GST_MESSAGE_ERROR:
    case GST_MESSAGE_WARNING: {
      GError *err = nullptr;
      gchar *debug = nullptr;
      if (r.type == GST_MESSAGE_ERROR)
        gst_message_parse_error(msg, &err, &debug);
      else
        gst_message_parse_warning(msg, &err, &debug);
      r.name = r.type == GST_MESSAGE_ERROR ? "error" : "warning";
      r.error_text = std::string(err ? err->message : "?") + " (" + (debug ? debug : "") + ")";
      g_clear_error(&err);
      g_free(debug);
      break;
    }
    case GST_MESSAGE_EOS:
      r.name = "eos";
      break;
    default:
      return;
  }
  {
    std::lock_guard<std::mutex> lock(self->mutex_);
    self->records_.push_back(r);
  }
  self->cond_.notify_all();
}

std::vector<BusRecord> BusLog::all() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return records_;
}

std::vector<BusRecord> BusLog::named(const std::string &name) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<BusRecord> out;
  for (const auto &r : records_)
    if (r.name == name) out.push_back(r);
  return out;
}

int BusLog::count(const std::string &name) const {
  std::lock_guard<std::mutex> lock(mutex_);
  int n = 0;
  for (const auto &r : records_) n += r.name == name;
  return n;
}

std::optional<BusRecord> BusLog::first(const std::string &name) const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto &r : records_)
    if (r.name == name) return r;
  return std::nullopt;
}

std::optional<BusRecord> BusLog::wait_for(const std::string &name, int timeout_ms, int nth) const {
  int seen = 0;
  return wait_for_match(name, [&](const BusRecord &) { return ++seen >= nth; }, timeout_ms);
}

std::optional<BusRecord> BusLog::wait_for_match(const std::string &name,
                                                const std::function<bool(const BusRecord &)> &pred,
                                                int timeout_ms) const {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::unique_lock<std::mutex> lock(mutex_);
  size_t checked = 0;
  while (true) {
    for (; checked < records_.size(); checked++)
      if (records_[checked].name == name && pred(records_[checked])) return records_[checked];
    if (cond_.wait_until(lock, deadline) == std::cv_status::timeout) {
      for (; checked < records_.size(); checked++)
        if (records_[checked].name == name && pred(records_[checked])) return records_[checked];
      return std::nullopt;
    }
  }
}

void BusLog::set_hook(std::function<void(GstMessage *)> fn) {
  std::lock_guard<std::mutex> lock(mutex_);
  hook_ = std::move(fn);
}

std::string BusLog::errors_text() const {
  std::string out;
  for (const auto &r : named("error")) out += r.source + ": " + r.error_text + "\n";
  return out;
}

std::string BusLog::dump() const {
  std::ostringstream out;
  for (const auto &r : all()) {
    out << (r.running_time == GST_CLOCK_TIME_NONE ? -1.0 : r.running_time / 1e6) << " ms  " << r.source << "  ";
    if (r.structure) {
      gchar *s = gst_structure_to_string(r.structure);
      out << s;
      g_free(s);
    } else {
      out << r.name << " " << r.error_text;
    }
    out << "\n";
  }
  return out.str();
}

// ---- AudioCollector ----

AudioCollector::AudioCollector(GstElement *appsink, GstElement *pipeline) : appsink_(appsink), pipeline_(pipeline) {
  g_object_set(appsink_, "emit-signals", TRUE, nullptr);
  handler_ = g_signal_connect(appsink_, "new-sample", G_CALLBACK(&AudioCollector::on_new_sample), this);
}

AudioCollector::~AudioCollector() {
  g_signal_handler_disconnect(appsink_, handler_);
  gst_object_unref(appsink_);
}

GstFlowReturn AudioCollector::on_new_sample(GstElement *sink, gpointer data) {
  auto *self = static_cast<AudioCollector *>(data);
  GstSample *sample = gst_app_sink_pull_sample(GST_APP_SINK(sink));
  if (!sample) return GST_FLOW_OK;
  GstBuffer *buf = gst_sample_get_buffer(sample);
  BufferRecord r;
  r.mono_us = now_us();
  r.running_time = running_time(self->pipeline_);
  r.pts = GST_BUFFER_PTS(buf);
  r.duration = GST_BUFFER_DURATION(buf);
  r.offset = GST_BUFFER_OFFSET(buf);
  r.offset_end = GST_BUFFER_OFFSET_END(buf);
  r.discont = GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_DISCONT);
  GstMapInfo map;
  std::string caps_str;
  if (GstCaps *caps = gst_sample_get_caps(sample)) {
    gchar *c = gst_caps_to_string(caps);
    caps_str = c;
    g_free(c);
  }
  if (gst_buffer_map(buf, &map, GST_MAP_READ)) {
    std::lock_guard<std::mutex> lock(self->mutex_);
    r.first_sample = self->samples_.size();
    r.n_samples = map.size / 2;
    const uint8_t *p = map.data;
    for (size_t i = 0; i < r.n_samples; i++) {
      int16_t s = (int16_t)(uint16_t)(p[2 * i] | (p[2 * i + 1] << 8));
      self->samples_.push_back(s);
      r.nonzero += s != 0;
    }
    self->nonzero_ += r.nonzero;
    self->buffers_.push_back(r);
    self->caps_ = caps_str;
    gst_buffer_unmap(buf, &map);
  }
  gst_sample_unref(sample);
  self->cond_.notify_all();
  return GST_FLOW_OK;
}

std::vector<int16_t> AudioCollector::samples() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return samples_;
}

std::vector<BufferRecord> AudioCollector::buffers() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return buffers_;
}

size_t AudioCollector::sample_count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return samples_.size();
}

size_t AudioCollector::buffer_count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return buffers_.size();
}

size_t AudioCollector::nonzero_count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return nonzero_;
}

std::string AudioCollector::caps() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return caps_;
}

bool AudioCollector::wait_samples(size_t n, int timeout_ms) const {
  return wait_until([n](const std::vector<int16_t> &s) { return s.size() >= n; }, timeout_ms);
}

bool AudioCollector::wait_until(const std::function<bool(const std::vector<int16_t> &)> &pred, int timeout_ms) const {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::unique_lock<std::mutex> lock(mutex_);
  while (!pred(samples_)) {
    if (cond_.wait_until(lock, deadline) == std::cv_status::timeout) return pred(samples_);
  }
  return true;
}

// ---- properties ----

GstStructure *get_structure_property(GstElement *element, const char *property) {
  GParamSpec *spec = g_object_class_find_property(G_OBJECT_GET_CLASS(element), property);
  if (!spec || spec->value_type != GST_TYPE_STRUCTURE) return nullptr;
  GstStructure *s = nullptr;
  g_object_get(element, property, &s, nullptr);
  return s;
}

double structure_property_number(GstElement *element, const char *property, const char *field, double fallback) {
  GstStructure *s = get_structure_property(element, property);
  if (!s) return fallback;
  BusRecord tmp;
  tmp.structure = s;  // freed by tmp
  return tmp.dbl(field, fallback);
}

}  // namespace gst_test
