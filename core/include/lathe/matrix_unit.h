// A matrix unit: what one warp-wide multiply-accumulate instruction computes, and where its
// operands live in the registers of the warp's lanes (docs/codegen.md, "Matrix units").
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "lathe/dtype.h"

namespace lathe {

// One lane-dependent term of a fragment coordinate: (lane / div % mod) * scale.
struct LaneTerm {
  int div = 1, mod = 1, scale = 0;
  int64_t of(int64_t lane) const { return lane / div % mod * scale; }
  bool operator==(const LaneTerm&) const = default;
};

// A or B: `position.size()` 32-bit registers per lane, each two 16-bit values at reduction
// steps 2p and 2p + 1 (p a step pair; the low half holds step 2p). Register w of lane l holds
// position lane_position(l) + position[w] (A's row, B's column) at pair lane_pair(l) + pair[w].
struct FactorLayout {
  LaneTerm lane_position, lane_pair;
  std::vector<int> position, pair;
  int words() const { return static_cast<int>(position.size()); }
  bool operator==(const FactorLayout&) const = default;
};

// C and D: rows x cols float32 registers per lane; register i * cols + j of lane l holds row
// lane_row(l) + i * row_step and column lane_col(l) + j * col_step.
struct AccumulatorLayout {
  LaneTerm lane_row, lane_col;
  int rows = 1, row_step = 0, cols = 1, col_step = 0;
  int registers() const { return rows * cols; }
  bool operator==(const AccumulatorLayout&) const = default;
};

// D = A·B + C for an m×k tile A and a k×n tile B of `input` values, C and D float32, computed
// by `lanes` work-items of a group together.
struct MatrixUnit {
  std::string instruction;  // how the dialect knows it: "mma.sync.m16n8k16", "v_mfma_f32_16x16x16_bf16", ...
  int m = 0, n = 0, k = 0;
  DType input = DType::BFloat16;
  int lanes = 0;
  FactorLayout a, b;
  AccumulatorLayout c;
  // True: the device executes the instruction (IOp::Mma, rendered by its dialect). False: the
  // lowerer computes the same product from the fragments through local memory and barriers, a
  // reference that runs on any work-group device (tests, LATHE_OPENCL_MATRIX_UNITS=emulate).
  bool native = true;
  bool operator==(const MatrixUnit&) const = default;
};

// The units lathe's dialects render (bfloat16 in, float32 accumulate).
MatrixUnit mma_sync_m16n8k16_bf16();   // NVIDIA from sm_80, warps of 32
MatrixUnit mfma_f32_16x16x16_bf16();   // AMD CDNA2/3 (gfx90a, gfx942), waves of 64
MatrixUnit wmma_f32_16x16x16_bf16();   // AMD RDNA3 (gfx1100), waves of 32
// Every A, B and C element is held by some lane (A and B may be held by several), and no
// register is outside the tile: the layout describes the unit's whole product.
bool covers_its_tiles(const MatrixUnit& unit);

}  // namespace lathe
