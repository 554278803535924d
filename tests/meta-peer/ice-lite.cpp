#include "ice-lite.h"

#include <stun/stunmessage.h>

namespace meta_peer {

namespace {
constexpr size_t kReplyMax = 1024;  // a Binding response with XOR-MAPPED-ADDRESS, MI, FINGERPRINT is < 100 bytes
}

IceLiteResponder::IceLiteResponder() {
  // RFC 5389 framing with short-term credentials and FINGERPRINT on everything we send: what an
  // RFC 8445 agent (and libnice inside webrtcbin) expects from a peer.
  stun_agent_init(&agent_, STUN_ALL_KNOWN_ATTRIBUTES, STUN_COMPATIBILITY_RFC5389,
                  (StunAgentUsageFlags)(STUN_AGENT_USAGE_SHORT_TERM_CREDENTIALS | STUN_AGENT_USAGE_USE_FINGERPRINT));
}

void IceLiteResponder::set_local_credentials(const std::string &ufrag, const std::string &pwd) {
  local_ufrag_ = ufrag;
  local_pwd_ = pwd;
}

void IceLiteResponder::set_remote_ufrag(const std::string &ufrag) { remote_ufrag_ = ufrag; }

bool IceLiteResponder::validate_username(StunAgent *, StunMessage *, uint8_t *username, uint16_t username_len,
                                         uint8_t **password, size_t *password_len, void *user_data) {
  auto *self = static_cast<IceLiteResponder *>(user_data);
  // RFC 8445 §7.2.2: USERNAME is "<receiver's ufrag>:<sender's ufrag>".
  std::string got(reinterpret_cast<const char *>(username), username_len);
  std::string prefix = self->local_ufrag_ + ":";
  if (self->local_ufrag_.empty() || got.compare(0, prefix.size(), prefix) != 0) return false;
  if (!self->remote_ufrag_.empty() && got.substr(prefix.size()) != self->remote_ufrag_) return false;
  *password = reinterpret_cast<uint8_t *>(self->local_pwd_.data());
  *password_len = self->local_pwd_.size();
  return true;
}

std::vector<uint8_t> IceLiteResponder::error_reply(StunMessage *request, StunError code) {
  uint8_t buf[kReplyMax];
  StunMessage reply;
  if (!stun_agent_init_error(&agent_, &reply, buf, sizeof buf, request, code)) return {};
  // An unauthenticated request gets an unauthenticated error (RFC 5389 §10.1.2): request->key is
  // unset then, and init_error copied it.
  size_t len = stun_agent_finish_message(&agent_, &reply, nullptr, 0);
  switch (code) {
    case STUN_ERROR_BAD_REQUEST: counters_.rejected_400++; break;
    case STUN_ERROR_UNAUTHORIZED: counters_.rejected_401++; break;
    case STUN_ERROR_ROLE_CONFLICT: counters_.rejected_487++; break;
    default: break;
  }
  return std::vector<uint8_t>(buf, buf + len);
}

IceVerdict IceLiteResponder::handle(const uint8_t *data, size_t len, const struct sockaddr_storage *from,
                                    socklen_t from_len) {
  IceVerdict v;
  StunMessage msg;
  StunValidationStatus status = stun_agent_validate(&agent_, &msg, data, len, &IceLiteResponder::validate_username, this);
  if (status == STUN_VALIDATION_NOT_STUN || status == STUN_VALIDATION_INCOMPLETE_STUN) {
    counters_.ignored_other++;
    return v;
  }
  // From here msg is a parsed STUN message. Only Binding requests get answers; libnice's keepalives
  // are Binding indications, and a lite agent never has requests of its own to match responses to.
  if (stun_message_get_class(&msg) != STUN_REQUEST || stun_message_get_method(&msg) != STUN_BINDING) {
    counters_.ignored_other++;
    return v;
  }
  counters_.requests++;
  if (remote_ufrag_.empty() && !answer_before_remote_) {
    counters_.ignored_early++;
    return v;
  }

  switch (status) {
    case STUN_VALIDATION_SUCCESS:
      break;
    case STUN_VALIDATION_BAD_REQUEST:
    case STUN_VALIDATION_UNAUTHORIZED_BAD_REQUEST:
      v.error_code = 400;
      v.reply = error_reply(&msg, STUN_ERROR_BAD_REQUEST);
      return v;
    case STUN_VALIDATION_UNAUTHORIZED:
      v.error_code = 401;
      v.reply = error_reply(&msg, STUN_ERROR_UNAUTHORIZED);
      return v;
    case STUN_VALIDATION_UNKNOWN_REQUEST_ATTRIBUTE: {
      uint8_t buf[kReplyMax];
      StunMessage reply;
      size_t n = stun_agent_build_unknown_attributes_error(&agent_, &reply, buf, sizeof buf, &msg);
      counters_.rejected_420++;
      v.error_code = 420;
      v.reply.assign(buf, buf + n);
      return v;
    }
    default:
      counters_.ignored_other++;
      return v;
  }

  uint64_t tie_breaker = 0;
  bool controlling = stun_message_find64(&msg, STUN_ATTRIBUTE_ICE_CONTROLLING, &tie_breaker) == STUN_MESSAGE_RETURN_SUCCESS;
  bool controlled = stun_message_find64(&msg, STUN_ATTRIBUTE_ICE_CONTROLLED, &tie_breaker) == STUN_MESSAGE_RETURN_SUCCESS;
  uint32_t priority = 0;
  bool has_priority = stun_message_find32(&msg, STUN_ATTRIBUTE_PRIORITY, &priority) == STUN_MESSAGE_RETURN_SUCCESS;
  bool use_candidate = stun_message_find_flag(&msg, STUN_ATTRIBUTE_USE_CANDIDATE) == STUN_MESSAGE_RETURN_SUCCESS;

  if (controlled) {
    counters_.saw_controlled = true;
    v.error_code = 487;
    v.reply = error_reply(&msg, STUN_ERROR_ROLE_CONFLICT);
    return v;
  }
  if (!controlling || !has_priority) {  // RFC 8445 §7.1.1–7.1.3: both are mandatory in a check
    v.error_code = 400;
    v.reply = error_reply(&msg, STUN_ERROR_BAD_REQUEST);
    return v;
  }

  uint8_t buf[kReplyMax];
  StunMessage reply;
  if (!stun_agent_init_response(&agent_, &reply, buf, sizeof buf, &msg) ||
      stun_message_append_xor_addr(&reply, STUN_ATTRIBUTE_XOR_MAPPED_ADDRESS, from, from_len) !=
          STUN_MESSAGE_RETURN_SUCCESS) {
    counters_.ignored_other++;
    return v;
  }
  size_t n = stun_agent_finish_message(&agent_, &reply, reinterpret_cast<const uint8_t *>(local_pwd_.data()),
                                       local_pwd_.size());
  if (n == 0) {
    counters_.ignored_other++;
    return v;
  }
  counters_.answered++;
  counters_.saw_controlling = true;
  if (use_candidate) counters_.use_candidate++;
  v.valid = true;
  v.nominated = use_candidate;
  v.reply.assign(buf, buf + n);
  return v;
}

}  // namespace meta_peer
