// The session survives what happens to long-running connections, against the fake Realtime server:
//  - a dropped connection is reopened and the conversation replayed as text items (d);
//  - a session near its expiry is renewed before the server expires it, with the history replayed
//    and no session_expired reaching the application (h); an expiry that does happen is recovered;
//  - a 2 MiB+ frame from the server does not close the socket (f).
// In each case audio still flows afterwards: a reply is played and checked.
#include <gst/check/gstcheck.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <unistd.h>

#include "realtime-fixture.h"

using namespace rt_fixture;

namespace {

// Waits until a reply of reply_ms has fully played after `after` samples of output, then returns
// the playback analysis of that part.
void expect_reply_plays(Pipeline &p, size_t after, double hz, double reply_ms) {
  auto finished = [after](const std::vector<int16_t> &s) {
    if (s.size() <= after) return false;
    auto segs = audio_test::find_segments(s.data() + after, s.size() - after, kRate, -50.0);
    return !segs.empty() && s.size() - after - segs.back().end > audio_test::ms_to_samples(200);
  };
  fail_unless(p.out->wait_until(finished, 4000), "no reply played: %s", analyse(*p.out).describe().c_str());
  auto all = p.out->samples();
  Playback tail;
  tail.samples.assign(all.begin() + (std::ptrdiff_t)after, all.end());
  tail.segments = audio_test::find_segments(tail.samples, kRate, -50.0);
  fail_unless_equals_int(tail.segments.size(), 1);
  check_tone(tail, tail.segments[0], hz, reply_ms, 20);
}

// A caller turn through the sink (so that the history has a caller transcript), and its reply.
void caller_turn(Pipeline &p, int nth_response) {
  p.push(audio_test::concat(audio_test::make_tone(300, 600, -12.0), audio_test::make_silence(500)));
  p.expect("openairealtime-response-done", 4000, nth_response);
}

// The history the application saw (transcripts on the bus, not interrupted), as "role: text" in the
// form the replay must use.
std::vector<std::string> bus_history(const Pipeline &p) {
  std::vector<std::string> out;
  for (const auto &t : p.bus->named("openairealtime-transcript")) {
    if (t.boolean("interrupted")) continue;
    out.push_back((t.str("role") == "caller" ? "user: " : "assistant: ") + t.str("text"));
  }
  return out;
}

// Waits (bounded) until connection `index` received as many text items as the history has, then checks
// every history entry is among them, in place.
void check_replayed(const fake_realtime::Server &server, int index, const std::vector<std::string> &history) {
  // The reconnected message is posted when the replay was handed to the socket; the server may not
  // have read it yet.
  server.wait_for([&] { return created_text_items(server.connection(index)).size() >= history.size(); }, 2000);
  const fake_realtime::ConnectionLog log = server.connection(index);
  auto items = created_text_items(log);
  std::string all;
  for (const auto &i : items) all += "  " + i + "\n";
  for (const auto &h : history)
    fail_unless(std::find(items.begin(), items.end(), h) != items.end(), "'%s' not replayed; replayed:\n%s",
                h.c_str(), all.c_str());
  // Replayed after the new socket's session.update, and nothing was appended before it either.
  int update = first_index(log, "session.update");
  fail_unless(update >= 0);
  int first_item = first_index(log, "conversation.item.create");
  fail_unless(first_item > update, "history replayed before session.update");
  int first_append = first_index(log, "input_audio_buffer.append");
  fail_unless(first_append < 0 || first_append > update);
}

}  // namespace

// (d) The server drops the socket without a close frame. The session reports reconnecting, opens a
// second connection, replays the conversation (caller transcript and the model's reply as text
// items), reports reconnected, and a later reply plays.
GST_START_TEST(test_dropped_connection_reconnects_and_replays)
{
  fake_realtime::Config cfg;
  cfg.reply_duration_ms = 500;
  cfg.reply_tone_hz = 440;
  auto server = start_server(cfg);
  Pipeline p({unique_session("drop"), server->url(), true, true, "silence-duration-ms=300"});
  p.play();
  p.wait_ready();
  caller_turn(p, 1);
  gboolean ok = FALSE;
  g_signal_emit_by_name(p.rtsrc, "add-text-item", "system", "The caller's name is Ada.", &ok);
  fail_unless(ok);
  expect_reply_plays(p, 0, 440, 500);
  auto history = bus_history(p);
  history.push_back("system: The caller's name is Ada.");
  fail_unless(history.size() >= 3, "expected caller + agent transcripts: %s", p.bus->dump().c_str());
  gst_test::sleep_ms(200);  // let the system item reach the server

  const int64_t dropped_us = gst_test::now_us();
  server->drop_connections();
  auto reconnecting = p.expect("openairealtime-reconnecting", 3000);
  fail_unless_equals_int((int)reconnecting.int64("attempt"), 1);
  auto reconnected = p.expect("openairealtime-reconnected", 5000);
  measure("drop_to_reconnected_ms", (reconnected.mono_us - dropped_us) / 1000.0, "ms");
  fail_unless_equals_int(server->connection_count(), 2);
  fail_unless(server->connection(0).closed);
  fail_unless_equals_int((int)reconnected.int64("replayed-items"), (int)history.size());
  check_replayed(*server, 1, history);
  fail_unless_equals_int(p.bus->count("openairealtime-session-ready"), 1);  // ready once; reconnected after
  fail_unless_equals_int((int)p.stat("reconnects"), 1);

  // Still a working session: a reply on the new connection plays.
  const size_t before = p.out->sample_count();
  server->start_response();
  expect_reply_plays(p, before, 440, 500);
  // And the caller's audio reaches the new connection.
  p.push(audio_test::make_tone(300, 300, -12.0));
  fail_unless(server->wait_for([&] { return server->connection(1).input_audio.size() >= 300 * 48; }, 3000));
  fail_if(p.bus->has_error(), "%s", p.bus->errors_text().c_str());
  fail_unless_equals_int(p.bus->count("openairealtime-error"), 0);
}
GST_END_TEST;

// (h) The server says the session expires in 6 s. With renew-margin=2 the session renews before that
// (between replies): a new connection, the history replayed, no session_expired error anywhere, and
// audio still flows.
GST_START_TEST(test_session_renewed_before_expiry)
{
  fake_realtime::Config cfg;
  cfg.session_lifetime_s = 6;
  cfg.reply_duration_ms = 500;
  cfg.reply_tone_hz = 440;
  auto server = start_server(cfg);
  Pipeline p({unique_session("renew"), server->url(), true, true, "renew-margin=2 silence-duration-ms=300"});
  p.play();
  auto ready = p.wait_ready();
  caller_turn(p, 1);
  expect_reply_plays(p, 0, 440, 500);
  auto history = bus_history(p);
  fail_unless(history.size() >= 2, "%s", p.bus->dump().c_str());

  auto renewing = p.expect("openairealtime-reconnecting", 7000);
  fail_unless_str_eq(renewing.str("reason").c_str(), "renew");
  const double at_s = (renewing.mono_us - ready.mono_us) / 1e6;
  measure("renewal_after_ready_s", at_s, "s (server lifetime 6 s)");
  fail_unless(at_s < 6.0, "renewed only %.2f s after ready", at_s);
  auto reconnected = p.expect("openairealtime-reconnected", 3000);
  measure("renewal_gap_ms", (reconnected.mono_us - renewing.mono_us) / 1000.0, "ms");
  fail_unless(server->connection_count() >= 2);
  check_replayed(*server, 1, history);
  // The old connection was closed by the client, before the server could expire it.
  fail_unless(server->wait_for([&] { return server->connection(0).closed; }, 1000));
  gst_test::sleep_ms(1500);  // past the first connection's 6 s
  auto errors = server->errors_sent();
  fail_unless(std::find(errors.begin(), errors.end(), "session_expired") == errors.end(),
              "the server had to expire a session");
  for (const auto &e : p.bus->named("openairealtime-error"))
    fail_if(e.str("code") == "session_expired", "session_expired reached the application");
  fail_if(p.bus->has_error(), "%s", p.bus->errors_text().c_str());

  const size_t before = p.out->sample_count();
  server->start_response();
  expect_reply_plays(p, before, 440, 500);
}
GST_END_TEST;

// If the server does expire a session (error session_expired, then close), the session is not
// failed: it reconnects, replays and goes on.
GST_START_TEST(test_server_expiry_is_recovered)
{
  fake_realtime::Config cfg;
  cfg.reply_duration_ms = 400;
  auto server = start_server(cfg);
  Pipeline p({unique_session("expire"), server->url(), false, true});
  p.play();
  p.wait_ready();
  server->start_response();
  expect_reply_plays(p, 0, 440, 400);
  server->expire_sessions();
  auto err = p.expect("openairealtime-error", 3000);
  fail_unless_str_eq(err.str("code").c_str(), "session_expired");
  fail_if(err.boolean("fatal"));
  p.expect("openairealtime-reconnected", 5000);
  fail_unless_equals_int(server->connection_count(), 2);
  check_replayed(*server, 1, bus_history(p));
  fail_if(p.bus->has_error(), "a non-fatal expiry failed the pipeline: %s", p.bus->errors_text().c_str());
  const size_t before = p.out->sample_count();
  server->start_response();
  expect_reply_plays(p, before, 440, 400);
}
GST_END_TEST;

// (f) Right after session.created the server sends a ~2.9 MB conversation.item.retrieved (libsoup
// closes the socket on frames over 128 KiB unless the client raised the limit). The socket stays
// open: no reconnect, and a reply plays.
GST_START_TEST(test_large_frame_does_not_close_socket)
{
  fake_realtime::Config cfg;
  cfg.send_large_frame_on_connect = true;
  cfg.reply_duration_ms = 600;
  cfg.reply_tone_hz = 500;
  auto server = start_server(cfg);
  Pipeline p({unique_session("large"), server->url(), false, true});
  p.play();
  p.wait_ready();
  gst_test::sleep_ms(300);
  server->start_response();
  expect_reply_plays(p, 0, 500, 600);
  fail_unless_equals_int(server->connection_count(), 1);
  fail_if(server->connection(0).closed, "the socket was closed");
  fail_unless_equals_int(p.bus->count("openairealtime-reconnecting"), 0);
  fail_unless_equals_int(p.bus->count("openairealtime-error"), 0);
  fail_unless_equals_int((int)p.stat("reconnects"), 0);
}
GST_END_TEST;

// max-queue-time: a reply that arrives much faster than it plays may run ahead of playback by at
// most that much; beyond it the session cancels the response and truncates the item where its
// buffer ends, so the model's idea of what was said equals what the caller hears: everything queued
// plays, nothing after the cut.
GST_START_TEST(test_playout_queue_limit_cancels_and_truncates)
{
  fake_realtime::Config cfg;
  cfg.reply_duration_ms = 6000;
  cfg.reply_tone_hz = 440;
  cfg.speed = 10.0;
  auto server = start_server(cfg);
  Pipeline p({unique_session("queue"), server->url(), false, true, "max-queue-time=1000"});
  p.play();
  p.wait_ready();
  server->start_response();
  auto done = p.expect("openairealtime-response-done", 3000);
  fail_unless_str_eq(done.str("status"), "cancelled");
  fail_unless(server->wait_for([&] { return !server->truncates().empty(); }, 2000), "no truncate");
  auto t = server->truncates()[0];
  fail_unless(t.accepted, "truncate at %lld ms of %lld ms rejected", (long long)t.audio_end_ms,
              (long long)t.item_audio_ms);
  fail_unless(t.audio_end_ms >= 1000 && t.audio_end_ms < 2500, "truncated at %lld ms", (long long)t.audio_end_ms);
  // Let the queued audio play out completely.
  fail_unless(p.out->wait_until(
                  [](const std::vector<int16_t> &s) {
                    auto segs = audio_test::find_segments(s, kRate, -50.0);
                    return !segs.empty() && s.size() - segs.back().end > audio_test::ms_to_samples(300);
                  },
                  5000),
              "%s", analyse(*p.out).describe().c_str());
  const double received = p.stat("output-ms-received"), played = p.stat("output-ms-played");
  const double dropped = p.stat("output-ms-dropped");
  p.stop();
  Playback pb = analyse(*p.out);
  fail_unless_equals_int(pb.segments.size(), 1);
  check_tone(pb, pb.segments[0], 440, (double)t.audio_end_ms, 20);
  fail_unless(std::fabs(audio_test::samples_to_ms(played_extent_samples(pb)) - t.audio_end_ms) <= 20,
              "played %.0f ms, truncated at %lld ms", audio_test::samples_to_ms(played_extent_samples(pb)),
              (long long)t.audio_end_ms);
  // Everything kept was played; what did not fit was counted as dropped; the model was told exactly
  // what was played.
  fail_unless(std::fabs(played + dropped - received) <= 2, "received %.0f, played %.0f, dropped %.0f ms", received,
              played, dropped);
  fail_unless(std::fabs(played - t.audio_end_ms) <= 1, "played %.0f ms, truncated at %lld ms", played,
              (long long)t.audio_end_ms);
  auto log = server->connection(0);
  fail_unless_equals_int(events_of_type(log, "response.cancel").size(), 1);
}
GST_END_TEST;

// Nothing of a session outlives it (CONTRACT.md §4: "Nothing of a call (threads, sockets, memory)
// outlives it"): sessions opened and closed one after another leave no file descriptors behind.
static int open_fds() {
  int n = 0;
  GDir *d = g_dir_open("/proc/self/fd", 0, nullptr);
  if (!d) return -1;
  while (g_dir_read_name(d)) n++;
  g_dir_close(d);
  return n;
}

static void one_session(fake_realtime::Server &server, int index) {
  Pipeline p({unique_session("fds"), server.url(), true, true});
  p.play();
  p.wait_ready();
  p.push(audio_test::make_tone(300, 100, -12.0));
  p.stop();
  fail_unless(server.wait_for([&] { return server.connection(index).closed; }, 2000), "session %d not closed", index);
}

GST_START_TEST(test_sequential_sessions_leak_no_descriptors)
{
  auto server = start_server();
  // Warm up: the hub thread, the SoupSession, GStreamer's own lazily created resources.
  for (int i = 0; i < 3; i++) one_session(*server, i);
  gst_test::sleep_ms(300);
  const int before = open_fds();
  for (int i = 3; i < 15; i++) one_session(*server, i);
  // libsoup finishes closing sockets asynchronously: give it a moment.
  gst_test::poll_until([&] { return open_fds() <= before; }, 3000, 20);
  const int after = open_fds();
  measure("fds_per_12_sessions", after - before, "descriptors");
  if (after > before) {
    // What they are, for the failure report.
    gchar *cmd = g_strdup_printf(
        "ls -l /proc/%d/fd | awk '{print $NF}' | sed 's/[0-9]*]$/]/' | sort | uniq -c; echo 'TCP sockets, hex "
        "local remote state (server port %04X):'; for i in $(ls -l /proc/%d/fd | grep -o 'socket:.[0-9]*' | grep -o "
        "'[0-9]*$'); do grep -h \" $i \" /proc/net/tcp /proc/net/tcp6 | awk '{print $2, $3, $4}'; done | sort | "
        "uniq -c | head -40; echo 'other sockets:'; for i in $(ls -l /proc/%d/fd | grep -o 'socket:.[0-9]*' | grep -o "
        "'[0-9]*$'); do for t in unix udp udp6 netlink raw packet; do grep -qw $i /proc/net/$t && echo $t; done; "
        "done | sort | uniq -c",
        getpid(), server->port(), getpid(), getpid());
    if (system(cmd) != 0) g_printerr("(could not list descriptors)\n");
    g_free(cmd);
  }
  fail_unless(after <= before, "descriptors grew from %d to %d over 12 sessions", before, after);
}
GST_END_TEST;

static Suite *realtime_resilience_suite(void) {
  register_elements();
  Suite *s = suite_create("realtime-resilience");
  TCase *tc = tcase_create("fake-server");
  tcase_set_timeout(tc, 60);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_dropped_connection_reconnects_and_replays);
  tcase_add_test(tc, test_session_renewed_before_expiry);
  tcase_add_test(tc, test_server_expiry_is_recovered);
  tcase_add_test(tc, test_large_frame_does_not_close_socket);
  tcase_add_test(tc, test_playout_queue_limit_cancels_and_truncates);
  tcase_add_test(tc, test_sequential_sessions_leak_no_descriptors);
  return s;
}

GST_CHECK_MAIN(realtime_resilience);
