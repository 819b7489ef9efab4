// The checked-in OpenImages vectors (tests/evaluation/data/oid_eval, written by
// tools/oracle/openimages/make_oid_vectors.py with the TF OD API's own expansion script and
// evaluators): 40 images, a hierarchy with a class under two parents, group-of boxes, verified
// labels, detections of parent classes, of unverified classes and of classes outside the list.
// Our expansion must give the official rows and our metrics the reference's numbers (1e-9), for
// both protocols, from the files as they ship and from the official expanded files.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "eval_test_util.h"
#include "largedet/core/file_io.h"
#include "largedet/evaluation/openimages_eval.h"
#include "largedet/evaluation/openimages_hierarchy.h"

namespace largedet::evaluation {
namespace {

using nlohmann::json;

std::string data(const std::string& file) {
  return std::string(LARGEDET_SOURCE_DIR) + "/tests/evaluation/data/oid_eval/" + file;
}

const json& reference() {
  static const json r = json::parse(read_file(data("reference.json")));
  return r;
}

const char* evaluator_name(OidProtocol p) {
  return p == OidProtocol::kChallenge ? "OpenImagesChallengeEvaluator"
                                      : "OpenImagesDetectionEvaluator";
}

std::vector<std::string> class_list() {
  std::vector<std::string> mids;
  for (const auto& c : load_oid_class_descriptions(data("class-descriptions.csv")))
    mids.push_back(c.mid);
  return mids;
}

// Our APs against the reference's: the same classes (the reference's null APs are classes without
// instances, which we leave out), each within `tolerance`, and the mean.
void expect_equal(const OidEvalResult& ours, const json& expected, const std::string& what) {
  std::set<std::string> classes;
  for (const auto& [mid, ap] : expected["per_class_ap"].items())
    if (!ap.is_null()) classes.insert(mid);
  ASSERT_EQ(ours.per_class.size(), classes.size()) << what;
  for (const auto& c : ours.per_class) {
    ASSERT_TRUE(classes.count(c.label)) << what << ": " << c.label;
    EXPECT_NEAR(c.ap, expected["per_class_ap"][c.label].get<double>(), 1e-9)
        << what << ": " << c.label;
    if (expected.contains("counts")) {
      EXPECT_EQ(double(c.num_groundtruth), expected["counts"][c.label]["num_gt"].get<double>())
          << what << ": " << c.label;
    }
  }
  EXPECT_NEAR(ours.map, expected["mAP"].get<double>(), 1e-9) << what;
}

OidEvalResult evaluate_files(OidProtocol protocol, const OidGroundTruth& gt,
                             const std::string& detections, int threads) {
  OidEvalParams params;
  params.protocol = protocol;
  params.classes = class_list();
  params.threads = threads;
  return evaluate_openimages(gt.boxes, gt.image_labels, load_oid_detections_csv(data(detections)),
                             params);
}

std::multiset<std::string> lines_of(const std::string& text) {
  std::multiset<std::string> lines;
  size_t start = 0;
  for (size_t end; (end = text.find('\n', start)) != std::string::npos; start = end + 1)
    lines.insert(text.substr(start, end - start));
  return lines;
}

TEST(OidVectors, ExpansionGivesTheOfficialRows) {
  const auto hierarchy = OidHierarchy::from_json_file(data("hierarchy.json"));
  const std::pair<const char*, OidCsvKind> files[] = {{"gt-bbox", OidCsvKind::kBoxes},
                                                      {"gt-imagelabels", OidCsvKind::kImageLabels}};
  for (const auto& [name, kind] : files) {
    const std::string in = read_file(data(std::string(name) + ".csv"));
    const std::string official = read_file(data(std::string(name) + "_expanded.csv"));
    OidExpansionReport report;
    const std::string ours = expand_oid_csv(in, kind, hierarchy, name, &report);
    // The official copies come in Python's set order: the same rows, compared as multisets.
    EXPECT_EQ(lines_of(ours), lines_of(official)) << name;
    EXPECT_FALSE(report.already_expanded) << name;
    EXPECT_EQ(report.rows_read + report.rows_added + 1, lines_of(official).size()) << name;
    EXPECT_EQ(report.rows_read, reference()["rows"][std::string(name) + ".csv"].get<size_t>());

    expand_oid_csv(official, kind, hierarchy, name, &report);
    EXPECT_TRUE(report.already_expanded) << name << "_expanded.csv";
  }
}

TEST(OidVectors, BothProtocolsEqualTheReferenceWithoutTies) {
  const OidGroundTruth plain =
      load_oid_ground_truth(data("gt-bbox.csv"), data("gt-imagelabels.csv"));
  const OidGroundTruth expanded_by_us = load_oid_ground_truth(
      data("gt-bbox.csv"), data("gt-imagelabels.csv"), data("hierarchy.json"));
  const OidGroundTruth expanded_officially =
      load_oid_ground_truth(data("gt-bbox_expanded.csv"), data("gt-imagelabels_expanded.csv"));
  for (OidProtocol protocol : {OidProtocol::kChallenge, OidProtocol::kV2}) {
    const json& results = reference()["evaluators"][evaluator_name(protocol)]["results"];
    for (int threads : {1, 3}) {
      const std::string what =
          std::string(evaluator_name(protocol)) + ", " + std::to_string(threads) + " threads";
      expect_equal(evaluate_files(protocol, plain, "detections-distinct.csv", threads),
                   results["non_expanded"]["distinct"], what + ", not expanded");
      expect_equal(evaluate_files(protocol, expanded_by_us, "detections-distinct.csv", threads),
                   results["expanded"]["distinct"], what + ", expanded by us");
      expect_equal(
          evaluate_files(protocol, expanded_officially, "detections-distinct.csv", threads),
          results["expanded"]["distinct"], what + ", expanded officially");
    }
  }
}

// The TF code sorts scores with numpy's unstable introsort; our documented rule (equal scores rank
// by ImageID, then by file order) is the TF code with a stable sort, which the reference also ran.
TEST(OidVectors, TiesRankByImageIdThenFileOrder) {
  const OidGroundTruth expanded = load_oid_ground_truth(
      data("gt-bbox.csv"), data("gt-imagelabels.csv"), data("hierarchy.json"));
  const OidGroundTruth plain =
      load_oid_ground_truth(data("gt-bbox.csv"), data("gt-imagelabels.csv"));
  for (OidProtocol protocol : {OidProtocol::kChallenge, OidProtocol::kV2}) {
    const json& results = reference()["evaluators"][evaluator_name(protocol)]["results"];
    const std::string what = evaluator_name(protocol);
    expect_equal(evaluate_files(protocol, expanded, "detections-ties.csv", 2),
                 results["expanded"]["ties"]["tie_policies"]["stable_input_order"],
                 what + ", expanded");
    expect_equal(evaluate_files(protocol, plain, "detections-ties.csv", 2),
                 results["non_expanded"]["ties"]["tie_policies"]["stable_input_order"],
                 what + ", not expanded");
  }
}

TEST(OidVectors, DetectionsOutsideTheListOrGroundTruthAreLeftOutAndCounted) {
  const OidGroundTruth gt = load_oid_ground_truth(data("gt-bbox.csv"), data("gt-imagelabels.csv"));
  const OidEvalResult r = evaluate_files(OidProtocol::kChallenge, gt, "detections-distinct.csv", 1);
  EXPECT_GT(r.boxes_of_other_classes, 0u);       // Unicycle: in the tree, not in the list
  EXPECT_GT(r.detections_of_other_classes, 0u);  // the root, Unicycle, an unknown MID
  EXPECT_GT(r.detections_of_other_images, 0u);   // an image with detections only
  EXPECT_NE(r.left_out().find("not in the class list"), std::string::npos);
}

json cli_stats(const json& stats) {
  json out = {{"mAP", stats["oid"]["mAP@0.5"]}, {"per_class_ap", json::object()}};
  for (const auto& [mid, entry] : stats["per_category"].items())
    out["per_class_ap"][mid] = entry["oid"]["AP"];
  return out;
}

TEST(OidVectors, EvaluateCliReproducesTheReference) {
  if (!testing::cli_built()) GTEST_SKIP() << "largedet CLI not built (" << LARGEDET_CLI << ")";
  const std::string dir = testing::make_temp_dir();
  for (const char* protocol : {"challenge", "v2"}) {
    const testing::CliRun run = testing::run_cli(
        "evaluate --type oid --protocol " + std::string(protocol) + " -a '" + data("gt-bbox.csv") +
        "' --labels '" + data("gt-imagelabels.csv") + "' --hierarchy '" + data("hierarchy.json") +
        "' --classes '" + data("class-descriptions.csv") + "' -r '" +
        data("detections-distinct.csv") + "' -o '" + dir + "/stats.json' --per-category");
    ASSERT_EQ(run.status, 0) << run.output;
    EXPECT_NE(run.output.find("rows expanded along the hierarchy"), std::string::npos)
        << run.output;
    EXPECT_NE(run.output.find("left out:"), std::string::npos) << run.output;
    const auto stats = json::parse(read_file(dir + "/stats.json"));
    const OidProtocol p = oid_protocol_from_name(protocol, "test");
    const json& expected =
        reference()["evaluators"][evaluator_name(p)]["results"]["expanded"]["distinct"];
    const json ours = cli_stats(stats);
    EXPECT_NEAR(ours["mAP"].get<double>(), expected["mAP"].get<double>(), 1e-9) << protocol;
    for (const auto& [mid, ap] : expected["per_class_ap"].items()) {
      if (ap.is_null()) {
        EXPECT_FALSE(ours["per_class_ap"].contains(mid)) << protocol << " " << mid;
      } else {
        ASSERT_TRUE(ours["per_class_ap"].contains(mid)) << protocol << " " << mid;
        EXPECT_NEAR(ours["per_class_ap"][mid].get<double>(), ap.get<double>(), 1e-9)
            << protocol << " " << mid;
      }
    }
  }
  testing::remove_temp_dir(dir);
}

}  // namespace
}  // namespace largedet::evaluation
