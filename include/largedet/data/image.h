// Image decoding and encoding without Torch: JPEG through TurboJPEG, PNG through libpng.
//
// Everything here is plain C++ on purpose: the libFuzzer harness (tests/fuzz) builds these sources
// with clang and AddressSanitizer, where LibTorch cannot be linked. Decoders never abort on bad
// bytes: they throw largedet::Error naming `where` (the file) and what was wrong.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace largedet::data {

// An 8-bit RGB image, row-major, interleaved (height x width x 3).
struct Image {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> rgb;
  // The JPEG decoder's warning when it recovered from missing or damaged data (a truncated file):
  // the pixels it could not read are grey. Empty for a clean decode. (libpng's simplified API
  // recovers from nothing: a PNG cut inside its image data does not decode.)
  std::string warning;

  size_t pixels() const { return static_cast<size_t>(width) * static_cast<size_t>(height); }
};

enum class ImageFormat { kUnknown, kJpeg, kPng };

// The format from the first bytes (magic numbers), never from a file name.
ImageFormat sniff_image_format(const uint8_t* data, size_t size);

// Images above core/limits.h's kDefaultMaxImagePixels are rejected (a hostile header must not
// make us allocate gigabytes); real detection data is far below it.

// Decodes a JPEG to RGB; grayscale, YCbCr, CMYK and YCCK inputs all give RGB. When
// `min_short_side` > 0 and the image's short side is at least twice that, TurboJPEG's scaled
// decode (1/2, 1/4 or 1/8) is used with the smallest factor whose short side stays >= the target:
// the caller resizes to its final size anyway, and scaled decoding skips most of the IDCT work.
Image decode_jpeg(const uint8_t* data, size_t size, int min_short_side = 0,
                  const std::string& where = "<jpeg>");
// Decodes a PNG (any bit depth, palette, gray, alpha composited over black) to RGB.
Image decode_png(const uint8_t* data, size_t size, const std::string& where = "<png>");
// Sniffs the format and decodes; unknown formats throw.
Image decode_image(const uint8_t* data, size_t size, int min_short_side = 0,
                   const std::string& where = "<image>");

// Width and height from the header only (no pixel decoding). Throws on unreadable headers.
void read_image_size(const uint8_t* data, size_t size, int* width, int* height,
                     const std::string& where = "<image>");

// The EXIF orientation (1..8) of a JPEG; 1 (upright) when it has none, or for other formats.
int read_exif_orientation(const uint8_t* data, size_t size);
// Whether an EXIF orientation turns the image by 90 degrees (5..8 swap width and height).
inline bool exif_orientation_turns(int orientation) { return orientation >= 5 && orientation <= 8; }
// The image turned (and mirrored) upright as EXIF orientation 5..8 says. The others, which keep
// the size, are never applied: only a turned annotated size tells that the annotation tool
// applied the orientation (see mapper.h).
Image turn_by_exif_orientation(const Image& image, int orientation);

// Encoders, for `largedet synth` and for tests. Deterministic: same pixels, same bytes.
std::string encode_jpeg(const Image& image, int quality = 90);
// A CMYK JPEG (TurboJPEG writes it as YCCK) from 4-channel pixels; for tests of the CMYK path.
std::string encode_jpeg_cmyk(const std::vector<uint8_t>& cmyk, int width, int height,
                             int quality = 90);
// `channels` is 1 (gray), 3 (RGB) or 4 (RGBA); `pixels` is height x width x channels.
std::string encode_png(const std::vector<uint8_t>& pixels, int width, int height, int channels = 3);

}  // namespace largedet::data
