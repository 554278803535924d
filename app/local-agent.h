// The built-in local agent: with neither OPENAI_API_KEY nor OPENAI_REALTIME_URL set, calls are
// answered by an in-process peer that speaks the Realtime protocol on a loopback port, so that a
// first call works with no account. It greets the caller with a chime and then says back each
// turn of the caller, as heard (an echo), which makes the whole path audible: caller → WebRTC →
// Opus → the bridge → Realtime protocol → the bridge → Opus → WebRTC → caller.
#pragma once

#include <memory>
#include <string>

namespace fake_realtime {
class Server;
}

namespace vb {

class LocalAgent {
 public:
  LocalAgent();
  ~LocalAgent();
  bool start(std::string *error);
  std::string url() const;

 private:
  std::unique_ptr<fake_realtime::Server> server_;
};

}  // namespace vb
