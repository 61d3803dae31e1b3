// Gradients stored in another dtype than their tensor's (bf16 gradients of float32 master
// weights): rounded once from the float32 gradient, accumulated in float32, half the memory,
// and an optimizer that trains as it does with float32 gradients.
#include "lathe/models/data.h"
#include "lathe/models/llama.h"
#include "lathe/ops/optim.h"
#include "lathe/runtime.h"

#include "test_util.h"

namespace lathe::test {
namespace {

class GradDtype : public Conformance {};
LATHE_CONFORMANCE(GradDtype);

float bf16_round(double x) { return bfloat16_bits_to_float(float_to_bfloat16_bits(static_cast<float>(x))); }

TEST_P(GradDtype, GradientsAreRoundedOnceAndAccumulatedWide) {
  std::vector<float> xs = {1.001f, -3.14159f, 1e-3f, 250.7f, 0.3333f, 7.77f};
  Tensor w = Tensor::from_vector(std::vector<float>(xs.size(), 0.5f), {static_cast<int64_t>(xs.size())}).requires_grad_();
  w.set_grad_dtype(DType::BFloat16);
  EXPECT_EQ(w.grad_dtype(), DType::BFloat16);
  EXPECT_EQ(w.dtype(), DType::Float32);
  Tensor x = Tensor::from_vector(xs, {static_cast<int64_t>(xs.size())});
  (w * x).sum().backward();
  ASSERT_EQ(w.grad().dtype(), DType::BFloat16);
  std::vector<float> once = w.grad().cast(DType::Float32).to_vector<float>();
  for (size_t i = 0; i < xs.size(); ++i) EXPECT_EQ(once[i], bf16_round(xs[i])) << i;
  // A second backward adds in float32 (the stored bf16 gradient widened) and rounds the sum once.
  (w * x * 3.0).sum().backward();
  std::vector<float> twice = w.grad().cast(DType::Float32).to_vector<float>();
  for (size_t i = 0; i < xs.size(); ++i)
    EXPECT_EQ(twice[i], bf16_round(static_cast<double>(once[i]) + static_cast<float>(3.0f * xs[i]))) << i;
  EXPECT_NE(error_of([&] { w.set_grad_dtype(DType::Int32); }).find("float"), std::string::npos);
}

struct TrainRun {
  std::vector<float> losses;
  int64_t grad_bytes = 0;  // live after the first backward, above what was live before it
};

TrainRun train(bool bf16_grads) {
  models::LlamaConfig c = models::llama_preset("tiny");
  c.vocab_size = 32, c.hidden_size = 64, c.intermediate_size = 192, c.num_hidden_layers = 2;
  models::LlamaModel model(c);
  model.init_random(3);
  std::vector<Tensor> params;
  int64_t numel = 0;
  for (auto& [name, p] : model.parameters()) {
    if (bf16_grads) p.set_grad_dtype(DType::BFloat16);
    params.push_back(p.realize());
    numel += p.numel();
  }
  ops::AdamW opt(params, {3e-3, 0.9, 0.95, 1e-8, 0.1});
  models::SamplerRng rng(9);
  models::Batch batch = models::make_batch(*models::synthetic_source(32), 4, 64, models::Split::Train, rng);
  TrainRun run;
  for (int step = 0; step < 8; ++step) {
    opt.zero_grad();
    opt.prepare_step();
    const int64_t before = runtime_stats().bytes_live;
    Tensor loss = model.loss(batch.inputs, batch.targets);
    loss.backward();
    run.losses.push_back(loss.item<float>());
    if (step == 0) {
      run.grad_bytes = runtime_stats().bytes_live - before;
      for (auto& p : params) EXPECT_EQ(p.grad().dtype(), bf16_grads ? DType::BFloat16 : DType::Float32);
      EXPECT_GE(run.grad_bytes, numel * (bf16_grads ? 2 : 4));
    }
    opt.update();
  }
  return run;
}

TEST_P(GradDtype, Bf16GradientsHalveTheirMemoryAndTrainAsFloat32Ones) {
  TrainRun wide = train(false), narrow = train(true);
  EXPECT_EQ(wide.losses[0], narrow.losses[0]);  // the same forward pass
  // What the backward leaves live is the gradients (and the loss): half of it with bf16.
  EXPECT_LT(narrow.grad_bytes, wide.grad_bytes * 55 / 100) << narrow.grad_bytes << " against " << wide.grad_bytes << " bytes";
  // AdamW normalizes each update, so a relative rounding of 2^-9 per gradient moves the loss curve
  // by far less than its fall: both fall, and stay within 2% of each other.
  EXPECT_LT(wide.losses.back(), wide.losses[0] * 0.9f);
  EXPECT_LT(narrow.losses.back(), narrow.losses[0] * 0.9f);
  for (size_t i = 0; i < wide.losses.size(); ++i) EXPECT_NEAR(narrow.losses[i], wide.losses[i], 0.02 * wide.losses[i]) << "step " << i;
}

}  // namespace
}  // namespace lathe::test
