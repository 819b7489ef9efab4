// The grid of `largedet sweep`: `KEY=v1,v2,...` arguments over a base recipe, expanded into cells
// (one training run each) with stable, filesystem-safe names.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace largedet::tools::sweep {

struct Axis {
  std::string key;                  // "SOLVER.IMS_PER_BATCH"
  std::vector<std::string> values;  // {"64", "1024"}
};

struct Grid {
  std::vector<Axis> axes;          // keys with two or more values: they name the cells
  std::vector<std::string> fixed;  // KEY=VALUE applied to every cell, not part of its name
  // Put before every cell's name ("PREFIX_<axes>", or PREFIX alone without axes), so that
  // several grids (other fixed values, other recipes) can share one sweep directory and archive.
  std::string prefix;
};

struct Cell {
  std::string name;                    // "OPTIMIZER-lamb_IMS_PER_BATCH-64"
  std::vector<std::string> overrides;  // the cell's grid coordinates as KEY=VALUE, axis order
  std::vector<std::string> fixed;      // Grid::fixed

  // overrides then fixed: what `largedet train` gets.
  std::vector<std::string> all_overrides() const;
};

// Splits "a,[1, 2],'x,y'" at the commas outside brackets, braces and quotes, so that list values
// such as SOLVER.STEPS=[100,200] stay one value.
std::vector<std::string> split_values(const std::string& text);

// Parses KEY=v1,v2,... arguments. A key with one value is fixed. Throws largedet::Error for an
// argument without '=', an empty key or value, a key given twice, or a prefix with characters
// other than [A-Za-z0-9._+-].
Grid parse_grid(const std::vector<std::string>& arguments, const std::string& prefix = "");

// The Cartesian product of the axes, the first axis varying slowest (itertools.product's order);
// one cell named "base" when there are no axes. Throws largedet::Error, before building any cell,
// when there would be more than `max_cells` (largedet sweep --max-cells), and when two cells get
// the same name (values that differ only in characters the name replaces).
std::vector<Cell> expand(const Grid& grid, int64_t max_cells = 10000);

// The grid's cell count, saturated at INT64_MAX (a product of many axes overflows).
int64_t cell_count(const Grid& grid);
// Throws the error expand() throws for a grid of more than `max_cells` cells.
void check_cell_count(const Grid& grid, int64_t max_cells);

// The name of a cell, from its grid coordinates: for each KEY=VALUE, the shortest dotted suffix
// of KEY that no other axis shares, '-', then VALUE with each run of characters other than
// [A-Za-z0-9._+-] replaced by one '~' (trimmed at the ends; "~" when nothing is left); the pairs
// joined by '_'.
//   SOLVER.OPTIMIZER=lamb, SOLVER.IMS_PER_BATCH=64  ->  OPTIMIZER-lamb_IMS_PER_BATCH-64
//   MODEL.RPN.NMS_THRESH=0.7, MODEL.RETINANET.NMS_THRESH=0.5  ->
//       RPN.NMS_THRESH-0.7_RETINANET.NMS_THRESH-0.5
//   SOLVER.STEPS=[100, 200]  ->  STEPS-100~200
std::string cell_name(const std::vector<std::string>& axis_keys,
                      const std::vector<std::string>& overrides);

}  // namespace largedet::tools::sweep
