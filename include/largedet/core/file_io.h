// Small file helpers shared by every layer that writes results.
#pragma once

#include <string>

namespace largedet {

// Writes `bytes` to `path` atomically: a temporary file beside it, fsync, rename, fsync of the
// directory. A crash at any point leaves either the old file or the new one, never a torn one.
void write_file_atomic(const std::string& path, const std::string& bytes);
// Reads a whole file; throws largedet::Error naming the path when it cannot.
std::string read_file(const std::string& path);

}  // namespace largedet
