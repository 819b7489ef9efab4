// Entry point of the multi-tensor LAMB kernels (src/solver/cuda/lamb_multi_tensor.cu), called by
// detail::multi_tensor_lamb_update only when the build has CUDA (LARGEDET_WITH_CUDA). ATen types
// only, so that plain C++ sources can include it. Private to the solver layer.
#pragma once

#include <vector>

#include "../lamb_kernels.h"

namespace largedet::solver::cuda {

// Every update's tensors on one CUDA device, float32 and contiguous
// (detail::multi_tensor_lamb_applies): the same step as detail::fused_lamb_update for each, in
// three kernel launches and one host-to-device copy of their arguments, whatever their number.
void multi_tensor_lamb_update(const std::vector<detail::LambUpdate>& updates);

}  // namespace largedet::solver::cuda
