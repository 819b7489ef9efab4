// largedet::Error: the one exception type for bad input and misuse. It says what went wrong, where
// (file:line of the input, config key, image id, tensor name) and what to do about it.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace largedet {

class Error : public std::runtime_error {
 public:
  Error(std::string what, std::string where = "", std::string hint = "");

  const std::string& message() const { return message_; }
  const std::string& where() const { return where_; }
  const std::string& hint() const { return hint_; }

 private:
  std::string message_, where_, hint_;
};

// "a, b, c, d, e and 7 more": the names an error message quotes from a long list.
std::string name_list(const std::vector<std::string>& names, size_t shown = 5);

namespace detail {
template <typename... Args>
std::string concat(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}
}  // namespace detail

}  // namespace largedet

// Throws largedet::Error built from the streamed pieces when `cond` is false.
#define LARGEDET_CHECK(cond, ...)                                                  \
  do {                                                                             \
    if (!(cond)) throw ::largedet::Error(::largedet::detail::concat(__VA_ARGS__)); \
  } while (0)
