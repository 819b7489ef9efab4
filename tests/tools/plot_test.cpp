#include "visualize/plot.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <iterator>

#include "engine/temp_dir.h"
#include "largedet/core/error.h"
#include "visualize/axis.h"

#ifdef LARGEDET_WITH_CAIRO
#include "tools/png_pixels.h"
#endif

namespace largedet::tools {
namespace {

std::string write_run(const std::string& root, const std::string& name,
                      const std::vector<std::string>& lines) {
  const std::string dir = root + "/" + name;
  ::mkdir(dir.c_str(), 0755);
  std::ofstream out(dir + "/metrics.jsonl");
  for (const auto& line : lines) out << line << "\n";
  return dir;
}

TEST(PlotTest, ReadRunKeepsLatestValueOfRepeatedIteration) {
  test::TempDir tmp;
  // Iteration 40 again after a resume, an evaluation line, a NaN written as null, a blank line.
  const auto dir = write_run(tmp.path(), "lamb",
                             {
                                 R"({"iteration":20,"total_loss":3.0,"lr":0.1})",
                                 R"({"iteration":40,"total_loss":2.0,"lr":0.2})",
                                 R"({"iteration":40,"bbox/AP":12.5})",
                                 "",
                                 R"({"iteration":40,"total_loss":1.5,"lr":null})",
                             });
  const RunCurves run = read_run(dir + "/");
  EXPECT_EQ(run.name, "lamb");
  using Points = std::vector<std::pair<double, double>>;
  EXPECT_EQ(run.series.at("total_loss"), (Points{{20, 3.0}, {40, 1.5}}));
  EXPECT_EQ(run.series.at("lr"), (Points{{20, 0.1}, {40, 0.2}}));
  EXPECT_EQ(run.series.at("bbox/AP"), (Points{{40, 12.5}}));
}

TEST(PlotTest, MalformedLineErrorNamesFileAndLine) {
  test::TempDir tmp;
  const auto dir =
      write_run(tmp.path(), "broken",
                {R"({"iteration":20,"total_loss":3.0})", R"({"iteration":40,"total_loss":)"});
  try {
    read_run(dir);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.where(), dir + "/metrics.jsonl:2") << e.what();
  }
  const auto no_iteration = write_run(tmp.path(), "no_iteration", {R"({"total_loss":3.0})"});
  EXPECT_THROW(read_run(no_iteration), Error);
}

TEST(PlotTest, MissingMetricsErrorNamesDirectory) {
  test::TempDir tmp;
  try {
    read_run(tmp.path());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.where(), tmp.path());
    EXPECT_NE(std::string(e.what()).find("metrics.jsonl"), std::string::npos) << e.what();
  }
}

TEST(PlotTest, Log2ScaleTicksArePowersOfTwo) {
  const Scale scale = log2_scale(16 / 1.5, 1024 * 1.5);
  EXPECT_EQ(scale.ticks, (std::vector<double>{16, 32, 64, 128, 256, 512, 1024}));
  EXPECT_EQ(scale.label(1024), "1024");
  EXPECT_NEAR(scale.fraction(16 / 1.5), 0, 1e-12);
  EXPECT_NEAR(scale.fraction(128), 0.5, 1e-12);  // the middle of 16/1.5 .. 1024*1.5 in log
  // Too many powers: every other one.
  EXPECT_EQ(log2_scale(1, 4096).ticks, (std::vector<double>{1, 4, 16, 64, 256, 1024, 4096}));
}

TEST(PlotTest, GlobMatchStarMatchesAnyRun) {
  EXPECT_TRUE(glob_match("total_loss", "total_loss"));  // exact
  EXPECT_FALSE(glob_match("total_loss", "total_loss2"));
  EXPECT_FALSE(glob_match("total_loss", "total_los"));
  EXPECT_TRUE(glob_match("loss_*", "loss_cls"));  // prefix*
  EXPECT_TRUE(glob_match("loss_*", "loss_"));     // '*' matches nothing too
  EXPECT_FALSE(glob_match("loss_*", "total_loss"));
  EXPECT_TRUE(glob_match("*/AP", "bbox/AP"));  // *suffix
  EXPECT_FALSE(glob_match("*/AP", "bbox/AP50"));
  EXPECT_TRUE(glob_match("agvm/*/factor", "agvm/box_head/factor"));  // a*b*c
  EXPECT_TRUE(glob_match("a*b*c", "aXXbYYc"));
  EXPECT_TRUE(glob_match("a*b*c", "abbc"));  // backtracking: the first 'b' is not the one
  EXPECT_TRUE(glob_match("a*bc", "abXbc"));  // nor here
  EXPECT_FALSE(glob_match("a*b*c", "aXXcYYb"));
  EXPECT_TRUE(glob_match("agvm/*", "agvm/fpn/variance"));  // '*' crosses '/'
  EXPECT_TRUE(glob_match("*", "lr"));
  EXPECT_TRUE(glob_match("**", ""));
  EXPECT_FALSE(glob_match("agvm/*/factor", "agvm/fpn/variance"));  // no match
  EXPECT_FALSE(glob_match("", "lr"));
}

// AGVM's per-part traces every 20 iterations as separate lines beside the loss lines, as the
// trainer logs them; `parts` of backbone, fpn, rpn, box_head, each at its own level (variances
// raised by `shift`).
std::vector<std::string> agvm_lines(size_t parts, double shift = 0) {
  const char* names[] = {"backbone", "fpn", "rpn", "box_head"};
  std::vector<std::string> lines;
  for (int i = 0; i < 10; ++i) {
    const std::string iteration = std::to_string(i * 20);
    lines.push_back("{\"iteration\":" + iteration + ",\"total_loss\":" +
                    std::to_string(3.0 - 0.1 * i) + ",\"loss_cls\":0.3,\"lr\":0.01}");
    std::string agvm = "{\"iteration\":" + iteration;
    for (size_t p = 0; p < parts; ++p) {
      agvm += ",\"agvm/" + std::string(names[p]) +
              "/variance\":" + std::to_string(0.1 * (p + 1) + 0.01 * i + shift);
      agvm += ",\"agvm/" + std::string(names[p]) +
              "/factor\":" + std::to_string(1.0 + 0.5 * p + 0.02 * i);
    }
    lines.push_back(agvm + "}");
  }
  return lines;
}

TEST(PlotTest, ReadRunMergesAgvmLinesByKey) {
  test::TempDir tmp;
  auto lines = agvm_lines(2);
  lines.push_back(R"({"iteration":180,"agvm/fpn/grad_norm":null})");  // NaN/Inf: skipped
  const RunCurves run = read_run(write_run(tmp.path(), "agvm", lines));
  ASSERT_EQ(run.series.count("agvm/fpn/factor"), 1u);
  EXPECT_EQ(run.series.at("agvm/fpn/factor").size(), 10u);
  EXPECT_EQ(run.series.at("agvm/backbone/variance").front(), (std::pair<double, double>{0, 0.1}));
  EXPECT_EQ(run.series.at("total_loss").size(), 10u);
  EXPECT_EQ(run.series.count("agvm/fpn/grad_norm"), 0u);
}

TEST(PlotTest, MatchScalarsListsKeysOfAnyRunAndNamesAMissingPattern) {
  test::TempDir tmp;
  const auto a = read_run(write_run(tmp.path(), "a", agvm_lines(4)));
  const auto b = read_run(write_run(tmp.path(), "b", agvm_lines(1)));
  const auto panels = match_scalars({b, a}, {"agvm/*/factor", "loss_*"});
  ASSERT_EQ(panels.size(), 2u);
  EXPECT_EQ(panels[0].pattern, "agvm/*/factor");
  EXPECT_EQ(panels[0].keys,
            (std::vector<std::string>{"agvm/backbone/factor", "agvm/box_head/factor",
                                      "agvm/fpn/factor", "agvm/rpn/factor"}));
  EXPECT_EQ(panels[1].keys, (std::vector<std::string>{"loss_cls"}));
  try {
    match_scalars({a, b}, {"loss_*", "agvm/*/factr"});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("agvm/*/factr"), std::string::npos) << what;
    EXPECT_NE(what.find("agvm/fpn/factor"), std::string::npos) << what;
    EXPECT_NE(what.find("total_loss"), std::string::npos) << what;
    EXPECT_EQ(what.find("iteration"), std::string::npos) << what;  // not a metric
  }
}

#ifdef LARGEDET_WITH_CAIRO

// A training run of 20 log periods whose loss falls from `start` to about a third of it, with
// an evaluation at the end when `ap` >= 0.
std::string write_training_run(const std::string& root, const std::string& name, double start,
                               double ap) {
  std::vector<std::string> lines;
  for (int i = 0; i < 20; ++i) {
    const double loss = start * (1 - i / 30.0);
    lines.push_back("{\"iteration\":" + std::to_string(i * 20 + 19) +
                    ",\"lr\":0.01,\"total_loss\":" + std::to_string(loss) +
                    ",\"loss_cls\":0.3,\"time\":0.5}");
  }
  if (ap >= 0) lines.push_back("{\"iteration\":399,\"bbox/AP\":" + std::to_string(ap) + "}");
  return write_run(root, name, lines);
}

// Whether some pixel in columns [x0, x1) above the legend has `color`.
bool has_color(const test::Png& png, int x0, int x1, const std::array<uint8_t, 3>& color) {
  for (int y = 0; y < png.height - 60; ++y)
    for (int x = x0; x < x1; ++x)
      if (test::near(png.at(x, y), color, 6)) return true;
  return false;
}

TEST(PlotTest, CurvesPngShowsEachRunInItsPanels) {
  test::TempDir tmp;
  const auto evaluated = write_training_run(tmp.path(), "lamb", 3.0, 21.5);
  const auto training = write_training_run(tmp.path(), "pmd_lamb", 2.0, -1);
  const std::string png_path = tmp.path() + "/curves.png";
  write_curves_png(png_path, {read_run(evaluated), read_run(training)});

  const test::Png png(png_path);
  ASSERT_EQ(png.width, 1500);
  ASSERT_EQ(png.height, 450);
  EXPECT_TRUE(test::near(png.at(2, 2), {255, 255, 255}, 0)) << "white background";
  // Loss panel (left third): both runs. AP panel (right third): only the evaluated run.
  EXPECT_TRUE(has_color(png, 0, 500, run_color(0)));
  EXPECT_TRUE(has_color(png, 0, 500, run_color(1)));
  EXPECT_TRUE(has_color(png, 1000, 1500, run_color(0)));
  EXPECT_FALSE(has_color(png, 1000, 1500, run_color(1)));
}

TEST(PlotTest, LossOnlyDrawsOneWidePanel) {
  test::TempDir tmp;
  const auto lamb = write_training_run(tmp.path(), "lamb", 3.0, 21.5);
  const auto pmd = write_training_run(tmp.path(), "pmd_lamb", 2.0, 30);
  const std::string png_path = tmp.path() + "/loss.png";
  CurvesOptions options;
  options.loss_only = true;
  write_curves_png(png_path, {read_run(lamb), read_run(pmd)}, options);
  const test::Png png(png_path);
  ASSERT_EQ(png.width, 1500);
  // Both losses reach the right third, where the three-panel picture shows AP.
  EXPECT_TRUE(has_color(png, 1100, 1480, run_color(0)));
  EXPECT_TRUE(has_color(png, 1100, 1480, run_color(1)));
  EXPECT_TRUE(has_color(png, 0, 400, run_color(1)));
}

// Whether some pixel in the box [x0, x1) x [y0, y1) has `color`.
bool has_color_in(const test::Png& png, int x0, int x1, int y0, int y1,
                  const std::array<uint8_t, 3>& color) {
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x)
      if (test::near(png.at(x, y), color, 6)) return true;
  return false;
}

TEST(PlotTest, ApVsBatchDrawsEachSeriesAndCrossesForDivergedCells) {
  test::TempDir tmp;
  // lamb: two seeds at 1024; sgd diverges at 1024.
  const std::vector<BatchPoint> points = {
      {"lamb", 16, 0.30}, {"lamb", 256, 0.28}, {"lamb", 1024, 0.20},  {"lamb", 1024, 0.24},
      {"sgd", 16, 0.31},  {"sgd", 256, 0.22},  {"sgd", 1024, 0, true}};
  const std::string png_path = tmp.path() + "/ap.png";
  write_ap_vs_batch_png(png_path, points);
  const test::Png png(png_path);
  ASSERT_EQ(png.width, 1000);
  ASSERT_EQ(png.height, 600);
  // The plot spans x 66..980; batch 16 sits half a power of two from the left edge, 1024 from the
  // right; AP 0 is the bottom of the plot (y = height - legend - 46).
  EXPECT_TRUE(has_color_in(png, 70, 200, 0, 500, run_color(0)));
  EXPECT_TRUE(has_color_in(png, 70, 200, 0, 500, run_color(1)));
  EXPECT_TRUE(has_color_in(png, 880, 975, 0, 450, run_color(0)));
  // sgd at 1024 is only its cross at AP 0, near the bottom axis.
  EXPECT_FALSE(has_color_in(png, 900, 975, 0, 420, run_color(1)));
  EXPECT_TRUE(has_color_in(png, 900, 975, 420, 560, run_color(1)));
  EXPECT_THROW(write_ap_vs_batch_png(png_path, {}), Error);
  EXPECT_THROW(write_ap_vs_batch_png(png_path, {{"lamb", 0, 0.3}}), Error);
}

// Whether the plot area of the index-th --scalars panel (stacked from `top`) shows `color`: its
// inside only, without titles, tick labels and legend.
bool panel_has_color(const test::Png& png, int top, const std::array<uint8_t, 3>& color) {
  return has_color_in(png, 70, 1475, top + 40, top + 36 + 258 - 3, color);
}

TEST(PlotTest, ScalarsPngStacksOnePanelPerPattern) {
  test::TempDir tmp;
  const auto run = read_run(write_run(tmp.path(), "agvm", agvm_lines(4)));
  const std::string one_path = tmp.path() + "/one.png", two_path = tmp.path() + "/two.png";
  write_scalars_png(one_path, {run}, {"agvm/*/factor"});
  write_scalars_png(two_path, {run}, {"agvm/*/factor", "agvm/*/variance"});
  const test::Png one(one_path), two(two_path);
  ASSERT_EQ(one.width, 1500);
  ASSERT_EQ(two.width, 1500);
  // One legend row per panel: 340 + 32 px each.
  EXPECT_EQ(one.height, 372);
  EXPECT_EQ(two.height, 2 * 372);
  EXPECT_TRUE(test::near(two.at(2, 2), {255, 255, 255}, 0)) << "white background";
  // Four parts, four lines, in both panels; no fifth colour.
  for (const int top : {0, 372}) {
    for (size_t i = 0; i < 4; ++i)
      EXPECT_TRUE(panel_has_color(two, top, run_color(i))) << "panel at " << top << ", line " << i;
    EXPECT_FALSE(panel_has_color(two, top, run_color(4))) << "panel at " << top;
  }
  // A pattern matching nothing fails before a file is written.
  const std::string bad_path = tmp.path() + "/bad.png";
  EXPECT_THROW(write_scalars_png(bad_path, {run}, {"agvm/*/factor", "agvm/*/factr"}), Error);
  struct stat st;
  EXPECT_NE(::stat(bad_path.c_str(), &st), 0);
  EXPECT_THROW(write_scalars_png(bad_path, {run}, {}), Error);
  EXPECT_THROW(write_scalars_png(bad_path, {}, {"agvm/*/factor"}), Error);
}

TEST(PlotTest, ScalarsPngDrawsALinePerRunAndKeySkippingAbsentKeys) {
  test::TempDir tmp;
  const auto a = read_run(write_run(tmp.path(), "a", agvm_lines(4)));
  const auto b = read_run(write_run(tmp.path(), "b", agvm_lines(4, 0.05)));
  const auto plain = read_run(write_run(tmp.path(), "plain", agvm_lines(0)));  // no AGVM
  const std::string path = tmp.path() + "/runs.png";
  write_scalars_png(path, {a, b}, {"agvm/*/variance"});
  const test::Png png(path);
  for (size_t i = 0; i < 8; ++i) EXPECT_TRUE(panel_has_color(png, 0, run_color(i))) << i;
  EXPECT_FALSE(panel_has_color(png, 0, run_color(8)));
  // The run without the keys adds no line: the same four as one run alone.
  write_scalars_png(path, {plain, a}, {"agvm/*/variance"});
  const test::Png skipped(path);
  for (size_t i = 0; i < 4; ++i) EXPECT_TRUE(panel_has_color(skipped, 0, run_color(i))) << i;
  EXPECT_FALSE(panel_has_color(skipped, 0, run_color(4)));
}

TEST(PlotTest, CliPlotWritesPng) {
  struct stat st;
  if (::stat(LARGEDET_CLI, &st) != 0) GTEST_SKIP() << "largedet CLI not built: " << LARGEDET_CLI;
  test::TempDir tmp;
  const auto a = write_training_run(tmp.path(), "a", 3.0, 20);
  const auto b = write_training_run(tmp.path(), "b", 2.0, 25);
  const std::string output = tmp.path() + "/out.png";
  const std::string command =
      std::string("'") + LARGEDET_CLI + "' plot '" + a + "' '" + b + "' --output '" + output + "'";
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  EXPECT_EQ(test::Png(output).width, 1500);
  // --scalars, repeated, before the run directory; a typo names itself and the keys that exist.
  const auto agvm = write_run(tmp.path(), "agvm", agvm_lines(4));
  const std::string scalars_png = tmp.path() + "/agvm.png";
  const std::string cli = std::string("'") + LARGEDET_CLI + "' plot ";
  const std::string scalars = cli + "--scalars 'agvm/*/factor' --scalars 'agvm/*/variance' '" +
                              agvm + "' -o '" + scalars_png + "'";
  ASSERT_EQ(std::system(scalars.c_str()), 0) << scalars;
  EXPECT_EQ(test::Png(scalars_png).height, 2 * 372);
  const std::string log = tmp.path() + "/stderr.txt";
  const std::string typo =
      cli + "--scalars 'agvm/*/factr' '" + agvm + "' -o '" + scalars_png + "' 2>'" + log + "'";
  EXPECT_NE(std::system(typo.c_str()), 0);
  std::ifstream in(log);
  const std::string message((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(message.find("agvm/*/factr"), std::string::npos) << message;
  EXPECT_NE(message.find("agvm/fpn/factor"), std::string::npos) << message;
  // --scalars excludes --loss-only and --ap-vs-batch.
  EXPECT_NE(std::system((cli + "--scalars 'loss_*' --loss-only '" + agvm + "' -o '" + scalars_png +
                         "' 2>/dev/null")
                            .c_str()),
            0);
  EXPECT_NE(std::system((cli + "--scalars 'loss_*' --ap-vs-batch '" + tmp.path() + "' -o '" +
                         scalars_png + "' 2>/dev/null")
                            .c_str()),
            0);
  // A missing run directory fails with a message, not a crash.
  EXPECT_NE(
      std::system((std::string("'") + LARGEDET_CLI + "' plot /nonexistent 2>/dev/null").c_str()),
      0);
}

#endif  // LARGEDET_WITH_CAIRO

}  // namespace
}  // namespace largedet::tools
