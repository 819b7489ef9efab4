// Sizes that cannot be real. One bound on the pixels an image may claim serves the image decoders
// (data), the COCO annotation parser (shared by training and evaluation) and, through it, the
// results reader, so that a corrupt or hostile header is refused before anything proportional to
// its size is allocated or walked.
#pragma once

#include <cstdint>

namespace largedet {

// The most pixels (width * height) an image may claim unless configured otherwise: 2^27, 134M,
// far above any detection dataset's images. Raised or lowered by INPUT.MAX_IMAGE_PIXELS (the data
// loaders, `largedet evaluate --config`) and `largedet evaluate --max-image-pixels` (files).
constexpr int64_t kDefaultMaxImagePixels = int64_t{1} << 27;

// The most it may be raised to: masks are maskApi's RLEs of 32-bit runs, rasterised with int
// pixel indices.
constexpr int64_t kMaxImagePixelsLimit = INT32_MAX;

}  // namespace largedet
