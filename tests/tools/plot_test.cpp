#include "visualize/plot.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdio>
#include <fstream>

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
  // A missing run directory fails with a message, not a crash.
  EXPECT_NE(
      std::system((std::string("'") + LARGEDET_CLI + "' plot /nonexistent 2>/dev/null").c_str()),
      0);
}

#endif  // LARGEDET_WITH_CAIRO

}  // namespace
}  // namespace largedet::tools
