#include "largedet/ops/anchor_generator.h"

#include <list>
#include <map>
#include <mutex>

#include "largedet/core/error.h"
#include "largedet/ops/boxes.h"
#include "largedet/ops/host_sync.h"

namespace largedet::ops {

// Anchor sets by (dtype, device type, device index, then height, width, stride y, stride x per
// level), the least recently used dropped first: multi-scale training pads batches to more sizes
// than the cache holds, and dropping everything at once made each new size a miss for all.
// A miss costs a few kernels on the device, nothing sent from the host: the cell anchors each set
// is made of are kept on the device too.
struct AnchorGenerator::Cache {
  static constexpr size_t kMaxEntries = 64;
  using Key = std::vector<int64_t>;
  std::mutex mutex;
  std::list<std::pair<Key, at::Tensor>> recent;  // the most recently used first
  std::map<Key, std::list<std::pair<Key, at::Tensor>>::iterator> anchors;
  std::map<Key, std::vector<at::Tensor>> cells;  // (dtype, device type, index): one per level
};

namespace {

// Level by level, the cell anchors moved to every location of its grid.
at::Tensor anchors_on_grids(const std::vector<at::Tensor>& cells,
                            const std::vector<std::pair<int64_t, int64_t>>& grid_sizes,
                            const std::vector<std::pair<int64_t, int64_t>>& strides,
                            at::Device device) {
  std::vector<at::Tensor> per_level;
  auto long_opts = at::TensorOptions().dtype(at::kLong).device(device);
  for (size_t l = 0; l < cells.size(); ++l) {
    auto [gh, gw] = grid_sizes[l];
    auto [sh, sw] = strides[l];
    auto shifts_x = at::arange(0, gw, long_opts) * sw;
    auto shifts_y = at::arange(0, gh, long_opts) * sh;
    auto grid = at::meshgrid({shifts_y, shifts_x}, "ij");
    auto sy = grid[0].reshape(-1);
    auto sx = grid[1].reshape(-1);
    auto shifts = at::stack({sx, sy, sx, sy}, 1);
    // int64 shifts + float anchors promote to the anchors' dtype, as in torchvision.
    per_level.push_back((shifts.view({-1, 1, 4}) + cells[l].view({1, -1, 4})).reshape({-1, 4}));
  }
  return at::cat(per_level, 0);
}

}  // namespace

AnchorGenerator::AnchorGenerator(std::vector<std::vector<double>> sizes,
                                 std::vector<std::vector<double>> aspect_ratios)
    : sizes_(std::move(sizes)),
      aspect_ratios_(std::move(aspect_ratios)),
      cache_(std::make_shared<Cache>()) {
  LARGEDET_CHECK(!sizes_.empty(), "AnchorGenerator: no anchor sizes given");
  if (aspect_ratios_.size() == 1 && sizes_.size() > 1)
    aspect_ratios_.resize(sizes_.size(), aspect_ratios_[0]);
  LARGEDET_CHECK(aspect_ratios_.size() == sizes_.size(), "AnchorGenerator: ", sizes_.size(),
                 " levels of sizes but ", aspect_ratios_.size(), " of aspect ratios",
                 " (give one list per level, or a single list for all levels)");
  for (size_t l = 0; l < sizes_.size(); ++l) {
    LARGEDET_CHECK(!sizes_[l].empty() && !aspect_ratios_[l].empty(), "AnchorGenerator: level ", l,
                   " has no sizes or no aspect ratios");
    for (double r : aspect_ratios_[l])
      LARGEDET_CHECK(r > 0, "AnchorGenerator: aspect ratios must be > 0, got ", r);
  }
}

int64_t AnchorGenerator::num_anchors_per_location(int64_t level) const {
  LARGEDET_CHECK(level >= 0 && level < num_levels(), "AnchorGenerator: no level ", level);
  return static_cast<int64_t>(sizes_[level].size() * aspect_ratios_[level].size());
}

at::Tensor AnchorGenerator::cell_anchors(int64_t level, at::ScalarType dtype,
                                         at::Device device) const {
  LARGEDET_CHECK(level >= 0 && level < num_levels(), "AnchorGenerator: no level ", level);
  // torchvision's generate_anchors, op for op in the same dtype, so the rounding agrees. On the
  // host: these are IEEE operations (sqrt and division correctly rounded), the same on a GPU, and
  // the few values are then sent, not the sizes and ratios they come from.
  auto scales = at::tensor(sizes_[level], at::kDouble).to(dtype);
  auto ratios = at::tensor(aspect_ratios_[level], at::kDouble).to(dtype);
  auto h_ratios = at::sqrt(ratios);
  auto w_ratios = 1 / h_ratios;
  auto ws = (w_ratios.unsqueeze(1) * scales.unsqueeze(0)).view(-1);
  auto hs = (h_ratios.unsqueeze(1) * scales.unsqueeze(0)).view(-1);
  return upload((at::stack({-ws, -hs, ws, hs}, 1) / 2).round(), device, "cell anchors");
}

at::Tensor AnchorGenerator::grid_anchors(const std::vector<std::pair<int64_t, int64_t>>& grid_sizes,
                                         const std::vector<std::pair<int64_t, int64_t>>& strides,
                                         at::ScalarType dtype, at::Device device) const {
  LARGEDET_CHECK(static_cast<int64_t>(grid_sizes.size()) == num_levels() &&
                     strides.size() == grid_sizes.size(),
                 "AnchorGenerator: ", num_levels(), " levels of anchors but ", grid_sizes.size(),
                 " feature maps and ", strides.size(), " strides");
  std::vector<at::Tensor> cells;
  for (int64_t l = 0; l < num_levels(); ++l) cells.push_back(cell_anchors(l, dtype, device));
  return anchors_on_grids(cells, grid_sizes, strides, device);
}

at::Tensor AnchorGenerator::operator()(std::pair<int64_t, int64_t> image_size,
                                       const std::vector<std::pair<int64_t, int64_t>>& grid_sizes,
                                       at::ScalarType dtype, at::Device device) const {
  std::vector<std::pair<int64_t, int64_t>> strides;
  for (auto [gh, gw] : grid_sizes) {
    LARGEDET_CHECK(gh > 0 && gw > 0, "AnchorGenerator: empty feature map ", gh, "x", gw);
    strides.emplace_back(image_size.first / gh, image_size.second / gw);
  }
  LARGEDET_CHECK(static_cast<int64_t>(grid_sizes.size()) == num_levels(),
                 "AnchorGenerator: ", num_levels(), " levels of anchors but ", grid_sizes.size(),
                 " feature maps");
  Cache::Key key = {static_cast<int64_t>(dtype), static_cast<int64_t>(device.type()),
                    device.index()};
  Cache& c = *cache_;
  std::lock_guard<std::mutex> lock(c.mutex);
  auto& cells = c.cells[key];
  if (cells.empty())
    for (int64_t l = 0; l < num_levels(); ++l) cells.push_back(cell_anchors(l, dtype, device));
  for (size_t l = 0; l < grid_sizes.size(); ++l) {
    key.insert(key.end(),
               {grid_sizes[l].first, grid_sizes[l].second, strides[l].first, strides[l].second});
  }
  if (auto it = c.anchors.find(key); it != c.anchors.end()) {
    c.recent.splice(c.recent.begin(), c.recent, it->second);
    return it->second->second;
  }
  if (c.recent.size() >= Cache::kMaxEntries) {
    c.anchors.erase(c.recent.back().first);
    c.recent.pop_back();
  }
  c.recent.emplace_front(key, anchors_on_grids(cells, grid_sizes, strides, device));
  c.anchors.emplace(std::move(key), c.recent.begin());
  return c.recent.front().second;
}

at::Tensor AnchorGenerator::operator()(std::pair<int64_t, int64_t> image_size,
                                       const std::vector<at::Tensor>& feature_maps) const {
  LARGEDET_CHECK(!feature_maps.empty(), "AnchorGenerator: no feature maps");
  std::vector<std::pair<int64_t, int64_t>> grid_sizes;
  for (const auto& f : feature_maps) {
    LARGEDET_CHECK(f.dim() >= 2, "AnchorGenerator: feature map of shape ", f.sizes());
    grid_sizes.emplace_back(f.size(-2), f.size(-1));
  }
  return (*this)(image_size, grid_sizes, geometry_dtype(feature_maps[0].scalar_type()),
                 feature_maps[0].device());
}

}  // namespace largedet::ops
