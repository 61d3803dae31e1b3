// The cpu backend's C dialect: GCC's vectorization hints chosen per kernel from its loop shape.
#include "cpu_dialect.h"

#include <vector>

#include "lathe/kernel.h"
#include "lathe/symbolic.h"

namespace lathe::cpu {
namespace {

// What decides how GCC should vectorize a C kernel, read off its IR in one pass.
struct LoopShape {
  int outputs = 0;              // stores to the output per iteration of the outer loops (the register tile)
  bool reduction = false;       // the kernel has a reduction loop
  bool transcendental = false;  // exp/log/sin inside a reduction (an epilogue's do not count)
  bool dot_products = true;     // every load inside the innermost reduction runs along it (x @ W^T, W [out, in])
  bool nested = false;          // a reduction loop inside another (attention scores recomputed in a softmax)
  bool bounded = false;         // a load or constant valid only within bounds (padding) inside a reduction
};

LoopShape loop_shape(const Kernel& k) {
  LoopShape shape;
  std::vector<const Inst*> open;
  int open_reductions = 0;
  bool reduction_loads = false;
  for (auto& in : k.insts) {
    if (in.op == IOp::Range) {
      shape.nested |= in.reduction && open_reductions > 0;
      open.push_back(&in);
      open_reductions += in.reduction;
      shape.reduction |= in.reduction;
    } else if (in.op == IOp::EndRange && !open.empty()) {
      open_reductions -= open.back()->reduction;
      open.pop_back();
    }
    shape.outputs += in.op == IOp::Store && !in.local;
    shape.transcendental |= open_reductions > 0 && in.op == IOp::Alu && (in.alu == Op::Exp2 || in.alu == Op::Log2 || in.alu == Op::Sin);
    shape.bounded |= open_reductions > 0 && (in.op == IOp::Load || in.op == IOp::Const) && !in.valid.empty();
    if (!open.empty() && open.back()->reduction && in.op == IOp::Load) {
      reduction_loads = true;
      shape.dot_products &= expr_coefficient(in.index, open.back()->var) == 1;
    }
  }
  shape.dot_products &= reduction_loads && !shape.transcendental;
  return shape;
}

// A register tile of multiply-adds is already unrolled for straight-line (SLP) vectorization;
// vectorizing its reduction loop as well keeps each accumulator's lanes in order (slow
// fold-left adds) and spills: measured 30x slower on a 2048x384x128 matmul. Bodies with
// transcendentals (softmax sums) still gain from it: exp dominates the adds. Reductions with
// at most four outputs per iteration, blocks of dot products along a contiguous run, and
// reductions nested in others (their short inner loops are the dot products), vectorize along the reduction only if the adds may be reassociated: partial sums per vector
// lane, combined at the end (a fixed order, so results are reproducible).
//
// GCC 12.2 (Debian 12's) builds the mask of a padded reduction's bounds in reversed lane order
// when it vectorizes the reduction loop: a maximum over padded rows read the elements past the
// valid ones and dropped the last valid ones (`ReduceMove.SplitReductionsIgnoreWhatLiesPast*`).
// Reductions with bounded loads are not loop-vectorized.
std::string vectorization_attribute(const Kernel& k) {
  LoopShape shape = loop_shape(k);
  if ((shape.outputs > 4 && !shape.transcendental && !shape.dot_products) || (shape.reduction && shape.bounded))
    return "__attribute__((optimize(\"no-tree-loop-vectorize\"))) ";
  if ((shape.outputs <= 4 || shape.dot_products || shape.nested) && shape.reduction)
    return "__attribute__((optimize(\"associative-math,no-signed-zeros\"))) ";
  return "";
}

}  // namespace

std::string CpuDialect::signature(const Kernel& k) const { return vectorization_attribute(k) + CDialect::signature(k); }

}  // namespace lathe::cpu
