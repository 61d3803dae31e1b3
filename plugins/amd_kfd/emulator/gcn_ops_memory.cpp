// Memory instructions: scalar loads (SMEM), the work-group's LDS (DS) and global memory (GLOBAL
// and FLAT). Every global access is checked against the live GPU allocations: outside them is
// a page fault. LDS accesses past the group's allocation read 0 and drop writes, as on a GPU.
#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <string>

#include "gcn_program.h"
#include "gcn_valu.h"

namespace lathe::amd::emu {
namespace {

[[noreturn]] void page_fault(const Inst& in, int lane, uint64_t va, uint64_t bytes) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "lane %d touches %llu bytes at 0x%llx", lane, static_cast<unsigned long long>(bytes), static_cast<unsigned long long>(va));
  throw Fault(describe(in) + ": " + buf + ", outside every GPU allocation (a page fault on a GPU)");
}

uint8_t* global_at(Wave& w, const Inst& in, int lane, uint64_t va, uint64_t bytes) {
  uint8_t* p = w.ctx->memory->global(va, bytes);
  if (!p) page_fault(in, lane, va, bytes);
  return p;
}

// SMEM: s_load_dword{,x2,x4,x8,x16} from a 64-bit base plus an immediate or SGPR offset.
template <int N>
void s_load(Wave& w, const Inst& in) {
  uint64_t base = w.value64(in.src[0]);
  uint64_t va = (base + static_cast<uint64_t>(static_cast<int64_t>(in.offset)) + (in.src[1].kind != Operand::None ? w.value(in.src[1]) : 0)) & ~uint64_t{3};
  uint8_t* p = global_at(w, in, 0, va, 4 * N);
  for (int i = 0; i < N; ++i) {
    uint32_t x;
    std::memcpy(&x, p + 4 * i, 4);
    w.write(static_cast<uint16_t>(in.dst.index + i), x);
  }
}

// The address each lane of a GLOBAL or FLAT instruction uses.
uint64_t lane_address(const Wave& w, const Inst& in, int l) {
  const uint32_t a = in.src[0].index;
  if (in.src[2].kind != Operand::None) return w.value64(in.src[2]) + w.v[a][l] + static_cast<uint64_t>(static_cast<int64_t>(in.offset));
  return (w.v[a][l] | uint64_t{w.v[a + 1][l]} << 32) + static_cast<uint64_t>(static_cast<int64_t>(in.offset));
}

// A flat address in the shared aperture is LDS; anything else is global memory.
bool in_lds_aperture(uint64_t va) { return (va >> 32) == Wave::kSharedAperture; }

uint8_t* lds_at(Wave& w, uint64_t addr, uint64_t bytes) {
  auto& lds = w.group->lds;
  return addr + bytes <= lds.size() ? lds.data() + addr : nullptr;
}

// Loads of `Bytes` into `Dwords` registers (sign- or zero-extended sub-dword loads), and the
// d16 forms that fill one half and keep the other.
template <int Bytes, bool Signed = false, int D16 = 0>  // D16: 1 low half, 2 high half
void global_load(Wave& w, const Inst& in) {
  const uint64_t exec = w.exec();
  constexpr int dwords = Bytes < 4 ? 1 : Bytes / 4;
  for (int l = 0; l < w.lanes; ++l) {
    if (!(exec >> l & 1)) continue;
    const uint64_t va = lane_address(w, in, l);
    uint8_t buf[16] = {0};
    const uint8_t* p;
    if (in.encoding == Encoding::Flat && in_lds_aperture(va)) {
      p = lds_at(w, static_cast<uint32_t>(va), Bytes);
      if (!p) p = buf;
    } else {
      p = global_at(w, in, l, va, Bytes);
    }
    if constexpr (Bytes >= 4) {
      for (int i = 0; i < dwords; ++i) std::memcpy(&w.v[in.dst.index + i][l], p + 4 * i, 4);
    } else {
      uint32_t x = 0;
      std::memcpy(&x, p, Bytes);
      if (Signed) x = static_cast<uint32_t>(static_cast<int32_t>(x << (32 - 8 * Bytes)) >> (32 - 8 * Bytes));
      uint32_t& r = w.v[in.dst.index][l];
      if constexpr (D16 == 1) r = (r & 0xffff0000u) | (x & 0xffff);
      else if constexpr (D16 == 2) r = (r & 0xffff) | (x << 16);
      else r = x;
    }
  }
}

template <int Bytes, bool High = false>
void global_store(Wave& w, const Inst& in) {
  const uint64_t exec = w.exec();
  for (int l = 0; l < w.lanes; ++l) {
    if (!(exec >> l & 1)) continue;
    const uint64_t va = lane_address(w, in, l);
    uint8_t buf[16];
    for (int i = 0; i < (Bytes + 3) / 4; ++i) {
      uint32_t x = w.v[in.src[1].index + i][l];
      if (High) x >>= 16;
      std::memcpy(buf + 4 * i, &x, 4);
    }
    uint8_t* p = in.encoding == Encoding::Flat && in_lds_aperture(va) ? lds_at(w, static_cast<uint32_t>(va), Bytes) : global_at(w, in, l, va, Bytes);
    if (p) std::memcpy(p, buf, Bytes);
  }
}

// 32-bit global atomics; with GLC the old value comes back.
template <auto F>
void global_atomic(Wave& w, const Inst& in) {
  const uint64_t exec = w.exec();
  for (int l = 0; l < w.lanes; ++l) {
    if (!(exec >> l & 1)) continue;
    uint8_t* p = global_at(w, in, l, lane_address(w, in, l), 4);
    uint32_t old, data = w.v[in.src[1].index][l], compare = w.v[in.src[1].index + 1][l];
    std::memcpy(&old, p, 4);
    uint32_t now = F(old, data, compare);
    std::memcpy(p, &now, 4);
    if (in.glc) w.v[in.dst.index][l] = old;
  }
}

// DS reads and writes of `Dwords` dwords at ADDR + offset (the two-address forms: offset0 and
// offset1 in units of the element size, times 64 for st64).
template <int Bytes, bool Signed = false>
void ds_read(Wave& w, const Inst& in) {
  const uint64_t exec = w.exec();
  for (int l = 0; l < w.lanes; ++l) {
    if (!(exec >> l & 1)) continue;
    const uint64_t addr = uint64_t{w.v[in.src[0].index][l]} + static_cast<uint32_t>(in.offset | in.offset1 << 8);
    const uint8_t* p = lds_at(w, addr, Bytes);
    if constexpr (Bytes >= 4) {
      for (int i = 0; i < Bytes / 4; ++i) {
        uint32_t x = 0;
        if (p) std::memcpy(&x, p + 4 * i, 4);
        w.v[in.dst.index + i][l] = x;
      }
    } else {
      uint32_t x = 0;
      if (p) std::memcpy(&x, p, Bytes);
      if (Signed) x = static_cast<uint32_t>(static_cast<int32_t>(x << (32 - 8 * Bytes)) >> (32 - 8 * Bytes));
      w.v[in.dst.index][l] = x;
    }
  }
}

template <int Bytes>
void ds_write(Wave& w, const Inst& in) {
  const uint64_t exec = w.exec();
  for (int l = 0; l < w.lanes; ++l) {
    if (!(exec >> l & 1)) continue;
    const uint64_t addr = uint64_t{w.v[in.src[0].index][l]} + static_cast<uint32_t>(in.offset | in.offset1 << 8);
    uint8_t* p = lds_at(w, addr, Bytes);
    if (!p) continue;
    for (int i = 0; i < (Bytes + 3) / 4; ++i) {
      uint32_t x = w.v[in.src[1].index + i][l];
      std::memcpy(p + 4 * i, &x, std::min(4, Bytes));
    }
  }
}

template <int ElementBytes, int Stride, bool Write>
void ds_two(Wave& w, const Inst& in) {
  const uint64_t exec = w.exec();
  constexpr int dwords = ElementBytes / 4;
  for (int l = 0; l < w.lanes; ++l) {
    if (!(exec >> l & 1)) continue;
    const uint64_t base = w.v[in.src[0].index][l];
    for (int k = 0; k < 2; ++k) {
      const uint64_t addr = base + uint64_t{k ? in.offset1 : static_cast<uint8_t>(in.offset)} * ElementBytes * Stride;
      uint8_t* p = lds_at(w, addr, ElementBytes);
      for (int i = 0; i < dwords; ++i) {
        if (Write) {
          if (p) std::memcpy(p + 4 * i, &w.v[(k ? in.src[2] : in.src[1]).index + i][l], 4);
        } else {
          uint32_t x = 0;
          if (p) std::memcpy(&x, p + 4 * i, 4);
          w.v[in.dst.index + k * dwords + i][l] = x;
        }
      }
    }
  }
}

// DS read-modify-write: the _rtn forms return the old value.
template <auto F, bool Return>
void ds_atomic(Wave& w, const Inst& in) {
  const uint64_t exec = w.exec();
  for (int l = 0; l < w.lanes; ++l) {
    if (!(exec >> l & 1)) continue;
    const uint64_t addr = uint64_t{w.v[in.src[0].index][l]} + static_cast<uint32_t>(in.offset | in.offset1 << 8);
    uint8_t* p = lds_at(w, addr, 4);
    uint32_t old = 0;
    if (p) {
      std::memcpy(&old, p, 4);
      uint32_t now = F(old, w.v[in.src[1].index][l], w.v[in.src[2].index][l]);
      std::memcpy(p, &now, 4);
    }
    if (Return) w.v[in.dst.index][l] = old;
  }
}

uint32_t add_f32(uint32_t a, uint32_t b, uint32_t) { return std::bit_cast<uint32_t>(std::bit_cast<float>(a) + std::bit_cast<float>(b)); }
uint32_t max_f32(uint32_t a, uint32_t b, uint32_t) { return std::bit_cast<float>(b) > std::bit_cast<float>(a) ? b : a; }
uint32_t min_f32(uint32_t a, uint32_t b, uint32_t) { return std::bit_cast<float>(b) < std::bit_cast<float>(a) ? b : a; }

}  // namespace

void add_memory_ops(OpTable& t) {
  t["s_load_dword"] = s_load<1>;
  t["s_load_dwordx2"] = s_load<2>;
  t["s_load_dwordx4"] = s_load<4>;
  t["s_load_dwordx8"] = s_load<8>;
  t["s_load_dwordx16"] = s_load<16>;
  for (const char* p : {"global_", "flat_"}) {
    const std::string prefix = p;
    static std::deque<std::string> names;  // the table's keys view these
    auto add = [&](const char* op, Handler h) { t[names.emplace_back(prefix + op)] = h; };
    add("load_ubyte", global_load<1>);
    add("load_sbyte", global_load<1, true>);
    add("load_ushort", global_load<2>);
    add("load_sshort", global_load<2, true>);
    add("load_dword", global_load<4>);
    add("load_dwordx2", global_load<8>);
    add("load_dwordx3", global_load<12>);
    add("load_dwordx4", global_load<16>);
    add("load_short_d16", global_load<2, false, 1>);
    add("load_short_d16_hi", global_load<2, false, 2>);
    add("load_ubyte_d16", global_load<1, false, 1>);
    add("load_ubyte_d16_hi", global_load<1, false, 2>);
    add("store_byte", global_store<1>);
    add("store_short", global_store<2>);
    add("store_byte_d16_hi", global_store<1, true>);
    add("store_short_d16_hi", global_store<2, true>);
    add("store_dword", global_store<4>);
    add("store_dwordx2", global_store<8>);
    add("store_dwordx3", global_store<12>);
    add("store_dwordx4", global_store<16>);
    add("atomic_swap", global_atomic<([](uint32_t, uint32_t d, uint32_t) { return d; })>);
    add("atomic_cmpswap", global_atomic<([](uint32_t o, uint32_t src, uint32_t cmp) { return o == cmp ? src : o; })>);
    add("atomic_add", global_atomic<([](uint32_t o, uint32_t d, uint32_t) { return o + d; })>);
    add("atomic_sub", global_atomic<([](uint32_t o, uint32_t d, uint32_t) { return o - d; })>);
    add("atomic_umax", global_atomic<([](uint32_t o, uint32_t d, uint32_t) { return std::max(o, d); })>);
    add("atomic_umin", global_atomic<([](uint32_t o, uint32_t d, uint32_t) { return std::min(o, d); })>);
    add("atomic_smax", global_atomic<([](uint32_t o, uint32_t d, uint32_t) { return static_cast<int32_t>(o) > static_cast<int32_t>(d) ? o : d; })>);
    add("atomic_smin", global_atomic<([](uint32_t o, uint32_t d, uint32_t) { return static_cast<int32_t>(o) < static_cast<int32_t>(d) ? o : d; })>);
    add("atomic_and", global_atomic<([](uint32_t o, uint32_t d, uint32_t) { return o & d; })>);
    add("atomic_or", global_atomic<([](uint32_t o, uint32_t d, uint32_t) { return o | d; })>);
    add("atomic_xor", global_atomic<([](uint32_t o, uint32_t d, uint32_t) { return o ^ d; })>);
    add("atomic_add_f32", global_atomic<add_f32>);
  }
  t["ds_read_b32"] = ds_read<4>;
  t["ds_read_b64"] = ds_read<8>;
  t["ds_read_b96"] = ds_read<12>;
  t["ds_read_b128"] = ds_read<16>;
  t["ds_read_u8"] = ds_read<1>;
  t["ds_read_i8"] = ds_read<1, true>;
  t["ds_read_u16"] = ds_read<2>;
  t["ds_read_i16"] = ds_read<2, true>;
  t["ds_write_b8"] = ds_write<1>;
  t["ds_write_b16"] = ds_write<2>;
  t["ds_write_b32"] = ds_write<4>;
  t["ds_write_b64"] = ds_write<8>;
  t["ds_write_b96"] = ds_write<12>;
  t["ds_write_b128"] = ds_write<16>;
  t["ds_read2_b32"] = ds_two<4, 1, false>;
  t["ds_read2_b64"] = ds_two<8, 1, false>;
  t["ds_read2st64_b32"] = ds_two<4, 64, false>;
  t["ds_read2st64_b64"] = ds_two<8, 64, false>;
  t["ds_write2_b32"] = ds_two<4, 1, true>;
  t["ds_write2_b64"] = ds_two<8, 1, true>;
  t["ds_write2st64_b32"] = ds_two<4, 64, true>;
  t["ds_write2st64_b64"] = ds_two<8, 64, true>;
  t["ds_add_u32"] = ds_atomic<([](uint32_t o, uint32_t d, uint32_t) { return o + d; }), false>;
  t["ds_add_rtn_u32"] = ds_atomic<([](uint32_t o, uint32_t d, uint32_t) { return o + d; }), true>;
  t["ds_add_f32"] = ds_atomic<add_f32, false>;
  t["ds_add_rtn_f32"] = ds_atomic<add_f32, true>;
  t["ds_max_f32"] = ds_atomic<max_f32, false>;
  t["ds_min_f32"] = ds_atomic<min_f32, false>;
  t["ds_wrxchg_rtn_b32"] = ds_atomic<([](uint32_t, uint32_t d, uint32_t) { return d; }), true>;
  t["ds_cmpst_rtn_b32"] = ds_atomic<([](uint32_t o, uint32_t cmp, uint32_t src) { return o == cmp ? src : o; }), true>;
  t["ds_nop"] = [](Wave&, const Inst&) {};
}

}  // namespace lathe::amd::emu
