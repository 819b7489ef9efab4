# Thin wrapper over CMake/CTest. `make test` installs what is missing, builds, and runs every test.
SHELL := /bin/bash
BUILD ?= build
JOBS ?= 2
VENV := .venv
PYTHON := $(VENV)/bin/python
TORCH_VERSION := 2.11.0
TORCHVISION_VERSION := 0.26.0
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := build-essential cmake ccache clang-format clang libclang-rt-14-dev python3-venv \
  libsimdjson-dev nlohmann-json3-dev libturbojpeg0-dev libpng-dev zlib1g-dev libyaml-cpp-dev libcli11-dev \
  libgtest-dev libgmock-dev libbenchmark-dev libcairo2-dev pkg-config
PY_PACKAGES := torch==$(TORCH_VERSION) torchvision==$(TORCHVISION_VERSION) pycocotools tensorboard numpy safetensors onnx onnxruntime

.PHONY: deps apt-deps venv build test test-scale demo gpu-check check-cuda format check-format clean

deps: apt-deps venv

apt-deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:" $$missing; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

# The stamp holds the package list it installed: pip runs again when the list changes, not on every
# edit of this Makefile (a second `make demo` starts training within a minute).
venv:
	@if [ "$$(cat $(VENV)/.installed 2>/dev/null)" != "$(PY_PACKAGES)" ]; then \
	  command -v python3 >/dev/null || { echo "python3 is missing: install python3 and python3-venv"; exit 1; }; \
	  set -e; [ -x $(PYTHON) ] || python3 -m venv $(VENV); \
	  echo "Installing Python packages into $(VENV):" $(PY_PACKAGES); \
	  $(PYTHON) -m pip install -q --upgrade pip; \
	  $(PYTHON) -m pip install -q $(PY_PACKAGES); \
	  echo "$(PY_PACKAGES)" > $(VENV)/.installed; \
	fi

$(BUILD)/CMakeCache.txt: CMakeLists.txt | deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DLARGEDET_PYTHON=$(abspath $(PYTHON))

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# 16 and 32 ranks on this machine (tests named Scale*, label scale; docs/distributed.md, "Scale on
# one machine"): one at a time, each fills the cores with its ranks.
test-scale: build
	cd $(BUILD) && ctest --output-on-failure -L scale -j 1

# Trains a small detector on synthetic data on two local workers and prints its COCO AP.
demo: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS) --target largedet_cli
	BUILD=$(BUILD) bash scripts/demo.sh

# On a CUDA host (no network: no deps, no venv): builds build-gpu/ with only what it runs, runs the
# Cuda* tests, times bench model against torchvision, trains the demo on the GPU with fp16 AMP and
# compares Mask R-CNN detections on the GPU with the CPU's, and with two GPUs counts a SyncBN
# step's host waits under NCCL; one summary table, ~6 minutes.
# Every step runs even after one failed (exit 1 then); GPU_CHECK_ARGS="--stop-on-failure" stops at
# the first; "--device cpu --build-dir build
# --skip-build" is the CPU rehearsal (docs/benchmarks.md, "CUDA host check").
gpu-check:
	bash scripts/gpu_check.sh $(GPU_CHECK_ARGS)

# CI's compile of the CUDA kernels on a machine without a GPU (there the default build leaves them
# out): $(BUILD)-cuda compiles each .cu file and each source (library, CLI, tests) that tests
# LARGEDET_WITH_CUDA, and links nothing, since nothing here could run it.
check-cuda: deps
	@mkdir -p $(BUILD)-cuda
	cmake -S . -B $(BUILD)-cuda -DCMAKE_BUILD_TYPE=Release -DLARGEDET_PYTHON=$(abspath $(PYTHON)) \
	  -DLARGEDET_CUDA=ON -DLARGEDET_BUILD_TESTS=ON > $(BUILD)-cuda/configure.log 2>&1 \
	  || { tail -30 $(BUILD)-cuda/configure.log; exit 1; }
	cmake --build $(BUILD)-cuda -j $(JOBS) --target largedet_cuda_check

format:
	git ls-files '*.h' '*.cpp' '*.cu' | xargs clang-format -i

check-format:
	@bad=""; for f in $$(git ls-files '*.h' '*.cpp' '*.cu'); do \
	  clang-format --dry-run --Werror "$$f" >/dev/null 2>&1 || bad="$$bad $$f"; done; \
	if [ -n "$$bad" ]; then echo "clang-format differs in:$$bad"; echo "run: make format"; exit 1; fi

clean:
	rm -rf $(BUILD) $(BUILD)-cuda
