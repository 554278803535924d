// Prometheus metrics of the service (CONTRACT.md §5). Thread-safe: streaming and webrtcbin threads
// may update counters. render() produces the text exposition format 0.0.4.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace vb {

class Metrics {
 public:
  static Metrics &get();

  // The fixed metrics of the contract (names and types are law; labels may be added).
  void set_calls_active(int n);                            // voicebridge_calls_active
  void call_finished(const std::string &result);           // voicebridge_calls_total{result}
  void observe_call_setup(double seconds);                 // voicebridge_call_setup_seconds
  void observe_first_audio(double seconds);                // voicebridge_first_audio_seconds
  void realtime_error(const std::string &code);            // voicebridge_realtime_errors_total{code}
  void barge_in();                                         // voicebridge_barge_ins_total
  void rtp_received(unsigned long long packets);           // voicebridge_rtp_packets_received_total
  void rtp_lost(unsigned long long packets);               // voicebridge_rtp_packets_lost_total
  void caller_audio_underruns(unsigned long long n);       // voicebridge_caller_audio_underruns_total

  // Generic access for the project's own metrics (declare once, then update). type is "counter",
  // "gauge", "histogram" or "untyped". A metric declared with declare() shows a 0 sample (an empty
  // histogram) until first updated; declare it with declare_labelled(…, true, …) when every update
  // carries labels, so that no label-less series appears beside the real ones.
  void declare(const std::string &name, const std::string &type, const std::string &help,
               const std::vector<double> &buckets = {});
  void declare_labelled(const std::string &name, const std::string &type, const std::string &help, bool labelled,
                        const std::vector<double> &buckets = {});
  void counter_add(const std::string &name, const std::map<std::string, std::string> &labels, double v = 1);
  void gauge_set(const std::string &name, const std::map<std::string, std::string> &labels, double v);
  void histogram_observe(const std::string &name, const std::map<std::string, std::string> &labels, double v);

  std::string render() const;
  void reset_for_tests();

 private:
  Metrics();
  struct Impl;
  Impl *impl_;
};

}  // namespace vb
