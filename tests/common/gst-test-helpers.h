// GStreamer helpers for tests that run real pipelines (not GstHarness): record bus messages with
// their timing, collect the audio an appsink receives, and wait for conditions with deadlines.
//
//   GstElement *p = gst_parse_launch("openairealtimesrc session=x ! appsink name=out", nullptr);
//   gst_test::BusLog bus(p);                       // before PLAYING: sees every message
//   gst_test::AudioCollector out(gst_bin_get_by_name(GST_BIN(p), "out"));  // takes the ref
//   gst_element_set_state(p, GST_STATE_PLAYING);
//   auto ready = bus.wait_for("openairealtime-session-ready", 5000);
//   ...
//   gst_element_set_state(p, GST_STATE_NULL); gst_object_unref(p);
//
// Every wait is bounded. All classes are thread-safe: messages and buffers arrive on streaming
// threads, tests read from the main thread.
#pragma once

#include <gst/gst.h>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace gst_test {

// Monotonic time in microseconds (g_get_monotonic_time).
int64_t now_us();

// Polls pred every interval_ms until it is true or timeout_ms passed; returns pred()'s last value.
// Runs the default GMainContext in between, so that code relying on it keeps working.
bool poll_until(const std::function<bool()> &pred, int timeout_ms, int interval_ms = 5);

// Sleeps for ms (iterating the default main context).
void sleep_ms(int ms);

// The running time of a pipeline now (clock time - base time), or GST_CLOCK_TIME_NONE without a clock.
GstClockTime running_time(GstElement *pipeline);

// One bus message as the BusLog saw it.
struct BusRecord {
  GstMessageType type = GST_MESSAGE_UNKNOWN;
  std::string name;            // structure name for element/application messages; else the type name
  std::string source;          // name of the posting object
  GstStructure *structure = nullptr;  // a copy (element messages, errors: the parsed details), owned
  std::string error_text;      // ERROR/WARNING: "message (debug)"
  int64_t mono_us = 0;         // monotonic time when posted
  GstClockTime running_time = GST_CLOCK_TIME_NONE;  // pipeline running time when posted

  BusRecord() = default;
  BusRecord(const BusRecord &o);
  BusRecord &operator=(const BusRecord &o);
  ~BusRecord();

  // Typed field access on the structure (fallback when absent or of another type).
  std::string str(const char *field, const std::string &fallback = {}) const;
  bool boolean(const char *field, bool fallback = false) const;
  int64_t int64(const char *field, int64_t fallback = -1) const;  // accepts int, uint, int64, uint64
  double dbl(const char *field, double fallback = -1) const;     // any number; booleans as 0/1
};

// Records the messages of a pipeline's bus from a sync handler (so it needs no main loop and sees
// each message at the moment it is posted). Records element messages, ERROR, WARNING, EOS and
// application messages; drops everything from the bus afterwards (nobody else pops it).
class BusLog {
 public:
  explicit BusLog(GstElement *pipeline);
  ~BusLog();  // removes the sync handler
  BusLog(const BusLog &) = delete;
  BusLog &operator=(const BusLog &) = delete;

  std::vector<BusRecord> all() const;
  std::vector<BusRecord> named(const std::string &name) const;
  int count(const std::string &name) const;
  std::optional<BusRecord> first(const std::string &name) const;
  // Waits (bounded) for the n-th (1-based) message of that name.
  std::optional<BusRecord> wait_for(const std::string &name, int timeout_ms, int nth = 1) const;
  // Waits for a message of that name whose structure satisfies pred.
  std::optional<BusRecord> wait_for_match(const std::string &name, const std::function<bool(const BusRecord &)> &pred,
                                          int timeout_ms) const;
  // Convenience for ERROR messages (name "error").
  bool has_error() const { return count("error") > 0; }
  std::string errors_text() const;
  // One line per record, for failure messages.
  std::string dump() const;
  // Calls fn for every message, in the posting thread, before it is recorded (e.g. to delay a state
  // change at a precise point: the sync handler runs inside the element's state change).
  void set_hook(std::function<void(GstMessage *)> fn);

 private:
  static GstBusSyncReply on_sync(GstBus *bus, GstMessage *msg, gpointer self);
  void record(GstMessage *msg);
  GstElement *pipeline_;  // not reffed: the log lives within the pipeline's lifetime
  GstBus *bus_;
  mutable std::mutex mutex_;
  mutable std::condition_variable cond_;
  std::vector<BusRecord> records_;
  std::function<void(GstMessage *)> hook_;
};

// One buffer as an AudioCollector saw it.
struct BufferRecord {
  GstClockTime pts = GST_CLOCK_TIME_NONE;
  GstClockTime duration = GST_CLOCK_TIME_NONE;
  guint64 offset = GST_BUFFER_OFFSET_NONE;
  guint64 offset_end = GST_BUFFER_OFFSET_NONE;
  bool discont = false;
  size_t first_sample = 0;  // index of its first sample in AudioCollector::samples()
  size_t n_samples = 0;
  size_t nonzero = 0;       // samples that are not digital silence
  int64_t mono_us = 0;      // monotonic time at arrival
  GstClockTime running_time = GST_CLOCK_TIME_NONE;  // pipeline running time at arrival
};

// Collects the S16 mono audio arriving at an appsink (new-sample callback; the appsink should run
// with sync=false so that arrival time is the time the upstream element produced the buffer).
class AudioCollector {
 public:
  // Takes ownership of the appsink reference (gst_bin_get_by_name's). pipeline is used for running
  // times; it may be null (then running_time stays NONE).
  AudioCollector(GstElement *appsink, GstElement *pipeline = nullptr);
  ~AudioCollector();
  AudioCollector(const AudioCollector &) = delete;
  AudioCollector &operator=(const AudioCollector &) = delete;

  std::vector<int16_t> samples() const;
  std::vector<BufferRecord> buffers() const;
  size_t sample_count() const;
  size_t buffer_count() const;
  std::string caps() const;  // the caps of the last sample, as a string
  // Waits (bounded) until at least n samples have arrived.
  bool wait_samples(size_t n, int timeout_ms) const;
  // Waits until pred(samples so far) is true (pred is called with the lock held; keep it cheap).
  bool wait_until(const std::function<bool(const std::vector<int16_t> &)> &pred, int timeout_ms) const;
  // Number of non-zero samples received so far.
  size_t nonzero_count() const;

 private:
  static GstFlowReturn on_new_sample(GstElement *sink, gpointer self);
  GstElement *appsink_;
  GstElement *pipeline_;
  gulong handler_ = 0;
  mutable std::mutex mutex_;
  mutable std::condition_variable cond_;
  std::vector<int16_t> samples_;
  std::vector<BufferRecord> buffers_;
  size_t nonzero_ = 0;
  std::string caps_;
};

// Reads a GstStructure-valued property (e.g. a `stats` property) as a copy; nullptr if not a structure.
GstStructure *get_structure_property(GstElement *element, const char *property);
// A uint64/int/uint/int64/double/boolean field of a structure property, as double (booleans: 0/1);
// fallback when absent.
double structure_property_number(GstElement *element, const char *property, const char *field, double fallback = -1);

}  // namespace gst_test
