#include "largedet/tensor/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ATen/ATen.h>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include <zlib.h>

#include "largedet/core/error.h"
#include "largedet/core/file_io.h"

namespace largedet::safetensors {
namespace {

constexpr uint64_t kMaxHeader = 100ull << 20;  // the reference implementation's limit
// Metadata entry "crc32/<tensor>" holds the CRC-32 of the tensor's bytes (8 hex digits).
constexpr const char* kChecksumPrefix = "crc32/";

std::string crc32_hex(const unsigned char* bytes, uint64_t size) {
  uLong crc = ::crc32_z(0L, Z_NULL, 0);
  crc = ::crc32_z(crc, bytes, size);
  char text[9];
  std::snprintf(text, sizeof text, "%08lx", static_cast<unsigned long>(crc));
  return text;
}

struct DType {
  const char* name;
  at::ScalarType type;
};
constexpr DType kDTypes[] = {{"F64", at::kDouble},    {"F32", at::kFloat}, {"F16", at::kHalf},
                             {"BF16", at::kBFloat16}, {"I64", at::kLong},  {"I32", at::kInt},
                             {"I16", at::kShort},     {"I8", at::kChar},   {"U8", at::kByte},
                             {"BOOL", at::kBool}};

at::ScalarType dtype_from_name(const std::string& name, const std::string& where) {
  for (const auto& d : kDTypes)
    if (name == d.name) return d.type;
  throw Error("unsupported dtype '" + name + "'", where,
              "supported: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL");
}

const char* dtype_name(at::ScalarType type, const std::string& tensor) {
  for (const auto& d : kDTypes)
    if (type == d.type) return d.name;
  throw Error(std::string("cannot save dtype ") + at::toString(type), "tensor '" + tensor + "'",
              "convert it to a supported dtype first");
}

// An mmapped file that lives as long as the last tensor viewing it.
struct Mapping {
  void* data = MAP_FAILED;
  size_t size = 0;
  ~Mapping() {
    if (data != MAP_FAILED) ::munmap(data, size);
  }
};

uint64_t read_u64_le(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

struct Entry {
  std::string name;
  at::ScalarType type;
  std::vector<int64_t> shape;
  uint64_t begin, end;
};

std::vector<Entry> parse_header(const nlohmann::json& header, uint64_t data_size,
                                const std::string& file, Metadata* metadata) {
  if (!header.is_object())
    throw Error("header is not a JSON object", file, "not a safetensors file");
  std::vector<Entry> entries;
  for (const auto& [name, info] : header.items()) {
    std::string where = file + ": tensor '" + name + "'";
    if (name == "__metadata__") {
      if (!info.is_object()) throw Error("__metadata__ is not an object", file);
      for (const auto& [key, value] : info.items()) {
        if (!value.is_string())
          throw Error("__metadata__ value of '" + key + "' is not a string", file);
        (*metadata)[key] = value.get<std::string>();
      }
      continue;
    }
    if (!info.is_object() || !info.contains("dtype") || !info.contains("shape") ||
        !info.contains("data_offsets") || !info["dtype"].is_string() || !info["shape"].is_array() ||
        !info["data_offsets"].is_array() || info["data_offsets"].size() != 2) {
      throw Error("entry needs dtype (string), shape (array) and data_offsets ([begin, end])",
                  where);
    }
    Entry entry{name, dtype_from_name(info["dtype"].get<std::string>(), where), {}, 0, 0};
    uint64_t bytes = at::elementSize(entry.type);
    for (const auto& dim : info["shape"]) {
      if (!dim.is_number_unsigned())
        throw Error("shape holds a non-integer or negative size", where);
      uint64_t d = dim.get<uint64_t>();
      if (d > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          (d != 0 && bytes > std::numeric_limits<uint64_t>::max() / d)) {
        throw Error("shape is too large", where);
      }
      bytes *= d;
      entry.shape.push_back(static_cast<int64_t>(d));
    }
    for (const auto& offset : info["data_offsets"])
      if (!offset.is_number_unsigned())
        throw Error("data_offsets are not non-negative integers", where);
    entry.begin = info["data_offsets"][0].get<uint64_t>();
    entry.end = info["data_offsets"][1].get<uint64_t>();
    if (entry.begin > entry.end || entry.end > data_size) {
      throw Error("data_offsets [" + std::to_string(entry.begin) + ", " +
                      std::to_string(entry.end) + "] fall outside the " +
                      std::to_string(data_size) + " data bytes",
                  where, "the file is truncated or corrupt");
    }
    if (entry.end - entry.begin != bytes) {
      throw Error("data_offsets span " + std::to_string(entry.end - entry.begin) +
                      " bytes but dtype and shape need " + std::to_string(bytes),
                  where);
    }
    entries.push_back(std::move(entry));
  }
  std::vector<const Entry*> by_offset;
  for (const auto& e : entries) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const Entry* a, const Entry* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    if (by_offset[i]->begin < by_offset[i - 1]->end) {
      throw Error(
          "tensors '" + by_offset[i - 1]->name + "' and '" + by_offset[i]->name + "' overlap", file,
          "the file is corrupt");
    }
  }
  return entries;
}

// Files written by save() carry a checksum per tensor; other writers' files have none and load
// unchecked. A mismatch names the tensors, so that a user knows the bytes, not the code, are bad.
void verify_checksums(const std::vector<Entry>& entries, const unsigned char* payload,
                      const std::string& file, Metadata* metadata) {
  std::vector<std::string> corrupt;
  for (const auto& entry : entries) {
    auto it = metadata->find(kChecksumPrefix + entry.name);
    if (it == metadata->end()) continue;
    if (it->second != crc32_hex(payload + entry.begin, entry.end - entry.begin))
      corrupt.push_back(entry.name);
  }
  for (auto it = metadata->begin(); it != metadata->end();)
    it = it->first.rfind(kChecksumPrefix, 0) == 0 ? metadata->erase(it) : std::next(it);
  if (corrupt.empty()) return;
  throw Error("checksum mismatch in " + std::to_string(corrupt.size()) + " tensor" +
                  (corrupt.size() == 1 ? "" : "s") + " (" + name_list(corrupt) + ")",
              file, "the file's bytes were damaged after it was written; use another copy");
}

Contents parse_image(const unsigned char* data, size_t size, const std::string& name,
                     const std::shared_ptr<void>& owner) {
  if (size < 8)
    throw Error("file is shorter than the 8-byte header length", name, "truncated file");
  uint64_t header_len = read_u64_le(data);
  if (header_len > size - 8) {
    throw Error("header length " + std::to_string(header_len) + " runs past the end of the file (" +
                    std::to_string(size) + " bytes)",
                name, "the file is truncated or not a safetensors file");
  }
  if (header_len > kMaxHeader) throw Error("header is larger than 100 MB", name);
  const char* header_text = reinterpret_cast<const char*>(data + 8);
  nlohmann::json header = nlohmann::json::parse(header_text, header_text + header_len, nullptr,
                                                /*allow_exceptions=*/false);
  if (header.is_discarded()) {
    throw Error("header is not valid JSON", name, "the file is corrupt or not a safetensors file");
  }
  Contents contents;
  const unsigned char* payload = data + 8 + header_len;
  const std::vector<Entry> entries =
      parse_header(header, size - 8 - header_len, name, &contents.metadata);
  verify_checksums(entries, payload, name, &contents.metadata);
  for (const auto& entry : entries) {
    void* start = const_cast<unsigned char*>(payload + entry.begin);
    auto options = at::TensorOptions().dtype(entry.type);
    at::Tensor tensor;
    bool aligned = reinterpret_cast<uintptr_t>(start) % at::elementSize(entry.type) == 0;
    if (owner && aligned) {
      tensor = at::from_blob(
          start, entry.shape, [owner](void*) {}, options);
    } else {
      tensor = at::from_blob(start, entry.shape, options).clone();
    }
    contents.tensors.emplace(entry.name, std::move(tensor));
  }
  return contents;
}

}  // namespace

Contents parse(const void* data, size_t size, const std::string& name) {
  return parse_image(static_cast<const unsigned char*>(data), size, name, nullptr);
}

Contents load(const std::string& path) {
  auto ends_with = [&](const std::string& suffix) {
    return path.size() >= suffix.size() &&
           path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (path.rfind("detectron2://", 0) == 0 || path.find("://") != std::string::npos)
    throw Error("LargeDet does not download weights", path,
                "convert torchvision's ImageNet weights with tools/convert_torchvision.py "
                "(see README) and set MODEL.WEIGHTS to the .safetensors file");
  if (ends_with(".pkl") || ends_with(".pth") || ends_with(".pt"))
    throw Error("LargeDet reads safetensors weights, not pickled ones", path,
                "convert torchvision's weights with tools/convert_torchvision.py; detectron2's "
                ".pkl (MSRA/Caffe2 layout) cannot be read");
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    throw Error(std::string("cannot open: ") + std::strerror(errno), path, "check the path");
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    throw Error("cannot stat file", path);
  }
  auto mapping = std::make_shared<Mapping>();
  mapping->size = static_cast<size_t>(st.st_size);
  if (mapping->size > 0) {
    // MAP_PRIVATE: tensors may be written in place without touching the file.
    mapping->data = ::mmap(nullptr, mapping->size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  }
  ::close(fd);
  if (mapping->size > 0 && mapping->data == MAP_FAILED) throw Error("cannot mmap file", path);
  const auto* bytes = static_cast<const unsigned char*>(mapping->size ? mapping->data : nullptr);
  static const unsigned char kEmpty[1] = {0};
  return parse_image(bytes ? bytes : kEmpty, mapping->size, path, mapping);
}

std::string serialize(const TensorMap& tensors, const Metadata& metadata) {
  nlohmann::json header = nlohmann::json::object();
  Metadata with_checksums = metadata;
  std::vector<at::Tensor> cpu;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    LARGEDET_CHECK(tensor.defined(), "tensor '", name, "' is undefined and cannot be saved");
    at::Tensor t = tensor.detach().to(at::kCPU).contiguous();
    uint64_t bytes = t.numel() * t.element_size();
    header[name] = {{"dtype", dtype_name(t.scalar_type(), name)},
                    {"shape", t.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    with_checksums[kChecksumPrefix + name] =
        crc32_hex(static_cast<const unsigned char*>(t.data_ptr()), bytes);
    offset += bytes;
    cpu.push_back(std::move(t));
  }
  if (!with_checksums.empty()) header["__metadata__"] = with_checksums;
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keeps the payload 8-byte aligned
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((text.size() >> (8 * i)) & 0xff);
  out += text;
  out.reserve(out.size() + offset);
  for (const auto& t : cpu)
    out.append(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
  return out;
}

void save(const std::string& path, const TensorMap& tensors, const Metadata& metadata) {
  write_file_atomic(path, serialize(tensors, metadata));
}

}  // namespace largedet::safetensors
