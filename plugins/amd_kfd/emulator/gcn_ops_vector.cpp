// Vector integer and bit instructions (VOP1, VOP2, VOP3): moves, lane reads and writes,
// selects, carries, shifts, multiplies, field operations and the 16-bit forms (which on gfx9
// zero the destination's high half).
#include <algorithm>
#include <bit>
#include <cstdint>

#include "gcn_program.h"
#include "gcn_valu.h"

namespace lathe::amd::emu {
namespace {

int32_t i32(uint32_t x) { return static_cast<int32_t>(x); }
uint32_t u24(uint32_t x) { return x & 0xffffff; }
int64_t i24(uint32_t x) { return static_cast<int32_t>(x << 8) >> 8; }
uint32_t lo16(uint32_t x) { return x & 0xffff; }
int32_t s16(uint32_t x) { return static_cast<int16_t>(x & 0xffff); }

struct Carry {
  uint32_t d;
  bool carry;
};

// Adds and subtracts with a carry or borrow out to VCC (or VOP3b's SGPR pair) and, for the
// _addc/_subb forms, in from VCC (or VOP3b's third source).
template <auto F, bool CarryIn>
void carry_op(Wave& w, const Inst& in) {
  uint32_t a[kMaxLanes], b[kMaxLanes], d[kMaxLanes];
  fetch(w, in, 0, a);
  fetch(w, in, 1, b);
  uint64_t carry_in = 0;
  if constexpr (CarryIn) carry_in = in.encoding == Encoding::Vop3 ? w.value64(in.src[2]) : w.vcc();
  const uint64_t exec = w.exec();
  uint64_t out = 0;
  for (int l = 0; l < w.lanes; ++l) {
    Carry r = F(a[l], b[l], (carry_in >> l & 1) != 0);
    d[l] = r.d;
    if (r.carry && (exec >> l & 1)) out |= uint64_t{1} << l;
  }
  store(w, in, d);
  write_mask(w, in, out);
}

// v_cndmask_b32: the second source where the mask (VCC, or VOP3's third source) is set.
void cndmask(Wave& w, const Inst& in) {
  uint32_t a[kMaxLanes], b[kMaxLanes], d[kMaxLanes];
  fetch(w, in, 0, a);
  fetch(w, in, 1, b);
  const uint64_t mask = in.encoding == Encoding::Vop3 ? w.value64(in.src[2]) : w.vcc();
  for (int i = 0; i < 2; ++i) {
    uint32_t* s = i ? b : a;
    const uint32_t clear = (in.abs >> i) & 1 ? 0x7fffffffu : ~0u, flip = (in.neg >> i) & 1 ? 0x80000000u : 0u;
    for (int l = 0; l < w.lanes; ++l) s[l] = (s[l] & clear) ^ flip;
  }
  for (int l = 0; l < w.lanes; ++l) d[l] = (mask >> l & 1) ? b[l] : a[l];
  store(w, in, d);
}

template <auto F>
void op64(Wave& w, const Inst& in) {  // 64-bit value from a 64-bit source and a 32-bit one
  uint64_t a[kMaxLanes], d[kMaxLanes];
  uint32_t b[kMaxLanes];
  fetch(w, in, 0, b);
  fetch64(w, in, 1, a, false);
  for (int l = 0; l < w.lanes; ++l) d[l] = F(b[l], a[l]);
  store64(w, in, d);
}

template <bool Signed>
void mad_64_32(Wave& w, const Inst& in) {
  uint32_t a[kMaxLanes], b[kMaxLanes];
  uint64_t c[kMaxLanes], d[kMaxLanes];
  fetch(w, in, 0, a);
  fetch(w, in, 1, b);
  fetch64(w, in, 2, c, false);
  const uint64_t exec = w.exec();
  uint64_t carry = 0;
  for (int l = 0; l < w.lanes; ++l) {
    bool over;
    if constexpr (Signed) {
      __int128 r = static_cast<__int128>(int64_t{i32(a[l])} * i32(b[l])) + static_cast<int64_t>(c[l]);
      d[l] = static_cast<uint64_t>(r);
      over = r != static_cast<int64_t>(d[l]);
    } else {
      unsigned __int128 r = static_cast<unsigned __int128>(uint64_t{a[l]} * b[l]) + c[l];
      d[l] = static_cast<uint64_t>(r);
      over = (r >> 64) != 0;
    }
    if (over && (exec >> l & 1)) carry |= uint64_t{1} << l;
  }
  store64(w, in, d);
  write_mask(w, in, carry);
}

uint32_t med3(int64_t a, int64_t b, int64_t c) {
  return static_cast<uint32_t>(std::max(std::min(a, b), std::min(std::max(a, b), c)));
}

uint32_t byte_permute(uint64_t data, uint32_t sel) {
  sel &= 0xff;
  if (sel >= 13) return 0xff;
  if (sel == 12) return 0;
  if (sel >= 8) return ((data >> (8 * (2 * (sel - 8) + 1) + 7)) & 1) ? 0xff : 0;
  return (data >> (8 * sel)) & 0xff;
}

}  // namespace

void add_vector_int_ops(OpTable& t) {
  t["v_nop"] = [](Wave&, const Inst&) {};
  t["v_mov_b32"] = [](Wave& w, const Inst& in) {
    uint32_t a[kMaxLanes];
    fetch(w, in, 0, a);
    if (in.abs || in.neg)  // VOP3's float modifiers apply to a move too
      for (int l = 0; l < w.lanes; ++l) a[l] = (a[l] & (in.abs & 1 ? 0x7fffffffu : ~0u)) ^ (in.neg & 1 ? 0x80000000u : 0u);
    store(w, in, a);
  };
  t["v_mov_b64"] = [](Wave& w, const Inst& in) {
    uint64_t a[kMaxLanes];
    fetch64(w, in, 0, a, false);
    store64(w, in, a);
  };
  t["v_readlane_b32"] = [](Wave& w, const Inst& in) { w.write(in.dst.index, w.v[in.src[0].index][w.value(in.src[1]) & (w.lanes - 1)]); };
  t["v_writelane_b32"] = [](Wave& w, const Inst& in) { w.v[in.dst.index][w.value(in.src[1]) & (w.lanes - 1)] = w.value(in.src[0]); };
  t["v_readfirstlane_b32"] = [](Wave& w, const Inst& in) {
    const uint64_t exec = w.exec();
    const int lane = exec ? std::countr_zero(exec) : 0;
    w.write(in.dst.index, in.src[0].is_vector() ? w.v[in.src[0].index][lane] : w.value(in.src[0]));
  };
  t["v_cndmask_b32"] = cndmask;

  t["v_and_b32"] = int_op<2, ([](uint32_t a, uint32_t b) { return a & b; })>;
  t["v_or_b32"] = int_op<2, ([](uint32_t a, uint32_t b) { return a | b; })>;
  t["v_xor_b32"] = int_op<2, ([](uint32_t a, uint32_t b) { return a ^ b; })>;
  t["v_xnor_b32"] = int_op<2, ([](uint32_t a, uint32_t b) { return ~(a ^ b); })>;
  t["v_not_b32"] = int_op<1, ([](uint32_t a) { return ~a; })>;
  t["v_bfrev_b32"] = int_op<1, ([](uint32_t a) {
    uint32_t r = 0;
    for (int i = 0; i < 32; ++i) r |= ((a >> i) & 1) << (31 - i);
    return r;
  })>;
  t["v_ffbh_u32"] = int_op<1, ([](uint32_t a) { return a ? static_cast<uint32_t>(std::countl_zero(a)) : ~0u; })>;
  t["v_ffbl_b32"] = int_op<1, ([](uint32_t a) { return a ? static_cast<uint32_t>(std::countr_zero(a)) : ~0u; })>;
  t["v_ffbh_i32"] = int_op<1, ([](uint32_t a) {
    uint32_t x = i32(a) < 0 ? ~a : a;
    return (a == 0 || a == ~0u) ? ~0u : static_cast<uint32_t>(std::countl_zero(x));
  })>;
  t["v_bcnt_u32_b32"] = int_op<2, ([](uint32_t a, uint32_t b) { return static_cast<uint32_t>(std::popcount(a)) + b; })>;
  t["v_bfm_b32"] = int_op<2, ([](uint32_t a, uint32_t b) { return ((1u << (a & 31)) - 1) << (b & 31); })>;
  t["v_lshlrev_b32"] = int_op<2, ([](uint32_t a, uint32_t b) { return b << (a & 31); })>;
  t["v_lshrrev_b32"] = int_op<2, ([](uint32_t a, uint32_t b) { return b >> (a & 31); })>;
  t["v_ashrrev_i32"] = int_op<2, ([](uint32_t a, uint32_t b) { return static_cast<uint32_t>(i32(b) >> (a & 31)); })>;
  t["v_lshlrev_b64"] = op64<([](uint32_t a, uint64_t b) { return b << (a & 63); })>;
  t["v_lshrrev_b64"] = op64<([](uint32_t a, uint64_t b) { return b >> (a & 63); })>;
  t["v_ashrrev_i64"] = op64<([](uint32_t a, uint64_t b) { return static_cast<uint64_t>(static_cast<int64_t>(b) >> (a & 63)); })>;
  t["v_lshl_add_u64"] = [](Wave& w, const Inst& in) {
    uint64_t a[kMaxLanes], c[kMaxLanes], d[kMaxLanes];
    uint32_t b[kMaxLanes];
    fetch64(w, in, 0, a, false);
    fetch(w, in, 1, b);
    fetch64(w, in, 2, c, false);
    for (int l = 0; l < w.lanes; ++l) d[l] = (a[l] << (b[l] & 7)) + c[l];
    store64(w, in, d);
  };
  t["v_alignbit_b32"] = int_op<3, ([](uint32_t a, uint32_t b, uint32_t c) { return static_cast<uint32_t>(((uint64_t{a} << 32) | b) >> (c & 31)); })>;
  t["v_alignbyte_b32"] = int_op<3, ([](uint32_t a, uint32_t b, uint32_t c) { return static_cast<uint32_t>(((uint64_t{a} << 32) | b) >> (8 * (c & 3))); })>;
  t["v_perm_b32"] = int_op<3, ([](uint32_t a, uint32_t b, uint32_t c) {
    const uint64_t data = (uint64_t{a} << 32) | b;
    return byte_permute(data, c) | byte_permute(data, c >> 8) << 8 | byte_permute(data, c >> 16) << 16 | byte_permute(data, c >> 24) << 24;
  })>;
  t["v_bfe_u32"] = int_op<3, ([](uint32_t a, uint32_t b, uint32_t c) {
    uint32_t off = b & 31, width = c & 31;
    return width == 0 ? 0u : (a >> off) & ((width + off >= 32 ? ~0u >> off : (1u << width) - 1));
  })>;
  t["v_bfe_i32"] = int_op<3, ([](uint32_t a, uint32_t b, uint32_t c) {
    uint32_t off = b & 31, width = c & 31;
    if (width == 0) return 0u;
    if (width + off > 32) width = 32 - off;
    return static_cast<uint32_t>(i32(a << (32 - off - width)) >> (32 - width));
  })>;
  t["v_bfi_b32"] = int_op<3, ([](uint32_t a, uint32_t b, uint32_t c) { return (a & b) | (~a & c); })>;
  t["v_lshl_or_b32"] = int_op<3, ([](uint32_t a, uint32_t b, uint32_t c) { return (a << (b & 31)) | c; })>;
  t["v_and_or_b32"] = int_op<3, ([](uint32_t a, uint32_t b, uint32_t c) { return (a & b) | c; })>;
  t["v_or3_b32"] = int_op<3, ([](uint32_t a, uint32_t b, uint32_t c) { return a | b | c; })>;
  t["v_add_lshl_u32"] = int_op<3, ([](uint32_t a, uint32_t b, uint32_t c) { return (a + b) << (c & 31); })>;
  t["v_lshl_add_u32"] = int_op<3, ([](uint32_t a, uint32_t b, uint32_t c) { return (a << (b & 31)) + c; })>;
  t["v_add3_u32"] = int_op<3, ([](uint32_t a, uint32_t b, uint32_t c) { return a + b + c; })>;
  t["v_xad_u32"] = int_op<3, ([](uint32_t a, uint32_t b, uint32_t c) { return (a ^ b) + c; })>;

  t["v_add_u32"] = int_op<2, ([](uint32_t a, uint32_t b) { return a + b; })>;
  t["v_sub_u32"] = int_op<2, ([](uint32_t a, uint32_t b) { return a - b; })>;
  t["v_subrev_u32"] = int_op<2, ([](uint32_t a, uint32_t b) { return b - a; })>;
  t["v_add_co_u32"] = carry_op<([](uint32_t a, uint32_t b, bool) { return Carry{a + b, uint64_t{a} + b > 0xffffffffu}; }), false>;
  t["v_sub_co_u32"] = carry_op<([](uint32_t a, uint32_t b, bool) { return Carry{a - b, b > a}; }), false>;
  t["v_subrev_co_u32"] = carry_op<([](uint32_t a, uint32_t b, bool) { return Carry{b - a, a > b}; }), false>;
  t["v_addc_co_u32"] = carry_op<([](uint32_t a, uint32_t b, bool c) { uint64_t s = uint64_t{a} + b + c; return Carry{static_cast<uint32_t>(s), s > 0xffffffffu}; }), true>;
  t["v_subb_co_u32"] = carry_op<([](uint32_t a, uint32_t b, bool c) { return Carry{a - b - c, uint64_t{b} + c > a}; }), true>;
  t["v_subbrev_co_u32"] = carry_op<([](uint32_t a, uint32_t b, bool c) { return Carry{b - a - c, uint64_t{a} + c > b}; }), true>;
  t["v_mul_lo_u32"] = int_op<2, ([](uint32_t a, uint32_t b) { return a * b; })>;
  t["v_mul_hi_u32"] = int_op<2, ([](uint32_t a, uint32_t b) { return static_cast<uint32_t>((uint64_t{a} * b) >> 32); })>;
  t["v_mul_hi_i32"] = int_op<2, ([](uint32_t a, uint32_t b) { return static_cast<uint32_t>((int64_t{i32(a)} * i32(b)) >> 32); })>;
  t["v_mul_u32_u24"] = int_op<2, ([](uint32_t a, uint32_t b) { return u24(a) * u24(b); })>;
  t["v_mul_hi_u32_u24"] = int_op<2, ([](uint32_t a, uint32_t b) { return static_cast<uint32_t>((uint64_t{u24(a)} * u24(b)) >> 32); })>;
  t["v_mul_i32_i24"] = int_op<2, ([](uint32_t a, uint32_t b) { return static_cast<uint32_t>(i24(a) * i24(b)); })>;
  t["v_mul_hi_i32_i24"] = int_op<2, ([](uint32_t a, uint32_t b) { return static_cast<uint32_t>((i24(a) * i24(b)) >> 32); })>;
  t["v_mad_u32_u24"] = int_op<3, ([](uint32_t a, uint32_t b, uint32_t c) { return u24(a) * u24(b) + c; })>;
  t["v_mad_i32_i24"] = int_op<3, ([](uint32_t a, uint32_t b, uint32_t c) { return static_cast<uint32_t>(i24(a) * i24(b)) + c; })>;
  t["v_mad_u64_u32"] = mad_64_32<false>;
  t["v_mad_i64_i32"] = mad_64_32<true>;
  t["v_min_i32"] = int_op<2, ([](uint32_t a, uint32_t b) { return i32(a) < i32(b) ? a : b; })>;
  t["v_max_i32"] = int_op<2, ([](uint32_t a, uint32_t b) { return i32(a) > i32(b) ? a : b; })>;
  t["v_min_u32"] = int_op<2, ([](uint32_t a, uint32_t b) { return a < b ? a : b; })>;
  t["v_max_u32"] = int_op<2, ([](uint32_t a, uint32_t b) { return a > b ? a : b; })>;
  t["v_min3_i32"] = int_op<3, ([](uint32_t a, uint32_t b, uint32_t c) { return static_cast<uint32_t>(std::min({i32(a), i32(b), i32(c)})); })>;
  t["v_max3_i32"] = int_op<3, ([](uint32_t a, uint32_t b, uint32_t c) { return static_cast<uint32_t>(std::max({i32(a), i32(b), i32(c)})); })>;
  t["v_min3_u32"] = int_op<3, ([](uint32_t a, uint32_t b, uint32_t c) { return std::min({a, b, c}); })>;
  t["v_max3_u32"] = int_op<3, ([](uint32_t a, uint32_t b, uint32_t c) { return std::max({a, b, c}); })>;
  t["v_med3_i32"] = int_op<3, ([](uint32_t a, uint32_t b, uint32_t c) { return med3(i32(a), i32(b), i32(c)); })>;
  t["v_maxmin_i32"] = int_op<3, ([](uint32_t a, uint32_t b, uint32_t c) { return static_cast<uint32_t>(std::min(std::max(i32(a), i32(b)), i32(c))); })>;
  t["v_minmax_i32"] = int_op<3, ([](uint32_t a, uint32_t b, uint32_t c) { return static_cast<uint32_t>(std::max(std::min(i32(a), i32(b)), i32(c))); })>;
  t["v_maxmin_u32"] = int_op<3, ([](uint32_t a, uint32_t b, uint32_t c) { return std::min(std::max(a, b), c); })>;
  t["v_minmax_u32"] = int_op<3, ([](uint32_t a, uint32_t b, uint32_t c) { return std::max(std::min(a, b), c); })>;
  t["v_med3_u32"] = int_op<3, ([](uint32_t a, uint32_t b, uint32_t c) { return med3(a, b, c); })>;
  t["v_mbcnt_lo_u32_b32"] = [](Wave& w, const Inst& in) {  // set bits of S0 below this lane (lanes 0-31) + S1
    uint32_t a[kMaxLanes], b[kMaxLanes], d[kMaxLanes];
    fetch(w, in, 0, a);
    fetch(w, in, 1, b);
    for (int l = 0; l < w.lanes; ++l) d[l] = static_cast<uint32_t>(std::popcount(a[l] & (l >= 32 ? ~0u : (1u << l) - 1))) + b[l];
    store(w, in, d);
  };
  t["v_mbcnt_hi_u32_b32"] = [](Wave& w, const Inst& in) {  // the same for lanes 32-63
    uint32_t a[kMaxLanes], b[kMaxLanes], d[kMaxLanes];
    fetch(w, in, 0, a);
    fetch(w, in, 1, b);
    for (int l = 0; l < w.lanes; ++l) d[l] = static_cast<uint32_t>(std::popcount(a[l] & (l < 32 ? 0u : l == 63 ? 0x7fffffffu : (1u << (l - 32)) - 1))) + b[l];
    store(w, in, d);
  };

  // 16-bit integers: the low halves, the result zero-extended.
  t["v_add_u16"] = int_op<2, ([](uint32_t a, uint32_t b) { return lo16(a + b); })>;
  t["v_sub_u16"] = int_op<2, ([](uint32_t a, uint32_t b) { return lo16(a - b); })>;
  t["v_subrev_u16"] = int_op<2, ([](uint32_t a, uint32_t b) { return lo16(b - a); })>;
  t["v_mul_lo_u16"] = int_op<2, ([](uint32_t a, uint32_t b) { return lo16(lo16(a) * lo16(b)); })>;
  t["v_lshlrev_b16"] = int_op<2, ([](uint32_t a, uint32_t b) { return lo16(lo16(b) << (a & 15)); })>;
  t["v_lshrrev_b16"] = int_op<2, ([](uint32_t a, uint32_t b) { return lo16(b) >> (a & 15); })>;
  t["v_ashrrev_i16"] = int_op<2, ([](uint32_t a, uint32_t b) { return lo16(static_cast<uint32_t>(s16(b) >> (a & 15))); })>;
  t["v_max_u16"] = int_op<2, ([](uint32_t a, uint32_t b) { return std::max(lo16(a), lo16(b)); })>;
  t["v_min_u16"] = int_op<2, ([](uint32_t a, uint32_t b) { return std::min(lo16(a), lo16(b)); })>;
  t["v_max_i16"] = int_op<2, ([](uint32_t a, uint32_t b) { return lo16(static_cast<uint32_t>(std::max(s16(a), s16(b)))); })>;
  t["v_min_i16"] = int_op<2, ([](uint32_t a, uint32_t b) { return lo16(static_cast<uint32_t>(std::min(s16(a), s16(b)))); })>;
  t["v_mad_legacy_u16"] = int_op<3, ([](uint32_t a, uint32_t b, uint32_t c) { return lo16(lo16(a) * lo16(b) + lo16(c)); })>;
  t["v_mad_u16"] = t["v_mad_legacy_u16"];
  t["v_mad_u32_u16"] = int_op<3, ([](uint32_t a, uint32_t b, uint32_t c) { return lo16(a) * lo16(b) + c; })>;
}

}  // namespace lathe::amd::emu
