#include "lathe/models/safetensors.h"

#include "lathe/models/atomic_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

namespace lathe::models {
namespace {

std::string sys_error() { return std::strerror(errno); }

// Reads a little-endian u64 regardless of the host's byte order.
uint64_t read_le64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

const char* safetensors_dtype(DType d) {
  switch (d) {
    case DType::Float32: return "F32";
    case DType::Float16: return "F16";
    case DType::BFloat16: return "BF16";
    case DType::Int32: return "I32";
    case DType::Int64: return "I64";
    case DType::UInt32: return "U32";
    case DType::UInt8: return "U8";
    case DType::Bool: return "BOOL";
  }
  return "?";
}

DType dtype_from_safetensors(const std::string& name, const std::string& where) {
  for (DType d : {DType::Float32, DType::Float16, DType::BFloat16, DType::Int32, DType::Int64, DType::UInt32, DType::UInt8, DType::Bool})
    if (name == safetensors_dtype(d)) return d;
  throw Error(where + ": dtype '" + name + "' is not supported (use F32, F16, BF16, I32, I64, U32, U8 or BOOL)");
}

SafetensorsHeader parse_safetensors_header(const unsigned char* bytes, size_t size, const std::string& path) {
  if (size < 8) throw Error(path + " is truncated: " + std::to_string(size) + " bytes, too short for the 8-byte header length");
  SafetensorsHeader h;
  uint64_t header_len = read_le64(bytes);
  if (header_len > size - 8)
    throw Error(path + " is truncated or not a safetensors file: the header claims " + std::to_string(header_len) +
                " bytes but only " + std::to_string(size - 8) + " follow");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes + 8, bytes + 8 + header_len);
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": the header is not valid JSON (" + e.what() + ")");
  }
  if (!header.is_object()) throw Error(path + ": the header is not a JSON object");
  h.data_offset = 8 + header_len;
  const size_t data_size = size - 8 - header_len;
  for (auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) throw Error(path + ": __metadata__ is " + entry.dump().substr(0, 64) + ", not an object of strings");
      for (auto& [k, v] : entry.items())
        if (v.is_string()) h.metadata[k] = v.get<std::string>();
      continue;
    }
    std::string where = path + ": tensor '" + name + "'";
    if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") || !entry.contains("data_offsets"))
      throw Error(where + " lacks dtype, shape or data_offsets");
    if (!entry["dtype"].is_string()) throw Error(where + ": dtype " + entry["dtype"].dump() + " is not a string such as \"F32\"");
    if (!entry["shape"].is_array()) throw Error(where + ": shape " + entry["shape"].dump() + " is not a list of extents");
    SafetensorInfo info{name, dtype_from_safetensors(entry["dtype"].get<std::string>(), where), {}, 0, 0};
    for (auto& s : entry["shape"]) {
      if (!s.is_number_integer() || s.get<int64_t>() < 0) throw Error(where + " has a bad shape " + entry["shape"].dump());
      info.shape.push_back(s.get<int64_t>());
    }
    auto& off = entry["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      throw Error(where + " has bad data_offsets " + off.dump());
    info.begin = off[0].get<size_t>();
    info.end = off[1].get<size_t>();
    size_t want = static_cast<size_t>(checked_mul(numel(info.shape), static_cast<int64_t>(itemsize(info.dtype)), where + ": its size in bytes"));
    if (info.end < info.begin || info.end - info.begin != want)
      throw Error(where + ": data_offsets [" + std::to_string(info.begin) + ", " + std::to_string(info.end) + ") hold " +
                  std::to_string(info.end - info.begin) + " bytes, but shape " + to_string(info.shape) + " of " +
                  safetensors_dtype(info.dtype) + " needs " + std::to_string(want));
    if (info.end > data_size)
      throw Error(where + " ends at byte " + std::to_string(info.end) + " of the data, but the file holds only " +
                  std::to_string(data_size) + " data bytes: the file is truncated");
    h.tensors.push_back(info);
  }
  // Byte ranges must not overlap (the format also forbids holes; overlaps would alias tensors).
  std::vector<std::pair<size_t, size_t>> ranges;
  for (auto& t : h.tensors) ranges.push_back({t.begin, t.end});
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i)
    if (ranges[i].first < ranges[i - 1].second) throw Error(path + ": tensors overlap in the data section at byte " + std::to_string(ranges[i].first));
  return h;
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw Error("cannot open safetensors file " + path + ": " + sys_error());
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    ::close(fd);
    throw Error("cannot stat " + path + ": " + sys_error());
  }
  map_size_ = static_cast<size_t>(st.st_size);
  if (map_size_ < 8) {
    ::close(fd);
    throw Error(path + " is truncated: " + std::to_string(map_size_) + " bytes, too short for the 8-byte header length");
  }
  map_ = mmap(nullptr, map_size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map_ == MAP_FAILED) {
    map_ = nullptr;
    throw Error("cannot map " + path + ": " + sys_error());
  }
  try {
    SafetensorsHeader h = parse_safetensors_header(static_cast<const unsigned char*>(map_), map_size_, path);
    tensors_ = std::move(h.tensors);
    metadata_ = std::move(h.metadata);
    data_ = static_cast<const unsigned char*>(map_) + h.data_offset;
    for (size_t i = 0; i < tensors_.size(); ++i) index_[tensors_[i].name] = i;
  } catch (...) {
    munmap(map_, map_size_);
    map_ = nullptr;
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) munmap(map_, map_size_);
}

const SafetensorInfo& SafetensorsFile::info(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) throw Error(path_ + " has no tensor named '" + name + "'");
  return tensors_[it->second];
}

Tensor SafetensorsFile::load(const std::string& name, Device* device) const {
  const SafetensorInfo& t = info(name);
  return Tensor::from_data(data_ + t.begin, t.shape, t.dtype, device);
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  // The header comes from shapes and dtypes alone; each tensor's bytes are then copied from its
  // device and written one at a time, so the host holds one tensor, never the whole file.
  auto bytes_of = [](const Tensor& t) { return static_cast<size_t>(t.numel()) * itemsize(t.dtype()); };
  nlohmann::ordered_json header;
  if (!metadata.empty()) header["__metadata__"] = metadata;
  size_t offset = 0;
  for (auto& [name, t] : tensors) {
    check(!header.contains(name), "save_safetensors: tensor name '" + name + "' is used twice");
    const size_t bytes = bytes_of(t);
    header[name] = {{"dtype", safetensors_dtype(t.dtype())}, {"shape", t.shape()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // the data section starts 8-byte aligned
  AtomicFile out(path);
  unsigned char len[8];
  uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
  out.write(len, 8);
  out.write(text.data(), text.size());
  for (auto& [name, t] : tensors) {
    std::vector<unsigned char> raw = t.to_bytes();
    check(raw.size() == bytes_of(t), "save_safetensors: tensor '" + name + "' gave " + std::to_string(raw.size()) +
                                         " bytes, its header says " + std::to_string(bytes_of(t)));
    out.write(raw.data(), raw.size());
  }
  out.commit();
}

}  // namespace lathe::models
