#include "whatsapp-sdp.h"

#include <gst/sdp/sdp.h>

#include <cstdlib>
#include <cstring>

namespace meta_peer {

namespace {

std::string lower(std::string s) {
  for (char &c : s) c = g_ascii_tolower(c);
  return s;
}

// "111 opus/48000/2" → (111, "opus/48000/2"); false if there is no leading number.
bool split_pt(const std::string &value, int *pt, std::string *rest) {
  char *end = nullptr;
  long v = strtol(value.c_str(), &end, 10);
  if (end == value.c_str() || v < 0 || v > 127) return false;
  *pt = (int)v;
  std::string r = end;
  size_t start = r.find_first_not_of(' ');
  *rest = start == std::string::npos ? std::string() : r.substr(start);
  return true;
}

void apply_attribute(const std::string &key, const std::string &value, RemoteDescription *d) {
  if (key == "ice-ufrag") {
    d->ufrag = value;
  } else if (key == "ice-pwd") {
    d->pwd = value;
  } else if (key == "ice-lite") {
    d->ice_lite = true;
  } else if (key == "ice-options") {
    d->trickle = d->trickle || value.find("trickle") != std::string::npos;
  } else if (key == "fingerprint") {
    size_t sp = value.find(' ');
    if (sp == std::string::npos) return;
    std::string alg = lower(value.substr(0, sp));
    // Several fingerprints (aiortc sends sha-256/384/512): the sha-256 one is the one Meta reads.
    if (d->fingerprint.empty() || alg == "sha-256") {
      d->fingerprint_algorithm = alg;
      d->fingerprint = value.substr(value.find_first_not_of(' ', sp));
    }
  } else if (key == "setup") {
    d->setup = lower(value);
  } else if (key == "mid") {
    d->mid = value;
  } else if (key == "sendrecv" || key == "sendonly" || key == "recvonly" || key == "inactive") {
    d->direction = key;
  } else if (key == "rtcp-mux") {
    d->rtcp_mux = true;
  } else if (key == "candidate") {
    d->candidates.push_back(value);
  } else if (key == "rtpmap" || key == "fmtp") {
    int pt = -1;
    std::string rest;
    if (!split_pt(value, &pt, &rest)) return;
    (key == "rtpmap" ? d->rtpmaps : d->fmtps)[pt] = rest;
  }
}

class Lines {  // SDP text with CRLF line ends, the way Meta sends it (§3: RFC 8866, CRLF)
 public:
  Lines &operator<<(const std::string &line) {
    text_ += line;
    text_ += "\r\n";
    return *this;
  }
  std::string str() const { return text_; }

 private:
  std::string text_;
};

std::string random_chars(const char *alphabet, size_t n) {
  std::string s;
  size_t len = strlen(alphabet);
  for (size_t i = 0; i < n; i++) s += alphabet[g_random_int_range(0, (gint32)len)];
  return s;
}

}  // namespace

bool parse_remote_description(const std::string &text, RemoteDescription *out, std::string *error) {
  *out = RemoteDescription();
  GstSDPMessage *msg = nullptr;
  gst_sdp_message_new(&msg);
  if (gst_sdp_message_parse_buffer(reinterpret_cast<const guint8 *>(text.data()), (guint)text.size(), msg) !=
      GST_SDP_OK) {
    gst_sdp_message_free(msg);
    if (error) *error = "not parseable as SDP";
    return false;
  }
  for (guint i = 0; i < gst_sdp_message_attributes_len(msg); i++) {
    const GstSDPAttribute *a = gst_sdp_message_get_attribute(msg, i);
    apply_attribute(a->key ? a->key : "", a->value ? a->value : "", out);
  }
  const GstSDPMedia *audio = nullptr;
  for (guint i = 0; i < gst_sdp_message_medias_len(msg) && !audio; i++) {
    const GstSDPMedia *m = gst_sdp_message_get_media(msg, i);
    if (g_strcmp0(gst_sdp_media_get_media(m), "audio") == 0) audio = m;
  }
  if (!audio) {
    gst_sdp_message_free(msg);
    if (error) *error = "no m=audio section";
    return false;
  }
  out->protocol = gst_sdp_media_get_proto(audio) ? gst_sdp_media_get_proto(audio) : "";
  for (guint i = 0; i < gst_sdp_media_formats_len(audio); i++) out->payload_types.push_back(atoi(gst_sdp_media_get_format(audio, i)));
  for (guint i = 0; i < gst_sdp_media_attributes_len(audio); i++) {
    const GstSDPAttribute *a = gst_sdp_media_get_attribute(audio, i);
    apply_attribute(a->key ? a->key : "", a->value ? a->value : "", out);
  }
  gst_sdp_message_free(msg);

  for (int pt : out->payload_types) {
    auto it = out->rtpmaps.find(pt);
    if (it == out->rtpmaps.end()) continue;
    std::string enc = lower(it->second);
    if (out->opus_pt < 0 && enc.rfind("opus/48000", 0) == 0) out->opus_pt = pt;
    if (out->telephone_event_pt < 0 && enc == "telephone-event/8000") out->telephone_event_pt = pt;
  }
  return true;
}

std::string build_user_initiated_offer(const LocalDescription &l) {
  const std::string addr = l.address;
  const std::string port = std::to_string(l.port);
  Lines s;
  s << "v=0"
    << "o=- " + std::to_string(l.session_id) + " 2 IN IP4 127.0.0.1"  // Meta writes 127.0.0.1 here, always
    << "s=-"
    << "t=0 0"
    << "a=group:BUNDLE audio"
    << "a=msid-semantic: WMS " + l.stream_id
    << "a=ice-lite"
    << "m=audio " + port + " UDP/TLS/RTP/SAVPF 111 126"
    << "c=IN IP4 " + addr
    << "a=rtcp:9 IN IP4 0.0.0.0"
    << "a=candidate:" + std::to_string(l.candidate_foundation) + " 1 udp 2122260223 " + addr + " " + port +
           " typ host generation 0 network-cost 50"
    << "a=ice-ufrag:" + l.ufrag
    << "a=ice-pwd:" + l.pwd
    << "a=fingerprint:sha-256 " + l.fingerprint
    << "a=setup:actpass"
    << "a=mid:audio"
    << "a=sendrecv"
    << "a=msid:" + l.stream_id + " WhatsAppTrack1"
    << "a=rtcp-mux"
    << "a=rtpmap:111 opus/48000/2"
    << "a=rtcp-fb:111 transport-cc"
    << "a=fmtp:111 maxaveragebitrate=20000;maxplaybackrate=16000;minptime=20;sprop-maxcapturerate=16000;useinbandfec=1"
    << "a=rtpmap:126 telephone-event/8000"
    << "a=maxptime:20"
    << "a=ptime:20"
    << "a=ssrc:" + std::to_string(l.ssrc) + " cname:WhatsAppAudioStream1";
  return s.str();
}

std::string build_business_initiated_answer(const LocalDescription &l, const RemoteDescription &offer,
                                            std::string *error) {
  if (offer.opus_pt < 0) {
    if (error) *error = "the offer has no opus/48000 payload type (WhatsApp speaks only Opus)";
    return {};
  }
  // Which of the offered formats Meta keeps (§4.6: of "111 63 9 0 8 110 126" it answered
  // "111 9 0 8 110 126", dropping red/48000).
  std::vector<int> pts;
  for (int pt : offer.payload_types) {
    auto it = offer.rtpmaps.find(pt);
    std::string enc = it == offer.rtpmaps.end() ? "" : lower(it->second);
    bool keep = pt == offer.opus_pt || enc.rfind("g722/", 0) == 0 || enc.rfind("pcmu/", 0) == 0 ||
                enc.rfind("pcma/", 0) == 0 || enc.rfind("telephone-event/", 0) == 0;
    // Static PTs without rtpmap (RFC 3551) keep their meaning.
    if (it == offer.rtpmaps.end()) keep = pt == 0 || pt == 8 || pt == 9;
    if (keep) pts.push_back(pt);
  }
  const std::string mid = offer.mid.empty() ? "0" : offer.mid;
  const std::string addr = l.address;
  const std::string port = std::to_string(l.port);
  std::string formats;
  for (int pt : pts) formats += " " + std::to_string(pt);

  Lines s;
  s << "v=0"
    << "o=- " + std::to_string(l.session_id) + " 2 IN IP4 127.0.0.1"
    << "s=-"
    << "t=0 0"
    << "a=group:BUNDLE " + mid
    << "a=ice-lite"
    << "m=audio " + port + " UDP/TLS/RTP/SAVPF" + formats
    << "c=IN IP4 " + addr
    << "a=candidate:" + std::to_string(l.candidate_foundation) + " 1 udp 2113937151 " + addr + " " + port +
           " typ host generation 0 network-cost 50 ufrag " + l.ufrag
    << "a=ice-ufrag:" + l.ufrag
    << "a=ice-pwd:" + l.pwd;
  if (offer.trickle) s << "a=ice-options:trickle";
  s << "a=fingerprint:sha-256 " + l.fingerprint
    // RFC 5763 §5: answer actpass/passive with active (Meta: DTLS client); an active offer forces passive.
    << std::string("a=setup:") + (offer.setup == "active" ? "passive" : "active")
    << "a=mid:" + mid
    << "a=sendrecv"
    << "a=rtcp-mux";
  for (int pt : pts) {
    auto it = offer.rtpmaps.find(pt);
    if (it != offer.rtpmaps.end()) {
      // webrtcbin writes "OPUS/48000"; Meta writes the RFC 7587 form.
      std::string enc = pt == offer.opus_pt ? "opus/48000/2" : it->second;
      s << "a=rtpmap:" + std::to_string(pt) + " " + enc;
    }
    if (pt == offer.opus_pt) {
      auto f = offer.fmtps.find(pt);
      s << "a=fmtp:" + std::to_string(pt) + " " + (f != offer.fmtps.end() ? f->second : "minptime=10;useinbandfec=1");
    }
  }
  return s.str();
}

std::string random_ufrag(bool business_initiated) {
  static const char kLetters[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  static const char kAlnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  if (!business_initiated) return random_chars(kLetters, 16);
  return random_chars(kAlnum, 12) + "/" + random_chars("0123456789", 1);
}

std::string random_pwd() {
  guint8 bytes[16];
  for (auto &b : bytes) b = (guint8)g_random_int_range(0, 256);
  gchar *b64 = g_base64_encode(bytes, sizeof bytes);  // 16 bytes → 22 characters + "=="
  std::string pwd = b64;
  g_free(b64);
  return pwd;
}

std::string random_uuid() {
  gchar *u = g_uuid_string_random();
  std::string s = u;
  g_free(u);
  return s;
}

}  // namespace meta_peer
