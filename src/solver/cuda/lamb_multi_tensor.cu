// LAMB / PMD-LAMB over many tensors of one device in three launches (docs/solver.md, "Multi-tensor
// CUDA kernel"), the math of the fused CPU kernel (src/solver/lamb_kernels.cpp) element for
// element. Every tensor is cut into kChunk-element chunks, one block per chunk of any tensor:
//   1 moments_kernel  updates m and v and writes its chunk's sums of w^2 and u^2 to partials
//   2 ratio_kernel    one block per tensor adds that tensor's partials in a fixed order (no
//                     atomics: the step is the same bit for bit on every run) into lr * r
//   3 apply_kernel    recomputes u from the new moments, as the CPU kernel does, and applies it
// The per-tensor arguments travel in one pinned host buffer copied on the current stream, so that
// neither their number nor the launches' argument space limits the tensors per launch.
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include <limits>
#include <unordered_set>

#include "lamb_cuda.h"
#include "largedet/core/error.h"

namespace largedet::solver::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int64_t kChunk = 4096;  // 16 elements per thread

struct TensorArgs {
  float* w;
  const float* g;
  float* m;
  float* v;
  int64_t numel;
  float a1, b1, a2, b2, s1, s2, eps, wd;
  double lr, trust_clip;  // the step size lr * r is formed in double, as on the CPU
  int trust_ratio;
};

// The tensor that chunk `chunk` belongs to: the last k with first_chunk[k] <= chunk. Every tensor
// has at least one chunk (empty ones are not passed), so first_chunk increases strictly.
__device__ int find_tensor(const int64_t* __restrict__ first_chunk, int n, int64_t chunk) {
  int lo = 0, hi = n - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (first_chunk[mid] <= chunk)
      lo = mid;
    else
      hi = mid - 1;
  }
  return lo;
}

// The fused CPU kernel's expression, operation for operation.
__device__ __forceinline__ float direction(const TensorArgs& t, float m, float v, float w) {
  return (m * t.s1) / (sqrtf(v * t.s2) + t.eps) + t.wd * w;
}

// The block's sum in thread 0, in a fixed order.
template <typename T>
__device__ T block_sum(T x, T* shared) {
  for (int offset = 16; offset > 0; offset /= 2) x += __shfl_down_sync(0xffffffffu, x, offset);
  if (threadIdx.x % 32 == 0) shared[threadIdx.x / 32] = x;
  __syncthreads();
  x = threadIdx.x < kWarps ? shared[threadIdx.x] : T(0);
  if (threadIdx.x < 32) {
    for (int offset = 16; offset > 0; offset /= 2) x += __shfl_down_sync(0xffffffffu, x, offset);
  }
  return x;
}

__global__ void __launch_bounds__(kThreads)
    moments_kernel(const TensorArgs* __restrict__ args, const int64_t* __restrict__ first_chunk,
                   int n, float2* __restrict__ partials) {
  const int64_t chunk = blockIdx.x;
  const int k = find_tensor(first_chunk, n, chunk);
  const TensorArgs t = args[k];
  const int64_t begin = (chunk - first_chunk[k]) * kChunk;
  const int64_t end = min(t.numel, begin + kChunk);
  float w_sq = 0, u_sq = 0;
  for (int64_t i = begin + threadIdx.x; i < end; i += kThreads) {
    const float g = t.g[i], w = t.w[i];
    const float m = t.a1 * t.m[i] + t.b1 * g;
    const float v = t.a2 * t.v[i] + t.b2 * g * g;
    t.m[i] = m;
    t.v[i] = v;
    const float u = direction(t, m, v, w);
    w_sq += w * w;
    u_sq += u * u;
  }
  __shared__ float w_shared[kWarps], u_shared[kWarps];
  w_sq = block_sum(w_sq, w_shared);
  u_sq = block_sum(u_sq, u_shared);
  if (threadIdx.x == 0) partials[chunk] = make_float2(w_sq, u_sq);
}

__global__ void __launch_bounds__(kThreads)
    ratio_kernel(const TensorArgs* __restrict__ args, const int64_t* __restrict__ first_chunk,
                 const float2* __restrict__ partials, float* __restrict__ step) {
  const int k = blockIdx.x;
  double w_sq = 0, u_sq = 0;
  for (int64_t c = first_chunk[k] + threadIdx.x; c < first_chunk[k + 1]; c += kThreads) {
    w_sq += partials[c].x;
    u_sq += partials[c].y;
  }
  __shared__ double w_shared[kWarps], u_shared[kWarps];
  w_sq = block_sum(w_sq, w_shared);
  u_sq = block_sum(u_sq, u_shared);
  if (threadIdx.x != 0) return;
  const TensorArgs& t = args[k];
  double r = 1;
  if (t.trust_ratio) {
    const double w_norm = sqrt(w_sq), u_norm = sqrt(u_sq);
    if (w_norm != 0 && u_norm != 0) r = w_norm / u_norm;
    if (t.trust_clip > 0) r = fmin(r, t.trust_clip);
  }
  step[k] = static_cast<float>(t.lr * r);
}

__global__ void __launch_bounds__(kThreads)
    apply_kernel(const TensorArgs* __restrict__ args, const int64_t* __restrict__ first_chunk,
                 int n, const float* __restrict__ step) {
  const int64_t chunk = blockIdx.x;
  const int k = find_tensor(first_chunk, n, chunk);
  const TensorArgs t = args[k];
  const float s = step[k];
  const int64_t begin = (chunk - first_chunk[k]) * kChunk;
  const int64_t end = min(t.numel, begin + kChunk);
  for (int64_t i = begin + threadIdx.x; i < end; i += kThreads)
    t.w[i] -= s * direction(t, t.m[i], t.v[i], t.w[i]);
}

TensorArgs pack(const detail::LambUpdate& u) {
  const auto& c = u.c;
  return {u.w.data_ptr<float>(),
          u.g.data_ptr<float>(),
          u.m.data_ptr<float>(),
          u.v.data_ptr<float>(),
          u.w.numel(),
          static_cast<float>(c.first_decay),
          static_cast<float>(c.first_gain),
          static_cast<float>(c.second_decay),
          static_cast<float>(c.second_gain),
          static_cast<float>(c.first_scale),
          static_cast<float>(c.second_scale),
          static_cast<float>(c.eps),
          static_cast<float>(c.weight_decay),
          c.lr,
          c.trust_clip,
          c.trust_ratio ? 1 : 0};
}

}  // namespace

void multi_tensor_lamb_update(const std::vector<detail::LambUpdate>& updates) {
  // An empty tensor's step changes nothing; leaving it out gives every chunk a tensor.
  std::vector<const detail::LambUpdate*> live;
  std::unordered_set<const void*> seen;
  for (const auto& u : updates) {
    if (u.w.numel() == 0) continue;
    LARGEDET_CHECK(
        u.g.numel() == u.w.numel() && u.m.numel() == u.w.numel() && u.v.numel() == u.w.numel(),
        "LAMB: a gradient or moment of ", u.w.numel(), " elements has ", u.g.numel(), ", ",
        u.m.numel(), ", ", u.v.numel());
    // Blocks of two updates of one tensor would race.
    LARGEDET_CHECK(seen.insert(u.w.data_ptr()).second,
                   "LAMB: a parameter appears twice in the parameter groups");
    live.push_back(&u);
  }
  if (live.empty()) return;
  const auto device = live.front()->w.device();
  c10::cuda::CUDAGuard guard(device);
  const int n = static_cast<int>(live.size());
  const size_t offsets_bytes = (n + 1) * sizeof(int64_t);
  const size_t args_at =
      (offsets_bytes + alignof(TensorArgs) - 1) / alignof(TensorArgs) * alignof(TensorArgs);
  const auto bytes = static_cast<int64_t>(args_at + n * sizeof(TensorArgs));
  // Pinned memory from ATen's caching host allocator: the asynchronous copy records an event on
  // it, so that the buffer is not handed out again before the copy has read it.
  at::Tensor host = at::empty({bytes}, at::TensorOptions().dtype(at::kByte).pinned_memory(true));
  auto* first_chunk = reinterpret_cast<int64_t*>(host.data_ptr<uint8_t>());
  auto* args = reinterpret_cast<TensorArgs*>(host.data_ptr<uint8_t>() + args_at);
  int64_t chunks = 0;
  for (int k = 0; k < n; ++k) {
    first_chunk[k] = chunks;
    chunks += (live[k]->w.numel() + kChunk - 1) / kChunk;
    args[k] = pack(*live[k]);
  }
  first_chunk[n] = chunks;
  LARGEDET_CHECK(chunks <= std::numeric_limits<int>::max(), "LAMB: ", chunks, " chunks of ", kChunk,
                 " elements exceed one CUDA grid");
  at::Tensor table = at::empty({bytes}, at::TensorOptions().dtype(at::kByte).device(device));
  table.copy_(host, /*non_blocking=*/true);
  const auto* first_chunk_d = reinterpret_cast<const int64_t*>(table.data_ptr<uint8_t>());
  const auto* args_d = reinterpret_cast<const TensorArgs*>(table.data_ptr<uint8_t>() + args_at);
  const auto floats = at::TensorOptions().dtype(at::kFloat).device(device);
  at::Tensor partials = at::empty({chunks, 2}, floats);
  at::Tensor step = at::empty({n}, floats);
  auto* partials_d = reinterpret_cast<float2*>(partials.data_ptr<float>());
  auto stream = at::cuda::getCurrentCUDAStream();
  const auto grid = static_cast<unsigned>(chunks);
  moments_kernel<<<grid, kThreads, 0, stream>>>(args_d, first_chunk_d, n, partials_d);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  ratio_kernel<<<n, kThreads, 0, stream>>>(args_d, first_chunk_d, partials_d,
                                           step.data_ptr<float>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  apply_kernel<<<grid, kThreads, 0, stream>>>(args_d, first_chunk_d, n, step.data_ptr<float>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace largedet::solver::cuda
