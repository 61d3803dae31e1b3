// libFuzzer target, structure-aware by its seeds and dictionary: config.json text -> parse_llama_config.
#include <string>

#include "lathe/error.h"
#include "lathe/models/llama_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    lathe::models::parse_llama_config(std::string(reinterpret_cast<const char*>(data), size), "fuzz/config.json");
  } catch (const lathe::Error&) {
  }
  return 0;
}
