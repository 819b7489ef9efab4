#include "lamb_kernels.h"

#include <ATen/ATen.h>
#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

#include "largedet/core/error.h"
#include "largedet/tensor/parallel.h"

#ifdef LARGEDET_WITH_CUDA
#include "cuda/lamb_cuda.h"
#endif

namespace largedet::solver::detail {
namespace {

// Fixed-size chunks make the norm reduction order, and so the result, independent of the number
// of threads: a run resumed with other threads still ends bit for bit where it would have.
constexpr int64_t kChunk = 1 << 14;
constexpr int64_t kBlock = 256;
constexpr int kLanes = 16;

// The element-wise work is compiled for AVX-512, AVX2/FMA and baseline x86-64; the loader picks
// the best the CPU has (GCC function multiversioning), as ATen's own CPU kernels do by dispatch.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define LARGEDET_MULTIVERSION \
  __attribute__((target_clones("arch=skylake-avx512", "arch=haswell", "default")))
#else
#define LARGEDET_MULTIVERSION
#endif

struct Constants {
  float a1, b1, a2, b2, s1, s2, eps, wd;
};

// Sum of squares of at most kBlock floats: independent lane accumulators (vectorisable without
// -ffast-math), then double across lanes.
inline double sum_of_squares(const float* x, int64_t len) {
  float lanes[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= len; i += kLanes)
    for (int k = 0; k < kLanes; ++k) lanes[k] += x[i + k] * x[i + k];
  double total = 0;
  for (; i < len; ++i) total += static_cast<double>(x[i]) * x[i];
  for (int k = 0; k < kLanes; ++k) total += lanes[k];
  return total;
}

// Pass 1 over one block: moments in place; adds ||w||^2 and ||u||^2 of the block.
LARGEDET_MULTIVERSION
void moments_block(const Constants& c, float* __restrict w, const float* __restrict g,
                   float* __restrict m, float* __restrict v, int64_t len, double* w_sq,
                   double* u_sq) {
  float u[kBlock];
  for (int64_t i = 0; i < len; ++i) {
    const float mi = c.a1 * m[i] + c.b1 * g[i];
    const float vi = c.a2 * v[i] + c.b2 * g[i] * g[i];
    m[i] = mi;
    v[i] = vi;
    u[i] = (mi * c.s1) / (std::sqrt(vi * c.s2) + c.eps) + c.wd * w[i];
  }
  *w_sq += sum_of_squares(w, len);
  *u_sq += sum_of_squares(u, len);
}

// Pass 2 over a range: recompute u from the new moments (cheaper than storing it) and apply it.
LARGEDET_MULTIVERSION
void apply_range(const Constants& c, float step, float* __restrict w, const float* __restrict m,
                 const float* __restrict v, int64_t len) {
  for (int64_t i = 0; i < len; ++i) {
    const float u = (m[i] * c.s1) / (std::sqrt(v[i] * c.s2) + c.eps) + c.wd * w[i];
    w[i] -= step * u;
  }
}

double trust_ratio(double w_norm, double u_norm, const LambCoefficients& c) {
  if (!c.trust_ratio) return 1.0;
  double r = (w_norm == 0 || u_norm == 0) ? 1.0 : w_norm / u_norm;
  return c.trust_clip > 0 ? std::min(r, c.trust_clip) : r;
}

}  // namespace

bool fused_lamb_applies(const at::Tensor& w, const at::Tensor& g, const at::Tensor& m,
                        const at::Tensor& v) {
  for (const at::Tensor* t : {&w, &g, &m, &v}) {
    if (!t->device().is_cpu() || t->scalar_type() != at::kFloat || !t->is_contiguous())
      return false;
  }
  return true;
}

void fused_lamb_update(at::Tensor& w, const at::Tensor& g, at::Tensor& m, at::Tensor& v,
                       const LambCoefficients& c) {
  const int64_t n = w.numel();
  float* wp = w.data_ptr<float>();
  const float* gp = g.data_ptr<float>();
  float* mp = m.data_ptr<float>();
  float* vp = v.data_ptr<float>();
  const Constants k{static_cast<float>(c.first_decay),  static_cast<float>(c.first_gain),
                    static_cast<float>(c.second_decay), static_cast<float>(c.second_gain),
                    static_cast<float>(c.first_scale),  static_cast<float>(c.second_scale),
                    static_cast<float>(c.eps),          static_cast<float>(c.weight_decay)};
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> w_sq(chunks), u_sq(chunks);
  at::parallel_for(0, chunks, 1, [&](int64_t first, int64_t last) {
    for (int64_t chunk = first; chunk < last; ++chunk) {
      const int64_t chunk_end = std::min(n, (chunk + 1) * kChunk);
      double ws = 0, us = 0;
      for (int64_t begin = chunk * kChunk; begin < chunk_end; begin += kBlock) {
        const int64_t len = std::min<int64_t>(kBlock, chunk_end - begin);
        moments_block(k, wp + begin, gp + begin, mp + begin, vp + begin, len, &ws, &us);
      }
      w_sq[chunk] = ws;
      u_sq[chunk] = us;
    }
  });
  double w_norm = 0, u_norm = 0;
  for (int64_t chunk = 0; chunk < chunks; ++chunk) {
    w_norm += w_sq[chunk];
    u_norm += u_sq[chunk];
  }
  const float step = c.lr * trust_ratio(std::sqrt(w_norm), std::sqrt(u_norm), c);
  at::parallel_for(0, n, kChunk, [&](int64_t begin, int64_t end) {
    apply_range(k, step, wp + begin, mp + begin, vp + begin, end - begin);
  });
}

void aten_lamb_update(at::Tensor& w, const at::Tensor& g, at::Tensor& m, at::Tensor& v,
                      const LambCoefficients& c) {
  m.mul_(c.first_decay).add_(g, c.first_gain);
  v.mul_(c.second_decay).addcmul_(g, g, c.second_gain);
  at::Tensor u = (m * c.first_scale) / ((v * c.second_scale).sqrt_().add_(c.eps));
  if (c.weight_decay != 0) u.add_(w, c.weight_decay);
  if (!c.trust_ratio) {
    w.sub_(u, c.lr);
    return;
  }
  at::Tensor w_norm = w.norm(), u_norm = u.norm();
  at::Tensor r =
      at::where((w_norm > 0).logical_and(u_norm > 0), w_norm / u_norm, at::ones_like(w_norm));
  if (c.trust_clip > 0) r.clamp_max_(c.trust_clip);
  w.sub_(u * (r * c.lr));
}

bool multi_tensor_lamb_applies(const at::Tensor& w, const at::Tensor& g, const at::Tensor& m,
                               const at::Tensor& v) {
#ifdef LARGEDET_WITH_CUDA
  for (const at::Tensor* t : {&w, &g, &m, &v}) {
    if (!t->is_cuda() || t->device() != w.device() || t->scalar_type() != at::kFloat ||
        !t->is_contiguous())
      return false;
  }
  return true;
#else
  return false;
#endif
}

void multi_tensor_lamb_update(const std::vector<LambUpdate>& updates) {
#ifdef LARGEDET_WITH_CUDA
  // A launch's arguments address one device's memory.
  std::map<c10::DeviceIndex, std::vector<LambUpdate>> by_device;
  for (const auto& u : updates) by_device[u.w.device().index()].push_back(u);
  for (const auto& [device, batch] : by_device) cuda::multi_tensor_lamb_update(batch);
#else
  LARGEDET_CHECK(updates.empty(), "LAMB: multi-tensor CUDA update in a build without CUDA kernels");
#endif
}

}  // namespace largedet::solver::detail
