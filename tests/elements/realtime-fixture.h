// Fixture for the integration tests of openairealtimesink/openairealtimesrc against the fake
// Realtime server (tests/fake-realtime): a started server, and a real pipeline on the system clock
//
//   appsrc name=in ! openairealtimesink name=rtsink session=S url=…      (when with_sink)
//   openairealtimesrc name=rtsrc session=S url=… ! appsink name=out      (when with_src)
//
// with a BusLog (every element message with its running time) and an AudioCollector on the appsink.
// The destructor sets the pipeline to NULL and frees everything; the server stops in its own
// destructor. Every wait is bounded and fails the test with the bus log attached.
#pragma once

#include <gst/check/gstcheck.h>

#include <memory>
#include <string>
#include <vector>

#include "audio-analysis.h"
#include "fake-realtime-server.h"
#include "gst-test-helpers.h"

// String equality that owns its operands (check's fail_unless_equals_string keeps the raw pointers,
// so `fail_unless_equals_string(r.str("x").c_str(), …)` would read a destroyed temporary).
#define fail_unless_str_eq(a, b)                                                                     \
  do {                                                                                               \
    const std::string _str_a = (a), _str_b = (b);                                                    \
    fail_unless(_str_a == _str_b, "%s is '%s', expected '%s'", #a, _str_a.c_str(), _str_b.c_str()); \
  } while (0)

namespace rt_fixture {

constexpr int kRate = 24000;
constexpr const char *kCaps = "audio/x-raw,format=S16LE,rate=24000,channels=1,layout=interleaved";

// Registers both elements statically (call once, from the suite function).
void register_elements();

// Starts a fake server on a free loopback port; fails the test if it cannot.
std::unique_ptr<fake_realtime::Server> start_server(const fake_realtime::Config &config = {});

// A session name no other test in this process uses.
std::string unique_session(const char *prefix);

struct Options {
  std::string session;
  std::string url;
  bool with_sink = true;
  bool with_src = true;
  std::string props;      // extra properties for both elements, gst-launch syntax ("voice=cedar greeting=\"Hi\"")
  std::string sink_props; // extra properties for the sink only
  std::string src_props;  // extra properties for the src only
  // Which elements get session= url= props= (both by default; a test of "settings on one element
  // only" clears one and passes that element's settings in sink_props/src_props).
  bool common_on_sink = true;
  bool common_on_src = true;
};

class Pipeline {
 public:
  explicit Pipeline(const Options &options);
  ~Pipeline();
  Pipeline(const Pipeline &) = delete;
  Pipeline &operator=(const Pipeline &) = delete;

  void play();
  void stop();  // to NULL (also done by the destructor)
  // Waits for openairealtime-session-ready; fails the test (with the bus log) if it does not come.
  gst_test::BusRecord wait_ready(int timeout_ms = 5000);
  // Waits for a message; fails the test on timeout.
  gst_test::BusRecord expect(const std::string &name, int timeout_ms, int nth = 1);

  // Pushes samples into the appsrc in chunks of chunk_samples (the last one may be shorter), with
  // continuous timestamps. cycle_sizes, when given, replaces the fixed chunk size by a repeating
  // pattern (to exercise odd buffer sizes).
  void push(const std::vector<int16_t> &samples, size_t chunk_samples = 480,
            const std::vector<size_t> &cycle_sizes = {});
  // The same, paced like a live microphone: one 20 ms buffer every 20 ms of wall-clock time.
  void push_paced(const std::vector<int16_t> &samples);
  void push_eos();

  // The element to emit action signals on / read `stats` from: the src if present, else the sink.
  GstElement *element() const { return rtsrc ? rtsrc : rtsink; }
  double stat(const char *field) const;
  std::string stats_string() const;
  // Running time of the pipeline now.
  GstClockTime now() const { return gst_test::running_time(pipeline); }

  GstElement *pipeline = nullptr;
  GstElement *appsrc = nullptr;
  GstElement *rtsink = nullptr;
  GstElement *rtsrc = nullptr;
  std::unique_ptr<gst_test::BusLog> bus;
  std::unique_ptr<gst_test::AudioCollector> out;  // null without the src

 private:
  GstClockTime pushed_time_ = 0;
  guint64 pushed_samples_ = 0;
};

// What the src played, analysed: the sound segments of everything the appsink received.
struct Playback {
  std::vector<int16_t> samples;
  std::vector<gst_test::BufferRecord> buffers;
  std::vector<audio_test::Segment> segments;
  std::string describe() const;  // segments with frequency and level, for failure messages
};
Playback analyse(const gst_test::AudioCollector &out, double threshold_dbfs = -50.0);

// Checks the src's output buffers: all 20 ms (480 samples), timestamps exactly continuous
// (each PTS = previous + 20 ms, offsets follow the sample count), and each buffer produced at its
// running time (arrival running time - PTS within [-5, max_late_ms] ms).
void check_continuous_20ms(const std::vector<gst_test::BufferRecord> &buffers, double max_late_ms = 60.0);

// Checks that one segment is the fake's reply tone: frequency (±2 Hz) and, when expected_ms > 0,
// duration (±tolerance_ms).
void check_tone(const Playback &p, const audio_test::Segment &seg, double hz, double expected_ms,
                double tolerance_ms = 20.0);

// Samples of the played item as the session counts them: from the start of the first buffer that
// carried model audio to the end of the last one (the src always pulls whole buffers, so model audio
// starts and stops on buffer boundaries).
size_t played_extent_samples(const Playback &p);

// JSON helpers on the events the server recorded.
// The events of one connection whose "type" is type (JSON text).
std::vector<std::string> events_of_type(const fake_realtime::ConnectionLog &log, const std::string &type);
// A string member at a dotted path ("item.role", "item.content.0.text"); "" when absent.
std::string json_path_string(const std::string &json, const std::string &path);
int64_t json_path_int(const std::string &json, const std::string &path, int64_t fallback = -1);
// The texts of the conversation.item.create message items of a connection, as "role: text".
std::vector<std::string> created_text_items(const fake_realtime::ConnectionLog &log);

// Index of the first event of a type in a connection, or -1.
int first_index(const fake_realtime::ConnectionLog &log, const std::string &type);

// "MEASURE name=value unit": measurements collected in the test log for the report.
void measure(const char *name, double value, const char *unit);

}  // namespace rt_fixture
