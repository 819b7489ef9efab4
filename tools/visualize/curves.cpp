// write_curves_png: the drawing half of plot.h (plot.cpp reads the runs).
#ifdef LARGEDET_WITH_CAIRO

#include <algorithm>

#include "largedet/core/error.h"
#include "visualize/cairo_util.h"
#include "visualize/panel.h"
#include "visualize/plot.h"

namespace largedet::tools {
namespace {

constexpr int kWidth = 1500, kHeight = 450;

const Points* find(const RunCurves& run, const std::string& key) {
  const auto it = run.series.find(key);
  return it == run.series.end() || it->second.empty() ? nullptr : &it->second;
}

}  // namespace

void write_curves_png(const std::string& path, const std::vector<RunCurves>& runs,
                      const CurvesOptions& options) {
  LARGEDET_CHECK(!runs.empty(), "no runs to plot");
  Panel loss{"total loss", {}, "no training metrics yet"};
  loss.may_log = loss.smooth = true;
  Panel lr{"learning rate", {}, "no training metrics yet"};
  lr.from_zero = true;
  Panel ap{"bbox AP", {}, "no evaluation yet"};
  ap.from_zero = true;
  for (size_t i = 0; i < runs.size(); ++i) {
    if (const Points* p = find(runs[i], "total_loss")) loss.lines.push_back({p, run_color(i)});
    // Runs often share one schedule: earlier runs' lines are wider, so that they show under later
    // ones instead of vanishing.
    const double lr_width = 2 + 1.5 * std::min<size_t>(runs.size() - 1 - i, 3);
    if (const Points* p = find(runs[i], "lr"))
      lr.lines.push_back({p, run_color(i), /*dashed=*/false, lr_width});
    if (const Points* p = find(runs[i], "bbox/AP"))
      ap.lines.push_back({p, run_color(i), /*dashed=*/false, 2, Mark::kDot});
    if (const Points* p = find(runs[i], "segm/AP")) {
      ap.lines.push_back({p, run_color(i), /*dashed=*/true, 2, Mark::kDot});
      ap.title = "AP (bbox solid, segm dashed)";
    }
  }
  std::vector<const Panel*> panels = {&loss};
  if (!options.loss_only) panels.insert(panels.end(), {&lr, &ap});
  // One iteration axis for all panels, so that a moment in training lines up across them.
  double x_hi = 0, x_lo = 0;
  for (const Panel* panel : panels) {
    for (const Line& line : panel->lines) {
      x_lo = std::min(x_lo, line.points->front().first);
      x_hi = std::max(x_hi, line.points->back().first);
    }
  }
  const Scale x = linear_scale(x_lo, x_hi, options.loss_only ? 10 : 5);

  Surface surface = make_surface(CAIRO_FORMAT_RGB24, kWidth, kHeight, path);
  Context context(cairo_create(surface.get()));
  cairo_t* cr = context.get();
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  std::vector<LegendEntry> legend;
  for (size_t i = 0; i < runs.size(); ++i) legend.push_back({runs[i].name, run_color(i)});
  const double legend_height = draw_legend(cr, legend, kWidth, kHeight, /*draw=*/false);
  const double panel_width = kWidth / static_cast<double>(panels.size());
  for (size_t i = 0; i < panels.size(); ++i)
    draw_panel(cr, *panels[i], {panel_width * i, 0, panel_width, kHeight - legend_height}, x);
  draw_legend(cr, legend, kWidth, kHeight, /*draw=*/true);
  context.reset();
  write_png_atomically(surface.get(), path);
}

}  // namespace largedet::tools

#endif  // LARGEDET_WITH_CAIRO
