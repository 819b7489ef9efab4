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
    // Through the data layer's entry point, then the evaluation parser itself.
    const auto dataset = largedet::data::parse_coco_dataset(json, "fuzz.json");
    for (const auto& record : dataset.records) {
      if (static_cast<int64_t>(record.width) * record.height > (1 << 20)) continue;
      for (const auto& instance : record.instances) {
        if (instance.segmentation.empty()) continue;
        try {  // what transform_instances does for masks
          largedet::evaluation::segmentation_to_rle(instance.segmentation, record.height,
                                                    record.width);
        } catch (const largedet::Error&) {
        }
      }
    }
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
      // Polygons far outside the image make the evaluation layer's rle_from_polygon allocate by
      // perimeter (a vertex at 1e33: 17 GB); the data layer refuses them (kInvalidSegmentation),
      // and the evaluation layer has been told. Only sane polygons go to the rasteriser here.
      bool sane = true;
      for (const auto& polygon : a.segmentation.polygons) {
        for (double v : polygon) sane &= v > -1e4 && v < 1e4;
      }
      if (!sane) continue;
      try {
        largedet::evaluation::segmentation_to_rle(a.segmentation, image.height, image.width);
      } catch (const largedet::Error&) {
      }
    }
  } catch (const largedet::Error&) {
  }
  return 0;
}
