// COCO JSON -> Dataset: every annotation form, the label mapping, empty-image filtering, and each
// bad-input case (skipped and counted, or an error in strict mode).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <limits>

#include "data_test_util.h"
#include "largedet/core/error.h"
#include "largedet/data/coco_dataset.h"

namespace largedet::data {
namespace {

using evaluation::Segmentation;
using testing::TempDir;
using testing::write_text;

const char* kJson = R"({
  "images": [
    {"id": 7, "file_name": "a.jpg", "width": 100, "height": 50},
    {"id": 3, "file_name": "b.jpg", "width": 40, "height": 80},
    {"id": 9, "file_name": "empty.jpg", "width": 10, "height": 10}
  ],
  "categories": [
    {"id": 90, "name": "toothbrush"}, {"id": 2, "name": "bicycle"}, {"id": 5, "name": "airplane"}
  ],
  "annotations": [
    {"id": 1, "image_id": 7, "category_id": 90, "bbox": [10, 5, 20, 10], "area": 200,
     "iscrowd": 0, "segmentation": [[10, 5, 30, 5, 30, 15, 10, 15]]},
    {"id": 2, "image_id": 7, "category_id": 2, "bbox": [0, 0, 5, 5], "area": 25, "iscrowd": 1,
     "segmentation": {"size": [50, 100], "counts": [0, 5, 45, 5, 4945]}},
    {"id": 3, "image_id": 3, "category_id": 5, "bbox": [1, 2, 3, 4], "area": 12, "iscrowd": 0,
     "segmentation": {"size": [80, 40], "counts": "a0"}}
  ]
})";

TEST(CocoDataset, ParsesEveryAnnotationFormAndMapsLabelsById) {
  TempDir dir;
  write_text(dir.file("ann.json"), kJson);
  CocoDatasetOptions options;
  options.image_root = "/images";
  const Dataset d = load_coco_dataset(dir.file("ann.json"), options);
  // Labels follow sorted category ids: 2 -> 1, 5 -> 2, 90 -> 3.
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"bicycle", "airplane", "toothbrush"}));
  EXPECT_EQ(d.category_ids, (std::vector<int64_t>{2, 5, 90}));
  ASSERT_EQ(d.size(), 2u);  // the image without annotations is dropped
  const Record& a = d.records[0];
  EXPECT_EQ(a.image_id, 7);
  EXPECT_EQ(a.path, "/images/a.jpg");
  EXPECT_EQ(a.width, 100);
  ASSERT_EQ(a.instances.size(), 2u);
  EXPECT_EQ(a.instances[0].label, 3);
  EXPECT_EQ(a.instances[0].category_id, 90);
  EXPECT_EQ(a.instances[0].box, (std::array<float, 4>{10, 5, 30, 15}));  // xywh -> xyxy
  EXPECT_EQ(a.instances[0].segmentation.kind, Segmentation::Kind::kPolygons);
  EXPECT_EQ(a.instances[0].segmentation.polygons[0].size(), 8u);
  EXPECT_EQ(a.instances[1].label, 1);
  EXPECT_TRUE(a.instances[1].iscrowd);
  EXPECT_EQ(a.instances[1].segmentation.kind, Segmentation::Kind::kRle);
  EXPECT_EQ(a.instances[1].segmentation.rle.counts.size(), 5u);
  const Record& b = d.records[1];
  EXPECT_EQ(b.instances[0].label, 2);
  EXPECT_EQ(b.instances[0].segmentation.kind, Segmentation::Kind::kCompressedRle);
  EXPECT_EQ(b.instances[0].segmentation.compressed, "a0");
  EXPECT_EQ(d.bad_input->total(), 0);
}

TEST(CocoDataset, KeepsEmptyImagesWhenAsked) {
  TempDir dir;
  write_text(dir.file("ann.json"), kJson);
  CocoDatasetOptions options;
  options.filter_empty = false;
  options.load_segmentation = false;
  const Dataset d = load_coco_dataset(dir.file("ann.json"), options);
  ASSERT_EQ(d.size(), 3u);
  EXPECT_TRUE(d.records[2].instances.empty());
  EXPECT_TRUE(d.records[0].instances[0].segmentation.empty());
}

TEST(CocoDataset, LabelMappingDoesNotDependOnCategoryOrder) {
  evaluation::CocoDataset coco;
  coco.categories = {{30, "c", ""}, {10, "a", ""}, {20, "b", ""}};
  coco.build_index();
  const Dataset d = coco_to_dataset(coco, "x.json", {});
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"a", "b", "c"}));
}

// One image 100 x 50 and annotations that are each bad in one way.
evaluation::CocoDataset bad_dataset() {
  evaluation::CocoDataset coco;
  coco.images = {{1, "a.jpg", 100, 50}};
  coco.categories = {{1, "thing", ""}};
  auto ann = [&](int64_t id, int64_t image, int64_t category, evaluation::BoxXywh box) {
    evaluation::CocoAnnotation a;
    a.id = id;
    a.image_id = image;
    a.category_id = category;
    a.bbox = box;
    a.has_bbox = true;
    coco.annotations.push_back(a);
  };
  const double nan = std::numeric_limits<double>::quiet_NaN();
  ann(1, 1, 1, {10, 10, 20, 20});   // good
  ann(2, 99, 1, {10, 10, 20, 20});  // unknown image
  ann(3, 1, 42, {10, 10, 20, 20});  // unknown category
  ann(4, 1, 1, {10, 10, 0, 20});    // zero width
  ann(5, 1, 1, {10, 10, -5, 20});   // negative width
  ann(6, 1, 1, {nan, 10, 5, 20});   // NaN
  ann(7, 1, 1, {90, 40, 30, 30});   // partly outside: clipped to [90, 40, 100, 50]
  ann(8, 1, 1, {200, 10, 10, 10});  // entirely outside
  ann(9, 1, 1, {0, 0, 100.4, 50});  // sub-pixel overshoot: clipped silently
  coco.build_index();
  return coco;
}

TEST(CocoDataset, BadAnnotationsAreSkippedClippedAndCounted) {
  const Dataset d = coco_to_dataset(bad_dataset(), "bad.json", {});
  ASSERT_EQ(d.size(), 1u);
  const auto& inst = d.records[0].instances;
  ASSERT_EQ(inst.size(), 3u);
  EXPECT_EQ(inst[0].box, (std::array<float, 4>{10, 10, 30, 30}));
  EXPECT_EQ(inst[1].box, (std::array<float, 4>{90, 40, 100, 50}));
  EXPECT_EQ(inst[2].box, (std::array<float, 4>{0, 0, 100, 50}));
  const BadInputLog& bad = *d.bad_input;
  EXPECT_EQ(bad.count(BadInput::kUnknownImage), 1);
  EXPECT_EQ(bad.count(BadInput::kUnknownCategory), 1);
  EXPECT_EQ(bad.count(BadInput::kInvalidBox), 4);
  EXPECT_EQ(bad.count(BadInput::kClippedBox), 1);
  EXPECT_EQ(bad.total(), 7);
  EXPECT_NE(bad.summary().find("4 invalid boxes"), std::string::npos) << bad.summary();
}

TEST(CocoDataset, StrictModeMakesEachBadCaseAnError) {
  auto coco = bad_dataset();
  CocoDatasetOptions strict;
  strict.strict = true;
  try {
    coco_to_dataset(coco, "bad.json", strict);
    FAIL() << "strict mode accepted bad input";
  } catch (const Error& e) {
    EXPECT_NE(e.where().find("bad.json: annotation id 2"), std::string::npos) << e.where();
  }
  // Each case on its own is an error too.
  for (size_t k = 1; k < coco.annotations.size(); ++k) {
    evaluation::CocoDataset one = coco;
    one.annotations = {coco.annotations[0], coco.annotations[k]};
    if (k == 8) {  // the sub-pixel overshoot is not bad input
      EXPECT_NO_THROW(coco_to_dataset(one, "bad.json", strict));
    } else {
      EXPECT_THROW(coco_to_dataset(one, "bad.json", strict), Error) << "annotation " << k;
    }
  }
}

TEST(CocoDataset, MalformedJsonFailsAtLoadWithTheByteOffset) {
  TempDir dir;
  write_text(dir.file("broken.json"), R"({"images": [{"id": 1, "file_name": "a.jpg",, }]})");
  try {
    load_coco_dataset(dir.file("broken.json"));
    FAIL() << "malformed JSON loaded";
  } catch (const Error& e) {
    const std::string all = std::string(e.what()) + " " + e.where();
    EXPECT_NE(all.find("byte"), std::string::npos) << all;
    EXPECT_NE(all.find("broken.json"), std::string::npos) << all;
  }
  EXPECT_THROW(load_coco_dataset(dir.file("missing.json")), Error);
}

// Regression (fuzz_coco_json, first input it tried: the empty file): JSON that fails simdjson's
// first stage crashed evaluation::parse_coco_json (null dereference in its error path). The data
// layer's entry points must turn every such input into a largedet::Error.
TEST(CocoDataset, FirstStageJsonErrorsAreErrorsNotCrashes) {
  const std::vector<std::string> inputs = {"",
                                           "   ",
                                           "\xFF\xFE{}",
                                           "{\"images\": \"unclosed",
                                           std::string("{\"a\": \"\x01\"}"),
                                           "[",
                                           "{\"images\": [",
                                           "nul"};
  TempDir dir;
  for (const auto& json : inputs) {
    EXPECT_THROW(parse_coco_dataset(json, "fuzz.json"), Error) << json;
    write_text(dir.file("f.json"), json);
    EXPECT_THROW(load_coco_dataset(dir.file("f.json")), Error) << json;
  }
}

// Regression (fuzz_coco_json, out-of-memory): a polygon vertex at 1e33 made the mask rasteriser
// allocate 17 GB; an RLE of another size than its image could ask for any amount. Both are bad
// input, refused at load so that training never rasterises them.
TEST(CocoDataset, SegmentationsThatWouldExplodeTheRasteriserAreBadInput) {
  const std::string json =
      R"({"images": [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 10}],
    "categories": [{"id": 1, "name": "x"}],
    "annotations": [
      {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2],
       "segmentation": [[0, 0, 1, 1666666666666666666666666666666666, 2, 2, 3, 3]]},
      {"id": 2, "image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2],
       "segmentation": {"size": [1000, 1000], "counts": [0, 4, 999996]}},
      {"id": 3, "image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2],
       "segmentation": [[0, 0, 2, 0, 2, 2, 0, 2]]}]})";
  const Dataset d = parse_coco_dataset(json, "explode.json");
  ASSERT_EQ(d.size(), 1u);
  ASSERT_EQ(d.records[0].instances.size(), 1u);
  EXPECT_EQ(d.bad_input->count(BadInput::kInvalidSegmentation), 2);
  CocoDatasetOptions strict;
  strict.strict = true;
  EXPECT_THROW(parse_coco_dataset(
                   R"({"images": [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 10}],
    "categories": [{"id": 1, "name": "x"}], "annotations": [{"id": 1, "image_id": 1,
    "category_id": 1, "bbox": [0, 0, 2, 2], "segmentation": [[0, 0, 1e30, 1, 2, 2]]}]})",
                   "explode.json", strict),
               Error);
}

// Issue 18, item 6: degenerate polygons (one point, an odd number of coordinates, an empty list)
// became empty mask targets, uncounted. An instance with one is dropped and counted, as detectron2
// drops them with a warning; an error in strict mode. Box-only training (no segmentations loaded)
// keeps the boxes.
TEST(CocoDataset, InstancesWithDegeneratePolygonsAreDroppedAndCounted) {
  const std::vector<std::string> degenerate = {
      "[[1, 1]]",                      // one point
      "[[0, 0, 2, 2]]",                // two points
      "[[0, 0, 2, 0, 2, 2, 0]]",       // odd number of coordinates
      "[]",                            // no polygon
      "[[]]",                          // an empty polygon
      "[[0, 0, 2, 0, 2, 2], [5, 5]]",  // one good polygon and a degenerate one
      "[[0, 0, 1, 1, 2, 2, 3, 3]]",    // points on one line: no area
  };
  auto annotation = [](int id, const std::string& segmentation) {
    return detail::concat(R"({"id": )", id,
                          R"(, "image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2], )",
                          R"("segmentation": )", segmentation, "}");
  };
  auto json_with = [&](const std::vector<std::string>& annotations) {
    std::string json = R"({"images": [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 10}],
      "categories": [{"id": 1, "name": "x"}], "annotations": [)";
    for (size_t k = 0; k < annotations.size(); ++k) json += (k ? ", " : "") + annotations[k];
    return json + "]}";
  };
  std::vector<std::string> annotations = {annotation(1, "[[0, 0, 2, 0, 2, 2, 0, 2]]")};
  for (size_t k = 0; k < degenerate.size(); ++k) {
    annotations.push_back(annotation(static_cast<int>(k) + 2, degenerate[k]));
  }
  const Dataset d = parse_coco_dataset(json_with(annotations), "degenerate.json");
  ASSERT_EQ(d.size(), 1u);
  ASSERT_EQ(d.records[0].instances.size(), 1u);
  EXPECT_EQ(d.bad_input->count(BadInput::kDegeneratePolygon),
            static_cast<int64_t>(degenerate.size()));
  EXPECT_NE(d.bad_input->summary().find("degenerate polygons"), std::string::npos)
      << d.bad_input->summary();

  CocoDatasetOptions boxes_only;
  boxes_only.load_segmentation = false;
  const Dataset boxes = parse_coco_dataset(json_with(annotations), "degenerate.json", boxes_only);
  EXPECT_EQ(boxes.records[0].instances.size(), annotations.size());
  EXPECT_EQ(boxes.bad_input->total(), 0);

  CocoDatasetOptions strict;
  strict.strict = true;
  for (const auto& segmentation : degenerate) {
    try {
      parse_coco_dataset(json_with({annotations[0], annotation(2, segmentation)}),
                         "degenerate.json", strict);
      ADD_FAILURE() << "strict mode accepted the polygon " << segmentation;
    } catch (const Error& e) {
      EXPECT_NE(e.where().find("degenerate.json: annotation id 2"), std::string::npos) << e.where();
    }
  }
}

// Issue 18 (unclear message): a box of zero area was reported as x1, y1, x2, y2 while the file
// says x, y, w, h. Messages quote the box as the file writes it.
TEST(CocoDataset, BadBoxMessagesQuoteTheBoxAsTheFileWritesIt) {
  const auto coco = bad_dataset();
  CocoDatasetOptions strict;
  strict.strict = true;
  for (size_t k : {3, 6}) {  // zero width {10, 10, 0, 20}; partly outside {90, 40, 30, 30}
    evaluation::CocoDataset one = coco;
    one.annotations = {coco.annotations[k]};
    const auto& b = coco.annotations[k].bbox;
    const std::string quoted = detail::concat("[", b[0], ", ", b[1], ", ", b[2], ", ", b[3], "]");
    try {
      coco_to_dataset(one, "bad.json", strict);
      ADD_FAILURE() << "strict mode accepted the box " << quoted;
    } catch (const Error& e) {
      EXPECT_NE(e.message().find(quoted), std::string::npos) << e.message();
    }
  }
}

// The same input straight into the evaluation layer's parser (it once read the location of a
// document that simdjson's first stage had refused, and crashed).
TEST(CocoDataset, EvaluationParserSurvivesEmptyInput) {
  EXPECT_EXIT(
      {
        try {
          evaluation::parse_coco_json("", "empty.json");
        } catch (const Error&) {
          std::exit(0);
        }
        std::exit(1);
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace largedet::data
