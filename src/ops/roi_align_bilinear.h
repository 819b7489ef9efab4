// The bilinear sampling rule of RoIAlign (torchvision's, detectron2's), shared by the CPU kernel
// (src/ops/roi_align.cpp) and the CUDA kernels (src/ops/cuda/roi_align.cu) so that both sample
// exactly alike: a point more than one pixel outside the map contributes nothing; otherwise it is
// clamped to the map and split over its four neighbours.
#pragma once

#if defined(__CUDACC__)
#define LARGEDET_HOST_DEVICE __host__ __device__
#else
#define LARGEDET_HOST_DEVICE
#endif

namespace largedet::ops::detail {

// Neighbours (row, column) and weights of the point (y, x) on a height x width map; false when
// the point is outside it.
template <typename T>
LARGEDET_HOST_DEVICE inline bool bilinear_neighbours(int height, int width, T y, T x, int& y_low,
                                                     int& x_low, int& y_high, int& x_high, T& w1,
                                                     T& w2, T& w3, T& w4) {
  if (y < -1.0 || y > height || x < -1.0 || x > width) return false;
  if (y <= 0) y = 0;
  if (x <= 0) x = 0;
  y_low = static_cast<int>(y);
  x_low = static_cast<int>(x);
  if (y_low >= height - 1) {
    y_high = y_low = height - 1;
    y = static_cast<T>(y_low);
  } else {
    y_high = y_low + 1;
  }
  if (x_low >= width - 1) {
    x_high = x_low = width - 1;
    x = static_cast<T>(x_low);
  } else {
    x_high = x_low + 1;
  }
  const T ly = y - y_low, lx = x - x_low, hy = T(1) - ly, hx = T(1) - lx;
  w1 = hy * hx, w2 = hy * lx, w3 = ly * hx, w4 = ly * lx;
  return true;
}

}  // namespace largedet::ops::detail
