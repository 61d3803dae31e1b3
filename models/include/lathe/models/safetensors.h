// The safetensors format: an 8-byte little-endian header length, a JSON header naming each
// tensor's dtype, shape and byte range, then the raw data. The reader memory-maps the file and
// validates the header against the file before any tensor is touched; the writer is atomic.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "lathe/tensor.h"

namespace lathe::models {

struct SafetensorInfo {
  std::string name;
  DType dtype;
  Shape shape;
  size_t begin, end;  // byte offsets into the data section
};

// A safetensors file's header parsed from its bytes and checked against their size: the
// tensors (byte ranges inside the data section, not overlapping), the metadata, and where the
// data section starts. Throws lathe::Error naming `path` and what is wrong.
struct SafetensorsHeader {
  std::vector<SafetensorInfo> tensors;
  std::map<std::string, std::string> metadata;
  size_t data_offset = 0;
};
SafetensorsHeader parse_safetensors_header(const unsigned char* bytes, size_t size, const std::string& path);

class SafetensorsFile {
 public:
  // Throws lathe::Error naming the file and what is wrong: missing, truncated, a header that
  // is not JSON, an unknown dtype, offsets that disagree with the shape or leave the file.
  explicit SafetensorsFile(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::vector<SafetensorInfo>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool contains(const std::string& name) const { return index_.count(name) > 0; }
  const SafetensorInfo& info(const std::string& name) const;  // throws naming the file and tensor
  // Copies one tensor to a device, in its stored dtype.
  Tensor load(const std::string& name, Device* device = nullptr) const;

 private:
  std::string path_;
  std::vector<SafetensorInfo> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
  const unsigned char* data_ = nullptr;  // start of the data section inside the mapping
  void* map_ = nullptr;
  size_t map_size_ = 0;
};

// Writes tensors (realized and read back to the host) to `path` atomically: a temporary file
// in the same folder, fsync, then rename over the target.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// "F32", "F16", "BF16", "I32", "I64", "U8", "BOOL", "U32" <-> DType
const char* safetensors_dtype(DType dtype);
DType dtype_from_safetensors(const std::string& name, const std::string& where);

}  // namespace lathe::models
