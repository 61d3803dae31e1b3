// NumPy .npy files (format versions 1-3, little-endian, C order): token batches in, logits out.
#pragma once
#include <string>

#include "lathe/tensor.h"

namespace lathe::models {

// Where a .npy file's array lies in its bytes, checked against their size (the header is
// untrusted: every extent and byte count is range-checked).
struct NpyLayout {
  DType dtype;        // in memory
  Shape shape;
  size_t data_offset;
  size_t item_bytes;  // in the file
  bool widen16, signed16;  // (u)int16 in the file, int32 in memory
};
NpyLayout parse_npy(const std::string& bytes, const std::string& path);

// Loads bool, uint8, int32, uint32, int64, float16 and float32 arrays; uint16 and int16
// arrays load as int32. Errors name the file: missing, truncated, Fortran order, big-endian,
// or an unsupported dtype.
Tensor load_npy(const std::string& path, Device* device = nullptr);
// Writes atomically (temporary file, fsync, rename).
void save_npy(const std::string& path, const Tensor& tensor);

}  // namespace lathe::models
