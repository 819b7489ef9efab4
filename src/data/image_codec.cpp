// JPEG (TurboJPEG) and PNG (libpng's simplified API) codecs. No Torch here: see image.h.
#include <png.h>
#include <turbojpeg.h>

#include <cstring>
#include <memory>

#include "largedet/core/error.h"
#include "largedet/data/image.h"

namespace largedet::data {
namespace {

// One decompressor per thread: creating one costs more than decoding a small image's header.
tjhandle decompressor() {
  struct Handle {
    tjhandle h = tjInitDecompress();
    ~Handle() {
      if (h) tjDestroy(h);
    }
  };
  thread_local Handle handle;
  LARGEDET_CHECK(handle.h != nullptr, "cannot create a TurboJPEG decompressor");
  return handle.h;
}

void check_dimensions(int width, int height, const std::string& where) {
  if (width <= 0 || height <= 0) throw Error("image has no pixels", where, "the file is corrupt");
  if (static_cast<size_t>(width) * static_cast<size_t>(height) > kMaxImagePixels) {
    throw Error(detail::concat("image too large (", width, "x", height, ")"), where,
                "images above 134M pixels are refused");
  }
}

struct JpegHeader {
  int width = 0, height = 0, subsampling = 0, colorspace = 0;
};

JpegHeader jpeg_header(tjhandle tj, const uint8_t* data, size_t size, const std::string& where) {
  JpegHeader h;
  if (size == 0 || size > 0xFFFFFFFFul ||
      tjDecompressHeader3(tj, data, static_cast<unsigned long>(size), &h.width, &h.height,
                          &h.subsampling, &h.colorspace) != 0) {
    throw Error(detail::concat("cannot read the JPEG header: ", tjGetErrorStr2(tj)), where,
                "the file is not a valid JPEG");
  }
  check_dimensions(h.width, h.height, where);
  return h;
}

// The smallest of TurboJPEG's 1/2, 1/4, 1/8 scales that keeps the short side >= min_short_side.
tjscalingfactor choose_scale(int width, int height, int min_short_side) {
  tjscalingfactor best{1, 1};
  if (min_short_side <= 0) return best;
  const int short_side = std::min(width, height);
  for (int denom : {2, 4, 8}) {
    tjscalingfactor f{1, denom};
    if (TJSCALED(short_side, f) >= min_short_side) best = f;
  }
  return best;
}

}  // namespace

ImageFormat sniff_image_format(const uint8_t* data, size_t size) {
  static const uint8_t kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) return ImageFormat::kJpeg;
  if (size >= 8 && std::memcmp(data, kPng, 8) == 0) return ImageFormat::kPng;
  return ImageFormat::kUnknown;
}

Image decode_jpeg(const uint8_t* data, size_t size, int min_short_side, const std::string& where) {
  tjhandle tj = decompressor();
  const JpegHeader h = jpeg_header(tj, data, size, where);
  const tjscalingfactor scale = choose_scale(h.width, h.height, min_short_side);
  Image image;
  image.width = TJSCALED(h.width, scale);
  image.height = TJSCALED(h.height, scale);
  // CMYK and YCCK cannot be converted to RGB by libjpeg: decode to CMYK and convert below.
  const bool cmyk = h.colorspace == TJCS_CMYK || h.colorspace == TJCS_YCCK;
  const int format = cmyk ? TJPF_CMYK : TJPF_RGB;
  std::vector<uint8_t> pixels(image.pixels() * (cmyk ? 4 : 3));
  // LIMITSCANS refuses progressive files with absurd scan counts (a decode-time bomb).
  const int flags = TJFLAG_LIMITSCANS;
  if (tjDecompress2(tj, data, static_cast<unsigned long>(size), pixels.data(), image.width, 0,
                    image.height, format, flags) != 0 &&
      tjGetErrorCode(tj) != TJERR_WARNING) {
    // Warnings (e.g. a truncated last scan) still give an image, as PIL does with
    // LOAD_TRUNCATED_IMAGES; errors do not.
    throw Error(detail::concat("cannot decode the JPEG: ", tjGetErrorStr2(tj)), where,
                "the file is corrupt");
  }
  if (!cmyk) {
    image.rgb = std::move(pixels);
    return image;
  }
  // libjpeg hands back Adobe-style (inverted) CMYK, as Photoshop writes it: R = C * K / 255.
  image.rgb.resize(image.pixels() * 3);
  for (size_t i = 0, n = image.pixels(); i < n; ++i) {
    const unsigned k = pixels[4 * i + 3];
    for (int c = 0; c < 3; ++c) {
      image.rgb[3 * i + c] = static_cast<uint8_t>((pixels[4 * i + c] * k + 127) / 255);
    }
  }
  return image;
}

Image decode_png(const uint8_t* data, size_t size, const std::string& where) {
  png_image png;
  std::memset(&png, 0, sizeof(png));
  png.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&png, data, size)) {
    std::string message = png.message;
    png_image_free(&png);
    throw Error("cannot read the PNG header: " + message, where, "the file is not a valid PNG");
  }
  try {
    check_dimensions(static_cast<int>(std::min<png_uint_32>(png.width, 1u << 30)),
                     static_cast<int>(std::min<png_uint_32>(png.height, 1u << 30)), where);
  } catch (...) {
    png_image_free(&png);
    throw;
  }
  png.format = PNG_FORMAT_RGB;
  Image image;
  image.width = static_cast<int>(png.width);
  image.height = static_cast<int>(png.height);
  image.rgb.resize(PNG_IMAGE_SIZE(png));
  if (!png_image_finish_read(&png, nullptr, image.rgb.data(), 0, nullptr)) {
    std::string message = png.message;
    png_image_free(&png);
    throw Error("cannot decode the PNG: " + message, where, "the file is corrupt");
  }
  return image;
}

Image decode_image(const uint8_t* data, size_t size, int min_short_side, const std::string& where) {
  switch (sniff_image_format(data, size)) {
    case ImageFormat::kJpeg:
      return decode_jpeg(data, size, min_short_side, where);
    case ImageFormat::kPng:
      return decode_png(data, size, where);
    default:
      throw Error("unknown image format (neither JPEG nor PNG)", where,
                  size == 0 ? "the file is empty" : "the file is corrupt or of another format");
  }
}

void read_image_size(const uint8_t* data, size_t size, int* width, int* height,
                     const std::string& where) {
  switch (sniff_image_format(data, size)) {
    case ImageFormat::kJpeg: {
      const JpegHeader h = jpeg_header(decompressor(), data, size, where);
      *width = h.width;
      *height = h.height;
      return;
    }
    case ImageFormat::kPng: {
      png_image png;
      std::memset(&png, 0, sizeof(png));
      png.version = PNG_IMAGE_VERSION;
      if (!png_image_begin_read_from_memory(&png, data, size)) {
        std::string message = png.message;
        png_image_free(&png);
        throw Error("cannot read the PNG header: " + message, where);
      }
      *width = static_cast<int>(png.width);
      *height = static_cast<int>(png.height);
      png_image_free(&png);
      return;
    }
    default:
      throw Error("unknown image format (neither JPEG nor PNG)", where);
  }
}

namespace {

std::string compress(const uint8_t* pixels, int width, int height, int format, int subsampling,
                     int quality) {
  std::unique_ptr<void, int (*)(tjhandle)> tj(tjInitCompress(), tjDestroy);
  LARGEDET_CHECK(tj != nullptr, "cannot create a TurboJPEG compressor");
  unsigned char* out = nullptr;
  unsigned long out_size = 0;
  if (tjCompress2(tj.get(), pixels, width, 0, height, format, &out, &out_size, subsampling, quality,
                  TJFLAG_ACCURATEDCT) != 0) {
    std::string message = tjGetErrorStr2(tj.get());
    tjFree(out);
    throw Error("cannot encode the JPEG: " + message);
  }
  std::string bytes(reinterpret_cast<const char*>(out), out_size);
  tjFree(out);
  return bytes;
}

}  // namespace

std::string encode_jpeg(const Image& image, int quality) {
  LARGEDET_CHECK(image.rgb.size() == image.pixels() * 3 && image.pixels() > 0,
                 "encode_jpeg: the pixel buffer does not match ", image.width, "x", image.height);
  return compress(image.rgb.data(), image.width, image.height, TJPF_RGB, TJSAMP_420, quality);
}

std::string encode_jpeg_cmyk(const std::vector<uint8_t>& cmyk, int width, int height, int quality) {
  LARGEDET_CHECK(cmyk.size() == static_cast<size_t>(width) * height * 4 && width > 0 && height > 0,
                 "encode_jpeg_cmyk: the pixel buffer does not match ", width, "x", height);
  return compress(cmyk.data(), width, height, TJPF_CMYK, TJSAMP_444, quality);
}

std::string encode_png(const std::vector<uint8_t>& pixels, int width, int height, int channels) {
  LARGEDET_CHECK(channels == 1 || channels == 3 || channels == 4, "encode_png: ", channels,
                 " channels (1, 3 or 4 expected)");
  LARGEDET_CHECK(pixels.size() == static_cast<size_t>(width) * height * channels,
                 "encode_png: the pixel buffer does not match ", width, "x", height);
  png_image png;
  std::memset(&png, 0, sizeof(png));
  png.version = PNG_IMAGE_VERSION;
  png.width = static_cast<png_uint_32>(width);
  png.height = static_cast<png_uint_32>(height);
  png.format = channels == 1 ? PNG_FORMAT_GRAY : channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_RGBA;
  png_alloc_size_t size = 0;
  if (!png_image_write_get_memory_size(png, size, 0, pixels.data(), 0, nullptr)) {
    throw Error(std::string("cannot encode the PNG: ") + png.message);
  }
  std::string bytes(size, '\0');
  if (!png_image_write_to_memory(&png, bytes.data(), &size, 0, pixels.data(), 0, nullptr)) {
    throw Error(std::string("cannot encode the PNG: ") + png.message);
  }
  bytes.resize(size);
  return bytes;
}

}  // namespace largedet::data
