// Work-groups on devices that have them (opencl): tiled matmuls through local memory, grouped
// reductions and vector access, chosen by the heuristics and forced by explicit options, each
// against a float64 reference. On devices without work-groups the values are still checked.
#include "lathe/device.h"
#include "codegen/lower.h"
#include "codegen/opt.h"
#include "lathe/render.h"
#include "lathe/runtime.h"
#include "lathe/vector_access.h"
#include "schedule/schedule.h"
#include "test_util.h"

namespace lathe::test {
namespace {

class WorkGroups : public Conformance {
 protected:
  bool has_groups() { return default_device()->info().max_local_size > 1; }

  // The one kernel that computes t (its inputs realized beforehand), lowered with `opt` or,
  // without, with the device's heuristics; run() executes it and returns its values.
  struct Lowered {
    Tensor value;  // owns the graph: the items point into it
    std::vector<ScheduleItem> items;
    LoweredKernel lk;
    std::vector<float> run() {
      Device* dev = items[0].node->device;
      auto program = dev->compile(lk.kernel);
      std::vector<void*> handles;
      for (Buffer* b : lk.params) handles.push_back(b->handle());
      program->run(handles, true);
      std::vector<float> out(items[0].output->numel());
      items[0].output->copy_out(out.data());
      return out;
    }
  };
  Lowered lowered(const Tensor& t, const LoweringOptions* opt = nullptr) {
    Lowered l;
    l.value = t;
    l.items = create_schedule({t.node().get()});
    EXPECT_EQ(l.items.size(), 1u);
    Node* self = l.items[0].node;
    auto input_of = [self](Node* n) -> Buffer* { return n == self ? nullptr : n->buffer.get(); };
    const DeviceInfo& info = self->device->info();
    LoweringOptions chosen = opt ? *opt : apply_opts(heuristic_opts(l.items[0].value, input_of, info), l.items[0].value, info);
    l.lk = lower_kernel(l.items[0].value, l.items[0].output.get(), input_of, chosen);
    return l;
  }
  static int count(const Kernel& k, IOp op) {
    return static_cast<int>(std::count_if(k.insts.begin(), k.insts.end(), [op](const Inst& in) { return in.op == op; }));
  }
  static ::testing::AssertionResult near(const std::vector<float>& got, const ref::Array& want, Tol tol) {
    if (got.size() != want.v.size()) return ::testing::AssertionFailure() << got.size() << " values, want " << want.v.size();
    for (size_t i = 0; i < got.size(); ++i)
      if (std::abs(got[i] - want.v[i]) > tol.atol + tol.rtol * std::abs(want.v[i]))
        return ::testing::AssertionFailure() << "element " << i << ": got " << got[i] << ", want " << want.v[i];
    return ::testing::AssertionSuccess();
  }
  Tensor input(const ref::Array& a) { return ref::tensor(a).realize(); }
};
LATHE_CONFORMANCE(WorkGroups);

// float32 dot products of length k: the error grows with k.
Tol dot_tol(int64_t k) { return {1e-5, 2e-6 * static_cast<double>(k)}; }

TEST_P(WorkGroups, MatmulWithEpilogueIsTiledThroughLocalMemory) {
  ref::Array xa = ref::random({128, 256}, rng), wa = ref::random({256, 192}, rng), ba = ref::random({192}, rng);
  Tensor y = (input(xa).matmul(input(wa)) + input(ba)).relu();
  Lowered l = lowered(y);
  if (has_groups()) {
    EXPECT_GT(l.lk.kernel.local_size, 1);
    EXPECT_EQ(count(l.lk.kernel, IOp::DefineLocal), 2) << kernel_ir_text(l.lk.kernel);
    EXPECT_EQ(count(l.lk.kernel, IOp::Barrier), 2);
  }
  ref::Array want = ref::binary(ref::matmul(xa, wa), ba, [](double m, double b) { return std::max(0.0, m + b); });
  EXPECT_TRUE(near(l.run(), want, dot_tol(256)));
  EXPECT_TRUE(close(y, want, dot_tol(256)));
}

// Register tiles keep their epilogue out of GCC's way: an added tensor is computed for every
// register before one group of stores (a store after each value kept the tile's loop scalar,
// 15x slower); a select (ReLU) is applied after the reductions were stored, reading them back.
TEST_P(WorkGroups, EpiloguesLeaveRegisterTilesVectorizable) {
  ref::Array aa = ref::random({64, 96}, rng), ba = ref::random({96, 48}, rng), da = ref::random({64, 48}, rng);
  Tensor a = input(aa), b = input(ba), d = input(da);
  ref::Array ab = ref::matmul(aa, ba);
  LoweringOptions opt;
  opt.flatten_outer = default_device()->info().parallel_all_outer_loops;
  opt.upcast = {4, 8};
  Lowered sum = lowered(a.matmul(b) + d, &opt);
  const auto& insts = sum.lk.kernel.insts;
  auto first_store = std::find_if(insts.begin(), insts.end(), [](const Inst& in) { return in.op == IOp::Store && !in.local; });
  ASSERT_NE(first_store, insts.end());
  for (auto it = first_store; it != insts.end(); ++it)
    EXPECT_TRUE(it->op == IOp::Store || it->op == IOp::EndRange) << kernel_ir_text(sum.lk.kernel);
  EXPECT_TRUE(near(sum.run(), ref::binary(ab, da, [](double x, double y) { return x + y; }), dot_tol(96)));

  ref::Array want = ref::unary(ab, [](double x) { return std::max(0.0, x); });
  auto reads_own_output = [](const Kernel& k) {
    return std::any_of(k.insts.begin(), k.insts.end(), [](const Inst& in) { return in.op == IOp::Load && !in.local && in.buffer == 0; });
  };
  for (bool reload : {false, true}) {
    opt.reload_epilogue = reload;
    Lowered relu = lowered(a.matmul(b).relu(), &opt);
    EXPECT_EQ(reads_own_output(relu.lk.kernel), reload) << kernel_ir_text(relu.lk.kernel);
    EXPECT_TRUE(near(relu.run(), want, dot_tol(96))) << (reload ? "reloaded" : "in registers");
  }
  if (!has_groups()) {  // the heuristics reload for a select after a register tile
    Lowered chosen = lowered(a.matmul(b).relu());
    EXPECT_TRUE(reads_own_output(chosen.lk.kernel)) << kernel_ir_text(chosen.lk.kernel);
    EXPECT_TRUE(near(chosen.run(), want, dot_tol(96)));
  }
}

TEST_P(WorkGroups, BatchedMatmulWithTransposedFactors) {
  // Attention's shape: both factors contiguous along the reduction.
  ref::Array qa = ref::random({4, 64, 32}, rng), ka = ref::random({4, 96, 32}, rng);
  Tensor s = input(qa).matmul(input(ka).transpose(-1, -2));
  Lowered l = lowered(s);
  if (has_groups()) EXPECT_EQ(count(l.lk.kernel, IOp::Barrier), 2) << kernel_ir_text(l.lk.kernel);
  ref::Array want{{4, 64, 96}, {}};
  for (int b = 0; b < 4; ++b) {
    ref::Array q{{64, 32}, std::vector<double>(qa.v.begin() + b * 64 * 32, qa.v.begin() + (b + 1) * 64 * 32)};
    ref::Array k{{96, 32}, std::vector<double>(ka.v.begin() + b * 96 * 32, ka.v.begin() + (b + 1) * 96 * 32)};
    ref::Array m = ref::matmul(q, ref::permute(k, {1, 0}));
    want.v.insert(want.v.end(), m.v.begin(), m.v.end());
  }
  EXPECT_TRUE(near(l.run(), want, dot_tol(32)));
}

TEST_P(WorkGroups, WeightGradientReducesOverTwoAxes) {
  // dW = sum over batch and time of x^T dy: a reduction over two axes, staged as one.
  ref::Array xa = ref::random({4, 32, 64}, rng), dya = ref::random({4, 32, 96}, rng);
  Tensor dw = (input(xa).unsqueeze(-1) * input(dya).unsqueeze(-2)).sum({0, 1});
  Lowered l = lowered(dw);
  if (has_groups()) EXPECT_EQ(count(l.lk.kernel, IOp::DefineLocal), 2) << kernel_ir_text(l.lk.kernel);
  ref::Array x2{{128, 64}, xa.v}, dy2{{128, 96}, dya.v};
  EXPECT_TRUE(near(l.run(), ref::matmul(ref::permute(x2, {1, 0}), dy2), dot_tol(128)));
}

TEST_P(WorkGroups, ExplicitTilesChunksAndShapesAgree) {
  ref::Array xa = ref::random({32, 48}, rng), wa = ref::random({48, 64}, rng);
  Tensor y = input(xa).matmul(input(wa));
  ref::Array want = ref::matmul(xa, wa);
  if (!has_groups()) GTEST_SKIP() << "no work-groups on " << GetParam();
  struct Case {
    std::vector<int64_t> local, upcast;
    int64_t chunk;
  };
  for (const Case& c : std::vector<Case>{{{8, 8}, {4, 4}, 16}, {{4, 16}, {2, 4}, 8}, {{16, 4}, {2, 1}, 4},
                                         {{2, 2}, {1, 1}, 1}, {{8, 8}, {2, 2}, 0}, {{1, 32}, {32, 2}, 2}}) {
    LoweringOptions opt;
    opt.flatten_outer = true;
    opt.local = c.local;
    opt.upcast = c.upcast;
    opt.stage_chunk = c.chunk;
    Lowered l = lowered(y, &opt);
    EXPECT_EQ(l.lk.kernel.local_size, c.local[0] * c.local[1]);
    EXPECT_TRUE(near(l.run(), want, dot_tol(48))) << "local " << c.local[0] << "x" << c.local[1] << " upcast " << c.upcast[0]
                                                 << "x" << c.upcast[1] << " chunk " << c.chunk << "\n"
                                                 << kernel_ir_text(l.lk.kernel);
  }
}

TEST_P(WorkGroups, RowReductionsAreGrouped) {
  ref::Array xa = ref::random({64, 384}, rng);
  Tensor x = input(xa);
  Tensor rms = (x * x).mean({1}).sqrt();
  Lowered l = lowered(rms);
  if (has_groups()) {
    EXPECT_GT(l.lk.kernel.local_size, 1);
    EXPECT_GT(count(l.lk.kernel, IOp::Barrier), 2) << kernel_ir_text(l.lk.kernel);
  }
  ref::Array want = ref::unary(ref::reduce(ref::unary(xa, [](double v) { return v * v; }), {1}, false, 0,
                                           [](double a, double b) { return a + b; }),
                               [](double s) { return std::sqrt(s / 384); });
  EXPECT_TRUE(near(l.run(), want, {1e-5, 1e-6}));
  ref::Array maxes = ref::reduce(xa, {1}, false, -INFINITY, [](double a, double b) { return std::max(a, b); });
  EXPECT_TRUE(near(lowered(x.max({1})).run(), maxes, {0, 0}));
}

// A norm's weighted row sum and a masked row reduction reuse one operand (the weight, the
// mask) across two output axes, but no operand runs along one axis and not the other: they are
// reductions, grouped in lanes (one group per output), not matmul tiles.
TEST_P(WorkGroups, BroadcastOperandsDoNotMakeAMatmul) {
  ref::Array xa = ref::random({4, 64, 384}, rng), wa = ref::random({384}, rng);
  Tensor weighted = (input(xa) * input(wa).reshape({1, 1, 384})).sum({2});
  ref::Array mask = ref::random({64, 384}, rng);
  Tensor keep = (input(mask) > 0.0).realize();  // stored, as a causal mask is
  Tensor masked = Tensor::where(keep.reshape({1, 64, 384}), input(xa), Tensor::scalar(0.0)).sum({2});
  for (const Tensor* t : {&weighted, &masked}) {
    Lowered l = lowered(*t);
    if (has_groups()) {
      EXPECT_GT(l.lk.kernel.local_size, 1);
      EXPECT_EQ(l.lk.kernel.global_size, 4 * 64 * l.lk.kernel.local_size) << kernel_ir_text(l.lk.kernel);
    }
    ref::Array want{{4, 64}, std::vector<double>(4 * 64, 0.0)};
    for (int64_t r = 0; r < 4 * 64; ++r)
      for (int64_t h = 0; h < 384; ++h) {
        double x = xa.v[r * 384 + h];
        want.v[r] += t == &weighted ? x * wa.v[h] : (mask.v[(r % 64) * 384 + h] > 0 ? x : 0.0);
      }
    EXPECT_TRUE(near(l.run(), want, dot_tol(384)));
  }
}

TEST_P(WorkGroups, ColumnSumsShareGroupsAcrossNeighbours) {
  ref::Array xa = ref::random({512, 96}, rng);
  Tensor cols = input(xa).sum({0});
  Lowered l = lowered(cols);
  if (has_groups()) EXPECT_GT(l.lk.kernel.local_size, 1) << kernel_ir_text(l.lk.kernel);
  EXPECT_TRUE(near(l.run(), ref::reduce(xa, {0}, false, 0, [](double a, double b) { return a + b; }), {1e-5, 1e-5}));
}

TEST_P(WorkGroups, ExplicitReductionLanes) {
  if (!has_groups()) GTEST_SKIP() << "no work-groups on " << GetParam();
  ref::Array xa = ref::random({16, 256}, rng);
  Tensor s = input(xa).sum({1});
  ref::Array want = ref::reduce(xa, {1}, false, 0, [](double a, double b) { return a + b; });
  for (int64_t lanes : {2, 4, 32, 256})
    for (int64_t split : {1, 4}) {  // each lane with `split` partial sums
      LoweringOptions opt;
      opt.flatten_outer = true;
      opt.group_reduce = lanes;
      opt.reduce_split = split;
      Lowered l = lowered(s, &opt);
      EXPECT_EQ(l.lk.kernel.local_size, lanes);
      EXPECT_TRUE(near(l.run(), want, {1e-5, 1e-5})) << lanes << " lanes, " << split << " partial sums";
    }
  // Maxima: a NaN in any partial wins, whichever lane and partial holds it.
  ref::Array ma = ref::random({4, 64}, rng);
  ma.v[1 * 64 + 37] = std::nan("");
  ma.v[3 * 64 + 0] = std::nan("");
  Tensor mx = input(ma).max({1});
  LoweringOptions opt;
  opt.flatten_outer = true;
  opt.group_reduce = 8;
  opt.reduce_split = 4;
  std::vector<float> got = lowered(mx, &opt).run();
  ref::Array mwant = ref::reduce(ma, {1}, false, -INFINITY, [](double a, double b) { return std::isnan(a) || std::isnan(b) ? NAN : std::max(a, b); });
  for (int row = 0; row < 4; ++row) {
    if (row == 1 || row == 3) EXPECT_TRUE(std::isnan(got[row])) << row;
    else EXPECT_EQ(got[row], static_cast<float>(mwant.v[row])) << row;
  }
}

TEST_P(WorkGroups, PartialAccumulatorsAgree) {
  // Row sums and sums over two axes with 2..16 partial accumulators on the innermost axis.
  ref::Array xa = ref::random({12, 8, 64}, rng);
  Tensor x = input(xa);
  for (auto [axes, shape] : std::vector<std::pair<std::vector<int>, Shape>>{{{2}, {12, 8}}, {{1, 2}, {12}}}) {
    Tensor s = x.sum(axes);
    ref::Array want = ref::reduce(xa, axes, false, 0, [](double a, double b) { return a + b; });
    for (int64_t split : {2, 4, 16}) {
      LoweringOptions opt;
      opt.flatten_outer = default_device()->info().parallel_all_outer_loops;
      opt.reduce_split = split;
      Lowered l = lowered(s, &opt);
      EXPECT_EQ(count(l.lk.kernel, IOp::DefineAcc), split) << kernel_ir_text(l.lk.kernel);
      EXPECT_TRUE(near(l.run(), want, {1e-5, 1e-5})) << split << " partial accumulators";
    }
  }
}

// Float32 maxima with partial accumulators run on ordered integer keys: NaN anywhere in a row
// wins, infinities and signed values keep their order, a row of -inf stays -inf.
TEST_P(WorkGroups, PartialMaximaKeepFloatOrderAndNaN) {
  ref::Array xa = ref::random({6, 64}, rng, -100, 100);
  xa.v[0 * 64 + 37] = NAN;
  for (int j = 0; j < 64; ++j) xa.v[1 * 64 + j] = -INFINITY;
  xa.v[2 * 64 + 5] = INFINITY;
  for (int j = 0; j < 64; ++j) xa.v[3 * 64 + j] = -1.0 - j * 1e-3;  // all negative: the largest is -1
  xa.v[4 * 64 + 63] = -NAN;  // a NaN with the sign bit set
  for (int j = 0; j < 64; ++j) xa.v[5 * 64 + j] = j == 9 ? 0.0 : -0.0;
  Tensor m = input(xa).max({1});
  std::vector<float> want = {NAN, -INFINITY, INFINITY, -1.0f, NAN, 0.0f};
  for (int64_t split : {1, 4, 16}) {
    LoweringOptions opt;
    opt.flatten_outer = default_device()->info().parallel_all_outer_loops;
    opt.reduce_split = split;
    std::vector<float> got = lowered(m, &opt).run();
    for (int r = 0; r < 6; ++r) {
      if (std::isnan(want[r])) EXPECT_TRUE(std::isnan(got[r])) << "row " << r << ", " << split << " partial accumulators";
      else EXPECT_EQ(got[r], want[r]) << "row " << r << ", " << split << " partial accumulators";
    }
  }
  ref::Array plain = ref::random({6, 64}, rng);
  EXPECT_TRUE(near(lowered(input(plain).max({1})).run(),
                   ref::reduce(plain, {1}, false, -INFINITY, [](double a, double b) { return std::max(a, b); }), {0, 0}));
}

TEST_P(WorkGroups, LargeElementwiseOpsUseVectorAccess) {
  ref::Array xa = ref::random({256, 1024}, rng);
  Tensor y = input(xa) * 2 + 1;
  Lowered l = lowered(y);
  if (has_groups()) {
    VectorPlan plan = plan_vector_access(l.lk.kernel);
    EXPECT_EQ(plan.runs.size(), 2u) << kernel_ir_text(l.lk.kernel);  // one load, one store
  }
  EXPECT_TRUE(near(l.run(), ref::unary(xa, [](double v) { return v * 2 + 1; }), {1e-6, 1e-6}));
}

// Scores recomputed inside a softmax-like sum (a reduction nested in another): the tile's
// registers share one inner loop nest, however the outer reduction is split or grouped.
TEST_P(WorkGroups, NestedReductionsShareOneLoopPerTile) {
  struct Env {
    Env() { setenv("LATHE_RECOMPUTE_MIB", "0", 1); }
    ~Env() { unsetenv("LATHE_RECOMPUTE_MIB"); }
  } env;
  ref::Array qa = ref::random({64, 8}, rng), ka = ref::random({96, 8}, rng);
  Tensor y = (input(qa).matmul(input(ka).transpose(0, 1)) * 0.5).exp().sum({1});
  ref::Array s = ref::matmul(qa, ref::permute(ka, {1, 0}));
  ref::Array want = ref::reduce(ref::unary(s, [](double v) { return std::exp(v * 0.5); }), {1}, false, 0,
                                [](double a, double b) { return a + b; });
  auto reduction_loops = [](const Kernel& k) {
    return std::count_if(k.insts.begin(), k.insts.end(), [](const Inst& in) { return in.op == IOp::Range && in.reduction; });
  };
  struct Case {
    int64_t upcast, split, lanes;
  };
  for (Case c : {Case{1, 1, 1}, Case{4, 1, 1}, Case{4, 4, 1}, Case{2, 1, 8}, Case{2, 4, 8}}) {
    if (c.lanes > 1 && !has_groups()) continue;
    LoweringOptions opt;
    opt.flatten_outer = c.lanes > 1 || default_device()->info().parallel_all_outer_loops;
    opt.upcast = {c.upcast};
    opt.reduce_split = c.split;
    opt.group_reduce = c.lanes;
    Lowered l = lowered(y, &opt);
    // The outer reduction and one nest of the inner one: registers x split would otherwise
    // each open their own.
    EXPECT_EQ(reduction_loops(l.lk.kernel), 2) << kernel_ir_text(l.lk.kernel);
    EXPECT_EQ(count(l.lk.kernel, IOp::DefineAcc), c.upcast * c.split * 2) << kernel_ir_text(l.lk.kernel);
    // In work-groups the inner loop takes four elements per step: q and k rows load as vectors.
    if (c.lanes > 1) EXPECT_GE(plan_vector_access(l.lk.kernel).runs.size(), 2u) << kernel_ir_text(l.lk.kernel);
    EXPECT_TRUE(near(l.run(), want, dot_tol(96))) << c.upcast << " registers, " << c.split << " partial sums, " << c.lanes << " lanes";
  }
}

// A sum of matmuls read by two kernels (the input gradient of the q, k and v projections, read
// by a norm's backward twice): on devices with work-groups the sum is stored by one kernel
// with the three reductions inside, which also computes the doubled sum from its registers;
// the sum of squares is a second kernel. Elsewhere the three products are stored, then their sum.
TEST_P(WorkGroups, MatmulsSummedForSeveralReadersShareOneKernel) {
  ref::Array xa = ref::random({64, 96}, rng), ya = ref::random({64, 96}, rng), za = ref::random({64, 96}, rng);
  ref::Array w1a = ref::random({96, 80}, rng), w2a = ref::random({96, 80}, rng), w3a = ref::random({96, 80}, rng);
  Tensor x = input(xa), y = input(ya), z = input(za), w1 = input(w1a), w2 = input(w2a), w3 = input(w3a);
  Tensor sum = x.matmul(w1) + y.matmul(w2) + z.matmul(w3);
  Tensor twice = sum * 2, squares = (sum * sum).sum({1});
  int64_t before = runtime_stats().kernels_run;
  realize({twice, squares});
  EXPECT_EQ(runtime_stats().kernels_run - before, has_groups() ? 2 : 6);
  ref::Array want = ref::binary(ref::binary(ref::matmul(xa, w1a), ref::matmul(ya, w2a), [](double a, double b) { return a + b; }),
                                ref::matmul(za, w3a), [](double a, double b) { return a + b; });
  EXPECT_TRUE(close(twice, ref::unary(want, [](double v) { return 2 * v; }), dot_tol(3 * 96)));
  EXPECT_TRUE(close(squares, ref::reduce(ref::unary(want, [](double v) { return v * v; }), {1}, false, 0,
                                         [](double a, double b) { return a + b; }),
                    {1e-4, 1e-3}));
}

// A gated MLP's silu(gate) * up, with gate and up wanted too (as a backward pass wants them):
// on work-group devices the product is computed in the matmuls' kernel from its accumulators.
TEST_P(WorkGroups, ElementwiseEpiloguesJoinTheirMatmuls) {
  ref::Array xa = ref::random({64, 96}, rng), ga = ref::random({96, 128}, rng), ua = ref::random({96, 128}, rng);
  Tensor x = input(xa), wg = input(ga), wu = input(ua);
  Tensor gate = x.matmul(wg), up = x.matmul(wu);
  Tensor h = gate * (gate.neg().exp() + 1.0).reciprocal() * up;
  int64_t before = runtime_stats().kernels_run;
  realize({gate, up, h});
  const int64_t kernels = runtime_stats().kernels_run - before;
  if (has_groups()) EXPECT_EQ(kernels, 1);
  ref::Array g = ref::matmul(xa, ga), u = ref::matmul(xa, ua);
  ref::Array want = ref::binary(g, u, [](double a, double b) { return a / (1 + std::exp(-a)) * b; });
  EXPECT_TRUE(close(gate, g, dot_tol(96)));
  EXPECT_TRUE(close(up, u, dot_tol(96)));
  EXPECT_TRUE(close(h, want, dot_tol(96)));

  // The same with the matmuls stored before a reshape ([64, 128, 1] sums read as [64, 128]):
  // the product is the kernel's first output and the sums are stored where it reads them.
  auto sums = [&](const Tensor& w) { return (x.unsqueeze(-2) * w.transpose(0, 1).unsqueeze(0)).sum({-1}, true); };
  Tensor gate3 = sums(wg), up3 = sums(wu);
  Tensor g2 = gate3.reshape({64, 128});
  Tensor h2 = g2 * (g2.neg().exp() + 1.0).reciprocal() * up3.reshape({64, 128});
  before = runtime_stats().kernels_run;
  realize({gate3, up3, h2});
  if (has_groups()) EXPECT_EQ(runtime_stats().kernels_run - before, 1);
  EXPECT_TRUE(close(gate3.reshape({64, 128}), g, dot_tol(96)));
  EXPECT_TRUE(close(up3.reshape({64, 128}), u, dot_tol(96)));
  EXPECT_TRUE(close(h2, want, dot_tol(96)));
}

}  // namespace
}  // namespace lathe::test

namespace lathe::test {
namespace {

// Loops form (cpu): a matmul factor reused by the inner output loops is read from a packed
// strip: plain, transposed, batched, over two reduced axes, and the rows' factor when the rows'
// loop comes first, against float64; a chunk other than the reduction's length, or a strip of
// fewer than four positions, packs nothing.
TEST_P(WorkGroups, PackedStripsAgree) {
  if (has_groups() || default_device()->info().parallel_all_outer_loops)
    GTEST_SKIP() << GetParam() << " runs every output in its own work-item: no loop to copy a strip once for";
  ref::Array a = ref::random({64, 96}, rng), b = ref::random({96, 128}, rng), bt = ref::random({128, 96}, rng);
  ref::Array ba = ref::random({3, 16, 96}, rng), bb = ref::random({3, 96, 64}, rng);
  auto options = [](std::vector<int64_t> upcast, std::vector<int> order, int64_t chunk) {
    LoweringOptions o;
    o.upcast = std::move(upcast);
    o.loop_order = std::move(order);
    o.stage_chunk = chunk;
    return o;
  };
  struct Case {
    const char* what;
    Tensor t;
    ref::Array want;
    LoweringOptions opt;
    int strips;
  };
  ref::Array batched{{3, 16, 64}, {}};
  for (int64_t n = 0; n < 3; ++n) {
    ref::Array x{{16, 96}, {ba.v.begin() + n * 16 * 96, ba.v.begin() + (n + 1) * 16 * 96}};
    ref::Array y{{96, 64}, {bb.v.begin() + n * 96 * 64, bb.v.begin() + (n + 1) * 96 * 64}};
    ref::Array m = ref::matmul(x, y);
    batched.v.insert(batched.v.end(), m.v.begin(), m.v.end());
  }
  // A weight gradient: a sum over two axes (batch and time), packed as one flat reduction.
  ref::Array xg = ref::random({4, 24, 64}, rng), dyg = ref::random({4, 24, 96}, rng);
  ref::Array x2{{96, 64}, xg.v}, dy2{{96, 96}, dyg.v};
  std::vector<Case> cases = {
      {"two reduced axes", (input(xg).unsqueeze(-1) * input(dyg).unsqueeze(-2)).sum({0, 1}),
       ref::matmul(ref::permute(x2, {1, 0}), dy2), options({8, 32}, {1, 0}, 96), 1},
      {"plain", input(a).matmul(input(b)), ref::matmul(a, b), options({4, 32}, {1, 0}, 96), 1},
      {"transposed", input(a).matmul(input(bt).transpose(0, 1)), ref::matmul(a, ref::permute(bt, {1, 0})),
       options({4, 16}, {1, 0}, 96), 1},
      {"batched", input(ba).matmul(input(bb)), batched, options({1, 2, 16}, {0, 2, 1}, 96), 1},
      {"rows first", input(a).matmul(input(b)), ref::matmul(a, b), options({4, 32}, {0, 1}, 96), 1},
      {"narrow tile", input(a).matmul(input(b)), ref::matmul(a, b), options({2, 2}, {1, 0}, 96), 0},
      {"other chunk", input(a).matmul(input(b)), ref::matmul(a, b), options({4, 32}, {1, 0}, 16), 0},
  };
  for (Case& c : cases) {
    Lowered l = lowered(c.t, &c.opt);
    EXPECT_EQ(count(l.lk.kernel, IOp::DefineLocal), c.strips) << c.what << "\n" << kernel_ir_text(l.lk.kernel);
    EXPECT_TRUE(near(l.run(), c.want, dot_tol(96))) << c.what << "\n" << kernel_ir_text(l.lk.kernel);
  }
}

}  // namespace
}  // namespace lathe::test
