// VOP3P: packed two-lane-half float math (v_pk_*_f32 on register pairs, halves chosen by
// OP_SEL and OP_SEL_HI, negated by NEG and NEG_HI) and moves between VGPRs and AGPRs.
#include <cmath>
#include <cstdint>

#include "gcn_program.h"
#include "gcn_valu.h"

namespace lathe::amd::emu {
namespace {

// Each result half takes a dword of each source pair (OP_SEL for the low half, OP_SEL_HI for
// the high one) and may negate it (NEG, NEG_HI); rows of lanes keep the loops vectorizable.
// The chosen dword of source i in every lane: a row of the register pair, or a scalar's half.
const uint32_t* half_row(const Wave& w, const Inst& in, int i, bool upper, uint32_t* tmp) {
  const Operand& o = in.src[i];
  if (o.is_vector()) return w.v[o.index + (upper ? 1 : 0)];
  const uint32_t x = static_cast<uint32_t>(w.value64(o) >> (upper ? 32 : 0));
  for (int l = 0; l < kMaxLanes; ++l) tmp[l] = x;
  return tmp;
}

template <int N, auto F>
void packed_f32(Wave& w, const Inst& in) {
  float x[2][3][kMaxLanes];
  uint32_t tmp[kMaxLanes];
  for (int i = 0; i < N; ++i)
    for (int h = 0; h < 2; ++h) {
      const uint32_t* row = half_row(w, in, i, (((h ? in.op_sel_hi : in.op_sel) >> i) & 1) != 0, tmp);
      const uint32_t sign = (((h ? in.neg_hi : in.neg) >> i) & 1) ? 0x80000000u : 0u;
      for (int l = 0; l < kMaxLanes; ++l) x[h][i][l] = as_float(row[l] ^ sign);
      if (w.ctx->flush_f32)
        for (int l = 0; l < kMaxLanes; ++l) x[h][i][l] = flush(x[h][i][l]);
    }
  uint32_t r[2][kMaxLanes];
  for (int h = 0; h < 2; ++h)
    for (int l = 0; l < kMaxLanes; ++l) {
      float v;
      if constexpr (N == 2) v = F(x[h][0][l], x[h][1][l]);
      else v = F(x[h][0][l], x[h][1][l], x[h][2][l]);
      r[h][l] = as_bits(v);
    }
  if (in.clamp || w.ctx->flush_f32)
    for (int h = 0; h < 2; ++h)
      for (int l = 0; l < w.lanes; ++l) {
        float v = as_float(r[h][l]);
        if (in.clamp) v = std::isnan(v) ? 0.0f : std::fmin(std::fmax(v, 0.0f), 1.0f);
        r[h][l] = as_bits(w.ctx->flush_f32 ? flush(v) : v);
      }
  const uint64_t exec = w.exec();
  for (int l = 0; l < w.lanes; ++l)
    if (exec >> l & 1) w.v[in.dst.index][l] = r[0][l], w.v[in.dst.index + 1][l] = r[1][l];
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
