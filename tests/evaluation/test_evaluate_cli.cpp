// `largedet evaluate` end to end on the checked-in COCO vectors: the printed summary, stats.json,
// and a clear non-zero exit on malformed results. Skipped when the CLI has not been built.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "eval_test_util.h"
#include "largedet/core/file_io.h"
#include "largedet/evaluation/coco_eval.h"

namespace largedet::evaluation {
namespace {

TEST(EvaluateCli, CocoVectorsBothTypesWriteStatsJson) {
  if (!testing::cli_built()) GTEST_SKIP() << "largedet CLI not built (" << LARGEDET_CLI << ")";
  const std::string data = testing::coco_vectors_dir();
  const std::string dir = testing::make_temp_dir();
  const auto expected = nlohmann::json::parse(read_file(data + "/expected.json"));
  for (const char* type : {"bbox", "segm"}) {
    const testing::CliRun run = testing::run_cli(
        "evaluate --annotations '" + data + "/gt.json' --results '" + data + "/dets_" + type +
        ".json' --type " + type + " --threads 2 --output '" + dir + "/stats.json' --per-category");
    ASSERT_EQ(run.status, 0) << run.output;
    for (const auto& line : expected[std::string(type) + "_summary"]) {
      EXPECT_NE(run.output.find(line.get<std::string>()), std::string::npos)
          << line << "\nnot in:\n"
          << run.output;
    }
    const auto stats = nlohmann::json::parse(read_file(dir + "/stats.json"));
    for (size_t i = 0; i < 12; ++i) {
      EXPECT_NEAR(stats[type][kStatNames[i]].get<double>(), expected[type][i].get<double>(), 1e-6)
          << type << " " << kStatNames[i];
    }
    EXPECT_FALSE(stats["per_category"].empty());
  }
  // Without --per-category: the summary only.
  const testing::CliRun run =
      testing::run_cli("evaluate --annotations '" + data + "/gt.json' --results '" + data +
                       "/dets_bbox.json' --output '" + dir + "/plain.json'");
  ASSERT_EQ(run.status, 0) << run.output;
  const auto plain = nlohmann::json::parse(read_file(dir + "/plain.json"));
  EXPECT_EQ(plain["bbox"].size(), 12u);
  EXPECT_FALSE(plain.contains("per_category"));
  testing::remove_temp_dir(dir);
}

TEST(EvaluateCli, MalformedResultsExitNonZeroNamingTheEntry) {
  if (!testing::cli_built()) GTEST_SKIP() << "largedet CLI not built (" << LARGEDET_CLI << ")";
  const std::string data = testing::coco_vectors_dir();
  const std::string dir = testing::make_temp_dir();
  testing::write_text(dir + "/bad.json",
                      R"([{"image_id": 1000, "category_id": 7, "score": 0.5, "bbox": [1, 2, 3, 4]},
                          {"image_id": 424242, "category_id": 7, "score": 0.5, "bbox": [1, 2, 3, 4]}])");
  const testing::CliRun run =
      testing::run_cli("evaluate -a '" + data + "/gt.json' -r '" + dir + "/bad.json'");
  EXPECT_EQ(run.status, 1) << run.output;
  EXPECT_NE(run.output.find("results[1]"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("424242"), std::string::npos) << run.output;
  testing::remove_temp_dir(dir);
}

}  // namespace
}  // namespace largedet::evaluation
