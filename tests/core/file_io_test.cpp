// Inputs read whole must be regular files within the byte bound (check_input_file): a FIFO would
// block forever, a device would be read without end, a directory reads as garbage.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "common/error_text.h"
#include "largedet/core/error.h"
#include "largedet/core/file_io.h"

namespace {

using largedet::test::error_of;

struct TempDir {
  std::string path;
  TempDir() {
    char templ[] = "/tmp/largedet_file_io_XXXXXX";
    path = ::mkdtemp(templ);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

TEST(FileIo, InputsMustBeRegularFiles) {
  TempDir dir;
  const std::string fifo = dir.path + "/recipe.yaml";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::string what = error_of([&] { largedet::check_input_file(fifo, "the recipe"); });
  EXPECT_NE(what.find("the recipe is a FIFO, not a regular file"), std::string::npos) << what;
  EXPECT_NE(what.find(fifo), std::string::npos) << what;
  // read_file refuses it too, instead of blocking in open().
  what = error_of([&] { largedet::read_file(fifo); });
  EXPECT_NE(what.find("a FIFO"), std::string::npos) << what;
  what = error_of([&] { largedet::read_file("/dev/zero"); });
  EXPECT_NE(what.find("a character device"), std::string::npos) << what;
  what = error_of([&] { largedet::read_file(dir.path); });
  EXPECT_NE(what.find("is a directory"), std::string::npos) << what;
  what = error_of([&] { largedet::read_file(dir.path + "/missing.json"); });
  EXPECT_NE(what.find("No such file"), std::string::npos) << what;
}

TEST(FileIo, MakeDirectoriesCreatesParentsAndRefusesAFileInTheWay) {
  TempDir dir;
  largedet::make_directories(dir.path + "/a/b", "the output directory");
  EXPECT_TRUE(largedet::is_directory(dir.path + "/a/b"));
  largedet::make_directories(dir.path + "/a/b", "the output directory");  // already there
  std::ofstream(dir.path + "/file") << "x";
  std::string what =
      error_of([&] { largedet::make_directories(dir.path + "/file", "the output directory"); });
  EXPECT_NE(what.find("cannot create the output directory"), std::string::npos) << what;
  EXPECT_NE(what.find(dir.path + "/file"), std::string::npos) << what;
  what =
      error_of([&] { largedet::make_directories(dir.path + "/file/sub", "the output directory"); });
  EXPECT_NE(what.find("cannot create the output directory: "), std::string::npos) << what;
}

TEST(FileIo, InputsOverTheByteBoundAreRefusedWithTheKnob) {
  TempDir dir;
  const std::string file = dir.path + "/big.json";
  std::ofstream(file) << std::string(1000, ' ');
  EXPECT_EQ(largedet::read_file(file).size(), 1000u);
  ::setenv("LARGEDET_MAX_INPUT_BYTES", "999", 1);
  std::string what = error_of([&] { largedet::read_file(file); });
  EXPECT_NE(what.find("1000 bytes, over the limit of 999"), std::string::npos) << what;
  EXPECT_NE(what.find("LARGEDET_MAX_INPUT_BYTES"), std::string::npos) << what;
  ::setenv("LARGEDET_MAX_INPUT_BYTES", "-5", 1);
  what = error_of([&] { largedet::read_file(file); });
  EXPECT_NE(what.find("give a positive number of bytes"), std::string::npos) << what;
  ::unsetenv("LARGEDET_MAX_INPUT_BYTES");
  EXPECT_EQ(largedet::max_input_bytes(), int64_t{16} << 30);
}

}  // namespace
