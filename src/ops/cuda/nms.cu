// NMS on CUDA: boxes sorted by score, a [N, ceil(N / 64)] bitmask of "box i suppresses box j"
// computed in 64 x 64 tiles, then one block walks the mask greedily on the device (no host copy of
// the mask). With categories, boxes of different categories never suppress each other.
#include <ATen/ATen.h>
#include <ATen/AccumulateType.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include <limits>

#include "cuda_ops.h"

namespace largedet::ops::cuda {
namespace {

constexpr int kTile = 64;  // boxes per tile = bits per mask word

__host__ __device__ inline int ceil_div(int a, int b) { return (a + b - 1) / b; }

// The IoU test of torchvision's kernel (same operations, accumulated in acc_type).
template <typename T>
__device__ inline bool overlaps(const T* a, const T* b, float threshold) {
  using acc_t = at::acc_type<T, true>;
  const T w = max(min(a[2], b[2]) - max(a[0], b[0]), T(0));
  const T h = max(min(a[3], b[3]) - max(a[1], b[1]), T(0));
  const acc_t inter = static_cast<acc_t>(w) * h;
  const acc_t area_a = (static_cast<acc_t>(a[2]) - a[0]) * (a[3] - a[1]);
  const acc_t area_b = (static_cast<acc_t>(b[2]) - b[0]) * (b[3] - b[1]);
  return inter / (area_a + area_b - inter) > threshold;
}

// One 64 x 64 tile of the mask of `count` sorted boxes (of a row of `n`): row i's bit k says that
// box i suppresses box col_tile * 64 + k. Tiles below the diagonal or past the count do nothing.
template <typename T>
__device__ void mask_tile(int n, int count, float threshold, const T* __restrict__ boxes,
                          const int64_t* __restrict__ classes, unsigned long long* mask) {
  const int row_tile = blockIdx.y, col_tile = blockIdx.x;
  if (row_tile > col_tile || row_tile * kTile >= count || col_tile * kTile >= count) return;
  const int rows = min(count - row_tile * kTile, kTile);
  const int cols = min(count - col_tile * kTile, kTile);
  __shared__ T tile[kTile * 4];
  __shared__ int64_t tile_cls[kTile];
  if (threadIdx.x < cols) {
    const int j = col_tile * kTile + threadIdx.x;
    for (int k = 0; k < 4; ++k) tile[threadIdx.x * 4 + k] = boxes[j * 4 + k];
    tile_cls[threadIdx.x] = classes ? classes[j] : 0;
  }
  __syncthreads();
  if (threadIdx.x >= rows) return;
  const int i = row_tile * kTile + threadIdx.x;
  const T* box = boxes + i * 4;
  const int64_t cls = classes ? classes[i] : 0;
  unsigned long long bits = 0;
  for (int k = row_tile == col_tile ? threadIdx.x + 1 : 0; k < cols; ++k) {
    if (tile_cls[k] == cls && overlaps(box, tile + k * 4, threshold)) bits |= 1ULL << k;
  }
  mask[static_cast<int64_t>(i) * ceil_div(n, kTile) + col_tile] = bits;
}

template <typename T>
__global__ void mask_kernel(int n, float threshold, const T* __restrict__ boxes,
                            const int64_t* __restrict__ classes, unsigned long long* mask) {
  mask_tile(n, n, threshold, boxes, classes, mask);
}

// One block: walks the boxes in score order; a box not yet removed is kept and removes the boxes
// its mask row marks. `removed` lives in shared memory.
__global__ void gather_kernel(int n, const unsigned long long* __restrict__ mask, bool* keep) {
  extern __shared__ unsigned long long removed[];
  const int words = ceil_div(n, kTile);
  for (int w = threadIdx.x; w < words; w += blockDim.x) removed[w] = 0;
  __syncthreads();
  for (int word = 0; word < words; ++word) {
    unsigned long long current = removed[word];
    __syncthreads();
    const int base = word * kTile;
    for (int bit = 0; bit < kTile && base + bit < n; ++bit) {
      if (current & (1ULL << bit)) continue;
      const int i = base + bit;
      if (threadIdx.x == 0) keep[i] = true;
      const unsigned long long* row = mask + static_cast<int64_t>(i) * words;
      for (int w = word + threadIdx.x; w < words; w += blockDim.x) removed[w] |= row[w];
      __syncthreads();
      current = removed[word];
    }
  }
}

// The segmented variant: blockIdx.z is the row, whose n_valid[row] boxes (sorted, valid first)
// are masked against each other only.
template <typename T>
__global__ void segmented_mask_kernel(int n, float threshold, const T* __restrict__ boxes,
                                      const int64_t* __restrict__ classes,
                                      const int64_t* __restrict__ n_valid,
                                      unsigned long long* mask) {
  const int64_t row = blockIdx.z;
  mask_tile(n, static_cast<int>(n_valid[row]), threshold, boxes + row * n * 4,
            classes ? classes + row * n : nullptr, mask + row * n * ceil_div(n, kTile));
}

// One block per row: gather_kernel's walk over the row's valid boxes, writing the survivors'
// original indices (order[row]) into the row's max_keep slots and stopping when they are full.
__global__ void segmented_gather_kernel(int n, int max_keep,
                                        const unsigned long long* __restrict__ mask,
                                        const int64_t* __restrict__ n_valid,
                                        const int64_t* __restrict__ order, int64_t* keep,
                                        bool* kept) {
  extern __shared__ unsigned long long removed[];
  const int64_t row = blockIdx.x;
  const int count = static_cast<int>(n_valid[row]);
  const int words = ceil_div(n, kTile);
  // Only the first ceil(count / 64) words of a mask row are written (tiles past the count do
  // nothing): ORing the rest read uninitialised memory, which no result used but
  // compute-sanitizer's initcheck reports.
  const int count_words = ceil_div(count, kTile);
  const unsigned long long* row_mask = mask + row * n * words;
  for (int w = threadIdx.x; w < count_words; w += blockDim.x) removed[w] = 0;
  __syncthreads();
  int num_kept = 0;  // the same in every thread: each one walks the same bits
  for (int word = 0; word * kTile < count && num_kept < max_keep; ++word) {
    unsigned long long current = removed[word];
    __syncthreads();
    const int base = word * kTile;
    for (int bit = 0; bit < kTile && base + bit < count && num_kept < max_keep; ++bit) {
      if (current & (1ULL << bit)) continue;
      const int i = base + bit;
      if (threadIdx.x == 0) {
        keep[row * max_keep + num_kept] = order[row * n + i];
        kept[row * max_keep + num_kept] = true;
      }
      ++num_kept;
      const unsigned long long* mask_row = row_mask + static_cast<int64_t>(i) * words;
      for (int w = word + threadIdx.x; w < count_words; w += blockDim.x) removed[w] |= mask_row[w];
      __syncthreads();
      current = removed[word];
    }
  }
}

}  // namespace

void segmented_nms(const at::Tensor& boxes, const at::Tensor& scores, const at::Tensor& idxs,
                   const at::Tensor& valid, double iou_threshold, at::Tensor& keep,
                   at::Tensor& kept) {
  c10::cuda::CUDAGuard guard(boxes.device());
  const int64_t rows = boxes.size(0), n64 = boxes.size(1);
  TORCH_CHECK(n64 < (int64_t{1} << 31) / kTile, "segmented_nms: too many boxes per row (", n64,
              ")");
  const int n = static_cast<int>(n64);
  const int words = ceil_div(n, kTile);
  const size_t shared = static_cast<size_t>(words) * sizeof(unsigned long long);
  TORCH_CHECK(shared <= 48 * 1024, "segmented_nms: ", n64,
              " boxes per row do not fit the on-device walk (at most ", 48 * 1024 / 8 * kTile, ")");
  // Invalid boxes sort last (scores -inf, a stable sort keeps ties in index order) and are
  // excluded by the per-row count.
  auto masked = scores.masked_fill(valid.logical_not(), -std::numeric_limits<double>::infinity());
  auto order = std::get<1>(masked.sort(/*stable=*/true, /*dim=*/1, /*descending=*/true));
  auto sorted = boxes.gather(1, order.unsqueeze(2).expand({rows, n64, 4})).contiguous();
  at::Tensor sorted_cls;
  if (idxs.defined()) sorted_cls = idxs.gather(1, order).contiguous();
  auto n_valid = valid.sum(1).contiguous();  // int64, on the device
  auto mask = at::empty({rows * n64 * words}, boxes.options().dtype(at::kLong));
  auto stream = at::cuda::getCurrentCUDAStream();
  TORCH_CHECK(rows <= 65535, "segmented_nms: at most 65535 rows, got ", rows);
  dim3 grid(words, words, static_cast<unsigned>(rows));
  AT_DISPATCH_FLOATING_TYPES_AND_HALF(sorted.scalar_type(), "largedet_segmented_nms_cuda", [&] {
    segmented_mask_kernel<scalar_t><<<grid, kTile, 0, stream>>>(
        n, static_cast<float>(iou_threshold), sorted.data_ptr<scalar_t>(),
        sorted_cls.defined() ? sorted_cls.data_ptr<int64_t>() : nullptr,
        n_valid.data_ptr<int64_t>(),
        reinterpret_cast<unsigned long long*>(mask.data_ptr<int64_t>()));
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  segmented_gather_kernel<<<static_cast<unsigned>(rows), std::min(words, 1024), shared, stream>>>(
      n, static_cast<int>(keep.size(1)),
      reinterpret_cast<const unsigned long long*>(mask.data_ptr<int64_t>()),
      n_valid.data_ptr<int64_t>(), order.contiguous().data_ptr<int64_t>(), keep.data_ptr<int64_t>(),
      kept.data_ptr<bool>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

at::Tensor nms(const at::Tensor& boxes, const at::Tensor& scores, const at::Tensor& idxs,
               double iou_threshold) {
  c10::cuda::CUDAGuard guard(boxes.device());
  const int64_t n64 = boxes.size(0);
  TORCH_CHECK(n64 < (int64_t{1} << 31) / kTile, "nms: too many boxes (", n64, ")");
  const int n = static_cast<int>(n64);
  auto order = std::get<1>(scores.sort(/*stable=*/true, /*dim=*/0, /*descending=*/true));
  auto sorted = boxes.index_select(0, order).contiguous();
  at::Tensor sorted_cls;
  if (idxs.defined()) sorted_cls = idxs.index_select(0, order).contiguous();
  const int words = ceil_div(n, kTile);
  auto mask = at::empty({n64 * words}, boxes.options().dtype(at::kLong));
  auto stream = at::cuda::getCurrentCUDAStream();
  dim3 grid(words, words);
  AT_DISPATCH_FLOATING_TYPES_AND_HALF(sorted.scalar_type(), "largedet_nms_cuda", [&] {
    mask_kernel<scalar_t><<<grid, kTile, 0, stream>>>(
        n, static_cast<float>(iou_threshold), sorted.data_ptr<scalar_t>(),
        sorted_cls.defined() ? sorted_cls.data_ptr<int64_t>() : nullptr,
        reinterpret_cast<unsigned long long*>(mask.data_ptr<int64_t>()));
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  auto keep = at::zeros({n64}, boxes.options().dtype(at::kBool));
  const size_t shared = static_cast<size_t>(words) * sizeof(unsigned long long);
  if (shared <= 48 * 1024) {
    gather_kernel<<<1, std::min(words, 1024), shared, stream>>>(
        n, reinterpret_cast<const unsigned long long*>(mask.data_ptr<int64_t>()),
        keep.data_ptr<bool>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  } else {
    // Over ~390k boxes the removed-set no longer fits shared memory: walk the mask on the host.
    auto host = mask.cpu();
    const auto* m = reinterpret_cast<const unsigned long long*>(host.data_ptr<int64_t>());
    std::vector<unsigned long long> removed(words, 0);
    auto keep_host = at::zeros({n64}, at::kBool);
    bool* k = keep_host.data_ptr<bool>();
    for (int i = 0; i < n; ++i) {
      if (removed[i / kTile] & (1ULL << (i % kTile))) continue;
      k[i] = true;
      for (int w = i / kTile; w < words; ++w) removed[w] |= m[static_cast<int64_t>(i) * words + w];
    }
    keep = keep_host.to(boxes.device());
  }
  return order.masked_select(keep);
}

}  // namespace largedet::ops::cuda
