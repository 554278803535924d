#include "whatsapp-webhook.h"

#include <cstring>

#include <glib.h>
#include <json-glib/json-glib.h>

namespace vb {
namespace wa {

// ---- Signature -------------------------------------------------------------------------------

std::string hmac_sha256_hex(const std::string &key, const char *data, size_t size) {
  GHmac *hmac = g_hmac_new(G_CHECKSUM_SHA256, reinterpret_cast<const guchar *>(key.data()), key.size());
  if (size) g_hmac_update(hmac, reinterpret_cast<const guchar *>(data), (gssize)size);
  std::string out = g_hmac_get_string(hmac);  // lower-case hex, owned by the GHmac
  g_hmac_unref(hmac);
  return out;
}

const char *signature_name(Signature s) {
  switch (s) {
    case Signature::Valid: return "valid";
    case Signature::Missing: return "missing";
    case Signature::Malformed: return "malformed";
    case Signature::Mismatch: return "mismatch";
  }
  return "unknown";
}

Signature check_signature(const std::string &app_secret, const std::string &header, const char *body, size_t size) {
  if (header.empty()) return Signature::Missing;
  const std::string prefix = "sha256=";
  if (header.size() != prefix.size() + 64 || g_ascii_strncasecmp(header.c_str(), prefix.c_str(), prefix.size()) != 0)
    return Signature::Malformed;
  std::string given = header.substr(prefix.size());
  for (char &c : given) {
    if (!g_ascii_isxdigit(c)) return Signature::Malformed;
    c = g_ascii_tolower(c);
  }
  // An empty secret never validates anything (the insecure mode skips this check instead).
  if (app_secret.empty()) return Signature::Mismatch;
  return constant_time_equal(hmac_sha256_hex(app_secret, body, size), given) ? Signature::Valid : Signature::Mismatch;
}

// ---- Error codes -----------------------------------------------------------------------------

const char *meta_error_meaning(long long code) {
  struct Entry {
    long long code;
    const char *meaning;
  };
  // docs/whatsapp-calling.md §3.1 (Meta's troubleshooting table; HTTP status in parentheses there).
  static const Entry table[] = {
      {100, "invalid parameter (SDP validation failures come as this code; see the details)"},
      {613, "call-permission API rate limit"},
      {131000, "generic failure"},
      {131030, "recipient not in the allowed list (public test numbers only)"},
      {131044, "no valid payment method"},
      {131055, "the Graph API is not allowed on SIP-enabled numbers"},
      {138000, "calling is not enabled on this number"},
      {138001, "receiver is uncallable (not on WhatsApp, terms not accepted, or unsupported client)"},
      {138002, "concurrent calls limit (1000 per number) reached"},
      {138003, "duplicate call: one is already ongoing with this user"},
      {138004, "connection error"},
      {138005, "call rate limit exceeded"},
      {138006, "no approved call permission from this user"},
      {138007, "connect timeout: the business did not apply the offer/answer SDP in time"},
      {138008, "SDP validation error (reported by implementers; not in Meta's table)"},
      {138009, "call-permission request limit reached"},
      {138011, "call permission issue on a development/test setup (undocumented)"},
      {138012, "business-initiated connected-calls limit per 24 h reached"},
      {138013, "business-initiated calls are not available for this number or country"},
      {138014, "calling temporarily disabled for low quality"},
      {138015, "cannot enable calling: messaging limit below 2000"},
      {138017, "a permanent call permission already exists"},
      {138018, "technical prerequisites not met: no app subscribed to the calls field (and no SIP)"},
      {138019, "the WhatsApp client's call setup failed"},
      {138020, "the WhatsApp client could not reach the relay"},
      {138021, "media receive timeout: the WhatsApp client got no media from the business for a long time"},
      {138022, "media transmit timeout"},
      {138023, "accepted but no media signals"},
  };
  for (const auto &e : table)
    if (e.code == code) return e.meaning;
  return nullptr;
}

std::string describe_meta_error(const MetaError &error) {
  std::string out = std::to_string(error.code);
  const char *meaning = meta_error_meaning(error.code);
  out += " (";
  out += meaning ? meaning : (error.message.empty() ? "unknown error" : error.message.c_str());
  out += ")";
  if (!error.details.empty()) out += ": " + error.details;
  return out;
}

// ---- Parsing ---------------------------------------------------------------------------------

bool CallEvent::user_initiated() const {
  if (direction == "USER_INITIATED") return true;
  if (direction == "BUSINESS_INITIATED") return false;
  return sdp_type != "answer";  // no direction given: an offer means someone is calling us
}

bool CallEvent::business_initiated() const { return !user_initiated(); }

namespace {

// Members read only when they have the expected type: webhooks are external input, and
// json-glib's typed getters warn (g_critical) on a mismatch.
JsonNode *member(JsonObject *o, const char *name) {
  return o && json_object_has_member(o, name) ? json_object_get_member(o, name) : nullptr;
}

JsonObject *object_member(JsonObject *o, const char *name) {
  JsonNode *n = member(o, name);
  return n && JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : nullptr;
}

JsonArray *array_member(JsonObject *o, const char *name) {
  JsonNode *n = member(o, name);
  return n && JSON_NODE_HOLDS_ARRAY(n) ? json_node_get_array(n) : nullptr;
}

std::string string_member(JsonObject *o, const char *name) {
  JsonNode *n = member(o, name);
  if (!n || !JSON_NODE_HOLDS_VALUE(n)) return "";
  GType t = json_node_get_value_type(n);
  if (t == G_TYPE_STRING) return json_node_get_string(n);
  if (t == G_TYPE_INT64) return std::to_string((long long)json_node_get_int(n));  // ids sent as numbers
  return "";
}

// Timestamps are strings of Unix seconds; numbers are accepted too. 0 when unreadable.
long long seconds_member(JsonObject *o, const char *name) {
  JsonNode *n = member(o, name);
  if (!n || !JSON_NODE_HOLDS_VALUE(n)) return 0;
  GType t = json_node_get_value_type(n);
  if (t == G_TYPE_INT64) return json_node_get_int(n) > 0 ? (long long)json_node_get_int(n) : 0;
  if (t == G_TYPE_DOUBLE) {
    double d = json_node_get_double(n);
    return d > 0 && d < 1e15 ? (long long)d : 0;
  }
  if (t != G_TYPE_STRING) return 0;
  const char *s = json_node_get_string(n);
  char *end = nullptr;
  gint64 v = g_ascii_strtoll(s, &end, 10);
  return end != s && *end == '\0' && v > 0 ? (long long)v : 0;
}

long long int_member(JsonObject *o, const char *name, long long fallback) {
  JsonNode *n = member(o, name);
  if (!n || !JSON_NODE_HOLDS_VALUE(n)) return fallback;
  GType t = json_node_get_value_type(n);
  if (t == G_TYPE_INT64) return json_node_get_int(n);
  if (t == G_TYPE_DOUBLE) {
    // Out-of-range doubles (1e400 parses as inf) cannot be converted: undefined behaviour.
    double d = json_node_get_double(n);
    return d > -9e18 && d < 9e18 ? (long long)d : fallback;
  }
  if (t == G_TYPE_STRING) {
    const char *s = json_node_get_string(n);
    char *end = nullptr;
    gint64 v = g_ascii_strtoll(s, &end, 10);
    return end != s && *end == '\0' ? (long long)v : fallback;
  }
  return fallback;
}

std::vector<MetaError> parse_errors(JsonObject *o) {
  std::vector<MetaError> out;
  JsonArray *errors = array_member(o, "errors");
  if (!errors) return out;
  guint n = json_array_get_length(errors);
  for (guint i = 0; i < n; i++) {
    JsonNode *node = json_array_get_element(errors, i);
    if (!JSON_NODE_HOLDS_OBJECT(node)) continue;
    JsonObject *e = json_node_get_object(node);
    MetaError error;
    error.code = int_member(e, "code", 0);
    error.title = string_member(e, "title");
    error.message = string_member(e, "message");
    error.details = string_member(object_member(e, "error_data"), "details");
    out.push_back(std::move(error));
  }
  return out;
}

// connection.webrtc.sdp, the legacy field: a JSON-serialised {"sdp":…,"type":…} string, or (in
// some samples) the SDP itself.
void read_legacy_sdp(JsonObject *call, CallEvent *event) {
  std::string text = string_member(object_member(object_member(call, "connection"), "webrtc"), "sdp");
  if (text.empty()) return;
  if (text.rfind("v=", 0) == 0) {
    event->sdp = text;
    event->legacy_sdp = true;
    return;
  }
  // A JSON text inside the (already checked) body: the string hid its brackets from the body's
  // depth check, so it gets its own. A refused one leaves the event without an SDP, which the
  // call flow reports and rejects like any connect without an offer.
  std::string why;
  JsonNode *root = parse_untrusted_json(text.data(), text.size(), &why);
  if (!root) return;
  if (JSON_NODE_HOLDS_OBJECT(root)) {
    JsonObject *o = json_node_get_object(root);
    event->sdp = string_member(o, "sdp");
    if (event->sdp_type.empty()) event->sdp_type = string_member(o, "type");
    event->legacy_sdp = !event->sdp.empty();
  }
  json_node_unref(root);
}

// contacts[]: the profile name of the caller (matched on wa_id, else the only contact).
std::string caller_name_for(JsonArray *contacts, const std::string &from) {
  if (!contacts) return "";
  guint n = json_array_get_length(contacts);
  std::string only;
  for (guint i = 0; i < n; i++) {
    JsonNode *node = json_array_get_element(contacts, i);
    if (!JSON_NODE_HOLDS_OBJECT(node)) continue;
    JsonObject *c = json_node_get_object(node);
    std::string name = string_member(object_member(c, "profile"), "name");
    if (!from.empty() && string_member(c, "wa_id") == from) return name;
    if (n == 1) only = name;
  }
  return only;
}

void parse_call(JsonObject *c, JsonArray *contacts, const std::string &phone_number_id, Webhook *out) {
  CallEvent e;
  e.id = string_member(c, "id");
  e.event = string_member(c, "event");
  e.direction = string_member(c, "direction");
  e.from = string_member(c, "from");
  e.to = string_member(c, "to");
  e.timestamp = seconds_member(c, "timestamp");
  e.status = string_member(c, "status");
  e.duration = int_member(c, "duration", -1);
  e.phone_number_id = phone_number_id;
  // session is the current field; connection.webrtc.sdp is read only when session is absent.
  if (JsonObject *session = object_member(c, "session")) {
    e.sdp = string_member(session, "sdp");
    e.sdp_type = string_member(session, "sdp_type");
  } else {
    read_legacy_sdp(c, &e);
  }
  e.caller_name = caller_name_for(contacts, e.from);
  e.errors = parse_errors(c);
  out->calls.push_back(std::move(e));
}

void parse_status(JsonObject *s, const std::string &phone_number_id, Webhook *out) {
  StatusEvent e;
  e.id = string_member(s, "id");
  e.type = string_member(s, "type");
  e.status = string_member(s, "status");
  e.recipient_id = string_member(s, "recipient_id");
  e.timestamp = seconds_member(s, "timestamp");
  e.phone_number_id = phone_number_id;
  e.errors = parse_errors(s);
  out->statuses.push_back(std::move(e));
}

void parse_value(JsonObject *value, Webhook *out) {
  std::string phone_number_id = string_member(object_member(value, "metadata"), "phone_number_id");
  JsonArray *contacts = array_member(value, "contacts");
  std::vector<std::string> ids;
  if (JsonArray *calls = array_member(value, "calls")) {
    guint n = json_array_get_length(calls);
    for (guint i = 0; i < n; i++) {
      JsonNode *node = json_array_get_element(calls, i);
      if (!JSON_NODE_HOLDS_OBJECT(node)) continue;
      parse_call(json_node_get_object(node), contacts, phone_number_id, out);
      ids.push_back(out->calls.back().id);
    }
  }
  if (JsonArray *statuses = array_member(value, "statuses")) {
    guint n = json_array_get_length(statuses);
    for (guint i = 0; i < n; i++) {
      JsonNode *node = json_array_get_element(statuses, i);
      if (!JSON_NODE_HOLDS_OBJECT(node)) continue;
      parse_status(json_node_get_object(node), phone_number_id, out);
      ids.push_back(out->statuses.back().id);
    }
  }
  std::vector<MetaError> errors = parse_errors(value);
  if (!errors.empty()) {
    ValueErrors v;
    v.phone_number_id = phone_number_id;
    v.call_ids = std::move(ids);
    v.errors = std::move(errors);
    // The value's own text identifies a repeated delivery of an error that names no call.
    JsonNode *node = json_node_alloc();
    json_node_init_object(node, value);
    gchar *text = json_to_string(node, FALSE);
    json_node_unref(node);
    gchar *sum = g_compute_checksum_for_string(G_CHECKSUM_SHA256, text, -1);
    v.digest = sum;
    g_free(sum);
    g_free(text);
    out->errors.push_back(std::move(v));
  }
}

}  // namespace

bool parse_webhook(const char *body, size_t size, Webhook *out, std::string *error) {
  *out = Webhook();
  if (!body || size == 0) {
    *error = "empty body";
    return false;
  }
  // Depth and strictness are checked before json-glib sees the body (request-util.h): the
  // signature only proves the sender holds the app secret, not that the body is sane.
  std::string why;
  JsonNode *root = parse_untrusted_json(body, size, &why);
  if (!root) {
    *error = "the body is " + why;
    return false;
  }
  if (!JSON_NODE_HOLDS_OBJECT(root)) {
    *error = "not a JSON object";
    json_node_unref(root);
    return false;
  }
  JsonArray *entries = array_member(json_node_get_object(root), "entry");
  guint n_entries = entries ? json_array_get_length(entries) : 0;
  for (guint i = 0; i < n_entries; i++) {
    JsonNode *entry = json_array_get_element(entries, i);
    if (!JSON_NODE_HOLDS_OBJECT(entry)) continue;
    JsonArray *changes = array_member(json_node_get_object(entry), "changes");
    guint n_changes = changes ? json_array_get_length(changes) : 0;
    for (guint j = 0; j < n_changes; j++) {
      JsonNode *change = json_array_get_element(changes, j);
      JsonObject *c = JSON_NODE_HOLDS_OBJECT(change) ? json_node_get_object(change) : nullptr;
      std::string field = string_member(c, "field");
      JsonObject *value = object_member(c, "value");
      // Only the calls field carries calling events; a missing field name is read as calls (the
      // content decides), other fields (messages, account updates) are not ours.
      if (!value || (!field.empty() && field != "calls")) {
        out->ignored_changes++;
        continue;
      }
      parse_value(value, out);
    }
  }
  json_node_unref(root);
  return true;
}

// ---- Delivery rules --------------------------------------------------------------------------

std::string SeenEvents::key(const std::string &id, const std::string &event) {
  // '\n' never occurs in ids or event names we produce, so the pair maps to one key.
  return id + '\n' + event;
}

bool SeenEvents::first_time(const std::string &id, const std::string &event) {
  std::string k = key(id, event);
  if (keys_.count(k)) return false;
  keys_.insert(k);
  order_.push_back(std::move(k));
  while (order_.size() > capacity_) {
    keys_.erase(order_.front());
    order_.pop_front();
  }
  return true;
}

bool SeenEvents::contains(const std::string &id, const std::string &event) const {
  return keys_.count(key(id, event)) > 0;
}

bool is_stale(long long event_timestamp, long long now_s, long long max_age_s) {
  return event_timestamp > 0 && now_s - event_timestamp > max_age_s;
}

}  // namespace wa
}  // namespace vb
