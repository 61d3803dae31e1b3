// The online softmax rule: which sums read a maximum only through exp2, so both run in one pass.
#include "online_softmax.h"

#include <cmath>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace lathe {
namespace {

class RateOf {
 public:
  RateOf(Node* sum, Node* max, const std::function<Buffer*(Node*)>& input_of) : sum_(sum), max_(max), input_of_(input_of) {}

  // The summand as (a factor free of max) * exp2(rate * max); rate 0 when free of max.
  std::optional<double> rate(Node* n) {
    if (!reads_max(n)) return 0.0;
    switch (n->op) {
      case Op::Mul: {
        auto a = rate(n->src[0].get()), b = rate(n->src[1].get());
        if (!a || !b) return std::nullopt;
        return *a + *b;
      }
      case Op::Neg: return rate(n->src[0].get());
      case Op::Exp2: return affine(n->src[0].get());
      case Op::Where: {
        if (reads_max(n->src[0].get())) return std::nullopt;
        Node *a = n->src[1].get(), *b = n->src[2].get();
        if (is_zero(a)) return rate(b);  // zero scales with anything
        if (is_zero(b)) return rate(a);
        auto ra = rate(a), rb = rate(b);
        if (!ra || !rb || *ra != *rb) return std::nullopt;
        return ra;
      }
      default: return std::nullopt;
    }
  }

 private:
  // The coefficient of max in n, where n is affine in it.
  std::optional<double> affine(Node* n) {
    if (!reads_max(n)) return 0.0;
    if (is_max_read(n)) return 1.0;
    switch (n->op) {
      case Op::Add: {
        auto a = affine(n->src[0].get()), b = affine(n->src[1].get());
        if (!a || !b) return std::nullopt;
        return *a + *b;
      }
      case Op::Neg: {
        auto a = affine(n->src[0].get());
        if (!a) return std::nullopt;
        return -*a;
      }
      case Op::Mul:
        for (int side = 0; side < 2; ++side)
          if (auto k = constant(n->src[side].get())) {
            auto a = affine(n->src[1 - side].get());
            if (!a) return std::nullopt;
            return *k * *a;
          }
        return std::nullopt;
      case Op::Where: {
        if (reads_max(n->src[0].get())) return std::nullopt;
        auto a = affine(n->src[1].get()), b = affine(n->src[2].get());
        if (!a || !b || *a != *b) return std::nullopt;
        return a;
      }
      default: return std::nullopt;
    }
  }

  // max broadcast along the reduced axes: the summand of element i reads max at element i.
  bool is_max_read(Node* n) {
    if (n->op != Op::Expand || n->shape != sum_->src[0]->shape) return false;
    Node* s = n->src[0].get();
    while (s->op == Op::Detach) s = s->src[0].get();
    return s == max_;
  }

  bool reads_max(Node* n) {
    if (n == max_) return true;
    if (input_of_(n) || n->op == Op::Const) return false;
    auto it = reads_.find(n);
    if (it != reads_.end()) return it->second;
    bool r = false;
    for (auto& s : n->src) r = r || reads_max(s.get());
    return reads_[n] = r;
  }

  static std::optional<double> constant(Node* n) {
    while (n->op == Op::Expand || n->op == Op::Reshape || n->op == Op::Detach) n = n->src[0].get();
    if (n->op != Op::Const) return std::nullopt;
    return is_float(n->dtype) ? n->fvalue : static_cast<double>(n->ivalue);
  }
  static bool is_zero(Node* n) {
    auto k = constant(n);
    return k && *k == 0;
  }

  Node *sum_, *max_;
  const std::function<Buffer*(Node*)>& input_of_;
  std::unordered_map<Node*, bool> reads_;
};

}  // namespace

std::optional<double> online_rate(Node* sum, Node* max, const std::function<Buffer*(Node*)>& input_of) {
  if (sum->op != Op::Reduce || max->op != Op::Reduce || sum->reduce_op != Op::Add || max->reduce_op != Op::Max ||
      sum->dtype != DType::Float32 || max->dtype != DType::Float32 || sum->arg != max->arg || sum->shape != max->shape ||
      sum->src[0]->shape != max->src[0]->shape)
    return std::nullopt;
  std::optional<double> rate = RateOf(sum, max, input_of).rate(sum->src[0].get());
  if (!rate || !(*rate < 0) || !std::isfinite(*rate)) return std::nullopt;
  return rate;
}

Node* only_top_reduction(Node* value, const std::function<Buffer*(Node*)>& input_of) {
  Node* found = nullptr;
  std::vector<Node*> stack = {value};
  std::unordered_set<Node*> seen;
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    if (input_of(n) || !seen.insert(n).second) continue;
    if (n->op == Op::Reduce) {
      if (found) return nullptr;
      found = n;
    } else if (is_elementwise(n->op) || n->op == Op::Detach) {
      for (auto& s : n->src) stack.push_back(s.get());
    }
  }
  return found;
}

}  // namespace lathe
