// A maximum and a sum that reads it through exp2(rate * max) (see online_softmax.h), lowered
// as one pass over the reduced axis: a running maximum, and the sum rescaled by
// exp2(rate * (new - old)) whenever the maximum grows. Softmax normalizers and the row
// statistics of recomputed attention scores read their input once instead of twice.
#include <cmath>

#include "lowerer.h"

namespace lathe {

// The factor that moves a sum taken relative to maximum `from` to maximum `to` (>= from):
// exp2(rate * (to - from)), and exactly 1 when they are equal (so -inf to -inf is 1, not NaN).
int Lowerer::online_rescale(int from, int to, double rate) {
  auto f32 = [&](double c) { return emit(make_const(DType::Float32, c), true); };
  // Not CSE'd: `from` may be an accumulator that changes between uses.
  auto alu = [&](Op op, std::vector<int> src, DType dtype = DType::Float32) { return emit(Inst{IOp::Alu, dtype, op, std::move(src)}, false); };
  int diff = alu(Op::Add, {to, alu(Op::Neg, {from})});
  int factor = alu(Op::Exp2, {alu(Op::Mul, {diff, f32(rate)})});
  return alu(Op::Where, {alu(Op::CmpNe, {from, to}, DType::Bool), factor, f32(1)});
}

void Lowerer::reduce_online(Node* max, Node* sum, Accs& maxes, Accs& sums, double rate, int64_t lanes, int64_t split) {
  const int64_t n = reduce_length(max);
  lanes = std::max<int64_t>(lanes, 1);
  if (split < 1 || n % (lanes * split)) split = 1;
  // Each loop step takes `split` elements per lane (lane l: elements l, l + lanes, ...).
  std::vector<std::vector<Expr>> steps;
  size_t opened;
  if (lanes == 1 && split == 1) {
    steps.push_back(open_reduce_loops(max));
    opened = steps[0].size();
  } else {
    int jv = new_var("r");
    open_range(jv, n / (lanes * split), false, true);
    opened = 1;
    for (int64_t u = 0; u < split; ++u) {
      Expr step = expr_add(expr_mul(expr_var(jv, 0, n / (lanes * split) - 1), split), u);
      steps.push_back(split_reduce_index(max, lanes > 1 ? expr_add(expr_mul(step, lanes), reduce_lane_) : step));
    }
  }
  std::vector<Ctx> max_srcs, sum_srcs;
  for (size_t a = 0; a < maxes.size(); ++a)
    for (auto& rvars : steps) {
      max_srcs.push_back(reduce_src_ctx(max, maxes[a].second, rvars));
      sum_srcs.push_back(reduce_src_ctx(sum, sums[a].second, rvars));
    }
  lower_nested_together(max->src[0].get(), max_srcs);
  lower_nested_together(sum->src[0].get(), sum_srcs);
  for (size_t a = 0; a < maxes.size(); ++a) {
    // The step's maximum first; the summands then read it in place of the final one.
    const int old_max = maxes[a].first;
    int new_max = old_max;
    for (size_t u = 0; u < steps.size(); ++u)
      new_max = emit(Inst{IOp::Alu, DType::Float32, Op::Max, {new_max, lower(max->src[0].get(), max_srcs[a * steps.size() + u])}}, false);
    // While every element so far is -inf (keys masked off so far, in this lane), the summands
    // read 0 instead: exp2(rate * (-inf - 0)) adds 0 where -inf - -inf would add NaN.
    const int neg_inf = emit(make_const(DType::Float32, -INFINITY), true), zero = emit(make_const(DType::Float32, 0), true);
    int finite = emit(Inst{IOp::Alu, DType::Bool, Op::CmpNe, {new_max, neg_inf}}, false);
    top_acc_[{max, maxes[a].second.key()}] = emit(Inst{IOp::Alu, DType::Float32, Op::Where, {finite, new_max, zero}}, false);
    int total = -1;
    for (size_t u = 0; u < steps.size(); ++u) {
      int v = lower(sum->src[0].get(), sum_srcs[a * steps.size() + u]);
      total = total < 0 ? v : emit(Inst{IOp::Alu, DType::Float32, Op::Add, {total, v}}, false);
    }
    emit(Inst{IOp::AccUpdate, DType::Float32, Op::Mul, {sums[a].first, online_rescale(old_max, new_max, rate)}}, false);
    emit(Inst{IOp::AccUpdate, DType::Float32, Op::Add, {sums[a].first, total}}, false);
    emit(Inst{IOp::AccUpdate, DType::Float32, Op::Max, {maxes[a].first, new_max}}, false);
  }
  for (size_t i = 0; i < opened; ++i) close_range();
  if (lanes > 1) {
    // The lanes' (maximum, sum) pairs merge in a tree in local memory, each sum moved to the
    // larger maximum.
    std::vector<std::pair<int, int>> arrays;
    for (size_t a = 0; a < maxes.size(); ++a) {
      arrays.push_back({define_local(DType::Float32, k_.local_size), define_local(DType::Float32, k_.local_size)});
      local_store(arrays.back().first, local_id_, maxes[a].first);
      local_store(arrays.back().second, local_id_, sums[a].first);
    }
    barrier();
    for (int64_t step = lanes / 2; step >= 1; step /= 2) {
      std::vector<IndexBound> active;
      add_bound(active, {reduce_lane_, 0, step});
      Expr other = expr_add(local_id_, step * local_outputs_);
      for (auto [am, as] : arrays) {
        int own_max = local_load(am, local_id_, {}, false), own_sum = local_load(as, local_id_, {}, false);
        int other_max = local_load(am, other, active, false), other_sum = local_load(as, other, active, false);
        int m = emit(Inst{IOp::Alu, DType::Float32, Op::Max, {own_max, other_max}}, false);
        int s = emit(Inst{IOp::Alu, DType::Float32, Op::Add,
                          {emit(Inst{IOp::Alu, DType::Float32, Op::Mul, {own_sum, online_rescale(own_max, m, rate)}}, false),
                           emit(Inst{IOp::Alu, DType::Float32, Op::Mul, {other_sum, online_rescale(other_max, m, rate)}}, false)}},
                     false);
        local_store(am, local_id_, m, active);
        local_store(as, local_id_, s, active);
      }
      barrier();
    }
    for (size_t a = 0; a < maxes.size(); ++a) {
      maxes[a].first = local_load(arrays[a].first, local_out_, {}, false);
      sums[a].first = local_load(arrays[a].second, local_out_, {}, false);
    }
  }
}

}  // namespace lathe
