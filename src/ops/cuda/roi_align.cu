// RoIAlign on CUDA: one thread per output element (forward) and per gradient element (backward,
// atomic adds into the input gradient), with torchvision's sampling points and border rules.
// Reduced precisions accumulate in float. Each kernel has an NCHW and a channels-last variant;
// the latter numbers the threads with the channel fastest, so that a warp reads (forward) and
// adds into (backward) consecutive addresses of one pixel's channel vector, and features that are
// channels-last are never copied to NCHW.
#include <ATen/ATen.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <ATen/cuda/Atomic.cuh>

#include "../roi_align_bilinear.h"
#include "cuda_ops.h"

namespace largedet::ops::cuda {
namespace {

constexpr int kThreads = 512;
constexpr int kMaxLevels = 8;  // ops::kMaxRoIAlignLevels

// The feature maps of the levels (or their gradients), passed to the kernels by value: RoI n
// reads (or adds into) level levels[n], all level 0 without levels.
template <typename T>
struct Levels {
  T* data[kMaxLevels];
  int height[kMaxLevels], width[kMaxLevels];
  double scale[kMaxLevels];
  int count;
};

__device__ inline int level_of(const int64_t* levels, int64_t n, int count) {
  const int l = levels ? static_cast<int>(levels[n]) : 0;
  CUDA_KERNEL_ASSERT(l >= 0 && l < count);
  return l;
}

struct Geometry {
  int64_t batch;
  int grid_h, grid_w;
};

template <typename T>
__device__ inline Geometry geometry(const T* roi, double spatial_scale, int pooled_h, int pooled_w,
                                    int sampling_ratio, bool aligned, T& start_h, T& start_w,
                                    T& bin_h, T& bin_w) {
  Geometry g;
  g.batch = static_cast<int64_t>(roi[0]);
  const T offset = aligned ? T(0.5) : T(0);
  start_w = static_cast<T>(roi[1] * spatial_scale - offset);
  start_h = static_cast<T>(roi[2] * spatial_scale - offset);
  const T end_w = static_cast<T>(roi[3] * spatial_scale - offset);
  const T end_h = static_cast<T>(roi[4] * spatial_scale - offset);
  T roi_w = end_w - start_w, roi_h = end_h - start_h;
  if (!aligned) {
    roi_w = max(roi_w, T(1));
    roi_h = max(roi_h, T(1));
  }
  bin_h = roi_h / static_cast<T>(pooled_h);
  bin_w = roi_w / static_cast<T>(pooled_w);
  g.grid_h = sampling_ratio > 0 ? sampling_ratio : static_cast<int>(ceil(roi_h / pooled_h));
  g.grid_w = sampling_ratio > 0 ? sampling_ratio : static_cast<int>(ceil(roi_w / pooled_w));
  g.grid_h = max(g.grid_h, 0);
  g.grid_w = max(g.grid_w, 0);
  return g;
}

// Calls visit(y0, x0, y1, x1, w1, w2, w3, w4) for each in-map sampling point of output bin
// (ph, pw): the forward reads those four neighbours, the backward scatters into them.
template <typename A, typename Visit>
__device__ inline void for_each_sample(const Geometry& g, A start_h, A start_w, A bin_h, A bin_w,
                                       int ph, int pw, int height, int width, Visit visit) {
  for (int iy = 0; iy < g.grid_h; ++iy) {
    const A y = start_h + ph * bin_h + static_cast<A>(iy + .5f) * bin_h / static_cast<A>(g.grid_h);
    for (int ix = 0; ix < g.grid_w; ++ix) {
      const A x =
          start_w + pw * bin_w + static_cast<A>(ix + .5f) * bin_w / static_cast<A>(g.grid_w);
      int y0, x0, y1, x1;
      A w1, w2, w3, w4;
      if (detail::bilinear_neighbours<A>(height, width, y, x, y0, x0, y1, x1, w1, w2, w3, w4))
        visit(y0, x0, y1, x1, w1, w2, w3, w4);
    }
  }
}

// Output element `index`, numbered in the order of the output's memory: (n, c, ph, pw) for NCHW,
// (n, ph, pw, c) for channels-last.
template <bool ChannelsLast>
__device__ inline void output_element(int64_t index, int channels, int pooled_h, int pooled_w,
                                      int64_t& n, int& c, int& ph, int& pw) {
  if (ChannelsLast) {
    c = index % channels;
    index /= channels;
  }
  pw = index % pooled_w;
  index /= pooled_w;
  ph = index % pooled_h;
  index /= pooled_h;
  if (!ChannelsLast) {
    c = index % channels;
    index /= channels;
  }
  n = index;
}

// Channel c of image b, as a base pointer and the distance between neighbouring pixels.
template <bool ChannelsLast, typename T>
__device__ inline T* channel_plane(T* data, int64_t b, int c, int channels, int height, int width,
                                   int64_t& pixel_step) {
  const int64_t pixels = static_cast<int64_t>(height) * width;
  pixel_step = ChannelsLast ? channels : 1;
  return ChannelsLast ? data + b * pixels * channels + c : data + (b * channels + c) * pixels;
}

// T: the storage type; A: the arithmetic type (float for half and bfloat16), also the RoIs' type,
// so that coordinates are never rounded to half precision. input and output are contiguous in the
// same memory format.
template <typename T, typename A, bool ChannelsLast>
__global__ void forward_kernel(int64_t total, Levels<const T> input,
                               const int64_t* __restrict__ levels, const A* __restrict__ rois,
                               int channels, int pooled_h, int pooled_w, int sampling_ratio,
                               bool aligned, T* __restrict__ output) {
  for (int64_t index = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; index < total;
       index += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    int64_t n;
    int c, ph, pw;
    output_element<ChannelsLast>(index, channels, pooled_h, pooled_w, n, c, ph, pw);
    const int l = level_of(levels, n, input.count);
    const int height = input.height[l], width = input.width[l];
    A start_h, start_w, bin_h, bin_w;
    const Geometry g = geometry<A>(rois + n * 5, input.scale[l], pooled_h, pooled_w, sampling_ratio,
                                   aligned, start_h, start_w, bin_h, bin_w);
    int64_t step;
    const T* plane =
        channel_plane<ChannelsLast>(input.data[l], g.batch, c, channels, height, width, step);
    auto read = [&](int y, int x) {
      return static_cast<A>(plane[(static_cast<int64_t>(y) * width + x) * step]);
    };
    A sum = 0;
    for_each_sample<A>(g, start_h, start_w, bin_h, bin_w, ph, pw, height, width,
                       [&](int y0, int x0, int y1, int x1, A w1, A w2, A w3, A w4) {
                         sum += w1 * read(y0, x0) + w2 * read(y0, x1) + w3 * read(y1, x0) +
                                w4 * read(y1, x1);
                       });
    const A count = static_cast<A>(max(g.grid_h * g.grid_w, 1));
    output[index] = static_cast<T>(sum / count);
  }
}

// grad and grad_input are contiguous in the same memory format.
template <typename T, bool ChannelsLast>
__global__ void backward_kernel(int64_t total, const T* __restrict__ grad,
                                const int64_t* __restrict__ levels, const T* __restrict__ rois,
                                int channels, int pooled_h, int pooled_w, int sampling_ratio,
                                bool aligned, Levels<T> grad_input) {
  for (int64_t index = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; index < total;
       index += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    int64_t n;
    int c, ph, pw;
    output_element<ChannelsLast>(index, channels, pooled_h, pooled_w, n, c, ph, pw);
    const int l = level_of(levels, n, grad_input.count);
    const int height = grad_input.height[l], width = grad_input.width[l];
    T start_h, start_w, bin_h, bin_w;
    const Geometry g = geometry<T>(rois + n * 5, grad_input.scale[l], pooled_h, pooled_w,
                                   sampling_ratio, aligned, start_h, start_w, bin_h, bin_w);
    int64_t step;
    T* plane =
        channel_plane<ChannelsLast>(grad_input.data[l], g.batch, c, channels, height, width, step);
    auto cell = [&](int y, int x) { return plane + (static_cast<int64_t>(y) * width + x) * step; };
    const T gb = grad[index];
    const T count = static_cast<T>(g.grid_h * g.grid_w);
    for_each_sample<T>(g, start_h, start_w, bin_h, bin_w, ph, pw, height, width,
                       [&](int y0, int x0, int y1, int x1, T w1, T w2, T w3, T w4) {
                         gpuAtomicAdd(cell(y0, x0), gb * w1 / count);
                         gpuAtomicAdd(cell(y0, x1), gb * w2 / count);
                         gpuAtomicAdd(cell(y1, x0), gb * w3 / count);
                         gpuAtomicAdd(cell(y1, x1), gb * w4 / count);
                       });
  }
}

int blocks_for(int64_t total) {
  return static_cast<int>(std::min<int64_t>((total + kThreads - 1) / kThreads, 4096));
}

// The level table of `maps` (each [N, C, H, W]) with their scales.
template <typename T>
Levels<T> level_table(const std::vector<at::Tensor>& maps, const std::vector<double>& scales) {
  TORCH_CHECK(!maps.empty() && maps.size() <= kMaxLevels && scales.size() == maps.size(),
              "roi_align: 1 to ", kMaxLevels, " levels with a scale each");
  Levels<T> table{};
  table.count = static_cast<int>(maps.size());
  for (size_t l = 0; l < maps.size(); ++l) {
    table.data[l] = static_cast<T*>(maps[l].data_ptr());
    table.height[l] = static_cast<int>(maps[l].size(2));
    table.width[l] = static_cast<int>(maps[l].size(3));
    table.scale[l] = scales[l];
  }
  return table;
}

const int64_t* level_index(const at::Tensor& levels) {
  return levels.defined() ? levels.data_ptr<int64_t>() : nullptr;
}

}  // namespace

at::Tensor roi_align_forward(const std::vector<at::Tensor>& inputs, const at::Tensor& rois,
                             const at::Tensor& levels, const std::vector<double>& scales,
                             int64_t pooled_height, int64_t pooled_width, int64_t sampling_ratio,
                             bool aligned, at::MemoryFormat memory_format) {
  const auto& first = inputs[0];
  c10::cuda::CUDAGuard guard(first.device());
  const bool channels_last = memory_format == at::MemoryFormat::ChannelsLast;
  // Every element is written (at::zeros would drop the memory format).
  auto output = at::empty({rois.size(0), first.size(1), pooled_height, pooled_width},
                          first.options().memory_format(memory_format));
  const int64_t total = output.numel();
  if (total == 0) return output;
  const auto index = levels.defined() ? levels.contiguous() : at::Tensor();
  auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, first.scalar_type(), "largedet_roi_align_forward_cuda", [&] {
        using A = at::opmath_type<scalar_t>;
        const auto r = rois.to(c10::CppTypeToScalarType<A>::value).contiguous();
        auto kernel =
            channels_last ? forward_kernel<scalar_t, A, true> : forward_kernel<scalar_t, A, false>;
        kernel<<<blocks_for(total), kThreads, 0, stream>>>(
            total, level_table<const scalar_t>(inputs, scales), level_index(index), r.data_ptr<A>(),
            static_cast<int>(first.size(1)), static_cast<int>(pooled_height),
            static_cast<int>(pooled_width), static_cast<int>(sampling_ratio), aligned,
            output.data_ptr<scalar_t>());
      });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return output;
}

std::vector<at::Tensor> roi_align_backward(const at::Tensor& grad, const at::Tensor& rois,
                                           const at::Tensor& levels,
                                           const std::vector<double>& scales, int64_t pooled_height,
                                           int64_t pooled_width,
                                           const std::vector<std::vector<int64_t>>& shapes,
                                           int64_t sampling_ratio, bool aligned,
                                           at::MemoryFormat memory_format) {
  c10::cuda::CUDAGuard guard(grad.device());
  const bool channels_last = memory_format == at::MemoryFormat::ChannelsLast;
  // Atomic adds in half precision are slow and lossy: reduced precisions accumulate in float.
  const bool upcast = grad.scalar_type() == at::kHalf || grad.scalar_type() == at::kBFloat16;
  auto g = (upcast ? grad.to(at::kFloat) : grad).contiguous(memory_format);
  auto r = rois.to(g.scalar_type()).contiguous();
  const auto index = levels.defined() ? levels.contiguous() : at::Tensor();
  std::vector<at::Tensor> grad_inputs;
  bool any = false;
  for (const auto& s : shapes) {
    grad_inputs.push_back(at::empty(s, g.options().memory_format(memory_format)).zero_());
    any = any || grad_inputs.back().numel() != 0;
  }
  const int64_t total = g.numel();
  if (total != 0 && any) {
    auto stream = at::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "largedet_roi_align_backward_cuda", [&] {
      auto kernel =
          channels_last ? backward_kernel<scalar_t, true> : backward_kernel<scalar_t, false>;
      kernel<<<blocks_for(total), kThreads, 0, stream>>>(
          total, g.data_ptr<scalar_t>(), level_index(index), r.data_ptr<scalar_t>(),
          static_cast<int>(shapes[0][1]), static_cast<int>(pooled_height),
          static_cast<int>(pooled_width), static_cast<int>(sampling_ratio), aligned,
          level_table<scalar_t>(grad_inputs, scales));
    });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  for (auto& gi : grad_inputs) gi = gi.to(grad.scalar_type());
  return grad_inputs;
}

}  // namespace largedet::ops::cuda
