// Unit tests for app/sdp.cpp: inspect_offer and prepare_offer on the real WhatsApp offers in
// tests/fixtures/whatsapp (and mutations of them that exercise each fix-up), finalize_answer on an
// answer shaped like the one webrtcbin 1.22 produces (gstreamer-1.22-notes.md §1.3), and the two
// small helpers.
#include <gst/check/gstcheck.h>
#include <gst/sdp/sdp.h>

#include <string>
#include <vector>

#include "check-strings.h"
#include "sdp.h"

namespace {

const char *const kOffers[] = {"offer-user-initiated-1.sdp", "offer-user-initiated-2.sdp"};

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

void replace_all(std::string *s, const std::string &from, const std::string &to) {
  size_t pos = 0;
  while ((pos = s->find(from, pos)) != std::string::npos) {
    s->replace(pos, from.size(), to);
    pos += to.size();
  }
}

// Lines of a CRLF text; fails the test on a bare LF or CR, or a missing final CRLF, which is how
// every output of sdp.cpp is checked for its line ends.
std::vector<std::string> crlf_lines(const std::string &sdp) {
  fail_unless(sdp.size() >= 2 && sdp.compare(sdp.size() - 2, 2, "\r\n") == 0, "no final CRLF in\n%s", sdp.c_str());
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < sdp.size()) {
    size_t end = sdp.find("\r\n", pos);
    std::string line = sdp.substr(pos, end - pos);
    fail_unless(line.find_first_of("\r\n") == std::string::npos, "stray line end in %s", line.c_str());
    out.push_back(line);
    pos = end + 2;
  }
  return out;
}

int count_lines(const std::string &sdp, const std::string &prefix) {
  int n = 0;
  for (const std::string &l : crlf_lines(sdp))
    if (l.compare(0, prefix.size(), prefix) == 0)
      n++;
  return n;
}

bool has_line(const std::string &sdp, const std::string &line) {
  for (const std::string &l : crlf_lines(sdp))
    if (l == line)
      return true;
  return false;
}

int line_index(const std::vector<std::string> &lines, const std::string &line) {
  for (size_t i = 0; i < lines.size(); i++)
    if (lines[i] == line)
      return (int)i;
  return -1;
}

// Removes the lines equal to `line` (CRLF text in, CRLF text out).
std::string without_line(const std::string &sdp, const std::string &line) {
  std::string out;
  bool found = false;
  for (const std::string &l : crlf_lines(sdp)) {
    if (l == line)
      found = true;
    else
      out += l + "\r\n";
  }
  fail_unless(found, "fixture has no line %s", line.c_str());
  return out;
}

std::string with_line_after(const std::string &sdp, const std::string &anchor, const std::string &line) {
  std::string out;
  bool found = false;
  for (const std::string &l : crlf_lines(sdp)) {
    out += l + "\r\n";
    if (l == anchor) {
      out += line + "\r\n";
      found = true;
    }
  }
  fail_unless(found, "fixture has no line %s", anchor.c_str());
  return out;
}

std::string replace_line(const std::string &sdp, const std::string &from, const std::string &to) {
  std::string out;
  bool found = false;
  for (const std::string &l : crlf_lines(sdp)) {
    if (l == from) {
      out += to + "\r\n";
      found = true;
    } else {
      out += l + "\r\n";
    }
  }
  fail_unless(found, "fixture has no line %s", from.c_str());
  return out;
}

// gst_sdp_message_new_from_text is what the call code hands webrtcbin; the caller frees.
GstSDPMessage *parse_gst(const std::string &sdp) {
  GstSDPMessage *msg = nullptr;
  fail_unless_equals_int(gst_sdp_message_new_from_text(sdp.c_str(), &msg), GST_SDP_OK);
  fail_unless(msg != nullptr);
  return msg;
}

std::string media_attr(const GstSDPMessage *msg, guint media, const char *key, guint nth = 0) {
  const gchar *v = gst_sdp_media_get_attribute_val_n(gst_sdp_message_get_media(msg, media), key, nth);
  return v ? v : "<absent>";
}

bool media_has_flag(const GstSDPMessage *msg, guint media, const char *key) {
  const GstSDPMedia *m = gst_sdp_message_get_media(msg, media);
  for (guint i = 0; i < gst_sdp_media_attributes_len(m); i++)
    if (g_strcmp0(gst_sdp_media_get_attribute(m, i)->key, key) == 0)
      return true;
  return false;
}

void check_whatsapp_info(const vb::OfferInfo &info, const char *what) {
  fail_unless_equals_int(info.audio_mline, 0);
  fail_unless_equals_int(info.opus_pt, 111);
  fail_unless_equals_int(info.opus_channels, 2);
  fail_unless_equals_int(info.telephone_event_pt, 126);
  assert_str(info.mid.c_str(), "audio");
  fail_unless(info.ice_lite, "%s: a=ice-lite not seen", what);
  assert_str(info.setup.c_str(), "actpass");
  fail_unless_equals_int(info.max_playback_rate, 16000);
  fail_unless_equals_int(info.max_average_bitrate, 20000);
  fail_unless(info.use_inband_fec, "%s: useinbandfec=1 not seen", what);
  fail_unless_equals_int(info.ptime_ms, 20);
  fail_unless_equals_int(info.fingerprints.size(), 1);
  fail_unless(g_str_has_prefix(info.fingerprints[0].c_str(), "sha-256 "), "%s: %s", what,
              info.fingerprints[0].c_str());
  fail_unless_equals_int(info.fingerprints[0].size(), 8 + 32 * 3 - 1);  // "sha-256 " + 32 hex octets
}

vb::OfferInfo inspect_ok(const std::string &sdp) {
  vb::OfferInfo info;
  std::string code = "unset", message = "unset";
  fail_unless(vb::inspect_offer(sdp, &info, &code, &message), "inspect_offer failed: %s: %s", code.c_str(),
              message.c_str());
  assert_str(code.c_str(), "");
  return info;
}

void check_rejected(const std::string &sdp, const char *expected_code) {
  vb::OfferInfo info;
  info.opus_pt = 42;  // must not be touched on failure
  std::string code, message;
  fail_if(vb::inspect_offer(sdp, &info, &code, &message), "accepted:\n%s", sdp.c_str());
  assert_str(code.c_str(), expected_code);
  fail_unless(!message.empty(), "no human message for %s", expected_code);
  fail_unless_equals_int(info.opus_pt, 42);
}

// A minimal but complete offer (one m-section per entry of `media`), for the cases the WhatsApp
// fixtures cannot show.
std::string offer_with(const std::string &session_extra, const std::string &media) {
  return "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" + session_extra + media;
}

const char kFingerprint256[] =
    "a=fingerprint:sha-256 "
    "E8:DB:4F:7F:B5:F8:27:5D:A5:A3:75:68:16:4C:8D:E0:FE:A9:CC:CD:01:54:37:E4:DB:AB:07:D5:28:DC:24:8D";
const char kFingerprint512[] =
    "a=fingerprint:sha-512 "
    "0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9:0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9:"
    "0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9:0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9";

// What webrtcbin 1.22 answers to WhatsApp offer #1 once gathering completes (captured with
// test-webrtc-answer, then given a linked send pad's a=ssrc lines as in notes §1.3, a second host
// candidate and a sha-512 fingerprint as other stacks emit): port 9, c= 0.0.0.0, no telephone-event,
// no end-of-candidates.
std::string webrtcbin_answer() {
  return std::string("v=0\r\n"
                     "o=- 1760681506762 2 IN IP4 0.0.0.0\r\n"
                     "s=-\r\n"
                     "t=0 0\r\n"
                     "a=group:BUNDLE audio\r\n"
                     "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
                     "c=IN IP4 0.0.0.0\r\n"
                     "a=ice-ufrag:x3qCLum6/mRLyMp+nxB4fxQ2459GWMfN\r\n"
                     "a=ice-pwd:IlBM7NamrK0VvRzG5mMgjWR1Gb/9FtAJ\r\n"
                     "a=mid:audio\r\n"
                     "a=rtcp-mux\r\n"
                     "a=setup:active\r\n"
                     "a=rtpmap:111 OPUS/48000/2\r\n"
                     "a=rtcp-fb:111 transport-cc\r\n"
                     "a=fmtp:111 maxaveragebitrate=20000;maxplaybackrate=16000;minptime=20;useinbandfec=1\r\n"
                     "a=ssrc:3484138519 msid:user1409389541@host-5f3cd2ce webrtctransceiver0\r\n"
                     "a=ssrc:3484138519 cname:user1409389541@host-5f3cd2ce\r\n"
                     "a=sendrecv\r\n") +
         kFingerprint256 + "\r\n" + kFingerprint512 +
         "\r\n"
         "a=candidate:1 1 UDP 2015364095 127.0.0.1 47992 typ host\r\n"
         "a=candidate:2 1 UDP 2015363583 10.1.2.3 51234 typ host\r\n";
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// inspect_offer
// ---------------------------------------------------------------------------------------------

GST_START_TEST(test_inspect_whatsapp_offers) {
  for (const char *name : kOffers) {
    std::string offer = read_fixture(name);
    check_whatsapp_info(inspect_ok(offer), name);
    // The fix-ups must not lose anything inspect_offer reads.
    check_whatsapp_info(inspect_ok(vb::prepare_offer(offer)), name);
  }
  // The fixtures differ in their fingerprint; it is copied, not invented.
  vb::OfferInfo one = inspect_ok(read_fixture(kOffers[0]));
  assert_str(one.fingerprints[0].c_str(),
             "sha-256 A2:EC:E2:C4:E4:FE:75:63:39:0D:77:45:DF:70:64:BC:F9:96:73:DE:F4:92:E5:78:D0:5B:"
             "1F:8F:E7:46:D3:C6");
}
GST_END_TEST;

GST_START_TEST(test_inspect_defaults_and_variants) {
  // Session-level setup and fingerprint, no fmtp, no ptime, no telephone-event, mono rtpmap in
  // upper case, a second audio m-line that must not be picked.
  std::string offer = offer_with("a=setup:passive\r\n" + std::string(kFingerprint256) + "\r\n" + kFingerprint512 + "\r\n",
                                 "m=audio 5000 RTP/AVP 0\r\n"
                                 "a=rtpmap:0 PCMU/8000\r\n"
                                 "a=rtpmap:101 telephone-event/8000\r\n"
                                 "m=audio 5002 UDP/TLS/RTP/SAVPF 96 97 98\r\n"
                                 "a=mid:a1\r\n"
                                 "a=rtpmap:96 OPUS/48000\r\n"
                                 "a=rtpmap:97 telephone-event/48000\r\n"
                                 "a=rtpmap:98 telephone-event/8000\r\n"
                                 "a=fmtp:96 useinbandfec=0\r\n"
                                 "m=audio 5004 UDP/TLS/RTP/SAVPF 111\r\n"
                                 "a=rtpmap:111 opus/48000/2\r\n");
  vb::OfferInfo info = inspect_ok(offer);
  fail_unless_equals_int(info.audio_mline, 1);
  fail_unless_equals_int(info.opus_pt, 96);
  fail_unless_equals_int(info.opus_channels, 1);
  // The 8000 Hz one of the Opus m-line: not the 48 kHz one, not the PCMU m-line's.
  fail_unless_equals_int(info.telephone_event_pt, 98);
  assert_str(info.mid.c_str(), "a1");
  fail_if(info.ice_lite);
  assert_str(info.setup.c_str(), "passive");
  fail_unless_equals_int(info.max_playback_rate, 48000);
  fail_unless_equals_int(info.max_average_bitrate, 0);
  fail_if(info.use_inband_fec);
  fail_unless_equals_int(info.ptime_ms, 20);
  fail_unless_equals_int(info.fingerprints.size(), 2);
  fail_unless(g_str_has_prefix(info.fingerprints[1].c_str(), "sha-512 "));

  // An rtpmap for a PT missing from the m= line is not an offer of that codec.
  check_rejected(offer_with("", "m=audio 5000 RTP/AVP 0\r\na=rtpmap:111 opus/48000/2\r\n"), "no_audio");

  // a=ptime 40 and media-level values override.
  vb::OfferInfo p = inspect_ok(offer_with("a=ptime:60\r\n", "m=audio 1 RTP/AVP 111\r\na=rtpmap:111 Opus/48000/2\r\n"
                                                            "a=ptime:40\r\na=setup:active\r\n"));
  fail_unless_equals_int(p.ptime_ms, 40);
  assert_str(p.setup.c_str(), "active");
  fail_unless_equals_int(p.telephone_event_pt, -1);
  fail_unless(p.mid.empty());
}
GST_END_TEST;

GST_START_TEST(test_inspect_rejects_garbage) {
  const char *const invalid[] = {
      "",
      "garbage",
      "hello\r\nworld\r\n",
      "{\"sdp\": \"nope\"}",
      "o=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nm=audio 9 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\n",  // no v=
      "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n",                                         // no m=
  };
  for (const char *text : invalid)
    check_rejected(text, "invalid_sdp");
  // Binary noise with NUL bytes cut short by c_str(), and without.
  std::string noise("\x01\xff\xfe\x00v=0\r\n", 10);
  check_rejected(noise, "invalid_sdp");
  // Output pointers are optional.
  fail_if(vb::inspect_offer("garbage", nullptr, nullptr, nullptr));
  fail_unless(vb::inspect_offer(read_fixture(kOffers[0]), nullptr, nullptr, nullptr));
}
GST_END_TEST;

GST_START_TEST(test_inspect_no_audio) {
  std::string video_only = offer_with("", "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na=rtpmap:96 VP8/90000\r\n");
  check_rejected(video_only, "no_audio");
  std::string pcmu_only = offer_with("", "m=audio 9 RTP/AVP 0 126\r\na=rtpmap:0 PCMU/8000\r\n"
                                         "a=rtpmap:126 telephone-event/8000\r\n");
  check_rejected(pcmu_only, "no_audio");
  std::string code, message;
  fail_if(vb::inspect_offer(pcmu_only, nullptr, &code, &message));
  fail_unless(message.find("PCMU") != std::string::npos, "message does not name the offered codec: %s",
              message.c_str());
  // The WhatsApp offer with Opus replaced by PCMA (what a number with additional_codecs might send).
  std::string pcma = read_fixture(kOffers[0]);
  replace_all(&pcma, "a=rtpmap:111 opus/48000/2", "a=rtpmap:111 PCMA/8000");
  check_rejected(pcma, "no_audio");
}
GST_END_TEST;

// ---------------------------------------------------------------------------------------------
// prepare_offer
// ---------------------------------------------------------------------------------------------

GST_START_TEST(test_prepare_whatsapp_offer_changes_only_fmtp) {
  for (const char *name : kOffers) {
    std::string offer = read_fixture(name);
    std::string prepared = vb::prepare_offer(offer);
    std::vector<std::string> in = crlf_lines(offer), out = crlf_lines(prepared);
    fail_unless_equals_int(out.size(), in.size());
    for (size_t i = 0; i < in.size(); i++) {
      if (g_str_has_prefix(in[i].c_str(), "a=fmtp:111 ")) {
        assert_str(out[i].c_str(),
                   "a=fmtp:111 maxaveragebitrate=20000;maxplaybackrate=16000;minptime=20;useinbandfec=1");
      } else {
        assert_str(out[i].c_str(), in[i].c_str());  // byte-for-byte, ice-pwd '=' '+' '/' included
      }
    }
    // Idempotent: preparing twice changes nothing more.
    assert_str(vb::prepare_offer(prepared).c_str(), prepared.c_str());
    // And the parser webrtcbin uses still sees the password intact.
    GstSDPMessage *msg = parse_gst(prepared);
    std::string pwd = media_attr(msg, 0, "ice-pwd");
    fail_unless(g_str_has_suffix(pwd.c_str(), "=="), "ice-pwd mangled: %s", pwd.c_str());
    gst_sdp_message_free(msg);
  }
}
GST_END_TEST;

GST_START_TEST(test_prepare_normalises_line_ends) {
  for (const char *name : kOffers) {
    std::string offer = read_fixture(name);
    std::string expected = vb::prepare_offer(offer);

    std::string no_final_crlf = offer.substr(0, offer.size() - 2);
    assert_str(vb::prepare_offer(no_final_crlf).c_str(), expected.c_str());

    std::string lf = offer;
    replace_all(&lf, "\r\n", "\n");
    assert_str(vb::prepare_offer(lf).c_str(), expected.c_str());

    // Double JSON encoding leaves the escapes as text: one long line with literal \r\n.
    std::string escaped = offer;
    replace_all(&escaped, "\r\n", "\\r\\n");
    fail_unless(escaped.find('\n') == std::string::npos);
    assert_str(vb::prepare_offer(escaped).c_str(), expected.c_str());
    // Some encoders also escape '/', which the protocol and WhatsApp's ice-pwd are full of.
    std::string escaped_slashes = escaped;
    replace_all(&escaped_slashes, "/", "\\/");
    fail_unless(escaped_slashes.find("UDP\\/TLS\\/RTP\\/SAVPF") != std::string::npos);
    assert_str(vb::prepare_offer(escaped_slashes), expected);
    std::string escaped_lf = lf;
    replace_all(&escaped_lf, "\n", "\\n");
    assert_str(vb::prepare_offer(escaped_lf).c_str(), expected.c_str());
    // Blank lines (a trailing one from string concatenation, a stray one in the middle) and a
    // UTF-8 byte order mark are not SDP lines.
    std::string blanks = "\xEF\xBB\xBF" + offer + "\r\n";
    replace_all(&blanks, "a=ice-lite\r\n", "a=ice-lite\r\n\r\n");
    assert_str(vb::prepare_offer(blanks), expected);
    check_whatsapp_info(inspect_ok(escaped), name);
    check_whatsapp_info(inspect_ok(no_final_crlf), name);
  }

  // The webhook's JSON text itself: the sdp string as it appears between the quotes, escapes and all.
  std::string json = read_fixture("webhook-connect-user-initiated.json");
  const std::string key = "\"sdp\": \"";
  size_t start = json.find(key);
  fail_unless(start != std::string::npos);
  start += key.size();
  size_t end = json.find('"', start);
  std::string raw = json.substr(start, end - start);
  fail_unless(raw.find("\\r\\n") != std::string::npos);
  assert_str(vb::prepare_offer(raw).c_str(), vb::prepare_offer(read_fixture(kOffers[0])).c_str());
}
GST_END_TEST;

GST_START_TEST(test_prepare_adds_direction_mid_setup) {
  std::string offer = read_fixture(kOffers[0]);
  // What 1.22's validator rejects (notes §1.2): no direction, no mid, setup and fingerprint only at
  // session level.
  std::string broken = without_line(offer, "a=sendrecv");
  broken = without_line(broken, "a=mid:audio");
  broken = without_line(broken, "a=setup:actpass");
  const std::string fingerprint =
      "a=fingerprint:sha-256 A2:EC:E2:C4:E4:FE:75:63:39:0D:77:45:DF:70:64:BC:F9:96:73:DE:F4:92:E5:78:D0:5B:1F:8F:E7:"
      "46:D3:C6";
  broken = without_line(broken, fingerprint);
  broken = with_line_after(broken, "a=ice-lite", "a=setup:actpass");
  broken = with_line_after(broken, "a=ice-lite", fingerprint);

  std::string fixed = vb::prepare_offer(broken);
  GstSDPMessage *msg = parse_gst(fixed);
  fail_unless_equals_int(gst_sdp_message_medias_len(msg), 1);
  fail_unless(media_has_flag(msg, 0, "sendrecv"), "no direction added:\n%s", fixed.c_str());
  // The BUNDLE group names the mid the offerer meant.
  assert_str(media_attr(msg, 0, "mid").c_str(), "audio");
  assert_str(gst_sdp_message_get_attribute_val(msg, "group"), "BUNDLE audio");
  assert_str(media_attr(msg, 0, "setup").c_str(), "actpass");
  assert_str(media_attr(msg, 0, "fingerprint").c_str(), fingerprint.c_str() + 14);
  gst_sdp_message_free(msg);
  // Session-level lines stay where they were.
  fail_unless(has_line(fixed, "a=setup:actpass"));
  fail_unless_equals_int(count_lines(fixed, "a=setup:"), 2);
  fail_unless_equals_int(count_lines(fixed, "a=sendrecv"), 1);
  check_whatsapp_info(inspect_ok(fixed), "fixed offer");
  assert_str(vb::prepare_offer(fixed).c_str(), fixed.c_str());

  // A session-level direction is the offerer's intent for sections without their own.
  std::string recvonly = vb::prepare_offer(with_line_after(without_line(offer, "a=sendrecv"), "a=ice-lite", "a=recvonly"));
  msg = parse_gst(recvonly);
  fail_unless(media_has_flag(msg, 0, "recvonly"));
  fail_if(media_has_flag(msg, 0, "sendrecv"));
  gst_sdp_message_free(msg);

  // A media-level direction other than sendrecv is left alone.
  std::string sendonly = vb::prepare_offer(replace_line(offer, "a=sendrecv", "a=sendonly"));
  fail_unless_equals_int(count_lines(sendonly, "a=sendrecv"), 0);
  fail_unless_equals_int(count_lines(sendonly, "a=sendonly"), 1);
}
GST_END_TEST;

GST_START_TEST(test_prepare_invents_unique_mids) {
  // No BUNDLE group, no mids: index mids, and no group invented.
  std::string plain = vb::prepare_offer(offer_with("", "m=audio 9 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\n"));
  GstSDPMessage *msg = parse_gst(plain);
  assert_str(media_attr(msg, 0, "mid").c_str(), "0");
  fail_unless(gst_sdp_message_get_attribute_val(msg, "group") == nullptr);
  gst_sdp_message_free(msg);

  // A video section already uses "0"; the audio one lacks a mid and the group has no spare token:
  // the audio mid must not collide, and the group must list it.
  std::string mixed = vb::prepare_offer(offer_with("a=group:BUNDLE 0\r\n",
                                                   "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na=sendrecv\r\n"
                                                   "a=rtpmap:96 VP8/90000\r\n"
                                                   "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=sendrecv\r\n"
                                                   "a=rtpmap:111 opus/48000/2\r\n"));
  msg = parse_gst(mixed);
  assert_str(media_attr(msg, 0, "mid").c_str(), "0");
  assert_str(media_attr(msg, 1, "mid").c_str(), "1");
  assert_str(gst_sdp_message_get_attribute_val(msg, "group"), "BUNDLE 0 1");
  gst_sdp_message_free(msg);

  // A group naming a mid no section has is repaired to name the existing ones.
  std::string dangling = vb::prepare_offer(offer_with("a=group:BUNDLE 0 1 2\r\n",
                                                      "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:1\r\na=sendrecv\r\n"
                                                      "a=rtpmap:111 opus/48000/2\r\n"
                                                      "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=sendrecv\r\n"
                                                      "a=rtpmap:111 opus/48000/2\r\n"));
  msg = parse_gst(dangling);
  assert_str(media_attr(msg, 0, "mid").c_str(), "1");
  assert_str(media_attr(msg, 1, "mid").c_str(), "0");
  assert_str(gst_sdp_message_get_attribute_val(msg, "group"), "BUNDLE 0 1");
  gst_sdp_message_free(msg);
}
GST_END_TEST;

GST_START_TEST(test_prepare_strips_sprop_only) {
  std::string offer = offer_with("", "m=audio 9 UDP/TLS/RTP/SAVPF 111 109 96\r\na=mid:0\r\na=sendrecv\r\n"
                                     "a=rtpmap:111 opus/48000/2\r\n"
                                     "a=fmtp:111 sprop-stereo=1; minptime=10;SPROP-MAXCAPTURERATE=16000;useinbandfec=1\r\n"
                                     "a=rtpmap:109 OPUS/48000/2\r\n"
                                     "a=fmtp:109 sprop-stereo=0;sprop-maxcapturerate=48000\r\n"
                                     "a=rtpmap:96 L16/16000\r\n"
                                     "a=fmtp:96 sprop-whatever=1;channel-order=x\r\n");
  std::string prepared = vb::prepare_offer(offer);
  fail_unless(has_line(prepared, "a=fmtp:111 minptime=10;useinbandfec=1"), "got\n%s", prepared.c_str());
  // An fmtp with nothing left is dropped rather than left empty.
  fail_unless_equals_int(count_lines(prepared, "a=fmtp:109"), 0);
  // Not Opus: not ours to touch.
  fail_unless(has_line(prepared, "a=fmtp:96 sprop-whatever=1;channel-order=x"));
  fail_unless_equals_int(count_lines(prepared, "a=rtpmap:"), 3);
  // The parameters webrtcbin reads survive.
  GstSDPMessage *msg = parse_gst(prepared);
  GstCaps *caps = gst_sdp_media_get_caps_from_media(gst_sdp_message_get_media(msg, 0), 111);
  fail_unless(caps != nullptr);
  const GstStructure *s = gst_caps_get_structure(caps, 0);
  assert_str(gst_structure_get_string(s, "useinbandfec"), "1");
  assert_str(gst_structure_get_string(s, "minptime"), "10");
  fail_if(gst_structure_has_field(s, "sprop-stereo"));
  fail_if(gst_structure_has_field(s, "sprop-maxcapturerate"));
  gst_caps_unref(caps);
  gst_sdp_message_free(msg);
}
GST_END_TEST;

// ---------------------------------------------------------------------------------------------
// finalize_answer
// ---------------------------------------------------------------------------------------------

GST_START_TEST(test_finalize_webrtcbin_answer) {
  vb::AnswerFixups fixups;
  fixups.telephone_event_pt = 126;
  fixups.public_ip = "203.0.113.7";
  std::string answer = webrtcbin_answer();
  std::string out = vb::finalize_answer(answer, fixups);
  std::vector<std::string> lines = crlf_lines(out);

  // telephone-event: on the m= line and as an rtpmap, once.
  fail_unless(has_line(out, "m=audio 47992 UDP/TLS/RTP/SAVPF 111 126"), "got\n%s", out.c_str());
  fail_unless_equals_int(count_lines(out, "a=rtpmap:126 telephone-event/8000"), 1);
  // Host candidates carry the public address, ports kept; c= and m= name the first one.
  fail_unless(has_line(out, "a=candidate:1 1 UDP 2015364095 203.0.113.7 47992 typ host"));
  fail_unless(has_line(out, "a=candidate:2 1 UDP 2015363583 203.0.113.7 51234 typ host"));
  fail_unless(out.find("127.0.0.1") == std::string::npos && out.find("10.1.2.3") == std::string::npos);
  fail_unless(has_line(out, "c=IN IP4 203.0.113.7"));
  fail_unless_equals_int(count_lines(out, "c="), 1);
  // end-of-candidates right after the last candidate.
  int eoc = line_index(lines, "a=end-of-candidates");
  fail_unless(eoc > 0);
  assert_str(lines[eoc - 1].c_str(), "a=candidate:2 1 UDP 2015363583 203.0.113.7 51234 typ host");
  // Only the sha-256 fingerprint.
  fail_unless(has_line(out, kFingerprint256));
  fail_unless_equals_int(count_lines(out, "a=fingerprint:"), 1);
  // Every other line byte-for-byte, in order.
  std::vector<std::string> kept;
  for (const std::string &l : crlf_lines(answer))
    if (!g_str_has_prefix(l.c_str(), "m=") && !g_str_has_prefix(l.c_str(), "c=") &&
        !g_str_has_prefix(l.c_str(), "a=candidate:") && l != kFingerprint512)
      kept.push_back(l);
  size_t k = 0;
  for (const std::string &l : lines)
    if (k < kept.size() && l == kept[k])
      k++;
  fail_unless_equals_int(k, kept.size());
  fail_unless_equals_int(lines.size(), crlf_lines(answer).size() + 1 /* rtpmap */ + 1 /* eoc */ - 1 /* sha-512 */);

  // Idempotent: a second pass (e.g. pre_accept then accept) adds nothing.
  assert_str(vb::finalize_answer(out, fixups).c_str(), out.c_str());
  fail_unless_equals_int(vb::count_candidates(out), 2);

  // Still an SDP webrtcbin's parser reads the same way.
  GstSDPMessage *msg = parse_gst(out);
  const GstSDPMedia *media = gst_sdp_message_get_media(msg, 0);
  fail_unless_equals_int(gst_sdp_media_get_port(media), 47992);
  assert_str(gst_sdp_media_get_connection(media, 0)->address, "203.0.113.7");
  GstCaps *te = gst_sdp_media_get_caps_from_media(media, 126);
  fail_unless(te != nullptr);
  assert_str(gst_structure_get_string(gst_caps_get_structure(te, 0), "encoding-name"), "TELEPHONE-EVENT");
  gst_caps_unref(te);
  gst_sdp_message_free(msg);
}
GST_END_TEST;

GST_START_TEST(test_finalize_without_public_ip) {
  vb::AnswerFixups fixups;  // defaults: sha-256 only, default candidate, end-of-candidates
  std::string out = vb::finalize_answer(webrtcbin_answer(), fixups);
  fail_unless(has_line(out, "m=audio 47992 UDP/TLS/RTP/SAVPF 111"), "got\n%s", out.c_str());
  fail_unless(has_line(out, "c=IN IP4 127.0.0.1"));
  fail_unless(has_line(out, "a=candidate:1 1 UDP 2015364095 127.0.0.1 47992 typ host"));
  fail_unless(has_line(out, "a=candidate:2 1 UDP 2015363583 10.1.2.3 51234 typ host"));
  fail_unless_equals_int(count_lines(out, "a=rtpmap:"), 1);
  fail_unless_equals_int(count_lines(out, "a=end-of-candidates"), 1);

  // Everything off: only the line ends may change.
  vb::AnswerFixups none;
  none.sha256_only = false;
  none.default_candidate = false;
  none.end_of_candidates = false;
  std::string lf = webrtcbin_answer();
  replace_all(&lf, "\r\n", "\n");
  assert_str(vb::finalize_answer(lf, none).c_str(), webrtcbin_answer().c_str());
}
GST_END_TEST;

GST_START_TEST(test_finalize_candidate_kinds) {
  // IPv6 first, then a TCP candidate, then the IPv4 UDP host, then srflx: the default candidate is the
  // first IPv4 UDP one (a TCP port cannot carry RTP); only host candidates of the public address's
  // family are rewritten.
  std::string answer = "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
                       "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
                       "c=IN IP4 0.0.0.0\r\n"
                       "a=rtpmap:111 OPUS/48000/2\r\n"
                       "a=candidate:1 1 UDP 2015363327 fd00::5 40001 typ host\r\n"
                       "a=candidate:2 1 TCP 1010828031 10.0.0.5 9 typ host tcptype active\r\n"
                       "a=candidate:3 1 UDP 2015363583 10.0.0.5 40003 typ host\r\n"
                       "a=candidate:4 1 UDP 1677732095 198.51.100.9 40002 typ srflx raddr 10.0.0.5 rport 40003\r\n"
                       "a=sendrecv\r\n";
  vb::AnswerFixups fixups;
  fixups.public_ip = "203.0.113.7";
  fixups.telephone_event_pt = 126;
  std::string out = vb::finalize_answer(answer, fixups);
  fail_unless(has_line(out, "a=candidate:1 1 UDP 2015363327 fd00::5 40001 typ host"), "got\n%s", out.c_str());
  fail_unless(has_line(out, "a=candidate:2 1 TCP 1010828031 203.0.113.7 9 typ host tcptype active"));
  fail_unless(has_line(out, "a=candidate:3 1 UDP 2015363583 203.0.113.7 40003 typ host"));
  fail_unless(has_line(out, "a=candidate:4 1 UDP 1677732095 198.51.100.9 40002 typ srflx raddr 10.0.0.5 rport 40003"));
  fail_unless(has_line(out, "m=audio 40003 UDP/TLS/RTP/SAVPF 111 126"), "got\n%s", out.c_str());
  fail_unless(has_line(out, "c=IN IP4 203.0.113.7"));
  // end-of-candidates follows the last candidate line, whatever its type.
  std::vector<std::string> lines = crlf_lines(out);
  int eoc = line_index(lines, "a=end-of-candidates");
  fail_unless(eoc > 0 && g_str_has_prefix(lines[eoc - 1].c_str(), "a=candidate:4 "));

  // An IPv6 public address rewrites only the IPv6 host candidate.
  fixups.public_ip = "2001:db8::7";
  out = vb::finalize_answer(answer, fixups);
  fail_unless(has_line(out, "a=candidate:1 1 UDP 2015363327 2001:db8::7 40001 typ host"), "got\n%s", out.c_str());
  fail_unless(has_line(out, "a=candidate:3 1 UDP 2015363583 10.0.0.5 40003 typ host"));
  fail_unless(has_line(out, "c=IN IP4 10.0.0.5"));

  // A srflx candidate listed first is the default: the first IPv4 candidate, whatever its type.
  std::string srflx_first = "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
                            "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\n"
                            "a=candidate:4 1 UDP 1677732095 198.51.100.9 40002 typ srflx raddr 10.0.0.5 rport 40003\r\n"
                            "a=candidate:3 1 UDP 2015363583 10.0.0.5 40003 typ host\r\n";
  out = vb::finalize_answer(srflx_first, vb::AnswerFixups());
  fail_unless(has_line(out, "m=audio 40002 UDP/TLS/RTP/SAVPF 111"), "got\n%s", out.c_str());
  fail_unless(has_line(out, "c=IN IP4 198.51.100.9"));

  // No IPv4 candidate at all: c= and m= stay as webrtcbin wrote them.
  std::string v6_only = "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
                        "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\n"
                        "a=candidate:1 1 UDP 2015363327 fd00::5 40001 typ host\r\n";
  out = vb::finalize_answer(v6_only, vb::AnswerFixups());
  fail_unless(has_line(out, "m=audio 9 UDP/TLS/RTP/SAVPF 111"));
  fail_unless(has_line(out, "c=IN IP4 0.0.0.0"));
  fail_unless_equals_int(count_lines(out, "a=end-of-candidates"), 1);
}
GST_END_TEST;

GST_START_TEST(test_finalize_edge_cases) {
  // telephone-event already negotiated: nothing doubled.
  std::string with_te = vb::finalize_answer(read_fixture("answer-sample-meta-docs.sdp"), [] {
    vb::AnswerFixups f;
    f.telephone_event_pt = 126;
    return f;
  }());
  fail_unless(has_line(with_te, "m=audio 9 UDP/TLS/RTP/SAVPF 111 126"), "got\n%s", with_te.c_str());
  fail_unless_equals_int(count_lines(with_te, "a=rtpmap:126 "), 1);
  // No candidates: nothing to default to, but end-of-candidates still says gathering is over.
  fail_unless_equals_int(count_lines(with_te, "a=end-of-candidates"), 1);
  fail_unless(has_line(with_te, "c=IN IP4 0.0.0.0"));

  // A PT the answer uses for another codec is not remapped to telephone-event.
  std::string clash = "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
                      "m=audio 9 UDP/TLS/RTP/SAVPF 111 126\r\na=rtpmap:111 OPUS/48000/2\r\na=rtpmap:126 PCMU/8000\r\n";
  vb::AnswerFixups f;
  f.telephone_event_pt = 126;
  std::string out = vb::finalize_answer(clash, f);
  fail_unless_equals_int(count_lines(out, "a=rtpmap:126 "), 1);
  fail_unless(has_line(out, "a=rtpmap:126 PCMU/8000"));
  fail_unless(has_line(out, "m=audio 9 UDP/TLS/RTP/SAVPF 111 126"));
  // Nor is the PT put on the m= line when a stale rtpmap claims it for something else.
  std::string stale = clash;
  replace_all(&stale, "SAVPF 111 126", "SAVPF 111");
  out = vb::finalize_answer(stale, f);
  fail_unless(has_line(out, "m=audio 9 UDP/TLS/RTP/SAVPF 111"), "got\n%s", out.c_str());

  // Upper-case algorithm names are sha-256 too (aiortc writes SHA-256, whatsapp-calling.md §4.5);
  // without sha256_only the sha-512 line stays.
  std::string upper = webrtcbin_answer();
  replace_all(&upper, "a=fingerprint:sha-256", "a=fingerprint:SHA-256");
  out = vb::finalize_answer(upper, vb::AnswerFixups());
  fail_unless_equals_int(count_lines(out, "a=fingerprint:SHA-256 "), 1);
  fail_unless_equals_int(count_lines(out, "a=fingerprint:"), 1);
  f = vb::AnswerFixups();
  f.sha256_only = false;
  fail_unless_equals_int(count_lines(vb::finalize_answer(upper, f), "a=fingerprint:"), 2);
  // Never strip the last fingerprint: an answer without one is rejected outright.
  std::string only512 = webrtcbin_answer();
  replace_all(&only512, std::string(kFingerprint256) + "\r\n", "");
  fail_unless_equals_int(count_lines(vb::finalize_answer(only512, vb::AnswerFixups()), "a=fingerprint:sha-512 "), 1);

  // A public_ip that is not an address is not written into the SDP.
  f = vb::AnswerFixups();
  f.public_ip = "bridge.example.com";
  out = vb::finalize_answer(webrtcbin_answer(), f);
  fail_unless(has_line(out, "a=candidate:1 1 UDP 2015364095 127.0.0.1 47992 typ host"));
  fail_unless(out.find("example.com") == std::string::npos);
}
GST_END_TEST;

// ---------------------------------------------------------------------------------------------
// audio_direction, count_candidates
// ---------------------------------------------------------------------------------------------

GST_START_TEST(test_audio_direction) {
  assert_str(vb::audio_direction(read_fixture(kOffers[0])).c_str(), "sendrecv");
  assert_str(vb::audio_direction(webrtcbin_answer()).c_str(), "sendrecv");
  std::string recvonly = webrtcbin_answer();
  replace_all(&recvonly, "a=sendrecv", "a=recvonly");
  assert_str(vb::audio_direction(recvonly).c_str(), "recvonly");
  // The first audio section counts, not a video one before it.
  std::string video_first = offer_with("", "m=video 9 RTP/AVP 96\r\na=sendonly\r\n"
                                           "m=audio 9 RTP/AVP 111\r\na=inactive\r\nm=audio 9 RTP/AVP 0\r\na=sendrecv\r\n");
  assert_str(vb::audio_direction(video_first).c_str(), "inactive");
  // Session-level direction, absent direction, no audio at all.
  assert_str(vb::audio_direction(offer_with("a=sendonly\r\n", "m=audio 9 RTP/AVP 0\r\n")), "sendonly");
  assert_str(vb::audio_direction(offer_with("", "m=audio 9 RTP/AVP 0\r\n")).c_str(), "");
  assert_str(vb::audio_direction(offer_with("", "m=video 9 RTP/AVP 96\r\na=sendrecv\r\n")).c_str(), "");
  assert_str(vb::audio_direction("garbage").c_str(), "");
  // A rejected m-line (port 0) sends nothing, whatever attribute was copied into it.
  assert_str(vb::audio_direction(offer_with("", "m=audio 0 RTP/AVP 0\r\na=sendrecv\r\n")), "inactive");
  assert_str(
      vb::audio_direction(offer_with("", "m=audio 0 RTP/AVP 0\r\na=bundle-only\r\na=sendrecv\r\n")).c_str(), "sendrecv");
}
GST_END_TEST;

GST_START_TEST(test_count_candidates) {
  fail_unless_equals_int(vb::count_candidates(read_fixture(kOffers[0])), 2);
  fail_unless_equals_int(vb::count_candidates(read_fixture(kOffers[1])), 2);
  fail_unless_equals_int(vb::count_candidates(webrtcbin_answer()), 2);
  fail_unless_equals_int(vb::count_candidates(read_fixture("answer-sample-meta-docs.sdp")), 0);
  fail_unless_equals_int(vb::count_candidates(""), 0);
  // Escaped and LF forms count the same; a=end-of-candidates is not a candidate.
  std::string escaped = read_fixture(kOffers[0]);
  replace_all(&escaped, "\r\n", "\\r\\n");
  fail_unless_equals_int(vb::count_candidates(escaped), 2);
  fail_unless_equals_int(vb::count_candidates(vb::finalize_answer(webrtcbin_answer(), vb::AnswerFixups())), 2);
}
GST_END_TEST;

static Suite *sdp_suite(void) {
  Suite *s = suite_create("sdp");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_inspect_whatsapp_offers);
  tcase_add_test(tc, test_inspect_defaults_and_variants);
  tcase_add_test(tc, test_inspect_rejects_garbage);
  tcase_add_test(tc, test_inspect_no_audio);
  tcase_add_test(tc, test_prepare_whatsapp_offer_changes_only_fmtp);
  tcase_add_test(tc, test_prepare_normalises_line_ends);
  tcase_add_test(tc, test_prepare_adds_direction_mid_setup);
  tcase_add_test(tc, test_prepare_invents_unique_mids);
  tcase_add_test(tc, test_prepare_strips_sprop_only);
  tcase_add_test(tc, test_finalize_webrtcbin_answer);
  tcase_add_test(tc, test_finalize_without_public_ip);
  tcase_add_test(tc, test_finalize_candidate_kinds);
  tcase_add_test(tc, test_finalize_edge_cases);
  tcase_add_test(tc, test_audio_direction);
  tcase_add_test(tc, test_count_candidates);
  return s;
}

GST_CHECK_MAIN(sdp)
