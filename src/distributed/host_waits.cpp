#include "largedet/distributed/host_waits.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <mutex>
#include <optional>

#include "largedet/core/error.h"

namespace largedet::distributed {
namespace {

std::mutex counts_mutex;
std::optional<HostWaitCounts> active;  // guarded by counts_mutex
std::atomic<bool> counting{false};

bool c10d_true(std::string value) {
  std::transform(value.begin(), value.end(), value.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return value == "y" || value == "yes" || value == "1" || value == "t" || value == "true";
}

}  // namespace

bool waits_block_host(const std::string& backend, const std::vector<NcclEnvSetting>& nccl_env) {
  if (backend != "nccl") return true;
  return std::any_of(nccl_env.begin(), nccl_env.end(), [](const NcclEnvSetting& s) {
    return (s.name == "TORCH_NCCL_BLOCKING_WAIT" || s.name == "NCCL_BLOCKING_WAIT") &&
           c10d_true(s.value);
  });
}

void note_host_wait(const std::string& op) {
  if (!counting.load(std::memory_order_relaxed)) return;
  std::lock_guard<std::mutex> lock(counts_mutex);
  if (!active) return;
  ++active->waits;
  ++active->by_op[op];
}

HostWaitCounter::HostWaitCounter() {
  std::lock_guard<std::mutex> lock(counts_mutex);
  LARGEDET_CHECK(!active,
                 "HostWaitCounter: one counter at a time; end the first before starting another");
  active.emplace();
  counting = true;
}

HostWaitCounter::~HostWaitCounter() {
  std::lock_guard<std::mutex> lock(counts_mutex);
  counting = false;
  active.reset();
}

HostWaitCounts HostWaitCounter::counts() const {
  std::lock_guard<std::mutex> lock(counts_mutex);
  return *active;
}

}  // namespace largedet::distributed
