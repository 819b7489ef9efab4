#include "visualize/plot.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdio>
#include <fstream>

#include "engine/temp_dir.h"
#include "largedet/core/error.h"

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
