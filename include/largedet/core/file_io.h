// Small file helpers shared by every layer that writes results.
#pragma once

#include <cstdint>
#include <string>

namespace largedet {

// Writes `bytes` to `path` atomically: a temporary file beside it, fsync, rename, fsync of the
// directory. A crash at any point leaves either the old file or the new one, never a torn one.
void write_file_atomic(const std::string& path, const std::string& bytes);
// Reads a whole file; throws largedet::Error naming the path when it cannot.
std::string read_file(const std::string& path);
bool is_directory(const std::string& path);

struct RemovedFiles {
  int64_t count = 0;
  int64_t bytes = 0;
};
// Deletes the temporary files that write_file_atomic left in `directory` when its writer was
// killed mid-write (NAME.tmp.PID whose process is gone). Temporaries of other live processes stay;
// call it before this process writes there, since one bearing its own (reused) pid counts as stale.
RemovedFiles remove_stale_temporaries(const std::string& directory);

}  // namespace largedet
