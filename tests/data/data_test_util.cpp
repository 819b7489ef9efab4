#include "data_test_util.h"

#include <stdlib.h>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <stdexcept>

namespace largedet::data::testing {

TempDir::TempDir() {
  char pattern[] = "/tmp/largedet_data_test_XXXXXX";
  if (!mkdtemp(pattern)) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path);
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::map<std::string, std::string> all_files(const std::string& root) {
  std::map<std::string, std::string> files;
  for (const auto& e : std::filesystem::recursive_directory_iterator(root))
    if (e.is_regular_file())
      files[std::filesystem::relative(e.path(), root).string()] = read_text(e.path().string());
  return files;
}

std::map<std::string, std::string> dataset_files(const std::string& root) {
  auto files = all_files(root);
  files.erase("synth.json");
  files.erase(".largedet.lock");
  return files;
}

std::string truncate_jpeg_scan(const std::string& jpeg) {
  const size_t scan = jpeg.find("\xFF\xDA");  // start of scan: the coded data follows
  if (scan == std::string::npos) throw std::runtime_error("no scan in the JPEG");
  return jpeg.substr(0, scan + (jpeg.size() - scan) / 2);
}

std::string with_exif_orientation(const std::string& jpeg, int orientation, bool little_endian) {
  // TIFF: byte order, 42, IFD0 at offset 8 with one entry (0x0112 Orientation, SHORT, count 1).
  auto u16 = [&](int v) {
    const char hi = static_cast<char>(v >> 8), lo = static_cast<char>(v & 0xFF);
    return little_endian ? std::string{lo, hi} : std::string{hi, lo};
  };
  auto u32 = [&](int v) { return little_endian ? u16(v) + u16(0) : u16(0) + u16(v); };
  const std::string tiff = (little_endian ? "II" : "MM") + u16(42) + u32(8) + u16(1) + u16(0x0112) +
                           u16(3) + u32(1) + u16(orientation) + u16(0) + u32(0);
  const std::string payload = std::string("Exif\0\0", 6) + tiff;
  const int length = static_cast<int>(payload.size()) + 2;
  const std::string app1 = std::string("\xFF\xE1") + static_cast<char>(length >> 8) +
                           static_cast<char>(length & 0xFF) + payload;
  size_t at = 2;  // after SOI, and after the JFIF APP0 segment when there is one
  if (jpeg.compare(2, 2, "\xFF\xE0") == 0) {
    at = 4 + (static_cast<uint8_t>(jpeg[4]) << 8 | static_cast<uint8_t>(jpeg[5]));
  }
  return jpeg.substr(0, at) + app1 + jpeg.substr(at);
}

}  // namespace largedet::data::testing
