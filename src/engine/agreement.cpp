#include "largedet/engine/agreement.h"

#include <ATen/ATen.h>

#include <exception>

#include "largedet/core/error.h"
#include "largedet/distributed/collectives.h"

namespace largedet::engine {

void run_and_agree(distributed::ProcessGroup* group, bool run_here, const std::string& what,
                   const std::function<void()>& work) {
  std::exception_ptr error;
  if (run_here) {
    try {
      work();
    } catch (...) {
      error = std::current_exception();
    }
  }
  auto failed = at::full({1}, error ? 1.0 : 0.0, at::kDouble);
  distributed::all_reduce_sum(failed, group);
  if (error) std::rethrow_exception(error);
  if (failed.item<double>() > 0) {
    throw Error(what + " failed on another rank",
                "rank " + std::to_string(group ? group->rank() : 0),
                "that rank's error is in the log above");
  }
}

}  // namespace largedet::engine
