// JPEG (TurboJPEG) and PNG (libpng's simplified API) codecs. No Torch here: see image.h.
#include <png.h>
#include <turbojpeg.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "largedet/core/error.h"
#include "largedet/core/limits.h"
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
  if (int64_t{width} * height > kDefaultMaxImagePixels) {
    throw Error(detail::concat("image too large (", width, "x", height, ")"), where,
                detail::concat("images above ", kDefaultMaxImagePixels, " pixels are refused"));
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
                    image.height, format, flags) != 0) {
    // Warnings (e.g. a truncated scan) still give an image, as PIL does with
    // LOAD_TRUNCATED_IMAGES, and say so; errors do not.
    if (tjGetErrorCode(tj) != TJERR_WARNING) {
      throw Error(detail::concat("cannot decode the JPEG: ", tjGetErrorStr2(tj)), where,
                  "the file is corrupt");
    }
    image.warning = detail::concat("the JPEG is truncated or damaged (", tjGetErrorStr2(tj),
                                   "): what could not be decoded is grey");
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

// The Orientation tag (0x0112) of an APP1 payload ("Exif\0\0", then TIFF), 0 when it has none.
// Every offset is checked: the bytes are the file's.
int exif_payload_orientation(const uint8_t* p, size_t n) {
  if (n < 14 || std::memcmp(p, "Exif\0\0", 6) != 0) return 0;
  const uint8_t* tiff = p + 6;
  n -= 6;
  const bool little = tiff[0] == 'I' && tiff[1] == 'I';
  if (!little && !(tiff[0] == 'M' && tiff[1] == 'M')) return 0;
  auto u16 = [&](size_t at) -> uint32_t {
    return little ? tiff[at] | tiff[at + 1] << 8 : tiff[at] << 8 | tiff[at + 1];
  };
  auto u32 = [&](size_t at) -> size_t {
    return little ? u16(at) | size_t{u16(at + 2)} << 16 : size_t{u16(at)} << 16 | u16(at + 2);
  };
  if (u16(2) != 42) return 0;
  const size_t ifd = u32(4);
  if (ifd + 2 > n) return 0;
  for (size_t e = 0, entries = u16(ifd); e < entries; ++e) {
    const size_t at = ifd + 2 + 12 * e;
    if (at + 12 > n) return 0;
    if (u16(at) == 0x0112 && u16(at + 2) == 3) {  // SHORT: the value sits in the entry
      const uint32_t v = u16(at + 8);
      return v >= 1 && v <= 8 ? static_cast<int>(v) : 0;
    }
  }
  return 0;
}

}  // namespace

int read_exif_orientation(const uint8_t* data, size_t size) {
  if (sniff_image_format(data, size) != ImageFormat::kJpeg) return 1;
  // The marker segments before the first scan; EXIF is an APP1 segment (XMP is another).
  size_t at = 2;
  while (at + 4 <= size && data[at] == 0xFF) {
    const uint8_t marker = data[at + 1];
    if (marker == 0xFF) {  // fill byte
      ++at;
      continue;
    }
    if (marker == 0xDA || marker == 0xD9) break;  // start of scan, end of image
    const size_t length = size_t{data[at + 2]} << 8 | data[at + 3];
    if (length < 2 || at + 2 + length > size) break;
    if (marker == 0xE1) {
      if (const int orientation = exif_payload_orientation(data + at + 4, length - 2)) {
        return orientation;
      }
    }
    at += 2 + length;
  }
  return 1;
}

Image turn_by_exif_orientation(const Image& image, int orientation) {
  LARGEDET_CHECK(exif_orientation_turns(orientation), "EXIF orientation ", orientation,
                 " does not turn the image");
  const int w = image.width, h = image.height;
  Image out;
  out.width = h;
  out.height = w;
  out.warning = image.warning;
  out.rgb.resize(image.rgb.size());
  for (int y = 0; y < out.height; ++y) {
    for (int x = 0; x < out.width; ++x) {
      // The source pixel of (x, y): 5 transposes, 6 turns clockwise, 7 transposes the other
      // diagonal, 8 turns anticlockwise.
      const int sx = orientation <= 6 ? y : w - 1 - y;
      const int sy = orientation == 5 || orientation == 8 ? x : h - 1 - x;
      const uint8_t* src = &image.rgb[(static_cast<size_t>(sy) * w + sx) * 3];
      std::copy(src, src + 3, &out.rgb[(static_cast<size_t>(y) * out.width + x) * 3]);
    }
  }
  return out;
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
