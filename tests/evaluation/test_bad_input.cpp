// Input that once hung, crashed or gave an unclear error in the evaluation layer (issue 18): each
// case is now a largedet::Error naming the file and the entry, found in bounded time and memory.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "eval_test_util.h"
#include "largedet/core/error.h"
#include "largedet/core/limits.h"
#include "largedet/evaluation/coco_eval.h"

namespace largedet::evaluation {
namespace {

// Runs `work` on a thread of its own for at most `limit`: nullopt when it is not done by then
// (the thread is left running, detached, so that a hang fails the test instead of blocking the
// run), else the message of the largedet::Error it threw ("" when it threw none).
template <typename Fn>
std::optional<std::string> error_within(std::chrono::seconds limit, Fn work) {
  auto message = std::make_shared<std::promise<std::string>>();
  std::future<std::string> done = message->get_future();
  std::thread([message, work] {
    try {
      work();
      message->set_value("");
    } catch (const Error& e) {
      message->set_value(e.what());
    }
  }).detach();
  if (done.wait_for(limit) != std::future_status::ready) return std::nullopt;
  return done.get();
}

void expect_contains(const std::string& text, std::initializer_list<const char*> needles) {
  for (const char* needle : needles) {
    EXPECT_NE(text.find(needle), std::string::npos) << "'" << needle << "' missing from: " << text;
  }
}

std::string one_image_gt(int64_t width, int64_t height, const std::string& segmentation) {
  return detail::concat(R"({"images": [{"id": 7, "width": )", width, R"(, "height": )", height,
                        R"(}], "categories": [{"id": 1, "name": "a"}], "annotations": [
     {"id": 77, "image_id": 7, "category_id": 1, "bbox": [10, 10, 100, 100], "area": 10000,
      "segmentation": )",
                        segmentation, "}]}");
}

const char* kSquare = "[[10, 10, 110, 10, 110, 110, 10, 110]]";
const char* kBoxResult =
    R"([{"image_id": 7, "category_id": 1, "score": 0.9, "bbox": [50, 50, 100, 100]}])";

// Item 9: a 2e7 x 2e7 image made `evaluate -t segm` spin in rle_iou for minutes (its masks'
// runs overflow 32 bits); pycocotools hangs too. The parser refuses the image instead.
TEST(EvaluationBadInput, ImageOfImpossibleSizeIsRefusedNotEvaluatedForMinutes) {
  const std::string gt_json = one_image_gt(20000000, 20000000, kSquare);
  const auto message = error_within(std::chrono::seconds(20), [gt_json] {
    const CocoDataset gt = parse_coco_json(gt_json, "gt.json");
    CocoEvalParams params;
    params.iou_type = IouType::kSegm;
    params.threads = 1;
    evaluate_coco(gt, parse_coco_results(kBoxResult, gt, "dt.json"), params);
  });
  ASSERT_TRUE(message.has_value()) << "segm evaluation of a 2e7 x 2e7 image still runs after 20 s";
  expect_contains(*message, {"gt.json", "images[0]", "image id 7", "20000000 x 20000000",
                             "INPUT.MAX_IMAGE_PIXELS", "--max-image-pixels"});
}

// A million categories would need pycocotools' [T, R, K, A, M] precision table of ~100 GB: a
// clear error naming the file and the count, before any image is scored, not bad_alloc.
TEST(EvaluationBadInput, AMillionCategoriesIsRefusedByTheTableSize) {
  CocoDataset gt;
  gt.source = "gt.json";
  gt.images.push_back({});
  gt.images[0].id = 1;
  gt.images[0].width = gt.images[0].height = 10;
  for (int64_t id = 1; id <= 1000000; ++id) gt.categories.push_back({id, "c", ""});
  gt.build_index();
  std::vector<Detection> none;
  CocoEvalParams params;
  params.threads = 1;
  try {
    evaluate_coco(gt, none, params);
    ADD_FAILURE() << "a million categories were scored";
  } catch (const Error& e) {
    expect_contains(e.what(), {"gt.json", "1000000 categories", "97 GB", "fewer categories"});
  }
  gt.categories.resize(1203);  // LVIS's count is fine
  gt.build_index();
  EXPECT_NO_THROW(evaluate_coco(gt, none, params));
}

TEST(EvaluationBadInput, ImageSizeBoundIsTheSharedDefaultAndConfigurable) {
  // 16384 x 8192 is exactly the default bound.
  EXPECT_EQ(int64_t{16384} * 8192, kDefaultMaxImagePixels);
  EXPECT_NO_THROW(parse_coco_json(one_image_gt(16384, 8192, kSquare), "gt.json"));
  try {
    parse_coco_json(one_image_gt(16384, 8193, kSquare), "gt.json");
    ADD_FAILURE() << "accepted an image above the default bound";
  } catch (const Error& e) {
    expect_contains(e.what(), {"image id 7", "134217728"});
  }
  CocoParseOptions options;
  options.max_image_pixels = 200 * 100;
  EXPECT_NO_THROW(parse_coco_json(one_image_gt(200, 100, kSquare), "gt.json", options));
  try {
    parse_coco_json(one_image_gt(201, 100, kSquare), "gt.json", options);
    ADD_FAILURE() << "accepted an image above a configured bound";
  } catch (const Error& e) {
    expect_contains(e.what(), {"image id 7", "201 x 100", "20000"});
  }
}

// Results masks must have their image's size, which the bound caps: a mask claiming 2e7 x 2e7
// pixels is refused before its runs are decoded.
TEST(EvaluationBadInput, ResultMaskOfImpossibleSizeIsRefusedBeforeDecoding) {
  const CocoDataset gt = parse_coco_json(one_image_gt(200, 100, kSquare), "gt.json");
  const auto message = error_within(std::chrono::seconds(20), [gt] {
    parse_coco_results(R"([{"image_id": 7, "category_id": 1, "score": 0.9,
      "segmentation": {"size": [20000000, 20000000], "counts": "0"}}])",
                       gt, "dt.json");
  });
  ASSERT_TRUE(message.has_value());
  expect_contains(*message, {"dt.json", "results[0]", "[20000000, 20000000]"});
}

// Found by fuzz_coco_results: a polygon vertex at 1e88 made the rasteriser walk (and allocate) an
// outline of billions of points, and convert the vertex to an int out of range.
TEST(EvaluationBadInput, FarOutPolygonIsAnErrorNotAnOutlineOfGigabytes) {
  const CocoDataset gt = parse_coco_json(one_image_gt(20, 10, kSquare), "gt.json");
  for (const char* vertex : {"1e88", "-3e9", "1e7"}) {
    const std::string results = detail::concat(
        R"([{"image_id": 7, "category_id": 1, "score": 0.4,
             "segmentation": [[1, 2, 8, 2, 8, 6, 1, 6], [10, 1, 15, 1, )",
        vertex, ", 8]]}]");
    try {
      parse_coco_results(results, gt, "dt.json");
      ADD_FAILURE() << "accepted a polygon vertex at " << vertex;
    } catch (const Error& e) {
      expect_contains(e.what(), {"dt.json", "results[0]", "segmentation", "outside"});
    }
  }
  // One image size beyond every border is still an outline, rasterised as pycocotools does.
  const auto near = parse_coco_results(R"([{"image_id": 7, "category_id": 1, "score": 0.4,
      "segmentation": [[-20, -10, 40, -10, 40, 20, -20, 20]]}])",
                                       gt, "dt.json");
  ASSERT_EQ(near.size(), 1u);
  EXPECT_EQ(rle_area(near[0].segmentation.rle), 200u);
}

// Found by fuzz_coco_results: segm evaluation rasterises box results as their box's polygon, and a
// box of 1e8 pixels walked an outline of gigabytes. Boxes of any size now give the mask of the
// box clamped to one pixel beyond the image, which is the whole box's (see Rle tests).
TEST(EvaluationBadInput, SegmEvaluationOfHugeBoxesIsBoundedAndExact) {
  EXPECT_EQ(rle_from_bbox({-1e8, -3e8, 2e8, 1e9}, 120, 120),
            rle_from_bbox({-1, -1, 122, 122}, 120, 120));
  // The square covers 69% of the image: a box over the whole image matches it at IoU 0.5.
  const CocoDataset gt = parse_coco_json(one_image_gt(120, 120, kSquare), "gt.json");
  auto segm_ap50 = [gt](const std::string& box) {
    const auto results = parse_coco_results(
        R"([{"image_id": 7, "category_id": 1, "score": 0.9, "bbox": )" + box + "}]", gt, "dt.json");
    CocoEvalParams params;
    params.iou_type = IouType::kSegm;
    params.threads = 1;
    return evaluate_coco(gt, results, params).stats[1];
  };
  const auto whole_image = segm_ap50("[0, 0, 120, 120]");
  EXPECT_GT(whole_image, 0);
  const auto message = error_within(std::chrono::seconds(20), [segm_ap50, whole_image] {
    for (const char* box : {"[-1e8, -3e8, 2e8, 1e9]", "[0, 0, 1e300, 1e300]"}) {
      EXPECT_EQ(segm_ap50(box), whole_image) << box;
    }
  });
  ASSERT_TRUE(message.has_value()) << "segm evaluation of huge boxes still runs after 20 s";
  EXPECT_EQ(*message, "");
}

// Ground-truth masks are decoded by the evaluator, long after parsing: their errors used to name
// neither the file nor the annotation.
TEST(EvaluationBadInput, GroundTruthRleErrorsNameTheFileAndAnnotation) {
  const std::string dir = testing::make_temp_dir();
  const std::string path = dir + "/gt.json";
  for (const char* counts : {R"("0162M0:N")", R"("0 1")"}) {
    testing::write_text(
        path,
        one_image_gt(30, 30, detail::concat(R"({"size": [30, 30], "counts": )", counts, "}")));
    const CocoDataset gt = load_coco_json(path);
    CocoEvalParams params;
    params.iou_type = IouType::kSegm;
    params.threads = 1;
    try {
      evaluate_coco(gt, parse_coco_results(kBoxResult, gt, "dt.json"), params);
      ADD_FAILURE() << "evaluated a ground-truth mask with counts " << counts;
    } catch (const Error& e) {
      expect_contains(e.what(), {path.c_str(), "annotation id 77", "image id 7", "counts"});
    }
  }
  testing::remove_temp_dir(dir);
}

}  // namespace
}  // namespace largedet::evaluation
