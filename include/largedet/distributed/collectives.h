// The collectives the rest of LargeDet needs, on a group or (null) the default group; with no
// group at all they behave as a world of one. Tensors may live anywhere: they are staged through
// the group's device when needed.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "largedet/distributed/process_group.h"

namespace largedet::distributed {

// In place: every rank ends with the sum / the mean over ranks (floating tensors for the mean).
void all_reduce_sum(const at::Tensor& tensor, ProcessGroup* group = nullptr);
void all_reduce_mean(const at::Tensor& tensor, ProcessGroup* group = nullptr);
// In place: every rank ends with `root`'s values (same shape and type on every rank).
void broadcast(const at::Tensor& tensor, int root = 0, ProcessGroup* group = nullptr);
// Every rank's blob, indexed by rank; blobs may differ in size, empty ones included. Used to
// gather per-rank detections (serialised) for evaluation.
std::vector<std::string> all_gather_bytes(const std::string& blob, ProcessGroup* group = nullptr);
// Like all_gather_bytes, but only `root` gets the blobs; the others get an empty vector.
std::vector<std::string> gather_bytes(const std::string& blob, int root = 0,
                                      ProcessGroup* group = nullptr);
void barrier(ProcessGroup* group = nullptr);

}  // namespace largedet::distributed
