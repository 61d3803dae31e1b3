#include "lathe/models/npy.h"

#include <cstring>
#include <fstream>
#include <sstream>

#include "lathe/models/atomic_file.h"

namespace lathe::models {
namespace {

struct NpyType {
  const char* descr;
  DType dtype;
  size_t size;   // bytes per element in the file
  bool widen16;  // (u)int16 stored, int32 in memory
};
const NpyType kTypes[] = {{"|b1", DType::Bool, 1, false},   {"|u1", DType::UInt8, 1, false},  {"<i4", DType::Int32, 4, false},
                          {"<u4", DType::UInt32, 4, false}, {"<i8", DType::Int64, 8, false},  {"<f2", DType::Float16, 2, false},
                          {"<f4", DType::Float32, 4, false}, {"<u2", DType::Int32, 2, true},   {"<i2", DType::Int32, 2, true}};

// The text after `'key':` in a .npy header dict (whitespace skipped), or npos. The header is
// untrusted input: plain scans only, no backtracking regex.
size_t value_of(const std::string& header, const std::string& key) {
  size_t at = header.find("'" + key + "'");
  if (at == std::string::npos) return at;
  at = header.find_first_not_of(" \t", at + key.size() + 2);
  if (at == std::string::npos || header[at] != ':') return std::string::npos;
  at = header.find_first_not_of(" \t", at + 1);
  return at;
}

// The extents in the header's shape tuple "(a, b, )", each checked for range.
Shape parse_shape(const std::string& header, const std::string& path) {
  size_t at = value_of(header, "shape");
  if (at == std::string::npos || header[at] != '(') throw Error(path + ": header has no shape tuple");
  size_t end = header.find(')', at);
  if (end == std::string::npos) throw Error(path + ": header's shape tuple is not closed");
  Shape shape;
  for (size_t i = at + 1; i < end;) {
    if (header[i] == ' ' || header[i] == ',') { ++i; continue; }
    if (header[i] < '0' || header[i] > '9') throw Error(path + ": header's shape holds '" + header.substr(i, 1) + "', not a number");
    int64_t v = 0;
    for (; i < end && header[i] >= '0' && header[i] <= '9'; ++i)
      if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, header[i] - '0', &v))
        throw Error(path + ": an extent of the header's shape overflows a 64-bit count");
    shape.push_back(v);
  }
  try {
    numel(shape);  // throws when the element count overflows
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
  return shape;
}

}  // namespace

NpyLayout parse_npy(const std::string& bytes, const std::string& path) {
  if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0) throw Error(path + " is not a .npy file (bad magic)");
  int major = static_cast<unsigned char>(bytes[6]);
  size_t header_len, start;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
    start = 10;
  } else {
    if (bytes.size() < 12) throw Error(path + " is truncated");
    header_len = 0;
    for (int i = 3; i >= 0; --i) header_len = (header_len << 8) | static_cast<unsigned char>(bytes[8 + i]);
    start = 12;
  }
  if (start + header_len > bytes.size()) throw Error(path + " is truncated inside its header");
  std::string header = bytes.substr(start, header_len);
  size_t descr_at = value_of(header, "descr");
  size_t descr_end = descr_at == std::string::npos || header[descr_at] != '\'' ? std::string::npos : header.find('\'', descr_at + 1);
  if (descr_end == std::string::npos) throw Error(path + ": header has no descr; is it a .npy file written by NumPy?");
  std::string descr = header.substr(descr_at + 1, descr_end - descr_at - 1);
  size_t fortran_at = value_of(header, "fortran_order");
  if (fortran_at != std::string::npos && header.compare(fortran_at, 4, "True") == 0)
    throw Error(path + ": Fortran-ordered arrays are not supported; save with np.ascontiguousarray");
  const NpyType* type = nullptr;
  for (auto& t : kTypes)
    if (descr == t.descr || (descr.size() == 3 && descr[0] == '=' && descr.substr(1) == std::string(t.descr).substr(1))) type = &t;
  if (!type)
    throw Error(path + ": dtype '" + descr.substr(0, 32) + "' is not supported (little-endian bool, uint8, (u)int16, int32, uint32, int64, float16, float32)");
  NpyLayout layout{type->dtype, parse_shape(header, path), start + header_len, type->size, type->widen16, descr == "<i2"};
  size_t want = static_cast<size_t>(checked_mul(numel(layout.shape), static_cast<int64_t>(type->size), path + ": the data's size in bytes"));
  if (bytes.size() - layout.data_offset < want)
    throw Error(path + " is truncated: shape " + to_string(layout.shape) + " needs " + std::to_string(want) + " data bytes, the file has " +
                std::to_string(bytes.size() - layout.data_offset));
  return layout;
}

Tensor load_npy(const std::string& path, Device* device) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("cannot open " + path + ": the file is missing or unreadable");
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string bytes = ss.str();
  const NpyLayout l = parse_npy(bytes, path);
  if (!l.widen16) return Tensor::from_data(bytes.data() + l.data_offset, l.shape, l.dtype, device);
  std::vector<int32_t> v(static_cast<size_t>(numel(l.shape)));
  for (size_t i = 0; i < v.size(); ++i) {
    uint16_t u;
    std::memcpy(&u, bytes.data() + l.data_offset + 2 * i, 2);
    v[i] = l.signed16 ? static_cast<int16_t>(u) : u;
  }
  return Tensor::from_vector(v, l.shape, DType::Int32, device);
}

void save_npy(const std::string& path, const Tensor& t) {
  const char* descr = nullptr;
  for (auto& k : kTypes)
    if (k.dtype == t.dtype() && !k.widen16) descr = k.descr;
  check(descr != nullptr, std::string("save_npy: cannot store ") + dtype_name(t.dtype()) + " in .npy; cast to float32");
  std::string shape = "(";
  for (size_t i = 0; i < t.ndim(); ++i) shape += std::to_string(t.shape()[i]) + (t.ndim() == 1 || i + 1 < t.ndim() ? "," : "");
  shape += ")";
  std::string header = "{'descr': '" + std::string(descr) + "', 'fortran_order': False, 'shape': " + shape + ", }";
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::string prefix = "\x93NUMPY";
  prefix += '\x01';
  prefix += '\x00';
  prefix += static_cast<char>(header.size() & 0xff);
  prefix += static_cast<char>(header.size() >> 8);
  std::vector<unsigned char> raw = t.to_bytes();
  AtomicFile out(path);
  out.write(prefix.data(), prefix.size());
  out.write(header.data(), header.size());
  out.write(raw.data(), raw.size());
  out.commit();
}

}  // namespace lathe::models
