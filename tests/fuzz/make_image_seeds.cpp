// Writes the image fuzzer's seed corpus (small JPEGs and PNGs of each colour type) into argv[1],
// each prefixed with the byte that fuzz_image_decode reads as its scaled-decode target. Generated
// at test time so that no binaries live in git.
#include <fstream>
#include <string>
#include <vector>

#include "largedet/data/image.h"

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const std::string dir = argv[1];
  auto write = [&](const std::string& name, char prefix, const std::string& bytes) {
    std::ofstream(dir + "/" + name, std::ios::binary) << prefix << bytes;
  };
  largedet::data::Image im;
  im.width = 24;
  im.height = 16;
  for (int i = 0; i < im.width * im.height * 3; ++i) im.rgb.push_back(static_cast<uint8_t>(i * 7));
  write("rgb.jpg", 0, largedet::data::encode_jpeg(im, 80));
  write("rgb_scaled.jpg", 4, largedet::data::encode_jpeg(im, 50));
  std::vector<uint8_t> cmyk(static_cast<size_t>(im.width) * im.height * 4, 90);
  write("cmyk.jpg", 0, largedet::data::encode_jpeg_cmyk(cmyk, im.width, im.height, 70));
  write("rgb.png", 0, largedet::data::encode_png(im.rgb, im.width, im.height, 3));
  std::vector<uint8_t> gray(static_cast<size_t>(im.width) * im.height, 200);
  write("gray.png", 0, largedet::data::encode_png(gray, im.width, im.height, 1));
  std::vector<uint8_t> rgba(static_cast<size_t>(im.width) * im.height * 4, 33);
  write("rgba.png", 0, largedet::data::encode_png(rgba, im.width, im.height, 4));
  return 0;
}
