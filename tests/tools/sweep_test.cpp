// The sweep's pieces without training: grid expansion and cell names, records, what a cell's
// metrics.jsonl says (divergence included) and the summary tables.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "engine/temp_dir.h"
#include "largedet/core/error.h"
#include "sweep/grid.h"
#include "sweep/record.h"
#include "sweep/runner.h"
#include "sweep/summary.h"

namespace largedet::tools::sweep {
namespace {

using Strings = std::vector<std::string>;

// The running cell's line on a terminal: the last training log line's iteration and ETA.
TEST(SweepProgress, TheLastLogLineGivesIterationAndEta) {
  const std::string output =
      "[07:42:20.001 INFO] iter 100/12600  total_loss 1.2  lr 0.01  0.05 s/it  eta 10:25\n"
      "[07:42:24.114 INFO] iter 163/12600  total_loss 0.93  lr 0.01  0.05 s/it  eta 10:22\n";
  EXPECT_EQ(cell_progress(output), "iter 163/12600, eta 10:22");
  EXPECT_EQ(cell_progress("[07:42:24.114 INFO] iter 5/9  total_loss"), "iter 5/9");  // cut off
  EXPECT_EQ(cell_progress("[07:42:24.114 INFO] evaluating\n"), "");
  EXPECT_EQ(cell_progress(""), "");
}

TEST(SweepGrid, SplitsValuesOutsideBracketsAndQuotes) {
  EXPECT_EQ(split_values("sgd, lamb,pmd_lamb"), (Strings{"sgd", "lamb", "pmd_lamb"}));
  EXPECT_EQ(split_values("[100,200],[300, 400]"), (Strings{"[100,200]", "[300, 400]"}));
  EXPECT_EQ(split_values("'a,b',\"c,d\",{X: 1, Y: 2}"),
            (Strings{"'a,b'", "\"c,d\"", "{X: 1, Y: 2}"}));
  EXPECT_EQ(split_values("0.1"), (Strings{"0.1"}));
}

TEST(SweepGrid, OneValueIsFixedSeveralAreAnAxis) {
  const Grid grid = parse_grid(
      {"SOLVER.OPTIMIZER=lamb,pmd_lamb", "SOLVER.MAX_ITER=200", "SOLVER.STEPS=[100,150]"});
  ASSERT_EQ(grid.axes.size(), 1u);
  EXPECT_EQ(grid.axes[0].key, "SOLVER.OPTIMIZER");
  EXPECT_EQ(grid.axes[0].values, (Strings{"lamb", "pmd_lamb"}));
  EXPECT_EQ(grid.fixed, (Strings{"SOLVER.MAX_ITER=200", "SOLVER.STEPS=[100,150]"}));
}

TEST(SweepGrid, RefusesMalformedArguments) {
  for (const Strings& bad : std::vector<Strings>{{"SOLVER.OPTIMIZER"},
                                                 {"=1,2"},
                                                 {"SOLVER.BASE_LR=0.1,,0.2"},
                                                 {"SOLVER.BASE_LR=0.1", "SOLVER.BASE_LR=0.2,0.3"}})
    EXPECT_THROW(parse_grid(bad), Error) << bad.back();
  try {
    parse_grid({"SOLVER.BASE_LR=0.1", "SOLVER.BASE_LR=0.2"});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.where(), "SOLVER.BASE_LR");
  }
}

TEST(SweepGrid, ExpandsTheProductFirstAxisSlowest) {
  const auto cells = expand(
      parse_grid({"SOLVER.OPTIMIZER=lamb,pmd_lamb", "SOLVER.IMS_PER_BATCH=16,256,1024", "SEED=3"}));
  ASSERT_EQ(cells.size(), 6u);
  const Strings names = {
      "OPTIMIZER-lamb_IMS_PER_BATCH-16",      "OPTIMIZER-lamb_IMS_PER_BATCH-256",
      "OPTIMIZER-lamb_IMS_PER_BATCH-1024",    "OPTIMIZER-pmd_lamb_IMS_PER_BATCH-16",
      "OPTIMIZER-pmd_lamb_IMS_PER_BATCH-256", "OPTIMIZER-pmd_lamb_IMS_PER_BATCH-1024"};
  for (size_t i = 0; i < cells.size(); ++i) EXPECT_EQ(cells[i].name, names[i]);
  EXPECT_EQ(cells[4].overrides, (Strings{"SOLVER.OPTIMIZER=pmd_lamb", "SOLVER.IMS_PER_BATCH=256"}));
  EXPECT_EQ(cells[4].fixed, (Strings{"SEED=3"}));
  EXPECT_EQ(cells[4].all_overrides(),
            (Strings{"SOLVER.OPTIMIZER=pmd_lamb", "SOLVER.IMS_PER_BATCH=256", "SEED=3"}));

  const auto single = expand(parse_grid({"SOLVER.MAX_ITER=10"}));
  ASSERT_EQ(single.size(), 1u);
  EXPECT_EQ(single[0].name, "base");
  EXPECT_TRUE(single[0].overrides.empty());
}

TEST(SweepGrid, NamesAreShortUniqueAndFilesystemSafe) {
  // Keys sharing their last part keep as many parts as make them unique.
  EXPECT_EQ(cell_name({"MODEL.RPN.NMS_THRESH", "MODEL.RETINANET.NMS_THRESH"},
                      {"MODEL.RPN.NMS_THRESH=0.7", "MODEL.RETINANET.NMS_THRESH=0.5"}),
            "RPN.NMS_THRESH-0.7_RETINANET.NMS_THRESH-0.5");
  EXPECT_EQ(cell_name({"A.B.C", "D.B.C"}, {"A.B.C=1", "D.B.C=2"}), "A.B.C-1_D.B.C-2");
  EXPECT_EQ(cell_name({"SOLVER.STEPS"}, {"SOLVER.STEPS=[100, 200]"}), "STEPS-100~200");
  EXPECT_EQ(cell_name({"OUTPUT_DIR"}, {"OUTPUT_DIR=/tmp/a b/"}), "OUTPUT_DIR-tmp~a~b");
  EXPECT_EQ(cell_name({"SOLVER.BASE_LR"}, {"SOLVER.BASE_LR=-1e-3"}), "BASE_LR--1e-3");
  EXPECT_EQ(cell_name({"SOLVER.STEPS"}, {"SOLVER.STEPS=[]"}), "STEPS-~");
  // Values that differ only in replaced characters would share a directory.
  EXPECT_THROW(expand(parse_grid({"SOLVER.STEPS=[1, 2],[1,2]"})), Error);
}

TEST(SweepGrid, APrefixLetsGridsShareADirectory) {
  const auto cells = expand(parse_grid({"SEED=1,2", "SOLVER.BASE_LR=0.1"}, "64x-sgd"));
  ASSERT_EQ(cells.size(), 2u);
  EXPECT_EQ(cells[0].name, "64x-sgd_SEED-1");
  EXPECT_EQ(cells[1].name, "64x-sgd_SEED-2");
  EXPECT_EQ(expand(parse_grid({"SEED=1"}, "ref"))[0].name, "ref");  // no axes: the prefix alone
  EXPECT_EQ(expand(parse_grid({"SEED=1"}))[0].name, "base");
  EXPECT_THROW(parse_grid({"SEED=1,2"}, "a/b"), Error);
  EXPECT_THROW(parse_grid({"SEED=1,2"}, ".."), Error);
}

// A grid too large to run is refused before a single cell is built, whatever its size: 30^3
// cells, and 2^40 (whose cells would not fit in memory) or 1000^10 (which overflows a count).
TEST(SweepGrid, AGridOfMoreThanMaxCellsIsRefusedBeforeExpansion) {
  std::string thirty;
  for (int v = 0; v < 30; ++v) thirty += (v ? "," : "") + std::to_string(v);
  const Grid grid = parse_grid({"A.X=" + thirty, "A.Y=" + thirty, "A.Z=" + thirty});
  EXPECT_EQ(cell_count(grid), 27000);
  try {
    expand(grid);
    FAIL() << "27000 cells were expanded under the default cap";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("the grid has 27000 cells (30 x 30 x 30), more than "
                                         "--max-cells 10000"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(expand(grid, 27000).size(), 27000u);
  std::vector<std::string> forty, ten;
  for (int k = 0; k < 40; ++k) forty.push_back("K.A" + std::to_string(k) + "=0,1");
  EXPECT_EQ(cell_count(parse_grid(forty)), int64_t{1} << 40);
  EXPECT_THROW(expand(parse_grid(forty)), Error);
  std::string thousand;
  for (int v = 0; v < 1000; ++v) thousand += (v ? "," : "") + std::to_string(v);
  for (int k = 0; k < 10; ++k) ten.push_back("K.B" + std::to_string(k) + "=" + thousand);
  EXPECT_EQ(cell_count(parse_grid(ten)), std::numeric_limits<int64_t>::max());
  try {
    expand(parse_grid(ten), 1000000000);
    FAIL() << "1000^10 cells were expanded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("more than 9.2e18 cells"), std::string::npos) << e.what();
  }
}

TEST(SweepRecord, RoundTripsAndNamesABadFile) {
  test::TempDir tmp;
  EXPECT_FALSE(read_record(tmp.path()).has_value());
  CellRecord record;
  record.cell = "BASE_LR-0.1";
  record.overrides = {"SOLVER.BASE_LR=0.1"};
  record.fixed = {"SEED=1"};
  record.base = "configs/x.yaml";
  record.max_iter = 200;
  record.status = Status::kDiverged;
  record.reason = "training diverged";
  record.wall_seconds = 12.5;
  record.attempts = 2;
  write_record(tmp.path(), record);
  const auto back = read_record(tmp.path());
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->cell, record.cell);
  EXPECT_EQ(back->overrides, record.overrides);
  EXPECT_EQ(back->fixed, record.fixed);
  EXPECT_EQ(back->max_iter, 200);
  EXPECT_EQ(back->status, Status::kDiverged);
  EXPECT_EQ(back->reason, record.reason);
  EXPECT_EQ(back->wall_seconds, 12.5);
  EXPECT_EQ(back->attempts, 2);
  EXPECT_TRUE(is_final(Status::kDone));
  EXPECT_TRUE(is_final(Status::kDiverged));
  EXPECT_FALSE(is_final(Status::kFailed));
  EXPECT_FALSE(is_final(Status::kStopped));

  std::ofstream(record_path(tmp.path())) << R"({"cell": "x", "status": "done"})";
  try {
    read_record(tmp.path());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.where(), record_path(tmp.path()));
  }
}

// A cell directory as the sweep leaves it: sweep.json, metrics.jsonl, config.yaml.
std::string write_cell(const std::string& root, const CellRecord& record, const Strings& metrics,
                       const std::string& config_yaml = "") {
  const std::string dir = root + "/" + record.cell;
  ::mkdir(dir.c_str(), 0755);
  write_record(dir, record);
  std::ofstream out(dir + "/metrics.jsonl");
  for (const auto& line : metrics) out << line << "\n";
  if (!config_yaml.empty()) std::ofstream(dir + "/config.yaml") << config_yaml;
  return dir;
}

CellRecord record_of(const std::string& cell, const Strings& overrides, Status status) {
  CellRecord record;
  record.cell = cell;
  record.overrides = overrides;
  record.fixed = {"SOLVER.MAX_BAD_STEPS=3"};
  record.base = "tiny.yaml";
  record.max_iter = 40;
  record.status = status;
  record.wall_seconds = 61;
  record.attempts = 1;
  return record;
}

TEST(SweepMetrics, FinalAndBestApAndLossesFromAResumedRun) {
  test::TempDir tmp;
  // Iteration 20 logged again after a resume; evaluations at 20 and 40, the best one first.
  const auto dir = write_cell(
      tmp.path(), record_of("a", {}, Status::kDone),
      {R"({"iteration":10,"total_loss":3.0,"lr":0.1})", R"({"iteration":20,"total_loss":2.9})",
       R"({"iteration":20,"bbox/AP":0.30,"bbox/AP50":0.5,"bbox/AP75":0.2})",
       R"({"iteration":20,"total_loss":2.5})", R"({"iteration":40,"total_loss":1.5})",
       R"({"iteration":40,"bbox/AP":0.25,"bbox/AP50":0.45,"bbox/AP75":0.1})"});
  const CellMetrics m = cell_metrics(read_run(dir));
  EXPECT_EQ(m.iterations, 40);
  EXPECT_EQ(m.first_loss, 3.0);
  EXPECT_EQ(m.final_loss, 1.5);
  EXPECT_EQ(m.ap, 0.25);
  EXPECT_EQ(m.ap50, 0.45);
  EXPECT_EQ(m.ap75, 0.1);
  EXPECT_EQ(m.best_ap, 0.30);
  EXPECT_FALSE(loss_divergence(m).has_value());
}

TEST(SweepMetrics, LossAboveItsStartIsDivergence) {
  CellMetrics m;
  m.first_loss = 2.0;
  m.final_loss = 2.5;
  const auto reason = loss_divergence(m);
  ASSERT_TRUE(reason.has_value());
  EXPECT_EQ(*reason, "total_loss rose from 2 to 2.5");
  m.final_loss = 2.0;  // level is not divergence
  EXPECT_FALSE(loss_divergence(m).has_value());
  m.final_loss.reset();  // nothing logged (the NaN guard tripped first): the record says it
  EXPECT_FALSE(loss_divergence(m).has_value());
}

TEST(SweepSummary, TablesHaveEveryOverrideAndMarkDivergedCells) {
  test::TempDir tmp;
  const std::string config = "SOLVER:\n  IMS_PER_BATCH: 64\n  OPTIMIZER: lamb\n  STEPS: [1, 2]\n";
  write_cell(tmp.path(),
             record_of("OPTIMIZER-lamb_BASE_LR-0.1",
                       {"SOLVER.OPTIMIZER=lamb", "SOLVER.BASE_LR=0.1"}, Status::kDone),
             {R"({"iteration":20,"total_loss":3.0})", R"({"iteration":40,"total_loss":1.25})",
              R"({"iteration":40,"bbox/AP":0.125,"bbox/AP50":0.25,"bbox/AP75":0.0625})"},
             config);
  auto diverged = record_of("OPTIMIZER-sgd_BASE_LR-10",
                            {"SOLVER.OPTIMIZER=sgd", "SOLVER.BASE_LR=10"}, Status::kDiverged);
  diverged.reason = "iteration 3: training diverged: 3 steps in a row, with a comma";
  write_cell(tmp.path(), diverged, {R"({"iteration":2,"total_loss":4.0})"});
  ::mkdir((tmp.path() + "/not_a_cell").c_str(), 0755);

  const auto cells = read_sweep(tmp.path());
  ASSERT_EQ(cells.size(), 2u);  // name order; not_a_cell has no sweep.json
  EXPECT_EQ(cells[0].name, "OPTIMIZER-lamb_BASE_LR-0.1");
  EXPECT_EQ(cells[0].settings.at("SOLVER.IMS_PER_BATCH"), "64");
  EXPECT_EQ(cells[0].settings.at("SOLVER.STEPS"), "[1, 2]");
  EXPECT_EQ(cells[0].settings.at("SOLVER.BASE_LR"), "0.1");
  EXPECT_TRUE(cells[1].diverged());

  const auto tables = summary_tables(cells);
  const std::string header =
      "cell,SOLVER.OPTIMIZER,SOLVER.BASE_LR,SOLVER.MAX_BAD_STEPS,status,diverged,iterations,"
      "max_iter,final_loss,bbox/AP,bbox/AP50,bbox/AP75,best_bbox/AP,wall_s,reason\n";
  EXPECT_EQ(tables.csv,
            header +
                "OPTIMIZER-lamb_BASE_LR-0.1,lamb,0.1,3,done,no,40,40,1.25,0.1250,0.2500,0.0625,"
                "0.1250,61,\n"
                "OPTIMIZER-sgd_BASE_LR-10,sgd,10,3,diverged,yes,2,40,4,,,,,61,\"iteration 3: "
                "training diverged: 3 steps in a row, with a comma\"\n");
  EXPECT_NE(tables.markdown.find("| OPTIMIZER-sgd_BASE_LR-10 | sgd | 10 | 3 | diverged | yes | 2 "
                                 "| 40 | 4 | – | – | – | – | 61 |"),
            std::string::npos)
      << tables.markdown;
  EXPECT_NE(tables.markdown.find("|---|"), std::string::npos);

  write_summary(tmp.path());
  std::ifstream csv(tmp.path() + "/summary.csv");
  std::string first;
  std::getline(csv, first);
  EXPECT_EQ(first + "\n", header);
  EXPECT_TRUE(std::ifstream(tmp.path() + "/summary.md").good());

  // Batch from config.yaml, series from the override; the diverged cell has no config.yaml.
  EXPECT_THROW(batch_points(cells, {"SOLVER.OPTIMIZER"}), Error);
  const auto points = batch_points({cells[0]}, {"SOLVER.OPTIMIZER", "SOLVER.BASE_LR"});
  ASSERT_EQ(points.size(), 1u);
  EXPECT_EQ(points[0].series, "lamb 0.1");
  EXPECT_EQ(points[0].batch, 64);
  EXPECT_EQ(points[0].ap, 0.125);
  EXPECT_FALSE(points[0].diverged);
}

// --best SOLVER.BASE_LR: of a method's cells at one batch, those at the LR with the best mean AP
// (its grid's seed-1 cell and that LR's other seeds); a diverged cell counts 0; each batch and
// each method on its own.
TEST(SweepSummary, BestKeepsEachMethodsBestValueAtEachBatch) {
  const auto cell = [](const std::string& opt, int batch, const std::string& lr, double ap,
                       bool diverged = false) {
    CellSummary c;
    c.name = opt + "_" + std::to_string(batch) + "_" + lr + "_" + std::to_string(ap);
    c.settings = {{"SOLVER.OPTIMIZER", opt},
                  {"SOLVER.IMS_PER_BATCH", std::to_string(batch)},
                  {"SOLVER.BASE_LR", lr}};
    c.record.status = diverged ? Status::kDiverged : Status::kDone;
    if (!diverged) c.metrics.ap = ap;
    return c;
  };
  const std::vector<CellSummary> cells = {
      // At 64, LR 0.1's one cell (0.33) beats two of 0.2's three, but not their mean (0.35).
      cell("sgd", 64, "0.1", 0.33),       cell("sgd", 64, "0.2", 0.20),
      cell("sgd", 64, "0.2", 0.45),       cell("sgd", 64, "0.2", 0.40),
      cell("sgd", 256, "0.4", 0.9, true), cell("sgd", 256, "0.8", 0.05),
      cell("lamb", 64, "0.1", 0.50)};
  const auto all = batch_points(cells, {"SOLVER.OPTIMIZER"});
  EXPECT_EQ(all.size(), 7u);
  const auto best = batch_points(cells, {"SOLVER.OPTIMIZER"}, "SOLVER.BASE_LR");
  std::vector<std::tuple<std::string, double, double>> got;
  for (const auto& p : best) got.emplace_back(p.series, p.batch, p.ap);
  EXPECT_EQ(got, (std::vector<std::tuple<std::string, double, double>>{
                     {"sgd", 64, 0.20},
                     {"sgd", 64, 0.45},
                     {"sgd", 64, 0.40},   // mean 0.35 at 0.2
                     {"sgd", 256, 0.05},  // 0.4 diverged
                     {"lamb", 64, 0.50}}));
  EXPECT_THROW(batch_points(cells, {"SOLVER.OPTIMIZER"}, "SOLVER.MOMENTUM"), Error);
}

// A cell trained to its max_iter (40) at SOLVER.IMS_PER_BATCH `batch`, its loss falling from 3 to
// 1 (finite, not diverged), with a final bbox/AP of `ap` (none when negative). The batch is an
// override, or only in config.yaml with `batch_in_config`.
std::string write_batch_cell(const std::string& root, const std::string& name, int batch, double ap,
                             Status status = Status::kDone, bool batch_in_config = false) {
  const std::string batch_override = "SOLVER.IMS_PER_BATCH=" + std::to_string(batch);
  CellRecord record =
      record_of(name, batch_in_config ? Strings{"SEED=1"} : Strings{batch_override}, status);
  Strings metrics = {R"({"iteration":20,"total_loss":3.0})",
                     R"({"iteration":40,"total_loss":1.0})"};
  if (ap >= 0) metrics.push_back(R"({"iteration":40,"bbox/AP":)" + std::to_string(ap) + "}");
  return write_cell(root, record, metrics,
                    "SOLVER:\n  IMS_PER_BATCH: " + std::to_string(batch) + "\n  BASE_LR: 0.1\n");
}

// The summary's status of each cell, by name.
std::map<std::string, std::string> statuses(const std::vector<CellSummary>& cells) {
  std::map<std::string, std::string> out;
  for (const auto& cell : cells) out[cell.name] = cell.status();
  return out;
}

TEST(SweepCollapse, UnderATenthOfTheBestAtTheSameBatchIsCollapsed) {
  test::TempDir tmp;
  write_batch_cell(tmp.path(), "best", 64, 0.5);
  const auto low = write_batch_cell(tmp.path(), "low", 64, 0.045);  // 0.09 x the best
  write_batch_cell(tmp.path(), "near", 64, 0.055);                  // 0.11 x the best
  write_batch_cell(tmp.path(), "from_config", 64, 0.02, Status::kDone, /*batch_in_config=*/true);

  const auto cells = read_sweep(tmp.path());
  EXPECT_EQ(
      statuses(cells),
      (std::map<std::string, std::string>{
          {"best", "done"}, {"from_config", "collapsed"}, {"low", "collapsed"}, {"near", "done"}}));
  const CellSummary& collapsed = cells[2];
  ASSERT_EQ(collapsed.name, "low");
  EXPECT_TRUE(collapsed.collapsed());
  EXPECT_FALSE(collapsed.diverged());
  EXPECT_EQ(*collapsed.collapse,
            "final bbox/AP 0.0450 is under a tenth of 0.5000 (the best at SOLVER.IMS_PER_BATCH 64: "
            "best)");
  // The record keeps what the runner wrote: a collapsed cell is finished, never trained again.
  EXPECT_EQ(collapsed.record.status, Status::kDone);
  EXPECT_EQ(read_record(low)->status, Status::kDone);

  // summary.csv and summary.md: status collapsed, diverged no, the comparison as the reason.
  write_summary(tmp.path());
  std::ifstream csv_file(tmp.path() + "/summary.csv");
  const std::string csv((std::istreambuf_iterator<char>(csv_file)), {});
  EXPECT_NE(csv.find("\nlow,64,3,,collapsed,no,40,40,1,0.0450,,,0.0450,61,final bbox/AP 0.0450 "
                     "is under a tenth of 0.5000 (the best at SOLVER.IMS_PER_BATCH 64: best)\n"),
            std::string::npos)
      << csv;
  EXPECT_NE(csv.find("\nnear,64,3,,done,no,40,40,1,0.0550,,,0.0550,61,\n"), std::string::npos)
      << csv;
  std::ifstream md_file(tmp.path() + "/summary.md");
  const std::string md((std::istreambuf_iterator<char>(md_file)), {});
  EXPECT_NE(md.find("| low | 64 | 3 | – | collapsed | no |"), std::string::npos) << md;
}

TEST(SweepCollapse, CellsAreComparedWithTheBestAtTheirOwnBatch) {
  test::TempDir tmp;
  write_batch_cell(tmp.path(), "b64_best", 64, 0.5);
  // Under a tenth of batch 64's best, but not of the best at its own batch.
  write_batch_cell(tmp.path(), "b1024_best", 1024, 0.04);
  write_batch_cell(tmp.path(), "b1024_near", 1024, 0.03);
  write_batch_cell(tmp.path(), "b1024_low", 1024, 0.003);  // 0.075 x its batch's best
  EXPECT_EQ(statuses(read_sweep(tmp.path())),
            (std::map<std::string, std::string>{{"b1024_best", "done"},
                                                {"b1024_low", "collapsed"},
                                                {"b1024_near", "done"},
                                                {"b64_best", "done"}}));
}

TEST(SweepCollapse, DivergedAndUnevaluatedCellsKeepTheirStatus) {
  test::TempDir tmp;
  write_batch_cell(tmp.path(), "best", 64, 0.5);
  write_batch_cell(tmp.path(), "diverged", 64, 0.001, Status::kDiverged);
  write_batch_cell(tmp.path(), "no_eval", 64, -1);
  write_batch_cell(tmp.path(), "failed", 64, 0.001, Status::kFailed);
  auto cells = read_sweep(tmp.path());
  EXPECT_EQ(
      statuses(cells),
      (std::map<std::string, std::string>{
          {"best", "done"}, {"diverged", "diverged"}, {"failed", "failed"}, {"no_eval", "done"}}));
  for (const auto& cell : cells) EXPECT_FALSE(cell.collapsed()) << cell.name;
  // A done cell whose loss is not finite (metrics.jsonl cannot hold one, a record could say done
  // beside it) is not judged either.
  ASSERT_EQ(cells[2].name, "failed");
  cells[2].record.status = Status::kDone;
  cells[2].metrics.final_loss = std::numeric_limits<double>::infinity();
  mark_collapsed(cells);
  EXPECT_EQ(cells[2].status(), "done");
  cells[2].metrics.final_loss = 1.0;  // the same cell, finite: collapsed
  mark_collapsed(cells);
  EXPECT_EQ(cells[2].status(), "collapsed");
}

TEST(SweepCollapse, NothingCollapsesWhenTheBestApIsZero) {
  test::TempDir tmp;
  write_batch_cell(tmp.path(), "a", 64, 0.0);
  write_batch_cell(tmp.path(), "b", 64, 0.0);
  // Another batch's AP does not count.
  write_batch_cell(tmp.path(), "c", 256, 0.5);
  EXPECT_EQ(statuses(read_sweep(tmp.path())),
            (std::map<std::string, std::string>{{"a", "done"}, {"b", "done"}, {"c", "done"}}));
}

TEST(SweepSummary, DirectoryWithoutCellsIsAnError) {
  test::TempDir tmp;
  EXPECT_THROW(read_sweep(tmp.path()), Error);
  EXPECT_THROW(read_sweep(tmp.path() + "/missing"), Error);
}

}  // namespace
}  // namespace largedet::tools::sweep
