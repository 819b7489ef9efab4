#ifdef LARGEDET_WITH_CAIRO

#include "visualize/cairo_util.h"

#include <unistd.h>

#include <cstdio>

#include "largedet/core/error.h"

namespace largedet::tools {

Surface make_surface(cairo_format_t format, int width, int height, const std::string& path) {
  Surface surface(cairo_image_surface_create(format, width, height));
  const cairo_status_t status = cairo_surface_status(surface.get());
  if (status != CAIRO_STATUS_SUCCESS)
    throw Error(detail::concat("cannot create a ", width, "x", height,
                               " picture: ", cairo_status_to_string(status)),
                path);
  return surface;
}

void write_png_atomically(cairo_surface_t* surface, const std::string& path) {
  // The pid keeps two processes writing the same picture from sharing a temporary file.
  const std::string temp = path + ".tmp." + std::to_string(::getpid());
  const cairo_status_t status = cairo_surface_write_to_png(surface, temp.c_str());
  if (status != CAIRO_STATUS_SUCCESS) {
    std::remove(temp.c_str());
    throw Error(std::string("cannot write PNG: ") + cairo_status_to_string(status), path,
                "check that the directory exists and is writable");
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    std::remove(temp.c_str());
    throw Error("cannot move the written PNG into place", path,
                "check that the directory is writable and the path is not a directory");
  }
}

}  // namespace largedet::tools

#endif  // LARGEDET_WITH_CAIRO
