// The answer path for WhatsApp offers against bookworm's real webrtcbin 1.22, loopback only:
// prepare_offer → add-transceiver (sendrecv, before set-remote-description, notes §1.4 method A) →
// set-remote-description → create-answer → set-local-description → gathering COMPLETE →
// local-description → finalize_answer. This documents the sequence the call code relies on and
// catches a webrtcbin (or Debian patch) that changes the answer under it.
//
// All waiting happens on the test thread with a deadline; webrtcbin's callbacks only signal.
#include <gst/check/gstcheck.h>
#include <gst/sdp/sdp.h>
#include <gst/webrtc/webrtc.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "check-strings.h"
#include "sdp.h"

namespace {

constexpr auto kWaitLimit = std::chrono::seconds(10);

std::string read_fixture(const char *name) {
  const gchar *dir = g_getenv("VOICEBRIDGE_FIXTURES");
  fail_unless(dir != nullptr, "VOICEBRIDGE_FIXTURES is not set (run through meson test)");
  gchar *path = g_build_filename(dir, "whatsapp", name, nullptr);
  gchar *contents = nullptr;
  gsize len = 0;
  GError *error = nullptr;
  gboolean ok = g_file_get_contents(path, &contents, &len, &error);
  fail_unless(ok, "cannot read %s: %s", path, error ? error->message : "?");
  std::string out(contents, len);
  g_free(contents);
  g_free(path);
  return out;
}

std::vector<std::string> lines_of(const std::string &sdp) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < sdp.size()) {
    size_t end = sdp.find("\r\n", pos);
    if (end == std::string::npos)
      end = sdp.size();
    out.push_back(sdp.substr(pos, end - pos));
    pos = end + 2;
  }
  return out;
}

std::vector<std::string> tokens_of(const std::string &line) {
  std::vector<std::string> out;
  gchar **parts = g_strsplit(line.c_str(), " ", -1);
  for (gchar **p = parts; *p != nullptr; p++)
    if (**p != '\0')
      out.push_back(*p);
  g_strfreev(parts);
  return out;
}

int count_lines(const std::string &sdp, const std::string &prefix) {
  int n = 0;
  for (const std::string &l : lines_of(sdp))
    if (l.compare(0, prefix.size(), prefix) == 0)
      n++;
  return n;
}

bool has_line(const std::string &sdp, const std::string &line) {
  for (const std::string &l : lines_of(sdp))
    if (l == line)
      return true;
  return false;
}

// The relay addresses of a real offer are unreachable from CI; point every remote candidate (and
// c=) at loopback, as the measurements in gstreamer-1.22-notes.md were taken.
std::string with_loopback_candidates(const std::string &sdp) {
  std::string out;
  for (const std::string &l : lines_of(sdp)) {
    if (l.compare(0, 12, "a=candidate:") == 0) {
      std::vector<std::string> t = tokens_of(l);
      fail_unless(t.size() >= 8, "odd candidate line %s", l.c_str());
      t[4] = "127.0.0.1";
      std::string joined;
      for (const std::string &s : t)
        joined += (joined.empty() ? "" : " ") + s;
      out += joined + "\r\n";
    } else if (l.compare(0, 2, "c=") == 0) {
      out += "c=IN IP4 127.0.0.1\r\n";
    } else {
      out += l + "\r\n";
    }
  }
  return out;
}

// Signalled from webrtcbin's thread, waited on from the test thread. Shared ownership, because a
// timed-out wait leaves webrtcbin holding a callback that may still fire.
struct Signal {
  std::mutex lock;
  std::condition_variable cond;
  unsigned generation = 0;

  void notify() {
    std::lock_guard<std::mutex> guard(lock);
    generation++;
    cond.notify_all();
  }
};
using SignalRef = std::shared_ptr<Signal>;

// Waits until done() holds, at most kWaitLimit. done() runs without the signal's lock held, so it may
// call into webrtcbin (which notifies while holding its own locks). Wake-ups are also timed, so a
// notification that raced ahead of the first check costs at most one slice.
bool wait_for(const SignalRef &signal, const std::function<bool()> &done) {
  const auto deadline = std::chrono::steady_clock::now() + kWaitLimit;
  for (;;) {
    if (done())
      return true;
    std::unique_lock<std::mutex> guard(signal->lock);
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline)
      return false;
    const unsigned seen = signal->generation;
    signal->cond.wait_until(guard, std::min(deadline, now + std::chrono::milliseconds(50)),
                            [&] { return signal->generation != seen; });
  }
}

void delete_signal_ref(gpointer data) {
  delete static_cast<SignalRef *>(data);
}

void on_promise_changed(GstPromise *, gpointer data) {
  (*static_cast<SignalRef *>(data))->notify();
}

// The promise callback only signals; the test thread reads the reply, so nothing blocks on
// webrtcbin's thread (gstreamer-1.22-notes.md §1.5).
struct PendingPromise {
  SignalRef signal = std::make_shared<Signal>();
  GstPromise *promise = nullptr;

  PendingPromise() {
    promise = gst_promise_new_with_change_func(on_promise_changed, new SignalRef(signal), delete_signal_ref);
  }
  ~PendingPromise() { gst_promise_unref(promise); }

  // Returns the reply (owned by the promise, may be NULL) or fails the test after kWaitLimit.
  const GstStructure *wait_reply(const char *what) {
    bool ok = wait_for(signal, [this] {
      std::lock_guard<std::mutex> guard(signal->lock);
      return signal->generation > 0;
    });
    if (!ok)
      gst_promise_interrupt(promise);
    fail_unless(ok, "%s: no promise reply within %d s", what, (int)kWaitLimit.count());
    // The promise has changed state, so this does not block.
    GstPromiseResult result = gst_promise_wait(promise);
    fail_unless_equals_int(result, GST_PROMISE_RESULT_REPLIED);
    const GstStructure *reply = gst_promise_get_reply(promise);
    if (reply != nullptr && gst_structure_has_field(reply, "error")) {
      GError *error = nullptr;
      gst_structure_get(reply, "error", G_TYPE_ERROR, &error, nullptr);
      fail("%s failed: %s", what, error ? error->message : "(no message)");
    }
    return reply;
  }
};

void on_gathering_state(GObject *, GParamSpec *, gpointer data) {
  (*static_cast<SignalRef *>(data))->notify();
}

void delete_signal_closure(gpointer data, GClosure *) {
  delete static_cast<SignalRef *>(data);
}

std::string description_text(GstWebRTCSessionDescription *desc) {
  gchar *text = gst_sdp_message_as_text(desc->sdp);
  std::string out(text);
  g_free(text);
  return out;
}

// `fixture` names the case in messages; `raw_offer` is the offer as it arrived.
void check_answer_for(const char *fixture, const std::string &raw_offer) {
  std::string offer = with_loopback_candidates(vb::prepare_offer(raw_offer));
  vb::OfferInfo info;
  std::string code, message;
  fail_unless(vb::inspect_offer(offer, &info, &code, &message), "%s: %s", code.c_str(), message.c_str());

  GstElement *pipeline = gst_pipeline_new("answerer");
  GstElement *webrtc = gst_element_factory_make("webrtcbin", "webrtc");
  fail_unless(webrtc != nullptr, "webrtcbin missing (gstreamer1.0-plugins-bad, gstreamer1.0-nice)");
  g_object_set(webrtc, "bundle-policy", GST_WEBRTC_BUNDLE_POLICY_MAX_BUNDLE, nullptr);
  gst_bin_add(GST_BIN(pipeline), webrtc);

  // Gather on loopback only, without ICE-TCP or the ~200 ms UPnP probe (notes §1.10), before any
  // negotiation starts the gathering.
  GstWebRTCICE *ice = nullptr;
  g_object_get(webrtc, "ice-agent", &ice, nullptr);
  fail_unless(ice != nullptr);
  gboolean added = FALSE;
  g_signal_emit_by_name(ice, "add-local-ip-address", "127.0.0.1", &added);
  fail_unless(added, "add-local-ip-address 127.0.0.1 failed");
  g_object_set(ice, "ice-tcp", FALSE, nullptr);
  GObject *agent = nullptr;
  g_object_get(ice, "agent", &agent, nullptr);
  fail_unless(agent != nullptr);
  g_object_set(agent, "upnp", FALSE, nullptr);
  g_object_unref(agent);
  gst_object_unref(ice);

  auto gathering = std::make_shared<Signal>();
  g_signal_connect_data(webrtc, "notify::ice-gathering-state", G_CALLBACK(on_gathering_state),
                        new SignalRef(gathering), delete_signal_closure, (GConnectFlags)0);

  fail_unless(gst_element_set_state(pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);

  // Method A of notes §1.4: 1.22 creates no transceiver at set-remote-description and answers
  // recvonly unless one with codec preferences exists; minimal caps, no sprop-* fields.
  GstCaps *caps = gst_caps_from_string(
      "application/x-rtp,media=audio,encoding-name=OPUS,clock-rate=48000,payload=111");
  GstWebRTCRTPTransceiver *transceiver = nullptr;
  g_signal_emit_by_name(webrtc, "add-transceiver", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_SENDRECV, caps,
                        &transceiver);
  gst_caps_unref(caps);
  fail_unless(transceiver != nullptr);
  gst_object_unref(transceiver);

  GstSDPMessage *offer_sdp = nullptr;
  fail_unless_equals_int(gst_sdp_message_new_from_text(offer.c_str(), &offer_sdp), GST_SDP_OK);
  GstWebRTCSessionDescription *offer_desc = gst_webrtc_session_description_new(GST_WEBRTC_SDP_TYPE_OFFER, offer_sdp);
  {
    PendingPromise p;
    g_signal_emit_by_name(webrtc, "set-remote-description", offer_desc, p.promise);
    p.wait_reply("set-remote-description");
  }
  gst_webrtc_session_description_free(offer_desc);

  GstWebRTCSessionDescription *answer = nullptr;
  {
    PendingPromise p;
    g_signal_emit_by_name(webrtc, "create-answer", nullptr, p.promise);
    const GstStructure *reply = p.wait_reply("create-answer");
    fail_unless(reply != nullptr && gst_structure_get(reply, "answer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &answer,
                                                      nullptr),
                "create-answer gave no answer");
  }
  std::string created = description_text(answer);
  GST_INFO("%s: answer from create-answer:\n%s", fixture, created.c_str());
  // The silent failure mode of notes §1.4: a recvonly answer.
  assert_str(vb::audio_direction(created).c_str(), "sendrecv");
  {
    PendingPromise p;
    g_signal_emit_by_name(webrtc, "set-local-description", answer, p.promise);
    p.wait_reply("set-local-description");
  }
  gst_webrtc_session_description_free(answer);

  // Non-trickle: 1.22 merges every candidate into local-description before it reports COMPLETE
  // (notes §1.3 step 8), so that is the moment to read it.
  bool complete = wait_for(gathering, [webrtc] {
    GstWebRTCICEGatheringState state = GST_WEBRTC_ICE_GATHERING_STATE_NEW;
    g_object_get(webrtc, "ice-gathering-state", &state, nullptr);
    return state == GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE;
  });
  fail_unless(complete, "ICE gathering did not complete within %d s", (int)kWaitLimit.count());

  GstWebRTCSessionDescription *local = nullptr;
  g_object_get(webrtc, "local-description", &local, nullptr);
  fail_unless(local != nullptr);
  std::string gathered = description_text(local);
  gst_webrtc_session_description_free(local);
  GST_INFO("%s: local-description after gathering:\n%s", fixture, gathered.c_str());

  vb::AnswerFixups fixups;
  fixups.telephone_event_pt = info.telephone_event_pt;
  fail_unless_equals_int(fixups.telephone_event_pt, 126);
  std::string final_answer = vb::finalize_answer(gathered, fixups);
  GST_INFO("%s: finalized answer:\n%s", fixture, final_answer.c_str());

  // What WhatsApp needs (whatsapp-calling.md §4.7).
  fail_unless(has_line(final_answer, "a=sendrecv"), "no a=sendrecv in\n%s", final_answer.c_str());
  fail_unless(has_line(final_answer, "a=setup:active"), "no a=setup:active in\n%s", final_answer.c_str());
  fail_unless_equals_int(count_lines(final_answer, "a=fingerprint:"), 1);
  fail_unless_equals_int(count_lines(final_answer, "a=fingerprint:sha-256 "), 1);
  fail_unless(has_line(final_answer, "a=rtpmap:126 telephone-event/8000"), "no telephone-event in\n%s",
              final_answer.c_str());
  fail_unless(has_line(final_answer, "a=mid:audio"), "no a=mid:audio in\n%s", final_answer.c_str());
  fail_unless(has_line(final_answer, "a=group:BUNDLE audio"), "no BUNDLE group in\n%s", final_answer.c_str());
  fail_unless_equals_int(count_lines(final_answer, "a=end-of-candidates"), 1);
  fail_unless(count_lines(final_answer, "a=ice-lite") == 0, "the answerer must be a full ICE agent");

  const int candidates = vb::count_candidates(final_answer);
  fail_unless(candidates >= 1, "no candidates in\n%s", final_answer.c_str());
  std::string first_port;
  for (const std::string &l : lines_of(final_answer)) {
    if (l.compare(0, 12, "a=candidate:") != 0)
      continue;
    std::vector<std::string> t = tokens_of(l);
    fail_unless(t.size() >= 8);
    // add-local-ip-address restricted gathering to loopback, and ice-tcp is off.
    assert_str(t[4].c_str(), "127.0.0.1");
    fail_unless(g_ascii_strcasecmp(t[2].c_str(), "udp") == 0, "unexpected transport in %s", l.c_str());
    if (first_port.empty())
      first_port = t[5];
  }

  // m=audio <first candidate's port> UDP/TLS/RTP/SAVPF 111 126, and c= names that candidate.
  GstSDPMessage *parsed = nullptr;
  fail_unless_equals_int(gst_sdp_message_new_from_text(final_answer.c_str(), &parsed), GST_SDP_OK);
  fail_unless_equals_int(gst_sdp_message_medias_len(parsed), 1);
  const GstSDPMedia *media = gst_sdp_message_get_media(parsed, 0);
  assert_str(gst_sdp_media_get_media(media), "audio");
  assert_str(gst_sdp_media_get_proto(media), "UDP/TLS/RTP/SAVPF");
  fail_unless_equals_int(gst_sdp_media_get_port(media), atoi(first_port.c_str()));
  fail_unless_equals_int(gst_sdp_media_formats_len(media), 2);
  assert_str(gst_sdp_media_get_format(media, 0), "111");
  assert_str(gst_sdp_media_get_format(media, 1), "126");
  const GstSDPConnection *conn = gst_sdp_media_get_connection(media, 0);
  fail_unless(conn != nullptr);
  assert_str(conn->address, "127.0.0.1");
  GstCaps *opus = gst_sdp_media_get_caps_from_media(media, 111);
  fail_unless(opus != nullptr, "PT 111 has no rtpmap");
  assert_str(gst_structure_get_string(gst_caps_get_structure(opus, 0), "encoding-name"), "OPUS");
  gst_caps_unref(opus);
  gst_sdp_message_free(parsed);

  // The answer still describes what webrtcbin negotiated: the finalize step only adds.
  vb::OfferInfo answer_info;
  fail_unless(vb::inspect_offer(final_answer, &answer_info, &code, &message), "%s", message.c_str());
  fail_unless_equals_int(answer_info.opus_pt, 111);
  fail_unless_equals_int(answer_info.telephone_event_pt, 126);
  assert_str(answer_info.setup.c_str(), "active");

  fail_unless_equals_int(gst_element_set_state(pipeline, GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
  gst_object_unref(pipeline);
}

}  // namespace

GST_START_TEST(test_answer_whatsapp_offer_1) {
  check_answer_for("offer-user-initiated-1.sdp", read_fixture("offer-user-initiated-1.sdp"));
}
GST_END_TEST;

GST_START_TEST(test_answer_whatsapp_offer_2) {
  check_answer_for("offer-user-initiated-2.sdp", read_fixture("offer-user-initiated-2.sdp"));
}
GST_END_TEST;

// Offer #1 without what 1.22's validator insists on (notes §1.2: no a=mid, no direction, a=setup
// only at session level) and without its final CRLF: prepare_offer must make webrtcbin accept it
// and answer exactly as for the original.
GST_START_TEST(test_answer_degraded_offer) {
  std::string degraded;
  for (const std::string &l : lines_of(read_fixture("offer-user-initiated-1.sdp"))) {
    if (l == "a=mid:audio" || l == "a=sendrecv" || l == "a=setup:actpass")
      continue;
    degraded += l + "\r\n";
    if (l == "a=ice-lite")
      degraded += "a=setup:actpass\r\n";
  }
  fail_unless(degraded.find("a=mid:") == std::string::npos && degraded.find("a=sendrecv") == std::string::npos);
  degraded.resize(degraded.size() - 2);
  check_answer_for("degraded offer #1", degraded);
}
GST_END_TEST;

static Suite *webrtc_answer_suite(void) {
  Suite *s = suite_create("webrtc-answer");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 60);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_answer_whatsapp_offer_1);
  tcase_add_test(tc, test_answer_whatsapp_offer_2);
  tcase_add_test(tc, test_answer_degraded_offer);
  return s;
}

GST_CHECK_MAIN(webrtc_answer)
