// torchvision's native kernels as an oracle for tests and benchmarks: its _C shared object, once
// loaded into this process, registers torchvision::nms and torchvision::roi_align in the dispatcher
// (it links the same LibTorch). Only the ops tests and `largedet bench ops` link this library
// (largedet_torchvision_oracle); the installed package does not contain it.
#pragma once

#include <ATen/ATen.h>

#include <string>

namespace largedet::ops::torchvision {

// The _C library of the torchvision installed next to `python` (a venv's or a system's
// bin/python3): "<prefix>[/local]/lib/python3.X/{site,dist}-packages/torchvision/_C.so", or ""
// when not found.
std::string find_library(const std::string& python);

// Loads the library (and the libtorch_python / libpython it links) once; returns true when
// torchvision::nms and torchvision::roi_align are available. `error` receives the reason otherwise.
bool load(const std::string& library_path, std::string* error = nullptr);
bool available();

at::Tensor nms(const at::Tensor& boxes, const at::Tensor& scores, double iou_threshold);
at::Tensor roi_align(const at::Tensor& input, const at::Tensor& rois, double spatial_scale,
                     int64_t pooled_height, int64_t pooled_width, int64_t sampling_ratio,
                     bool aligned);
at::Tensor roi_align_backward(const at::Tensor& grad, const at::Tensor& rois, double spatial_scale,
                              int64_t pooled_height, int64_t pooled_width, int64_t batch,
                              int64_t channels, int64_t height, int64_t width,
                              int64_t sampling_ratio, bool aligned);

}  // namespace largedet::ops::torchvision
