// One plot panel (title, grid, ticks, axes, clipped lines and marks) and a legend in rows: the
// drawing pieces of the curve and AP-vs-batch pictures (compiled only with cairo).
#pragma once

#include <cairo.h>

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "visualize/axis.h"

namespace largedet::tools {

using Points = std::vector<std::pair<double, double>>;

struct Rect {
  double x, y, w, h;
};

enum class Mark { kNone, kDot, kCross };

struct Line {
  const Points* points;
  std::array<uint8_t, 3> color;
  bool dashed = false;
  double width = 2;
  Mark mark = Mark::kNone;  // drawn at every point (evaluations and sweep cells are few)
  bool connect = true;      // false: marks only
};

struct Panel {
  std::string title;
  std::vector<Line> lines;
  std::string empty_text;  // shown when no run has this metric
  std::string x_title = "iteration";
  bool from_zero = false;  // lr and AP read against 0; losses use their own range
  bool may_log = false;    // log y axis when the values span more than 100x
  bool smooth = false;     // per-period losses are noisy: faint raw curve under a smoothed one
};

enum class Align { kLeft, kCenter, kRight };

// Draws `text` with its baseline at y.
void draw_text(cairo_t* cr, const std::string& s, double x, double y, Align align, double size,
               bool bold = false, double grey = 0.2);
double text_width(cairo_t* cr, const std::string& s, double size);

// Draws the panel into `area` against the x scale shared with other panels.
void draw_panel(cairo_t* cr, const Panel& panel, const Rect& area, const Scale& x);

struct LegendEntry {
  std::string name;
  std::array<uint8_t, 3> color;
  Mark mark = Mark::kNone;  // kNone: a line sample
  bool dashed = false;      // the line sample dashed, like its Line
};

// Entries centred in rows at the bottom of a width x height picture; returns the height used
// (with draw false, only measures).
double draw_legend(cairo_t* cr, const std::vector<LegendEntry>& entries, double width,
                   double height, bool draw);

}  // namespace largedet::tools
