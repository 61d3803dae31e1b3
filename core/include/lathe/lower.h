// Lowering: one scheduled kernel (a graph fragment whose leaves are buffers and constants)
// becomes kernel IR. The choice of how to map it onto loops (which output axes are upcast
// into registers, the loop order) is an explicit option set, chosen by heuristics.
#pragma once
#include <functional>
#include <vector>

#include "lathe/buffer.h"
#include "lathe/graph.h"
#include "lathe/kernel.h"

namespace lathe {

struct LoweringOptions {
  std::vector<int64_t> upcast;  // per output axis: how many consecutive indices one iteration computes
  std::vector<int> loop_order;  // output axes, outermost first; empty: natural order
  bool flatten_outer = false;   // one parallel index over all output loops (see DeviceInfo)
};

struct LoweredKernel {
  Kernel kernel;
  std::vector<Buffer*> params;  // params[0] is the output
};

// `value` is the expression stored into `output` (output shape == value shape). `input_of`
// returns the buffer holding a node that this kernel must read rather than compute, or null.
LoweredKernel lower_kernel(Node* value, Buffer* output, const std::function<Buffer*(Node*)>& input_of,
                           const LoweringOptions& options);

// Heuristics: register tiles for reductions (the matmul shape), nothing for elementwise.
LoweringOptions default_options(Node* value, const std::function<Buffer*(Node*)>& input_of, bool flatten_outer = false);

}  // namespace lathe
