// libFuzzer target, structure-aware: the input is a safetensors JSON header; the target builds
// the file around it (length prefix, header, 256 data bytes) so that mutations stay inside the
// JSON and reach the checks of names, dtypes, shapes and offsets. Seeds: real headers.
#include <cstring>
#include <string>
#include <vector>

#include "lathe/error.h"
#include "lathe/models/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<unsigned char> file(8 + size + 256, 0);
  for (int i = 0; i < 8; ++i) file[i] = static_cast<unsigned char>(static_cast<uint64_t>(size) >> (8 * i));
  if (size) std::memcpy(file.data() + 8, data, size);
  try {
    lathe::models::parse_safetensors_header(file.data(), file.size(), "fuzz.safetensors");
  } catch (const lathe::Error&) {
  }
  return 0;
}
