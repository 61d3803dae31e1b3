// Internal: which consecutive items of a schedule one kernel with several outputs can store:
// siblings, and the joins (online pairs, row kernels, epilogues) of devices with work-groups.
#pragma once
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "lathe/buffer.h"
#include "lathe/runtime.h"
#include "schedule/schedule.h"

namespace lathe {

// What a value's expression reads: each stored buffer, and whether some path to it passes a
// movement op (so that an element reads other elements); whether a reduction is inside.
struct Reads {
  bool reduces = false;
  std::unordered_map<Buffer*, bool> moved;
  std::string structure;  // with a reduction: the value's structure (structure_key), which members must share
};

Reads reads_of(Node* value, const std::function<Buffer*(Node*)>& input_of);

// Consecutive kernel items that one kernel stores together: elementwise values of one shape on
// one device (an optimizer's update of a parameter and of its two moments: one launch and one
// read of the gradient instead of three), or reductions of one structure over other buffers
// (the squared sums of same-shaped gradients for a global norm). A member never reads what an earlier member writes
// (it wants the new value; the kernel loads everything before it stores) and reads what a
// later member writes only element for element. Returns each item's first member; `reads` is
// asked only about items that could join a neighbour (the caller computes it lazily).
// Besides siblings, `joins` names kernels that items form by themselves:
//   online(a, b): item b is a sum that item a's maximum can join in one pass (see
//     online_softmax.h); b follows a directly;
//   row(a, b, i): item i reads the reductions a..b (one item, or an online pair) along its
//     rows, and one row kernel computes them and then i (LoweringOptions::spread_rows);
//   epilogue(a, b, i): item i, elementwise, reads reductions among a..b of its shape element
//     for element, and their kernel computes it from their accumulators.
// Online pairs and row kernels take no further members; epilogues take further epilogues.
struct Joins {
  std::function<bool(size_t, size_t)> online;
  std::function<bool(size_t, size_t, size_t)> row, epilogue;
};

// The joins of `items` (only on devices with work-groups, whose launches are queued and cost
// host time; the cpu backend's loops vectorize better apart). `input_of_for(selves)`: what a
// kernel storing `selves` reads rather than computes. The predicates refer to `items`.
using InputsFor = std::function<std::function<Buffer*(Node*)>(std::vector<Node*>)>;
Joins kernel_joins(const std::vector<ScheduleItem>& items, const std::function<const Reads&(size_t)>& reads, const InputsFor& input_of_for);
std::vector<size_t> sibling_groups(const std::vector<ScheduleItem>& items, const std::function<const Reads&(size_t)>& reads,
                                   const Joins& joins);

// An order of the items (a permutation of their indices) in which each kernel item that could
// share a kernel with an earlier one (same device and shape; with reductions, same structure)
// (or that joins it, see Joins) follows it directly, when it can move up past the items between: it reads none of their
// outputs, and they neither read nor write its output. Copies are not moved past. The split
// reductions of same-shaped weight gradients, for one, come apart in a backward pass.
std::vector<size_t> sibling_order(const std::vector<ScheduleItem>& items, const std::function<const Reads&(size_t)>& reads_of_item,
                                  const Joins& joins);

}  // namespace lathe
