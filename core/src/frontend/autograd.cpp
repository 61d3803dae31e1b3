// Reverse-mode autograd over the graph: a gradient rule per differentiable primitive.
#include <algorithm>
#include <cmath>
#include <numbers>
#include <unordered_map>
#include <unordered_set>

#include "lathe/runtime.h"
#include "lathe/tensor.h"
#include "tensor_impl.h"

namespace lathe {
namespace {

NodeRef constant(const NodeRef& like, double v) { return node_const(v, like->dtype, like->shape, like->device); }
NodeRef mul(const NodeRef& a, const NodeRef& b) { return node_binary(Op::Mul, a, b); }
NodeRef node_add(const NodeRef& a, const NodeRef& b) { return node_binary(Op::Add, a, b); }
NodeRef neg(const NodeRef& a) { return node_unary(Op::Neg, a); }
NodeRef lt(const NodeRef& a, const NodeRef& b) { return node_binary(Op::CmpLt, a, b); }
NodeRef where(const NodeRef& c, const NodeRef& a, const NodeRef& b) { return node_where(c, a, b); }

// Sums `g` over the axes where `shape` has extent 1 but `g` does not (undoing a broadcast).
NodeRef unbroadcast(const NodeRef& g, const Shape& shape) {
  std::vector<int64_t> axes;
  for (size_t i = 0; i < shape.size(); ++i)
    if (shape[i] == 1 && g->shape[i] != 1) axes.push_back(static_cast<int64_t>(i));
  return node_reduce_in_stages(g, Op::Add, axes);
}

// Gradients of n's sources given the gradient g of n (null where none flows).
std::vector<NodeRef> rule(const NodeRef& self_ref, const NodeRef& g) {
  Node* n = self_ref.get();
  auto& s = n->src;
  auto self = [&]() { return self_ref; };
  switch (n->op) {
    case Op::Neg: return {neg(g)};
    case Op::Add: return {g, g};
    case Op::Mul: return {mul(g, s[1]), mul(g, s[0])};
    case Op::Recip: return {neg(mul(g, mul(self(), self())))};
    case Op::Sqrt: return {mul(g, node_unary(Op::Recip, mul(self(), constant(g, 2))))};
    case Op::Exp2: return {mul(g, mul(self(), constant(g, std::numbers::ln2)))};
    case Op::Log2: return {mul(g, node_unary(Op::Recip, mul(s[0], constant(g, std::numbers::ln2))))};
    case Op::Sin: return {mul(g, node_unary(Op::Sin, node_add(s[0], constant(s[0], std::numbers::pi / 2))))};
    case Op::Max: {
      // Ties share the gradient equally, as in PyTorch's maximum.
      NodeRef share = where(lt(s[0], s[1]), constant(g, 0), where(lt(s[1], s[0]), constant(g, 1), constant(g, 0.5)));
      return {mul(g, share), mul(g, node_add(constant(g, 1), neg(share)))};
    }
    case Op::Where: return {nullptr, where(s[0], g, constant(g, 0)), where(s[0], constant(g, 0), g)};
    case Op::Cast: return {is_float(s[0]->dtype) ? node_cast(g, s[0]->dtype) : nullptr};
    case Op::Reduce: {
      NodeRef ge = node_expand(g, s[0]->shape);
      if (n->reduce_op == Op::Add) return {ge};
      // Max: split among the elements equal to the maximum.
      NodeRef hit = node_cast(node_binary(Op::Xor, node_binary(Op::CmpNe, s[0], node_expand(self_ref, s[0]->shape)),
                                          node_const(1, DType::Bool, s[0]->shape, s[0]->device)),
                              g->dtype);
      NodeRef count = node_expand(node_reduce(hit, Op::Add, n->arg), s[0]->shape);
      return {mul(mul(ge, hit), node_unary(Op::Recip, count))};
    }
    case Op::Reshape: return {node_reshape(g, s[0]->shape)};
    case Op::Permute: {
      std::vector<int64_t> inv(n->arg.size());
      for (size_t i = 0; i < n->arg.size(); ++i) inv[n->arg[i]] = static_cast<int64_t>(i);
      return {node_permute(g, inv)};
    }
    case Op::Expand: return {unbroadcast(g, s[0]->shape)};
    case Op::Pad: {
      std::vector<std::pair<int64_t, int64_t>> r;
      for (size_t i = 0; i < s[0]->shape.size(); ++i) r.push_back({n->arg[2 * i], n->arg[2 * i] + s[0]->shape[i]});
      return {node_shrink(g, r)};
    }
    case Op::Shrink: {
      std::vector<std::pair<int64_t, int64_t>> p;
      for (size_t i = 0; i < s[0]->shape.size(); ++i) p.push_back({n->arg[2 * i], s[0]->shape[i] - n->arg[2 * i + 1]});
      return {node_pad(g, p)};
    }
    case Op::Flip: return {node_flip(g, n->arg)};
    case Op::Contiguous: return {g};
    case Op::Copy: return {node_copy(g, s[0]->device)};
    default: return std::vector<NodeRef>(s.size(), nullptr);  // not differentiable
  }
}

// Nodes that track gradients under `root`, sources first. ASSIGN and DETACH are leaves.
std::vector<Node*> tracking_order(Node* root, std::unordered_map<Node*, NodeRef>& refs) {
  std::vector<Node*> order;
  std::unordered_set<Node*> seen{root};
  std::vector<std::pair<Node*, size_t>> stack{{root, 0}};
  while (!stack.empty()) {
    auto& [n, i] = stack.back();
    bool leaf = n->op == Op::Assign || n->op == Op::Detach;
    if (!leaf && i < n->src.size()) {
      const NodeRef& ref = n->src[i++];
      Node* s = ref.get();
      if (s->tracks_grad && seen.insert(s).second) {
        check(!s->backward_done, "backward(): part of this loss's graph went through an earlier backward() and was let go; "
                                 "compute that part again for this loss");
        refs[s] = ref;
        stack.push_back({s, 0});
      }
    } else {
      order.push_back(n);
      stack.pop_back();
    }
  }
  return order;
}

// n built again from its recomputation region's inputs: the same op on copies of its sources
// from the same region (memoized), the nodes outside the region as they are.
NodeRef recomputed(const NodeRef& n, std::unordered_map<Node*, NodeRef>& copies) {
  auto it = copies.find(n.get());
  if (it != copies.end()) return it->second;
  auto copy = std::make_shared<Node>(*n);
  copy->buffer = nullptr;
  copy->recomputed = true;
  for (auto& s : copy->src)
    if (s->recompute_region == n->recompute_region && !s->buffer) s = recomputed(s, copies);
  return copies[n.get()] = copy;
}

}  // namespace

void Tensor::backward() {
  check(numel() == 1, "backward(): the loss must hold one element, this tensor has shape " + to_string(shape()) +
                          "; reduce it first (e.g. .sum() or .mean())");
  check(is_float(dtype()), std::string("backward(): the loss must be a float tensor, not ") + dtype_name(dtype()));
  Node* root = node().get();
  check(root->tracks_grad, "backward(): no tensor this loss depends on requires grad (call requires_grad_() on the parameters)");
  std::unordered_map<Node*, NodeRef> refs{{root, node()}};
  std::vector<Node*> order = tracking_order(root, refs);

  std::unordered_map<Node*, std::vector<std::shared_ptr<TensorImpl>>> targets;
  for (auto& impl : tensors_requiring_grad()) targets[impl->node.get()].push_back(impl);
  check(!root->src.empty() || targets.count(root),
        "backward(): the graph of this loss was freed by an earlier backward(); compute the loss again");
  // Only nodes from which a target can be reached need a gradient.
  std::unordered_set<Node*> leads;
  for (Node* n : order) {
    bool l = targets.count(n) > 0;
    if (n->op != Op::Assign && n->op != Op::Detach)
      for (auto& s : n->src) l |= leads.count(s.get()) > 0;
    if (l) leads.insert(n);
  }
  check(leads.count(root) > 0, "backward(): no tensor this loss depends on requires grad");

  std::unordered_map<Node*, NodeRef> grads, copies;
  grads[root] = node_const(1.0, root->dtype, root->shape, root->device);
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Node* n = *it;
    auto g = grads.find(n);
    if (g == grads.end() || n->op == Op::Assign || n->op == Op::Detach) continue;
    // Inside a recomputation region the rule reads copies, which the backward computes again.
    const NodeRef& self = refs.at(n);
    std::vector<NodeRef> gs = rule(n->recompute_region && !n->buffer ? recomputed(self, copies) : self, g->second);
    for (size_t i = 0; i < n->src.size(); ++i) {
      Node* s = n->src[i].get();
      if (!gs[i] || !leads.count(s)) continue;
      auto& slot = grads[s];
      slot = slot ? node_add(slot, gs[i]) : gs[i];
    }
  }

  // In registration order, not the map's: a captured step needs the same kernel order every call.
  std::vector<Tensor> to_realize;
  for (auto& impl : tensors_requiring_grad()) {
    Node* node = impl->node.get();
    auto g = grads.find(node);
    if (g == grads.end()) continue;
    NodeRef total = g->second;
    const DType stored = impl->grad_dtype.value_or(node->dtype);
    if (impl->grad) {  // accumulate in the wider dtype, then round once
      NodeRef prev = impl->grad->node;
      const DType wide = promote(prev->dtype, total->dtype);
      total = node_add(prev->dtype == wide ? prev : node_cast(prev, wide), total->dtype == wide ? total : node_cast(total, wide));
    }
    if (total->dtype != stored) total = node_cast(total, stored);
    total = node_contiguous(total);
    total->tracks_grad = false;  // a gradient is a plain value, not part of the graph
    auto gi = std::make_shared<TensorImpl>();
    gi->node = total;
    impl->grad = gi;
    to_realize.emplace_back(total);
  }
  // Only the gradients themselves should own the backward graph while it runs: the memory
  // planner then gives each intermediate's memory back after its last reader. The loss value
  // is computed first, and the forward graph lets its history go once computed, as in PyTorch
  // without retain_graph: every forward value the backward graph does not read is released
  // (with train.recompute, all but each recomputed layer's input).
  grads.clear();
  copies.clear();
  refs.clear();
  for (Node* n : order)
    if (!targets.count(n)) {
      n->backward_done = true;
      if (n->buffer) n->src.clear();
    }
  lathe::realize({*this});
  // Last registered first: parameters are registered in forward order, so each layer's weight
  // gradients are computed as soon as the backward reaches it, not all at the end (which would
  // keep every layer's activations and output gradients alive until then).
  std::reverse(to_realize.begin(), to_realize.end());
  lathe::realize(to_realize);
}

}  // namespace lathe
