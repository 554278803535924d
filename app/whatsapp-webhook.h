// What arrives on POST /whatsapp/webhook (docs/whatsapp-calling.md §2): the signature check
// (HMAC-SHA256 of the raw body with the app secret), the parsing of Meta's envelope into typed
// events, and the delivery rules Meta leaves to us: duplicates, stale retries and out-of-order
// events. Pure functions and one small container; no I/O, so all of it is unit-tested and fuzzed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>

#include "request-util.h"
#include <unordered_set>
#include <vector>

namespace vb {
namespace wa {

// ---- Signature -------------------------------------------------------------------------------

// Constant-time comparison (shared with the HTTP API's token check).
using vb::constant_time_equal;

// Lower-case hex HMAC-SHA256 of data with key.
std::string hmac_sha256_hex(const std::string &key, const char *data, size_t size);

enum class Signature { Valid, Missing, Malformed, Mismatch };
const char *signature_name(Signature s);

// Checks X-Hub-Signature-256 ("sha256=<64 hex>") against the raw body. Hex case is ignored.
Signature check_signature(const std::string &app_secret, const std::string &header, const char *body, size_t size);

// ---- Events ------------------------------------------------------------------------------------

// One entry of an `errors` array, at call or value level.
struct MetaError {
  long long code = 0;
  std::string title;
  std::string message;
  std::string details;  // error_data.details
};

// Meta's meaning of a calling error code (docs/whatsapp-calling.md §3.1), or nullptr if unknown.
const char *meta_error_meaning(long long code);
// "138021 (media receive timeout: …)" for logs.
std::string describe_meta_error(const MetaError &error);

// calls[] item: event "connect" or "terminate" (other events are kept with their name).
struct CallEvent {
  std::string id;         // wacid.…
  std::string event;      // "connect", "terminate", …
  std::string direction;  // USER_INITIATED / BUSINESS_INITIATED (may be empty)
  std::string from, to;
  long long timestamp = 0;  // Unix seconds; 0 when absent or unreadable
  std::string sdp;          // session.sdp (or the legacy connection.webrtc.sdp when session is absent)
  std::string sdp_type;     // "offer" / "answer" ("" when not given)
  bool legacy_sdp = false;  // the SDP came from connection.webrtc.sdp
  std::string status;       // terminate: COMPLETED / FAILED
  long long duration = -1;  // terminate: seconds, when the call was picked up
  std::string caller_name;  // contacts[].profile.name of `from` (or the only contact)
  std::string phone_number_id;  // metadata of the enclosing value
  std::vector<MetaError> errors;

  bool user_initiated() const;      // an inbound call (offer from the WhatsApp user)
  bool business_initiated() const;  // the answer to one of our calls
};

// statuses[] item (business-initiated calls): RINGING, ACCEPTED, REJECTED.
struct StatusEvent {
  std::string id;
  std::string type;    // "call" for calls (message statuses share the array shape)
  std::string status;
  std::string recipient_id;
  long long timestamp = 0;
  std::string phone_number_id;
  std::vector<MetaError> errors;
};

// errors[] of a value, with where they came from.
struct ValueErrors {
  std::string phone_number_id;
  std::string digest;              // identifies this value's content, for de-duplication
  std::vector<std::string> call_ids;  // the ids of the calls/statuses beside them (may be empty)
  std::vector<MetaError> errors;
};

struct Webhook {
  std::vector<CallEvent> calls;
  std::vector<StatusEvent> statuses;
  std::vector<ValueErrors> errors;
  int ignored_changes = 0;  // changes of other fields, or without a usable value
};

// Parses a webhook body. Never fails on content: missing or mistyped members are skipped (each
// entry, change, call and status on its own). Returns false only when the body is not a JSON
// object (or nests absurdly deep), with *error for the log.
bool parse_webhook(const char *body, size_t size, Webhook *out, std::string *error);

// ---- Delivery rules --------------------------------------------------------------------------

// A bounded memory of the (call id, event) pairs already seen. Meta retries webhooks (duplicates)
// and does not order them (a terminate may come before its connect): one memory answers both.
class SeenEvents {
 public:
  explicit SeenEvents(size_t capacity = 4096) : capacity_(capacity) {}
  // Records the pair; true the first time, false for a duplicate. The oldest pair is forgotten
  // once capacity is reached.
  bool first_time(const std::string &id, const std::string &event);
  bool contains(const std::string &id, const std::string &event) const;
  size_t size() const { return order_.size(); }

 private:
  static std::string key(const std::string &id, const std::string &event);
  size_t capacity_;
  std::unordered_set<std::string> keys_;
  std::deque<std::string> order_;
};

// An event older than max_age_s (by its own timestamp) is a stale retry. Events without a
// timestamp (0) are not stale: they are processed rather than lost.
bool is_stale(long long event_timestamp, long long now_s, long long max_age_s);

}  // namespace wa
}  // namespace vb
