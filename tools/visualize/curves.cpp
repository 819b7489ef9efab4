// write_curves_png: the drawing half of plot.h (plot.cpp reads the runs).
#ifdef LARGEDET_WITH_CAIRO

#include <algorithm>
#include <cmath>
#include <limits>

#include "largedet/core/error.h"
#include "visualize/axis.h"
#include "visualize/cairo_util.h"
#include "visualize/plot.h"

namespace largedet::tools {
namespace {

constexpr int kWidth = 1500, kHeight = 450;
using Points = std::vector<std::pair<double, double>>;

struct Rect {
  double x, y, w, h;
};

struct Line {
  const Points* points;
  std::array<uint8_t, 3> color;
  bool dashed = false;
  double width = 2;
};

struct Panel {
  std::string title;
  std::vector<Line> lines;
  std::string empty_text;  // shown when no run has this metric
  bool from_zero = false;  // lr and AP read against 0; losses use their own range
  bool may_log = false;    // log y axis when the values span more than 100x
  bool markers = false;    // evaluations are few: mark each one
  bool smooth = false;     // per-period losses are noisy: faint raw curve under a smoothed one
};

enum class Align { kLeft, kCenter, kRight };

// Draws `text` with its baseline at y.
void text(cairo_t* cr, const std::string& s, double x, double y, Align align, double size,
          bool bold = false, double grey = 0.2) {
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL,
                         bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
  cairo_text_extents_t extents;
  cairo_text_extents(cr, s.c_str(), &extents);
  const double shift = align == Align::kLeft     ? 0
                       : align == Align::kCenter ? extents.x_advance / 2
                                                 : extents.x_advance;
  cairo_set_source_rgb(cr, grey, grey, grey);
  cairo_move_to(cr, x - shift, y);
  cairo_show_text(cr, s.c_str());
}

double text_width(cairo_t* cr, const std::string& s, double size) {
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
  cairo_text_extents_t extents;
  cairo_text_extents(cr, s.c_str(), &extents);
  return extents.x_advance;
}

// A debiased exponential moving average over about 1/50 of the points (TensorBoard's smoothing,
// with a weight that adapts to how often the run logged).
Points smoothed(const Points& points) {
  const double weight = 1 - 50.0 / points.size();
  Points out;
  double average = 0, norm = 0;
  for (const auto& [x, y] : points) {
    average = weight * average + (1 - weight) * y;
    norm = weight * norm + (1 - weight);
    out.emplace_back(x, average / norm);
  }
  return out;
}

Scale y_scale(const Panel& panel) {
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (const Line& line : panel.lines) {
    for (const auto& point : *line.points) {
      lo = std::min(lo, point.second);
      hi = std::max(hi, point.second);
    }
  }
  if (panel.may_log && lo > 0 && hi / lo > 100) return log_scale(lo / 1.15, hi * 1.15);
  if (panel.from_zero && lo >= 0) lo = 0;
  const double pad = (hi - lo) * 0.05;
  // Non-negative values (losses) get no axis below 0.
  return linear_scale(lo >= 0 ? std::max(0.0, lo - pad) : lo - pad, hi + pad);
}

void draw_curve(cairo_t* cr, const Points& points, const Rect& plot, const Scale& x,
                const Scale& y) {
  for (size_t i = 0; i < points.size(); ++i) {
    const double px = plot.x + x.fraction(points[i].first) * plot.w;
    const double py = plot.y + plot.h - y.fraction(points[i].second) * plot.h;
    i == 0 ? cairo_move_to(cr, px, py) : cairo_line_to(cr, px, py);
  }
  cairo_stroke(cr);
}

void draw_panel(cairo_t* cr, const Panel& panel, const Rect& area, const Scale& x) {
  const Rect plot{area.x + 66, area.y + 36, area.w - 66 - 20, area.h - 36 - 46};
  if (panel.lines.empty()) {
    text(cr, panel.title, plot.x + plot.w / 2, area.y + 22, Align::kCenter, 14, true);
    cairo_set_source_rgb(cr, 0.8, 0.8, 0.8);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, std::round(plot.x) + 0.5, std::round(plot.y) + 0.5, plot.w, plot.h);
    cairo_stroke(cr);
    text(cr, panel.empty_text, plot.x + plot.w / 2, plot.y + plot.h / 2, Align::kCenter, 14, false,
         0.55);
    return;
  }
  const Scale y = y_scale(panel);
  text(cr, panel.title + (y.log ? " (log scale)" : ""), plot.x + plot.w / 2, area.y + 22,
       Align::kCenter, 14, true);
  const auto px = [&](double v) { return plot.x + x.fraction(v) * plot.w; };
  const auto py = [&](double v) { return plot.y + plot.h - y.fraction(v) * plot.h; };

  // Grid and tick labels; lines on half pixels stay one pixel wide.
  cairo_set_line_width(cr, 1);
  cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
  for (double t : x.ticks) {
    cairo_move_to(cr, std::round(px(t)) + 0.5, plot.y);
    cairo_line_to(cr, std::round(px(t)) + 0.5, plot.y + plot.h);
  }
  for (double t : y.ticks) {
    cairo_move_to(cr, plot.x, std::round(py(t)) + 0.5);
    cairo_line_to(cr, plot.x + plot.w, std::round(py(t)) + 0.5);
  }
  cairo_stroke(cr);
  for (double t : x.ticks)
    text(cr, x.label(t), px(t), plot.y + plot.h + 17, Align::kCenter, 11, false, 0.3);
  for (double t : y.ticks)
    text(cr, y.label(t), plot.x - 7, py(t) + 4, Align::kRight, 11, false, 0.3);
  text(cr, "iteration", plot.x + plot.w / 2, plot.y + plot.h + 36, Align::kCenter, 12);

  cairo_save(cr);
  cairo_rectangle(cr, plot.x, plot.y, plot.w, plot.h);
  cairo_clip(cr);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
  for (const Line& line : panel.lines) {
    const double dash[] = {7, 4};
    cairo_set_dash(cr, dash, line.dashed ? 2 : 0, 0);
    if (panel.smooth && line.points->size() >= 100) {
      set_source(cr, line.color, 0.25);
      cairo_set_line_width(cr, 1);
      draw_curve(cr, *line.points, plot, x, y);
      set_source(cr, line.color);
      cairo_set_line_width(cr, 2);
      draw_curve(cr, smoothed(*line.points), plot, x, y);
    } else {
      set_source(cr, line.color);
      cairo_set_line_width(cr, line.width);
      draw_curve(cr, *line.points, plot, x, y);
    }
    if (panel.markers) {
      for (const auto& [vx, vy] : *line.points) {
        cairo_new_sub_path(cr);
        cairo_arc(cr, px(vx), py(vy), 3, 0, 2 * M_PI);
      }
      cairo_fill(cr);
    }
  }
  cairo_restore(cr);

  // Left and bottom axes over the curves.
  cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
  cairo_set_line_width(cr, 1);
  cairo_move_to(cr, std::round(plot.x) + 0.5, plot.y);
  cairo_line_to(cr, std::round(plot.x) + 0.5, std::round(plot.y + plot.h) + 0.5);
  cairo_line_to(cr, plot.x + plot.w, std::round(plot.y + plot.h) + 0.5);
  cairo_stroke(cr);
}

// Run names in rows under the panels; returns the height used.
double draw_legend(cairo_t* cr, const std::vector<RunCurves>& runs, bool draw) {
  constexpr double kSize = 13, kSample = 24, kGap = 28, kRow = 22;
  std::vector<std::vector<size_t>> rows(1);
  std::vector<double> row_width(1, 0);
  for (size_t i = 0; i < runs.size(); ++i) {
    const double w = kSample + 6 + text_width(cr, runs[i].name, kSize);
    if (!rows.back().empty() && row_width.back() + kGap + w > kWidth - 40) {
      rows.emplace_back();
      row_width.push_back(0);
    }
    row_width.back() += (rows.back().empty() ? 0 : kGap) + w;
    rows.back().push_back(i);
  }
  const double height = rows.size() * kRow + 10;
  if (!draw) return height;
  for (size_t r = 0; r < rows.size(); ++r) {
    double x = (kWidth - row_width[r]) / 2;
    const double baseline = kHeight - height + r * kRow + kRow - 4;
    for (size_t i : rows[r]) {
      set_source(cr, run_color(i));
      cairo_set_line_width(cr, 3);
      cairo_move_to(cr, x, baseline - 4.5);
      cairo_line_to(cr, x + kSample, baseline - 4.5);
      cairo_stroke(cr);
      text(cr, runs[i].name, x + kSample + 6, baseline, Align::kLeft, kSize);
      x += kSample + 6 + text_width(cr, runs[i].name, kSize) + kGap;
    }
  }
  return height;
}

const Points* find(const RunCurves& run, const std::string& key) {
  const auto it = run.series.find(key);
  return it == run.series.end() || it->second.empty() ? nullptr : &it->second;
}

}  // namespace

void write_curves_png(const std::string& path, const std::vector<RunCurves>& runs) {
  LARGEDET_CHECK(!runs.empty(), "no runs to plot");
  Panel loss{"total loss", {}, "no training metrics yet"};
  loss.may_log = loss.smooth = true;
  Panel lr{"learning rate", {}, "no training metrics yet"};
  lr.from_zero = true;
  Panel ap{"bbox AP", {}, "no evaluation yet"};
  ap.from_zero = ap.markers = true;
  for (size_t i = 0; i < runs.size(); ++i) {
    if (const Points* p = find(runs[i], "total_loss")) loss.lines.push_back({p, run_color(i)});
    // Runs often share one schedule: earlier runs' lines are wider, so that they show under later
    // ones instead of vanishing.
    const double lr_width = 2 + 1.5 * std::min<size_t>(runs.size() - 1 - i, 3);
    if (const Points* p = find(runs[i], "lr"))
      lr.lines.push_back({p, run_color(i), /*dashed=*/false, lr_width});
    if (const Points* p = find(runs[i], "bbox/AP")) ap.lines.push_back({p, run_color(i)});
    if (const Points* p = find(runs[i], "segm/AP")) {
      ap.lines.push_back({p, run_color(i), /*dashed=*/true});
      ap.title = "AP (bbox solid, segm dashed)";
    }
  }
  // One iteration axis for all panels, so that a moment in training lines up across them.
  double x_hi = 0, x_lo = 0;
  for (const Panel* panel : {&loss, &lr, &ap}) {
    for (const Line& line : panel->lines) {
      x_lo = std::min(x_lo, line.points->front().first);
      x_hi = std::max(x_hi, line.points->back().first);
    }
  }
  const Scale x = linear_scale(x_lo, x_hi, 5);

  Surface surface = make_surface(CAIRO_FORMAT_RGB24, kWidth, kHeight, path);
  Context context(cairo_create(surface.get()));
  cairo_t* cr = context.get();
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  const double legend_height = draw_legend(cr, runs, /*draw=*/false);
  const double panel_width = kWidth / 3.0;
  int index = 0;
  for (const Panel* panel : {&loss, &lr, &ap})
    draw_panel(cr, *panel, {panel_width * index++, 0, panel_width, kHeight - legend_height}, x);
  draw_legend(cr, runs, /*draw=*/true);
  context.reset();
  write_png_atomically(surface.get(), path);
}

}  // namespace largedet::tools

#endif  // LARGEDET_WITH_CAIRO
