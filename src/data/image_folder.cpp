#include "largedet/data/image_folder.h"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "largedet/core/error.h"

namespace largedet::data {
namespace {

bool is_image_name(const std::string& name) {
  const auto dot = name.rfind('.');
  if (dot == std::string::npos || name[0] == '.') return false;
  std::string ext = name.substr(dot + 1);
  for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext == "jpg" || ext == "jpeg" || ext == "png";
}

}  // namespace

ImageFolder scan_image_folder(const std::string& root) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(root, ec))
    throw Error("no image folder at " + root, root,
                "lay out " + root +
                    "/<class>/*.jpg (one folder per class), or write a synthetic "
                    "one with `largedet synth --task classify --out DIR`");
  ImageFolder folder;
  folder.root = root;
  for (const auto& entry : fs::directory_iterator(root)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name[0] == '.' || !entry.is_directory()) continue;
    folder.classes.push_back(name);
  }
  if (folder.classes.empty())
    throw Error("the image folder " + root + " holds no class folders", root,
                "put each class's images in a folder of its own: " + root + "/<class>/*.jpg");
  std::sort(folder.classes.begin(), folder.classes.end());
  for (size_t label = 0; label < folder.classes.size(); ++label) {
    const fs::path dir = fs::path(root) / folder.classes[label];
    std::vector<std::string> files;
    for (const auto& entry : fs::directory_iterator(dir)) {
      const std::string name = entry.path().filename().string();
      if (entry.is_regular_file() && is_image_name(name)) files.push_back(name);
    }
    if (files.empty())
      throw Error("the class folder " + dir.string() + " holds no images (.jpg, .jpeg, .png)",
                  dir.string(), "add its images or remove the folder");
    std::sort(files.begin(), files.end());
    for (const auto& f : files)
      folder.samples.push_back({(dir / f).string(), static_cast<int64_t>(label)});
  }
  return folder;
}

}  // namespace largedet::data
