// SDP inspection (through GstSDPMessage, the parser webrtcbin itself uses) and line-level fix-ups.
// The fix-ups edit text rather than re-serialising a GstSDPMessage because gst_sdp_message_as_text
// reorders and re-spells lines, and WhatsApp's offers and our answers should pass through with every
// line we do not mean to change kept byte-for-byte.
#include "sdp.h"

#include <arpa/inet.h>
#include <gst/sdp/sdp.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <set>

namespace vb {

namespace {

// ---------------------------------------------------------------------------------------------
// Small string helpers
// ---------------------------------------------------------------------------------------------

bool starts_with(const std::string &s, const char *prefix) {
  return s.compare(0, std::strlen(prefix), prefix) == 0;
}

bool iequals(const std::string &a, const std::string &b) {
  return a.size() == b.size() && g_ascii_strncasecmp(a.data(), b.data(), a.size()) == 0;
}

std::string trim(const std::string &s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos)
    return std::string();
  size_t e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

std::vector<std::string> split_ws(const std::string &s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t'))
      i++;
    size_t start = i;
    while (i < s.size() && s[i] != ' ' && s[i] != '\t')
      i++;
    if (i > start)
      out.push_back(s.substr(start, i - start));
  }
  return out;
}

// Replaces the index-th whitespace-separated token of `line` and keeps every other byte, so that
// unusual spacing in a candidate or m= line survives the edit. False if there is no such token.
bool replace_token(std::string *line, size_t index, const std::string &value) {
  size_t i = 0, n = 0;
  const std::string &s = *line;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t'))
      i++;
    size_t start = i;
    while (i < s.size() && s[i] != ' ' && s[i] != '\t')
      i++;
    if (i > start) {
      if (n == index) {
        line->replace(start, i - start, value);
        return true;
      }
      n++;
    }
  }
  return false;
}

// Strict decimal parse; false for empty text, trailing garbage or overflow.
bool parse_int(const std::string &text, int *out) {
  std::string t = trim(text);
  if (t.empty())
    return false;
  char *end = nullptr;
  errno = 0;
  long v = std::strtol(t.c_str(), &end, 10);
  if (errno != 0 || end == t.c_str() || *end != '\0' || v < INT32_MIN || v > INT32_MAX)
    return false;
  *out = (int)v;
  return true;
}

bool is_ipv4(const std::string &addr) {
  in_addr a;
  return inet_pton(AF_INET, addr.c_str(), &a) == 1;
}

bool is_ipv6(const std::string &addr) {
  in6_addr a;
  return inet_pton(AF_INET6, addr.c_str(), &a) == 1;
}

// ---------------------------------------------------------------------------------------------
// Text model: the session part and one line list per m-section, line ends stripped
// ---------------------------------------------------------------------------------------------

struct Description {
  std::vector<std::string> session;
  std::vector<std::vector<std::string>> media;  // media[i][0] is the m= line
};

void replace_all(std::string *s, const std::string &from, const std::string &to) {
  size_t pos = 0;
  while ((pos = s->find(from, pos)) != std::string::npos) {
    s->replace(pos, from.size(), to);
    pos += to.size();
  }
}

// Splits on CRLF, LF or a lone CR. WhatsApp's SDP sometimes reaches us JSON-encoded twice, which
// leaves the two-character escapes "\r\n" in the text (whatsapp-calling.md §6 item 10); those become
// real line ends. A text counts as escaped when it contains "\r\n", or "\n" but no real line end;
// a lone backslash-n elsewhere could in theory be part of an s= or i= line. Empty lines are
// dropped: RFC 8866 has none, and parsers disagree about them.
std::vector<std::string> split_lines(const std::string &sdp) {
  std::string text = sdp;
  if (starts_with(text, "\xEF\xBB\xBF"))  // a UTF-8 byte order mark from some HTTP clients
    text.erase(0, 3);
  const bool escaped = text.find("\\r\\n") != std::string::npos ||
                       (text.find_first_of("\r\n") == std::string::npos && text.find("\\n") != std::string::npos);
  if (escaped) {
    replace_all(&text, "\\r\\n", "\n");
    replace_all(&text, "\\n", "\n");
    // Encoders that escape '/' (PHP's json_encode does by default) leave "\/" in the protocol and
    // in the ice-pwd; SDP has no backslashes of its own.
    replace_all(&text, "\\/", "/");
  }

  std::vector<std::string> lines;
  std::string cur;
  for (size_t i = 0; i < text.size(); i++) {
    char c = text[i];
    if (c == '\r' || c == '\n') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n')
        i++;
      if (!trim(cur).empty())
        lines.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!trim(cur).empty())
    lines.push_back(cur);
  return lines;
}

Description parse_description(const std::string &sdp) {
  Description d;
  for (std::string &line : split_lines(sdp)) {
    if (starts_with(line, "m="))
      d.media.emplace_back();
    if (d.media.empty())
      d.session.push_back(std::move(line));
    else
      d.media.back().push_back(std::move(line));
  }
  return d;
}

std::string serialize(const Description &d) {
  std::string out;
  for (const std::string &l : d.session)
    out += l + "\r\n";
  for (const auto &m : d.media)
    for (const std::string &l : m)
      out += l + "\r\n";
  return out;
}

// "a=name:value" / "a=name" → name; empty for lines that are not attributes.
std::string attr_name(const std::string &line) {
  if (!starts_with(line, "a="))
    return std::string();
  size_t colon = line.find(':');
  // Trimmed, so that "a=sendrecv " (trailing blank) is still a direction.
  return trim(line.substr(2, colon == std::string::npos ? std::string::npos : colon - 2));
}

std::string attr_value(const std::string &line) {
  size_t colon = line.find(':');
  return colon == std::string::npos ? std::string() : line.substr(colon + 1);
}

int find_attr(const std::vector<std::string> &lines, const char *name, size_t from = 0) {
  for (size_t i = from; i < lines.size(); i++)
    if (attr_name(lines[i]) == name)
      return (int)i;
  return -1;
}

bool is_direction(const std::string &name) {
  return name == "sendrecv" || name == "sendonly" || name == "recvonly" || name == "inactive";
}

int find_direction(const std::vector<std::string> &lines) {
  for (size_t i = 0; i < lines.size(); i++)
    if (is_direction(attr_name(lines[i])))
      return (int)i;
  return -1;
}

std::string media_type(const std::vector<std::string> &section) {
  std::vector<std::string> t = split_ws(section[0].substr(2));
  return t.empty() ? std::string() : t[0];
}

// The payload types listed on an m= line (tokens after media, port and proto).
std::vector<std::string> media_formats(const std::vector<std::string> &section) {
  std::vector<std::string> t = split_ws(section[0].substr(2));
  if (t.size() <= 3)
    return {};
  return std::vector<std::string>(t.begin() + 3, t.end());
}

struct Rtpmap {
  int pt = -1;
  std::string encoding;
  int clock_rate = 0;
  int channels = 0;  // 0 when not given
};

// "111 opus/48000/2" → {111, "opus", 48000, 2}.
bool parse_rtpmap(const std::string &value, Rtpmap *out) {
  std::vector<std::string> t = split_ws(value);
  if (t.size() < 2 || !parse_int(t[0], &out->pt))
    return false;
  gchar **parts = g_strsplit(t[1].c_str(), "/", 3);
  bool ok = parts[0] != nullptr && parts[0][0] != '\0' && parts[1] != nullptr && parse_int(parts[1], &out->clock_rate);
  if (ok) {
    out->encoding = parts[0];
    if (parts[2] != nullptr && !parse_int(parts[2], &out->channels))
      ok = false;
  }
  g_strfreev(parts);
  return ok;
}

// ---------------------------------------------------------------------------------------------
// GstSDPMessage helpers for inspect_offer
// ---------------------------------------------------------------------------------------------

// gst_sdp_*_get_attribute_val() returns NULL both for a missing attribute and for a value-less
// flag such as a=ice-lite, so flags are looked up by key.
bool message_has_attribute(const GstSDPMessage *msg, const char *key) {
  for (guint i = 0; i < gst_sdp_message_attributes_len(msg); i++)
    if (g_strcmp0(gst_sdp_message_get_attribute(msg, i)->key, key) == 0)
      return true;
  return false;
}

std::string media_attr(const GstSDPMedia *media, const char *key) {
  const gchar *v = gst_sdp_media_get_attribute_val(media, key);
  return v ? trim(v) : std::string();
}

std::string session_attr(const GstSDPMessage *msg, const char *key) {
  const gchar *v = gst_sdp_message_get_attribute_val(msg, key);
  return v ? trim(v) : std::string();
}

bool media_has_format(const GstSDPMedia *media, int pt) {
  for (guint i = 0; i < gst_sdp_media_formats_len(media); i++) {
    int f = -1;
    if (parse_int(gst_sdp_media_get_format(media, i), &f) && f == pt)
      return true;
  }
  return false;
}

void parse_opus_fmtp(const GstSDPMedia *media, int pt, OfferInfo *info) {
  for (guint i = 0;; i++) {
    const gchar *v = gst_sdp_media_get_attribute_val_n(media, "fmtp", i);
    if (v == nullptr)
      break;
    std::string value = trim(v);
    size_t sp = value.find_first_of(" \t");
    int fmt_pt = -1;
    if (sp == std::string::npos || !parse_int(value.substr(0, sp), &fmt_pt) || fmt_pt != pt)
      continue;
    gchar **params = g_strsplit(value.c_str() + sp + 1, ";", -1);
    for (gchar **p = params; *p != nullptr; p++) {
      std::string param = trim(*p);
      size_t eq = param.find('=');
      if (eq == std::string::npos)
        continue;
      std::string key = trim(param.substr(0, eq));
      std::string val = trim(param.substr(eq + 1));
      int n = 0;
      if (iequals(key, "maxplaybackrate") && parse_int(val, &n) && n > 0)
        info->max_playback_rate = n;
      else if (iequals(key, "maxaveragebitrate") && parse_int(val, &n) && n > 0)
        info->max_average_bitrate = n;
      else if (iequals(key, "useinbandfec"))
        info->use_inband_fec = val == "1";
    }
    g_strfreev(params);
    return;
  }
}

void set_error(std::string *code, std::string *message, const char *c, const std::string &m) {
  if (code)
    *code = c;
  if (message)
    *message = m;
}

// ---------------------------------------------------------------------------------------------
// prepare_offer pieces
// ---------------------------------------------------------------------------------------------

// Opus PTs of one m-section, from its rtpmaps.
std::set<int> opus_pts(const std::vector<std::string> &section) {
  std::set<int> pts;
  for (const std::string &l : section) {
    Rtpmap r;
    if (attr_name(l) == "rtpmap" && parse_rtpmap(attr_value(l), &r) && iequals(r.encoding, "opus"))
      pts.insert(r.pt);
  }
  return pts;
}

// Drops the sprop-* parameters (RFC 7587 §7.1: sprop-stereo and sprop-maxcapturerate describe what
// the sender sends and are informational). webrtcbin 1.22 intersects them with the caps of the local
// payloader and silently answers recvonly when they differ (gstreamer-1.22-notes.md §1.4 method C).
// Returns false when no parameter is left, so that the caller drops the line.
bool strip_sprop(std::string *line, const std::set<int> &opus) {
  std::string value = attr_value(*line);
  size_t sp = value.find_first_of(" \t");
  int pt = -1;
  if (sp == std::string::npos || !parse_int(value.substr(0, sp), &pt) || opus.count(pt) == 0)
    return true;
  std::string prefix = line->substr(0, line->size() - value.size()) + value.substr(0, sp + 1);
  std::string rest = value.substr(sp + 1);
  gchar **params = g_strsplit(rest.c_str(), ";", -1);
  std::string kept;
  bool removed = false;
  for (gchar **p = params; *p != nullptr; p++) {
    std::string param = *p;
    std::string key = trim(param.substr(0, param.find('=')));
    if (g_ascii_strncasecmp(key.c_str(), "sprop-", 6) == 0) {
      removed = true;
      continue;
    }
    if (trim(param).empty())
      continue;
    if (!kept.empty())
      kept += ';';
    kept += kept.empty() ? trim(param) : param;
  }
  g_strfreev(params);
  if (!removed)
    return true;  // untouched, byte-for-byte
  if (trim(kept).empty())
    return false;
  *line = prefix + kept;
  return true;
}

// "a=group:BUNDLE a b" → {"a", "b"}; empty for other group semantics.
std::vector<std::string> bundle_tokens(const std::string &line) {
  std::vector<std::string> t = split_ws(attr_value(line));
  if (t.empty() || !iequals(t[0], "BUNDLE"))
    return {};
  return std::vector<std::string>(t.begin() + 1, t.end());
}

bool is_bundle_group(const std::string &line) {
  if (attr_name(line) != "group")
    return false;
  std::vector<std::string> t = split_ws(attr_value(line));
  return !t.empty() && iequals(t[0], "BUNDLE");
}

// Gives every m-section an a=mid (webrtcbin 1.22 rejects an offer without one, notes §1.2). The
// offerer's BUNDLE group usually still names the mids it meant, so tokens of the group that no
// m-section claims are handed out first, in order; the rest get their index (made unique). The
// BUNDLE group is then rewritten to name only mids that exist, plus the newly invented ones.
void fix_mids(Description *d) {
  std::set<std::string> used;
  std::vector<size_t> missing;
  for (size_t i = 0; i < d->media.size(); i++) {
    int idx = find_attr(d->media[i], "mid");
    if (idx >= 0)
      used.insert(trim(attr_value(d->media[i][idx])));
    else
      missing.push_back(i);
  }
  if (missing.empty())
    return;

  std::vector<std::string> dangling;
  for (const std::string &l : d->session)
    if (is_bundle_group(l))
      for (const std::string &t : bundle_tokens(l))
        if (used.count(t) == 0 && std::find(dangling.begin(), dangling.end(), t) == dangling.end())
          dangling.push_back(t);

  std::vector<std::string> invented;
  size_t next_dangling = 0;
  for (size_t i : missing) {
    std::string mid;
    if (next_dangling < dangling.size()) {
      mid = dangling[next_dangling++];
    } else {
      for (size_t n = i;; n++) {
        mid = std::to_string(n);
        if (used.count(mid) == 0 && std::find(dangling.begin(), dangling.end(), mid) == dangling.end())
          break;
      }
      invented.push_back(mid);
    }
    used.insert(mid);
    d->media[i].push_back("a=mid:" + mid);
  }

  bool first_group = true;
  for (auto it = d->session.begin(); it != d->session.end();) {
    if (!is_bundle_group(*it)) {
      ++it;
      continue;
    }
    std::vector<std::string> kept;
    for (const std::string &t : bundle_tokens(*it))
      if (used.count(t))
        kept.push_back(t);
    if (first_group)
      kept.insert(kept.end(), invented.begin(), invented.end());
    first_group = false;
    if (kept.empty()) {
      it = d->session.erase(it);
      continue;
    }
    std::string line = "a=group:BUNDLE";
    for (const std::string &t : kept)
      line += " " + t;
    *it = line;
    ++it;
  }
}

// ---------------------------------------------------------------------------------------------
// finalize_answer pieces
// ---------------------------------------------------------------------------------------------

// a=candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type> …
struct Candidate {
  std::string component, transport, address, port, type;
};

bool parse_candidate(const std::string &line, Candidate *c) {
  if (attr_name(line) != "candidate")
    return false;
  std::vector<std::string> t = split_ws(attr_value(line));
  if (t.size() < 8 || t[6] != "typ")
    return false;
  c->component = t[1];
  c->transport = t[2];
  c->address = t[4];
  c->port = t[5];
  c->type = t[7];
  return true;
}

int first_audio_section(const Description &d) {
  for (size_t i = 0; i < d.media.size(); i++)
    if (media_type(d.media[i]) == "audio")
      return (int)i;
  return -1;
}

bool is_sha256_fingerprint(const std::string &line) {
  std::vector<std::string> t = split_ws(attr_value(line));
  return !t.empty() && iequals(t[0], "sha-256");
}

// Keeps only sha-256 fingerprints (WhatsApp rejects other algorithms; whatsapp-calling.md §4.7), but
// never removes the last fingerprint: an answer without one is rejected outright, while an odd
// algorithm at least has a chance.
void keep_sha256_fingerprints(Description *d) {
  bool have_sha256 = false;
  auto scan = [&](const std::vector<std::string> &lines) {
    for (const std::string &l : lines)
      if (attr_name(l) == "fingerprint" && is_sha256_fingerprint(l))
        have_sha256 = true;
  };
  scan(d->session);
  for (const auto &m : d->media)
    scan(m);
  if (!have_sha256)
    return;
  auto drop = [](std::vector<std::string> *lines) {
    lines->erase(std::remove_if(lines->begin(), lines->end(),
                                [](const std::string &l) {
                                  return attr_name(l) == "fingerprint" && !is_sha256_fingerprint(l);
                                }),
                 lines->end());
  };
  drop(&d->session);
  for (auto &m : d->media)
    drop(&m);
}

// Host candidates carry the private interface address; behind a 1:1 NAT the public address with the
// same port is what the peer must use (gstreamer-1.22-notes.md §1.10 option 2). Only candidates of
// the public address's family are rewritten: the port of an IPv6 socket means nothing on an IPv4
// address. Anything that is not an IP literal is ignored rather than written into the SDP.
void rewrite_host_candidates(Description *d, const std::string &public_ip) {
  bool v4 = is_ipv4(public_ip);
  if (!v4 && !is_ipv6(public_ip))
    return;
  for (auto &m : d->media)
    for (std::string &l : m) {
      Candidate c;
      if (!parse_candidate(l, &c) || c.type != "host")
        continue;
      if (v4 ? is_ipv4(c.address) : is_ipv6(c.address))
        replace_token(&l, 4, public_ip);
    }
}

// RFC 8839 §4.2.1.2 non-trickle peers expect the default candidate in c= and m=; webrtcbin leaves
// "IN IP4 0.0.0.0" and port 9 there (notes §1.3). The default is the first IPv4 UDP candidate of
// component 1: a TCP candidate's port (9 for active ones) cannot carry RTP.
void set_default_candidate(Description *d, size_t mi) {
  std::vector<std::string> &m = d->media[mi];
  Candidate def;
  bool found = false;
  for (const std::string &l : m) {
    Candidate c;
    if (parse_candidate(l, &c) && c.component == "1" && iequals(c.transport, "udp") && is_ipv4(c.address)) {
      def = c;
      found = true;
      break;
    }
  }
  if (!found)
    return;
  replace_token(&m[0], 1, def.port);
  std::string cline = "c=IN IP4 " + def.address;
  for (std::string &l : m)
    if (starts_with(l, "c=")) {
      l = cline;
      return;
    }
  // No media-level c=: change the session-level one when there is one, else add one to the
  // section, after m= and an optional i= (RFC 8866 §5 fixes that order).
  for (std::string &l : d->session)
    if (starts_with(l, "c=")) {
      l = cline;
      return;
    }
  size_t pos = 1;
  while (pos < m.size() && starts_with(m[pos], "i="))
    pos++;
  m.insert(m.begin() + pos, cline);
}

// webrtcbin 1.22 drops telephone-event from its answer (notes §7), yet WhatsApp sends DTMF on the
// offered PT; naming it in the answer keeps the negotiation honest. A PT the answer already uses for
// another codec is left alone rather than mapped twice.
void add_telephone_event(std::vector<std::string> *m, int pt) {
  // A malformed m= line without a protocol has no format list to extend.
  if (pt < 0 || pt > 127 || split_ws((*m)[0].substr(2)).size() < 3)
    return;
  const std::string prefix = "a=rtpmap:" + std::to_string(pt);
  int last_rtpmap = -1;
  bool have_rtpmap = false;
  for (size_t i = 0; i < m->size(); i++) {
    const std::string &l = (*m)[i];
    if (attr_name(l) != "rtpmap")
      continue;
    last_rtpmap = (int)i;
    Rtpmap r;
    if (parse_rtpmap(attr_value(l), &r) && r.pt == pt) {
      if (!iequals(r.encoding, "telephone-event"))
        return;
      have_rtpmap = true;
    }
  }
  std::vector<std::string> fmts = media_formats(*m);
  if (std::find(fmts.begin(), fmts.end(), std::to_string(pt)) == fmts.end())
    (*m)[0] += " " + std::to_string(pt);
  if (!have_rtpmap) {
    std::string line = prefix + " telephone-event/8000";
    if (last_rtpmap >= 0)
      m->insert(m->begin() + last_rtpmap + 1, line);
    else
      m->push_back(line);
  }
}

// Non-trickle: everything is gathered before the answer leaves, and RFC 8840 lets us say so.
void add_end_of_candidates(Description *d, std::vector<std::string> *m) {
  if (find_attr(*m, "end-of-candidates") >= 0 || find_attr(d->session, "end-of-candidates") >= 0)
    return;
  int last = -1;
  for (size_t i = 0; i < m->size(); i++)
    if (attr_name((*m)[i]) == "candidate")
      last = (int)i;
  if (last >= 0)
    m->insert(m->begin() + last + 1, "a=end-of-candidates");
  else
    m->push_back("a=end-of-candidates");
}

}  // namespace

// -------------------------------------------------------------------------------------------------

bool inspect_offer(const std::string &sdp, OfferInfo *info, std::string *code, std::string *message) {
  OfferInfo result;
  // The same line-end normalisation as prepare_offer, so a raw webhook string inspects like the
  // prepared one; the parser itself is left to judge everything else.
  std::string text = serialize(parse_description(sdp));
  bool has_version = false;
  for (const std::string &l : split_lines(text))
    if (starts_with(l, "v="))
      has_version = true;

  GstSDPMessage *msg = nullptr;
  // SDP is text: a NUL byte means binary junk, and would also cut the C string the parser sees.
  if (text.empty() || text.find('\0') != std::string::npos ||
      gst_sdp_message_new_from_text(text.c_str(), &msg) != GST_SDP_OK || msg == nullptr) {
    if (msg)
      gst_sdp_message_free(msg);
    set_error(code, message, "invalid_sdp", "the offer is not an SDP description");
    return false;
  }
  if (!has_version) {
    gst_sdp_message_free(msg);
    set_error(code, message, "invalid_sdp", "the offer has no v= line, so it is not an SDP description");
    return false;
  }
  guint n_media = gst_sdp_message_medias_len(msg);
  if (n_media == 0) {
    gst_sdp_message_free(msg);
    set_error(code, message, "invalid_sdp", "the offer has no m= line");
    return false;
  }

  const GstSDPMedia *audio = nullptr;
  bool any_audio = false;
  std::vector<std::string> other_codecs;  // for the no_audio message
  for (guint i = 0; i < n_media && audio == nullptr; i++) {
    const GstSDPMedia *media = gst_sdp_message_get_media(msg, i);
    if (g_strcmp0(gst_sdp_media_get_media(media), "audio") != 0)
      continue;
    any_audio = true;
    for (guint j = 0;; j++) {
      const gchar *v = gst_sdp_media_get_attribute_val_n(media, "rtpmap", j);
      if (v == nullptr)
        break;
      Rtpmap r;
      if (!parse_rtpmap(v, &r) || !media_has_format(media, r.pt))
        continue;
      if (iequals(r.encoding, "opus")) {
        if (audio == nullptr) {
          audio = media;
          result.audio_mline = (int)i;
          result.opus_pt = r.pt;
          result.opus_channels = r.channels > 0 ? r.channels : 1;
        }
      } else if (iequals(r.encoding, "telephone-event")) {
        // WhatsApp decodes DTMF only at 8000 Hz (whatsapp-calling.md §7.1).
        if (r.clock_rate == 8000 && result.telephone_event_pt < 0)
          result.telephone_event_pt = r.pt;
      } else if (std::find(other_codecs.begin(), other_codecs.end(), r.encoding) == other_codecs.end()) {
        other_codecs.push_back(r.encoding);
      }
    }
    if (audio == nullptr)
      result.telephone_event_pt = -1;  // belonged to an m-line we cannot use
  }
  if (audio == nullptr) {
    gst_sdp_message_free(msg);
    if (!any_audio)
      set_error(code, message, "no_audio", "the offer has no audio m= line");
    else {
      std::string offered;
      for (const std::string &c : other_codecs)
        offered += (offered.empty() ? "" : ", ") + c;
      set_error(code, message, "no_audio",
                "the offer's audio has no Opus" + (offered.empty() ? std::string() : " (offered: " + offered + ")"));
    }
    return false;
  }

  result.mid = media_attr(audio, "mid");
  result.ice_lite = message_has_attribute(msg, "ice-lite");
  result.setup = media_attr(audio, "setup");
  if (result.setup.empty())
    result.setup = session_attr(msg, "setup");
  parse_opus_fmtp(audio, result.opus_pt, &result);
  int ptime = 0;
  std::string ptime_text = media_attr(audio, "ptime");
  if (ptime_text.empty())
    ptime_text = session_attr(msg, "ptime");
  if (parse_int(ptime_text, &ptime) && ptime > 0)
    result.ptime_ms = ptime;
  for (guint j = 0;; j++) {
    const gchar *v = gst_sdp_media_get_attribute_val_n(audio, "fingerprint", j);
    if (v == nullptr)
      break;
    result.fingerprints.push_back(trim(v));
  }
  if (result.fingerprints.empty())
    for (guint j = 0;; j++) {
      const gchar *v = gst_sdp_message_get_attribute_val_n(msg, "fingerprint", j);
      if (v == nullptr)
        break;
      result.fingerprints.push_back(trim(v));
    }
  gst_sdp_message_free(msg);
  if (info)
    *info = result;
  if (code)
    code->clear();
  if (message)
    message->clear();
  return true;
}

std::string prepare_offer(const std::string &sdp) {
  Description d = parse_description(sdp);

  // Session-level values that apply to every m-section (RFC 8866 §6, RFC 8122 §5); webrtcbin 1.22
  // only looks at the media level for setup and direction (notes §1.2, §1.7).
  std::vector<std::string> session_fingerprints;
  std::string session_setup, session_direction;
  for (const std::string &l : d.session) {
    std::string name = attr_name(l);
    if (name == "fingerprint")
      session_fingerprints.push_back(l);
    else if (name == "setup" && session_setup.empty())
      session_setup = l;
    else if (is_direction(name) && session_direction.empty())
      session_direction = l;
  }

  for (auto &m : d.media) {
    // A session-level direction is what the offerer meant for a section without its own; only
    // without either does the RFC default, sendrecv, apply.
    if (find_direction(m) < 0)
      m.push_back(session_direction.empty() ? "a=sendrecv" : session_direction);
    if (find_attr(m, "setup") < 0 && !session_setup.empty())
      m.push_back(session_setup);
    if (find_attr(m, "fingerprint") < 0)
      m.insert(m.end(), session_fingerprints.begin(), session_fingerprints.end());
    std::set<int> opus = opus_pts(m);
    for (auto it = m.begin(); it != m.end();) {
      if (attr_name(*it) == "fmtp" && !strip_sprop(&*it, opus))
        it = m.erase(it);
      else
        ++it;
    }
  }
  fix_mids(&d);
  return serialize(d);
}

std::string finalize_answer(const std::string &answer, const AnswerFixups &fixups) {
  Description d = parse_description(answer);
  if (fixups.sha256_only)
    keep_sha256_fingerprints(&d);
  // Before the default candidate, so that c=/m= name the address the peer can actually reach.
  if (!fixups.public_ip.empty())
    rewrite_host_candidates(&d, fixups.public_ip);
  int audio = first_audio_section(d);
  if (audio >= 0) {
    if (fixups.default_candidate)
      set_default_candidate(&d, (size_t)audio);
    if (fixups.telephone_event_pt >= 0)
      add_telephone_event(&d.media[audio], fixups.telephone_event_pt);
    if (fixups.end_of_candidates)
      add_end_of_candidates(&d, &d.media[audio]);
  }
  return serialize(d);
}

std::string finalize_offer(const std::string &offer, const std::string &public_ip, int telephone_event_pt) {
  AnswerFixups fixups;
  fixups.public_ip = public_ip;
  fixups.telephone_event_pt = telephone_event_pt;
  Description d = parse_description(finalize_answer(offer, fixups));
  auto fix = [](std::vector<std::string> *lines) {
    for (auto it = lines->begin(); it != lines->end();) {
      // We never trickle: every candidate is in this offer.
      if (attr_name(*it) == "ice-options") {
        it = lines->erase(it);
        continue;
      }
      // Meta's own offers say opus/48000/2 (RFC 7587); webrtcbin writes OPUS/48000.
      if (attr_name(*it) == "rtpmap") {
        std::string lower = *it;
        for (char &c : lower) c = (char)g_ascii_tolower(c);
        size_t at = lower.find(" opus/48000");
        if (at != std::string::npos) *it = it->substr(0, at) + " opus/48000/2";
      }
      ++it;
    }
  };
  fix(&d.session);
  for (auto &m : d.media) fix(&m);
  return serialize(d);
}

std::string audio_direction(const std::string &sdp) {
  Description d = parse_description(sdp);
  int audio = first_audio_section(d);
  if (audio < 0)
    return std::string();
  const std::vector<std::string> &m = d.media[audio];
  // Port 0 rejects the m-line (RFC 3264 §6) whatever direction attribute an answerer copied into
  // it — webrtcbin 1.22 does copy the offer's attributes into rejected sections (notes §1.2).
  // bundle-only sections have port 0 without being rejected.
  std::vector<std::string> t = split_ws(m[0].substr(2));
  if (t.size() > 1 && (t[1] == "0" || starts_with(t[1], "0/")) && find_attr(m, "bundle-only") < 0)
    return "inactive";
  int dir = find_direction(m);
  if (dir >= 0)
    return attr_name(m[dir]);
  dir = find_direction(d.session);
  return dir >= 0 ? attr_name(d.session[dir]) : std::string();
}

int count_candidates(const std::string &sdp) {
  int n = 0;
  for (const std::string &l : split_lines(sdp))
    if (attr_name(l) == "candidate")
      n++;
  return n;
}

}  // namespace vb
