// libFuzzer target: .npy bytes -> parse_npy. Any exception but lathe::Error is a finding.
#include <string>

#include "lathe/error.h"
#include "lathe/models/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    lathe::models::parse_npy(std::string(reinterpret_cast<const char*>(data), size), "fuzz.npy");
  } catch (const lathe::Error&) {
  }
  return 0;
}
