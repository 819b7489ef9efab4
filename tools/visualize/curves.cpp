// write_curves_png and write_scalars_png: the drawing half of plot.h (plot.cpp reads the runs).
#ifdef LARGEDET_WITH_CAIRO

#include <algorithm>
#include <cmath>

#include "largedet/core/error.h"
#include "visualize/cairo_util.h"
#include "visualize/panel.h"
#include "visualize/plot.h"

namespace largedet::tools {
namespace {

constexpr int kWidth = 1500, kHeight = 450;
// --scalars: the height of one stacked panel, without its legend.
constexpr int kScalarPanelHeight = 340;

const Points* find(const RunCurves& run, const std::string& key) {
  const auto it = run.series.find(key);
  return it == run.series.end() || it->second.empty() ? nullptr : &it->second;
}

// One iteration axis for all panels, so that a moment in training lines up across them.
Scale iteration_scale(const std::vector<const Panel*>& panels, int ticks) {
  double x_hi = 0, x_lo = 0;
  for (const Panel* panel : panels) {
    for (const Line& line : panel->lines) {
      x_lo = std::min(x_lo, line.points->front().first);
      x_hi = std::max(x_hi, line.points->back().first);
    }
  }
  return linear_scale(x_lo, x_hi, ticks);
}

// A white width x height picture, drawn by `draw(cr)`, written to `path` atomically.
template <typename Draw>
void write_picture(const std::string& path, int width, int height, const Draw& draw) {
  Surface surface = make_surface(CAIRO_FORMAT_RGB24, width, height, path);
  Context context(cairo_create(surface.get()));
  cairo_t* cr = context.get();
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  draw(cr);
  context.reset();
  write_png_atomically(surface.get(), path);
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
  const Scale x = iteration_scale(panels, options.loss_only ? 10 : 5);

  std::vector<LegendEntry> legend;
  for (size_t i = 0; i < runs.size(); ++i) legend.push_back({runs[i].name, run_color(i)});
  write_picture(path, kWidth, kHeight, [&](cairo_t* cr) {
    const double legend_height = draw_legend(cr, legend, kWidth, kHeight, /*draw=*/false);
    const double panel_width = kWidth / static_cast<double>(panels.size());
    for (size_t i = 0; i < panels.size(); ++i)
      draw_panel(cr, *panels[i], {panel_width * i, 0, panel_width, kHeight - legend_height}, x);
    draw_legend(cr, legend, kWidth, kHeight, /*draw=*/true);
  });
}

void write_scalars_png(const std::string& path, const std::vector<RunCurves>& runs,
                       const std::vector<std::string>& patterns) {
  LARGEDET_CHECK(!runs.empty(), "no runs to plot");
  LARGEDET_CHECK(!patterns.empty(), "no --scalars patterns to plot");
  const std::vector<ScalarPanel> matches = match_scalars(runs, patterns);
  // Sparse traces (AGVM's, evaluations) get a dot per point, so that a single one shows.
  constexpr size_t kDotted = 30;
  std::vector<Panel> panels(matches.size());
  std::vector<std::vector<LegendEntry>> legends(matches.size());
  for (size_t p = 0; p < matches.size(); ++p) {
    panels[p].title = matches[p].pattern;
    panels[p].empty_text = "no values";
    for (size_t r = 0; r < runs.size(); ++r) {
      for (const auto& key : matches[p].keys) {
        const Points* points = find(runs[r], key);
        if (!points) continue;  // this run does not log the key
        // Past the palette's 10 colours, the next 10 lines are dashed, and so on.
        const size_t index = panels[p].lines.size();
        const auto color = run_color(index);
        const bool dashed = index / 10 % 2 == 1;
        const Mark mark = points->size() <= kDotted ? Mark::kDot : Mark::kNone;
        panels[p].lines.push_back({points, color, dashed, 2, mark});
        legends[p].push_back(
            {runs.size() > 1 ? runs[r].name + ": " + key : key, color, Mark::kNone, dashed});
      }
    }
  }
  std::vector<const Panel*> all;
  for (const Panel& panel : panels) all.push_back(&panel);
  const Scale x = iteration_scale(all, 10);

  // Each panel's legend rows below it: measured on a scratch surface to size the picture.
  std::vector<double> legend_heights;
  {
    Surface scratch = make_surface(CAIRO_FORMAT_RGB24, 1, 1, path);
    Context context(cairo_create(scratch.get()));
    for (const auto& legend : legends)
      legend_heights.push_back(draw_legend(context.get(), legend, kWidth, 0, /*draw=*/false));
  }
  double height = 0;
  for (const double legend_height : legend_heights) height += kScalarPanelHeight + legend_height;
  write_picture(path, kWidth, static_cast<int>(std::ceil(height)), [&](cairo_t* cr) {
    double top = 0;
    for (size_t p = 0; p < panels.size(); ++p) {
      draw_panel(cr, panels[p], {0, top, kWidth, kScalarPanelHeight}, x);
      const double bottom = top + kScalarPanelHeight + legend_heights[p];
      draw_legend(cr, legends[p], kWidth, bottom, /*draw=*/true);
      top = bottom;
    }
  });
}

}  // namespace largedet::tools

#endif  // LARGEDET_WITH_CAIRO
