// COCO instances JSON -> Dataset. Parsing is the evaluation layer's simdjson parser (coco_json.h);
// this adds the training view: contiguous labels, validated and clipped boxes, image paths, and
// the bad-input policy.
#pragma once

#include <string>
#include <string_view>

#include "largedet/data/records.h"
#include "largedet/evaluation/coco_json.h"

namespace largedet::data {

struct CocoDatasetOptions {
  std::string image_root;         // joined with each image's file_name
  bool filter_empty = true;       // drop images without a usable annotation (training)
  bool load_segmentation = true;  // keep polygons / RLE
  bool strict = false;            // DATALOADER.STRICT: bad input throws
  int64_t max_image_pixels = kDefaultMaxImagePixels;  // INPUT.MAX_IMAGE_PIXELS
};

// Labels: categories sorted by id get 1..K, so the mapping is stable whatever the file's order.
Dataset load_coco_dataset(const std::string& json_path, const CocoDatasetOptions& options = {});
// The same from JSON text in memory; `where` names it in messages.
Dataset parse_coco_dataset(std::string_view json, const std::string& where,
                           const CocoDatasetOptions& options = {});
// The same from a parsed file; `where` names it in messages.
Dataset coco_to_dataset(const evaluation::CocoDataset& coco, const std::string& where,
                        const CocoDatasetOptions& options = {});

}  // namespace largedet::data
