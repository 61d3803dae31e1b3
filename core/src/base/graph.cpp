// Graph nodes: construction, shape rules of each op, and their names.
#include "lathe/graph.h"

#include <algorithm>
#include <atomic>
#include <functional>
#include <unordered_set>

#include "lathe/buffer.h"
#include "lathe/error.h"

namespace lathe {

const char* op_name(Op op) {
  static const char* names[] = {"EXP2", "LOG2", "SIN", "SQRT", "RECIP", "TRUNC", "NEG", "CAST", "BITCAST",
                                "ADD", "MUL", "MAX", "IDIV", "MOD", "CMPLT", "CMPNE", "AND", "OR", "XOR",
                                "SHL", "SHR", "WHERE", "REDUCE", "RESHAPE", "PERMUTE", "EXPAND", "PAD",
                                "SHRINK", "FLIP", "CONST", "BUFFER", "COPY", "CONTIGUOUS", "ASSIGN", "DETACH"};
  return names[static_cast<int>(op)];
}
bool is_unary(Op op) { return op <= Op::Bitcast; }
bool is_binary(Op op) { return op >= Op::Add && op <= Op::Shr; }
bool is_elementwise(Op op) { return op <= Op::Where; }
bool is_movement(Op op) { return op >= Op::Reshape && op <= Op::Flip; }

namespace {

thread_local uint32_t current_region = 0;
std::atomic<uint32_t> next_region{1};

NodeRef make(Op op, DType dtype, Shape shape, std::vector<NodeRef> src, std::vector<int64_t> arg = {}) {
  auto n = std::make_shared<Node>();
  n->op = op;
  n->dtype = dtype;
  n->shape = std::move(shape);
  n->device = src.empty() ? nullptr : src[0]->device;
  for (auto& s : src) n->tracks_grad |= s->tracks_grad;
  n->src = std::move(src);
  n->arg = std::move(arg);
  n->recompute_region = current_region;
  return n;
}

void check_same_device(const NodeRef& a, const NodeRef& b, const char* op) {
  check(a->device == b->device, [&] { return std::string(op) + ": operands live on different devices; move one with to()"; });
}

}  // namespace

// A region opened inside another joins it: the outer one is recomputed as a whole anyway.
RecomputeRegion::RecomputeRegion() : outer_(current_region) {
  if (current_region == 0) current_region = next_region++;
}
RecomputeRegion::~RecomputeRegion() { current_region = outer_; }

NodeRef node_const(double value, DType dtype, const Shape& shape, Device* device) {
  auto n = make(Op::Const, dtype, shape, {});
  n->device = device;
  if (is_float(dtype)) n->fvalue = value;
  else n->ivalue = dtype == DType::Bool ? (value != 0) : static_cast<int64_t>(value);
  n->fvalue = is_float(dtype) ? value : static_cast<double>(n->ivalue);
  return n;
}

NodeRef node_buffer(std::shared_ptr<Buffer> buffer, DType dtype, const Shape& shape) {
  auto n = make(Op::Buffer, dtype, shape, {});
  n->device = buffer->device();
  n->buffer = std::move(buffer);
  return n;
}

NodeRef node_unary(Op op, const NodeRef& x) {
  check(is_unary(op) && op != Op::Cast && op != Op::Bitcast, [&] { return std::string("node_unary: ") + op_name(op) + " is not a plain unary op"; });
  if (op == Op::Exp2 || op == Op::Log2 || op == Op::Sin || op == Op::Sqrt || op == Op::Recip || op == Op::Trunc)
    check(is_float(x->dtype), [&] { return std::string(op_name(op)) + " needs a float tensor, got " + dtype_name(x->dtype) + "; cast it first"; });
  return make(op, x->dtype, x->shape, {x});
}

NodeRef node_binary(Op op, const NodeRef& a, const NodeRef& b) {
  check(is_binary(op), [&] { return "node_binary: not a binary op"; });
  check(a->shape == b->shape, [&] { return std::string(op_name(op)) + ": shapes " + to_string(a->shape) + " and " + to_string(b->shape) + " differ"; });
  check(a->dtype == b->dtype, [&] { return std::string(op_name(op)) + ": dtypes " + dtype_name(a->dtype) + " and " + dtype_name(b->dtype) + " differ"; });
  check_same_device(a, b, op_name(op));
  if (op == Op::IDiv || op == Op::Mod || op == Op::Shl || op == Op::Shr)
    check(!is_float(a->dtype), [&] { return std::string(op_name(op)) + " needs integer operands, got " + dtype_name(a->dtype); });
  if (op == Op::And || op == Op::Or || op == Op::Xor)
    check(!is_float(a->dtype), [&] { return std::string(op_name(op)) + " needs integer or bool operands, got " + dtype_name(a->dtype); });
  DType out = (op == Op::CmpLt || op == Op::CmpNe) ? DType::Bool : a->dtype;
  return make(op, out, a->shape, {a, b});
}

NodeRef node_where(const NodeRef& cond, const NodeRef& a, const NodeRef& b) {
  check(cond->dtype == DType::Bool, [&] { return std::string("WHERE: condition must be bool, got ") + dtype_name(cond->dtype); });
  check(cond->shape == a->shape && a->shape == b->shape,
        [&] { return "WHERE: shapes " + to_string(cond->shape) + ", " + to_string(a->shape) + ", " + to_string(b->shape) + " differ"; });
  check(a->dtype == b->dtype, [&] { return std::string("WHERE: dtypes ") + dtype_name(a->dtype) + " and " + dtype_name(b->dtype) + " differ"; });
  check_same_device(cond, a, "WHERE");
  check_same_device(a, b, "WHERE");
  return make(Op::Where, a->dtype, a->shape, {cond, a, b});
}

NodeRef node_cast(const NodeRef& x, DType dtype) {
  if (x->dtype == dtype) return x;
  NodeRef n = make(Op::Cast, dtype, x->shape, {x});
  n->cast_from = x->dtype;
  return n;
}

NodeRef node_bitcast(const NodeRef& x, DType dtype) {
  check(itemsize(x->dtype) == itemsize(dtype), [&] { return std::string("BITCAST: ") + dtype_name(x->dtype) + " and " +
                                                   dtype_name(dtype) + " differ in size"; });
  if (x->dtype == dtype) return x;
  return make(Op::Bitcast, dtype, x->shape, {x});
}

NodeRef node_reduce(const NodeRef& x, Op reduce_op, const std::vector<int64_t>& axes) {
  check(reduce_op == Op::Add || reduce_op == Op::Max, [&] { return "REDUCE: only ADD and MAX reduce"; });
  Shape out = x->shape;
  for (int64_t a : axes) {
    check(a >= 0 && a < static_cast<int64_t>(out.size()), [&] { return "REDUCE: axis " + std::to_string(a) + " out of range for " + to_string(x->shape); });
    out[a] = 1;
  }
  if (axes.empty()) return x;
  auto n = make(Op::Reduce, x->dtype, out, {x}, axes);
  n->reduce_op = reduce_op;
  return n;
}

NodeRef node_reduce_in_stages(const NodeRef& x, Op reduce_op, const std::vector<int64_t>& axes) {
  constexpr int64_t kLongReduction = 8192, kSmallResult = int64_t{1} << 20;
  int64_t reduced = 1;
  for (int64_t a : axes) reduced *= x->shape.at(a);
  const int64_t kept = numel(x->shape) / std::max<int64_t>(reduced, 1);
  if (axes.size() < 2 || reduced < kLongReduction || kept > kSmallResult || x->shape[axes[0]] < 8)
    return node_reduce(x, reduce_op, axes);
  NodeRef partial = node_reduce(x, reduce_op, std::vector<int64_t>(axes.begin() + 1, axes.end()));
  return node_reduce(partial, reduce_op, {axes[0]});
}

NodeRef node_reshape(const NodeRef& x, const Shape& shape) {
  for (int64_t s : shape) check(s >= 0, [&] { return "RESHAPE: negative extent in " + to_string(shape); });
  check(numel(shape) == numel(x->shape), [&] { return "RESHAPE: cannot reshape " + to_string(x->shape) + " (" +
                                             std::to_string(numel(x->shape)) + " elements) to " + to_string(shape) +
                                             " (" + std::to_string(numel(shape)) + " elements)"; });
  if (shape == x->shape) return x;
  return make(Op::Reshape, x->dtype, shape, {x}, shape);
}

NodeRef node_permute(const NodeRef& x, const std::vector<int64_t>& order) {
  check(order.size() == x->shape.size(), [&] { return "PERMUTE: order has " + std::to_string(order.size()) + " axes, tensor " + to_string(x->shape) + " has " + std::to_string(x->shape.size()); });
  std::vector<int64_t> sorted = order;
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sorted.size(); ++i)
    check(sorted[i] == static_cast<int64_t>(i), [&] { return "PERMUTE: order " + to_string(order) + " is not a permutation of 0.." + std::to_string(order.size() - 1); });
  bool identity = true;
  Shape out(order.size());
  for (size_t i = 0; i < order.size(); ++i) {
    out[i] = x->shape[order[i]];
    identity &= order[i] == static_cast<int64_t>(i);
  }
  if (identity) return x;
  return make(Op::Permute, x->dtype, out, {x}, order);
}

NodeRef node_expand(const NodeRef& x, const Shape& shape) {
  check(shape.size() == x->shape.size(), [&] { return "EXPAND: " + to_string(x->shape) + " to " + to_string(shape) + " changes the number of axes; reshape first"; });
  for (size_t i = 0; i < shape.size(); ++i)
    check(x->shape[i] == shape[i] || x->shape[i] == 1, [&] { return "EXPAND: cannot expand " + to_string(x->shape) + " to " + to_string(shape) + " (axis " + std::to_string(i) + " is not 1)"; });
  if (shape == x->shape) return x;
  return make(Op::Expand, x->dtype, shape, {x}, shape);
}

NodeRef node_pad(const NodeRef& x, const std::vector<std::pair<int64_t, int64_t>>& pads) {
  check(pads.size() == x->shape.size(), [&] { return "PAD: " + std::to_string(pads.size()) + " pairs for tensor " + to_string(x->shape); });
  Shape out = x->shape;
  std::vector<int64_t> arg;
  bool none = true;
  for (size_t i = 0; i < pads.size(); ++i) {
    check(pads[i].first >= 0 && pads[i].second >= 0, [&] { return "PAD: negative padding on axis " + std::to_string(i) + "; use shrink to cut"; });
    out[i] += pads[i].first + pads[i].second;
    arg.push_back(pads[i].first);
    arg.push_back(pads[i].second);
    none &= pads[i].first == 0 && pads[i].second == 0;
  }
  if (none) return x;
  return make(Op::Pad, x->dtype, out, {x}, arg);
}

NodeRef node_shrink(const NodeRef& x, const std::vector<std::pair<int64_t, int64_t>>& ranges) {
  check(ranges.size() == x->shape.size(), [&] { return "SHRINK: " + std::to_string(ranges.size()) + " ranges for tensor " + to_string(x->shape); });
  Shape out(ranges.size());
  std::vector<int64_t> arg;
  bool none = true;
  for (size_t i = 0; i < ranges.size(); ++i) {
    auto [b, e] = ranges[i];
    check(0 <= b && b <= e && e <= x->shape[i], [&] { return "SHRINK: range [" + std::to_string(b) + ", " + std::to_string(e) +
                                                    ") is outside axis " + std::to_string(i) + " of " + to_string(x->shape); });
    out[i] = e - b;
    arg.push_back(b);
    arg.push_back(e);
    none &= b == 0 && e == x->shape[i];
  }
  if (none) return x;
  return make(Op::Shrink, x->dtype, out, {x}, arg);
}

NodeRef node_flip(const NodeRef& x, const std::vector<int64_t>& axes) {
  for (int64_t a : axes) check(a >= 0 && a < static_cast<int64_t>(x->shape.size()), [&] { return "FLIP: axis out of range for " + to_string(x->shape); });
  if (axes.empty()) return x;
  return make(Op::Flip, x->dtype, x->shape, {x}, axes);
}

NodeRef node_copy(const NodeRef& x, Device* device) {
  auto n = make(Op::Copy, x->dtype, x->shape, {x});
  n->device = device;
  return n;
}

NodeRef node_contiguous(const NodeRef& x) { return make(Op::Contiguous, x->dtype, x->shape, {x}); }

NodeRef node_assign(const NodeRef& target, const NodeRef& value) {
  check(target->shape == value->shape, [&] { return "assign: target " + to_string(target->shape) + " and value " + to_string(value->shape) + " differ in shape"; });
  check(target->dtype == value->dtype, [&] { return std::string("assign: target is ") + dtype_name(target->dtype) + ", value is " + dtype_name(value->dtype) + "; cast the value"; });
  check_same_device(target, value, "assign");
  return make(Op::Assign, target->dtype, target->shape, {target, value});
}

NodeRef node_detach(const NodeRef& x) {
  auto n = make(Op::Detach, x->dtype, x->shape, {x});
  n->tracks_grad = false;
  return n;
}

std::vector<Node*> toposort(const std::vector<Node*>& roots, bool through_realized) {
  std::vector<Node*> order;
  std::unordered_set<Node*> seen;
  // Iterative DFS: graphs of deep models are too deep for recursion.
  std::vector<std::pair<Node*, size_t>> stack;
  for (Node* root : roots) {
    if (!seen.insert(root).second) continue;
    stack.push_back({root, 0});
    while (!stack.empty()) {
      auto& [n, i] = stack.back();
      bool leaf = n->buffer && !through_realized;
      if (!leaf && i < n->src.size()) {
        Node* s = n->src[i++].get();
        if (seen.insert(s).second) stack.push_back({s, 0});
      } else {
        order.push_back(n);
        stack.pop_back();
      }
    }
  }
  return order;
}

}  // namespace lathe
