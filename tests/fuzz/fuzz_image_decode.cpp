// libFuzzer target: the image decoders (TurboJPEG and libpng behind largedet::data). Any input
// must decode or throw largedet::Error; the first byte also picks a scaled-decode target so that
// TurboJPEG's 1/2..1/8 paths are exercised.
#include <cstddef>
#include <cstdint>

#include "largedet/core/error.h"
#include "largedet/data/image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const int min_short_side = data[0] & 0x3F;
  try {
    int w = 0, h = 0;
    largedet::data::read_image_size(data + 1, size - 1, &w, &h);
    const auto image = largedet::data::decode_image(data + 1, size - 1, min_short_side);
    if (image.rgb.size() != image.pixels() * 3) __builtin_trap();
  } catch (const largedet::Error&) {
  }
  return 0;
}
