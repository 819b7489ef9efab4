# Third-party dependencies (see docs/architecture.md). LibTorch comes from the PyTorch wheel in the
# project-local venv; everything else from Debian packages.
set(_venv_python "${PROJECT_SOURCE_DIR}/.venv/bin/python")
if(NOT DEFINED LARGEDET_PYTHON AND NOT EXISTS "${_venv_python}")
  # A host without the venv (an offline CUDA machine, ../shared/device) has torch in python3.
  find_program(_system_python python3)
  if(_system_python)
    set(_venv_python "${_system_python}")
  endif()
endif()
set(LARGEDET_PYTHON "${_venv_python}" CACHE FILEPATH
    "Python that holds the PyTorch wheel (the project's .venv; else python3 on PATH)")
if(NOT Torch_DIR)
  if(NOT EXISTS "${LARGEDET_PYTHON}")
    message(FATAL_ERROR "No Python at ${LARGEDET_PYTHON}: run `make deps` first, or pass "
                        "-DLARGEDET_PYTHON=/path/to/python (with torch installed) or -DTorch_DIR=...")
  endif()
  execute_process(
    COMMAND "${LARGEDET_PYTHON}" -c "import torch;print(torch.utils.cmake_prefix_path)"
    OUTPUT_VARIABLE _torch_prefix OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _torch_rc)
  if(NOT _torch_rc EQUAL 0)
    message(FATAL_ERROR "${LARGEDET_PYTHON} cannot import torch: run `make deps`")
  endif()
  list(APPEND CMAKE_PREFIX_PATH "${_torch_prefix}")
endif()

# Without a GPU, Torch's CUDA setup cannot detect an architecture: name the ones we ship for.
if(NOT DEFINED ENV{TORCH_CUDA_ARCH_LIST})
  set(ENV{TORCH_CUDA_ARCH_LIST} "8.0;9.0")
endif()
find_package(Torch REQUIRED)
# LARGEDET_CUDA (CMakeLists.txt): AUTO compiles the kernels only where a GPU is visible, since
# nothing else can run them and they are the slowest sources to compile; ON insists.
set(_gpu_visible OFF)
file(GLOB _nvidia_gpus /proc/driver/nvidia/gpus/* /dev/nvidia[0-9]*)
if(_nvidia_gpus)
  set(_gpu_visible ON)
endif()
set(LARGEDET_WITH_CUDA OFF)
set(_cuda_why "LARGEDET_CUDA=${LARGEDET_CUDA}")
if(LARGEDET_CUDA STREQUAL "ON" OR (LARGEDET_CUDA STREQUAL "AUTO" AND _gpu_visible))
  include(CheckLanguage)
  check_language(CUDA)
  if(NOT TARGET torch_cuda)
    set(_cuda_why "the found LibTorch has no CUDA")
  elseif(NOT CMAKE_CUDA_COMPILER)
    set(_cuda_why "no CUDA compiler (nvcc) found")
  else()
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES 80 90)
    endif()
    enable_language(CUDA)
    set(LARGEDET_WITH_CUDA ON)
  endif()
  if(NOT LARGEDET_WITH_CUDA AND LARGEDET_CUDA STREQUAL "ON")
    message(FATAL_ERROR "LARGEDET_CUDA=ON, but ${_cuda_why}: install the CUDA toolkit and a CUDA "
                        "build of PyTorch, or configure with -DLARGEDET_CUDA=AUTO")
  endif()
elseif(LARGEDET_CUDA STREQUAL "AUTO")
  set(_cuda_why "no GPU visible; -DLARGEDET_CUDA=ON compiles them anyway")
endif()
message(STATUS "LargeDet: Torch ${Torch_VERSION}, CUDA kernels: ${LARGEDET_WITH_CUDA}"
               " (${_cuda_why})")

# at::parallel_for is a header template: without -fopenmp in our own compile it silently runs on
# one thread. Linking OpenMP makes our kernels share Torch's pool; libgomp.so.1 resolves to the
# wheel's copy (RUNPATH), so at::set_num_threads governs them too.
find_package(OpenMP REQUIRED COMPONENTS CXX)
list(APPEND TORCH_LIBRARIES OpenMP::OpenMP_CXX)

find_package(yaml-cpp REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
find_package(simdjson REQUIRED)
find_package(CLI11 REQUIRED)
find_package(ZLIB REQUIRED)  # CRC-32 of safetensors payloads
find_package(PNG REQUIRED)
find_path(TURBOJPEG_INCLUDE_DIR turbojpeg.h)
find_library(TURBOJPEG_LIBRARY turbojpeg)
if(NOT TURBOJPEG_INCLUDE_DIR OR NOT TURBOJPEG_LIBRARY)
  message(FATAL_ERROR "TurboJPEG not found: install libturbojpeg0-dev (make deps)")
endif()
find_package(PkgConfig QUIET)
if(PkgConfig_FOUND)
  pkg_check_modules(CAIRO QUIET IMPORTED_TARGET cairo)
endif()
