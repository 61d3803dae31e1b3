// The AMD emulator instruction by instruction: short sequences assembled with llvm's assembler
// into real gfx942 code objects, with the expected results worked out from the ISA's
// definitions (carries, shifts that mask their amount, signed 24-bit multiplies, SDWA selects,
// EXEC-masked lanes, NaN and signed-zero rules, denormal modes, the division macro, MFMA).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

#include "amd_asm_harness.h"

namespace lathe::amd {
namespace {

using asm_test::AsmKernel;
using asm_test::bits;
using asm_test::rows;
using asm_test::value;

bool have_tools() { return !find_toolchain().clang.empty() && !find_toolchain().lld.empty(); }
#define NEED_TOOLS() \
  if (!have_tools()) GTEST_SKIP() << "no clang/ld.lld for AMDGPU on PATH"

std::vector<uint32_t> random_words(uint32_t seed, int n = 64) {
  std::mt19937 rng(seed);
  std::vector<uint32_t> v(n);
  for (auto& x : v) x = rng();
  return v;
}

// Runs `body` (v4 = f(v1, v2, v3)) and checks every lane against `want`.
template <class F>
void expect_lanes(const std::string& body, const std::vector<uint32_t>& a, const std::vector<uint32_t>& b, const std::vector<uint32_t>& c, F want,
                  const std::string& directives = "") {
  AsmKernel k;
  k.body = body;
  k.directives = directives;
  auto r = asm_test::run(k, rows(a, b, c));
  ASSERT_TRUE(r.fault.empty()) << r.fault;
  for (int l = 0; l < 64; ++l) {
    const uint32_t x = a[l % a.size()], y = b.empty() ? 0 : b[l % b.size()], z = c.empty() ? 0 : c[l % c.size()];
    ASSERT_EQ(r.out[l], want(x, y, z)) << body << "\nlane " << l << " inputs " << x << " " << y << " " << z;
  }
}

TEST(AmdEmulator, VectorIntegerInstructions) {
  NEED_TOOLS();
  auto a = random_words(1), b = random_words(2), c = random_words(3);
  b[0] = 33, b[1] = 0, b[2] = 31;  // shift amounts use their low 5 bits
  expect_lanes("v_add_u32 v4, v1, v2", a, b, c, [](uint32_t x, uint32_t y, uint32_t) { return x + y; });
  expect_lanes("v_subrev_u32 v4, v1, v2", a, b, c, [](uint32_t x, uint32_t y, uint32_t) { return y - x; });
  expect_lanes("v_mul_hi_u32 v4, v1, v2", a, b, c, [](uint32_t x, uint32_t y, uint32_t) { return uint32_t((uint64_t{x} * y) >> 32); });
  expect_lanes("v_lshlrev_b32 v4, v2, v1", a, b, c, [](uint32_t x, uint32_t y, uint32_t) { return x << (y & 31); });
  expect_lanes("v_ashrrev_i32 v4, v2, v1", a, b, c, [](uint32_t x, uint32_t y, uint32_t) { return uint32_t(int32_t(x) >> (y & 31)); });
  expect_lanes("v_mul_i32_i24 v4, v1, v2", a, b, c, [](uint32_t x, uint32_t y, uint32_t) {
    return uint32_t((int64_t(int32_t(x << 8) >> 8) * (int32_t(y << 8) >> 8)));  // bit 23 is the sign; bits 24-31 ignored
  });
  expect_lanes("v_mad_u32_u24 v4, v1, v2, v3", a, b, c, [](uint32_t x, uint32_t y, uint32_t z) { return (x & 0xffffff) * (y & 0xffffff) + z; });
  expect_lanes("v_alignbit_b32 v4, v1, v2, v3", a, b, c, [](uint32_t x, uint32_t y, uint32_t z) { return uint32_t(((uint64_t{x} << 32) | y) >> (z & 31)); });
  expect_lanes("v_bfe_i32 v4, v1, 4, 12", a, b, c, [](uint32_t x, uint32_t, uint32_t) { return uint32_t(int32_t(x << 16) >> 20); });
  expect_lanes("v_max_i32 v4, v1, v2", a, b, c, [](uint32_t x, uint32_t y, uint32_t) { return int32_t(x) > int32_t(y) ? x : y; });
  expect_lanes("v_med3_u32 v4, v1, v2, v3", a, b, c, [](uint32_t x, uint32_t y, uint32_t z) { return std::max(std::min(x, y), std::min(std::max(x, y), z)); });
  expect_lanes("v_bfi_b32 v4, v1, v2, v3", a, b, c, [](uint32_t x, uint32_t y, uint32_t z) { return (x & y) | (~x & z); });
  expect_lanes("s_mov_b32 s10, 0x0c0a0501\nv_perm_b32 v4, v1, v2, s10", a, b, c, [](uint32_t x, uint32_t y, uint32_t) {
    const uint64_t d = (uint64_t{x} << 32) | y;  // selector bytes: 1 = byte 1, 5 = byte 5, 10 = sign of byte 5, 12 = zero
    return uint32_t((d >> 8) & 0xff) | uint32_t((d >> 40) & 0xff) << 8 | ((d >> 47) & 1 ? 0xffu : 0u) << 16;
  });
  expect_lanes("v_ffbh_u32 v4, v2", a, b, c, [](uint32_t, uint32_t y, uint32_t) { return y ? uint32_t(__builtin_clz(y)) : ~0u; });
  // 16-bit forms use the low halves and zero the high half of the result.
  expect_lanes("v_mul_lo_u16 v4, v1, v2", a, b, c, [](uint32_t x, uint32_t y, uint32_t) { return ((x & 0xffff) * (y & 0xffff)) & 0xffff; });
  // SDWA: byte 1 of v1 sign-extended plus word 1 of v2, into the destination's byte 2 with the rest zero.
  expect_lanes("v_add_u32_sdwa v4, sext(v1), v2 dst_sel:BYTE_2 dst_unused:UNUSED_PAD src0_sel:BYTE_1 src1_sel:WORD_1", a, b, c,
               [](uint32_t x, uint32_t y, uint32_t) { return ((uint32_t(int32_t(int8_t(x >> 8))) + (y >> 16)) & 0xff) << 16; });
}

TEST(AmdEmulator, CarriesAndSixtyFourBitArithmetic) {
  NEED_TOOLS();
  auto a = random_words(4), b = random_words(5), c = random_words(6);
  a[0] = 0xffffffffu, b[0] = 1;
  // (v2:v1) + (v3:v2) through VCC, high word out.
  expect_lanes("v_add_co_u32 v5, vcc, v1, v2\nv_addc_co_u32 v4, vcc, v2, v3, vcc", a, b, c, [](uint32_t x, uint32_t y, uint32_t z) {
    return uint32_t(((uint64_t{y} << 32 | x) + (uint64_t{z} << 32 | y)) >> 32);
  });
  expect_lanes("v_mov_b32 v10, v1\nv_mov_b32 v11, v2\nv_mov_b32 v12, v2\nv_mov_b32 v13, v3\nv_mad_u64_u32 v[6:7], s[10:11], v1, v2, v[12:13]\nv_mov_b32 v4, v7", a, b, c, [](uint32_t x, uint32_t y, uint32_t z) {
    return uint32_t((uint64_t{x} * y + (uint64_t{z} << 32 | y)) >> 32);
  });
  expect_lanes("v_mov_b32 v10, v1\nv_mov_b32 v11, v2\nv_mov_b32 v12, v2\nv_mov_b32 v13, v3\nv_lshlrev_b64 v[6:7], 35, v[10:11]\nv_mov_b32 v4, v7", a, b, c, [](uint32_t x, uint32_t y, uint32_t) { return uint32_t((uint64_t{y} << 32 | x) << 35 >> 32); });
  expect_lanes("v_mov_b32 v10, v1\nv_mov_b32 v11, v2\nv_mov_b32 v12, v2\nv_mov_b32 v13, v3\nv_lshl_add_u64 v[6:7], v[10:11], 3, v[12:13]\nv_mov_b32 v4, v6", a, b, c, [](uint32_t x, uint32_t y, uint32_t z) {
    return uint32_t(((uint64_t{y} << 32 | x) << 3) + (uint64_t{z} << 32 | y));
  });
  // Scalar: a 64-bit add through SCC and a loop counted down with s_cbranch_scc1.
  expect_lanes("s_mov_b32 s10, -1\ns_mov_b32 s11, 5\ns_add_u32 s12, s10, 2\ns_addc_u32 s13, s11, 0\n"
               "s_mov_b32 s14, 0\ns_mov_b32 s15, 10\nloop:\ns_add_i32 s14, s14, s15\ns_sub_u32 s15, s15, 1\ns_cmp_lg_u32 s15, 0\n"
               "s_cbranch_scc1 loop\ns_mul_i32 s14, s14, s13\nv_mov_b32 v4, s14\nv_add_u32 v4, s12, v4",
               a, b, c, [](uint32_t, uint32_t, uint32_t) { return 55u * 6 + 1; });
}

TEST(AmdEmulator, ExecMaskedLanesKeepTheirValuesAndCompareBitsAreCleared) {
  NEED_TOOLS();
  auto a = random_words(7), b = random_words(8), c = random_words(9);
  // Odd lanes off: the move skips them, and a compare true everywhere sets only even lanes' bits.
  AsmKernel k;
  k.body = "v_mov_b32 v4, v1\ns_mov_b32 s12, 0x55555555\ns_mov_b32 s13, s12\ns_and_saveexec_b64 s[10:11], s[12:13]\nv_mov_b32 v4, 7\n"
           "v_cmp_eq_u32 vcc, v2, v2\ns_mov_b64 exec, s[10:11]\nv_mov_b32 v20, 0x64\nv_cndmask_b32 v5, 0, v20, vcc\nv_add_u32 v4, v4, v5";
  auto r = asm_test::run(k, rows(a, b, c));
  ASSERT_TRUE(r.fault.empty()) << r.fault;
  for (int l = 0; l < 64; ++l) EXPECT_EQ(r.out[l], l % 2 == 0 ? 107u : a[l]) << "lane " << l;
}

TEST(AmdEmulator, FloatRulesForNanSignedZeroConversionsAndFma) {
  NEED_TOOLS();
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  std::vector<uint32_t> a = {bits(nan), bits(-0.0f), bits(0.0f), bits(3e9f), bits(-3e9f), bits(-1.5f), bits(2.5f), bits(1.0f + 0x1p-23f)};
  std::vector<uint32_t> b = {bits(1.0f), bits(0.0f), bits(-0.0f), bits(1.0f), bits(1.0f), bits(1.0f), bits(1.0f), bits(1.0f - 0x1p-23f)};
  std::vector<uint32_t> c = {bits(0.0f), bits(0.0f), bits(0.0f), bits(0.0f), bits(0.0f), bits(0.0f), bits(0.0f), bits(-1.0f)};
  expect_lanes("v_max_f32 v4, v1, v2", a, b, c, [&](uint32_t x, uint32_t y, uint32_t) {
    float p = value(x), q = value(y);
    if (std::isnan(p)) return y;  // one quiet NaN: the other operand
    if (p == 0 && q == 0) return bits(0.0f);  // -0 < +0
    return bits(std::max(p, q));
  });
  expect_lanes("v_min_f32 v4, v1, v2", a, b, c, [&](uint32_t x, uint32_t y, uint32_t) {
    float p = value(x), q = value(y);
    if (std::isnan(p)) return y;
    if (p == 0 && q == 0) return bits(-0.0f);
    return bits(std::min(p, q));
  });
  expect_lanes("v_fma_f32 v4, v1, v2, v3", a, b, c, [](uint32_t x, uint32_t y, uint32_t z) { return bits(std::fma(value(x), value(y), value(z))); });
  // Out of range saturates, NaN converts to 0; rndne rounds half to even.
  expect_lanes("v_cvt_i32_f32 v4, v1", a, b, c, [](uint32_t x, uint32_t, uint32_t) {
    float f = value(x);
    return std::isnan(f) ? 0u : f >= 2147483647.0f ? 0x7fffffffu : f <= -2147483648.0f ? 0x80000000u : uint32_t(int32_t(f));
  });
  expect_lanes("v_cvt_u32_f32 v4, v1", a, b, c, [](uint32_t x, uint32_t, uint32_t) {
    float f = value(x);
    return std::isnan(f) || f <= 0 ? 0u : uint32_t(f);
  });
  expect_lanes("v_rndne_f32 v4, v1", a, b, c, [](uint32_t x, uint32_t, uint32_t) { return bits(std::nearbyint(value(x))); });
  expect_lanes("v_mul_f32 v4, -|v1|, v2", a, b, c, [](uint32_t x, uint32_t y, uint32_t) { return bits(-std::fabs(value(x)) * value(y)); });
  std::vector<uint32_t> t = {bits(0.0f), bits(-0.0f), bits(inf), bits(-1.0f), bits(4.0f), bits(0.25f), bits(-126.5f), bits(nan)};
  expect_lanes("v_rcp_f32 v4, v1", t, {}, {}, [](uint32_t x, uint32_t, uint32_t) { return bits(1.0f / value(x)); });
  expect_lanes("v_sqrt_f32 v4, v1", t, {}, {}, [](uint32_t x, uint32_t, uint32_t) {
    float r = std::sqrt(value(x));
    return bits(r);
  });
  expect_lanes("v_exp_f32 v4, v1", t, {}, {}, [](uint32_t x, uint32_t, uint32_t) {
    float r = std::exp2(value(x));
    return std::fpclassify(r) == FP_SUBNORMAL ? 0u : bits(r);  // the transcendental unit gives no denormals
  });
  // v_cmp_class: bit 1 quiet NaN, 5 -0, 9 +inf.
  expect_lanes("s_movk_i32 s20, 0x222\nv_cmp_class_f32 vcc, v1, s20\nv_cndmask_b32 v4, 0, 1, vcc", t, {}, {},
               [](uint32_t x, uint32_t, uint32_t) { return uint32_t(std::isnan(value(x)) || x == bits(-0.0f) || value(x) == std::numeric_limits<float>::infinity()); });
}

TEST(AmdEmulator, DenormalModesFlushOrKeep) {
  NEED_TOOLS();
  std::vector<uint32_t> a = {bits(1e-40f), bits(-1e-40f), bits(1.5f)};
  std::vector<uint32_t> b = {bits(1.0f)};
  expect_lanes("v_mul_f32 v4, v1, v2", a, b, {}, [](uint32_t x, uint32_t, uint32_t) { return x; }, ".amdhsa_float_denorm_mode_32 3");
  expect_lanes("v_mul_f32 v4, v1, v2", a, b, {}, [](uint32_t x, uint32_t, uint32_t) {
    return std::fpclassify(value(x)) == FP_SUBNORMAL ? (x & 0x80000000u) : x;  // flushed to zero of the same sign
  }, ".amdhsa_float_denorm_mode_32 0");
}

// The full-precision division macro clang emits: scale, reciprocal, Newton-Raphson, fmas, fixup.
TEST(AmdEmulator, DivisionMacroIsCorrectlyRounded) {
  NEED_TOOLS();
  const std::string body =
      "v_div_scale_f32 v5, s[10:11], v2, v2, v1\nv_div_scale_f32 v6, vcc, v1, v2, v1\nv_rcp_f32 v7, v5\n"
      "v_fma_f32 v8, -v5, v7, 1.0\nv_fma_f32 v7, v8, v7, v7\nv_mul_f32 v8, v6, v7\nv_fma_f32 v9, -v5, v8, v6\n"
      "v_fma_f32 v8, v9, v7, v8\nv_fma_f32 v5, -v5, v8, v6\nv_div_fmas_f32 v5, v5, v7, v8\nv_div_fixup_f32 v4, v5, v2, v1";
  std::mt19937 rng(11);
  std::vector<uint32_t> a(64), b(64);
  for (int i = 0; i < 64; ++i) {
    a[i] = bits(std::ldexp(std::uniform_real_distribution<float>(1, 2)(rng), int(rng() % 60) - 30));
    b[i] = bits(std::ldexp(std::uniform_real_distribution<float>(1, 2)(rng), int(rng() % 60) - 30));
  }
  const float inf = std::numeric_limits<float>::infinity();
  a[0] = bits(1.0f), b[0] = bits(0.0f);       // x/0
  a[1] = bits(0.0f), b[1] = bits(0.0f);       // 0/0
  a[2] = bits(3e38f), b[2] = bits(1e-5f);     // overflows
  a[3] = bits(1e-30f), b[3] = bits(1e10f);    // a denormal quotient
  a[4] = bits(1e-40f), b[4] = bits(3.0f);     // a denormal numerator
  a[5] = bits(inf), b[5] = bits(2.0f);
  a[6] = bits(2.0f), b[6] = bits(3e38f);
  expect_lanes(body, a, b, {}, [](uint32_t x, uint32_t y, uint32_t) {
    float q = value(x) / value(y);
    return std::isnan(q) ? bits(q) | 0x00400000u : bits(q);
  }, ".amdhsa_float_denorm_mode_32 3");
}

// v_mfma_f32_16x16x16_bf16 against the CDNA3 ISA's dense layouts, restated here: lane i + 16q
// holds A row i (B column i) at steps 4q..4q + 3, two per register with the lower step in the
// low half, and C/D column i at rows 4q..4q + 3. A = (v1, v2), B = (v2, v3) (copied to aligned
// pairs), C = lane + {0, 1, 2, 4};
// C and D in VGPRs, then in AGPRs (ACC_CD). Small-integer bf16 values make every sum exact.
TEST(AmdEmulator, MfmaComputesTheTileProductOfItsLanesFragments) {
  NEED_TOOLS();
  std::mt19937 rng(5);
  auto bf16_int = [&] { return static_cast<uint32_t>(bits(static_cast<float>(static_cast<int>(rng() % 9) - 4)) >> 16); };
  std::vector<uint32_t> v1(64), v2(64), v3(64);
  for (auto* v : {&v1, &v2, &v3})
    for (auto& w : *v) w = bf16_int() | bf16_int() << 16;
  auto half = [](uint32_t w, int h) { return value((h ? w >> 16 : w & 0xffff) << 16); };
  const std::vector<uint32_t>* a_regs[2] = {&v1, &v2};
  const std::vector<uint32_t>* b_regs[2] = {&v2, &v3};
  auto A = [&](int row, int k) { return half((*a_regs[k % 4 / 2])[row + 16 * (k / 4)], k % 2); };
  auto B = [&](int k, int col) { return half((*b_regs[k % 4 / 2])[col + 16 * (k / 4)], k % 2); };
  const float c_add[4] = {0, 1, 2, 4};
  const std::string c_setup = "v_mov_b32 v16, v1\nv_mov_b32 v17, v2\nv_mov_b32 v18, v2\nv_mov_b32 v19, v3\nv_cvt_f32_u32 v12, v0\nv_add_f32 v13, 1.0, v12\nv_add_f32 v14, 2.0, v12\nv_add_f32 v15, 4.0, v12\n";
  for (bool agprs : {false, true})
    for (int r = 0; r < 4; ++r) {
      AsmKernel k;
      const std::string reg = std::to_string(r);
      if (agprs)
        k.body = c_setup + "v_accvgpr_write_b32 a0, v12\nv_accvgpr_write_b32 a1, v13\nv_accvgpr_write_b32 a2, v14\nv_accvgpr_write_b32 a3, v15\n"
                 "v_mfma_f32_16x16x16_bf16 a[0:3], v[16:17], v[18:19], a[0:3]\ns_nop 7\ns_nop 7\ns_nop 2\nv_accvgpr_read_b32 v4, a" + reg;
      else
        k.body = c_setup + "v_mfma_f32_16x16x16_bf16 v[8:11], v[16:17], v[18:19], v[12:15]\ns_nop 7\ns_nop 7\ns_nop 2\nv_mov_b32 v4, v" +
                 std::to_string(8 + r);
      auto run = asm_test::run(k, rows(v1, v2, v3));
      ASSERT_TRUE(run.fault.empty()) << run.fault;
      for (int l = 0; l < 64; ++l) {
        const int row = 4 * (l / 16) + r, col = l % 16;
        // C's register r of the lane holding (row, col): that lane is l itself.
        float want = static_cast<float>(l) + c_add[r];
        for (int kk = 0; kk < 16; ++kk) want += A(row, kk) * B(kk, col);
        ASSERT_EQ(value(run.out[l]), want) << (agprs ? "AGPRs" : "VGPRs") << ", register " << r << ", lane " << l;
      }
    }
  AsmKernel broadcast;
  broadcast.body = c_setup + "v_mfma_f32_16x16x16_bf16 v[8:11], v[16:17], v[18:19], v[12:15] blgp:1\nv_mov_b32 v4, v8";
  auto run = asm_test::run(broadcast, rows(v1, v2, v3));
  EXPECT_NE(run.fault.find("v_mfma_f32_16x16x16_bf16"), std::string::npos) << run.fault;
  EXPECT_NE(run.fault.find("BLGP"), std::string::npos) << run.fault;
}

}  // namespace
}  // namespace lathe::amd
