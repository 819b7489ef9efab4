// OpenImages CSVs -> Dataset: classes in file order, normalised boxes, group-of flags, image-level
// labels, unknown classes counted as bad input.
#include <gtest/gtest.h>

#include "data_test_util.h"
#include "largedet/core/error.h"
#include "largedet/data/openimages_dataset.h"

namespace largedet::data {
namespace {

using testing::TempDir;
using testing::write_text;

TEST(OpenImages, ReadsBoxesClassesAndImageLabels) {
  TempDir dir;
  write_text(dir.file("classes.csv"), "/m/b,Boy\n/m/a,\"Apple, green\"\n/m/c,Car\n");
  write_text(dir.file("boxes.csv"),
             "ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,IsTruncated,"
             "IsGroupOf,IsDepiction,IsInside\n"
             "img1,xclick,/m/a,1,0.1,0.5,0.2,0.6,0,0,0,0,0\n"
             "img1,xclick,/m/c,1,0.0,1.0,0.5,1.0,0,0,1,0,0\n"
             "img2,xclick,/m/b,1,0.25,0.75,0.25,0.75,0,0,0,0,0\n"
             "img2,xclick,/m/zzz,1,0.25,0.75,0.25,0.75,0,0,0,0,0\n"
             "img3,xclick,/m/b,1,0.5,0.5,0.1,0.2,0,0,0,0,0\n");
  write_text(dir.file("labels.csv"),
             "ImageID,Source,LabelName,Confidence\n"
             "img1,verification,/m/b,0\n"
             "img1,verification,/m/a,1\n"
             "img9,verification,/m/a,1\n");
  OpenImagesOptions o;
  o.boxes_csv = dir.file("boxes.csv");
  o.class_descriptions_csv = dir.file("classes.csv");
  o.image_labels_csv = dir.file("labels.csv");
  o.image_root = "/oid";
  const Dataset d = load_openimages_dataset(o);
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"Boy", "Apple, green", "Car"}));
  ASSERT_EQ(d.size(), 2u);  // img3's only box is degenerate; img9 has no boxes
  const Record& r = d.records[0];
  EXPECT_EQ(r.source_id, "img1");
  EXPECT_EQ(r.path, "/oid/img1.jpg");
  EXPECT_TRUE(r.normalized_boxes);
  ASSERT_EQ(r.instances.size(), 2u);
  EXPECT_EQ(r.instances[0].label, 2);
  EXPECT_EQ(r.instances[0].box, (std::array<float, 4>{0.1f, 0.2f, 0.5f, 0.6f}));
  EXPECT_FALSE(r.instances[0].is_group_of);
  EXPECT_EQ(r.instances[1].label, 3);
  EXPECT_TRUE(r.instances[1].is_group_of);
  EXPECT_EQ(r.positive_labels, (std::vector<int64_t>{2}));
  EXPECT_EQ(r.negative_labels, (std::vector<int64_t>{1}));
  EXPECT_EQ(d.bad_input->count(BadInput::kUnknownCategory), 1);
  EXPECT_EQ(d.bad_input->count(BadInput::kInvalidBox), 1);

  o.filter_empty = false;
  EXPECT_EQ(load_openimages_dataset(o).size(), 4u);
  o.strict = true;
  EXPECT_THROW(load_openimages_dataset(o), Error);
}

TEST(OpenImages, MissingFilesAreErrorsNamingThem) {
  OpenImagesOptions o;
  o.boxes_csv = "/nonexistent/boxes.csv";
  o.class_descriptions_csv = "/nonexistent/classes.csv";
  try {
    load_openimages_dataset(o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(e.where().find("classes.csv"), std::string::npos);
  }
}

}  // namespace
}  // namespace largedet::data
