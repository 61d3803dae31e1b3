// Step capture and replay: a replayed step computes exactly what running the step computes,
// launches without scheduling or compiling, shares memory between short-lived buffers, and
// refuses (running normally instead) the steps a replay would get wrong.
#include "lathe/capture.h"
#include "lathe/runtime.h"
#include "test_util.h"

namespace lathe::test {
namespace {

class Capture : public Conformance {};
LATHE_CONFORMANCE(Capture);

// A small regression model trained by hand-written SGD: parameters and the learning rate live in
// persistent tensors, the batch comes in as the step's input.
struct Regression {
  Tensor w, lr;
  explicit Regression(std::mt19937& rng) {
    w = ref::tensor(ref::random({8, 4}, rng)).requires_grad_();
    lr = Tensor::zeros({1}).contiguous().realize();
  }
  std::vector<Tensor> step(const std::vector<Tensor>& in) {
    w.zero_grad();
    Tensor x = in[0].slice(1, 0, 8), t = in[0].slice(1, 8, 12);
    Tensor loss = ((x.matmul(w).tanh() - t).square()).mean();
    loss.backward();
    NoGradGuard no_grad;
    w.assign(w - lr.broadcast_to(w.shape()) * w.grad()).realize();  // updates happen inside the step
    return {loss, w.grad().sum()};
  }
  void set_lr(float v) { lr.copy_from_host(&v); }
};

TEST_P(Capture, ReplaysComputeWhatTheStepComputes) {
  std::mt19937 rng_a(5), rng_b(5);
  Regression eager(rng_a), captured(rng_b);
  StepCapture step([&](const std::vector<Tensor>& in) { return captured.step(in); });
  for (int call = 0; call < 6; ++call) {
    Tensor batch = ref::tensor(ref::random({16, 12}, rng));
    eager.set_lr(0.1f / (call + 1));
    captured.set_lr(0.1f / (call + 1));
    std::vector<Tensor> want = eager.step({batch});
    int64_t compiled = runtime_stats().kernels_compiled, run = runtime_stats().kernels_run;
    std::vector<Tensor> got = step({batch});
    if (call >= 2) {  // replaying: the launches and nothing else
      ASSERT_TRUE(step.replaying()) << step.not_captured_reason();
      EXPECT_EQ(runtime_stats().kernels_compiled, compiled);
      EXPECT_EQ(runtime_stats().kernels_run - run, static_cast<int64_t>(step.launches()));
    }
    // Same kernels in the same order on the same values: equal to the last bit.
    EXPECT_EQ(got[0].item<float>(), want[0].item<float>()) << "call " << call;
    EXPECT_EQ(got[1].item<float>(), want[1].item<float>()) << "call " << call;
    EXPECT_EQ(captured.w.to_vector<float>(), eager.w.to_vector<float>()) << "call " << call;
  }
}

TEST_P(Capture, ShortLivedBuffersShareMemory) {
  Tensor x = ref::tensor(ref::random({256}, rng));
  // Each stage is stored (contiguous) and read only by the next: two blocks serve them all.
  StepCapture step([](const std::vector<Tensor>& in) {
    Tensor y = in[0];
    for (int i = 0; i < 6; ++i) y = (y * 0.5 + 1).contiguous().realize();
    return std::vector<Tensor>{y.sum()};
  });
  float want = 0;
  for (int call = 0; call < 3; ++call) want = step({x})[0].item<float>();
  ASSERT_TRUE(step.replaying()) << step.not_captured_reason();
  EXPECT_EQ(step.buffers_shared(), 6u);
  EXPECT_EQ(step.memory_blocks(), 2u);
  EXPECT_EQ(step({x})[0].item<float>(), want);
}

TEST_P(Capture, StepsThatChangeBetweenCallsRunWithoutReplay) {
  Tensor x = ref::tensor(ref::random({64}, rng));
  int calls = 0;
  // A host number baked into a kernel: a different kernel every call.
  StepCapture baked([&](const std::vector<Tensor>& in) { return std::vector<Tensor>{(in[0] * static_cast<double>(++calls)).sum()}; });
  // A host number uploaded inside the step: the same kernel, a different constant buffer.
  StepCapture uploaded([&](const std::vector<Tensor>& in) {
    Tensor k = Tensor::from_vector(std::vector<float>{static_cast<float>(++calls)}, {1});
    return std::vector<Tensor>{(in[0] * k.broadcast_to({64})).sum()};
  });
  // A tensor replaced between calls without being an input.
  Tensor outside = ref::tensor(ref::random({64}, rng));
  StepCapture hidden_input([&](const std::vector<Tensor>& in) { return std::vector<Tensor>{(in[0] * outside).sum()}; });
  // A host write into a persistent tensor inside the step.
  Tensor state = Tensor::zeros({1}).contiguous().realize();
  StepCapture host_write([&](const std::vector<Tensor>& in) {
    float v = static_cast<float>(++calls);
    state.copy_from_host(&v);
    return std::vector<Tensor>{(in[0] * state.broadcast_to({64})).sum()};
  });
  double xsum = 0;
  for (float v : x.to_vector<float>()) xsum += v;
  for (int call = 0; call < 6; ++call) {
    int before = calls;
    EXPECT_NEAR(baked({x})[0].item<float>(), xsum * (before + 1), 1e-3 * (before + 1)) << call;
    EXPECT_NEAR(uploaded({x})[0].item<float>(), xsum * (before + 2), 1e-3 * (before + 2)) << call;
    outside = Tensor::from_vector(std::vector<float>(64, static_cast<float>(call)), {64}).realize();
    EXPECT_NEAR(hidden_input({x})[0].item<float>(), xsum * call, 1e-3 * (call + 1)) << call;
    EXPECT_NEAR(host_write({x})[0].item<float>(), xsum * (before + 3), 1e-3 * (before + 3)) << call;
  }
  for (StepCapture* s : {&baked, &uploaded, &hidden_input, &host_write}) EXPECT_FALSE(s->replaying());
  EXPECT_NE(baked.not_captured_reason().find("differs between calls"), std::string::npos) << baked.not_captured_reason();
  EXPECT_NE(uploaded.not_captured_reason().find("uploaded inside the step"), std::string::npos) << uploaded.not_captured_reason();
  EXPECT_NE(hidden_input.not_captured_reason().find("not an input"), std::string::npos) << hidden_input.not_captured_reason();
  EXPECT_NE(host_write.not_captured_reason().find("host data"), std::string::npos) << host_write.not_captured_reason();
}

// The README's example, as written there.
TEST_P(Capture, ReadmeExampleIsCapturedAndLearns) {
  Tensor w = (Tensor::randn({8, 4}) * 0.1).contiguous().realize().requires_grad_();
  Tensor lr = Tensor::full({}, 0.1).contiguous().realize();
  lathe::StepCapture step([&](const std::vector<Tensor>& in) {
    w.zero_grad();
    Tensor loss = (in[0].matmul(w).relu() - 1.0).square().mean();
    loss.backward();
    lathe::NoGradGuard no_grad;
    w.assign(w - lr * w.grad()).realize();   // lr: a realized scalar tensor, updated with copy_from_host
    return std::vector<Tensor>{loss};
  });
  Tensor batch = Tensor::rand({16, 8});
  float first = step({batch})[0].item<float>(), l = first;
  for (int call = 1; call < 30; ++call) {
    float rate = call < 15 ? 0.1f : 0.05f;
    lr.copy_from_host(&rate);
    l = step({batch})[0].item<float>();  // the same tensors come back, refilled, on every call
  }
  EXPECT_TRUE(step.replaying()) << step.not_captured_reason();
  EXPECT_LT(l, first);
}

TEST_P(Capture, ReplayChecksItsInputs) {
  StepCapture step([](const std::vector<Tensor>& in) { return std::vector<Tensor>{in[0].sum()}; });
  Tensor x = Tensor::ones({8});
  for (int call = 0; call < 3; ++call) step({x});
  ASSERT_TRUE(step.replaying());
  EXPECT_NE(error_of([&] { step({Tensor::ones({9})}); }).find("keeps the shapes it was captured with"), std::string::npos);
  EXPECT_NE(error_of([&] { step({x, x}); }).find("called with 2 inputs"), std::string::npos);
  EXPECT_EQ(step({Tensor::full({8}, 2.0)})[0].item<float>(), 16.0f);
}

}  // namespace
}  // namespace lathe::test
