// Cairo helpers shared by the detection and curve pictures (compiled only with cairo).
#pragma once

#include <cairo.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>

namespace largedet::tools {

struct CairoDeleter {
  void operator()(cairo_surface_t* surface) const { cairo_surface_destroy(surface); }
  void operator()(cairo_t* cr) const { cairo_destroy(cr); }
};
using Surface = std::unique_ptr<cairo_surface_t, CairoDeleter>;
using Context = std::unique_ptr<cairo_t, CairoDeleter>;

// An image surface; throws largedet::Error naming `path` when cairo cannot make one (too large).
Surface make_surface(cairo_format_t format, int width, int height, const std::string& path);

// Writes `surface` to `path` through a temporary file in the same directory and a rename, so that
// a reader (an image viewer refreshing the file during training) never sees a half-written PNG.
// Throws largedet::Error naming the path and cairo's reason on failure.
void write_png_atomically(cairo_surface_t* surface, const std::string& path);

inline void set_source(cairo_t* cr, const std::array<uint8_t, 3>& rgb, double alpha = 1.0) {
  cairo_set_source_rgba(cr, rgb[0] / 255.0, rgb[1] / 255.0, rgb[2] / 255.0, alpha);
}

}  // namespace largedet::tools
