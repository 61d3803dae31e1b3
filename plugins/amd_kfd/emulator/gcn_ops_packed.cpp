// VOP3P: packed two-lane-half float math (v_pk_*_f32 on register pairs, halves chosen by
// OP_SEL and OP_SEL_HI, negated by NEG and NEG_HI) and moves between VGPRs and AGPRs.
#include <cmath>
#include <cstdint>

#include "gcn_program.h"
#include "gcn_valu.h"

namespace lathe::amd::emu {
namespace {

// One 32-bit half of source i for the low (hi = false) or high result half.
uint32_t packed_half(const uint64_t* s, const Inst& in, int i, int l, bool hi) {
  const bool upper = ((hi ? in.op_sel_hi : in.op_sel) >> i) & 1;
  return static_cast<uint32_t>(s[l] >> (upper ? 32 : 0));
}

template <int N, auto F>
void packed_f32(Wave& w, const Inst& in) {
  uint64_t s[3][kMaxLanes], d[kMaxLanes];
  for (int i = 0; i < N; ++i) fetch64(w, in, i, s[i], false);
  for (int l = 0; l < w.lanes; ++l) {
    uint32_t half[2];
    for (int h = 0; h < 2; ++h) {
      float x[3];
      for (int i = 0; i < N; ++i) {
        x[i] = as_float(packed_half(s[i], in, i, l, h));
        if (((h ? in.neg_hi : in.neg) >> i) & 1) x[i] = -x[i];
        if (w.ctx->flush_f32) x[i] = flush(x[i]);
      }
      float r;
      if constexpr (N == 2) r = F(x[0], x[1]);
      else r = F(x[0], x[1], x[2]);
      if (in.clamp) r = std::isnan(r) ? 0.0f : std::fmin(std::fmax(r, 0.0f), 1.0f);
      half[h] = as_bits(w.ctx->flush_f32 ? flush(r) : r);
    }
    d[l] = half[0] | uint64_t{half[1]} << 32;
  }
  store64(w, in, d);
}

void pk_mov(Wave& w, const Inst& in) {
  uint64_t a[kMaxLanes], b[kMaxLanes], d[kMaxLanes];
  fetch64(w, in, 0, a, false);
  fetch64(w, in, 1, b, false);
  for (int l = 0; l < w.lanes; ++l) {
    const uint32_t lo = static_cast<uint32_t>(a[l] >> ((in.op_sel & 1) ? 32 : 0)), hi = static_cast<uint32_t>(b[l] >> ((in.op_sel & 2) ? 32 : 0));
    d[l] = lo | uint64_t{hi} << 32;
  }
  store64(w, in, d);
}

void move(Wave& w, const Inst& in) {
  uint32_t a[kMaxLanes];
  fetch(w, in, 0, a);
  store(w, in, a);
}

}  // namespace

void add_packed_ops(OpTable& t) {
  t["v_pk_add_f32"] = packed_f32<2, ([](float a, float b) { return a + b; })>;
  t["v_pk_mul_f32"] = packed_f32<2, ([](float a, float b) { return a * b; })>;
  t["v_pk_fma_f32"] = packed_f32<3, ([](float a, float b, float c) { return std::fma(a, b, c); })>;
  t["v_pk_mov_b32"] = pk_mov;
  t["v_accvgpr_write_b32"] = move;
  t["v_accvgpr_read_b32"] = move;
  t["v_accvgpr_mov_b32"] = move;
}

}  // namespace lathe::amd::emu
