// Work that some ranks do while the others wait in the next collective (rank 0 writing a
// checkpoint, scoring an evaluation; every rank loading a checkpoint). Should it fail on one rank,
// the others would hang in that collective until the timeout. run_and_agree() runs it, then all
// ranks agree in one small allreduce whether it succeeded everywhere, so that every rank fails
// together: the failing rank with its own error, the others with an error that points to it.
#pragma once

#include <functional>
#include <string>

#include "largedet/distributed/process_group.h"

namespace largedet::engine {

// `run_here`: whether this rank does `work`. Every rank of `group` must call this.
void run_and_agree(distributed::ProcessGroup* group, bool run_here, const std::string& what,
                   const std::function<void()>& work);

}  // namespace largedet::engine
