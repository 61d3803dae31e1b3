// libFuzzer target: .bin token file bytes (llm.c header or headerless uint16) -> parse_token_bin.
#include <string>

#include "lathe/error.h"
#include "lathe/models/data.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    lathe::models::parse_token_bin(std::string(reinterpret_cast<const char*>(data), size), "fuzz.bin");
  } catch (const lathe::Error&) {
  }
  return 0;
}
