// The matrix units lathe's dialects render, as register layouts.
#include "lathe/matrix_unit.h"

namespace lathe {

MatrixUnit mma_sync_m16n8k16_bf16() {
  // PTX ISA, "Matrix Fragments for mma.m16n8k16": lane 4g + t holds A rows g and g + 8 at steps
  // 2t.. and 2t + 8.., B column g at the same steps, C rows g and g + 8 at columns 2t and 2t + 1.
  MatrixUnit u{.instruction = "mma.sync.m16n8k16", .m = 16, .n = 8, .k = 16, .lanes = 32};
  u.a = {{4, 8, 1}, {1, 4, 1}, {0, 8, 0, 8}, {0, 0, 4, 4}};
  u.b = {{4, 8, 1}, {1, 4, 1}, {0, 0}, {0, 4}};
  u.c = {{4, 8, 1}, {1, 4, 2}, 2, 8, 2, 1};
  return u;
}

MatrixUnit mfma_f32_16x16x16_bf16() {
  // CDNA3 ISA, dense MFMA layouts: lane i + 16 q holds A row i (B column i) at steps 4q..4q + 3,
  // and D column i at rows 4q..4q + 3.
  MatrixUnit u{.instruction = "v_mfma_f32_16x16x16_bf16", .m = 16, .n = 16, .k = 16, .lanes = 64};
  u.a = {{1, 16, 1}, {16, 4, 2}, {0, 0}, {0, 1}};
  u.b = u.a;
  u.c = {{16, 4, 4}, {1, 16, 1}, 4, 1, 1, 0};
  return u;
}

MatrixUnit wmma_f32_16x16x16_bf16() {
  // RDNA3 ISA, WMMA: lanes i and i + 16 both hold A row i (B column i) at all 16 steps; D
  // register v of lane i + 16 h is row 2v + h, column i.
  MatrixUnit u{.instruction = "v_wmma_f32_16x16x16_bf16", .m = 16, .n = 16, .k = 16, .lanes = 32};
  u.a = {{1, 16, 1}, {1, 1, 0}, {0, 0, 0, 0, 0, 0, 0, 0}, {0, 1, 2, 3, 4, 5, 6, 7}};
  u.b = u.a;
  u.c = {{16, 2, 1}, {1, 16, 1}, 8, 2, 1, 0};
  return u;
}

namespace {

bool factor_covers(const FactorLayout& f, int lanes, int positions, int pairs) {
  std::vector<int> held(static_cast<size_t>(positions * pairs), 0);
  for (int l = 0; l < lanes; ++l)
    for (int w = 0; w < f.words(); ++w) {
      int64_t p = f.lane_position.of(l) + f.position[static_cast<size_t>(w)], q = f.lane_pair.of(l) + f.pair[static_cast<size_t>(w)];
      if (p < 0 || p >= positions || q < 0 || q >= pairs) return false;
      ++held[static_cast<size_t>(p * pairs + q)];
    }
  for (int h : held)
    if (h == 0) return false;
  return true;
}

}  // namespace

bool covers_its_tiles(const MatrixUnit& u) {
  if (u.lanes <= 0 || u.k % 2 || u.a.pair.size() != u.a.position.size() || u.b.pair.size() != u.b.position.size()) return false;
  if (!factor_covers(u.a, u.lanes, u.m, u.k / 2) || !factor_covers(u.b, u.lanes, u.n, u.k / 2)) return false;
  std::vector<int> held(static_cast<size_t>(u.m * u.n), 0);
  for (int l = 0; l < u.lanes; ++l)
    for (int i = 0; i < u.c.rows; ++i)
      for (int j = 0; j < u.c.cols; ++j) {
        int64_t r = u.c.lane_row.of(l) + i * u.c.row_step, c = u.c.lane_col.of(l) + j * u.c.col_step;
        if (r < 0 || r >= u.m || c < 0 || c >= u.n) return false;
        ++held[static_cast<size_t>(r * u.n + c)];
      }
  for (int h : held)
    if (h != 1) return false;
  return true;
}

}  // namespace lathe
