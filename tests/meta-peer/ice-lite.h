// The ICE-lite side of Meta's relay (RFC 8445 §2.5, whatsapp-calling.md §5): it never sends a
// connectivity check, it only answers Binding requests, and it is always controlled.
//
// A request is answered with a success response (XOR-MAPPED-ADDRESS, MESSAGE-INTEGRITY keyed with the
// peer's ice-pwd, FINGERPRINT) only if it is authenticated with short-term credentials: USERNAME
// "<peer ufrag>:<bridge ufrag>" and MESSAGE-INTEGRITY keyed with the peer's pwd. Otherwise:
//   - no USERNAME/MESSAGE-INTEGRITY, no FINGERPRINT or magic cookie, no PRIORITY, no role → 400
//   - wrong username or integrity → 401
//   - unknown comprehension-required attribute → 420
//   - ICE-CONTROLLED (the bridge thinks it is controlled) → 487 Role Conflict: a lite agent cannot
//     take the controlling role, and Meta answers 487 (FreeSWITCH issue 2904 logs).
// A valid request with USE-CANDIDATE and ICE-CONTROLLING nominates the pair: the source address of
// that request becomes where the peer sends media.
//
// Checks that arrive before the bridge's ufrag is known (the bridge starts checking at its
// set-local-description, before Meta has its answer) are dropped silently by default: Meta's FAQ
// says checks "only converge after Meta has the answer". Not thread-safe; the owner serialises.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <stun/stunagent.h>

namespace meta_peer {

struct IceCounters {
  int requests = 0;          // Binding requests seen (valid or not)
  int answered = 0;          // success responses sent
  int rejected_400 = 0;
  int rejected_401 = 0;
  int rejected_420 = 0;
  int rejected_487 = 0;
  int ignored_early = 0;     // dropped: the bridge's ufrag was not known yet
  int ignored_other = 0;     // indications, responses, non-Binding methods, garbage
  int use_candidate = 0;     // valid requests that carried USE-CANDIDATE
  bool saw_controlling = false;  // some valid request carried ICE-CONTROLLING
  bool saw_controlled = false;   // some request carried ICE-CONTROLLED (answered 487)
  int requests_sent = 0;     // Binding requests the peer sent itself: always 0 for a lite agent
};

struct IceVerdict {
  std::vector<uint8_t> reply;  // what to send back to the request's source (empty: nothing)
  bool valid = false;          // an authenticated, well-formed request that got a success response
  bool nominated = false;      // valid + USE-CANDIDATE + ICE-CONTROLLING
  int error_code = 0;          // the error response's code, if one was sent
};

class IceLiteResponder {
 public:
  IceLiteResponder();
  IceLiteResponder(const IceLiteResponder &) = delete;
  IceLiteResponder &operator=(const IceLiteResponder &) = delete;

  void set_local_credentials(const std::string &ufrag, const std::string &pwd);
  void set_remote_ufrag(const std::string &ufrag);
  // true: answer checks before the bridge's ufrag is known, checking only our half of USERNAME.
  void set_answer_before_remote(bool answer) { answer_before_remote_ = answer; }

  // One datagram whose first byte said STUN (RFC 7983). from/from_len: its native source address.
  IceVerdict handle(const uint8_t *data, size_t len, const struct sockaddr_storage *from, socklen_t from_len);

  const IceCounters &counters() const { return counters_; }

 private:
  static bool validate_username(StunAgent *agent, StunMessage *message, uint8_t *username, uint16_t username_len,
                                uint8_t **password, size_t *password_len, void *user_data);
  std::vector<uint8_t> error_reply(StunMessage *request, StunError code);

  StunAgent agent_;
  std::string local_ufrag_;
  std::string local_pwd_;
  std::string remote_ufrag_;
  bool answer_before_remote_ = false;
  IceCounters counters_;
};

}  // namespace meta_peer
