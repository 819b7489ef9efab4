#include "largedet/ops/boxes.h"

#include "largedet/core/error.h"

namespace largedet::ops {
namespace {

void check_boxes(const at::Tensor& boxes, const char* name) {
  LARGEDET_CHECK(boxes.dim() == 2 && boxes.size(1) == 4, name,
                 ": expected boxes of shape [N, 4], got ", boxes.sizes());
}

// [N, 4], or [B, N, 4] for the functions that take a batch of images.
void check_box_batch(const at::Tensor& boxes, const char* name) {
  LARGEDET_CHECK((boxes.dim() == 2 || boxes.dim() == 3) && boxes.size(-1) == 4, name,
                 ": expected boxes of shape [N, 4] or [B, N, 4], got ", boxes.sizes());
}

}  // namespace

at::ScalarType geometry_dtype(at::ScalarType features) {
  return features == at::kDouble ? at::kDouble : at::kFloat;
}

at::ScalarType geometry_dtype(const at::Tensor& a, const at::Tensor& b) {
  return geometry_dtype(at::promote_types(a.scalar_type(), b.scalar_type()));
}

at::Tensor to_geometry_dtype(const at::Tensor& boxes) {
  return boxes.to(geometry_dtype(boxes.scalar_type()));
}

at::Tensor box_area(const at::Tensor& boxes_in) {
  check_box_batch(boxes_in, "box_area");
  const auto boxes = to_geometry_dtype(boxes_in);
  return (boxes.select(-1, 2) - boxes.select(-1, 0)) * (boxes.select(-1, 3) - boxes.select(-1, 1));
}

at::Tensor box_iou(const at::Tensor& boxes1_in, const at::Tensor& boxes2_in) {
  check_box_batch(boxes1_in, "box_iou");
  check_box_batch(boxes2_in, "box_iou");
  LARGEDET_CHECK(boxes1_in.dim() == boxes2_in.dim(), "box_iou: boxes of shapes ", boxes1_in.sizes(),
                 " and ", boxes2_in.sizes(), " (one batched, one not)");
  const auto type = geometry_dtype(boxes1_in, boxes2_in);
  const auto boxes1 = boxes1_in.to(type), boxes2 = boxes2_in.to(type);
  auto area1 = box_area(boxes1);
  auto area2 = box_area(boxes2);
  // Side by side, [(B,) N, M] each (torchvision's operations, a few [N, M] buffers at a time
  // rather than [N, M, 2] ones: the batched matching's largest workspace).
  auto side = [&](int64_t lo, int64_t hi) {
    auto a_lo = boxes1.select(-1, lo).unsqueeze(-1), a_hi = boxes1.select(-1, hi).unsqueeze(-1);
    auto b_lo = boxes2.select(-1, lo).unsqueeze(-2), b_hi = boxes2.select(-1, hi).unsqueeze(-2);
    return at::minimum(a_hi, b_hi).sub_(at::maximum(a_lo, b_lo)).clamp_min_(0);
  };
  auto inter = side(0, 2).mul_(side(1, 3));
  auto uni = (area1.unsqueeze(-1) + area2.unsqueeze(-2)).sub_(inter);
  // An empty intersection gives 0 even when the union is 0 or negative (degenerate boxes).
  return at::where(inter > 0, inter / uni, at::zeros({}, inter.options()));
}

at::Tensor clip_boxes_to_image(const at::Tensor& boxes_in, int64_t height, int64_t width) {
  check_boxes(boxes_in, "clip_boxes_to_image");
  const auto boxes = to_geometry_dtype(boxes_in);
  // Columns (x1, x2) and (y1, y2) as strided views: an index tensor would be sent to the device.
  auto x = boxes.slice(1, 0, 4, 2).clamp(0, static_cast<double>(width));
  auto y = boxes.slice(1, 1, 4, 2).clamp(0, static_cast<double>(height));
  return at::stack({x.select(1, 0), y.select(1, 0), x.select(1, 1), y.select(1, 1)}, 1);
}

at::Tensor clip_boxes_to_images(const at::Tensor& boxes_in, const at::Tensor& image_sizes) {
  LARGEDET_CHECK(boxes_in.dim() == 3 && boxes_in.size(2) == 4,
                 "clip_boxes_to_images: expected boxes [B, N, 4], got ", boxes_in.sizes());
  LARGEDET_CHECK(
      image_sizes.dim() == 2 && image_sizes.size(0) == boxes_in.size(0) && image_sizes.size(1) == 2,
      "clip_boxes_to_images: expected image sizes [", boxes_in.size(0), ", 2], got ",
      image_sizes.sizes());
  const auto boxes = to_geometry_dtype(boxes_in);
  // (width, height, width, height) per image: x clamped to [0, width], y to [0, height].
  const auto bound = image_sizes.to(boxes.options()).flip(1).repeat({1, 2}).unsqueeze(1);
  return at::minimum(boxes.clamp_min(0), bound);
}

at::Tensor box_size_at_least(const at::Tensor& boxes, double min_size) {
  check_box_batch(boxes, "box_size_at_least");
  auto ws = boxes.select(-1, 2) - boxes.select(-1, 0);
  auto hs = boxes.select(-1, 3) - boxes.select(-1, 1);
  return (ws >= min_size).logical_and_(hs >= min_size);
}

at::Tensor remove_small_boxes(const at::Tensor& boxes, double min_size) {
  return at::nonzero(box_size_at_least(boxes, min_size)).view(-1);
}

at::Tensor box_convert(const at::Tensor& boxes, BoxFormat in, BoxFormat out) {
  check_boxes(boxes, "box_convert");
  if (in == out) return boxes.clone();
  auto c = boxes.unbind(1);
  // To xyxy first, then to the target format.
  at::Tensor x1, y1, x2, y2;
  switch (in) {
    case BoxFormat::kXYXY:
      x1 = c[0], y1 = c[1], x2 = c[2], y2 = c[3];
      break;
    case BoxFormat::kXYWH:
      x1 = c[0], y1 = c[1], x2 = c[0] + c[2], y2 = c[1] + c[3];
      break;
    case BoxFormat::kCXCYWH:
      x1 = c[0] - 0.5 * c[2], y1 = c[1] - 0.5 * c[3];
      x2 = c[0] + 0.5 * c[2], y2 = c[1] + 0.5 * c[3];
      break;
  }
  switch (out) {
    case BoxFormat::kXYXY:
      return at::stack({x1, y1, x2, y2}, 1);
    case BoxFormat::kXYWH:
      return at::stack({x1, y1, x2 - x1, y2 - y1}, 1);
    case BoxFormat::kCXCYWH:
      return at::stack({(x1 + x2) * 0.5, (y1 + y2) * 0.5, x2 - x1, y2 - y1}, 1);
  }
  return boxes.clone();
}

}  // namespace largedet::ops
