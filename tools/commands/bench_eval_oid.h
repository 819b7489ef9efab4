// `largedet bench eval --type oid`: OpenImages evaluation of a challenge-sized synthetic
// validation set, timed and measured in a child process.
#pragma once

#include <cstdint>
#include <string>

namespace largedet::tools {

struct OidBenchOptions {
  int images = 41620;  // the challenge-2019 validation split
  int classes = 500;
  int detections = 100;  // per image
  int threads = 0;
  uint32_t seed = 1;
  std::string workdir;
};

void bench_eval_openimages(const OidBenchOptions& options);

}  // namespace largedet::tools
