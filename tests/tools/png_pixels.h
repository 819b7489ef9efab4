// Reads a PNG back for pixel checks in the picture tests.
#pragma once

#include <cairo.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace largedet::test {

struct Png {
  int width = 0, height = 0;
  std::vector<std::array<uint8_t, 3>> pixels;  // row-major RGB

  explicit Png(const std::string& path) {
    cairo_surface_t* surface = cairo_image_surface_create_from_png(path.c_str());
    if (cairo_surface_status(surface) == CAIRO_STATUS_SUCCESS) {
      width = cairo_image_surface_get_width(surface);
      height = cairo_image_surface_get_height(surface);
      const int stride = cairo_image_surface_get_stride(surface);
      const uint8_t* data = cairo_image_surface_get_data(surface);
      for (int y = 0; y < height; ++y) {
        for (int x = 0; x < width; ++x) {
          const uint32_t p = *reinterpret_cast<const uint32_t*>(data + y * stride + 4 * x);
          pixels.push_back({uint8_t(p >> 16), uint8_t(p >> 8), uint8_t(p)});
        }
      }
    }
    cairo_surface_destroy(surface);
  }
  const std::array<uint8_t, 3>& at(int x, int y) const { return pixels[size_t(y) * width + x]; }
};

inline bool near(const std::array<uint8_t, 3>& a, const std::array<uint8_t, 3>& b, int tolerance) {
  for (int c = 0; c < 3; ++c)
    if (std::abs(int(a[c]) - int(b[c])) > tolerance) return false;
  return true;
}

}  // namespace largedet::test
