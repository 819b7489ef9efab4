#ifdef LARGEDET_WITH_CAIRO

#include "visualize/panel.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "visualize/cairo_util.h"

namespace largedet::tools {
namespace {

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
  if (panel.from_zero && lo >= 0) {
    lo = 0;
    if (hi == 0) hi = 1;  // all zero (untrained APs): no band below 0
  }
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

void draw_mark(cairo_t* cr, Mark mark, double px, double py) {
  if (mark == Mark::kDot) {
    cairo_new_sub_path(cr);
    cairo_arc(cr, px, py, 3, 0, 2 * M_PI);
    cairo_fill(cr);
  } else if (mark == Mark::kCross) {
    cairo_set_dash(cr, nullptr, 0, 0);
    cairo_set_line_width(cr, 2.5);
    cairo_move_to(cr, px - 5, py - 5);
    cairo_line_to(cr, px + 5, py + 5);
    cairo_move_to(cr, px - 5, py + 5);
    cairo_line_to(cr, px + 5, py - 5);
    cairo_stroke(cr);
  }
}

}  // namespace

void draw_text(cairo_t* cr, const std::string& s, double x, double y, Align align, double size,
               bool bold, double grey) {
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

void draw_panel(cairo_t* cr, const Panel& panel, const Rect& area, const Scale& x) {
  const Rect plot{area.x + 66, area.y + 36, area.w - 66 - 20, area.h - 36 - 46};
  if (panel.lines.empty()) {
    draw_text(cr, panel.title, plot.x + plot.w / 2, area.y + 22, Align::kCenter, 14, true);
    cairo_set_source_rgb(cr, 0.8, 0.8, 0.8);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, std::round(plot.x) + 0.5, std::round(plot.y) + 0.5, plot.w, plot.h);
    cairo_stroke(cr);
    draw_text(cr, panel.empty_text, plot.x + plot.w / 2, plot.y + plot.h / 2, Align::kCenter, 14,
              false, 0.55);
    return;
  }
  const Scale y = y_scale(panel);
  draw_text(cr, panel.title + (y.log ? " (log scale)" : ""), plot.x + plot.w / 2, area.y + 22,
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
    draw_text(cr, x.label(t), px(t), plot.y + plot.h + 17, Align::kCenter, 11, false, 0.3);
  for (double t : y.ticks)
    draw_text(cr, y.label(t), plot.x - 7, py(t) + 4, Align::kRight, 11, false, 0.3);
  draw_text(cr, panel.x_title, plot.x + plot.w / 2, plot.y + plot.h + 36, Align::kCenter, 12);

  cairo_save(cr);
  // Marks on the axes (a diverged cell at AP 0) stay whole.
  cairo_rectangle(cr, plot.x - 6, plot.y - 6, plot.w + 12, plot.h + 12);
  cairo_clip(cr);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
  for (const Line& line : panel.lines) {
    const double dash[] = {7, 4};
    cairo_set_dash(cr, dash, line.dashed ? 2 : 0, 0);
    if (line.connect && panel.smooth && line.points->size() >= 100) {
      set_source(cr, line.color, 0.25);
      cairo_set_line_width(cr, 1);
      draw_curve(cr, *line.points, plot, x, y);
      set_source(cr, line.color);
      cairo_set_line_width(cr, 2);
      draw_curve(cr, smoothed(*line.points), plot, x, y);
    } else if (line.connect) {
      set_source(cr, line.color);
      cairo_set_line_width(cr, line.width);
      draw_curve(cr, *line.points, plot, x, y);
    }
    set_source(cr, line.color);
    for (const auto& [vx, vy] : *line.points) draw_mark(cr, line.mark, px(vx), py(vy));
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

double draw_legend(cairo_t* cr, const std::vector<LegendEntry>& entries, double width,
                   double height, bool draw) {
  constexpr double kSize = 13, kSample = 24, kGap = 28, kRow = 22;
  std::vector<std::vector<size_t>> rows(1);
  std::vector<double> row_width(1, 0);
  for (size_t i = 0; i < entries.size(); ++i) {
    const double w = kSample + 6 + text_width(cr, entries[i].name, kSize);
    if (!rows.back().empty() && row_width.back() + kGap + w > width - 40) {
      rows.emplace_back();
      row_width.push_back(0);
    }
    row_width.back() += (rows.back().empty() ? 0 : kGap) + w;
    rows.back().push_back(i);
  }
  const double used = rows.size() * kRow + 10;
  if (!draw) return used;
  for (size_t r = 0; r < rows.size(); ++r) {
    double x = (width - row_width[r]) / 2;
    const double baseline = height - used + r * kRow + kRow - 4;
    for (size_t i : rows[r]) {
      const LegendEntry& entry = entries[i];
      set_source(cr, entry.color);
      if (entry.mark == Mark::kNone) {
        const double dash[] = {7, 4};
        cairo_set_dash(cr, dash, entry.dashed ? 2 : 0, 0);
        cairo_set_line_width(cr, 3);
        cairo_move_to(cr, x, baseline - 4.5);
        cairo_line_to(cr, x + kSample, baseline - 4.5);
        cairo_stroke(cr);
        cairo_set_dash(cr, nullptr, 0, 0);
      } else {
        draw_mark(cr, entry.mark, x + kSample / 2, baseline - 4.5);
      }
      draw_text(cr, entry.name, x + kSample + 6, baseline, Align::kLeft, kSize);
      x += kSample + 6 + text_width(cr, entry.name, kSize) + kGap;
    }
  }
  return used;
}

}  // namespace largedet::tools

#endif  // LARGEDET_WITH_CAIRO
