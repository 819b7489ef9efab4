// A line-by-line port of COCO's maskApi.c (the version pycocotools 2.0.x ships). The arithmetic,
// integer widths and rounding are kept as they are there on purpose: that is what makes areas,
// IoUs and compressed strings identical to pycocotools'. Only bounds checks were added.
#include "largedet/evaluation/rle.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "largedet/core/error.h"

namespace largedet::evaluation {
namespace {

inline uint32_t umin(uint32_t a, uint32_t b) { return a < b ? a : b; }
inline uint32_t umax(uint32_t a, uint32_t b) { return a > b ? a : b; }

uint64_t sum_counts(const std::vector<uint32_t>& counts) {
  uint64_t total = 0;
  for (uint32_t c : counts) total += c;
  return total;
}

// rleFrPoly walks the outline on its 5x grid one point per step, and keeps only the points on the
// image's pixel columns: a vertex far outside costs memory and time by its distance (a vertex at
// 1e88 in a results file, found by fuzz_coco_results), and past int's range its conversion is
// undefined. An outline longer than its edges would be if each spanned three image sizes (a
// polygon reaching one image size beyond the borders) cannot be a real mask's: it is refused
// before the walk. `points` is the walk's length over the outline's `k` edges.
void check_outline(uint64_t points, size_t k, uint32_t h, uint32_t w) {
  const uint64_t limit = k * (15 * (uint64_t(std::max(h, w)) + 1) + 1);
  if (points > limit) {
    throw Error(detail::concat("polygon reaches far outside its ", h, " x ", w, " image (", points,
                               " outline points on maskApi's 5x grid, more than ", limit, ")"),
                "rle_from_polygon", "polygon coordinates are pixels of the image");
  }
}

// scale * v + .5 as rleFrPoly rounds it, for |scale * v| < 2^30 (so that differences fit int).
int grid_coordinate(double v, double scale, uint32_t h, uint32_t w) {
  if (!(std::fabs(scale * v) < double(1 << 30))) {
    throw Error(
        detail::concat("polygon coordinate ", v, " lies far outside its ", h, " x ", w, " image"),
        "rle_from_polygon", "polygon coordinates are pixels of the image");
  }
  return int(scale * v + .5);
}

}  // namespace

Rle rle_encode(const uint8_t* mask, uint32_t h, uint32_t w) {
  Rle rle{h, w, {}};
  const uint64_t n = uint64_t(h) * w;
  uint8_t previous = 0;
  uint32_t run = 0;
  for (uint64_t j = 0; j < n; ++j) {
    uint8_t value = mask[j] ? 1 : 0;
    if (value != previous) {
      rle.counts.push_back(run);
      run = 0;
      previous = value;
    }
    ++run;
  }
  rle.counts.push_back(run);
  return rle;
}

std::vector<uint8_t> rle_decode(const Rle& rle) {
  const uint64_t n = uint64_t(rle.h) * rle.w;
  if (sum_counts(rle.counts) != n) {
    throw Error(detail::concat("RLE runs sum to ", sum_counts(rle.counts),
                               " pixels, but the mask is ", rle.h, " x ", rle.w),
                "rle_decode", "the counts do not belong to a mask of this size");
  }
  std::vector<uint8_t> mask(n);
  uint64_t at = 0;
  uint8_t value = 0;
  for (uint32_t c : rle.counts) {
    std::fill(mask.begin() + at, mask.begin() + at + c, value);
    at += c;
    value = !value;
  }
  return mask;
}

std::string rle_to_string(const Rle& rle) {
  std::string s;
  s.reserve(rle.counts.size() * 2);
  const auto& cnts = rle.counts;
  for (size_t i = 0; i < cnts.size(); ++i) {
    // Runs after the third are stored as the difference to the run two before (same colour).
    int64_t x = int64_t(cnts[i]);
    if (i > 2) x -= int64_t(cnts[i - 2]);
    bool more = true;
    while (more) {
      char c = char(x & 0x1f);
      x >>= 5;  // arithmetic shift: negative differences keep their sign
      more = (c & 0x10) ? x != -1 : x != 0;
      if (more) c |= 0x20;
      s.push_back(char(c + 48));
    }
  }
  return s;
}

namespace {

// rle_from_string's errors, out of line and cold, so that its decoding loop keeps its state in
// registers (a throw inside the loop made it spill its running total to memory).
[[noreturn]] __attribute__((noinline, cold)) void value_too_long() {
  throw Error("compressed RLE string has a value too long", "counts");
}

[[noreturn]] __attribute__((noinline, cold)) void run_out_of_range(size_t m, int64_t x) {
  throw Error(detail::concat("compressed RLE string decodes to run ", m, " of length ", x),
              "counts", "runs must be between 0 and 2^32-1");
}

}  // namespace

Rle rle_from_string(std::string_view s, uint32_t h, uint32_t w) {
  // The characters are checked in one pass first, so that decoding (half of a segm results file's
  // parse) runs without a branch per character: only the last can leave a value unfinished. The
  // same pass counts the values (characters without the continuation bit), so that the runs take
  // exactly their memory: 500k masks at 4 bytes per character were ~0.5 GB of page faults.
  size_t values = 0;
  for (size_t p = 0; p < s.size(); ++p) {
    const unsigned c = unsigned(uint8_t(s[p])) - 48u;
    if (c > 63u) {
      throw Error(detail::concat("compressed RLE string has character '", s[p], "' at position ", p,
                                 ", outside '0'..'o'"),
                  "counts", "expected a pycocotools-compressed \"counts\" string");
    }
    values += (c & 0x20) == 0;
  }
  if (!s.empty() && ((uint8_t(s.back()) - 48) & 0x20)) {
    throw Error("compressed RLE string ends in the middle of a value", "counts",
                "the string is truncated");
  }
  Rle rle{h, w, {}};
  rle.counts.resize(values);
  uint32_t* counts = rle.counts.data();
  const uint8_t* p = reinterpret_cast<const uint8_t*>(s.data());
  const uint8_t* const end = p + s.size();
  size_t m = 0;
  uint64_t total = 0;
  while (p < end) {
    int64_t x = 0;
    int k = 0;
    unsigned c;
    do {
      c = unsigned(*p++) - 48u;
      x |= int64_t(c & 0x1f) << (5 * k);
      ++k;
    } while ((c & 0x20) && k < 12);
    if (c & 0x20) value_too_long();  // each value ends in its own character: m stays in bounds
    if (c & 0x10) x |= ~((int64_t(1) << (5 * k)) - 1);  // sign extension
    if (m > 2) x += int64_t(counts[m - 2]);
    if (x < 0 || x > int64_t(UINT32_MAX)) run_out_of_range(m, x);
    counts[m++] = uint32_t(x);
    total += uint32_t(x);
  }
  if (total != uint64_t(h) * w) {
    throw Error(detail::concat("compressed RLE runs sum to ", total, " pixels, but \"size\" is [",
                               h, ", ", w, "] (", uint64_t(h) * w, " pixels)"),
                "counts", "\"size\" must be [height, width] of the mask that was encoded");
  }
  return rle;
}

Rle rle_merge(const std::vector<Rle>& rles, bool intersect) {
  if (rles.empty()) return Rle{};
  if (rles.size() == 1) return rles[0];
  uint32_t h = rles[0].h, w = rles[0].w;
  std::vector<uint32_t> cnts = rles[0].counts;
  std::vector<uint32_t> out;
  for (size_t i = 1; i < rles.size(); ++i) {
    const Rle& b_rle = rles[i];
    if (b_rle.h != h || b_rle.w != w) return Rle{};
    const std::vector<uint32_t>& A = cnts;
    const std::vector<uint32_t>& B = b_rle.counts;
    out.clear();
    uint32_t ca = A.empty() ? 0 : A[0], cb = B.empty() ? 0 : B[0];
    int v = 0, va = 0, vb = 0, vp;
    size_t a = 1, b = 1;
    uint32_t cc = 0, ct = 1;
    while (ct > 0) {
      uint32_t c = umin(ca, cb);
      cc += c;
      ct = 0;
      ca -= c;
      if (!ca && a < A.size()) {
        ca = A[a++];
        va = !va;
      }
      ct += ca;
      cb -= c;
      if (!cb && b < B.size()) {
        cb = B[b++];
        vb = !vb;
      }
      ct += cb;
      vp = v;
      v = intersect ? (va && vb) : (va || vb);
      if (v != vp || ct == 0) {
        out.push_back(cc);
        cc = 0;
      }
    }
    cnts.swap(out);
  }
  return Rle{h, w, std::move(cnts)};
}

uint64_t rle_area(const Rle& rle) {
  uint64_t area = 0;
  for (size_t j = 1; j < rle.counts.size(); j += 2) area += rle.counts[j];
  return area;
}

namespace {

// Column and row of a position in a column-major h-row mask. Two integer divisions per run made
// rle_to_bbox a fifth of segm evaluation; a multiplication by 1/h, corrected by one step where
// rounding left it off by one, gives the same quotient exactly (positions are below 2^32, so the
// product's error stays far below 1).
struct ColumnOf {
  explicit ColumnOf(uint32_t h) : h(h), inverse(1.0 / h) {}
  uint32_t column(uint32_t p) const {
    uint32_t q = uint32_t(double(p) * inverse);
    if (uint64_t(q) * h > p)
      --q;
    else if (uint64_t(q + 1) * h <= p)
      ++q;
    return q;
  }
  uint32_t h;
  double inverse;
};

}  // namespace

BoxXywh rle_to_bbox(const Rle& rle) {
  const uint32_t h = rle.h, w = rle.w;
  size_t m = (rle.counts.size() / 2) * 2;
  if (m == 0 || h == 0) return {0, 0, 0, 0};
  const ColumnOf column_of(h);
  uint32_t xs = w, ys = h, xe = 0, ye = 0, cc = 0;
  for (size_t j = 0; j < m; ++j) {
    uint32_t start = cc;               // start of the current run
    cc += rle.counts[j];               // start of the next run
    if (j % 2 == 0) continue;          // background run
    if (rle.counts[j] == 0) continue;  // empty foreground run
    // Most runs lie within one column: then the end's column is the start's too.
    const uint32_t x_end = column_of.column(cc - 1), y_end = cc - 1 - x_end * h;
    const uint32_t x_start = start >= x_end * h ? x_end : column_of.column(start);
    const uint32_t y_start = start - x_start * h;
    xs = umin(xs, x_start);
    xe = umax(xe, x_end);
    if (x_start < x_end) {
      ys = 0;  // the run wraps over a column boundary
      ye = h - 1;
    } else {
      ys = umin(ys, y_start);
      ye = umax(ye, y_end);
    }
  }
  return {double(xs), double(ys), double(xe) - double(xs) + 1, double(ye) - double(ys) + 1};
}

namespace {

// Sorts linear indices (column * h + row) as std::sort would, in linear time: a counting sort by
// column over the columns the outline spans, then an insertion sort, which only reorders the
// few crossings of one column. (std::sort's introsort met the outline's order as a bad case.)
void sort_by_column(std::vector<uint32_t>& a, const std::vector<int>& columns) {
  if (a.size() < 32) {
    std::sort(a.begin(), a.end());
    return;
  }
  const auto [lo, hi] = std::minmax_element(columns.begin(), columns.end());
  std::vector<uint32_t> start(size_t(*hi - *lo) + 2, 0);
  for (int c : columns) ++start[size_t(c - *lo) + 1];
  for (size_t i = 1; i < start.size(); ++i) start[i] += start[i - 1];
  std::vector<uint32_t> sorted(a.size());
  for (size_t j = 0; j < a.size(); ++j) sorted[start[size_t(columns[j] - *lo)]++] = a[j];
  for (size_t i = 1; i < sorted.size(); ++i) {
    const uint32_t v = sorted[i];
    size_t j = i;
    for (; j > 0 && sorted[j - 1] > v; --j) sorted[j] = sorted[j - 1];
    sorted[j] = v;
  }
  a.swap(sorted);
}

}  // namespace

Rle rle_from_polygon(const double* xy, size_t k, uint32_t h, uint32_t w) {
  if (k == 0) return Rle{h, w, {uint32_t(uint64_t(h) * w)}};
  // Upsample (x5) and walk the boundary densely.
  constexpr int kUpsample = 5;
  const double scale = kUpsample;
  std::vector<int> x(k + 1), y(k + 1);
  for (size_t j = 0; j < k; ++j) x[j] = grid_coordinate(xy[j * 2 + 0], scale, h, w);
  x[k] = x[0];
  for (size_t j = 0; j < k; ++j) y[j] = grid_coordinate(xy[j * 2 + 1], scale, h, w);
  y[k] = y[0];
  // Grid coordinates below 2^30 in magnitude keep these differences within int.
  size_t m = 0;
  for (size_t j = 0; j < k; ++j)
    m += umax(uint32_t(std::abs(x[j] - x[j + 1])), uint32_t(std::abs(y[j] - y[j + 1]))) + 1;
  check_outline(m, k, h, w);
  // maskApi walks the upsampled boundary into arrays u, v, then keeps the points where it crosses a
  // pixel column centre, downsampled. Here each point is looked at as it is made. Where the column
  // changes, maskApi's xd = (uu + .5) / 5 - .5 (uu: the smaller column, or the new one minus 1) is
  // an integer exactly when uu = 5n + 2, and then it is n: the quotient of any other uu is at
  // least 0.2 from an integer, far beyond rounding for coordinates below 2^30. So the division
  // and floor run only for the points kept, and the arrays are never made.
  static_assert(kUpsample == 5, "the column-centre test below is for 5x upsampling");
  const double w_minus_1 = double(uint64_t(w) - 1);  // size_t arithmetic, as in maskApi
  std::vector<uint32_t> a;   // linear indices of the kept points, then run lengths
  std::vector<int> columns;  // of the kept points
  a.reserve(m / kUpsample + k + 2);
  columns.reserve(m / kUpsample + k + 2);
  // Whether a step's uu (the smaller column, or the new one minus 1: maskApi's xd above) can be
  // kept: checked before the steps' rows are computed, which most steps never need.
  auto centre = [](int uu) { return (uu - 2) % kUpsample == 0; };
  // A step between two columns, v0 and v1 the rows of its two points.
  auto crossing = [&](int uu, int v0, int v1) {
    const int n = (uu - 2) / kUpsample;
    if (!centre(uu) || n < 0 || double(n) > w_minus_1) return;
    double yd = double(v0 < v1 ? v0 : v1);
    yd = (yd + .5) / scale - .5;
    if (yd < 0)
      yd = 0;
    else if (yd > h)
      yd = h;
    yd = std::ceil(yd);
    a.push_back(uint32_t(n * int(h) + int(yd)));
    columns.push_back(n);
  };
  bool first = true;
  int pu = 0, pv = 0;  // the previous point
  auto visit = [&](int u, int v) {
    if (!first && u != pu) crossing(u < pu ? u : u - 1, v, pv);
    first = false;
    pu = u;
    pv = v;
  };
  for (size_t j = 0; j < k; ++j) {
    int xs = x[j], xe = x[j + 1], ys = y[j], ye = y[j + 1], t;
    const int dx = std::abs(xe - xs), dy = std::abs(ys - ye);
    const bool flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
    if (flip) {
      t = xs;
      xs = xe;
      xe = t;
      t = ys;
      ys = ye;
      ye = t;
    }
    const double s = dx >= dy ? double(ye - ys) / dx : double(xe - xs) / dy;
    if (dx >= dy) {
      // Every point moves one column: only a step whose smaller column is 5n + 2 can be kept,
      // so the rows are computed for those steps (and the segment's ends) alone.
      const auto row = [&](int t) { return int(ys + s * t + .5); };
      visit(flip ? dx + xs : xs, row(flip ? dx : 0));
      for (int d = 1; d <= dx; ++d) {
        t = flip ? dx - d : d;
        const int uu = flip ? t + xs : t + xs - 1;
        if (centre(uu)) crossing(uu, row(t), row(flip ? t + 1 : t - 1));
      }
      if (dx > 0) {
        t = flip ? 0 : dx;
        pu = t + xs;
        pv = row(t);
      }
    } else {
      for (int d = 0; d <= dy; ++d) {
        t = flip ? dy - d : d;
        visit(int(xs + s * t + .5), t + ys);
      }
    }
  }
  // Kept points -> sorted linear indices -> run lengths. h * w is at least every index: it goes
  // last, as a sort would put it.
  sort_by_column(a, columns);
  k = a.size();
  a.push_back(uint32_t(uint64_t(h) * w));
  ++k;
  uint32_t p = 0;
  for (size_t j = 0; j < k; ++j) {
    uint32_t t = a[j];
    a[j] -= p;
    p = t;
  }
  std::vector<uint32_t> b;
  b.reserve(k);
  size_t j = 0;
  b.push_back(a[j++]);
  while (j < k) {
    if (a[j] > 0) {
      b.push_back(a[j++]);
    } else {
      ++j;
      if (j < k) b.back() += a[j++];
    }
  }
  return Rle{h, w, std::move(b)};
}

Rle rle_from_polygon(const std::vector<double>& xy, uint32_t h, uint32_t w) {
  return rle_from_polygon(xy.data(), xy.size() / 2, h, w);
}

Rle rle_from_bbox(const BoxXywh& bb, uint32_t h, uint32_t w) {
  // rleFrPoly keeps the points of a box's horizontal edges that lie on the image's pixel columns
  // (its vertical edges add none) and clamps their y to [0, h]: the corners clamped to one pixel
  // beyond the borders give the same mask, without walking the rest of a box of any size.
  const auto clamp = [](double v, uint32_t size) { return std::clamp(v, -1.0, size + 1.0); };
  const double xs = clamp(bb[0], w), xe = clamp(bb[0] + bb[2], w);
  const double ys = clamp(bb[1], h), ye = clamp(bb[1] + bb[3], h);
  const double xy[8] = {xs, ys, xs, ye, xe, ye, xe, ys};
  return rle_from_polygon(xy, 4, h, w);
}

double bbox_iou(const BoxXywh& D, const BoxXywh& G, bool crowd) {
  const double ga = G[2] * G[3], da = D[2] * D[3];
  const double w = std::fmin(D[2] + D[0], G[2] + G[0]) - std::fmax(D[0], G[0]);
  if (w <= 0) return 0;
  const double h = std::fmin(D[3] + D[1], G[3] + G[1]) - std::fmax(D[1], G[1]);
  if (h <= 0) return 0;
  const double i = w * h;
  const double u = crowd ? da : da + ga - i;
  return i / u;
}

double rle_iou(const Rle& dt, const BoxXywh& dt_box, const Rle& gt, const BoxXywh& gt_box,
               bool crowd) {
  if (!(bbox_iou(dt_box, gt_box, crowd) > 0)) return 0;
  if (dt.h != gt.h || dt.w != gt.w) return -1;
  if (dt.counts.empty() || gt.counts.empty()) return 0;
  const size_t ka = dt.counts.size(), kb = gt.counts.size();
  uint32_t ca = dt.counts[0], cb = gt.counts[0], ct = 1, i = 0, u = 0;
  int va = 0, vb = 0;
  size_t a = 1, b = 1;
  while (ct > 0) {
    uint32_t c = umin(ca, cb);
    if (va || vb) {
      u += c;
      if (va && vb) i += c;
    }
    ct = 0;
    ca -= c;
    if (!ca && a < ka) {
      ca = dt.counts[a++];
      va = !va;
    }
    ct += ca;
    cb -= c;
    if (!cb && b < kb) {
      cb = gt.counts[b++];
      vb = !vb;
    }
    ct += cb;
  }
  if (i == 0)
    u = 1;
  else if (crowd)
    u = uint32_t(rle_area(dt));
  return double(i) / double(u);
}

double rle_iou(const Rle& dt, const Rle& gt, bool crowd) {
  return rle_iou(dt, rle_to_bbox(dt), gt, rle_to_bbox(gt), crowd);
}

}  // namespace largedet::evaluation
