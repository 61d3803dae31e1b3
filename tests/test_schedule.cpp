// Kernel counts on representative graphs: the fusion rules of docs/scheduler.md.
#include "codegen/lower.h"
#include "codegen/opt.h"
#include "lathe/render.h"
#include "lathe/render_opencl.h"
#include "lathe/runtime.h"
#include "schedule/schedule.h"
#include "test_util.h"

namespace lathe::test {
namespace {

class Fusion : public Conformance {
 protected:
  // Realizes t and returns how many kernels ran for it (inputs are realized beforehand).
  int64_t kernels_for(Tensor t) {
    int64_t before = runtime_stats().kernels_run;
    t.realize();
    return runtime_stats().kernels_run - before;
  }
  Tensor input(const Shape& s) { return ref::tensor(ref::random(s, rng)); }
};
LATHE_CONFORMANCE(Fusion);

TEST_P(Fusion, ElementwiseChainIsOneKernel) {
  Tensor a = input({16, 8}), b = input({16, 8}), c = input({8});
  EXPECT_EQ(kernels_for(((a * b) + c).exp()), 1);
}

TEST_P(Fusion, ReduceWithElementwisePrologueIsOneKernel) {
  Tensor a = input({16, 8}), b = input({16, 8});
  EXPECT_EQ(kernels_for((a * b).sum({1})), 1);
  EXPECT_EQ(kernels_for((a * b).sum({0})), 1);
}

TEST_P(Fusion, MatmulBiasReluIsOneKernel) {
  ref::Array xa = ref::random({32, 64}, rng), wa = ref::random({64, 48}, rng), ba = ref::random({48}, rng);
  Tensor y = (ref::tensor(xa).matmul(ref::tensor(wa)) + ref::tensor(ba)).relu();
  EXPECT_EQ(kernels_for(y), 1);
  ref::Array want = ref::binary(ref::matmul(xa, wa), ba, [](double m, double b) { return std::max(0.0, m + b); });
  EXPECT_TRUE(close(y, want, {1e-5, 1e-5}));
}

// A residual stream h += norm(h) @ W_i over eight layers: without storing sums, layer i's norm
// would recompute h from all i earlier outputs (every layer a new, wider kernel). Every other
// partial sum is stored instead (it reads three stored values of h's size).
TEST_P(Fusion, ResidualStreamsAreStoredRatherThanRecomputedByEveryLayer) {
  const int layers = 8;
  ref::Array xa = ref::random({16, 32}, rng), h = xa;
  Tensor x = ref::tensor(xa), t = x;
  for (int i = 0; i < layers; ++i) {
    ref::Array wa = ref::random({32, 32}, rng, -0.2, 0.2);
    Tensor normed = t / ((t * t).mean({1}, true) + 1.0).sqrt();  // a norm, as before each layer of a transformer
    t = t + normed.matmul(ref::tensor(wa));
    ref::Array ms = ref::reduce(ref::unary(h, [](double v) { return v * v; }), {1}, true, 0, [](double a, double b) { return a + b; });
    ref::Array n = ref::binary(h, ms, [](double v, double m) { return v / std::sqrt(m / 32 + 1.0); });
    h = ref::binary(h, ref::matmul(n, wa), [](double a, double b) { return a + b; });
  }
  std::vector<ScheduleItem> items = create_schedule({t.node().get()});
  int stored_sums = 0;
  for (auto& item : items) stored_sums += item.node->op == Op::Add;
  EXPECT_GE(stored_sums, layers / 2 - 1);
  EXPECT_TRUE(close(t, h, {1e-4, 1e-4}));
}

// An optimizer-like update of a parameter and its two moments (each an in-place assign of an
// elementwise value of one shape) runs as one kernel with three outputs; the parameter's update
// reads the moments' old values, as it would in three kernels run in order.
TEST_P(Fusion, SiblingAssignsShareOneKernel) {
  ref::Array pa = ref::random({16, 24}, rng), ma = ref::random({16, 24}, rng), va = ref::random({16, 24}, rng, 0.5, 2),
             ga = ref::random({16, 24}, rng);
  Tensor p = ref::tensor(pa).contiguous().realize(), m = ref::tensor(ma).contiguous().realize(),
         v = ref::tensor(va).contiguous().realize(), g = ref::tensor(ga).realize();
  Tensor m_new = m * 0.9 + g * 0.1, v_new = v * 0.99 + g * g * 0.01;
  p.assign(p - m_new / (v_new.sqrt() + 1e-8) * 0.01 - m * 0.5);  // reads m's old value too
  m.assign(m_new);
  v.assign(v_new);
  int64_t before = runtime_stats().kernels_run;
  realize({p, m, v});
  EXPECT_EQ(runtime_stats().kernels_run - before, 1);
  ref::Array want_m = pa, want_v = pa, want_p = pa;
  for (size_t i = 0; i < pa.v.size(); ++i) {
    want_m.v[i] = ma.v[i] * 0.9 + ga.v[i] * 0.1;
    want_v.v[i] = va.v[i] * 0.99 + ga.v[i] * ga.v[i] * 0.01;
    want_p.v[i] = pa.v[i] - want_m.v[i] / (std::sqrt(want_v.v[i]) + 1e-8) * 0.01 - ma.v[i] * 0.5;
  }
  EXPECT_TRUE(close(p, want_p, {1e-5, 1e-5}));
  EXPECT_TRUE(close(m, want_m, {1e-6, 1e-6}));
  EXPECT_TRUE(close(v, want_v, {1e-6, 1e-6}));
  // A value that reads another output at other elements (a transpose) needs that output's old
  // contents everywhere: separate kernels, in order.
  Tensor a = ref::tensor(ref::random({8, 8}, rng)).contiguous().realize(), b = ref::tensor(ref::random({8, 8}, rng)).contiguous().realize();
  std::vector<float> a0 = a.to_vector<float>(), b0 = b.to_vector<float>();
  a.assign(a + b.transpose(0, 1));
  b.assign(b * 2.0);
  before = runtime_stats().kernels_run;
  realize({a, b});
  EXPECT_EQ(runtime_stats().kernels_run - before, 2);
  std::vector<float> a1 = a.to_vector<float>(), b1 = b.to_vector<float>();
  for (int r = 0; r < 8; ++r)
    for (int c = 0; c < 8; ++c) {
      EXPECT_FLOAT_EQ(a1[r * 8 + c], a0[r * 8 + c] + b0[c * 8 + r]);
      EXPECT_FLOAT_EQ(b1[r * 8 + c], b0[r * 8 + c] * 2.0f);
    }
}

// On devices with work-groups, reductions of one structure over different inputs (squared sums
// of same-shaped gradients, two projections of one input) share a kernel, each in its own loop
// nest; reductions of another structure, or reading another member's output, do not. Devices
// without them (cpu: a launch is a function call) keep reductions apart.
TEST_P(Fusion, SiblingReductionsOfOneStructureShareOneKernel) {
  const bool shares = default_device()->info().max_local_size > 1;
  auto sum_sq = [](const ref::Array& a) {
    double s = 0;
    for (double v : a.v) s += v * v;
    return s;
  };
  std::vector<ref::Array> ga;
  std::vector<Tensor> sums;
  for (int k = 0; k < 3; ++k) {
    ga.push_back(ref::random({64, 48}, rng));
    sums.push_back(ref::tensor(ga.back()).realize().square().sum());
  }
  int64_t before = runtime_stats().kernels_run;
  realize(sums);
  int64_t one_each = runtime_stats().kernels_run - before;
  for (int k = 0; k < 3; ++k) EXPECT_NEAR(sums[k].item<float>(), sum_sq(ga[k]), 1e-4 * sum_sq(ga[k])) << k;
  Tensor alone = ref::tensor(ga[0]).realize().square().sum();
  before = runtime_stats().kernels_run;
  alone.realize();
  const int64_t launches_of_one = runtime_stats().kernels_run - before;
  EXPECT_EQ(one_each, shares ? launches_of_one : 3 * launches_of_one);  // shared: three sums cost the launches of one
  // Apart in the schedule, with an independent kernel between them: brought together.
  ref::Array ha = ref::random({10, 7}, rng);
  Tensor first = ref::tensor(ga[1]).realize().square().sum(), between = ref::tensor(ha).realize() * 2.0,
         second = ref::tensor(ga[2]).realize().square().sum();
  before = runtime_stats().kernels_run;
  realize({first, between, second});
  EXPECT_EQ(runtime_stats().kernels_run - before, (shares ? launches_of_one : 2 * launches_of_one) + 1);
  EXPECT_NEAR(second.item<float>(), sum_sq(ga[2]), 1e-4 * sum_sq(ga[2]));
  EXPECT_TRUE(close(between, ref::unary(ha, [](double v) { return v * 2; }), {1e-6, 1e-6}));
  // A partner that reads what the item between computes stays after it.
  Tensor made = (ref::tensor(ga[1]).realize() * 2.0).contiguous();
  Tensor before_it = ref::tensor(ga[0]).realize().square().sum(), after_it = made.square().sum();
  realize({before_it, made, after_it});
  EXPECT_NEAR(after_it.item<float>(), 4 * sum_sq(ga[1]), 4e-4 * sum_sq(ga[1]));
  EXPECT_NEAR(before_it.item<float>(), sum_sq(ga[0]), 1e-4 * sum_sq(ga[0]));

  ref::Array xa = ref::random({32, 40}, rng), wa = ref::random({40, 24}, rng), va = ref::random({40, 24}, rng);
  Tensor x = ref::tensor(xa).realize();
  Tensor y = x.matmul(ref::tensor(wa).realize()), z = x.matmul(ref::tensor(va).realize()), rows = x.sum({1}, true);
  before = runtime_stats().kernels_run;
  realize({y, z, rows});
  EXPECT_EQ(runtime_stats().kernels_run - before, shares ? 2 : 3);  // y and z together; the row sums have another structure
  EXPECT_TRUE(close(y, ref::matmul(xa, wa), {1e-5, 1e-4}));
  EXPECT_TRUE(close(z, ref::matmul(xa, va), {1e-5, 1e-4}));
}

TEST_P(Fusion, SoftmaxIsAtMostThreeKernels) {
  Tensor x = input({8, 33});
  Tensor e = (x - x.max({-1}, true)).exp();
  Tensor s = e / e.sum({-1}, true);
  int64_t n = kernels_for(s);
  EXPECT_LE(n, 3);
  EXPECT_GE(n, 2);  // the max and the sum are broadcast back: they cannot fuse into the output
  std::vector<float> v = s.to_vector<float>();
  for (int r = 0; r < 8; ++r) {
    double total = 0;
    for (int c = 0; c < 33; ++c) total += v[r * 33 + c];
    EXPECT_NEAR(total, 1.0, 1e-5);
  }
}

TEST_P(Fusion, ViewsCostNoCopyKernel) {
  Tensor a = input({12, 10}), b = input({10, 12});
  EXPECT_EQ(kernels_for(a.transpose() + b), 1);
  EXPECT_EQ(kernels_for(a.slice(0, 1, 11, 2) * 2.0), 1);
  EXPECT_EQ(kernels_for(a.permute({1, 0}).reshape({120}).flip({0}).sum()), 1);
  EXPECT_EQ(kernels_for(a.pad({{1, 1}, {0, 0}}).exp()), 1);
}

TEST_P(Fusion, ContiguousForcesAKernelAndSharedReduceIsComputedOnce) {
  Tensor a = input({4, 4});
  EXPECT_EQ(kernels_for(a.transpose().contiguous()), 1);
  Tensor s = a.sum({1}, true);
  EXPECT_EQ(kernels_for(a / s + s.exp()), 2);  // s feeds a broadcast: stored once, read twice
}

TEST_P(Fusion, KernelsThatDifferOnlyInAConstantAreDistinct) {
  Tensor a = input({4});
  std::vector<float> x = (a * 0.1).to_vector<float>(), y = (a * 0.10000001).to_vector<float>(), v = a.to_vector<float>();
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(x[i], v[i] * 0.1f);
    EXPECT_EQ(y[i], v[i] * 0.10000001f);
  }
  EXPECT_EQ((a * 0.0 + 5.9604644775390625e-8).to_vector<float>(), std::vector<float>(4, 5.9604644775390625e-8f));
}

TEST_P(Fusion, RealizedValuesAreNotRecomputed) {
  Tensor a = input({8, 8});
  Tensor m = a.matmul(a);
  EXPECT_EQ(kernels_for(m), 1);
  EXPECT_EQ(kernels_for(m + 1.0), 1);
  EXPECT_EQ(kernels_for(m), 0);
}

TEST_P(Fusion, LongReductionsOverSeveralAxesRunInTwoStages) {
  // Sums over batch and time to a small result: the time axis first, then the batch axis.
  ref::Array xa = ref::random({16, 1024, 24}, rng);
  Tensor x = ref::tensor(xa).realize();
  Tensor s = x.sum({0, 1});
  EXPECT_EQ(kernels_for(s), 2);
  EXPECT_TRUE(close(s, ref::reduce(xa, {0, 1}, false, 0, [](double a, double b) { return a + b; }), {1e-5, 1e-4}));
  // The same through autograd: a weight shared over batch and time gets a two-stage gradient.
  Tensor w = ref::tensor(ref::random({24}, rng)).requires_grad_();
  (x * w).sum().backward();
  EXPECT_TRUE(close(w.grad(), ref::reduce(xa, {0, 1}, false, 0, [](double a, double b) { return a + b; }), {1e-5, 1e-4}));
  // Short ones stay one kernel.
  EXPECT_EQ(kernels_for(input({4, 16, 24}).sum({0, 1})), 1);
}

TEST_P(Fusion, IntermediatesGiveTheirMemoryBackAfterTheirLastReader) {
  // Ten stored intermediates of 4 MiB in one realize: only a few are ever live at once.
  ref::Array xa = ref::random({1 << 20}, rng);
  Tensor x = ref::tensor(xa).realize();
  Tensor kept;
  Tensor y = x;
  for (int i = 0; i < 10; ++i) {
    y = (y * 0.5 + 1.0).contiguous();
    if (i == 3) kept = y;  // a tensor the caller still holds keeps its memory
  }
  Tensor total = y.sum();
  runtime_stats().reset_peak();
  const int64_t before = runtime_stats().bytes_live;
  double got = total.item<float>();
  const int64_t step = (1 << 20) * 4;
  EXPECT_LE(runtime_stats().bytes_peak - before, 4 * step) << "peak above the inputs: " << (runtime_stats().bytes_peak - before);
  double want = 0;
  for (double v : xa.v) {
    for (int i = 0; i < 10; ++i) v = v * 0.5 + 1.0;
    want += v;
  }
  EXPECT_NEAR(got, want, 1e-4 * std::abs(want));
  std::vector<float> k = kept.to_vector<float>();
  double v0 = xa.v[7];
  for (int i = 0; i < 4; ++i) v0 = v0 * 0.5 + 1.0;
  EXPECT_NEAR(k[7], v0, 1e-5);
}

TEST_P(Fusion, BackwardFreesTheForwardGraphLikePyTorch) {
  Tensor w = ref::tensor(ref::random({8}, rng)).requires_grad_();
  Tensor loss = (w * w).sum();
  loss.backward();
  EXPECT_GT(loss.item<float>(), 0.0f);  // the value stays readable
  std::string msg;
  try {
    loss.backward();
  } catch (const Error& e) {
    msg = e.what();
  }
  EXPECT_NE(msg.find("freed by an earlier backward()"), std::string::npos) << msg;
}

// A sum of many reductions in one kernel (a global gradient norm) keeps each loop rolled up to
// four steps on OpenCL: fully unrolled, 57 of them took a GPU compiler 8 s. Eight or fewer
// leave unrolling to the compiler.
TEST_P(Fusion, ManyReductionsInOneKernelLimitTheirUnrolling) {
  for (int n : {8, 9}) {
    std::vector<Tensor> xs;
    Tensor total;
    for (int i = 0; i < n; ++i) {
      xs.push_back(Tensor::rand({96 + 32 * i}, DType::Float32).realize());
      Tensor s = xs.back().square().sum();
      total = total.defined() ? total + s : s;
    }
    std::vector<ScheduleItem> items = create_schedule({total.node().get()});
    ASSERT_EQ(items.size(), 1u);
    Node* self = items[0].node;
    auto input_of = [self](Node* m) -> Buffer* { return m == self ? nullptr : m->buffer.get(); };
    LoweredKernel lk = lower_kernel(items[0].value, items[0].output.get(), input_of,
                                    apply_opts(heuristic_opts(items[0].value, input_of, self->device->info()), items[0].value,
                                               self->device->info()));
    std::string source = render_c_family(lk.kernel, OpenCLDialect());
    size_t hints = 0;
    for (size_t at = source.find("#pragma unroll 4"); at != std::string::npos; at = source.find("#pragma unroll 4", at + 1)) ++hints;
    EXPECT_EQ(hints, n > 8 ? static_cast<size_t>(n) : 0u) << n << " reductions";
    double want = 0;
    for (auto& x : xs)
      for (float v : x.to_vector<float>()) want += static_cast<double>(v) * v;
    EXPECT_NEAR(total.item<float>(), want, 1e-4 * want);
  }
}

}  // namespace
}  // namespace lathe::test
