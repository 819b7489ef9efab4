// Helpers for the data tests: temporary directories and small files.
#pragma once

#include <filesystem>
#include <map>
#include <string>

namespace largedet::data::testing {

// A fresh directory under /tmp, removed when the object goes (tests link libstdc++ before
// libtorch, so std::filesystem::remove_all is the real one here).
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void write_text(const std::string& path, const std::string& text);
// Every regular file under `root` by its relative path, with its bytes.
std::map<std::string, std::string> all_files(const std::string& root);
// all_files without what `largedet synth` keeps beside a set (synth.json, its run lock).
std::map<std::string, std::string> dataset_files(const std::string& root);
std::string read_text(const std::string& path);

// The JPEG cut in the middle of its entropy-coded data: the headers stay whole, so it decodes,
// with the rows after the cut missing.
std::string truncate_jpeg_scan(const std::string& jpeg);
// The JPEG with an EXIF segment (APP1) holding `orientation` (1..8) inserted after its JFIF
// segment, in big- or little-endian TIFF byte order.
std::string with_exif_orientation(const std::string& jpeg, int orientation,
                                  bool little_endian = false);

}  // namespace largedet::data::testing
