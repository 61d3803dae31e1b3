// Row kernels (LoweringOptions::spread_rows): on devices with work-groups a norm or a softmax
// is one launch that computes each row's statistics with the lanes of a group, then the row,
// and stores the statistics too where later kernels read them. Values against float64
// references; on devices without work-groups the same values from separate kernels.
#include <cmath>

#include "lathe/device.h"
#include "codegen/access.h"
#include "codegen/lower.h"
#include "lathe/render.h"
#include "lathe/runtime.h"
#include "schedule/schedule.h"
#include "test_util.h"

namespace lathe::test {
namespace {

class RowKernels : public Conformance {
 protected:
  bool has_groups() { return default_device()->info().max_local_size > 1; }
  Tensor input(const ref::Array& a) { return ref::tensor(a).realize(); }
};
LATHE_CONFORMANCE(RowKernels);

constexpr double kEps = 1e-5;

// Mean squares of the rows of x [rows, n], and the RMS norm x * rsqrt(ms + eps) * w.
struct NormRef {
  ref::Array ms, y;
};
NormRef norm_ref(const ref::Array& x, const ref::Array& w) {
  const int64_t n = x.shape.back(), rows = static_cast<int64_t>(x.v.size()) / n;
  Shape ms_shape = x.shape;
  ms_shape.back() = 1;
  NormRef r{{ms_shape, std::vector<double>(rows)}, x};
  for (int64_t i = 0; i < rows; ++i) {
    double s = 0;
    for (int64_t j = 0; j < n; ++j) s += x.v[i * n + j] * x.v[i * n + j];
    r.ms.v[i] = s / n;
    for (int64_t j = 0; j < n; ++j) r.y.v[i * n + j] = x.v[i * n + j] / std::sqrt(r.ms.v[i] + kEps) * w.v[j];
  }
  return r;
}

TEST_P(RowKernels, NormIsOneKernelThatAlsoStoresItsStatistics) {
  ref::Array xa = ref::random({4, 32, 384}, rng), wa = ref::random({384}, rng);
  Tensor x = input(xa), w = input(wa);
  Tensor ms = (x * x).mean({2}, true);
  Tensor y = x * (ms + kEps).rsqrt() * w.reshape({1, 1, 384});
  int64_t before = runtime_stats().kernels_run;
  realize({y, ms});  // the statistics are wanted too, as a backward pass wants them
  EXPECT_EQ(runtime_stats().kernels_run - before, has_groups() ? 1 : 2);
  NormRef want = norm_ref(xa, wa);
  EXPECT_TRUE(close(ms, want.ms, {1e-5, 1e-6}));
  EXPECT_TRUE(close(y, want.y, {1e-5, 1e-5}));
}

// A norm's backward: the statistic of the forward read from memory, a second one computed
// from the gradient and read along the row by the input gradient.
TEST_P(RowKernels, ABackwardStatisticAndItsRowShareAKernel) {
  const int64_t n = 256;
  ref::Array xa = ref::random({64, n}, rng), ga = ref::random({64, n}, rng), wa = ref::random({n}, rng);
  Tensor x = input(xa), g = input(ga), w = input(wa).reshape({1, n});
  Tensor r = ((x * x).mean({1}, true) + kEps).rsqrt().realize();
  Tensor d = (g * w * x).mean({1}, true);
  Tensor dx = r * g * w - x * r * r * r * d;
  int64_t before = runtime_stats().kernels_run;
  dx.realize();
  EXPECT_EQ(runtime_stats().kernels_run - before, has_groups() ? 1 : 2);
  ref::Array want = xa;
  for (int64_t i = 0; i < 64; ++i) {
    double ss = 0, dd = 0;
    for (int64_t j = 0; j < n; ++j) ss += xa.v[i * n + j] * xa.v[i * n + j], dd += ga.v[i * n + j] * wa.v[j] * xa.v[i * n + j];
    double rr = 1 / std::sqrt(ss / n + kEps);
    dd /= n;
    for (int64_t j = 0; j < n; ++j)
      want.v[i * n + j] = rr * ga.v[i * n + j] * wa.v[j] - xa.v[i * n + j] * rr * rr * rr * dd;
  }
  EXPECT_TRUE(close(dx, want, {1e-4, 1e-5}));
}

// The lowering under explicit lanes: each lane's elements of the row (l, l + lanes, ...) and
// the grouped reduction agree with the reference for every split of the row.
TEST_P(RowKernels, ExplicitLanesAgree) {
  if (!has_groups()) GTEST_SKIP() << "no work-groups on " << GetParam();
  ref::Array xa = ref::random({16, 384}, rng), wa = ref::random({384}, rng);
  Tensor x = input(xa), w = input(wa);
  Tensor ms = (x * x).mean({1}, true);
  Tensor y = x * (ms + kEps).rsqrt() * w.reshape({1, 384});
  std::vector<ScheduleItem> items = create_schedule({y.node().get()});
  ASSERT_EQ(items.size(), 2u);  // the statistics stored, then the row
  Node* self = items[1].node;
  Node* stats = items[0].node;
  // The kernel computes the statistics instead of reading them.
  auto input_of = [&](Node* n) -> Buffer* { return n == self || n == stats ? nullptr : n->buffer.get(); };
  EXPECT_EQ(row_lanes(items[1].value, {stats}, input_of, self->device->info()), 32);  // twelve elements each
  NormRef want = norm_ref(xa, wa);
  for (int64_t lanes : {8, 32, 128}) {
    LoweringOptions opt;
    opt.spread_rows = true;
    opt.group_reduce = lanes;
    opt.upcast = {1, 384 / lanes};
    LoweredKernel lk = lower_kernel(items[1].value, items[1].output.get(), input_of, opt);
    EXPECT_EQ(lk.kernel.local_size, lanes);
    EXPECT_EQ(lk.kernel.global_size, 16 * lanes) << kernel_ir_text(lk.kernel);
    std::vector<void*> handles;
    for (Buffer* b : lk.params) handles.push_back(b->handle());
    self->device->compile(lk.kernel)->run(handles, true);
    std::vector<float> got(16 * 384);
    items[1].output->copy_out(got.data());
    double worst = 0;
    for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::abs(got[i] - want.y.v[i]) / (1e-5 + std::abs(want.y.v[i])));
    EXPECT_LT(worst, 1e-4) << lanes << " lanes";
  }
}

// Reductions read along the last axis (column means subtracted from each row), or a row too
// long for the registers of 256 lanes, are not row kernels: the statistics are stored apart.
TEST_P(RowKernels, OnlyStatisticsConstantAlongTheRowMakeARowKernel) {
  ref::Array xa = ref::random({64, 384}, rng);
  Tensor x = input(xa);
  Tensor centered = x - x.mean({0}, true);
  std::vector<ScheduleItem> items = create_schedule({centered.node().get()});
  ASSERT_EQ(items.size(), 2u);
  Node *self = items[1].node, *means = items[0].node;
  auto input_of = [&](Node* n) -> Buffer* { return n == self || n == means ? nullptr : n->buffer.get(); };
  EXPECT_EQ(row_lanes(items[1].value, {means}, input_of, self->device->info()), 0);
  int64_t before = runtime_stats().kernels_run;
  centered.realize();
  EXPECT_EQ(runtime_stats().kernels_run - before, 2);
  ref::Array want = xa;
  for (int64_t j = 0; j < 384; ++j) {
    double s = 0;
    for (int64_t i = 0; i < 64; ++i) s += xa.v[i * 384 + j];
    for (int64_t i = 0; i < 64; ++i) want.v[i * 384 + j] -= s / 64;
  }
  EXPECT_TRUE(close(centered, want, {1e-5, 1e-5}));

  ref::Array la = ref::random({2, 8192}, rng);
  Tensor l = input(la);
  Tensor scaled = l / (l * l).sum({1}, true);
  before = runtime_stats().kernels_run;
  scaled.realize();
  EXPECT_EQ(runtime_stats().kernels_run - before, 2) << "8192 elements: 32 per lane";
}

}  // namespace
}  // namespace lathe::test
