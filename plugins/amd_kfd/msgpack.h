// A reader for the subset of MessagePack that AMDGPU code-object metadata uses (maps, arrays,
// strings, integers, booleans, nil, floats), enough to read the NT_AMDGPU_METADATA note.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace lathe::amd {

struct MsgValue {
  enum class Kind { Nil, Bool, Int, Float, String, Array, Map } kind = Kind::Nil;
  int64_t i = 0;
  double f = 0;
  std::string s;
  std::vector<MsgValue> items;                         // Array
  std::vector<std::pair<MsgValue, MsgValue>> entries;  // Map

  const MsgValue* find(const std::string& key) const;  // in a map with string keys, or null
  int64_t integer(const std::string& key, int64_t fallback) const;
};

// Throws lathe::Error naming the byte offset when the data is truncated or uses an
// unsupported type.
MsgValue parse_msgpack(const uint8_t* data, size_t size);

}  // namespace lathe::amd
