// The hierarchy expansion, rule by rule, on a tree small enough to expand by hand:
//   Entity (root)
//   +- Animal
//   |  +- Dog
//   |  +- Cat
//   +- Pet
//   |  +- Dog (a second parent)
//   |  +- Fish
//   +- Vehicle        ("Part": Wheel, which is not part of the tree)
//      +- Car
//         +- Taxi
#include <gtest/gtest.h>

#include <algorithm>

#include "largedet/core/error.h"
#include "largedet/evaluation/openimages_hierarchy.h"

namespace largedet::evaluation {
namespace {

using Labels = std::vector<std::string>;

const char* kTree = R"({"LabelName": "Entity", "Subcategory": [
  {"LabelName": "Animal", "Subcategory": [{"LabelName": "Dog"}, {"LabelName": "Cat"}]},
  {"LabelName": "Pet", "Subcategory": [{"LabelName": "Dog"}, {"LabelName": "Fish"}]},
  {"LabelName": "Vehicle", "Part": [{"LabelName": "Wheel"}],
   "Subcategory": [{"LabelName": "Car", "Subcategory": [{"LabelName": "Taxi"}]}]}]})";

OidHierarchy tree() { return OidHierarchy::from_json(kTree, "tree.json"); }

const char* kBoxHeader =
    "ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,IsTruncated,IsGroupOf,"
    "IsDepiction,IsInside\n";

TEST(OidHierarchy, AncestorsAndDescendantsLeaveTheRootOut) {
  const OidHierarchy h = tree();
  EXPECT_EQ(h.ancestors("Taxi"), (Labels{"Car", "Vehicle"}));
  EXPECT_EQ(h.descendants("Vehicle"), (Labels{"Car", "Taxi"}));
  EXPECT_EQ(h.ancestors("Animal"), Labels{});
  EXPECT_FALSE(h.contains("Entity"));
  EXPECT_EQ(h.size(), 8u);  // Animal Dog Cat Pet Fish Vehicle Car Taxi
}

TEST(OidHierarchy, ClassUnderTwoParentsHasBoth) {
  const OidHierarchy h = tree();
  EXPECT_EQ(h.ancestors("Dog"), (Labels{"Animal", "Pet"}));
  EXPECT_EQ(h.descendants("Pet"), (Labels{"Dog", "Fish"}));
}

TEST(OidHierarchy, PartListsAreNotTheTree) {
  const OidHierarchy h = tree();
  EXPECT_FALSE(h.contains("Wheel"));
  EXPECT_EQ(h.descendants("Vehicle"), (Labels{"Car", "Taxi"}));
}

// As _build_plain_hierarchy does: a class gets the ancestors of the paths where it occurs, not
// those of every occurrence of its parent (Car appears twice; Taxi only below the first).
TEST(OidHierarchy, AncestorsFollowTheOccurrencesPaths) {
  const OidHierarchy h = OidHierarchy::from_json(R"({"LabelName": "R", "Subcategory": [
      {"LabelName": "Vehicle", "Subcategory": [{"LabelName": "Car", "Subcategory": [
          {"LabelName": "Taxi"}]}]},
      {"LabelName": "Toy", "Subcategory": [{"LabelName": "Car"}]}]})",
                                                 "t.json");
  EXPECT_EQ(h.ancestors("Car"), (Labels{"Toy", "Vehicle"}));
  EXPECT_EQ(h.ancestors("Taxi"), (Labels{"Car", "Vehicle"}));
  EXPECT_EQ(h.descendants("Toy"), (Labels{"Car"}));
}

TEST(OidHierarchy, MalformedFilesAreRefusedByName) {
  auto message = [](const std::string& json) {
    try {
      OidHierarchy::from_json(json, "h.json");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("{").find("h.json"), std::string::npos);
  EXPECT_NE(message(R"({"LabelName": "R", "Subcategory": [{"Name": "x"}]})").find("no LabelName"),
            std::string::npos);
  EXPECT_NE(message(R"({"LabelName": "R", "Subcategory": {"LabelName": "x"}})").find("not a list"),
            std::string::npos);
  EXPECT_NE(message(R"({"LabelName": "R"})").find("no class"), std::string::npos);
  EXPECT_NE(message(R"({"LabelName": "R", "Subcategory": [{"LabelName": "A", "Subcategory": [
                        {"LabelName": "A"}]}]})")
                .find("below itself"),
            std::string::npos);
}

TEST(OidExpansion, BoxesGoToEveryAncestorWithTheOtherFieldsKept) {
  const std::string in = std::string(kBoxHeader) +
                         "img1,xclick,Taxi,1,0.1000,0.5,0.2,0.6,0,1,0,0,0\n"
                         "img1,xclick,Dog,1,0,1,0,1,1,0,1,0,0\n"
                         "img2,activemil,Animal,1,0.3,0.4,0.3,0.4,0,0,0,0,0\n";
  OidExpansionReport report;
  const std::string out = expand_oid_csv(in, OidCsvKind::kBoxes, tree(), "b.csv", &report);
  EXPECT_EQ(out, std::string(kBoxHeader) +
                     "img1,xclick,Taxi,1,0.1000,0.5,0.2,0.6,0,1,0,0,0\n"
                     "img1,xclick,Car,1,0.1000,0.5,0.2,0.6,0,1,0,0,0\n"
                     "img1,xclick,Vehicle,1,0.1000,0.5,0.2,0.6,0,1,0,0,0\n"
                     "img1,xclick,Dog,1,0,1,0,1,1,0,1,0,0\n"
                     "img1,xclick,Animal,1,0,1,0,1,1,0,1,0,0\n"
                     "img1,xclick,Pet,1,0,1,0,1,1,0,1,0,0\n"
                     "img2,activemil,Animal,1,0.3,0.4,0.3,0.4,0,0,0,0,0\n");
  EXPECT_EQ(report.rows_read, 3u);
  EXPECT_EQ(report.rows_added, 4u);
  EXPECT_FALSE(report.already_expanded);
}

TEST(OidExpansion, PositiveLabelsGoUpNegativeLabelsGoDown) {
  const std::string in =
      "ImageID,Source,LabelName,Confidence\n"
      "img1,verification,Taxi,1\n"
      "img1,verification,Vehicle,0\n"
      "img2,crowdsource-verification,Pet,0\n"
      "img2,verification,Fish,0\n";
  const std::string out = expand_oid_csv(in, OidCsvKind::kImageLabels, tree(), "l.csv");
  EXPECT_EQ(out,
            "ImageID,Source,LabelName,Confidence\n"
            "img1,verification,Taxi,1\n"
            "img1,verification,Car,1\n"
            "img1,verification,Vehicle,1\n"
            "img1,verification,Vehicle,0\n"
            "img1,verification,Car,0\n"
            "img1,verification,Taxi,0\n"
            "img2,crowdsource-verification,Pet,0\n"
            "img2,crowdsource-verification,Dog,0\n"
            "img2,crowdsource-verification,Fish,0\n"
            "img2,verification,Fish,0\n");
}

// The official script keeps duplicates: an explicit parent box equal to the copy of its child's.
TEST(OidExpansion, RowsAreNotDeduplicated) {
  const std::string in = std::string(kBoxHeader) +
                         "img1,xclick,Car,1,0,1,0,1,0,0,0,0,0\n"
                         "img1,xclick,Taxi,1,0,1,0,1,0,0,0,0,0\n";
  OidExpansionReport report;
  const std::string out = expand_oid_csv(in, OidCsvKind::kBoxes, tree(), "b.csv", &report);
  EXPECT_EQ(report.rows_added, 3u);  // Car -> Vehicle; Taxi -> Car, Vehicle
  EXPECT_FALSE(report.already_expanded);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 6);
}

TEST(OidExpansion, AnExpandedFileIsNotExpandedTwice) {
  const OidHierarchy h = tree();
  const std::string boxes = expand_oid_csv(std::string(kBoxHeader) +
                                               "img1,xclick,Taxi,1,0.1,0.5,0.2,0.6,0,1,0,0,0\n"
                                               "img1,xclick,Fish,1,0,1,0,1,0,0,1,0,0\n",
                                           OidCsvKind::kBoxes, h, "b.csv");
  OidExpansionReport report;
  EXPECT_EQ(expand_oid_csv(boxes, OidCsvKind::kBoxes, h, "b_expanded.csv", &report), boxes);
  EXPECT_TRUE(report.already_expanded);
  EXPECT_EQ(report.rows_added, 0u);
  EXPECT_NE(report.summary().find("already expanded"), std::string::npos);

  const std::string labels =
      expand_oid_csv("ImageID,Source,LabelName,Confidence\nimg1,v,Dog,1\nimg1,v,Vehicle,0\n",
                     OidCsvKind::kImageLabels, h, "l.csv");
  EXPECT_EQ(expand_oid_csv(labels, OidCsvKind::kImageLabels, h, "l.csv", &report), labels);
  EXPECT_TRUE(report.already_expanded);
}

TEST(OidExpansion, ClassesOutsideTheTreeAndBadRowsAreErrorsNamingTheLine) {
  const OidHierarchy h = tree();
  auto message = [&](const std::string& text, OidCsvKind kind) {
    try {
      expand_oid_csv(text, kind, h, "in.csv");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::string header = kBoxHeader;
  EXPECT_NE(
      message(header + "img1,x,Wheel,1,0,1,0,1,0,0,0,0,0\n", OidCsvKind::kBoxes).find("in.csv:2"),
      std::string::npos);
  EXPECT_NE(message(header + "img1,x,Entity,1,0,1,0,1,0,0,0,0,0\n", OidCsvKind::kBoxes)
                .find("not in the hierarchy"),
            std::string::npos);
  EXPECT_NE(message(header + "img1,x,Dog,1,0,1\n", OidCsvKind::kBoxes).find("fields"),
            std::string::npos);
  EXPECT_NE(message("ImageID,LabelName\nimg1,Dog\n", OidCsvKind::kImageLabels).find("Confidence"),
            std::string::npos);
  EXPECT_NE(
      message("ImageID,Source,LabelName,Confidence\nimg1,v,Dog,yes\n", OidCsvKind::kImageLabels)
          .find("not a number"),
      std::string::npos);
  EXPECT_NE(message("", OidCsvKind::kBoxes).find("empty"), std::string::npos);
}

TEST(OidExpansion, CrlfLinesAndBlankLinesRead) {
  const std::string out =
      expand_oid_csv("ImageID,Source,LabelName,Confidence\r\n\r\nimg1,v,Car,1\r\n",
                     OidCsvKind::kImageLabels, tree(), "l.csv");
  EXPECT_EQ(out, "ImageID,Source,LabelName,Confidence\nimg1,v,Car,1\nimg1,v,Vehicle,1\n");
}

}  // namespace
}  // namespace largedet::evaluation
