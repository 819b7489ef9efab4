// Dataset records: what a dataset knows about each image before decoding. Plain C++ (no Torch),
// shared by the COCO and OpenImages readers and the synthetic generator.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "largedet/data/bad_input.h"
#include "largedet/evaluation/coco_json.h"

namespace largedet::data {

struct Instance {
  // x1, y1, x2, y2. Absolute pixels of the original image, clipped to it; for records with
  // `normalized_boxes` (OpenImages, whose CSVs do not give image sizes) fractions in [0, 1] that
  // the mapper scales once the image is decoded.
  std::array<float, 4> box{0, 0, 0, 0};
  int64_t label = 0;        // contiguous, 1..K (0 is background, as in torchvision)
  int64_t category_id = 0;  // the dataset's own id (COCO category_id; OpenImages class index)
  bool iscrowd = false;
  bool is_group_of = false;               // OpenImages IsGroupOf, kept for evaluation
  evaluation::Segmentation segmentation;  // polygons or RLE, original image coordinates
};

struct Record {
  int64_t image_id = 0;   // COCO id; OpenImages: position in the records
  std::string source_id;  // OpenImages ImageID (empty for COCO)
  std::string path;       // the image file
  int width = 0;          // 0 when unknown before decoding (OpenImages)
  int height = 0;
  bool normalized_boxes = false;
  std::vector<Instance> instances;
  // OpenImages image-level labels (verified present / verified absent), for evaluation.
  std::vector<int64_t> positive_labels, negative_labels;
};

struct Dataset {
  std::string name;  // the annotation file, for messages
  std::vector<Record> records;
  // class_names[label - 1]; category_ids[label - 1] is the dataset id of a label, so results can be
  // written back with the original ids.
  std::vector<std::string> class_names;
  std::vector<int64_t> category_ids;
  // OpenImages: class_mids[label - 1] is the class MID (/m/...) the challenge's files use.
  std::vector<std::string> class_mids;
  // Bad input met while loading; the loader keeps reporting into it (decode failures).
  std::shared_ptr<BadInputLog> bad_input = std::make_shared<BadInputLog>();

  size_t size() const { return records.size(); }
  int64_t num_classes() const { return static_cast<int64_t>(class_names.size()); }
};

}  // namespace largedet::data
