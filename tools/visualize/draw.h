// Detections drawn over an image (largedet infer --output-images): a colour per class label,
// translucent masks, box outlines and a "name 0.93" tag, in the style of detectron2's Visualizer.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace largedet::tools {

struct DrawnDetection {
  float x1 = 0, y1 = 0, x2 = 0, y2 = 0;  // box corners in image pixels
  float score = -1;                      // < 0: no score shown (ground truth)
  int label = 0;                         // picks the colour
  std::string name;                      // class name shown in the tag; empty: the label number
  std::vector<uint8_t> mask;             // empty, or height*width row-major 0/1
};

// The colour of `label` (any int): a fixed palette, so a class has the same colour in every
// picture.
std::array<uint8_t, 3> label_color(int label);

// Writes `rgb` (height x width x 3, row-major RGB8) with `detections` drawn over it to the PNG at
// `path`, atomically. Throws largedet::Error on a bad mask size, a write failure, or when LargeDet
// was built without cairo.
void write_detections_png(const std::string& path, const uint8_t* rgb, int height, int width,
                          const std::vector<DrawnDetection>& detections);

}  // namespace largedet::tools
