#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/shell.h"
#include "largedet/engine/event_writer.h"
#include "largedet/engine/metrics_writer.h"
#include "temp_dir.h"

namespace largedet::engine {
namespace {

// The command's output, or "FAILED: <output>" when it exits with an error.
std::string run(const std::string& command) {
  const auto result = test::run_shell(command);
  return result.code == 0 ? result.output : "FAILED: " + result.output;
}

TEST(EventWriter, Crc32cMatchesTheStandardCheckValue) {
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);
  EXPECT_EQ(crc32c("", 0), 0u);
}

TEST(EventWriter, EncodesScalarEventsAsProtobuf) {
  std::string event = encode_scalar_event("loss", 1.5f, 300, 2.0);
  // wall_time (field 1, fixed64), step (field 2, varint 300 = ac 02), summary (field 5).
  ASSERT_GE(event.size(), 13u);
  EXPECT_EQ(static_cast<unsigned char>(event[0]), 0x09);
  EXPECT_EQ(static_cast<unsigned char>(event[9]), 0x10);
  EXPECT_EQ(static_cast<unsigned char>(event[10]), 0xac);
  EXPECT_EQ(static_cast<unsigned char>(event[11]), 0x02);
  EXPECT_EQ(static_cast<unsigned char>(event[12]), 0x2a);
}

TEST(MetricsWriter, TensorBoardReadsTheEventFile) {
  if (run(std::string(LARGEDET_PYTHON) + " -c 'import tensorboard' 2>&1").rfind("FAILED", 0) == 0)
    GTEST_SKIP() << "tensorboard is not installed in the test venv";
  test::TempDir dir;
  {
    MetricsWriter writer(dir.path());
    writer.write(20, {{"lr", 0.01}, {"loss_cls", 0.75}});
    writer.write(40, {{"lr", 0.02}, {"loss_cls", 0.5}});
  }
  std::string out = run(std::string(LARGEDET_PYTHON) + " " + LARGEDET_SOURCE_DIR +
                        "/tests/engine/read_events.py " + dir.path() + " 2>&1");
  EXPECT_NE(out.find("loss_cls 20 0.75"), std::string::npos) << out;
  EXPECT_NE(out.find("loss_cls 40 0.5"), std::string::npos) << out;
  EXPECT_NE(out.find("lr 40 0.0199999"), std::string::npos) << out;  // float32 of 0.02
}

TEST(MetricsWriter, WritesOneJsonObjectPerLine) {
  test::TempDir dir;
  MetricsWriter writer(dir.path(), /*tensorboard=*/false);
  writer.write(1, {{"total_loss", 2.5}, {"bad", NAN}});
  writer.write(2, {{"total_loss", 2.0}});
  std::ifstream in(writer.jsonl_path());
  std::string first, second;
  std::getline(in, first);
  std::getline(in, second);
  auto a = nlohmann::json::parse(first), b = nlohmann::json::parse(second);
  EXPECT_EQ(a["iteration"], 1);
  EXPECT_EQ(a["total_loss"], 2.5);
  EXPECT_TRUE(a["bad"].is_null());
  EXPECT_EQ(b["iteration"], 2);
}

}  // namespace
}  // namespace largedet::engine

namespace largedet::engine {
namespace {

TEST(MetricsWriter, DropAfterRemovesTheLinesARestartRedoes) {
  test::TempDir dir;
  {
    MetricsWriter writer(dir.path(), /*tensorboard=*/false);
    for (int64_t it : {2, 4, 6}) writer.write(it, {{"total_loss", 1.0 / it}});
  }
  MetricsWriter::drop_after(dir.path(), 4);
  std::ifstream in(dir.path() + "/metrics.jsonl");
  std::vector<int64_t> iterations;
  std::string line;
  while (std::getline(in, line))
    iterations.push_back(nlohmann::json::parse(line)["iteration"].get<int64_t>());
  EXPECT_EQ(iterations, (std::vector<int64_t>{2, 4}));
  MetricsWriter::drop_after(dir.path() + "/missing", 0);  // no file: nothing to do
}

}  // namespace
}  // namespace largedet::engine
