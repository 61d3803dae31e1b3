// libFuzzer target: TOML text -> parse_train_config (every key's type, range and choices).
#include <string>

#include "lathe/error.h"
#include "train/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    lathe::app::parse_train_config(std::string(reinterpret_cast<const char*>(data), size), "fuzz.toml");
  } catch (const lathe::Error&) {
  }
  return 0;
}
