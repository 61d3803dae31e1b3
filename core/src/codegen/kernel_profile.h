// What the heuristics know of a kernel before it is lowered: its top-level reductions, the
// loads inside them, and the size and work of its plain loop nest, read from the fragment.
#pragma once
#include <cstdint>
#include <vector>

#include "codegen/access.h"

namespace lathe {

struct KernelProfile {
  // Variable d is output axis d (-1 in axis_var for an axis of extent 1, which has no loop).
  std::vector<int> axis_var;
  std::vector<Node*> reduces;      // top-level reductions, in the order they are first read
  std::vector<int> innermost_var;  // per reduction: the variable of its innermost reduced axis (-1: none)
  std::vector<Expr> loads;         // flat indices of the buffer loads inside them, nested reductions' included
  int64_t body = 0;                // instructions of the plain loop nest (no optimization applied)
  int64_t ops = 0;                 // operations it runs: loads, arithmetic, accumulations and stores
  bool selecting_epilogue = false; // a select, comparison, maximum or transcendental after the reductions
};

KernelProfile profile_kernel(Node* value, const InputOf& input_of);

}  // namespace lathe
