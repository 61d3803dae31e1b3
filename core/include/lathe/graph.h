// The lazy graph: immutable nodes of the primitive op set. Tensor calls build it; realize()
// hands it to the scheduler. This op set is the whole contract between front end and backends.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "lathe/dtype.h"
#include "lathe/shape.h"

namespace lathe {

enum class Op : uint8_t {
  // unary
  Exp2, Log2, Sin, Sqrt, Recip, Trunc, Neg, Cast, Bitcast,
  // binary
  Add, Mul, Max, IDiv, Mod, CmpLt, CmpNe, And, Or, Xor, Shl, Shr,
  // ternary
  Where,
  // reduce (arg: axes; reduce_op: Add or Max); reduced axes keep extent 1
  Reduce,
  // movement: graph only, lowered to index arithmetic
  Reshape, Permute, Expand, Pad, Shrink, Flip,
  // memory and structure
  Const, Buffer, Copy, Contiguous, Assign, Detach,
};

const char* op_name(Op op);
bool is_unary(Op op);
bool is_binary(Op op);
bool is_elementwise(Op op);  // unary, binary, Where
bool is_movement(Op op);

class Device;
class Buffer;
struct Node;
using NodeRef = std::shared_ptr<Node>;

struct Node {
  Op op;
  DType dtype;
  Shape shape;
  std::vector<NodeRef> src;
  std::vector<int64_t> arg;  // Reshape/Expand: shape; Permute: order; Pad/Shrink: (begin, end) pairs; Flip/Reduce: axes
  Op reduce_op = Op::Add;
  double fvalue = 0;         // Const of a float type
  int64_t ivalue = 0;        // Const of an integer or bool type
  Device* device = nullptr;
  // Cast: its source's dtype, kept after realization releases the sources (a float32 copy of
  // bfloat16 values is still known to hold exact 16-bit values).
  DType cast_from = DType::Float32;
  // The activation-recomputation region it was built in (0: none; see RecomputeRegion).
  uint32_t recompute_region = 0;
  bool recomputed = false;  // a copy the backward pass builds of such a node
  // Whether gradients can flow through this node: some source tracks, or a tensor that
  // requires grad owns it. Autograd never walks into nodes that do not track.
  bool tracks_grad = false;
  // A backward pass has built its gradients through this node: its history is let go once it
  // is realized (as in PyTorch without retain_graph), and a later backward through it is refused.
  bool backward_done = false;
  // Set once the node's value lives in device memory; the scheduler then reads it instead of
  // recomputing. Sources are kept so that autograd still sees the graph.
  std::shared_ptr<Buffer> buffer;
};

// While one is alive, the nodes this thread builds form a fresh recomputation region: the
// backward pass builds them again from the region's inputs (nodes from outside it) instead of
// reading the forward's values, which then need not be kept until the backward runs. A region
// opened inside another is part of the outer one.
class RecomputeRegion {
 public:
  RecomputeRegion();
  ~RecomputeRegion();
  RecomputeRegion(const RecomputeRegion&) = delete;
  RecomputeRegion& operator=(const RecomputeRegion&) = delete;

 private:
  uint32_t outer_;
};

// Builders validate their arguments and throw lathe::Error naming the op and the shapes.
NodeRef node_const(double value, DType dtype, const Shape& shape, Device* device);
NodeRef node_buffer(std::shared_ptr<Buffer> buffer, DType dtype, const Shape& shape);
NodeRef node_unary(Op op, const NodeRef& x);
NodeRef node_binary(Op op, const NodeRef& a, const NodeRef& b);
NodeRef node_where(const NodeRef& cond, const NodeRef& a, const NodeRef& b);
NodeRef node_cast(const NodeRef& x, DType dtype);
NodeRef node_bitcast(const NodeRef& x, DType dtype);
NodeRef node_reduce(const NodeRef& x, Op reduce_op, const std::vector<int64_t>& axes);
// The same result, built as two reductions when a long reduction over several axes has a small
// result (a weight gradient: sums over batch and time): the later axes first, in parallel over
// the first, then the first. Otherwise each output would be one long serial loop.
NodeRef node_reduce_in_stages(const NodeRef& x, Op reduce_op, const std::vector<int64_t>& axes);
NodeRef node_reshape(const NodeRef& x, const Shape& shape);
NodeRef node_permute(const NodeRef& x, const std::vector<int64_t>& order);
NodeRef node_expand(const NodeRef& x, const Shape& shape);
NodeRef node_pad(const NodeRef& x, const std::vector<std::pair<int64_t, int64_t>>& pads);
NodeRef node_shrink(const NodeRef& x, const std::vector<std::pair<int64_t, int64_t>>& ranges);
NodeRef node_flip(const NodeRef& x, const std::vector<int64_t>& axes);
NodeRef node_copy(const NodeRef& x, Device* device);
NodeRef node_contiguous(const NodeRef& x);
NodeRef node_assign(const NodeRef& target, const NodeRef& value);
NodeRef node_detach(const NodeRef& x);

// Nodes reachable from `roots`, sources before users. Realized nodes are leaves unless
// `through_realized` is set (autograd walks the whole graph).
std::vector<Node*> toposort(const std::vector<Node*>& roots, bool through_realized);

}  // namespace lathe
