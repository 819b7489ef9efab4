// write_ap_vs_batch_png: AP against batch per method (the seed paper's Figure 1).
#ifdef LARGEDET_WITH_CAIRO

#include <algorithm>
#include <cmath>
#include <map>

#include "largedet/core/error.h"
#include "visualize/cairo_util.h"
#include "visualize/panel.h"
#include "visualize/plot.h"

namespace largedet::tools {
namespace {

constexpr int kWidth = 1000, kHeight = 600;
const std::array<uint8_t, 3> kGrey = {90, 90, 90};

struct Series {
  Points mean;      // one point per batch: the mean over its cells (seeds)
  Points cells;     // every cell that did not diverge
  Points diverged;  // at AP 0
};

}  // namespace

void write_ap_vs_batch_png(const std::string& path, const std::vector<BatchPoint>& points) {
  LARGEDET_CHECK(!points.empty(), "no sweep cells to plot");
  std::vector<std::string> names;
  for (const auto& p : points)
    if (std::find(names.begin(), names.end(), p.series) == names.end()) names.push_back(p.series);
  std::vector<Series> series(names.size());
  std::map<std::pair<size_t, double>, std::vector<double>> aps;  // (series, batch) -> cells' AP
  double lo = points.front().batch, hi = lo;
  for (const auto& p : points) {
    LARGEDET_CHECK(p.batch > 0, "batch ", p.batch, " of series ", p.series, " is not positive");
    lo = std::min(lo, p.batch);
    hi = std::max(hi, p.batch);
    const size_t index = std::find(names.begin(), names.end(), p.series) - names.begin();
    if (p.diverged) {
      series[index].diverged.emplace_back(p.batch, 0.0);
    } else {
      series[index].cells.emplace_back(p.batch, p.ap);
      aps[{index, p.batch}].push_back(p.ap);
    }
  }
  for (const auto& [key, values] : aps) {
    double sum = 0;
    for (const double v : values) sum += v;
    series[key.first].mean.emplace_back(key.second, sum / static_cast<double>(values.size()));
  }

  Panel panel{"bbox AP against batch", {}, "no cell has an AP yet"};
  panel.x_title = "batch (SOLVER.IMS_PER_BATCH, log scale)";
  panel.from_zero = true;
  std::vector<LegendEntry> legend;
  bool any_diverged = false;
  for (size_t i = 0; i < series.size(); ++i) {
    const auto color = run_color(i);
    if (!series[i].mean.empty()) panel.lines.push_back({&series[i].mean, color});
    if (!series[i].cells.empty())
      panel.lines.push_back({&series[i].cells, color, false, 2, Mark::kDot, /*connect=*/false});
    if (!series[i].diverged.empty())
      panel.lines.push_back({&series[i].diverged, color, false, 2, Mark::kCross, false});
    any_diverged |= !series[i].diverged.empty();
    legend.push_back({names[i], color});
  }
  if (any_diverged) legend.push_back({"diverged (at 0)", kGrey, Mark::kCross});
  // Half a power of two of room on each side, so that the outermost marks are not on the frame.
  const Scale x = log2_scale(lo / std::sqrt(2.0), hi * std::sqrt(2.0));

  Surface surface = make_surface(CAIRO_FORMAT_RGB24, kWidth, kHeight, path);
  Context context(cairo_create(surface.get()));
  cairo_t* cr = context.get();
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  const double legend_height = draw_legend(cr, legend, kWidth, kHeight, /*draw=*/false);
  draw_panel(cr, panel, {0, 0, kWidth, kHeight - legend_height}, x);
  draw_legend(cr, legend, kWidth, kHeight, /*draw=*/true);
  context.reset();
  write_png_atomically(surface.get(), path);
}

}  // namespace largedet::tools

#endif  // LARGEDET_WITH_CAIRO
