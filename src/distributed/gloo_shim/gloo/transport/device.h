// See ../../README.md (gloo_shim): declarations only, enough for ProcessGroupGloo.hpp.
#pragma once

namespace gloo::transport {
class Device;
// Complete (and empty) so that std::unique_ptr<UnboundBuffer> members compile; never instantiated.
class UnboundBuffer {
 public:
  virtual ~UnboundBuffer() = default;
};
}  // namespace gloo::transport
