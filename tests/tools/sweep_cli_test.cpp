// `largedet sweep` end to end on a tiny synthetic recipe: a 2 x 2 grid with one cell left
// half-trained beforehand (it resumes) and two whose learning rate makes the NaN guard trip (they
// are reported as diverged, and the sweep still succeeds); then a rerun that trains nothing, an
// archive that counts as done on a fresh output, the summary and the two plots.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "common/shell.h"
#include "engine/temp_dir.h"
#include "engine/train_fixture.h"
#include "largedet/core/run_lock.h"
#include "sweep/record.h"
#include "sweep/summary.h"

namespace largedet::tools::sweep {
namespace {

using test::quote;
using test::read_text;
using test::run_shell;

bool cli_built() {
  struct stat st;
  return ::stat(LARGEDET_CLI, &st) == 0;
}

std::string cli() { return quote(LARGEDET_CLI); }

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// 16 synthetic images of 96 px and a detector that trains 4 iterations in seconds; SCALE_SCHEDULE
// gives batch 2 cells twice the iterations (8) of batch 4 ones, which the sweep must know.
std::string write_recipe(const std::string& dir) {
  const std::string tiny = test::write_tiny_recipe(dir, 16);
  const std::string recipe = dir + "/sweep.yaml";
  std::ofstream(recipe) << "_BASE_: " << tiny << "\n"
                        << "MODEL:\n"
                           "  RESNETS: {NORM: BN}\n"
                           "TEST: {EVAL_PERIOD: 4}\n"
                           "SOLVER:\n"
                           "  OPTIMIZER: sgd\n"
                           "  SCALE_SCHEDULE: true\n"
                           "  STEPS: []\n"
                           "  WARMUP_ITERS: 1\n"
                           "  LOG_PERIOD: 1\n"
                           "  MAX_BAD_STEPS: 1\n";
  return recipe;
}

TEST(SweepCli, GridResumesReportsDivergenceSkipsFinishedCellsAndSummarizes) {
  if (!cli_built()) GTEST_SKIP() << "largedet CLI not built: " << LARGEDET_CLI;
  test::TempDir tmp;
  const std::string recipe = write_recipe(tmp.path());
  const std::string out = tmp.path() + "/sweep", archive = tmp.path() + "/archive";
  const std::string grid = " SOLVER.BASE_LR=0.01,1e30 SOLVER.IMS_PER_BATCH=4,2";
  const std::string sweep = cli() + " sweep --config " + quote(recipe) + " --output " + quote(out) +
                            " --archive " + quote(archive) + grid;
  const std::string good = "BASE_LR-0.01_IMS_PER_BATCH-4", resumed = "BASE_LR-0.01_IMS_PER_BATCH-2";
  const std::vector<std::string> cells = {good, resumed, "BASE_LR-1e30_IMS_PER_BATCH-4",
                                          "BASE_LR-1e30_IMS_PER_BATCH-2"};

  // A cell killed halfway: trained to its checkpoint at 4 of 8 iterations, no final weights.
  const auto partial = run_shell(cli() + " train --config " + quote(recipe) + " --output " +
                                 quote(out + "/" + resumed) +
                                 " SOLVER.BASE_LR=0.01 SOLVER.IMS_PER_BATCH=2 SOLVER.MAX_ITER=2");
  ASSERT_EQ(partial.code, 0) << partial.output;
  ASSERT_TRUE(exists(out + "/" + resumed + "/model_0000004.safetensors")) << partial.output;
  ASSERT_EQ(::unlink((out + "/" + resumed + "/model_final.safetensors").c_str()), 0);

  const auto dry = run_shell(sweep + " --dry-run");
  ASSERT_EQ(dry.code, 0) << dry.output;
  EXPECT_NE(dry.output.find("[2/4] " + resumed + ": resumes from iteration 4, MAX_ITER 8"),
            std::string::npos)
      << dry.output;
  EXPECT_NE(dry.output.find("[1/4] " + good + ": to run, MAX_ITER 4"), std::string::npos);
  EXPECT_NE(dry.output.find("train --config"), std::string::npos);
  EXPECT_FALSE(exists(out + "/" + good));

  const auto first = run_shell(sweep);
  ASSERT_EQ(first.code, 0) << first.output;
  const std::string& log = first.output;
  EXPECT_NE(log.find("[1/4] " + good + ": done in"), std::string::npos) << log;
  EXPECT_NE(log.find("[2/4] " + resumed + ": resuming from iteration 4"), std::string::npos) << log;
  EXPECT_NE(log.find("[2/4] " + resumed + ": done in"), std::string::npos) << log;
  EXPECT_NE(log.find("[3/4] " + cells[2] + ": diverged in"), std::string::npos) << log;
  EXPECT_NE(log.find("[4/4] " + cells[3] + ": diverged in"), std::string::npos) << log;
  EXPECT_NE(log.find("training diverged"), std::string::npos) << log;
  EXPECT_NE(log.find("ETA"), std::string::npos) << log;
  // The good cells are at different batches, so neither can have collapsed.
  EXPECT_NE(log.find("summary of 4 cell(s) (2 done, 2 diverged): "), std::string::npos) << log;
  EXPECT_NE(read_text(out + "/" + resumed + "/log.txt").find("resumed from"), std::string::npos);

  const auto summary = read_sweep(out);
  ASSERT_EQ(summary.size(), 4u);
  for (const auto& cell : summary) {
    const bool diverges = cell.name.find("1e30") != std::string::npos;
    EXPECT_EQ(cell.record.status, diverges ? Status::kDiverged : Status::kDone) << cell.name;
    EXPECT_EQ(cell.record.max_iter, cell.name.find("BATCH-2") != std::string::npos ? 8 : 4);
    if (!diverges) {
      EXPECT_EQ(cell.metrics.iterations, cell.record.max_iter) << cell.name;
      EXPECT_TRUE(cell.metrics.ap.has_value()) << cell.name;
    } else {
      EXPECT_NE(cell.record.reason.find("training diverged"), std::string::npos);
      EXPECT_LT(cell.metrics.iterations, cell.record.max_iter) << cell.name;
    }
    EXPECT_TRUE(exists(archive + "/" + cell.name + "/metrics.jsonl")) << cell.name;
    EXPECT_FALSE(exists(archive + "/" + cell.name + "/model_final.safetensors"));
  }
  EXPECT_NE(read_text(out + "/summary.csv").find(cells[2] + ",1e30,4,diverged,yes"),
            std::string::npos)
      << read_text(out + "/summary.csv");
  EXPECT_TRUE(exists(archive + "/summary.md"));

  // The same command again trains nothing.
  const auto log_size = read_text(out + "/" + good + "/log.txt").size();
  const auto again = run_shell(sweep);
  ASSERT_EQ(again.code, 0) << again.output;
  EXPECT_NE(again.output.find("[1/4] " + good + ": done earlier: skipped"), std::string::npos)
      << again.output;
  EXPECT_NE(again.output.find("[4/4] " + cells[3] + ": diverged earlier: skipped"),
            std::string::npos);
  EXPECT_EQ(read_text(out + "/" + good + "/log.txt").size(), log_size);

  // A finished cell missing from the archive (its archiving failed, or the sweep was killed
  // between record and archive) is archived by the next run, not skipped forever.
  std::filesystem::remove_all(archive + "/" + good);
  const auto rearchive = run_shell(sweep);
  ASSERT_EQ(rearchive.code, 0) << rearchive.output;
  EXPECT_TRUE(exists(archive + "/" + good + "/metrics.jsonl")) << rearchive.output;
  EXPECT_EQ(read_text(out + "/" + good + "/log.txt").size(), log_size);

  // On a new machine only the archive is there: every cell counts as done from it.
  const std::string fresh = tmp.path() + "/fresh";
  const auto from_archive = run_shell(cli() + " sweep --config " + quote(recipe) + " --output " +
                                      quote(fresh) + " --archive " + quote(archive) + grid);
  ASSERT_EQ(from_archive.code, 0) << from_archive.output;
  EXPECT_NE(from_archive.output.find(good + ": done earlier (archive): skipped"), std::string::npos)
      << from_archive.output;
  EXPECT_FALSE(exists(fresh + "/" + good));

  // Another grid in the same directory is refused before anything runs.
  const auto other = run_shell(cli() + " sweep --config " + quote(recipe) + " --output " +
                               quote(out) + grid + " SOLVER.WEIGHT_DECAY=0.5");
  EXPECT_NE(other.code, 0);
  EXPECT_NE(other.output.find("other overrides"), std::string::npos) << other.output;

  const auto table = run_shell(cli() + " sweep --summary " + quote(archive));
  ASSERT_EQ(table.code, 0) << table.output;
  EXPECT_NE(table.output.find("| " + cells[3] + " | 1e30 | 2 | diverged | yes |"),
            std::string::npos)
      << table.output;

#ifdef LARGEDET_WITH_CAIRO
  const auto figure1 = run_shell(cli() + " plot --ap-vs-batch " + quote(archive) +
                                 " --series SOLVER.BASE_LR -o " + quote(tmp.path() + "/ap.png"));
  EXPECT_EQ(figure1.code, 0) << figure1.output;
  EXPECT_NE(figure1.output.find("4 of 4 cells"), std::string::npos) << figure1.output;
  // Repeated, --ap-vs-batch pools the cells of several directories (here the run directories and
  // their archive: each cell twice).
  const auto pooled =
      run_shell(cli() + " plot --ap-vs-batch " + quote(archive) + " --ap-vs-batch " + quote(out) +
                " --series SOLVER.BASE_LR -o " + quote(tmp.path() + "/pooled.png"));
  EXPECT_EQ(pooled.code, 0) << pooled.output;
  EXPECT_NE(pooled.output.find("8 of 8 cells"), std::string::npos) << pooled.output;
  const auto figure3 =
      run_shell(cli() + " plot --loss-only " + quote(out + "/" + good) + " " +
                quote(out + "/" + resumed) + " -o " + quote(tmp.path() + "/loss.png"));
  EXPECT_EQ(figure3.code, 0) << figure3.output;
  EXPECT_TRUE(exists(tmp.path() + "/ap.png"));
  EXPECT_TRUE(exists(tmp.path() + "/loss.png"));
#endif
}

TEST(SweepCli, AFailedCellIsReportedAndTheSweepGoesOnAndFails) {
  if (!cli_built()) GTEST_SKIP() << "largedet CLI not built: " << LARGEDET_CLI;
  test::TempDir tmp;
  const std::string recipe = write_recipe(tmp.path());
  const std::string out = tmp.path() + "/sweep";
  // The first cell's training annotations do not exist; the second trains.
  const auto run = run_shell(
      cli() + " sweep --config " + quote(recipe) + " --output " + quote(out) +
      " DATASETS.TRAIN_ANNOTATIONS=" + quote(tmp.path() + "/nowhere.json") + "," +
      quote(tmp.path() + "/data/annotations/instances_train.json") + " TEST.EVAL_PERIOD=0");
  EXPECT_EQ(run.code, 1) << run.output;
  EXPECT_NE(run.output.find("[1/2] TRAIN_ANNOTATIONS-tmp"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find(": failed in"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("train exited with code 1"), std::string::npos) << run.output;
  // The tail of the cell's log, with train's error, and the command that started it.
  EXPECT_NE(run.output.find("error: DATASETS.TRAIN_ANNOTATIONS"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("==== largedet sweep, attempt 1: "), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("[2/2]"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find(": done in"), std::string::npos) << run.output;
  const auto cells = read_sweep(out);
  ASSERT_EQ(cells.size(), 2u);
  int failed = 0;
  for (const auto& cell : cells) failed += cell.record.status == Status::kFailed;
  EXPECT_EQ(failed, 1);
}

TEST(SweepCli, BadAxesAndHugeGridsAreRefusedBeforeAnyCell) {
  if (!cli_built()) GTEST_SKIP() << "largedet CLI not built: " << LARGEDET_CLI;
  test::TempDir tmp;
  const std::string recipe = write_recipe(tmp.path());
  const std::string out = tmp.path() + "/sweep";
  std::string values;
  for (int v = 1; v <= 200; ++v) values += (v > 1 ? "," : "") + std::to_string(v);
  const std::string sweep = cli() + " sweep --config " + quote(recipe) + " --output " + quote(out);
  // The typo is on the second value of an axis of a 200 x 200 grid.
  auto typo = run_shell(sweep + " SEED=" + values + " SOLVER.BASE_LR=0.01,0.02 SOLVER.MAX_ITR=1,2");
  EXPECT_NE(typo.code, 0);
  EXPECT_NE(typo.output.find("SOLVER.MAX_ITR"), std::string::npos) << typo.output;
  auto huge = run_shell(sweep + " SEED=" + values + " SOLVER.MAX_ITER=" + values);
  EXPECT_NE(huge.code, 0);
  EXPECT_NE(huge.output.find("the grid has 40000 cells (200 x 200), more than --max-cells 10000"),
            std::string::npos)
      << huge.output;
  EXPECT_FALSE(exists(out + "/SEED-1_MAX_ITER-1")) << "a refused grid started a cell";
}

TEST(SweepCli, ASecondSweepIntoTheSameOutputIsRefused) {
  if (!cli_built()) GTEST_SKIP() << "largedet CLI not built: " << LARGEDET_CLI;
  test::TempDir tmp;
  const std::string recipe = write_recipe(tmp.path());
  const std::string out = tmp.path() + "/sweep";
  ::mkdir(out.c_str(), 0755);
  RunLock running(out, "sweep");
  const auto run = run_shell(cli() + " sweep --config " + quote(recipe) + " --output " +
                             quote(out) + " SOLVER.BASE_LR=0.01,0.02");
  EXPECT_NE(run.code, 0) << run.output;
  EXPECT_NE(run.output.find("another run is using this directory: sweep, PID"), std::string::npos)
      << run.output;
  EXPECT_FALSE(exists(out + "/BASE_LR-0.01")) << "a refused sweep started a cell";
  // --dry-run only reads: it runs beside the sweep that holds the directory.
  const auto dry = run_shell(cli() + " sweep --config " + quote(recipe) + " --output " +
                             quote(out) + " SOLVER.BASE_LR=0.01,0.02 --dry-run");
  EXPECT_EQ(dry.code, 0) << dry.output;
}

}  // namespace
}  // namespace largedet::tools::sweep
