// A synthetic COCO-format dataset: textured backgrounds with circles, rectangles, triangles and
// hexagons of random colours, scales, rotations and positions (overlapping freely), each with its
// polygon segmentation. The demo's and most tests' data. Same options, same bytes: all randomness
// comes from a splitmix64 stream of the seed, and the JSON is written with fixed formatting.
//
// Layout under out_dir: annotations/instances_{train,val}.json, train/NNNNNN.jpg, val/NNNNNN.jpg.
// Segmentations are the shapes' full outlines (later shapes may hide parts of earlier ones).
#pragma once

#include <cstdint>
#include <string>

namespace largedet::data {

struct SynthOptions {
  std::string out_dir;
  int images = 100;
  int size = 640;  // long side; the short side is 3/4 of it
  uint64_t seed = 0;
  double val_fraction = 0.2;  // at least one val image when images >= 2
  double portrait_fraction = 0.25;
  int max_objects = 6;  // 1..max_objects shapes per image
  int quality = 90;     // JPEG quality
};

struct SynthResult {
  std::string train_json, val_json, train_dir, val_dir;
  int train_images = 0, val_images = 0, annotations = 0;
};

SynthResult write_synthetic_coco(const SynthOptions& options);

// The shape classes, in category-id order (ids 1..4).
inline const char* const kSynthClasses[] = {"circle", "rectangle", "triangle", "hexagon"};

}  // namespace largedet::data
