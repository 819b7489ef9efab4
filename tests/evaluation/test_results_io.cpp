// The COCO annotation and results readers: malformed input gives a clear largedet::Error that
// names the entry and the field; the writer round-trips.
#include <gtest/gtest.h>

#include "largedet/core/error.h"
#include "largedet/evaluation/results.h"

namespace largedet::evaluation {
namespace {

const char* kGt = R"({
 "images": [{"id": 1, "width": 20, "height": 10, "file_name": "a.jpg"},
            {"id": 2, "width": 30, "height": 30}],
 "categories": [{"id": 3, "name": "cat"}, {"id": 9, "name": "dog"}],
 "annotations": [
  {"id": 1, "image_id": 1, "category_id": 3, "bbox": [1, 2, 3, 4], "area": 12, "iscrowd": 0,
   "segmentation": [[1, 2, 4, 2, 4, 6, 1, 6]]},
  {"id": 2, "image_id": 2, "category_id": 9, "bbox": [0, 0, 2, 2], "area": 4, "iscrowd": 1,
   "segmentation": {"size": [30, 30], "counts": [0, 2, 28, 2, 868]}},
  {"id": 3, "image_id": 2, "category_id": 9, "bbox": [5.5, 5, 2, 2],
   "segmentation": {"size": [30, 30], "counts": "0162M0:N"}}
 ]})";

// Expects `fn` to throw a largedet::Error whose text holds every piece of `needles`.
template <typename Fn>
void expect_error(Fn fn, std::initializer_list<const char*> needles) {
  try {
    fn();
    ADD_FAILURE() << "expected a largedet::Error";
  } catch (const Error& e) {
    for (const char* needle : needles) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
          << "'" << needle << "' missing from: " << e.what();
    }
  }
}

TEST(CocoJson, ParsesImagesAnnotationsCategoriesAndAllSegmentationForms) {
  const CocoDataset gt = parse_coco_json(kGt);
  ASSERT_EQ(gt.images.size(), 2u);
  EXPECT_EQ(gt.images[0].file_name, "a.jpg");
  EXPECT_EQ(gt.images[0].width, 20);
  EXPECT_EQ(gt.images[0].height, 10);
  ASSERT_EQ(gt.annotations.size(), 3u);
  EXPECT_EQ(gt.annotations[0].segmentation.kind, Segmentation::Kind::kPolygons);
  EXPECT_EQ(gt.annotations[1].segmentation.kind, Segmentation::Kind::kRle);
  EXPECT_TRUE(gt.annotations[1].iscrowd);
  EXPECT_EQ(gt.annotations[2].segmentation.kind, Segmentation::Kind::kCompressedRle);
  EXPECT_EQ(gt.annotations[2].area, 4);  // no "area": the box's w * h
  EXPECT_EQ(gt.annotations[2].bbox[0], 5.5);
  EXPECT_EQ(gt.category_index(9), 1);
  EXPECT_EQ(gt.image_index(7), -1);
  const Rle mask = segmentation_to_rle(gt.annotations[0].segmentation, 10, 20);
  EXPECT_EQ(mask.h, 10u);
  EXPECT_GT(rle_area(mask), 0u);
  const CocoDataset boxes_only = parse_coco_json(kGt, "gt", {/*load_segmentation=*/false});
  EXPECT_TRUE(boxes_only.annotations[0].segmentation.empty());
}

TEST(CocoJson, MalformedAnnotationsNameTheEntryAndField) {
  expect_error(
      [] {
        parse_coco_json(R"({"annotations": [{"image_id": 1, "category_id": 1},
      {"image_id": 1, "category_id": 2, "bbox": "oops"}]})",
                        "gt.json");
      },
      {"gt.json", "annotations[1]", "bbox", "found a string", "byte"});
  expect_error([] { parse_coco_json(R"({"images": [{"id": 1}, {"id": 1}]})", "gt.json"); },
               {"duplicate image id 1"});
  // pycocotools keeps the last of equal annotation ids: refused, naming both entries.
  expect_error(
      [] {
        parse_coco_json(R"({"images": [{"id": 1}], "annotations": [
      {"id": 5, "image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2]},
      {"id": 6, "image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2]},
      {"id": 5, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2]}]})",
                        "gt.json");
      },
      {"duplicate annotation id 5", "annotations[2]", "annotations[0]", "pycocotools"});
  // Annotations without ids (allowed here) are not duplicates of each other.
  EXPECT_EQ(parse_coco_json(R"({"images": [{"id": 1}], "annotations": [
      {"image_id": 1, "category_id": 1}, {"image_id": 1, "category_id": 1}]})")
                .annotations.size(),
            2u);
  expect_error([] { parse_coco_json(R"({"images": [{"id": 1}, {"file_name": "x"}]})"); },
               {"images[1]", "no \"id\""});
  expect_error([] { parse_coco_json(R"({"images": [{"id": 1},)"); }, {"malformed JSON"});
  expect_error([] { parse_coco_json("[1, 2]"); }, {"must be a JSON object"});
  expect_error([] { load_coco_json("/nonexistent/x.json"); }, {"/nonexistent/x.json"});
}

TEST(CocoResults, ReadsBoxAndMaskResultsLikeLoadRes) {
  const CocoDataset gt = parse_coco_json(kGt);
  const auto boxes = parse_coco_results(
      R"([{"image_id": 1, "category_id": 3, "score": 0.5, "bbox": [1, 1, 2.5, 4]}])", gt);
  ASSERT_EQ(boxes.size(), 1u);
  EXPECT_EQ(boxes[0].area, 10);  // w * h
  const auto masks = parse_coco_results(
      R"([{"image_id": 2, "category_id": 9, "score": 1,
          "segmentation": {"size": [30, 30], "counts": [0, 2, 28, 2, 868]}}])",
      gt);
  ASSERT_EQ(masks.size(), 1u);
  EXPECT_EQ(masks[0].area, 4);  // the mask's area
  // No box of its own: the bbox evaluator takes the mask's (toBbox) where it needs one.
  EXPECT_FALSE(masks[0].has_bbox);
  EXPECT_EQ(rle_to_bbox(masks[0].segmentation.rle), (BoxXywh{0, 0, 2, 2}));
  EXPECT_TRUE(parse_coco_results("[]", gt).empty());
}

TEST(CocoResults, MalformedResultsNameTheEntry) {
  const CocoDataset gt = parse_coco_json(kGt);
  const std::string ok = R"({"image_id": 1, "category_id": 3, "score": 0.5, "bbox": [1, 1, 2, 2]})";
  auto parse = [&](const std::string& second) {
    return
        [&gt, &ok, second] { parse_coco_results("[" + ok + ",\n" + second + "]", gt, "dt.json"); };
  };
  expect_error(parse(R"({"image_id": 99, "category_id": 3, "score": 0.5, "bbox": [1, 1, 2, 2]})"),
               {"dt.json", "results[1]", "image_id 99"});
  expect_error(parse(R"({"image_id": 1, "category_id": 4, "score": 0.5, "bbox": [1, 1, 2, 2]})"),
               {"results[1]", "category_id 4"});
  expect_error(parse(R"({"image_id": 1, "category_id": 3, "score": NaN, "bbox": [1, 1, 2, 2]})"),
               {"results[1]", "NaN"});
  expect_error(parse(R"({"image_id": 1, "category_id": 3, "score": "0.5", "bbox": [1, 1, 2, 2]})"),
               {"results[1]", "\"score\"", "found a string"});
  expect_error(parse(R"({"image_id": "1", "category_id": 3, "score": 0.5, "bbox": [1, 1, 2, 2]})"),
               {"results[1]", "\"image_id\"", "found a string"});
  expect_error(parse(R"({"image_id": 1, "category_id": 3, "score": 0.5, "bbox": [1, 1, 2]})"),
               {"results[1]", "3 numbers"});
  expect_error(parse(R"({"image_id": 1, "category_id": 3, "score": 0.5, "bbox": [1, 1, -2, 2]})"),
               {"results[1]", "negative"});
  expect_error(parse(R"({"image_id": 1, "category_id": 3, "score": 0.5})"),
               {"results[1]", "no \"bbox\""});
  expect_error(parse(R"({"image_id": 2, "category_id": 9, "score": 0.5, "bbox": [1, 1, 2, 2],
                        "segmentation": {"size": [10, 20], "counts": "0162M0:N"}})"),
               {"results[1]", "mask size [10, 20]", "[30, 30]"});
  expect_error(parse("7"), {"results[1]", "expected an object"});
  expect_error([&] { parse_coco_results(R"({"a": 1})", gt); }, {"must be a JSON array"});
  expect_error(
      [&] {
        parse_coco_results(R"([{"image_id": 2, "category_id": 9, "score": 1,
            "segmentation": {"size": [30, 30], "counts": "0162M0:N"}}])",
                           gt);
      },
      {"results[0]", "segmentation", "sum to 30"});
  expect_error(  // detectron2-style (boxes first): the mask is still checked
      [&] {
        parse_coco_results(R"([{"image_id": 2, "category_id": 9, "score": 1, "bbox": [0, 0, 1, 1],
            "segmentation": {"size": [30, 30], "counts": "0162M0:N"}}])",
                           gt);
      },
      {"results[0]", "segmentation", "sum to 30"});
}

// Files over 1 MB are parsed in parts on every thread, smaller ones in one piece: every thread
// count reads the same detections, a cut that falls
// inside a string (an extra field holding "},{") changes nothing, and a bad mask far into the
// file is still named by entry.
TEST(CocoResults, MasksDecodeTheSameOnAnyThreadCountAndErrorsNameTheEntry) {
  const CocoDataset gt = parse_coco_json(kGt);
  const std::string mask = R"({"image_id": 2, "category_id": 9, "score": 0.5,
      "segmentation": {"size": [30, 30], "counts": [0, 2, 28, 2, 868]}})";
  const std::string box_too =
      R"({"image_id": 2, "category_id": 9, "score": 0.25, "bbox": [1, 1, 2, 2],
      "segmentation": {"size": [30, 30], "counts": [31, 5, 864]}})";
  const std::string trap = R"({"image_id": 2, "category_id": 9, "score": 0.75, "note": "a},{b",
      "segmentation": {"size": [30, 30], "counts": [0, 2, 28, 2, 868]}})";
  std::string json = "[";
  for (int i = 0; i < 10000; ++i) json += (i ? "," : "") + (i % 3 ? box_too : i % 7 ? mask : trap);
  json += "]";
  ASSERT_GT(json.size(), size_t(1) << 20);  // the parallel parse
  const auto one = parse_coco_results(json, gt, "dt.json", 1);
  ASSERT_EQ(one.size(), 10000u);
  for (int threads : {2, 3}) {
    const auto many = parse_coco_results(json, gt, "dt.json", threads);
    ASSERT_EQ(many.size(), one.size());
    for (size_t i = 0; i < one.size(); ++i) {
      EXPECT_EQ(many[i].score, one[i].score) << i;
      EXPECT_EQ(many[i].bbox, one[i].bbox) << i;
      EXPECT_EQ(many[i].area, one[i].area) << i;
      EXPECT_EQ(many[i].has_bbox, one[i].has_bbox) << i;
      EXPECT_EQ(many[i].segmentation.rle.counts, one[i].segmentation.rle.counts) << i;
    }
  }
  // No box where the result has none; the given box otherwise.
  EXPECT_FALSE(one[0].has_bbox);
  EXPECT_TRUE(one[1].has_bbox);
  EXPECT_EQ(one[1].bbox, (BoxXywh{1, 1, 2, 2}));
  std::string bad = json;
  const std::string broken = R"({"image_id": 2, "category_id": 9, "score": 1,
      "segmentation": {"size": [30, 30], "counts": "0162M0:N"}})";
  bad.insert(bad.size() - 1, "," + broken);  // entry 10000
  for (int threads : {1, 2})
    expect_error([&] { parse_coco_results(bad, gt, "dt.json", threads); },
                 {"dt.json", "results[10000]", "segmentation", "sum to 30"});
}

TEST(CocoResults, BoxDetectionFromCorners) {
  const Detection det = box_detection(4, 5, 0.5, 10, 20, 15, 60);
  EXPECT_EQ(det.bbox, (BoxXywh{10, 20, 5, 40}));
  EXPECT_TRUE(det.has_bbox);
  EXPECT_TRUE(det.segmentation.empty());
}

TEST(CocoResults, WriterRoundTripsExactly) {
  const CocoDataset gt = parse_coco_json(kGt);
  Detection box;
  box.image_id = 1;
  box.category_id = 3;
  box.score = 0.1 + 0.2;  // not representable in few digits
  box.bbox = {1.0 / 3, 2.5, 1e-7, 7};
  box.has_bbox = true;
  const auto boxes = parse_coco_results(coco_results_to_json({box}), gt);
  ASSERT_EQ(boxes.size(), 1u);
  EXPECT_EQ(boxes[0].score, box.score);
  EXPECT_EQ(boxes[0].bbox, box.bbox);

  Detection mask;
  mask.image_id = 2;
  mask.category_id = 9;
  mask.score = 0.75;
  mask.segmentation.kind = Segmentation::Kind::kPolygons;
  mask.segmentation.polygons = {{3, 3, 20, 4, 12, 25}};
  const std::string json = coco_results_to_json({mask}, &gt);
  EXPECT_NE(json.find("\"counts\":\""), std::string::npos) << json;
  const auto masks = parse_coco_results(json, gt);
  ASSERT_EQ(masks.size(), 1u);
  EXPECT_EQ(masks[0].segmentation.rle, segmentation_to_rle(mask.segmentation, 30, 30));
}

// Issue 18, item 1: these crashed (a null read naming the entry) instead of an error.
TEST(CocoResults, UnparseableFilesAreAnErrorNamingTheFile) {
  const CocoDataset gt = parse_coco_json(kGt);
  std::string random(1 << 16, '\0');
  uint32_t state = 12345;
  for (char& c : random) {
    state = state * 1664525u + 1013904223u;
    c = static_cast<char>(state >> 24);
  }
  for (const std::string text : {std::string("[\"abc"), std::string(""), std::string("  \n\t "),
                                 std::string("[{\"image_id\": 1, \"sco"), random}) {
    try {
      parse_coco_results(text, gt, "r.json");
      ADD_FAILURE() << "accepted " << text.substr(0, 20);
    } catch (const largedet::Error& e) {
      EXPECT_NE(std::string(e.what()).find("r.json"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace largedet::evaluation
