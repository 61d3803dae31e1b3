// The kernel profile the heuristics read (codegen/kernel_profile.h) agrees with the plain loop
// nest that the lowering emits for the same kernel: its size, its work, its reductions and the
// loads inside them; and the heuristics' actions for a few shapes on the cpu.
#include <gtest/gtest.h>

#include "codegen/kernel_profile.h"
#include "codegen/lower.h"
#include "codegen/opt.h"
#include "lathe/ops/nn.h"
#include "lathe/runtime.h"
#include "schedule/schedule.h"
#include "test_util.h"

namespace lathe::test {
namespace {

struct Item {
  Tensor value;  // owns the graph
  std::vector<ScheduleItem> items;
  InputOf input_of;
};

// The last kernel of t's schedule, reading the others' outputs.
Item last_kernel(const Tensor& t) {
  Item it{t, create_schedule({t.node().get()}), {}};
  std::vector<ScheduleItem>* items = &it.items;
  Node* self = it.items.back().node;
  it.input_of = [items, self](Node* n) -> Buffer* {
    if (n == self) return nullptr;
    for (auto& s : *items)
      if (s.node == n) return s.output.get();
    return n->buffer.get();
  };
  return it;
}

int count(const Kernel& k, IOp op) {
  return static_cast<int>(std::count_if(k.insts.begin(), k.insts.end(), [op](const Inst& in) { return in.op == op; }));
}

// Read from the emitted nest: accumulators outside every reduction loop (one per top-level
// reduction and place it is read), and whether a select, comparison, maximum or
// transcendental, or a rounding to a 16-bit float, is computed after a reduction loop closed,
// outside reduction loops.
struct NestFacts {
  int top_accumulators = 0;
  bool selecting = false;
};
NestFacts facts_of(const Kernel& k) {
  NestFacts f;
  std::vector<bool> open;
  int reducing = 0;
  bool after = false;
  for (const Inst& in : k.insts) {
    if (in.op == IOp::Range) {
      open.push_back(in.reduction);
      reducing += in.reduction;
    } else if (in.op == IOp::EndRange) {
      reducing -= open.back();
      after |= open.back();
      open.pop_back();
    } else if (in.op == IOp::DefineAcc && reducing == 0) {
      ++f.top_accumulators;
    } else if (in.op == IOp::Alu && after && reducing == 0) {
      const Op o = in.alu;
      f.selecting |= o == Op::Where || o == Op::CmpLt || o == Op::CmpNe || o == Op::Max || o == Op::Exp2 || o == Op::Log2 ||
                     o == Op::Sin || (o == Op::Cast && (in.dtype == DType::BFloat16 || in.dtype == DType::Float16));
    }
  }
  return f;
}

TEST(KernelProfile, AgreesWithThePlainLoopNest) {
  set_default_device("cpu");
  std::mt19937 rng(3);
  Tensor a = ref::tensor(ref::random({32, 48}, rng)).realize(), b = ref::tensor(ref::random({48, 16}, rng)).realize();
  Tensor x = ref::tensor(ref::random({4, 8, 64}, rng)).realize();
  Tensor q = ref::tensor(ref::random({2, 16, 8}, rng)).realize(), k = ref::tensor(ref::random({2, 16, 8}, rng)).realize();
  struct Case {
    const char* name;
    Tensor t;
  };
  std::vector<Case> cases = {
      {"matmul", a.matmul(b)},
      {"relu(matmul)", a.matmul(b).relu()},
      {"bf16 matmul", a.cast(DType::BFloat16).matmul(b.cast(DType::BFloat16))},
      {"softmax", ops::softmax(x, -1)},
      {"rms norm", x * (x.square().mean({-1}, true) + 1e-5f).rsqrt()},
      {"elementwise", (x * 2.0f + 1.0f).exp()},
      {"row maximum of scores", q.matmul(k.transpose(-1, -2)).max({-1})},
  };
  int kernels = 0, reducing = 0;
  for (auto& c : cases) {
    SCOPED_TRACE(c.name);
    Item it = last_kernel(c.t);
    for (auto& item : it.items) {
      Node* value = item.value;
      auto input_of = [&](Node* n) -> Buffer* { return n == item.node ? nullptr : it.input_of(n); };
      KernelProfile p = profile_kernel(value, input_of);
      Buffer probe(nullptr, value->dtype, numel(value->shape));
      LoweredKernel plain = lower_kernel(value, &probe, input_of, LoweringOptions{});
      // The profile walks what the lowering emits; it may count an instruction that the
      // lowering's deduplication merges, never one fewer.
      const int64_t insts = static_cast<int64_t>(plain.kernel.insts.size());
      EXPECT_GE(p.body, insts);
      EXPECT_LE(p.body, insts + 2);
      EXPECT_EQ(p.ops, plain.kernel.ops_estimate);
      const NestFacts f = facts_of(plain.kernel);
      EXPECT_EQ(p.reduces.empty(), f.top_accumulators == 0);
      EXPECT_LE(static_cast<int>(p.reduces.size()), f.top_accumulators);
      EXPECT_EQ(p.innermost_var.size(), p.reduces.size());
      EXPECT_EQ(p.selecting_epilogue, f.selecting);
      EXPECT_EQ(p.loads.empty(), p.reduces.empty());
      ASSERT_EQ(p.axis_var.size(), value->shape.size());
      for (size_t d = 0; d < value->shape.size(); ++d) EXPECT_EQ(p.axis_var[d], value->shape[d] > 1 ? static_cast<int>(d) : -1);
      ++kernels;
      reducing += !p.reduces.empty();
    }
    // By definition: a ReLU after a matmul selects after its reduction, and so does the rounding
    // of a bf16 matmul's float32 sums; the float32 matmul alone does not.
    if (std::string(c.name) == "matmul") EXPECT_FALSE(profile_kernel(it.items.back().value, it.input_of).selecting_epilogue);
    if (std::string(c.name) == "bf16 matmul") EXPECT_TRUE(profile_kernel(it.items.back().value, it.input_of).selecting_epilogue);
    if (std::string(c.name) == "relu(matmul)") EXPECT_TRUE(profile_kernel(it.items.back().value, it.input_of).selecting_epilogue);
  }
  EXPECT_GT(kernels, reducing);  // the elementwise ones are in too
  EXPECT_GE(reducing, 6);        // a reduction in every case but the elementwise one
}

// A matmul's loads: one runs along the output's rows and the reduction, the other along the
// columns and the reduction; on the cpu the heuristics tile both axes of one this large (2^26
// operations and more pay for a big tile's compile time).
TEST(KernelProfile, MatmulLoadsAndTheHeuristicsTile) {
  set_default_device("cpu");
  std::mt19937 rng(5);
  Tensor a = ref::tensor(ref::random({256, 256}, rng)).realize(), b = ref::tensor(ref::random({256, 512}, rng)).realize();
  Item it = last_kernel(a.matmul(b));
  Node* value = it.items.back().value;
  KernelProfile p = profile_kernel(value, it.input_of);
  ASSERT_EQ(p.reduces.size(), 1u);
  const int kvar = p.innermost_var[0];
  ASSERT_GE(kvar, 2);  // reduction variables follow the output axes'
  bool a_load = false, b_load = false;
  for (const Expr& e : p.loads) {
    a_load |= expr_coefficient(e, 0) == 256 && expr_coefficient(e, kvar) == 1 && expr_coefficient(e, 1) == 0;
    b_load |= expr_coefficient(e, 1) == 1 && expr_coefficient(e, kvar) == 512 && expr_coefficient(e, 0) == 0;
  }
  EXPECT_TRUE(a_load);
  EXPECT_TRUE(b_load);
  Opts opts = heuristic_opts(value, it.input_of, default_device()->info());
  int upcast_axes = 0;
  for (const Opt& o : opts) upcast_axes += o.kind == OptKind::Upcast;
  EXPECT_EQ(upcast_axes, 2) << opts_text(opts);
}

}  // namespace
}  // namespace lathe::test
