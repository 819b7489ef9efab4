// RoIAlign: CPU kernels, device dispatch and the autograd function.
//
// The CPU kernels reproduce torchvision's arithmetic (sampling points, border rules, operation
// order), so the forward pass and the gradient agree with it bit for bit. They work on
// channels-last features / gradients (contiguous channel vectors per pixel; NCHW features are
// copied so) and parallelise over what can be written without races: RoIs in the forward pass,
// channels in the backward pass.
//
// Memory formats, alike on both devices: the output and the gradient come in the input's memory
// format (NCHW or channels-last), so that a channels-last model (convolutions, FPN, RoIAlign
// levels) never has a level copied to NCHW, and an NCHW model gets NCHW gradients.
#include "largedet/ops/roi_align.h"

#include <torch/csrc/autograd/custom_function.h>

#include <cmath>
#include <optional>
#include <vector>

#include "largedet/core/error.h"
#include "largedet/tensor/parallel.h"
#include "roi_align_bilinear.h"
#ifdef LARGEDET_WITH_CUDA
#include "cuda/cuda_ops.h"
#endif

namespace largedet::ops {
namespace {

// One sampling point: four neighbours (offsets into an H x W plane) and their bilinear weights.
// A point outside the feature map has weights 0 at offset 0, as in torchvision: it adds nothing.
template <typename T>
struct Sample {
  int pos1, pos2, pos3, pos4;
  T w1, w2, w3, w4;
};

template <typename T>
struct RoiGeometry {
  int64_t batch;
  T start_h, start_w, bin_h, bin_w;
  int grid_h, grid_w;
};

template <typename T>
RoiGeometry<T> roi_geometry(const T* roi, double spatial_scale, int64_t pooled_h, int64_t pooled_w,
                            int64_t sampling_ratio, bool aligned) {
  RoiGeometry<T> g;
  g.batch = static_cast<int64_t>(roi[0]);
  const T offset = aligned ? T(0.5) : T(0);
  // Products in double, rounded once to T, as torchvision's kernels do.
  g.start_w = static_cast<T>(roi[1] * spatial_scale - offset);
  g.start_h = static_cast<T>(roi[2] * spatial_scale - offset);
  const T end_w = static_cast<T>(roi[3] * spatial_scale - offset);
  const T end_h = static_cast<T>(roi[4] * spatial_scale - offset);
  T roi_w = end_w - g.start_w;
  T roi_h = end_h - g.start_h;
  if (!aligned) {  // the original Mask R-CNN rule: RoIs of at least 1x1
    roi_w = std::max(roi_w, T(1));
    roi_h = std::max(roi_h, T(1));
  }
  g.bin_h = roi_h / static_cast<T>(pooled_h);
  g.bin_w = roi_w / static_cast<T>(pooled_w);
  g.grid_h = sampling_ratio > 0 ? static_cast<int>(sampling_ratio)
                                : static_cast<int>(std::ceil(roi_h / pooled_h));
  g.grid_w = sampling_ratio > 0 ? static_cast<int>(sampling_ratio)
                                : static_cast<int>(std::ceil(roi_w / pooled_w));
  // An inverted aligned RoI gives a negative grid: no samples (torchvision's loops do not run, its
  // count only divides zeros).
  g.grid_h = std::max(g.grid_h, 0);
  g.grid_w = std::max(g.grid_w, 0);
  return g;
}

// Fills samples[(ph * pooled_w + pw) * grid_h * grid_w + iy * grid_w + ix]; `samples` must hold
// that many entries.
template <typename T>
void compute_samples(const RoiGeometry<T>& g, int height, int width, int64_t pooled_h,
                     int64_t pooled_w, Sample<T>* samples) {
  int64_t k = 0;
  for (int64_t ph = 0; ph < pooled_h; ++ph) {
    for (int64_t pw = 0; pw < pooled_w; ++pw) {
      for (int iy = 0; iy < g.grid_h; ++iy) {
        const T yy = g.start_h + ph * g.bin_h +
                     static_cast<T>(iy + .5f) * g.bin_h / static_cast<T>(g.grid_h);
        for (int ix = 0; ix < g.grid_w; ++ix) {
          const T xx = g.start_w + pw * g.bin_w +
                       static_cast<T>(ix + .5f) * g.bin_w / static_cast<T>(g.grid_w);
          Sample<T>& s = samples[k++];
          int y_low, x_low, y_high, x_high;
          T w1, w2, w3, w4;
          if (!detail::bilinear_neighbours(height, width, yy, xx, y_low, x_low, y_high, x_high, w1,
                                           w2, w3, w4)) {
            s = Sample<T>{0, 0, 0, 0, T(0), T(0), T(0), T(0)};
            continue;
          }
          s.pos1 = y_low * width + x_low;
          s.pos2 = y_low * width + x_high;
          s.pos3 = y_high * width + x_low;
          s.pos4 = y_high * width + x_high;
          s.w1 = w1, s.w2 = w2, s.w3 = w3, s.w4 = w4;
        }
      }
    }
  }
}

// Forward on channels-last features: each sampling point reads four contiguous C-vectors, so the
// channel loop is a vectorised multiply-add over memory read once per cache line (the NCHW gather
// of torchvision touches a cache line per channel and per neighbour). For every output element the
// sum runs over the same samples in the same order with the same expression as torchvision's.
// output: NCHW or channels-last. RoI n reads level levels[n] (all level 0 without levels).
template <typename T>
void forward_cpu(const std::vector<at::Tensor>& inputs_cl, const at::Tensor& rois,
                 const int64_t* levels, const std::vector<double>& scales, const RoIAlignOptions& o,
                 at::Tensor& output) {
  const int64_t channels = inputs_cl[0].size(1);
  const int64_t ph = o.output_height, pw = o.output_width, bins = ph * pw;
  const T* roi_data = rois.data_ptr<T>();
  T* out = output.data_ptr<T>();
  // In both formats bin b = (ph, pw) of RoI n lies at n * stride(0) + b * stride(3).
  const int64_t roi_stride = output.stride(0), channel_stride = output.stride(1);
  const int64_t bin_stride = output.stride(3);
  at::parallel_for(0, rois.size(0), 1, [&](int64_t begin, int64_t end) {
    std::vector<Sample<T>> samples;  // reused by every RoI of this chunk
    std::vector<T> acc(static_cast<size_t>(channels));
    T* __restrict__ sum = acc.data();  // all accesses go through this pointer
    for (int64_t n = begin; n < end; ++n) {
      const auto l = static_cast<size_t>(levels ? levels[n] : 0);
      const auto& input = inputs_cl[l];
      const int height = static_cast<int>(input.size(2)), width = static_cast<int>(input.size(3));
      const auto g = roi_geometry(roi_data + 5 * n, scales[l], ph, pw, o.sampling_ratio, o.aligned);
      const int64_t per_bin = static_cast<int64_t>(g.grid_h) * g.grid_w;
      samples.resize(static_cast<size_t>(bins * per_bin));
      compute_samples(g, height, width, ph, pw, samples.data());
      const T count = static_cast<T>(std::max<int64_t>(per_bin, 1));
      const T* image = input.data_ptr<T>() + g.batch * height * width * channels;
      const Sample<T>* s = samples.data();
      for (int64_t b = 0; b < bins; ++b) {
        for (int64_t c = 0; c < channels; ++c) sum[c] = T(0);
        for (int64_t k = 0; k < per_bin; ++k, ++s) {
          const T* __restrict__ v1 = image + s->pos1 * channels;
          const T* __restrict__ v2 = image + s->pos2 * channels;
          const T* __restrict__ v3 = image + s->pos3 * channels;
          const T* __restrict__ v4 = image + s->pos4 * channels;
          const T w1 = s->w1, w2 = s->w2, w3 = s->w3, w4 = s->w4;
          for (int64_t c = 0; c < channels; ++c)
            sum[c] += w1 * v1[c] + w2 * v2[c] + w3 * v3[c] + w4 * v4[c];
        }
        T* dst = out + n * roi_stride + b * bin_stride;
        for (int64_t c = 0; c < channels; ++c) dst[c * channel_stride] = sum[c] / count;
      }
    }
  });
}

// Backward into a channels-last gradient. Threads own disjoint channel ranges, so there are no
// races and no atomics, and each gradient element receives its contributions in torchvision's order
// (RoI, bin, sampling point, neighbour). RoI n adds into level levels[n] (all level 0 without).
template <typename T>
void backward_cpu(const at::Tensor& grad, const at::Tensor& rois, const int64_t* levels,
                  const std::vector<double>& scales, const RoIAlignOptions& o,
                  std::vector<at::Tensor>& grad_inputs_cl) {
  const int64_t channels = grad_inputs_cl[0].size(1);
  const int64_t ph = o.output_height, pw = o.output_width, bins = ph * pw;
  const int64_t num_rois = rois.size(0);
  const T* go = grad.data_ptr<T>();
  const T* roi_data = rois.data_ptr<T>();
  // Chunks of at least 16 channels keep the inner loop vector-wide.
  const int64_t grain = std::min<int64_t>(channels, 16);
  at::parallel_for(0, channels, grain, [&](int64_t c_begin, int64_t c_end) {
    const int64_t nc = c_end - c_begin;
    std::vector<Sample<T>> samples;
    std::vector<T> bin_grad(static_cast<size_t>(nc));
    // All accesses go through this pointer (it is restrict).
    T* __restrict__ gb = bin_grad.data();
    for (int64_t n = 0; n < num_rois; ++n) {
      const auto l = static_cast<size_t>(levels ? levels[n] : 0);
      auto& grad_input = grad_inputs_cl[l];
      const int height = static_cast<int>(grad_input.size(2));
      const int width = static_cast<int>(grad_input.size(3));
      const auto g = roi_geometry(roi_data + 5 * n, scales[l], ph, pw, o.sampling_ratio, o.aligned);
      const int64_t per_bin = static_cast<int64_t>(g.grid_h) * g.grid_w;
      if (per_bin <= 0) continue;
      samples.resize(static_cast<size_t>(bins * per_bin));
      compute_samples(g, height, width, ph, pw, samples.data());
      const T count = static_cast<T>(per_bin);
      T* image = grad_input.data_ptr<T>() + g.batch * height * width * channels + c_begin;
      const Sample<T>* s = samples.data();
      for (int64_t b = 0; b < bins; ++b) {
        const T* src = go + (n * channels + c_begin) * bins + b;
        for (int64_t c = 0; c < nc; ++c) gb[c] = src[c * bins];
        for (int64_t k = 0; k < per_bin; ++k, ++s) {
          if (s->w1 == 0 && s->w2 == 0 && s->w3 == 0 && s->w4 == 0) continue;  // outside the map
          T* p1 = image + s->pos1 * channels;
          const T w1 = s->w1;
          for (int64_t c = 0; c < nc; ++c) p1[c] += gb[c] * w1 / count;
          T* p2 = image + s->pos2 * channels;
          const T w2 = s->w2;
          for (int64_t c = 0; c < nc; ++c) p2[c] += gb[c] * w2 / count;
          T* p3 = image + s->pos3 * channels;
          const T w3 = s->w3;
          for (int64_t c = 0; c < nc; ++c) p3[c] += gb[c] * w3 / count;
          T* p4 = image + s->pos4 * channels;
          const T w4 = s->w4;
          for (int64_t c = 0; c < nc; ++c) p4[c] += gb[c] * w4 / count;
        }
      }
    }
  });
}

void check_options(const RoIAlignOptions& o) {
  LARGEDET_CHECK(o.output_height > 0 && o.output_width > 0, "roi_align: output size ",
                 o.output_height, "x", o.output_width, " must be positive");
}

void check_rois(const at::Tensor& rois, const at::Tensor& levels, const at::Device& device) {
  LARGEDET_CHECK(rois.dim() == 2 && rois.size(1) == 5,
                 "roi_align: expected rois of shape [K, 5] (batch index, x1, y1, x2, y2), got ",
                 rois.sizes());
  LARGEDET_CHECK(rois.device() == device, "roi_align: rois on ", rois.device(), " but features on ",
                 device);
  if (!levels.defined()) return;
  LARGEDET_CHECK(levels.dim() == 1 && levels.size(0) == rois.size(0) &&
                     levels.scalar_type() == at::kLong && levels.device() == device,
                 "roi_align: expected levels [", rois.size(0), "] int64 on ", device, ", got ",
                 levels.sizes(), " ", levels.scalar_type(), " on ", levels.device());
}

void check_levels(const std::vector<at::Tensor>& features, const std::vector<double>& scales) {
  LARGEDET_CHECK(!features.empty() && features.size() <= kMaxRoIAlignLevels, "roi_align: 1 to ",
                 kMaxRoIAlignLevels, " feature maps, got ", features.size());
  LARGEDET_CHECK(scales.size() == features.size(), "roi_align: ", features.size(),
                 " feature maps but ", scales.size(), " spatial scales");
  for (size_t l = 0; l < features.size(); ++l) {
    const auto& f = features[l];
    LARGEDET_CHECK(
        f.dim() == 4 && f.size(0) == features[0].size(0) && f.size(1) == features[0].size(1) &&
            f.scalar_type() == features[0].scalar_type() && f.device() == features[0].device(),
        "roi_align: feature map ", l, " is ", f.sizes(), " ", f.scalar_type(), " on ", f.device(),
        "; every level must be [N, C, H, W] with the first's N, C, dtype and device (",
        features[0].sizes(), " ", features[0].scalar_type(), ")");
    LARGEDET_CHECK(scales[l] > 0, "roi_align: spatial scale ", scales[l], " must be positive");
  }
}

// The levels on the host, checked, for the CPU kernels (nullptr: all level 0).
const int64_t* checked_levels(const at::Tensor& levels, size_t count) {
  if (!levels.defined()) return nullptr;
  const int64_t* l = levels.data_ptr<int64_t>();
  for (int64_t k = 0; k < levels.numel(); ++k)
    LARGEDET_CHECK(l[k] >= 0 && static_cast<size_t>(l[k]) < count, "roi_align: RoI ", k,
                   " names level ", l[k], " of ", count);
  return l;
}

// Reduced precisions run the CPU kernel in float (torchvision accumulates them in half).
at::ScalarType compute_type(const at::Tensor& t) {
  if (t.is_cpu() && t.scalar_type() != at::kDouble) return at::kFloat;
  return t.scalar_type();
}

struct RoIAlignFunction : public torch::autograd::Function<RoIAlignFunction> {
  // levels: optional, as autograd takes every defined tensor argument for a variable.
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, at::TensorList features,
                            const at::Tensor& rois, const std::optional<at::Tensor>& levels_or,
                            const std::vector<double>& scales, int64_t output_height,
                            int64_t output_width, int64_t sampling_ratio, bool aligned) {
    RoIAlignOptions o{output_height, output_width, 1.0, sampling_ratio, aligned};
    const auto levels = levels_or.value_or(at::Tensor());
    ctx->save_for_backward({rois, levels});
    std::vector<int64_t> shapes;
    for (const auto& f : features) shapes.insert(shapes.end(), f.sizes().begin(), f.sizes().end());
    ctx->saved_data["shapes"] = shapes;
    ctx->saved_data["channels_last"] =
        features[0].suggest_memory_format() == at::MemoryFormat::ChannelsLast;
    ctx->saved_data["scales"] = scales;
    ctx->saved_data["oh"] = output_height;
    ctx->saved_data["ow"] = output_width;
    ctx->saved_data["sr"] = sampling_ratio;
    ctx->saved_data["aligned"] = aligned;
    return roi_align_forward(features.vec(), rois, levels, scales, o);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto flat = ctx->saved_data["shapes"].toIntVector();
    std::vector<std::vector<int64_t>> shapes;
    for (size_t i = 0; i < flat.size(); i += 4)
      shapes.emplace_back(flat.begin() + i, flat.begin() + i + 4);
    RoIAlignOptions o{ctx->saved_data["oh"].toInt(), ctx->saved_data["ow"].toInt(), 1.0,
                      ctx->saved_data["sr"].toInt(), ctx->saved_data["aligned"].toBool()};
    const auto format = ctx->saved_data["channels_last"].toBool() ? at::MemoryFormat::ChannelsLast
                                                                  : at::MemoryFormat::Contiguous;
    auto grad_inputs =
        roi_align_backward(grads[0], saved[0], saved[1], ctx->saved_data["scales"].toDoubleVector(),
                           o, shapes, format);
    // One gradient per feature map, then none for the other arguments.
    grad_inputs.resize(grad_inputs.size() + 7);
    return grad_inputs;
  }
};

}  // namespace

at::Tensor roi_align_forward(const std::vector<at::Tensor>& features, const at::Tensor& rois,
                             const at::Tensor& levels, const std::vector<double>& spatial_scales,
                             const RoIAlignOptions& o) {
  check_options(o);
  check_levels(features, spatial_scales);
  const auto& first = features[0];
  check_rois(rois, levels, first.device());
  const auto format = first.suggest_memory_format();
  if (first.is_cuda()) {
#ifdef LARGEDET_WITH_CUDA
    // The kernel takes the RoIs in its arithmetic type (float for half and bfloat16).
    std::vector<at::Tensor> inputs;
    for (const auto& f : features) inputs.push_back(f.contiguous(format));
    return cuda::roi_align_forward(inputs, rois, levels, spatial_scales, o.output_height,
                                   o.output_width, o.sampling_ratio, o.aligned, format);
#else
    LARGEDET_CHECK(false, "roi_align: CUDA tensors, but LargeDet was built without CUDA kernels");
#endif
  }
  LARGEDET_CHECK(first.is_cpu(), "roi_align: unsupported device ", first.device());
  const auto type = compute_type(first);
  auto r = rois.to(type).contiguous();
  const auto level_index = levels.defined() ? levels.contiguous() : at::Tensor();
  const auto* l = checked_levels(level_index, features.size());
  // The layout change costs about as much as the kernel; still 2x faster overall than gathering
  // from NCHW planes (a cache line per channel and neighbour).
  std::vector<at::Tensor> inputs;
  for (const auto& f : features) {
    inputs.push_back(f.to(type).contiguous(at::MemoryFormat::ChannelsLast));
    LARGEDET_CHECK(f.size(2) * f.size(3) < (int64_t{1} << 31), "roi_align: feature map too large");
  }
  // Every element is written (at::zeros would drop the memory format).
  auto output = at::empty({r.size(0), first.size(1), o.output_height, o.output_width},
                          inputs[0].options().memory_format(format));
  if (output.numel() == 0) return output.to(first.scalar_type());
  AT_DISPATCH_FLOATING_TYPES(type, "largedet_roi_align_forward", [&] {
    forward_cpu<scalar_t>(inputs, r, l, spatial_scales, o, output);
  });
  return output.to(first.scalar_type());
}

std::vector<at::Tensor> roi_align_backward(const at::Tensor& grad_output, const at::Tensor& rois,
                                           const at::Tensor& levels,
                                           const std::vector<double>& spatial_scales,
                                           const RoIAlignOptions& o,
                                           const std::vector<std::vector<int64_t>>& shapes,
                                           at::MemoryFormat memory_format) {
  check_options(o);
  LARGEDET_CHECK(memory_format == at::MemoryFormat::Contiguous ||
                     memory_format == at::MemoryFormat::ChannelsLast,
                 "roi_align backward: the gradient comes as NCHW or channels-last, not ",
                 memory_format);
  LARGEDET_CHECK(!shapes.empty() && shapes.size() == spatial_scales.size() &&
                     shapes.size() <= kMaxRoIAlignLevels,
                 "roi_align backward: ", shapes.size(), " feature map shapes and ",
                 spatial_scales.size(), " spatial scales");
  for (size_t i = 0; i < shapes.size(); ++i) {
    const auto& s = shapes[i];
    LARGEDET_CHECK(s.size() == 4 && s[0] == shapes[0][0] && s[1] == shapes[0][1],
                   "roi_align backward: feature map shape ", at::IntArrayRef(s),
                   " is not [N, C, H, W] with the first's N and C");
    LARGEDET_CHECK(spatial_scales[i] > 0, "roi_align: spatial scale ", spatial_scales[i],
                   " must be positive");
  }
  const int64_t channels = shapes[0][1];
  check_rois(rois, levels, grad_output.device());
  LARGEDET_CHECK(grad_output.dim() == 4 && grad_output.size(0) == rois.size(0) &&
                     grad_output.size(1) == channels && grad_output.size(2) == o.output_height &&
                     grad_output.size(3) == o.output_width,
                 "roi_align backward: gradient of shape ", grad_output.sizes(), " for ",
                 rois.size(0), " RoIs of ", channels, " channels");
  if (grad_output.is_cuda()) {
#ifdef LARGEDET_WITH_CUDA
    return cuda::roi_align_backward(grad_output, rois, levels, spatial_scales, o.output_height,
                                    o.output_width, shapes, o.sampling_ratio, o.aligned,
                                    memory_format);
#else
    LARGEDET_CHECK(false, "roi_align: CUDA tensors, but LargeDet was built without CUDA kernels");
#endif
  }
  const auto type = compute_type(grad_output);
  auto g = grad_output.to(type).contiguous();
  auto r = rois.to(type).contiguous();
  const auto level_index = levels.defined() ? levels.contiguous() : at::Tensor();
  const auto* l = checked_levels(level_index, shapes.size());
  // The kernel accumulates per pixel, into channels-last storage. An NCHW gradient costs one copy,
  // which an NCHW model pays anyway: a convolution's backward copies a channels-last gradient to
  // its NCHW input's format.
  std::vector<at::Tensor> grad_inputs;
  bool any = false;
  for (const auto& s : shapes) {
    grad_inputs.push_back(
        at::empty(s, g.options().memory_format(at::MemoryFormat::ChannelsLast)).zero_());
    any = any || grad_inputs.back().numel() != 0;
  }
  if (g.numel() != 0 && any)
    AT_DISPATCH_FLOATING_TYPES(type, "largedet_roi_align_backward", [&] {
      backward_cpu<scalar_t>(g, r, l, spatial_scales, o, grad_inputs);
    });
  for (auto& gi : grad_inputs) gi = gi.to(grad_output.scalar_type()).contiguous(memory_format);
  return grad_inputs;
}

at::Tensor roi_align_forward(const at::Tensor& input, const at::Tensor& rois,
                             const RoIAlignOptions& o) {
  return roi_align_forward(std::vector<at::Tensor>{input}, rois, at::Tensor(), {o.spatial_scale},
                           o);
}

at::Tensor roi_align_backward(const at::Tensor& grad_output, const at::Tensor& rois,
                              const RoIAlignOptions& o, int64_t batch, int64_t channels,
                              int64_t height, int64_t width, at::MemoryFormat memory_format) {
  return roi_align_backward(grad_output, rois, at::Tensor(), {o.spatial_scale}, o,
                            {{batch, channels, height, width}}, memory_format)[0];
}

at::Tensor roi_align_levels(const std::vector<at::Tensor>& features, const at::Tensor& rois,
                            const at::Tensor& levels, const std::vector<double>& spatial_scales,
                            const RoIAlignOptions& options) {
  return RoIAlignFunction::apply(
      at::TensorList(features), rois,
      levels.defined() ? std::optional<at::Tensor>(levels) : std::nullopt, spatial_scales,
      options.output_height, options.output_width, options.sampling_ratio, options.aligned);
}

at::Tensor roi_align(const at::Tensor& input, const at::Tensor& rois,
                     const RoIAlignOptions& options) {
  return roi_align_levels({input}, rois, at::Tensor(), {options.spatial_scale}, options);
}

at::Tensor roi_align(const at::Tensor& input, const std::vector<at::Tensor>& boxes,
                     const RoIAlignOptions& options) {
  return roi_align(input, boxes_to_rois(boxes), options);
}

at::Tensor boxes_to_rois(const std::vector<at::Tensor>& boxes) {
  LARGEDET_CHECK(!boxes.empty(), "boxes_to_rois: no images");
  std::vector<at::Tensor> rows;
  for (size_t i = 0; i < boxes.size(); ++i) {
    const auto& b = boxes[i];
    LARGEDET_CHECK(b.dim() == 2 && b.size(1) == 4, "boxes_to_rois: boxes of image ", i,
                   " have shape ", b.sizes(), ", expected [K, 4]");
    rows.push_back(at::cat({at::full({b.size(0), 1}, static_cast<double>(i), b.options()), b}, 1));
  }
  return at::cat(rows, 0);
}

at::Tensor boxes_to_rois(const at::Tensor& boxes) {
  LARGEDET_CHECK(boxes.dim() == 3 && boxes.size(2) == 4, "boxes_to_rois: expected [B, K, 4], got ",
                 boxes.sizes());
  const auto batch = at::arange(boxes.size(0), boxes.options()).view({-1, 1, 1});
  return at::cat({batch.expand({boxes.size(0), boxes.size(1), 1}), boxes}, 2).view({-1, 5});
}

}  // namespace largedet::ops
