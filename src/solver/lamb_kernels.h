// The per-tensor LAMB update, shared by the optimizer and the benchmark. Private to the solver.
#pragma once

#include <ATen/Tensor.h>

#include <vector>

namespace largedet::solver::detail {

// Coefficients of one update of one tensor:
//   m = first_decay m + first_gain g',  v = second_decay v + second_gain g'^2,  g' = g
//   u = (m * first_scale) / (sqrt(v * second_scale) + eps) + weight_decay w
//   w -= lr * r * u, r = ||w|| / ||u|| (1 if either is 0, min(r, trust_clip) if trust_clip > 0)
struct LambCoefficients {
  double first_decay, first_gain, second_decay, second_gain;
  double first_scale, second_scale;  // 1 / bias normaliser
  double eps, weight_decay, lr, trust_clip;
  bool trust_ratio;
};

// True when the fused CPU kernel applies (all CPU, contiguous, float32).
bool fused_lamb_applies(const at::Tensor& w, const at::Tensor& g, const at::Tensor& m,
                        const at::Tensor& v);
// Two passes: moments, direction and both norms; then the update. Updates w, m and v in place.
void fused_lamb_update(at::Tensor& w, const at::Tensor& g, at::Tensor& m, at::Tensor& v,
                       const LambCoefficients& c);
// The same update as a composition of ATen ops (any device; no host synchronisation).
void aten_lamb_update(at::Tensor& w, const at::Tensor& g, at::Tensor& m, at::Tensor& v,
                      const LambCoefficients& c);

// One tensor's update, queued for the multi-tensor CUDA kernel.
struct LambUpdate {
  at::Tensor w, g, m, v;
  LambCoefficients c;
};

// True when the multi-tensor CUDA kernel applies: a build with CUDA kernels, all four tensors on
// one CUDA device, float32 and contiguous. (Reduced-precision parameters take the ATen
// composition: the kernel reads and writes float only.)
bool multi_tensor_lamb_applies(const at::Tensor& w, const at::Tensor& g, const at::Tensor& m,
                               const at::Tensor& v);
// Applies every queued update: per CUDA device, three kernel launches whatever the number of
// tensors, and no host synchronisation.
void multi_tensor_lamb_update(const std::vector<LambUpdate>& updates);

}  // namespace largedet::solver::detail
