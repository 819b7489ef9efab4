// A synthetic COCO-format dataset: textured backgrounds with circles, rectangles, triangles and
// hexagons of random colours, scales, rotations and positions (overlapping freely), each with its
// polygon segmentation. The demo's and most tests' data. Same options, same bytes: all randomness
// comes from a splitmix64 stream of the seed, and the JSON is written with fixed formatting.
//
// Harder variants (all off by default, so the default dataset keeps its bytes): up to 10 shape
// classes, unannotated clutter drawn under and over the objects, a wider range of object sizes,
// and annotations dropped for objects that others hide (docs/data.md, "Synthetic data").
//
// Layout under out_dir: annotations/instances_{train,val}.json, train/NNNNNN.jpg, val/NNNNNN.jpg.
// Segmentations are the shapes' full outlines (later shapes may hide parts of earlier ones).
#pragma once

#include <cstdint>
#include <functional>
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
  // Shape classes: the first `classes` of kSynthClasses (1..kSynthMaxClasses), category ids 1..N.
  int classes = 4;
  // Unannotated distractors per image (blobs, thin lines, striped or checked squares), each drawn
  // under or over the objects at random; from a stream of their own (0 draws nothing).
  int clutter = 0;
  // An object's size 2r (the diameter of the circle its outline is built on; the rectangle is
  // 2r x 1.2r) as a fraction of the image's short side, drawn uniformly in [min_scale, max_scale]
  // or, with log_scale, log-uniformly (as many small objects as large ones per octave).
  double min_scale = 0.12, max_scale = 0.5;
  bool log_scale = false;
  // Objects of which less than this fraction of their pixels stays visible (not painted over by
  // later objects or clutter) get no annotation. 0 keeps every object.
  double min_visible = 0.0;
  // Called before each image and once at the end with the images written so far (progress).
  std::function<void(int written, int total)> on_progress;
};

struct SynthResult {
  std::string train_json, val_json, train_dir, val_dir;
  int train_images = 0, val_images = 0, annotations = 0;
  int dropped_occluded = 0;  // objects drawn but not annotated (min_visible)
};

SynthResult write_synthetic_coco(const SynthOptions& options);

// The shape classes, in category-id order (ids 1..N; the default 4 are the first four).
inline constexpr int kSynthMaxClasses = 10;
inline const char* const kSynthClasses[kSynthMaxClasses] = {
    "circle",  "rectangle", "triangle", "hexagon", "star",
    "ellipse", "cross",     "ring",     "L-shape", "arrow"};

}  // namespace largedet::data
