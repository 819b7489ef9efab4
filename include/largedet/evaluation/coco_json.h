// COCO annotation JSON (instances_*.json): images, annotations, categories. Parsed with simdjson
// (On-Demand), fast enough for the 450 MB train2017 file. The evaluation layer owns this parser;
// the data layer reuses it for training.
//
// Errors are largedet::Error naming the file, the entry ("annotations[123]"), the field and the
// byte offset where it could be found.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "largedet/core/limits.h"
#include "largedet/evaluation/rle.h"

namespace largedet::evaluation {

// A segmentation as the JSON gives it. COCO has three forms: a list of polygons, an uncompressed
// RLE ({"size": [h, w], "counts": [ints]}) and a compressed RLE ({"counts": "string"}).
struct Segmentation {
  enum class Kind { kNone, kPolygons, kRle, kCompressedRle };
  Kind kind = Kind::kNone;
  std::vector<std::vector<double>> polygons;  // kPolygons: [x0, y0, x1, y1, ...] each
  Rle rle;                 // kRle: the runs; kCompressedRle: h and w only (from "size")
  std::string compressed;  // kCompressedRle: the "counts" string

  bool empty() const { return kind == Kind::kNone; }
};

// The mask of a segmentation, exactly as pycocotools' COCO.annToRLE builds it: polygons are
// rasterised at the image size and merged; RLEs keep their own "size". As in pycocotools'
// frPyObjects, a polygon list whose first polygon has exactly 4 numbers is read as boxes [x, y, w,
// h]. An empty polygon list gives an empty mask of the image size. Throws largedet::Error for
// kNone.
Rle segmentation_to_rle(const Segmentation& segmentation, uint32_t image_height,
                        uint32_t image_width);

struct CocoImage {
  int64_t id = 0;
  std::string file_name;
  int32_t width = 0;
  int32_t height = 0;
};

struct CocoAnnotation {
  int64_t id = 0;
  bool has_id = false;  // ids are optional here; given ones must be unique
  int64_t image_id = 0;
  int64_t category_id = 0;
  BoxXywh bbox{0, 0, 0, 0};
  bool has_bbox = false;
  // The stored "area" (the segment's area in COCO), used for the small/medium/large ranges.
  // When the file has none it is the box's w * h.
  double area = 0;
  bool iscrowd = false;
  Segmentation segmentation;
};

struct CocoCategory {
  int64_t id = 0;
  std::string name;
  std::string supercategory;
};

struct CocoDataset {
  std::string source = "<ground truth>";  // the file it was parsed from, named in later errors
  std::vector<CocoImage> images;
  std::vector<CocoAnnotation> annotations;
  std::vector<CocoCategory> categories;

  // Position in `images` / `categories` of an id, or -1. Built by build_index() (the parser
  // calls it); call it again after editing the vectors.
  int64_t image_index(int64_t image_id) const;
  int64_t category_index(int64_t category_id) const;
  void build_index();

 private:
  std::unordered_map<int64_t, int64_t> image_index_, category_index_;
};

struct CocoParseOptions {
  // Skip "segmentation" (box-only training reads the big files faster and keeps less memory).
  bool load_segmentation = true;
  // Images claiming more pixels are an error (core/limits.h; INPUT.MAX_IMAGE_PIXELS).
  int64_t max_image_pixels = kDefaultMaxImagePixels;
};

// Parses a COCO annotation file. `where` names the source in errors (the path for files) and
// becomes the dataset's `source`. An image claiming more than `options.max_image_pixels` pixels is
// an error naming it.
CocoDataset parse_coco_json(std::string_view json, const std::string& where = "<json>",
                            const CocoParseOptions& options = {});
CocoDataset load_coco_json(const std::string& path, const CocoParseOptions& options = {});

}  // namespace largedet::evaluation
