// Tests of the shared test helpers themselves: an audio check that is wrong would make every test
// that uses it meaningless.
#include <gst/check/gstcheck.h>

#include <cmath>
#include <cstdio>
#include <unistd.h>

#include "audio-analysis.h"
#include "gst-test-helpers.h"
#include "process-runner.h"
#include "wav-file.h"

using namespace audio_test;

GST_START_TEST(test_levels)
{
  auto tone = make_tone(440, 1000, -12.0, 24000, 0);
  // A sine's RMS is its peak - 3.01 dB.
  fail_unless(std::fabs(peak_dbfs(tone) - -12.0) < 0.05, "peak %.2f", peak_dbfs(tone));
  fail_unless(std::fabs(rms_dbfs(tone) - -15.01) < 0.05, "rms %.2f", rms_dbfs(tone));
  auto silence = make_silence(100);
  fail_unless_equals_int(silence.size(), 2400);
  fail_unless(std::isinf(rms_dbfs(silence)) && rms_dbfs(silence) < 0);
  fail_unless(all_zero(silence.data(), silence.size()));
  fail_unless_equals_int(count_nonzero(tone.data(), tone.size()) > 23000, TRUE);
  fail_unless(std::fabs(dbfs_to_linear(-6.0206) - 0.5) < 1e-4);
}
GST_END_TEST;

GST_START_TEST(test_frequency)
{
  for (double hz : {300.0, 440.0, 1000.0, 3100.0}) {
    auto tone = make_tone(hz, 500, -20.0);
    double f = dominant_frequency(tone.data(), tone.size());
    fail_unless(std::fabs(f - hz) < 1.0, "dominant %.2f for %.0f", f, hz);
    double z = zero_crossing_frequency(tone.data(), tone.size());
    fail_unless(std::fabs(z - hz) < 1.0, "zero crossings %.2f for %.0f", z, hz);
    double a = goertzel_dbfs(tone.data(), tone.size(), hz);
    fail_unless(std::fabs(a - -20.0) < 0.5, "goertzel amplitude %.2f dBFS for %.0f", a, hz);
    fail_unless(tone_purity(tone.data(), tone.size(), hz) > 0.95);
    fail_unless(tone_purity(tone.data(), tone.size(), hz * 1.5) < 0.05);
  }
  // A mix: the stronger tone wins, each is measured at its own level.
  auto mixed = mix(make_tone(440, 500, -10.0), make_tone(1200, 500, -30.0));
  fail_unless(std::fabs(dominant_frequency(mixed.data(), mixed.size()) - 440) < 1.0);
  fail_unless(std::fabs(goertzel_dbfs(mixed.data(), mixed.size(), 1200) - -30.0) < 1.0);
  // Noise has no dominant tone of any strength.
  auto noise = make_noise(500, -20.0, 7);
  fail_unless(tone_purity(noise.data(), noise.size(), 440) < 0.05);
  auto noise2 = make_noise(500, -20.0, 7);
  fail_unless(noise == noise2, "noise must be deterministic");
  auto silence = make_silence(100);
  fail_unless_equals_int((int)dominant_frequency(silence.data(), silence.size()), 0);
}
GST_END_TEST;

GST_START_TEST(test_segments)
{
  // 200 ms silence, 1000 ms tone, 300 ms silence, 500 ms tone, 100 ms silence.
  auto s = concat(make_silence(200), make_tone(440, 1000, -10.0));
  s = concat(s, make_silence(300));
  s = concat(s, make_tone(880, 500, -20.0));
  s = concat(s, make_silence(100));
  auto segs = find_segments(s, 24000, -50.0);
  fail_unless_equals_int(segs.size(), 2);
  // The 5 ms fades cost a sample or two at the threshold; the edges are otherwise exact.
  fail_unless(std::fabs(start_ms(segs[0]) - 200) < 1.0, "%s", describe_segments(s.data(), segs).c_str());
  fail_unless(std::fabs(duration_ms(segs[0]) - 1000) < 1.0, "%s", describe_segments(s.data(), segs).c_str());
  fail_unless(std::fabs(start_ms(segs[1]) - 1500) < 1.0, "%s", describe_segments(s.data(), segs).c_str());
  fail_unless(std::fabs(duration_ms(segs[1]) - 500) < 1.0, "%s", describe_segments(s.data(), segs).c_str());
  // Gaps shorter than min_gap_ms merge.
  auto merged = find_segments(s, 24000, -50.0, 5.0, 400.0);
  fail_unless_equals_int(merged.size(), 1);
  fail_unless_equals_int(find_segments(make_silence(500)).size(), 0);
}
GST_END_TEST;

GST_START_TEST(test_wav_roundtrip)
{
  gchar *dir = g_dir_make_tmp("common-wav-XXXXXX", nullptr);
  std::string path = std::string(dir) + "/t.wav";
  auto tone = concat(make_tone(300, 1000, -12.0), make_silence(500));
  std::string err;
  fail_unless(write_wav(path, tone, 24000, 1, &err), "%s", err.c_str());
  WavData w;
  fail_unless(read_wav(path, &w, &err), "%s", err.c_str());
  fail_unless_equals_int(w.rate, 24000);
  fail_unless_equals_int(w.channels, 1);
  fail_unless(w.samples == tone);
  fail_unless(std::fabs(w.duration_ms() - 1500) < 0.1);
  // A truncated file (header promises more than is there) still reads what is present.
  {
    FILE *f = fopen(path.c_str(), "r+b");
    fail_unless(f != nullptr);
    fail_unless(ftruncate(fileno(f), 44 + 1000) == 0);
    fclose(f);
  }
  fail_unless(read_wav(path, &w, &err), "%s", err.c_str());
  fail_unless_equals_int(w.samples.size(), 500);
  // Not a WAV.
  {
    FILE *f = fopen(path.c_str(), "wb");
    fputs("hello", f);
    fclose(f);
  }
  fail_if(read_wav(path, &w, &err));
  unlink(path.c_str());
  rmdir(dir);
  g_free(dir);
}
GST_END_TEST;

// The helpers on a real pipeline: an audiotestsrc tone reaches the collector at its level and
// frequency, with continuous timestamps, and the bus log sees EOS.
GST_START_TEST(test_collector_and_bus)
{
  GstElement *p = gst_parse_launch(
      "audiotestsrc num-buffers=25 samplesperbuffer=480 freq=600 volume=0.25 ! "
      "audio/x-raw,format=S16LE,rate=24000,channels=1 ! appsink name=out sync=false",
      nullptr);
  fail_unless(p != nullptr);
  gst_test::BusLog bus(p);
  gst_test::AudioCollector out(gst_bin_get_by_name(GST_BIN(p), "out"), p);
  gst_element_set_state(p, GST_STATE_PLAYING);
  fail_unless(bus.wait_for("eos", 5000).has_value(), "no EOS: %s", bus.dump().c_str());
  auto s = out.samples();
  fail_unless_equals_int(s.size(), 25 * 480);
  fail_unless(std::fabs(dominant_frequency(s.data(), s.size()) - 600) < 1.0);
  fail_unless(std::fabs(peak_dbfs(s) - linear_to_dbfs(0.25)) < 0.1);
  auto bufs = out.buffers();
  fail_unless_equals_int(bufs.size(), 25);
  for (size_t i = 1; i < bufs.size(); i++) fail_unless_equals_uint64(bufs[i].pts, bufs[i - 1].pts + 20 * GST_MSECOND);
  gst_element_set_state(p, GST_STATE_NULL);
  // The log and the collector must not keep the pipeline alive (a sync handler that drops messages
  // without unreffing them would: each message refs its source).
  bool finalized = false;
  g_object_weak_ref(G_OBJECT(p), [](gpointer flag, GObject *) { *static_cast<bool *>(flag) = true; }, &finalized);
  gst_object_unref(p);
  fail_unless(finalized, "the pipeline outlived its last reference");
}
GST_END_TEST;

GST_START_TEST(test_process_runner)
{
  auto r = gst_test::run_process({"/bin/sh", "-c", "echo out; echo err >&2; echo $FOO; exit 3"}, {{"FOO", "bar"}}, 5000);
  fail_unless(r.started);
  fail_unless_equals_int(r.exit_status, 3);
  fail_unless(r.out == "out\nbar\n", "%s", r.describe().c_str());
  fail_unless(r.err == "err\n");
  auto slow = gst_test::run_process({"/bin/sh", "-c", "sleep 30"}, {}, 300);
  fail_unless(slow.timed_out);
  fail_unless(slow.wall_ms < 5000, "%s", slow.describe().c_str());
}
GST_END_TEST;

static Suite *common_helpers_suite(void) {
  Suite *s = suite_create("common-helpers");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_levels);
  tcase_add_test(tc, test_frequency);
  tcase_add_test(tc, test_segments);
  tcase_add_test(tc, test_wav_roundtrip);
  tcase_add_test(tc, test_collector_and_bus);
  tcase_add_test(tc, test_process_runner);
  return s;
}

GST_CHECK_MAIN(common_helpers);
