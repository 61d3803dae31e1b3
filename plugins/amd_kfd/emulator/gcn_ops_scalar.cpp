// Scalar ALU and program control: SOP2, SOPK, SOP1, SOPC and SOPP, with SCC as each
// instruction's definition sets it.
#include <bit>
#include <cstdint>

#include "gcn_program.h"
#include "gcn_wave.h"

namespace lathe::amd::emu {
namespace {

struct R32 {
  uint32_t d;
  bool scc;
};
struct R64 {
  uint64_t d;
  bool scc;
};

template <auto F>
void sop_32(Wave& w, const Inst& in) {
  R32 r = F(w.value(in.src[0]), in.src[1].kind == Operand::None ? 0u : w.value(in.src[1]), w.scc);
  w.write(in.dst.index, r.d);
  w.scc = r.scc;
}
template <auto F>
void sop_64(Wave& w, const Inst& in) {
  R64 r = F(w.value64(in.src[0]), in.src[1].kind == Operand::None ? 0u : w.value64(in.src[1]), w.scc);
  w.write64(in.dst.index, r.d);
  w.scc = r.scc;
}
// Shifts, field extracts and masks: a 64-bit first source with a 32-bit second one.
template <auto F>
void sop_64_32(Wave& w, const Inst& in) {
  R64 r = F(w.value64(in.src[0]), w.value(in.src[1]), w.scc);
  w.write64(in.dst.index, r.d);
  w.scc = r.scc;
}
template <auto F>
void sop_cmp32(Wave& w, const Inst& in) { w.scc = F(w.value(in.src[0]), w.value(in.src[1])); }
template <auto F>
void sop_cmp64(Wave& w, const Inst& in) { w.scc = F(w.value64(in.src[0]), w.value64(in.src[1])); }

// s_<op>_saveexec_b64 (and _b32 in wave32): the old EXEC to the destination, EXEC from S0 and the old EXEC, SCC = EXEC != 0.
template <auto F, bool WriteNew = false>
void saveexec(Wave& w, const Inst& in) {
  const uint64_t old = w.exec(), s0 = w.value64(in.src[0]);
  w.set_exec(F(s0, old));
  w.write_lanes(in.dst.index, WriteNew ? w.exec() : old);
  w.scc = w.exec() != 0;
}

constexpr uint32_t sext16(int32_t x) { return static_cast<uint32_t>(static_cast<int32_t>(static_cast<int16_t>(x))); }

// SOPK: the destination is also the first source.
template <auto F>
void sopk(Wave& w, const Inst& in) {
  R32 r = F(w.read(in.dst.index), static_cast<uint32_t>(in.offset), w.scc);
  w.write(in.dst.index, r.d);
  w.scc = r.scc;
}
template <auto F>
void sopk_cmp(Wave& w, const Inst& in) { w.scc = F(w.read(in.dst.index), static_cast<uint32_t>(in.offset)); }

void branch_if(Wave& w, const Inst& in, bool taken) {
  if (taken) w.pc = in.target;
}

int32_t i32(uint32_t x) { return static_cast<int32_t>(x); }
int64_t i64(uint64_t x) { return static_cast<int64_t>(x); }

}  // namespace

void add_scalar_ops(OpTable& t) {
  // SOP2
  t["s_add_u32"] = sop_32<([](uint32_t a, uint32_t b, bool) { return R32{a + b, uint64_t{a} + b > 0xffffffffu}; })>;
  t["s_sub_u32"] = sop_32<([](uint32_t a, uint32_t b, bool) { return R32{a - b, b > a}; })>;
  t["s_addc_u32"] = sop_32<([](uint32_t a, uint32_t b, bool c) { uint64_t s = uint64_t{a} + b + c; return R32{static_cast<uint32_t>(s), s > 0xffffffffu}; })>;
  t["s_subb_u32"] = sop_32<([](uint32_t a, uint32_t b, bool c) { return R32{a - b - c, uint64_t{b} + c > a}; })>;
  t["s_add_i32"] = sop_32<([](uint32_t a, uint32_t b, bool) { uint32_t d = a + b; return R32{d, ((~(a ^ b) & (a ^ d)) >> 31) != 0}; })>;
  t["s_sub_i32"] = sop_32<([](uint32_t a, uint32_t b, bool) { uint32_t d = a - b; return R32{d, (((a ^ b) & (a ^ d)) >> 31) != 0}; })>;
  t["s_min_i32"] = sop_32<([](uint32_t a, uint32_t b, bool) { return R32{i32(a) < i32(b) ? a : b, i32(a) < i32(b)}; })>;
  t["s_min_u32"] = sop_32<([](uint32_t a, uint32_t b, bool) { return R32{a < b ? a : b, a < b}; })>;
  t["s_max_i32"] = sop_32<([](uint32_t a, uint32_t b, bool) { return R32{i32(a) > i32(b) ? a : b, i32(a) > i32(b)}; })>;
  t["s_max_u32"] = sop_32<([](uint32_t a, uint32_t b, bool) { return R32{a > b ? a : b, a > b}; })>;
  t["s_cselect_b32"] = sop_32<([](uint32_t a, uint32_t b, bool c) { return R32{c ? a : b, c}; })>;
  t["s_cselect_b64"] = sop_64<([](uint64_t a, uint64_t b, bool c) { return R64{c ? a : b, c}; })>;
  t["s_and_b32"] = sop_32<([](uint32_t a, uint32_t b, bool) { return R32{a & b, (a & b) != 0}; })>;
  t["s_and_b64"] = sop_64<([](uint64_t a, uint64_t b, bool) { return R64{a & b, (a & b) != 0}; })>;
  t["s_or_b32"] = sop_32<([](uint32_t a, uint32_t b, bool) { return R32{a | b, (a | b) != 0}; })>;
  t["s_or_b64"] = sop_64<([](uint64_t a, uint64_t b, bool) { return R64{a | b, (a | b) != 0}; })>;
  t["s_xor_b32"] = sop_32<([](uint32_t a, uint32_t b, bool) { return R32{a ^ b, (a ^ b) != 0}; })>;
  t["s_xor_b64"] = sop_64<([](uint64_t a, uint64_t b, bool) { return R64{a ^ b, (a ^ b) != 0}; })>;
  t["s_andn2_b32"] = sop_32<([](uint32_t a, uint32_t b, bool) { return R32{a & ~b, (a & ~b) != 0}; })>;
  t["s_andn2_b64"] = sop_64<([](uint64_t a, uint64_t b, bool) { return R64{a & ~b, (a & ~b) != 0}; })>;
  t["s_orn2_b32"] = sop_32<([](uint32_t a, uint32_t b, bool) { return R32{a | ~b, (a | ~b) != 0}; })>;
  t["s_orn2_b64"] = sop_64<([](uint64_t a, uint64_t b, bool) { return R64{a | ~b, (a | ~b) != 0}; })>;
  t["s_nand_b64"] = sop_64<([](uint64_t a, uint64_t b, bool) { return R64{~(a & b), ~(a & b) != 0}; })>;
  t["s_nor_b64"] = sop_64<([](uint64_t a, uint64_t b, bool) { return R64{~(a | b), ~(a | b) != 0}; })>;
  t["s_xnor_b64"] = sop_64<([](uint64_t a, uint64_t b, bool) { return R64{~(a ^ b), ~(a ^ b) != 0}; })>;
  t["s_lshl_b32"] = sop_32<([](uint32_t a, uint32_t b, bool) { uint32_t d = a << (b & 31); return R32{d, d != 0}; })>;
  t["s_lshl_b64"] = sop_64_32<([](uint64_t a, uint32_t b, bool) { uint64_t d = a << (b & 63); return R64{d, d != 0}; })>;
  t["s_lshr_b32"] = sop_32<([](uint32_t a, uint32_t b, bool) { uint32_t d = a >> (b & 31); return R32{d, d != 0}; })>;
  t["s_lshr_b64"] = sop_64_32<([](uint64_t a, uint32_t b, bool) { uint64_t d = a >> (b & 63); return R64{d, d != 0}; })>;
  t["s_ashr_i32"] = sop_32<([](uint32_t a, uint32_t b, bool) { uint32_t d = static_cast<uint32_t>(i32(a) >> (b & 31)); return R32{d, d != 0}; })>;
  t["s_ashr_i64"] = sop_64_32<([](uint64_t a, uint32_t b, bool) { uint64_t d = static_cast<uint64_t>(i64(a) >> (b & 63)); return R64{d, d != 0}; })>;
  t["s_bfm_b32"] = sop_32<([](uint32_t a, uint32_t b, bool c) { return R32{((1u << (a & 31)) - 1) << (b & 31), c}; })>;
  t["s_mul_i32"] = sop_32<([](uint32_t a, uint32_t b, bool c) { return R32{a * b, c}; })>;
  t["s_mul_hi_u32"] = sop_32<([](uint32_t a, uint32_t b, bool c) { return R32{static_cast<uint32_t>((uint64_t{a} * b) >> 32), c}; })>;
  t["s_mul_hi_i32"] = sop_32<([](uint32_t a, uint32_t b, bool c) { return R32{static_cast<uint32_t>((int64_t{i32(a)} * i32(b)) >> 32), c}; })>;
  t["s_bfe_u32"] = sop_32<([](uint32_t a, uint32_t b, bool) {
    uint32_t off = b & 31, width = (b >> 16) & 0x7f, d = width == 0 ? 0 : width + off >= 32 ? a >> off : (a >> off) & ((1u << width) - 1);
    return R32{d, d != 0};
  })>;
  t["s_bfe_i32"] = sop_32<([](uint32_t a, uint32_t b, bool) {
    uint32_t off = b & 31, width = (b >> 16) & 0x7f;
    if (width == 0) return R32{0, false};
    if (width + off > 32) width = 32 - off;
    uint32_t d = static_cast<uint32_t>(i32(a << (32 - off - width)) >> (32 - width));
    return R32{d, d != 0};
  })>;
  t["s_bfe_u64"] = sop_64_32<([](uint64_t a, uint32_t b, bool) {
    uint32_t off = b & 63, width = (b >> 16) & 0x7f;
    uint64_t d = width == 0 ? 0 : width + off >= 64 ? a >> off : (a >> off) & ((uint64_t{1} << width) - 1);
    return R64{d, d != 0};
  })>;
  t["s_absdiff_i32"] = sop_32<([](uint32_t a, uint32_t b, bool) { int64_t d = int64_t{i32(a)} - i32(b); uint32_t r = static_cast<uint32_t>(d < 0 ? -d : d); return R32{r, r != 0}; })>;
  t["s_lshl1_add_u32"] = sop_32<([](uint32_t a, uint32_t b, bool) { uint64_t s = (uint64_t{a} << 1) + b; return R32{static_cast<uint32_t>(s), s > 0xffffffffu}; })>;
  t["s_lshl2_add_u32"] = sop_32<([](uint32_t a, uint32_t b, bool) { uint64_t s = (uint64_t{a} << 2) + b; return R32{static_cast<uint32_t>(s), s > 0xffffffffu}; })>;
  t["s_lshl3_add_u32"] = sop_32<([](uint32_t a, uint32_t b, bool) { uint64_t s = (uint64_t{a} << 3) + b; return R32{static_cast<uint32_t>(s), s > 0xffffffffu}; })>;
  t["s_lshl4_add_u32"] = sop_32<([](uint32_t a, uint32_t b, bool) { uint64_t s = (uint64_t{a} << 4) + b; return R32{static_cast<uint32_t>(s), s > 0xffffffffu}; })>;
  t["s_pack_ll_b32_b16"] = sop_32<([](uint32_t a, uint32_t b, bool c) { return R32{(a & 0xffff) | (b << 16), c}; })>;
  t["s_pack_lh_b32_b16"] = sop_32<([](uint32_t a, uint32_t b, bool c) { return R32{(a & 0xffff) | (b & 0xffff0000u), c}; })>;
  t["s_pack_hh_b32_b16"] = sop_32<([](uint32_t a, uint32_t b, bool c) { return R32{(a >> 16) | (b & 0xffff0000u), c}; })>;

  // SOP1
  t["s_mov_b32"] = sop_32<([](uint32_t a, uint32_t, bool c) { return R32{a, c}; })>;
  t["s_mov_b64"] = sop_64<([](uint64_t a, uint64_t, bool c) { return R64{a, c}; })>;
  t["s_cmov_b32"] = [](Wave& w, const Inst& in) {
    if (w.scc) w.write(in.dst.index, w.value(in.src[0]));
  };
  t["s_cmov_b64"] = [](Wave& w, const Inst& in) {
    if (w.scc) w.write64(in.dst.index, w.value64(in.src[0]));
  };
  t["s_not_b32"] = sop_32<([](uint32_t a, uint32_t, bool) { return R32{~a, ~a != 0}; })>;
  t["s_not_b64"] = sop_64<([](uint64_t a, uint64_t, bool) { return R64{~a, ~a != 0}; })>;
  t["s_brev_b32"] = sop_32<([](uint32_t a, uint32_t, bool c) {
    uint32_t r = 0;
    for (int i = 0; i < 32; ++i) r |= ((a >> i) & 1) << (31 - i);
    return R32{r, c};
  })>;
  t["s_bcnt1_i32_b32"] = sop_32<([](uint32_t a, uint32_t, bool) { uint32_t n = static_cast<uint32_t>(std::popcount(a)); return R32{n, n != 0}; })>;
  t["s_bcnt1_i32_b64"] = [](Wave& w, const Inst& in) {
    uint32_t n = static_cast<uint32_t>(std::popcount(w.value64(in.src[0])));
    w.write(in.dst.index, n);
    w.scc = n != 0;
  };
  t["s_ff1_i32_b32"] = sop_32<([](uint32_t a, uint32_t, bool c) { return R32{a ? static_cast<uint32_t>(std::countr_zero(a)) : ~0u, c}; })>;
  t["s_ff1_i32_b64"] = [](Wave& w, const Inst& in) {
    uint64_t a = w.value64(in.src[0]);
    w.write(in.dst.index, a ? static_cast<uint32_t>(std::countr_zero(a)) : ~0u);
  };
  t["s_flbit_i32_b32"] = sop_32<([](uint32_t a, uint32_t, bool c) { return R32{a ? static_cast<uint32_t>(std::countl_zero(a)) : ~0u, c}; })>;
  t["s_sext_i32_i8"] = sop_32<([](uint32_t a, uint32_t, bool c) { return R32{static_cast<uint32_t>(static_cast<int32_t>(static_cast<int8_t>(a))), c}; })>;
  t["s_sext_i32_i16"] = sop_32<([](uint32_t a, uint32_t, bool c) { return R32{sext16(static_cast<int32_t>(a)), c}; })>;
  t["s_bitset0_b32"] = [](Wave& w, const Inst& in) { w.write(in.dst.index, w.read(in.dst.index) & ~(1u << (w.value(in.src[0]) & 31))); };
  t["s_bitset1_b32"] = [](Wave& w, const Inst& in) { w.write(in.dst.index, w.read(in.dst.index) | (1u << (w.value(in.src[0]) & 31))); };
  t["s_abs_i32"] = sop_32<([](uint32_t a, uint32_t, bool) { uint32_t r = i32(a) < 0 ? 0u - a : a; return R32{r, r != 0}; })>;
  t["s_and_saveexec_b64"] = saveexec<([](uint64_t s, uint64_t e) { return s & e; })>;
  t["s_or_saveexec_b64"] = saveexec<([](uint64_t s, uint64_t e) { return s | e; })>;
  t["s_xor_saveexec_b64"] = saveexec<([](uint64_t s, uint64_t e) { return s ^ e; })>;
  t["s_andn2_saveexec_b64"] = saveexec<([](uint64_t s, uint64_t e) { return s & ~e; })>;
  t["s_orn2_saveexec_b64"] = saveexec<([](uint64_t s, uint64_t e) { return s | ~e; })>;
  t["s_andn1_saveexec_b64"] = saveexec<([](uint64_t s, uint64_t e) { return ~s & e; })>;
  t["s_orn1_saveexec_b64"] = saveexec<([](uint64_t s, uint64_t e) { return ~s | e; })>;
  t["s_andn1_wrexec_b64"] = saveexec<([](uint64_t s, uint64_t e) { return ~s & e; }), true>;
  t["s_andn2_wrexec_b64"] = saveexec<([](uint64_t s, uint64_t e) { return s & ~e; }), true>;

  // SOPC
  t["s_cmp_eq_i32"] = t["s_cmp_eq_u32"] = sop_cmp32<([](uint32_t a, uint32_t b) { return a == b; })>;
  t["s_cmp_lg_i32"] = t["s_cmp_lg_u32"] = sop_cmp32<([](uint32_t a, uint32_t b) { return a != b; })>;
  t["s_cmp_gt_i32"] = sop_cmp32<([](uint32_t a, uint32_t b) { return i32(a) > i32(b); })>;
  t["s_cmp_ge_i32"] = sop_cmp32<([](uint32_t a, uint32_t b) { return i32(a) >= i32(b); })>;
  t["s_cmp_lt_i32"] = sop_cmp32<([](uint32_t a, uint32_t b) { return i32(a) < i32(b); })>;
  t["s_cmp_le_i32"] = sop_cmp32<([](uint32_t a, uint32_t b) { return i32(a) <= i32(b); })>;
  t["s_cmp_gt_u32"] = sop_cmp32<([](uint32_t a, uint32_t b) { return a > b; })>;
  t["s_cmp_ge_u32"] = sop_cmp32<([](uint32_t a, uint32_t b) { return a >= b; })>;
  t["s_cmp_lt_u32"] = sop_cmp32<([](uint32_t a, uint32_t b) { return a < b; })>;
  t["s_cmp_le_u32"] = sop_cmp32<([](uint32_t a, uint32_t b) { return a <= b; })>;
  t["s_cmp_eq_u64"] = sop_cmp64<([](uint64_t a, uint64_t b) { return a == b; })>;
  t["s_cmp_lg_u64"] = sop_cmp64<([](uint64_t a, uint64_t b) { return a != b; })>;
  t["s_bitcmp0_b32"] = sop_cmp32<([](uint32_t a, uint32_t b) { return ((a >> (b & 31)) & 1) == 0; })>;
  t["s_bitcmp1_b32"] = sop_cmp32<([](uint32_t a, uint32_t b) { return ((a >> (b & 31)) & 1) == 1; })>;
  t["s_bitcmp0_b64"] = [](Wave& w, const Inst& in) { w.scc = ((w.value64(in.src[0]) >> (w.value(in.src[1]) & 63)) & 1) == 0; };
  t["s_bitcmp1_b64"] = [](Wave& w, const Inst& in) { w.scc = ((w.value64(in.src[0]) >> (w.value(in.src[1]) & 63)) & 1) == 1; };

  // SOPK (the 16-bit immediate sign-extended for _i32, zero-extended for _u32)
  t["s_movk_i32"] = sopk<([](uint32_t, uint32_t k, bool c) { return R32{sext16(static_cast<int32_t>(k)), c}; })>;
  t["s_cmovk_i32"] = sopk<([](uint32_t d, uint32_t k, bool c) { return R32{c ? sext16(static_cast<int32_t>(k)) : d, c}; })>;
  t["s_addk_i32"] = sopk<([](uint32_t d, uint32_t k, bool) {
    uint32_t b = sext16(static_cast<int32_t>(k)), r = d + b;
    return R32{r, ((~(d ^ b) & (d ^ r)) >> 31) != 0};
  })>;
  t["s_mulk_i32"] = sopk<([](uint32_t d, uint32_t k, bool c) { return R32{d * sext16(static_cast<int32_t>(k)), c}; })>;
  t["s_cmpk_eq_i32"] = sopk_cmp<([](uint32_t d, uint32_t k) { return d == sext16(static_cast<int32_t>(k)); })>;
  t["s_cmpk_lg_i32"] = sopk_cmp<([](uint32_t d, uint32_t k) { return d != sext16(static_cast<int32_t>(k)); })>;
  t["s_cmpk_gt_i32"] = sopk_cmp<([](uint32_t d, uint32_t k) { return i32(d) > static_cast<int16_t>(k); })>;
  t["s_cmpk_ge_i32"] = sopk_cmp<([](uint32_t d, uint32_t k) { return i32(d) >= static_cast<int16_t>(k); })>;
  t["s_cmpk_lt_i32"] = sopk_cmp<([](uint32_t d, uint32_t k) { return i32(d) < static_cast<int16_t>(k); })>;
  t["s_cmpk_le_i32"] = sopk_cmp<([](uint32_t d, uint32_t k) { return i32(d) <= static_cast<int16_t>(k); })>;
  t["s_cmpk_eq_u32"] = sopk_cmp<([](uint32_t d, uint32_t k) { return d == (k & 0xffff); })>;
  t["s_cmpk_lg_u32"] = sopk_cmp<([](uint32_t d, uint32_t k) { return d != (k & 0xffff); })>;
  t["s_cmpk_gt_u32"] = sopk_cmp<([](uint32_t d, uint32_t k) { return d > (k & 0xffff); })>;
  t["s_cmpk_ge_u32"] = sopk_cmp<([](uint32_t d, uint32_t k) { return d >= (k & 0xffff); })>;
  t["s_cmpk_lt_u32"] = sopk_cmp<([](uint32_t d, uint32_t k) { return d < (k & 0xffff); })>;
  t["s_cmpk_le_u32"] = sopk_cmp<([](uint32_t d, uint32_t k) { return d <= (k & 0xffff); })>;

  // SOPP: memory completes at once here, so the waits and hints have nothing to do.
  for (const char* hint : {"s_nop", "s_waitcnt", "s_setprio", "s_sleep", "s_icache_inv", "s_incperflevel", "s_decperflevel", "s_ttracedata"})
    t[hint] = [](Wave&, const Inst&) {};
  t["s_endpgm"] = [](Wave& w, const Inst&) { w.state = Wave::State::Done; };
  t["s_barrier"] = [](Wave& w, const Inst&) { w.state = Wave::State::AtBarrier; };
  t["s_trap"] = [](Wave&, const Inst& in) { throw Fault("the kernel executed " + describe(in) + " (a trap: on a GPU the queue would stop here)"); };
  t["s_branch"] = [](Wave& w, const Inst& in) { branch_if(w, in, true); };
  t["s_cbranch_scc0"] = [](Wave& w, const Inst& in) { branch_if(w, in, !w.scc); };
  t["s_cbranch_scc1"] = [](Wave& w, const Inst& in) { branch_if(w, in, w.scc); };
  t["s_cbranch_vccz"] = [](Wave& w, const Inst& in) { branch_if(w, in, w.vcc() == 0); };
  t["s_cbranch_vccnz"] = [](Wave& w, const Inst& in) { branch_if(w, in, w.vcc() != 0); };
  t["s_cbranch_execz"] = [](Wave& w, const Inst& in) { branch_if(w, in, w.exec() == 0); };
  t["s_cbranch_execnz"] = [](Wave& w, const Inst& in) { branch_if(w, in, w.exec() != 0); };
}

}  // namespace lathe::amd::emu
