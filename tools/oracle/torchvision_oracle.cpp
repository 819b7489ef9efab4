#include "oracle/torchvision_oracle.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <dlfcn.h>

#include <filesystem>
#include <mutex>
#include <vector>

namespace largedet::ops::torchvision {
namespace fs = std::filesystem;
namespace {

std::mutex g_mutex;
bool g_loaded = false;

bool has_ops() {
  auto& d = c10::Dispatcher::singleton();
  return d.findSchema({"torchvision::nms", ""}).has_value() &&
         d.findSchema({"torchvision::roi_align", ""}).has_value() &&
         d.findSchema({"torchvision::_roi_align_backward", ""}).has_value();
}

at::Tensor call(const char* name, std::vector<c10::IValue> stack) {
  auto op = c10::Dispatcher::singleton().findSchemaOrThrow(name, "");
  op.callBoxed(&stack);
  return stack.at(0).toTensor();
}

}  // namespace

std::string find_library(const std::string& python) {
  std::error_code ec;
  // <prefix>/bin/python -> <prefix>[/local]/lib/python3.X/{site,dist}-packages/torchvision/_C.so:
  // a venv's or pip's site-packages, or a Debian system Python's dist-packages (where pip as root
  // installs under /usr/local).
  const fs::path prefix = fs::path(python).parent_path().parent_path();
  for (const fs::path& lib : {prefix / "lib", prefix / "local" / "lib"}) {
    if (!fs::is_directory(lib, ec)) continue;
    for (const auto& entry : fs::directory_iterator(lib, ec)) {
      if (entry.path().filename().string().rfind("python3.", 0) != 0) continue;
      for (const char* packages : {"site-packages", "dist-packages"}) {
        const auto candidate = entry.path() / packages / "torchvision" / "_C.so";
        if (fs::exists(candidate, ec)) return candidate.string();
      }
    }
  }
  return "";
}

bool load(const std::string& library_path, std::string* error) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_loaded) return true;
  auto fail = [&](const std::string& why) {
    if (error) *error = why;
    return false;
  };
  std::error_code ec;
  if (library_path.empty() || !fs::exists(library_path, ec))
    return fail("torchvision library not found: '" + library_path + "'");
  // _C.so links libtorch_python, which needs the Python runtime's symbols (no interpreter is
  // started: torchvision's kernels never call into Python). Load both globally first.
  const fs::path site = fs::path(library_path).parent_path().parent_path();
  const std::string pyver = site.parent_path().filename().string();  // "python3.11"
  const std::vector<std::string> pythons = {"lib" + pyver + ".so.1.0", "lib" + pyver + ".so"};
  bool have_python = false;
  for (const auto& name : pythons)
    have_python = have_python || dlopen(name.c_str(), RTLD_NOW | RTLD_GLOBAL);
  if (!have_python) return fail("cannot load lib" + pyver + ".so (needed by torchvision's _C.so)");
  const auto torch_python = site / "torch" / "lib" / "libtorch_python.so";
  if (!dlopen(torch_python.c_str(), RTLD_NOW | RTLD_GLOBAL))
    return fail(std::string("cannot load ") + torch_python.string() + ": " + dlerror());
  if (!dlopen(library_path.c_str(), RTLD_NOW | RTLD_GLOBAL))
    return fail(std::string("cannot load ") + library_path + ": " + dlerror());
  if (!has_ops()) return fail(library_path + " did not register torchvision::nms / roi_align");
  g_loaded = true;
  return true;
}

bool available() {
  std::lock_guard<std::mutex> lock(g_mutex);
  return g_loaded;
}

at::Tensor nms(const at::Tensor& boxes, const at::Tensor& scores, double iou_threshold) {
  return call("torchvision::nms", {boxes, scores, iou_threshold});
}

at::Tensor roi_align(const at::Tensor& input, const at::Tensor& rois, double spatial_scale,
                     int64_t pooled_height, int64_t pooled_width, int64_t sampling_ratio,
                     bool aligned) {
  return call("torchvision::roi_align",
              {input, rois, spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned});
}

at::Tensor roi_align_backward(const at::Tensor& grad, const at::Tensor& rois, double spatial_scale,
                              int64_t pooled_height, int64_t pooled_width, int64_t batch,
                              int64_t channels, int64_t height, int64_t width,
                              int64_t sampling_ratio, bool aligned) {
  return call("torchvision::_roi_align_backward",
              {grad, rois, spatial_scale, pooled_height, pooled_width, batch, channels, height,
               width, sampling_ratio, aligned});
}

}  // namespace largedet::ops::torchvision
