// safetensors files (https://huggingface.co/docs/safetensors): the weight format of LargeDet.
// Reading memory-maps the file; the tensors alias the mapping (copy-on-write, so writing to them
// never touches the file) and keep it alive. Every length and offset is checked before use: a
// truncated or hostile file throws largedet::Error, never crashes.
#pragma once

#include <ATen/Tensor.h>

#include <map>
#include <string>

namespace largedet::safetensors {

using TensorMap = std::map<std::string, at::Tensor>;
using Metadata = std::map<std::string, std::string>;

struct Contents {
  TensorMap tensors;
  Metadata metadata;  // the optional "__metadata__" entry
};

// Supported dtypes: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL.
Contents load(const std::string& path);
// Parses an in-memory image of a file; `name` is used in error messages.
Contents parse(const void* data, size_t size, const std::string& name);
// Writes atomically (temporary file, fsync, rename): a crash leaves the old file intact.
// Tensors may live on any device and be non-contiguous; they are written as CPU row-major.
void save(const std::string& path, const TensorMap& tensors, const Metadata& metadata = {});
// The file image save() would write.
std::string serialize(const TensorMap& tensors, const Metadata& metadata = {});

}  // namespace largedet::safetensors
