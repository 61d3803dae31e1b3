// MFMA: the matrix instructions of CDNA, one wave computing a tile product from its lanes'
// registers (VGPRs or AGPRs as ACC and ACC_CD chose).
#include <cstdint>
#include <cstring>

#include "gcn_program.h"
#include "gcn_valu.h"

namespace lathe::amd::emu {
namespace {

float bf16_to_float(uint32_t half) {
  const uint32_t bits = half << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// v_mfma_f32_16x16x16_bf16, D = A·B + C (CDNA3 ISA, dense matrix layouts): lane i + 16q holds
// A row i and B column i at steps 4q..4q + 3 in two registers (the lower step in the low
// half), and C and D column i at rows 4q..4q + 3 in four. The products are exact in float32;
// they are summed in step order onto C.
void mfma_f32_16x16x16_bf16(Wave& w, const Inst& in) {
  if (w.lanes != 64 || w.exec() != w.lane_mask) throw Fault(describe(in) + " with lanes masked off (not covered: lathe's kernels run it in whole waves)");
  if (in.broadcast) throw Fault(describe(in) + " with CBSZ, ABID or BLGP broadcasts (not covered)");
  if (!in.src[0].is_vector() || !in.src[1].is_vector()) throw Fault(describe(in) + ": A and B must be vector registers");
  float a[16][16], b[16][16], c[16][16];
  for (int lane = 0; lane < 64; ++lane) {
    const int i = lane % 16, q = lane / 16;
    for (int s = 0; s < 4; ++s) {
      const uint32_t wa = w.v[in.src[0].index + s / 2][lane], wb = w.v[in.src[1].index + s / 2][lane];
      a[i][4 * q + s] = bf16_to_float(s % 2 ? wa >> 16 : wa & 0xffff);
      b[4 * q + s][i] = bf16_to_float(s % 2 ? wb >> 16 : wb & 0xffff);
    }
    for (int r = 0; r < 4; ++r) {
      uint32_t bits = in.src[2].is_vector() ? w.v[in.src[2].index + r][lane] : w.value(in.src[2]);
      std::memcpy(&c[4 * q + r][i], &bits, 4);
    }
  }
  for (int lane = 0; lane < 64; ++lane) {
    const int j = lane % 16, q = lane / 16;
    for (int r = 0; r < 4; ++r) {
      const int row = 4 * q + r;
      float d = c[row][j];
      for (int k = 0; k < 16; ++k) d += a[row][k] * b[k][j];
      w.v[in.dst.index + r][lane] = as_bits(d);
    }
  }
}

}  // namespace

void add_matrix_ops(OpTable& t) { t["v_mfma_f32_16x16x16_bf16"] = mfma_f32_16x16x16_bf16; }

}  // namespace lathe::amd::emu
