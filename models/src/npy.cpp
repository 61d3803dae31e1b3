#include "lathe/models/npy.h"

#include <cstring>
#include <fstream>
#include <regex>
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

}  // namespace

Tensor load_npy(const std::string& path, Device* device) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("cannot open " + path + ": the file is missing or unreadable");
  std::stringstream ss;
  ss << f.rdbuf();
  std::string bytes = ss.str();
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
  std::smatch m;
  if (!std::regex_search(header, m, std::regex("'descr':\\s*'([^']*)'"))) throw Error(path + ": header has no descr");
  std::string descr = m[1];
  if (std::regex_search(header, std::regex("'fortran_order':\\s*True")))
    throw Error(path + ": Fortran-ordered arrays are not supported; save with np.ascontiguousarray");
  const NpyType* type = nullptr;
  for (auto& t : kTypes)
    if (descr == t.descr || (descr.size() == 3 && descr[0] == '=' && descr.substr(1) == std::string(t.descr).substr(1))) type = &t;
  if (!type)
    throw Error(path + ": dtype '" + descr + "' is not supported (little-endian bool, uint8, (u)int16, int32, uint32, int64, float16, float32)");
  if (!std::regex_search(header, m, std::regex("'shape':\\s*\\(([^)]*)\\)"))) throw Error(path + ": header has no shape");
  Shape shape;
  std::string dims = m[1];
  static const std::regex number("\\d+");
  for (auto it = std::sregex_iterator(dims.begin(), dims.end(), number); it != std::sregex_iterator(); ++it)
    shape.push_back(std::stoll(it->str()));
  size_t data = start + header_len, want = static_cast<size_t>(numel(shape)) * type->size;
  if (bytes.size() - data < want)
    throw Error(path + " is truncated: shape " + to_string(shape) + " needs " + std::to_string(want) + " data bytes, the file has " +
                std::to_string(bytes.size() - data));
  if (!type->widen16) return Tensor::from_data(bytes.data() + data, shape, type->dtype, device);
  std::vector<int32_t> v(static_cast<size_t>(numel(shape)));
  for (size_t i = 0; i < v.size(); ++i) {
    uint16_t u;
    std::memcpy(&u, bytes.data() + data + 2 * i, 2);
    v[i] = descr == "<i2" ? static_cast<int16_t>(u) : u;
  }
  return Tensor::from_vector(v, shape, DType::Int32, device);
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
