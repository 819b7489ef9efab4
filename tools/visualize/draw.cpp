#include "visualize/draw.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "largedet/core/error.h"

#ifdef LARGEDET_WITH_CAIRO
#include "visualize/cairo_util.h"
#endif

namespace largedet::tools {

std::array<uint8_t, 3> label_color(int label) {
  // The head of detectron2's colormap: saturated, mutually distinct hues first.
  static const std::array<uint8_t, 3> palette[] = {
      {0, 114, 189},  {217, 83, 25}, {237, 177, 32}, {126, 47, 142},  {119, 172, 48},
      {77, 190, 238}, {162, 20, 47}, {77, 77, 77},   {153, 153, 153}, {255, 0, 0},
      {255, 128, 0},  {191, 191, 0}, {0, 255, 0},    {0, 0, 255},     {170, 0, 255},
      {85, 85, 0},    {85, 170, 0},  {85, 255, 0},   {170, 85, 0},    {170, 170, 0},
      {170, 255, 0},  {255, 85, 0},  {255, 170, 0},  {255, 255, 0},   {0, 85, 128},
      {0, 170, 128},  {0, 255, 128}, {85, 0, 128},   {85, 85, 128},   {85, 170, 128}};
  const int n = static_cast<int>(std::size(palette));
  return palette[((label % n) + n) % n];
}

#ifdef LARGEDET_WITH_CAIRO
namespace {

constexpr double kMaskAlpha = 0.45;

// Blends each detection's mask into the pixels (cairo's native 0xXXRRGGBB words) and paints its
// one-pixel contour in the full colour, so that touching masks of one class stay apart.
void blend_masks(uint32_t* pixels, int stride_words, int height, int width,
                 const std::vector<const DrawnDetection*>& order) {
  for (const DrawnDetection* d : order) {
    if (d->mask.empty()) continue;
    const auto c = label_color(d->label);
    const auto at = [&](int y, int x) {
      return y >= 0 && y < height && x >= 0 && x < width && d->mask[size_t(y) * width + x];
    };
    for (int y = 0; y < height; ++y) {
      for (int x = 0; x < width; ++x) {
        if (!at(y, x)) continue;
        const bool edge = !at(y - 1, x) || !at(y + 1, x) || !at(y, x - 1) || !at(y, x + 1);
        const double a = edge ? 1.0 : kMaskAlpha;
        uint32_t& p = pixels[size_t(y) * stride_words + x];
        const auto mix = [&](int shift, uint8_t to) {
          const double from = (p >> shift) & 0xff;
          return uint32_t(std::lround(from * (1 - a) + to * a)) << shift;
        };
        p = 0xff000000u | mix(16, c[0]) | mix(8, c[1]) | mix(0, c[2]);
      }
    }
  }
}

// A filled tag with "name 0.93" just above the box, or inside its top when there is no room above;
// always inside the image.
void draw_tag(cairo_t* cr, const DrawnDetection& d, int height, int width, double font_size) {
  std::string text = d.name.empty() ? std::to_string(d.label) : d.name;
  if (d.score >= 0) {
    char score[16];
    std::snprintf(score, sizeof score, " %.2f", d.score);
    text += score;
  }
  cairo_set_font_size(cr, font_size);
  cairo_text_extents_t extents;
  cairo_text_extents(cr, text.c_str(), &extents);
  const double pad = std::round(font_size * 0.25);
  const double tag_w = extents.x_advance + 2 * pad, tag_h = std::round(font_size * 1.3);
  double x = std::clamp<double>(d.x1, 0, std::max(0.0, width - tag_w));
  double y = d.y1 - tag_h >= 0 ? d.y1 - tag_h : d.y1;
  y = std::clamp<double>(y, 0, std::max(0.0, height - tag_h));
  const auto c = label_color(d.label);
  set_source(cr, c, 0.85);
  cairo_rectangle(cr, x, y, tag_w, tag_h);
  cairo_fill(cr);
  // Dark text on light colours, white on dark ones (perceived brightness).
  const double luma = (0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]) / 255.0;
  const double ink = luma > 0.6 ? 0.0 : 1.0;
  cairo_set_source_rgb(cr, ink, ink, ink);
  cairo_move_to(cr, x + pad, y + tag_h - std::round(font_size * 0.33));
  cairo_show_text(cr, text.c_str());
}

}  // namespace

void write_detections_png(const std::string& path, const uint8_t* rgb, int height, int width,
                          const std::vector<DrawnDetection>& detections) {
  LARGEDET_CHECK(height > 0 && width > 0, "cannot draw an empty image (", height, "x", width, ")");
  for (const auto& d : detections) {
    if (!d.mask.empty() && d.mask.size() != size_t(height) * width)
      throw Error(detail::concat("mask has ", d.mask.size(), " values, the image ", height, "x",
                                 width, " needs ", size_t(height) * width),
                  path, "pass masks pasted at image size, or none");
  }
  Surface surface = make_surface(CAIRO_FORMAT_RGB24, width, height, path);
  const int stride_words = cairo_image_surface_get_stride(surface.get()) / 4;
  auto* pixels = reinterpret_cast<uint32_t*>(cairo_image_surface_get_data(surface.get()));
  for (int y = 0; y < height; ++y) {
    const uint8_t* row = rgb + size_t(y) * width * 3;
    for (int x = 0; x < width; ++x)
      pixels[size_t(y) * stride_words + x] =
          0xff000000u | uint32_t(row[3 * x]) << 16 | uint32_t(row[3 * x + 1]) << 8 | row[3 * x + 2];
  }
  // Large objects first, so that small ones stay visible on top of them.
  std::vector<const DrawnDetection*> order;
  for (const auto& d : detections) order.push_back(&d);
  std::stable_sort(order.begin(), order.end(), [](const auto* a, const auto* b) {
    return (a->x2 - a->x1) * (a->y2 - a->y1) > (b->x2 - b->x1) * (b->y2 - b->y1);
  });
  blend_masks(pixels, stride_words, height, width, order);
  cairo_surface_mark_dirty(surface.get());

  Context context(cairo_create(surface.get()));
  cairo_t* cr = context.get();
  const double scale = std::sqrt(double(height) * width);
  cairo_set_line_width(cr, std::max(2.0, std::round(scale / 300)));
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_MITER);
  for (const DrawnDetection* d : order) {
    set_source(cr, label_color(d->label));
    cairo_rectangle(cr, d->x1, d->y1, d->x2 - d->x1, d->y2 - d->y1);
    cairo_stroke(cr);
  }
  // Tags last: no box outline crosses a tag's text.
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD);
  const double font_size = std::clamp(std::round(scale / 45), 10.0, 28.0);
  for (const DrawnDetection* d : order) draw_tag(cr, *d, height, width, font_size);
  context.reset();  // finishes drawing into the surface
  write_png_atomically(surface.get(), path);
}

#else  // LARGEDET_WITH_CAIRO

void write_detections_png(const std::string& path, const uint8_t*, int, int,
                          const std::vector<DrawnDetection>&) {
  throw Error("LargeDet was built without cairo: cannot draw pictures", path,
              "install libcairo2-dev with `make deps`, then rebuild");
}

#endif  // LARGEDET_WITH_CAIRO

}  // namespace largedet::tools
