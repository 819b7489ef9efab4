#include "sweep/grid.h"

#include <algorithm>
#include <cctype>
#include <limits>
#include <map>
#include <set>

#include "largedet/core/error.h"

namespace largedet::tools::sweep {
namespace {

// Longest name most filesystems allow for one path component.
constexpr size_t kMaxNameLength = 255;

std::vector<std::string> split_key(const std::string& key) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t dot; (dot = key.find('.', start)) != std::string::npos; start = dot + 1)
    parts.push_back(key.substr(start, dot - start));
  parts.push_back(key.substr(start));
  return parts;
}

std::string dotted_suffix(const std::vector<std::string>& parts, size_t count) {
  std::string suffix;
  for (size_t i = parts.size() - count; i < parts.size(); ++i)
    suffix += (suffix.empty() ? "" : ".") + parts[i];
  return suffix;
}

std::string short_key(const std::string& key, const std::vector<std::string>& axis_keys) {
  const auto parts = split_key(key);
  for (size_t count = 1; count < parts.size(); ++count) {
    const std::string suffix = dotted_suffix(parts, count);
    bool shared = false;
    for (const auto& other : axis_keys) {
      if (other == key) continue;
      const auto other_parts = split_key(other);
      shared |= other_parts.size() >= count && dotted_suffix(other_parts, count) == suffix;
    }
    if (!shared) return suffix;
  }
  return key;
}

// The characters a cell's directory name keeps as they are.
bool name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '+' ||
         c == '-';
}

std::string safe_value(const std::string& value) {
  std::string out;
  for (const char c : value) {
    if (name_char(c))
      out += c;
    else if (!out.empty() && out.back() != '~')
      out += '~';
  }
  while (!out.empty() && out.back() == '~') out.pop_back();
  return out.empty() ? "~" : out;
}

std::string trimmed(const std::string& text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string::npos) return "";
  return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

}  // namespace

std::vector<std::string> Cell::all_overrides() const {
  std::vector<std::string> all = overrides;
  all.insert(all.end(), fixed.begin(), fixed.end());
  return all;
}

std::vector<std::string> split_values(const std::string& text) {
  std::vector<std::string> values;
  std::string current;
  int depth = 0;
  char quote = 0;
  for (const char c : text) {
    if (quote) {
      if (c == quote) quote = 0;
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '[' || c == '{') {
      ++depth;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    } else if (c == ',' && depth == 0) {
      values.push_back(trimmed(current));
      current.clear();
      continue;
    }
    current += c;
  }
  values.push_back(trimmed(current));
  return values;
}

Grid parse_grid(const std::vector<std::string>& arguments, const std::string& prefix) {
  Grid grid;
  if (!std::all_of(prefix.begin(), prefix.end(), name_char) || prefix == "." || prefix == "..")
    throw Error("the cell name prefix \"" + prefix + "\" is not a safe directory name", "--prefix",
                "use letters, digits and . _ + - only");
  grid.prefix = prefix;
  std::set<std::string> seen;
  for (const auto& argument : arguments) {
    const auto equals = argument.find('=');
    const std::string key = trimmed(argument.substr(0, equals));
    if (equals == std::string::npos || key.empty())
      throw Error("a grid argument is not KEY=v1,v2,...", argument,
                  "write e.g. SOLVER.IMS_PER_BATCH=64,256,1024 (one value: fixed for every cell)");
    if (!seen.insert(key).second)
      throw Error("key given twice in the grid", key, "list all of its values in one argument");
    const auto values = split_values(argument.substr(equals + 1));
    for (const auto& value : values)
      if (value.empty())
        throw Error("empty value in the grid", argument,
                    "remove the stray comma, or quote an empty string as ''");
    if (values.size() == 1)
      grid.fixed.push_back(key + "=" + values.front());
    else
      grid.axes.push_back({key, values});
  }
  return grid;
}

std::string cell_name(const std::vector<std::string>& axis_keys,
                      const std::vector<std::string>& overrides) {
  if (overrides.empty()) return "base";
  std::string name;
  for (const auto& override_text : overrides) {
    const auto equals = override_text.find('=');
    const std::string key = override_text.substr(0, equals);
    name += (name.empty() ? "" : "_") + short_key(key, axis_keys) + "-" +
            safe_value(override_text.substr(equals + 1));
  }
  return name;
}

int64_t cell_count(const Grid& grid) {
  int64_t count = 1;
  for (const auto& axis : grid.axes) {
    const auto values = static_cast<int64_t>(axis.values.size());
    count = count > std::numeric_limits<int64_t>::max() / values
                ? std::numeric_limits<int64_t>::max()
                : count * values;
  }
  return count;
}

void check_cell_count(const Grid& grid, int64_t max_cells) {
  const int64_t cells_in_grid = cell_count(grid);
  if (cells_in_grid <= max_cells) return;
  std::string product;
  for (const auto& axis : grid.axes)
    product += (product.empty() ? "" : " x ") + std::to_string(axis.values.size());
  throw Error(
      "the grid has " +
          (cells_in_grid == std::numeric_limits<int64_t>::max() ? std::string("more than 9.2e18")
                                                                : std::to_string(cells_in_grid)) +
          " cells (" + product + "), more than --max-cells " + std::to_string(max_cells),
      "largedet sweep", "sweep fewer values or keys at once, or raise --max-cells if you mean it");
}

std::vector<Cell> expand(const Grid& grid, int64_t max_cells) {
  check_cell_count(grid, max_cells);
  std::vector<std::string> axis_keys;
  for (const auto& axis : grid.axes) axis_keys.push_back(axis.key);
  const auto count = static_cast<size_t>(cell_count(grid));
  std::vector<Cell> cells;
  std::map<std::string, std::string> first_with_name;
  for (size_t index = 0; index < count; ++index) {
    Cell cell;
    // Mixed radix with the last axis as the lowest digit: the first axis varies slowest.
    size_t rest = index, stride = count;
    for (const auto& axis : grid.axes) {
      stride /= axis.values.size();
      cell.overrides.push_back(axis.key + "=" + axis.values[rest / stride]);
      rest %= stride;
    }
    cell.fixed = grid.fixed;
    cell.name = cell_name(axis_keys, cell.overrides);
    if (!grid.prefix.empty())
      cell.name = grid.axes.empty() ? grid.prefix : grid.prefix + "_" + cell.name;
    std::string coordinates;
    for (const auto& o : cell.overrides) coordinates += (coordinates.empty() ? "" : " ") + o;
    if (cell.name.size() > kMaxNameLength)
      throw Error("a cell's directory name is longer than 255 characters", cell.name,
                  "sweep fewer keys at once, or fix some of them to one value");
    const auto [it, inserted] = first_with_name.emplace(cell.name, coordinates);
    if (!inserted)
      throw Error("two cells get the same directory name " + cell.name,
                  it->second + " and " + coordinates,
                  "make the values differ in letters, digits or . _ + - (the rest become ~)");
    cells.push_back(std::move(cell));
  }
  return cells;
}

}  // namespace largedet::tools::sweep
