// Small file helpers shared by every layer that writes results.
#pragma once

#include <cstdint>
#include <string>

namespace largedet {

// Writes `bytes` to `path` atomically: a temporary file beside it, fsync, rename, fsync of the
// directory. A crash at any point leaves either the old file or the new one, never a torn one.
void write_file_atomic(const std::string& path, const std::string& bytes);
// Every input read whole (recipes, annotations, results, CSVs, images) must be a regular file of at
// most max_input_bytes(): a FIFO would block the reader forever, /dev/zero would fill the memory,
// a directory reads as garbage. Throws largedet::Error naming the path and what it is otherwise;
// returns the file's size. `what` names the input in the error ("the recipe").
int64_t check_input_file(const std::string& path, const std::string& what = "input");
// The bound: 16 GiB (OpenImages' box CSVs are ~2 GB), or LARGEDET_MAX_INPUT_BYTES.
int64_t max_input_bytes();
// Reads a whole file (check_input_file first); throws largedet::Error naming the path when it
// cannot.
std::string read_file(const std::string& path);
bool is_directory(const std::string& path);
// `path` and its missing parents created; throws largedet::Error ("cannot create `what`: why")
// when that fails or a file stands in its place.
void make_directories(const std::string& path, const std::string& what);

struct RemovedFiles {
  int64_t count = 0;
  int64_t bytes = 0;
};
// Deletes the temporary files that write_file_atomic left in `directory` when its writer was
// killed mid-write (NAME.tmp.PID whose process is gone). Temporaries of other live processes stay;
// call it before this process writes there, since one bearing its own (reused) pid counts as stale.
RemovedFiles remove_stale_temporaries(const std::string& directory);

}  // namespace largedet
