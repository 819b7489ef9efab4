// An ImageFolder-style classification dataset (torchvision's layout): ROOT/<class>/<image>, one
// folder per class, the labels in the sorted order of the folder names. Plain C++: the listing
// reads directories only, never the images.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace largedet::data {

struct ImageFolder {
  std::string root;
  std::vector<std::string> classes;  // folder names, sorted: label i is classes[i]
  struct Sample {
    std::string path;
    int64_t label = 0;
  };
  std::vector<Sample> samples;  // by class, then by file name
};

// Lists ROOT/<class>/*.{jpg,jpeg,png} (case-insensitive; other files and hidden entries are
// ignored). Errors that say what to do: ROOT missing or not a directory, no class folder, a class
// folder without images.
ImageFolder scan_image_folder(const std::string& root);

}  // namespace largedet::data
