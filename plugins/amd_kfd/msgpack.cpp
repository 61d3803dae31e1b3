#include "msgpack.h"

#include <cstring>

#include "lathe/error.h"

namespace lathe::amd {
namespace {

class Reader {
 public:
  Reader(const uint8_t* d, size_t n) : d_(d), n_(n) {}

  MsgValue value() {
    uint8_t t = byte();
    MsgValue v;
    if (t <= 0x7f) return integer(t);
    if (t >= 0xe0) return integer(static_cast<int8_t>(t));
    if ((t & 0xf0) == 0x80) return map(t & 0x0f);
    if ((t & 0xf0) == 0x90) return array(t & 0x0f);
    if ((t & 0xe0) == 0xa0) return string(t & 0x1f);
    switch (t) {
      case 0xc0: return v;
      case 0xc2: case 0xc3: v.kind = MsgValue::Kind::Bool; v.i = t == 0xc3; return v;
      case 0xca: { uint32_t b = static_cast<uint32_t>(be(4)); float f; std::memcpy(&f, &b, 4); v.kind = MsgValue::Kind::Float; v.f = f; return v; }
      case 0xcb: { uint64_t b = be(8); double f; std::memcpy(&f, &b, 8); v.kind = MsgValue::Kind::Float; v.f = f; return v; }
      case 0xcc: return integer(static_cast<int64_t>(be(1)));
      case 0xcd: return integer(static_cast<int64_t>(be(2)));
      case 0xce: return integer(static_cast<int64_t>(be(4)));
      case 0xcf: return integer(static_cast<int64_t>(be(8)));
      case 0xd0: return integer(static_cast<int8_t>(be(1)));
      case 0xd1: return integer(static_cast<int16_t>(be(2)));
      case 0xd2: return integer(static_cast<int32_t>(be(4)));
      case 0xd3: return integer(static_cast<int64_t>(be(8)));
      case 0xd9: return string(be(1));
      case 0xda: return string(be(2));
      case 0xdb: return string(be(4));
      case 0xdc: return array(be(2));
      case 0xdd: return array(be(4));
      case 0xde: return map(be(2));
      case 0xdf: return map(be(4));
      default: throw Error("amd_kfd: code-object metadata: unsupported MessagePack type 0x" + hex(t) + " at byte " + std::to_string(p_ - 1));
    }
  }

 private:
  static std::string hex(uint8_t t) {
    const char* h = "0123456789abcdef";
    return {h[t >> 4], h[t & 15]};
  }
  void need(size_t k) {
    if (p_ + k > n_) throw Error("amd_kfd: code-object metadata is truncated at byte " + std::to_string(p_));
  }
  uint8_t byte() { need(1); return d_[p_++]; }
  uint64_t be(int k) {
    need(k);
    uint64_t v = 0;
    for (int i = 0; i < k; ++i) v = v << 8 | d_[p_++];
    return v;
  }
  static MsgValue integer(int64_t i) {
    MsgValue v;
    v.kind = MsgValue::Kind::Int;
    v.i = i;
    return v;
  }
  MsgValue string(uint64_t len) {
    need(len);
    MsgValue v;
    v.kind = MsgValue::Kind::String;
    v.s.assign(reinterpret_cast<const char*>(d_ + p_), len);
    p_ += len;
    return v;
  }
  MsgValue array(uint64_t count) {
    MsgValue v;
    v.kind = MsgValue::Kind::Array;
    for (uint64_t i = 0; i < count; ++i) v.items.push_back(value());
    return v;
  }
  MsgValue map(uint64_t count) {
    MsgValue v;
    v.kind = MsgValue::Kind::Map;
    for (uint64_t i = 0; i < count; ++i) {
      MsgValue k = value();
      v.entries.emplace_back(std::move(k), value());
    }
    return v;
  }
  const uint8_t* d_;
  size_t n_, p_ = 0;
};

}  // namespace

const MsgValue* MsgValue::find(const std::string& key) const {
  for (auto& [k, v] : entries)
    if (k.kind == Kind::String && k.s == key) return &v;
  return nullptr;
}

int64_t MsgValue::integer(const std::string& key, int64_t fallback) const {
  const MsgValue* v = find(key);
  return v && (v->kind == Kind::Int || v->kind == Kind::Bool) ? v->i : fallback;
}

MsgValue parse_msgpack(const uint8_t* data, size_t size) { return Reader(data, size).value(); }

}  // namespace lathe::amd
