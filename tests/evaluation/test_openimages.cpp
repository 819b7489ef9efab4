// OpenImages mAP@0.5 on cases small enough to compute by hand (the expected APs are worked out
// in the comments): duplicates, group-of boxes counted once, non-verified classes dropped,
// verified-absent classes counted as false positives.
#include <gtest/gtest.h>

#include "eval_test_util.h"
#include "largedet/core/error.h"
#include "largedet/evaluation/openimages_eval.h"

namespace largedet::evaluation {
namespace {

OidBox box(const char* image, const char* label, double x0, double y0, double x1, double y1,
           bool group = false) {
  return {image, label, x0, x1, y0, y1, group};
}
OidDetection det(const char* image, const char* label, double score, double x0, double y0,
                 double x1, double y1) {
  return {image, label, score, x0, y0, x1, y1};
}

struct Case {
  std::vector<OidBox> gt = {box("img1", "A", 0, 0, .2, .2),
                            box("img1", "A", .5, .5, .7, .7),
                            box("img1", "B", .1, .1, .9, .9, /*group=*/true),
                            box("img1", "B", 0, .9, .05, .95),
                            box("img2", "C", 0, 0, .5, .5),
                            box("img2", "D", .5, .5, 1, 1)};
  std::vector<OidImageLabel> labels = {{"img1", "D", false}, {"img2", "E", true}};
  std::vector<OidDetection> dets = {
      // A: TP, duplicate (FP), TP -> P = 1, .5, 2/3 at R = .5, .5, 1 -> AP = .5 + .5 * 2/3.
      det("img1", "A", .9, 0, 0, .2, .2), det("img1", "A", .8, 0, 0, .2, .2),
      det("img1", "A", .7, .5, .5, .7, .7),
      // B: two inside the group-of box -> one TP scored .6; one outside -> FP at .5;
      // 2 instances -> P = 1, .5 at R = .5, .5 -> AP = .5.
      det("img1", "B", .6, .2, .2, .3, .3), det("img1", "B", .4, .4, .4, .5, .5),
      det("img1", "B", .5, .95, 0, 1, .05),
      // C is not verified in img1: dropped. In img2 a TP -> AP = 1.
      det("img1", "C", .99, 0, 0, .5, .5), det("img2", "C", .3, 0, 0, .5, .5),
      // D is verified absent in img1: an FP at .95 ranks above the TP at .2 -> AP = .5.
      det("img1", "D", .95, .5, .5, 1, 1), det("img2", "D", .2, .5, .5, 1, 1),
      // E has no boxes anywhere: no AP.
      det("img2", "E", .9, 0, 0, 1, 1)};
};

TEST(OpenImages, HandComputedGroupOfAndVerifiedLabels) {
  Case c;
  for (int threads : {1, 2}) {
    OidEvalParams params;
    params.threads = threads;
    const OidEvalResult r = evaluate_openimages(c.gt, c.labels, c.dets, params);
    ASSERT_EQ(r.per_class.size(), 4u);
    EXPECT_EQ(r.per_class[0].label, "A");
    EXPECT_NEAR(r.per_class[0].ap, 0.5 + 0.5 * 2 / 3.0, 1e-12);
    EXPECT_NEAR(r.per_class[1].ap, 0.5, 1e-12);
    EXPECT_EQ(r.per_class[1].num_groundtruth, 2u);  // the group-of box counts once
    EXPECT_NEAR(r.per_class[2].ap, 1.0, 1e-12);
    EXPECT_EQ(r.per_class[2].num_detections, 1u);  // the non-verified one was dropped
    EXPECT_NEAR(r.per_class[3].ap, 0.5, 1e-12);
    EXPECT_NEAR(r.map, (0.5 + 0.5 * 2 / 3.0 + 0.5 + 1 + 0.5) / 4, 1e-12);
  }
}

TEST(OpenImages, UnverifiedClassIsNotAFalsePositive) {
  Case c;
  c.labels = {};  // D no longer verified in img1: its detection there is dropped -> AP_D = 1
  const OidEvalResult r = evaluate_openimages(c.gt, c.labels, c.dets);
  EXPECT_NEAR(r.per_class[3].ap, 1.0, 1e-12);
  EXPECT_NEAR(r.map, (0.5 + 0.5 * 2 / 3.0 + 0.5 + 1 + 1) / 4, 1e-12);
}

TEST(OpenImages, GroupOfHitsWithoutBoxesGiveFullRecall) {
  // One group-of box and three detections inside it: one TP, no FP.
  std::vector<OidBox> gt = {box("i", "X", 0, 0, 1, 1, true)};
  std::vector<OidDetection> dets = {det("i", "X", .9, 0, 0, .1, .1),
                                    det("i", "X", .8, .2, .2, .3, .3),
                                    det("i", "X", .7, .5, .5, .6, .6)};
  const OidEvalResult r = evaluate_openimages(gt, {}, dets);
  ASSERT_EQ(r.per_class.size(), 1u);
  EXPECT_DOUBLE_EQ(r.per_class[0].ap, 1.0);
}

TEST(OpenImages, CsvFilesReadByHeaderAndErrorsNameTheLine) {
  const std::string dir = testing::make_temp_dir();
  testing::write_text(dir + "/boxes.csv",
                      "ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,"
                      "IsTruncated,IsGroupOf,IsDepiction,IsInside\n"
                      "i,xclick,X,1,0.1,0.5,0.2,0.6,0,0,0,0,0\r\n");
  testing::write_text(dir + "/labels.csv", "ImageID,Source,LabelName,Confidence\ni,v,Y,0\n");
  testing::write_text(dir + "/dets.csv",
                      "ImageID,LabelName,Score,XMin,YMin,XMax,YMax\ni,X,0.5,0.1,0.2,0.5,0.6\n"
                      "i,Y,0.25,0.1,0.2,0.5,0.6\n");
  testing::write_text(dir + "/bad.csv",
                      "ImageID,LabelName,Score,XMin,YMin,XMax,YMax\ni,X,0.5,0.1,0.2,0.5,0.6\n"
                      "i,X,high,0.1,0.2,0.5,0.6\n");
  const auto gt = load_oid_boxes_csv(dir + "/boxes.csv");
  ASSERT_EQ(gt.size(), 1u);
  EXPECT_EQ(gt[0].xmax, 0.5);
  EXPECT_EQ(gt[0].ymin, 0.2);
  const auto labels = load_oid_image_labels_csv(dir + "/labels.csv");
  ASSERT_EQ(labels.size(), 1u);
  EXPECT_FALSE(labels[0].positive);
  const auto dets = load_oid_detections_csv(dir + "/dets.csv");
  ASSERT_EQ(dets.size(), 2u);
  const OidEvalResult r = evaluate_openimages(gt, labels, dets);
  ASSERT_EQ(r.per_class.size(), 1u);
  EXPECT_DOUBLE_EQ(r.map, 1.0);
  try {
    load_oid_detections_csv(dir + "/bad.csv");
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.csv:3"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("Score"), std::string::npos) << e.what();
  }
  EXPECT_THROW(load_oid_image_labels_csv(dir + "/dets.csv"), Error);  // no Confidence column
  // A spreadsheet's export: a UTF-8 byte order mark and CRLF line ends read the same.
  testing::write_text(dir + "/excel.csv",
                      "\xEF\xBB\xBFImageID,LabelName,Score,XMin,YMin,XMax,YMax\r\n"
                      "i,X,0.5,0.1,0.2,0.5,0.6\r\ni,Y,0.25,0.1,0.2,0.5,0.6\r\n");
  const auto excel = load_oid_detections_csv(dir + "/excel.csv");
  ASSERT_EQ(excel.size(), 2u);
  EXPECT_EQ(excel[0].image_id, "i");
  EXPECT_EQ(excel[1].ymax, 0.6);
  testing::write_text(dir + "/classes.csv", "\xEF\xBB\xBFX,Cat\r\nY,Dog\r\n");
  const auto classes = load_oid_class_descriptions(dir + "/classes.csv");
  ASSERT_EQ(classes.size(), 2u);
  EXPECT_EQ(classes[0].mid, "X");
  EXPECT_EQ(classes[1].name, "Dog");
  testing::write_text(dir + "/coco.json", "{\"images\": []}\n");
  try {
    load_oid_boxes_csv(dir + "/coco.json");
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("this is JSON"), std::string::npos) << e.what();
  }
  testing::remove_temp_dir(dir);
}

}  // namespace
}  // namespace largedet::evaluation

TEST(OpenImagesCsv, DetectionsRoundTripThroughTextExactly) {
  std::vector<largedet::evaluation::OidDetection> detections = {
      {"img1", "/m/a", 0.1 + 0.2, 1.0 / 3, 0.25, 2.0 / 3, 0.75},
      {"img2", "/m/b", 1e-300, 0.0, 0.0, 1.0, 1.0}};
  const std::string text = largedet::evaluation::oid_detections_to_csv(detections);
  const auto back = largedet::evaluation::parse_oid_detections_csv(text, "rank 1");
  ASSERT_EQ(back.size(), detections.size());
  for (size_t i = 0; i < back.size(); ++i) {
    EXPECT_EQ(back[i].image_id, detections[i].image_id);
    EXPECT_EQ(back[i].label, detections[i].label);
    EXPECT_EQ(back[i].score, detections[i].score);
    EXPECT_EQ(back[i].xmin, detections[i].xmin);
    EXPECT_EQ(back[i].ymax, detections[i].ymax);
  }
  try {
    largedet::evaluation::parse_oid_detections_csv(
        "ImageID,LabelName,Score,XMin,YMin,XMax,YMax\nimg,/m/a,oops,0,0,1,1\n", "rank 1");
    FAIL() << "no error";
  } catch (const largedet::Error& e) {
    EXPECT_NE(std::string(e.what()).find("rank 1:2"), std::string::npos) << e.what();
  }
}
