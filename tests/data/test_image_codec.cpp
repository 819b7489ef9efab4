// Decoders: JPEG (RGB, gray, CMYK, scaled), PNG (gray, RGB, RGBA), and bad bytes that must throw.
#include <gtest/gtest.h>
#include <turbojpeg.h>

#include <cstdlib>

#include "data_test_util.h"
#include "largedet/core/error.h"
#include "largedet/data/image.h"

namespace largedet::data {
namespace {

Image gradient(int w, int h) {
  Image im;
  im.width = w;
  im.height = h;
  im.rgb.resize(im.pixels() * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = &im.rgb[(static_cast<size_t>(y) * w + x) * 3];
      p[0] = static_cast<uint8_t>(x * 255 / w);
      p[1] = static_cast<uint8_t>(y * 255 / h);
      p[2] = 128;
    }
  return im;
}

const uint8_t* bytes(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

double mean_abs_diff(const Image& a, const Image& b) {
  double d = 0;
  for (size_t i = 0; i < a.rgb.size(); ++i) d += std::abs(int(a.rgb[i]) - int(b.rgb[i]));
  return d / a.rgb.size();
}

TEST(ImageCodec, JpegRoundTripIsClose) {
  const Image im = gradient(64, 48);
  const std::string jpeg = encode_jpeg(im, 95);
  EXPECT_EQ(sniff_image_format(bytes(jpeg), jpeg.size()), ImageFormat::kJpeg);
  const Image out = decode_image(bytes(jpeg), jpeg.size());
  ASSERT_EQ(out.width, 64);
  ASSERT_EQ(out.height, 48);
  EXPECT_LT(mean_abs_diff(im, out), 3.0);
  int w = 0, h = 0;
  read_image_size(bytes(jpeg), jpeg.size(), &w, &h);
  EXPECT_EQ(w, 64);
  EXPECT_EQ(h, 48);
}

TEST(ImageCodec, JpegEncodingIsDeterministic) {
  const Image im = gradient(40, 30);
  EXPECT_EQ(encode_jpeg(im), encode_jpeg(im));
}

TEST(ImageCodec, ScaledDecodePicksTheSmallestScaleAboveTheTarget) {
  const std::string jpeg = encode_jpeg(gradient(640, 480));
  // 1/2 gives a 240 short side (>= 200); 1/4 would give 120.
  Image half = decode_jpeg(bytes(jpeg), jpeg.size(), 200);
  EXPECT_EQ(half.width, 320);
  EXPECT_EQ(half.height, 240);
  Image eighth = decode_jpeg(bytes(jpeg), jpeg.size(), 60);
  EXPECT_EQ(eighth.width, 80);
  EXPECT_EQ(eighth.height, 60);
  // Upsizing targets decode at full size.
  Image full = decode_jpeg(bytes(jpeg), jpeg.size(), 800);
  EXPECT_EQ(full.width, 640);
}

TEST(ImageCodec, GrayscaleJpegBecomesRgb) {
  std::vector<uint8_t> gray(32 * 16);
  for (size_t i = 0; i < gray.size(); ++i) gray[i] = static_cast<uint8_t>(i % 200);
  tjhandle tj = tjInitCompress();
  unsigned char* out = nullptr;
  unsigned long size = 0;
  ASSERT_EQ(tjCompress2(tj, gray.data(), 32, 0, 16, TJPF_GRAY, &out, &size, TJSAMP_GRAY, 100, 0),
            0);
  std::string jpeg(reinterpret_cast<char*>(out), size);
  tjFree(out);
  tjDestroy(tj);
  const Image im = decode_image(bytes(jpeg), jpeg.size());
  ASSERT_EQ(im.rgb.size(), gray.size() * 3);
  for (size_t i = 0; i < gray.size(); ++i) {
    EXPECT_EQ(im.rgb[3 * i], im.rgb[3 * i + 1]);
    EXPECT_EQ(im.rgb[3 * i], im.rgb[3 * i + 2]);
    EXPECT_NEAR(im.rgb[3 * i], gray[i], 3);
  }
}

TEST(ImageCodec, CmykJpegBecomesRgb) {
  // Inverted (Adobe) CMYK: R = C * K / 255, so C=200, M=100, Y=50, K=255 is RGB (200, 100, 50).
  std::vector<uint8_t> cmyk;
  for (int i = 0; i < 16 * 16; ++i) cmyk.insert(cmyk.end(), {200, 100, 50, 255});
  const std::string jpeg = encode_jpeg_cmyk(cmyk, 16, 16, 100);
  const Image im = decode_image(bytes(jpeg), jpeg.size());
  ASSERT_EQ(im.width, 16);
  EXPECT_NEAR(im.rgb[0], 200, 3);
  EXPECT_NEAR(im.rgb[1], 100, 3);
  EXPECT_NEAR(im.rgb[2], 50, 3);
}

TEST(ImageCodec, PngGrayRgbAndRgbaDecodeExactly) {
  const Image rgb = gradient(20, 10);
  const std::string png = encode_png(rgb.rgb, 20, 10, 3);
  EXPECT_EQ(sniff_image_format(bytes(png), png.size()), ImageFormat::kPng);
  EXPECT_EQ(decode_image(bytes(png), png.size()).rgb, rgb.rgb);

  std::vector<uint8_t> gray(20 * 10, 77);
  const Image g =
      decode_image(bytes(encode_png(gray, 20, 10, 1)), encode_png(gray, 20, 10, 1).size());
  EXPECT_EQ(g.rgb, std::vector<uint8_t>(600, 77));

  std::vector<uint8_t> rgba;
  for (int i = 0; i < 200; ++i) rgba.insert(rgba.end(), {10, 20, 30, 255});
  const std::string p4 = encode_png(rgba, 20, 10, 4);
  const Image a = decode_image(bytes(p4), p4.size());
  EXPECT_EQ(a.rgb[0], 10);
  EXPECT_EQ(a.rgb[1], 20);
  EXPECT_EQ(a.rgb[2], 30);
}

TEST(ImageCodec, BadBytesThrowErrorsNamingTheFile) {
  const std::string jpeg = encode_jpeg(gradient(64, 48));
  const std::string png = encode_png(gradient(64, 48).rgb, 64, 48, 3);
  const std::vector<std::string> bad = {
      "",
      "not an image",
      jpeg.substr(0, 20),                                    // header cut short
      png.substr(0, 40),                                     // PNG cut inside the data
      std::string("\xFF\xD8\xFF") + std::string(100, '\0'),  // JPEG magic, garbage after
  };
  for (const auto& b : bad) {
    try {
      decode_image(bytes(b), b.size(), 0, "bad.jpg");
      ADD_FAILURE() << "decoded " << b.size() << " bad bytes";
    } catch (const Error& e) {
      EXPECT_EQ(e.where(), "bad.jpg");
    }
  }
}

// Issue 18, item 5: a truncated JPEG decoded with its bottom rows grey and nothing said so. It
// still decodes (callers keep it), with the decoder's warning, at full and at reduced scale.
TEST(ImageCodec, TruncatedJpegDecodesWithAWarning) {
  const std::string jpeg = encode_jpeg(gradient(128, 96));
  EXPECT_TRUE(decode_image(bytes(jpeg), jpeg.size()).warning.empty());
  const std::string cut = testing::truncate_jpeg_scan(jpeg);
  for (int min_short_side : {0, 40}) {
    const Image image = decode_image(bytes(cut), cut.size(), min_short_side, "cut.jpg");
    EXPECT_EQ(image.width, min_short_side ? 64 : 128);
    EXPECT_FALSE(image.warning.empty()) << "scaled to " << min_short_side;
  }
}

TEST(ImageCodec, ExifOrientationIsReadInEitherByteOrder) {
  const std::string jpeg = encode_jpeg(gradient(32, 16));
  EXPECT_EQ(read_exif_orientation(bytes(jpeg), jpeg.size()), 1);
  for (bool little_endian : {false, true}) {
    for (int orientation = 1; orientation <= 8; ++orientation) {
      const std::string exif = testing::with_exif_orientation(jpeg, orientation, little_endian);
      EXPECT_EQ(read_exif_orientation(bytes(exif), exif.size()), orientation);
      EXPECT_EQ(decode_image(bytes(exif), exif.size()).width, 32);  // decoding ignores it
    }
  }
  // Cut inside the EXIF segment: no orientation, and no read past the end.
  const std::string exif = testing::with_exif_orientation(jpeg, 6);
  const size_t segment_end = exif.find("\xFF\xDB");  // the quantisation tables follow it
  for (size_t n = 0; n < segment_end; ++n) {
    EXPECT_EQ(read_exif_orientation(bytes(exif), n), 1) << n;
  }
  EXPECT_EQ(read_exif_orientation(bytes(exif), segment_end), 6);
  const std::string png = encode_png(gradient(4, 4).rgb, 4, 4, 3);
  EXPECT_EQ(read_exif_orientation(bytes(png), png.size()), 1);
}

// EXIF orientations 5..8 as the EXIF specification draws them: where the source's corners go.
TEST(ImageCodec, TurningByExifOrientationMovesThePixelsAsExifSays) {
  Image im;  // 3 x 2, red channel 10 * y + x
  im.width = 3;
  im.height = 2;
  im.rgb.resize(im.pixels() * 3);
  for (int y = 0; y < 2; ++y)
    for (int x = 0; x < 3; ++x) im.rgb[(y * 3 + x) * 3] = static_cast<uint8_t>(10 * y + x);
  auto red = [](const Image& out, int x, int y) { return out.rgb[(y * out.width + x) * 3]; };
  struct Case {
    int orientation, x, y, source;  // out(x, y) holds source pixel `source`
  };
  for (const Case& c : {Case{5, 1, 0, 10}, Case{5, 1, 2, 12}, Case{6, 1, 0, 0}, Case{6, 0, 0, 10},
                        Case{7, 1, 2, 0}, Case{7, 0, 0, 12}, Case{8, 0, 2, 0}, Case{8, 0, 0, 2}}) {
    const Image out = turn_by_exif_orientation(im, c.orientation);
    ASSERT_EQ(out.width, 2);
    ASSERT_EQ(out.height, 3);
    EXPECT_EQ(red(out, c.x, c.y), c.source) << "orientation " << c.orientation;
  }
  EXPECT_THROW(turn_by_exif_orientation(im, 3), Error);
}

}  // namespace
}  // namespace largedet::data
