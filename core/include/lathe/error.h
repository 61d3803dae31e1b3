// lathe::Error: every failure the user can cause or meet says what failed, where, and how to fix it.
#pragma once
#include <stdexcept>
#include <string>
#include <type_traits>

namespace lathe {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Raised by a backend when an allocation does not fit in device memory.
class OutOfMemoryError : public Error {
 public:
  using Error::Error;
};

// Raised when a plugin cannot be loaded or used.
class PluginError : public Error {
 public:
  using Error::Error;
};

// Throws lathe::Error with `message` when `condition` is false. Cheap enough for argument checks.
inline void check(bool condition, const std::string& message) {
  if (!condition) throw Error(message);
}
// The same with a message built only on failure, for checks on hot paths (every graph node,
// every launch): building the strings up front cost a third of an eager op's host time.
template <class MakeMessage>
  requires std::is_invocable_v<MakeMessage>
void check(bool condition, MakeMessage&& make_message) {
  if (!condition) throw Error(std::string(make_message()));
}

}  // namespace lathe
