#include "visualize/draw.h"

#include <gtest/gtest.h>

#include <cmath>

#include "engine/temp_dir.h"
#include "largedet/core/error.h"

#ifdef LARGEDET_WITH_CAIRO
#include "tools/png_pixels.h"
#endif

namespace largedet::tools {
namespace {

constexpr int kHeight = 100, kWidth = 120;

#ifdef LARGEDET_WITH_CAIRO

TEST(DrawTest, BoxOutlineHasLabelColourAndMaskIsTinted) {
  test::TempDir tmp;
  const std::vector<uint8_t> grey(kHeight * kWidth * 3, 128);
  DrawnDetection detection{20, 30, 80, 90, 0.93f, 3, "dog", {}};
  detection.mask.assign(kHeight * kWidth, 0);
  for (int y = 40; y < 80; ++y)
    for (int x = 30; x < 70; ++x) detection.mask[y * kWidth + x] = 1;
  const std::string path = tmp.path() + "/detections.png";
  write_detections_png(path, grey.data(), kHeight, kWidth, {detection});

  const test::Png png(path);
  ASSERT_EQ(png.width, kWidth);
  ASSERT_EQ(png.height, kHeight);
  const auto color = label_color(3);
  EXPECT_TRUE(test::near(png.at(20, 60), color, 2)) << "left edge of the box";
  EXPECT_TRUE(test::near(png.at(50, 89), color, 2)) << "bottom edge of the box";
  std::array<uint8_t, 3> tinted;
  for (int c = 0; c < 3; ++c) tinted[c] = uint8_t(std::lround(128 * 0.55 + color[c] * 0.45));
  EXPECT_TRUE(test::near(png.at(50, 60), tinted, 3)) << "inside the mask";
  EXPECT_TRUE(test::near(png.at(100, 60), {128, 128, 128}, 0)) << "outside the box";
  EXPECT_TRUE(test::near(png.at(25, 70), {128, 128, 128}, 0)) << "in the box, off the mask";
}

#endif  // LARGEDET_WITH_CAIRO

TEST(DrawTest, MaskOfWrongSizeIsAnError) {
  test::TempDir tmp;
  const std::vector<uint8_t> grey(kHeight * kWidth * 3, 128);
  DrawnDetection detection{20, 30, 80, 90, 0.5f, 1, "cat", std::vector<uint8_t>(10, 1)};
  EXPECT_THROW(
      write_detections_png(tmp.path() + "/x.png", grey.data(), kHeight, kWidth, {detection}),
      Error);
}

}  // namespace
}  // namespace largedet::tools
