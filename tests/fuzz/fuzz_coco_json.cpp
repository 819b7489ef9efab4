// libFuzzer target: the COCO annotation parser (evaluation layer), the training view built on it
// (data layer: labels, box checks, bad-input accounting) and mask rasterisation of what it parsed.
// Any input must give a dataset or a largedet::Error; never a crash, a leak or a hang.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "largedet/core/error.h"
#include "largedet/core/logging.h"
#include "largedet/data/coco_dataset.h"
#include "largedet/evaluation/coco_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  largedet::log::set_level(largedet::log::Level::kOff);
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  try {
    // Through the data layer's entry point, which guards the evaluation parser's first-stage
    // crash (see check_first_stage in src/data/coco_dataset.cpp), then the parser itself.
    largedet::data::parse_coco_dataset(json, "fuzz.json");
    const auto coco = largedet::evaluation::parse_coco_json(json, "fuzz.json");
    for (const auto& a : coco.annotations) {
      const int64_t i = coco.image_index(a.image_id);
      if (i < 0 || a.segmentation.empty()) continue;
      const auto& image = coco.images[static_cast<size_t>(i)];
      // Rasterising is O(h * w): keep the fuzzer's inputs from asking for gigapixel masks.
      if (static_cast<int64_t>(image.width) * image.height > (1 << 20)) continue;
      if (a.segmentation.kind != largedet::evaluation::Segmentation::Kind::kPolygons &&
          static_cast<uint64_t>(a.segmentation.rle.h) * a.segmentation.rle.w > (1u << 20)) {
        continue;
      }
      try {
        largedet::evaluation::segmentation_to_rle(a.segmentation, image.height, image.width);
      } catch (const largedet::Error&) {
      }
    }
  } catch (const largedet::Error&) {
  }
  return 0;
}
