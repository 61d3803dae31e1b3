// Element access: where a kernel's value reads each node, as index contexts mapped through
// movement ops. Shared by the lowering and by the fusion rules, which ask it (never the
// lowerer) whether a join's precondition holds.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "lathe/buffer.h"
#include "lathe/device.h"
#include "lathe/graph.h"
#include "lathe/symbolic.h"

namespace lathe {

// Where one element of a node is read: an index per axis and the bounds under which it is
// valid (padding makes the rest read as zero).
struct Ctx {
  std::vector<Expr> idx;
  std::vector<IndexBound> valid;
  bool never = false;  // statically outside every valid region: the value is zero
  std::string key() const;
};

using InputOf = std::function<Buffer*(Node*)>;
using ReadSites = std::vector<std::pair<Node*, Ctx>>;
using SeenReads = std::map<std::pair<Node*, std::string>, bool>;

// The context of a movement op's source for a given context of the op's output.
Ctx map_ctx(const Node* n, const Ctx& c);
// The element of a contiguous tensor of `shape` that `c` indexes, as one flat index.
Expr flat_index(const Ctx& c, const Shape& shape);
// The element of `shape` whose index along axis d is variable d.
Ctx variable_element(const Shape& shape);
int64_t reduce_length(const Node* r);  // iterations of a reduction: the product of its reduced extents
// Whether computing n (up to stored values) runs a reduction.
bool computes_reduction(Node* n, const InputOf& input_of);

// Appends to `found` the top-level reductions that n reads at c (or with `target`, the places
// where n reads that node outside reductions). Stored values and constants are leaves; `seen`
// makes each (node, context) visited once, as shared subgraphs would otherwise explode.
void collect_reads(Node* n, const Ctx& c, const InputOf& input_of, ReadSites& found, SeenReads& seen,
                   Node* target = nullptr);
// collect_reads for the element of `value` whose index along axis d is variable d.
ReadSites read_sites(Node* value, const InputOf& input_of, Node* target = nullptr);

// Whether `value` reads `target` (outside reductions) only at the element it computes, both
// shapes' elements taken in order: a kernel computing value can store target from its registers.
bool reads_element_for_element(Node* value, Node* target, const InputOf& input_of);

// The precondition of the rows action: the lanes of a row kernel for `value` on `device`, or 0
// when it does not apply. Every reduction in it (at least one, float32, none nested) is read
// at places that do not depend on its last axis, and `stored` are among them (reductions that
// the kernel stores beside `value`).
int64_t row_lanes(Node* value, const std::vector<Node*>& stored, const InputOf& input_of, const DeviceInfo& device);

// The largest power of two up to `cap` that divides n and leaves each lane `min_each` items.
int64_t lanes_for(int64_t n, int64_t cap, int64_t min_each);

}  // namespace lathe
