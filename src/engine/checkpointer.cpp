#include "largedet/engine/checkpointer.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ATen/ATen.h>
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <functional>
#include <vector>

#include "largedet/core/error.h"
#include "largedet/core/file_io.h"

namespace largedet::engine {
namespace {

constexpr const char* kStatePrefix = "__state__/";
constexpr const char* kPointer = "last_checkpoint";

std::string file_name(int64_t iteration) {
  char name[64];
  std::snprintf(name, sizeof name, "model_%07lld.safetensors", static_cast<long long>(iteration));
  return name;
}

bool is_checkpoint_name(const std::string& name) {
  return name.size() == std::string("model_0000000.safetensors").size() &&
         name.rfind("model_", 0) == 0 && name.compare(name.size() - 12, 12, ".safetensors") == 0;
}

}  // namespace

Checkpointer::Checkpointer(std::string directory, int keep_last)
    : directory_(std::move(directory)), keep_last_(keep_last) {
  if (::mkdir(directory_.c_str(), 0755) != 0 && errno != EEXIST)
    throw Error("cannot create checkpoint directory", directory_, "check permissions");
}

std::string Checkpointer::save(const Checkpoint& checkpoint) const {
  safetensors::TensorMap tensors = checkpoint.model;
  for (const auto& [name, bytes] : checkpoint.state) {
    auto blob = at::empty({static_cast<int64_t>(bytes.size())}, at::kByte);
    std::copy(bytes.begin(), bytes.end(), reinterpret_cast<char*>(blob.data_ptr<uint8_t>()));
    tensors.emplace(kStatePrefix + name, blob);
  }
  safetensors::Metadata metadata = checkpoint.metadata;
  metadata["iteration"] = std::to_string(checkpoint.iteration);
  std::string name = file_name(checkpoint.iteration);
  std::string path = directory_ + "/" + name;
  safetensors::save(path, tensors, metadata);
  write_file_atomic(directory_ + "/" + kPointer, name + "\n");
  prune();
  return path;
}

std::optional<std::string> Checkpointer::last() const {
  std::string pointer = directory_ + "/" + kPointer;
  if (::access(pointer.c_str(), F_OK) != 0) return std::nullopt;
  std::string name = read_file(pointer);
  while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
  if (!is_checkpoint_name(name))
    throw Error("last_checkpoint names '" + name + "', not a checkpoint file", pointer,
                "delete it to start over, or restore it");
  return directory_ + "/" + name;
}

std::vector<std::string> Checkpointer::list() const {
  std::vector<std::string> names;
  if (DIR* dir = ::opendir(directory_.c_str())) {
    while (dirent* entry = ::readdir(dir))
      if (is_checkpoint_name(entry->d_name)) names.push_back(entry->d_name);
    ::closedir(dir);
  }
  // Zero-padded iterations sort by number.
  std::sort(names.begin(), names.end(), std::greater<>());
  for (auto& name : names) name = directory_ + "/" + name;
  return names;
}

std::optional<std::string> Checkpointer::newest_intact(std::vector<std::string>* skipped) const {
  for (const auto& path : list()) {
    try {
      load(path);
      return path;
    } catch (const Error& e) {
      skipped->push_back(path + ": " + e.what());
    }
  }
  return std::nullopt;
}

std::string Checkpointer::set_aside() const {
  char stamp[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::gmtime(&now));
  std::string aside = directory_ + "/superseded_" + stamp;
  for (int n = 2; ::mkdir(aside.c_str(), 0755) != 0; ++n) {
    if (errno != EEXIST)
      throw Error(std::string("cannot create directory: ") + std::strerror(errno), aside);
    aside = directory_ + "/superseded_" + stamp + "_" + std::to_string(n);
  }
  std::vector<std::string> paths = list();
  for (const char* name : {kPointer, "model_final.safetensors", "metrics.jsonl"})
    if (::access((directory_ + "/" + name).c_str(), F_OK) == 0)
      paths.push_back(directory_ + "/" + name);
  // TensorBoard reads every event file of a directory: the old run's would mix with the new.
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(directory_, ec))
    if (entry.path().filename().string().rfind("events.out.tfevents.", 0) == 0)
      paths.push_back(entry.path().string());
  for (const auto& path : paths) {
    const std::string target = aside + path.substr(path.find_last_of('/'));
    if (::rename(path.c_str(), target.c_str()) != 0)
      throw Error(std::string("cannot move a checkpoint aside: ") + std::strerror(errno), path);
  }
  return aside;
}

Checkpoint Checkpointer::load(const std::string& path) {
  safetensors::Contents contents = safetensors::load(path);
  Checkpoint checkpoint;
  auto it = contents.metadata.find("iteration");
  if (it == contents.metadata.end())
    throw Error("not a LargeDet checkpoint (no iteration in its metadata)", path);
  checkpoint.iteration = std::stoll(it->second);
  contents.metadata.erase(it);
  checkpoint.metadata = std::move(contents.metadata);
  const std::string prefix = kStatePrefix;
  for (auto& [name, tensor] : contents.tensors) {
    if (name.rfind(prefix, 0) == 0) {
      const char* bytes = reinterpret_cast<const char*>(tensor.data_ptr<uint8_t>());
      checkpoint.state.emplace(name.substr(prefix.size()), std::string(bytes, tensor.numel()));
    } else {
      checkpoint.model.emplace(name, tensor);
    }
  }
  return checkpoint;
}

std::string checkpoint_path(const std::string& directory, int64_t iteration) {
  return directory + "/" + file_name(iteration);
}

int64_t iteration_of(const std::string& path) {
  const std::string name = path.substr(path.find_last_of('/') + 1);
  if (!is_checkpoint_name(name)) throw Error("not a checkpoint file name", path);
  return std::stoll(name.substr(6, 7));
}

safetensors::TensorMap load_model_tensors(const std::string& path) {
  safetensors::TensorMap tensors = safetensors::load(path).tensors;
  for (auto it = tensors.begin(); it != tensors.end();)
    it = it->first.rfind(kStatePrefix, 0) == 0 ? tensors.erase(it) : std::next(it);
  // NaN weights would surface as a shape error deep in post-processing (no box survives).
  std::vector<std::string> non_finite;
  for (const auto& [name, tensor] : tensors)
    if (at::isFloatingType(tensor.scalar_type()) && !at::isfinite(tensor).all().item<bool>())
      non_finite.push_back(name);
  if (!non_finite.empty()) {
    throw Error(std::to_string(non_finite.size()) +
                    " weight tensor(s) hold NaN or inf: " + name_list(non_finite),
                path,
                "the run that wrote them diverged; evaluate an earlier checkpoint, and see "
                "docs/engine.md on the non-finite guard");
  }
  return tensors;
}

void Checkpointer::prune() const {
  if (keep_last_ <= 0) return;
  const std::vector<std::string> paths = list();
  for (size_t i = keep_last_; i < paths.size(); ++i) ::unlink(paths[i].c_str());
}

}  // namespace largedet::engine
