// Lowering: one scheduled kernel (a graph fragment whose leaves are buffers and constants)
// becomes kernel IR. The choice of how to map it onto loops (which output axes are upcast
// into registers, the loop order) is an explicit option set, what an action list applies
// (codegen/opt.h).
#pragma once
#include <functional>
#include <optional>
#include <vector>

#include "lathe/buffer.h"
#include "lathe/device.h"
#include "lathe/graph.h"
#include "lathe/kernel.h"

namespace lathe {

struct LoweringOptions {
  std::vector<int64_t> upcast;  // per output axis: how many consecutive indices one iteration computes
  std::vector<int> loop_order;  // output axes, outermost first; empty: natural order
  bool flatten_outer = false;   // one parallel index over all output loops (see DeviceInfo)
  // Work-groups (devices with DeviceInfo::max_local_size > 1). Per output axis, how many
  // work-items of a group share it; a group covers local[d] * upcast[d] indices of axis d.
  std::vector<int64_t> local;
  // Work-items of a group that split each reduction between them, combining their partial
  // results through local memory (a grouped reduction); 1: none.
  int64_t group_reduce = 1;
  // Reductions of a product read staged factors from local memory; 0: factors are read from
  // memory. Work-groups: chunks of this many iterations, both factors copied by the whole group
  // (a tiled matmul). Loops form: the whole reduction (this must be its length), the factor
  // that the inner output loops reuse copied once its own output loops are open (a packed strip).
  int64_t stage_chunk = 0;
  // Partial accumulators along the innermost reduced axis (loops form): independent chains a
  // C compiler vectorizes, combined by a tree after the loop; 1: one chain.
  int64_t reduce_split = 1;
  // Loops form with a register tile over one reduction: store every register's reduction
  // first, then compute the epilogue from the stored values. GCC vectorizes a register tile's
  // loop only when what follows it is plain (a select or an exp after it kept it scalar).
  bool reload_epilogue = false;
  // Row kernels (work-groups, with group_reduce lanes): the reductions are read along the last
  // output axis without depending on it (a norm's or a softmax's statistics), so one group
  // computes a row's reductions and then that row's outputs, lane l taking elements l,
  // l + lanes, ... (upcast of the last axis: how many per lane). One launch per norm or
  // softmax instead of a stored reduction and a second kernel reading it.
  bool spread_rows = false;
  // A matrix unit computes the staged matmul (with stage_chunk over 0): output axis mma_rows
  // runs along the unit's rows, mma_cols along its columns; a work-item's register tile is its
  // share of its warp's fragments, `upcast` counts fragments per warp along those two axes and
  // `local` counts warps (lower_mma.cpp).
  std::optional<MatrixUnit> matrix_unit;
  int mma_rows = -1, mma_cols = -1;
};

struct LoweredKernel {
  Kernel kernel;
  std::vector<Buffer*> params;  // params[0] is the output (params[0..n) with n outputs)
};

// `value` is the expression stored into `output` (output shape == value shape). `input_of`
// returns the buffer holding a node that this kernel must read rather than compute, or null.
LoweredKernel lower_kernel(Node* value, Buffer* output, const std::function<Buffer*(Node*)>& input_of,
                           const LoweringOptions& options);

// One kernel storing several values of the same shape, each into its own output (params
// 0..n-1, in order): elementwise values, or reductions of one structure over other inputs,
// each in its own loop nest. Every value is computed, all its loads done, before any store.
// The values after the first may also be of another shape where the first reads them
// (statistics of a row kernel's rows, a matmul before a reshape): they are stored from there.
LoweredKernel lower_kernel(const std::vector<std::pair<Node*, Buffer*>>& outputs, const std::function<Buffer*(Node*)>& input_of,
                           const LoweringOptions& options);

}  // namespace lathe
