// OpenImages (V5+) box annotations -> Dataset: `*-annotations-bbox.csv` (ImageID, LabelName, XMin,
// XMax, YMin, YMax, IsGroupOf, ...) read by the evaluation layer's CSV reader,
// `class-descriptions-boxable.csv` (MID,Name without a header; quoted names allowed), and
// optionally the image-level labels (kept per record; images with labels but no boxes are kept only
// when filter_empty is false). Boxes stay normalised
// (Record::normalized_boxes) because the CSVs give no image sizes; images are ImageID + ".jpg".
#pragma once

#include <string>

#include "largedet/data/records.h"

namespace largedet::data {

struct OpenImagesOptions {
  std::string boxes_csv;
  std::string class_descriptions_csv;
  std::string image_labels_csv;  // optional
  std::string image_root;
  bool filter_empty = true;
  bool strict = false;
};

// Labels follow the order of the class-descriptions file (1..K). Boxes whose class is not in it
// are bad input (unknown category); degenerate boxes are bad input (invalid box).
Dataset load_openimages_dataset(const OpenImagesOptions& options);

}  // namespace largedet::data
