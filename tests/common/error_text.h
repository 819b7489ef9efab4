// The message of the largedet::Error that `work` throws, for tests of what an error says; a test
// failure (and "") when it throws none. Shared by every test binary.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "largedet/core/error.h"

namespace largedet::test {

inline std::string error_of(const std::function<void()>& work) {
  try {
    work();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no largedet::Error thrown";
  return "";
}

}  // namespace largedet::test
