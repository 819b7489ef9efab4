#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "largedet/core/error.h"
#include "largedet/core/file_io.h"
#include "largedet/tensor/safetensors.h"

namespace largedet::safetensors {
namespace {

std::string header_file(const std::string& header, const std::string& payload = "") {
  std::string out(8, '\0');
  uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  return out + header + payload;
}

std::string error_of(const std::string& image) {
  try {
    parse(image.data(), image.size(), "test.safetensors");
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no largedet::Error thrown";
  return "";
}

TEST(Safetensors, RoundTripsEveryDtypeThroughAFile) {
  TensorMap tensors{
      {"f32", torch::randn({3, 4})},
      {"f64", torch::randn({2}, torch::kDouble)},
      {"f16", torch::randn({5}).to(torch::kHalf)},
      {"bf16", torch::randn({2, 2}).to(torch::kBFloat16)},
      {"i64", torch::arange(7)},
      {"i32", torch::arange(3, torch::kInt)},
      {"u8", torch::randint(0, 255, {9}, torch::kByte)},
      {"bool", torch::tensor({true, false})},
      {"scalar", torch::tensor(3.5f)},
      {"empty", torch::zeros({0, 3})},
      {"strided", torch::randn({4, 4}).t()},
  };
  auto path =
      (std::filesystem::temp_directory_path() / "largedet_st_roundtrip.safetensors").string();
  save(path, tensors, {{"format", "pt"}});
  Contents loaded = load(path);
  ASSERT_EQ(loaded.tensors.size(), tensors.size());
  EXPECT_EQ(loaded.metadata.at("format"), "pt");
  EXPECT_EQ(loaded.metadata.size(), 1u);  // the checksums are verified and dropped
  for (const auto& [name, t] : tensors) {
    const auto& got = loaded.tensors.at(name);
    EXPECT_EQ(got.scalar_type(), t.scalar_type()) << name;
    EXPECT_TRUE(torch::equal(got, t)) << name;
  }
  // Copy-on-write: writing a loaded tensor leaves the file as it was.
  loaded.tensors.at("f32").fill_(0);
  EXPECT_TRUE(torch::equal(load(path).tensors.at("f32"), tensors.at("f32")));
  std::filesystem::remove(path);
}

TEST(Safetensors, ReadsTheReferenceLayout) {
  // Written by hand as the reference implementation lays it out: little-endian header length,
  // JSON header, raw little-endian data.
  float values[2] = {1.5f, -2.0f};
  std::string payload(reinterpret_cast<const char*>(values), 8);
  auto image = header_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", payload);
  Contents c = parse(image.data(), image.size(), "x");
  EXPECT_TRUE(torch::equal(c.tensors.at("a"), torch::tensor({1.5f, -2.0f})));
}

TEST(Safetensors, HostileFilesGiveErrorsNotCrashes) {
  std::string tiny = "abc";
  EXPECT_NE(error_of(tiny).find("shorter"), std::string::npos);
  std::string past_end(8, '\0');
  uint64_t huge = 1ull << 62;
  std::memcpy(past_end.data(), &huge, 8);
  EXPECT_NE(error_of(past_end + "{}").find("runs past the end"), std::string::npos);
  EXPECT_NE(error_of(header_file("{not json")).find("not valid JSON"), std::string::npos);
  EXPECT_NE(error_of(header_file("[1,2]")).find("not a JSON object"), std::string::npos);
  EXPECT_NE(error_of(header_file(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})",
                                 std::string(8, '\0')))
                .find("outside"),
            std::string::npos);
  EXPECT_NE(error_of(header_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})",
                                 std::string(8, '\0')))
                .find("need 12"),
            std::string::npos);
  EXPECT_NE(error_of(header_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                 R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                                 std::string(12, '\0')))
                .find("overlap"),
            std::string::npos);
  EXPECT_NE(error_of(header_file(R"({"a":{"dtype":"Q7","shape":[1],"data_offsets":[0,1]}})", "x"))
                .find("unsupported dtype"),
            std::string::npos);
  EXPECT_NE(error_of(header_file(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})",
                                 std::string(4, '\0')))
                .find("shape"),
            std::string::npos);
  EXPECT_NE(error_of(header_file(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,16],)"
                                 R"("data_offsets":[0,4]}})",
                                 std::string(4, '\0')))
                .find("too large"),
            std::string::npos);
  EXPECT_NE(error_of(header_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})",
                                 std::string(8, '\0')))
                .find("outside"),
            std::string::npos);
  EXPECT_NE(error_of(header_file(R"({"a":{"dtype":"F32"}})")).find("data_offsets"),
            std::string::npos);
}

TEST(Safetensors, EveryTruncationOfAValidFileIsAnError) {
  std::string image = serialize({{"w", torch::randn({4, 4})}, {"b", torch::randn({4})}});
  for (size_t cut = 0; cut < image.size(); ++cut) {
    std::string prefix = image.substr(0, cut);
    EXPECT_THROW(parse(prefix.data(), prefix.size(), "cut"), Error) << cut;
  }
}

TEST(Safetensors, EveryDamagedPayloadByteIsNamedByItsTensor) {
  std::string image = serialize({{"w", torch::randn({4, 4})}, {"b", torch::randn({4})}});
  const size_t payload = image.size() - (16 + 4) * sizeof(float);
  for (size_t at = payload; at < image.size(); ++at) {
    std::string damaged = image;
    damaged[at] = static_cast<char>(damaged[at] ^ 0x10);
    // serialize() lays tensors out in name order: b, then w.
    const std::string tensor = at < payload + 4 * sizeof(float) ? "(b)" : "(w)";
    const std::string error = error_of(damaged);
    EXPECT_NE(error.find("checksum mismatch in 1 tensor " + tensor), std::string::npos)
        << at << ": " << error;
  }
}

TEST(Safetensors, MissingFileNamesThePath) {
  try {
    load("/nonexistent/weights.safetensors");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/weights.safetensors"), std::string::npos);
  }
}

TEST(FileIo, AtomicWriteReplacesWholeFile) {
  auto path = (std::filesystem::temp_directory_path() / "largedet_atomic.txt").string();
  write_file_atomic(path, "first");
  write_file_atomic(path, "second version");
  EXPECT_EQ(read_file(path), "second version");
  std::filesystem::remove(path);
  EXPECT_THROW(write_file_atomic("/nonexistent_dir/x", "y"), Error);
}

TEST(FileIo, StaleTemporariesOfDeadWritersAreRemoved) {
  auto dir = (std::filesystem::temp_directory_path() / "largedet_stale_tmp").string();
  std::filesystem::remove_all(dir);
  std::filesystem::create_directory(dir);
  // pid_max is at most 2^22: no process has this pid.
  const std::string dead = dir + "/model_0000010.safetensors.tmp.999999999";
  const std::string alive = dir + "/last_checkpoint.tmp." + std::to_string(::getppid());
  const std::string mine = dir + "/metrics.json.tmp." + std::to_string(::getpid());
  const std::string unrelated = dir + "/notes.tmp.txt";
  for (const auto& path : {dead, alive, mine, unrelated}) std::ofstream(path) << "12345";
  const RemovedFiles removed = remove_stale_temporaries(dir);
  EXPECT_EQ(removed.count, 2);
  EXPECT_EQ(removed.bytes, 10);
  EXPECT_FALSE(std::filesystem::exists(dead));
  EXPECT_FALSE(std::filesystem::exists(mine));
  EXPECT_TRUE(std::filesystem::exists(alive));
  EXPECT_TRUE(std::filesystem::exists(unrelated));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace largedet::safetensors
