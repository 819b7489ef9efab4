// A synthetic ImageFolder-style classification dataset: the large-batch study's stand-in for
// ImageNet (`largedet synth --task classify`, pretrained on by `largedet pretrain`). Another task
// on other images than the detection proxy's shapes: each class is one glyph (crescent, chevron, T,
// clover) filled with one pattern family (stripes, checks, a dot lattice, concentric rings), at a
// random place, size, rotation, pattern period and angle, in random colours, over a striped, noisy
// background with unrelated blobs and lines. Telling classes apart takes both the glyph's outline
// and its texture: generic edge, texture and shape features.
//
// Layout under out_dir: train/<class>/NNNNNN.jpg and val/<class>/NNNNNN.jpg (NNNNNN counts images
// over both splits from 1); classes are balanced within each split. Same options, same bytes (a
// splitmix64 stream of the seed).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace largedet::data {

struct SynthClassifyOptions {
  std::string out_dir;
  int images = 8000;  // train + val
  int size = 64;      // square images, size x size pixels
  int classes = 16;   // 2..kSynthClassifyMaxClasses: the first N of the class list
  uint64_t seed = 0;
  double val_fraction = 0.2;  // at least one val image per class
  int clutter = 3;            // blobs and lines on the background, at most
  int quality = 90;           // JPEG quality
  // Called before each image and once at the end with the images written so far (progress).
  std::function<void(int written, int total)> on_progress;
};

struct SynthClassifyResult {
  std::string train_dir, val_dir;
  std::vector<std::string> classes;  // folder names, in label order (sorted, as ImageFolder's)
  int train_images = 0, val_images = 0;
};

SynthClassifyResult write_synthetic_classification(const SynthClassifyOptions& options);

inline constexpr int kSynthClassifyMaxClasses = 16;
// Class c is glyph c / 4 with pattern c % 4: the folder name "<glyph>_<pattern>". The first four
// classes differ by texture alone; shapes come in from the fifth.
std::string synthetic_classify_class_name(int c);

}  // namespace largedet::data
