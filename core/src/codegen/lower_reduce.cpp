// Reductions lowered as loops: partial accumulators along the innermost reduced axis, float32
// maxima on ordered integer keys, and reductions nested in another computed side by side for a
// whole register tile. The work-group forms are in lower_groups.cpp.
#include <algorithm>
#include <map>

#include "lowerer.h"

namespace lathe {

void Lowerer::reduce_in_loops(Node* r, Accs& accs, int64_t split) {
  const int64_t last = r->arg.empty() ? 1 : r->src[0]->shape[r->arg.back()];
  if (split <= 1 || last % split != 0) {
    std::vector<Expr> rvars = open_reduce_loops(r);
    std::vector<Ctx> srcs;
    for (auto& [acc, ctx] : accs) srcs.push_back(reduce_src_ctx(r, ctx, rvars));
    lower_nested_together(r->src[0].get(), srcs);
    for (size_t a = 0; a < accs.size(); ++a)
      emit(Inst{IOp::AccUpdate, r->dtype, r->reduce_op, {accs[a].first, lower(r->src[0].get(), srcs[a])}}, false);
    for (size_t i = 0; i < rvars.size(); ++i) close_range();
    return;
  }
  // `split` partial accumulators along the innermost reduced axis: independent chains the C
  // compiler turns into one vector accumulator, combined after the loop. A float32 maximum
  // runs on ordered integer keys (see max_key): an integer max vectorizes where a NaN-propagating
  // float select does not, and the key order puts NaN above everything, so NaN still wins.
  const bool keyed = r->reduce_op == Op::Max && r->dtype == DType::Float32;
  const DType acc_type = keyed ? DType::Int32 : r->dtype;
  std::vector<std::vector<int>> partial(accs.size());
  for (size_t a = 0; a < accs.size(); ++a) {
    if (keyed) k_.insts[accs[a].first] = make_const_acc(DType::Int32, static_cast<double>(kNegInfKey));
    partial[a].push_back(accs[a].first);
    const Inst init = k_.insts[accs[a].first];  // a copy: emit() may move the instructions
    for (int64_t l = 1; l < split; ++l) partial[a].push_back(emit(init, false));
  }
  std::vector<Expr> rvars;
  for (size_t i = 0; i + 1 < r->arg.size(); ++i) {
    int64_t extent = r->src[0]->shape[r->arg[i]];
    int v = new_var("r");
    rvars.push_back(expr_var(v, 0, extent - 1));
    open_range(v, extent, false, true);
  }
  int v = new_var("r");
  open_range(v, last / split, false, true);
  Expr outer = expr_mul(expr_var(v, 0, last / split - 1), split);
  rvars.push_back(nullptr);
  std::vector<Ctx> srcs;
  for (size_t a = 0; a < accs.size(); ++a)
    for (int64_t l = 0; l < split; ++l) {
      rvars.back() = expr_add(outer, l);
      srcs.push_back(reduce_src_ctx(r, accs[a].second, rvars));
    }
  lower_nested_together(r->src[0].get(), srcs);
  for (size_t a = 0; a < accs.size(); ++a)
    for (int64_t l = 0; l < split; ++l) {
      int value = lower(r->src[0].get(), srcs[a * split + l]);
      if (keyed) value = max_key(value);
      emit(Inst{IOp::AccUpdate, acc_type, r->reduce_op, {partial[a][l], value}}, false);
    }
  for (size_t i = 0; i < r->arg.size(); ++i) close_range();
  const Op combine = r->reduce_op == Op::Add ? Op::Add : Op::Max;
  for (size_t a = 0; a < accs.size(); ++a) {
    std::vector<int> level = partial[a];
    while (level.size() > 1) {  // a tree: the same association for every output
      std::vector<int> next;
      for (size_t i = 0; i + 1 < level.size(); i += 2) next.push_back(emit(Inst{IOp::Alu, acc_type, combine, {level[i], level[i + 1]}}, false));
      if (level.size() % 2) next.push_back(level.back());
      level = next;
    }
    accs[a].first = keyed ? from_max_key(level[0]) : level[0];
  }
}

// Ordered keys of float32 values: the bits as int32, with the magnitude bits of negative
// numbers flipped, so that integer order is float order (-inf < ... < -0 < +0 < ... < +inf),
// and every NaN mapped to INT32_MAX, above +inf. The inverse of a key is the same flip; the
// key of NaN comes back as a NaN.
int Lowerer::max_key(int value) {
  // Integer operations only (a float NaN test selecting an integer keeps GCC from
  // vectorizing): a NaN's magnitude bits exceed +inf's; its key becomes INT32_MAX through an
  // all-ones mask, key ^ ((key ^ INT32_MAX) & mask).
  auto i32 = [&](double c) { return emit(make_const(DType::Int32, c), true); };
  int bits = emit(Inst{IOp::Alu, DType::Int32, Op::Bitcast, {value}}, true);
  int key = flip_negative_magnitudes(bits);
  int magnitude = emit(Inst{IOp::Alu, DType::Int32, Op::And, {bits, i32(0x7fffffff)}}, true);
  int nan = emit(Inst{IOp::Alu, DType::Bool, Op::CmpLt, {i32(0x7f800000), magnitude}}, true);
  int mask = emit(Inst{IOp::Alu, DType::Int32, Op::Neg, {emit(Inst{IOp::Alu, DType::Int32, Op::Cast, {nan}}, true)}}, true);
  int to_max = emit(Inst{IOp::Alu, DType::Int32, Op::And, {emit(Inst{IOp::Alu, DType::Int32, Op::Xor, {key, i32(0x7fffffff)}}, true), mask}}, true);
  return emit(Inst{IOp::Alu, DType::Int32, Op::Xor, {key, to_max}}, true);
}

int Lowerer::from_max_key(int key) {
  return emit(Inst{IOp::Alu, DType::Float32, Op::Bitcast, {flip_negative_magnitudes(key)}}, true);
}

// bits ^ ((bits >> 31) & 0x7fffffff): the magnitude bits flipped where the sign bit is set.
int Lowerer::flip_negative_magnitudes(int bits) {
  auto i32 = [&](double c) { return emit(make_const(DType::Int32, c), true); };
  int sign = emit(Inst{IOp::Alu, DType::Int32, Op::Shr, {bits, i32(31)}}, true);
  int mask = emit(Inst{IOp::Alu, DType::Int32, Op::And, {sign, i32(0x7fffffff)}}, true);
  return emit(Inst{IOp::Alu, DType::Int32, Op::Xor, {bits, mask}}, true);
}

// The reductions nested in `src` (attention scores recomputed inside a softmax's sums), read
// by several tile registers: their loops run once for all of them, each (reduction, context)
// accumulating side by side, so one pass over the reduced axis loads every operand element
// once for the whole register tile instead of once per register.
void Lowerer::lower_nested_together(Node* src, const std::vector<Ctx>& ctxs) {
  std::vector<std::pair<Node*, Ctx>> found;
  std::map<std::pair<Node*, std::string>, bool> seen;
  for (auto& c : ctxs) collect_reads(src, c, input_of_, found, seen);
  std::map<std::string, std::vector<std::pair<Node*, Ctx>>> by_loops;  // nests of one shape share loops
  for (auto& f : found) {
    Node* r = f.first;
    // Top-level reductions are read from their accumulators; memoized ones are done already.
    if (std::find(top_reduces_.begin(), top_reduces_.end(), r) != top_reduces_.end() || memoized(memo_key(r, f.second))) continue;
    std::string loops = std::to_string(static_cast<int>(r->reduce_op)) + ":" + std::to_string(static_cast<int>(r->dtype));
    for (int64_t a : r->arg) loops += "," + std::to_string(r->src[0]->shape[a]);
    by_loops[loops].push_back(f);
  }
  for (auto& [loops, members] : by_loops) {
    if (members.size() < 2) continue;  // nothing to share: lowered where it is read
    std::vector<int> accs;
    for (auto& [r, c] : members) accs.push_back(emit(make_const_acc(r->dtype, reduce_identity(r->reduce_op, r->dtype)), false));
    // In work-groups, four steps of the innermost axis per loop iteration, in order: the four
    // neighbouring elements each member reads become one vector load (a row of K read 16
    // bytes at a time by each work-item instead of 4), with the same additions in the same
    // order. (GCC's own vectorization of the plain loop is faster on the cpu backend:
    // recomputed attention ran at 24 against 40 GFLOP/s unrolled.)
    Node* first = members[0].first;
    const int64_t last = first->src[0]->shape[first->arg.back()];
    const int64_t unroll = k_.local_size > 0 && last % 4 == 0 && last > 4 ? 4 : 1;
    std::vector<Expr> rvars;
    for (size_t i = 0; i < first->arg.size(); ++i) {
      const int64_t extent = i + 1 < first->arg.size() ? first->src[0]->shape[first->arg[i]] : last / unroll;
      int v = new_var("r");
      rvars.push_back(expr_var(v, 0, extent - 1));
      open_range(v, extent, false, true);
    }
    const Expr outer = rvars.back();
    for (int64_t u = 0; u < unroll; ++u) {
      rvars.back() = expr_add(expr_mul(outer, unroll), u);
      for (size_t m = 0; m < members.size(); ++m) {
        auto& [r, c] = members[m];
        int v = lower(r->src[0].get(), reduce_src_ctx(r, c, rvars));
        emit(Inst{IOp::AccUpdate, r->dtype, r->reduce_op, {accs[m], v}}, false);
      }
    }
    for (size_t i = 0; i < rvars.size(); ++i) close_range();
    for (size_t m = 0; m < members.size(); ++m) cse_.back()[memo_key(members[m].first, members[m].second)] = accs[m];
  }
}

}  // namespace lathe
