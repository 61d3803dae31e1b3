// Activation recomputation: layers rebuilt in the backward pass give the same gradients with
// less memory, and a graph a backward pass has let go cannot be used again.
#include "lathe/models/data.h"
#include "lathe/models/llama.h"
#include "lathe/ops/attention.h"
#include "lathe/runtime.h"

#include "test_util.h"

namespace lathe::test {
namespace {

class Recompute : public Conformance {};
LATHE_CONFORMANCE(Recompute);

struct BackwardRun {
  std::map<std::string, std::vector<float>> grads;
  float loss = 0;
  int64_t peak_bytes = 0;  // above what was live before the backward pass
};

BackwardRun run_backward(bool recompute) {
  models::LlamaConfig c = models::llama_preset("tiny");
  c.vocab_size = 32, c.hidden_size = 64, c.intermediate_size = 192, c.num_hidden_layers = 4;
  c.num_attention_heads = 4, c.num_key_value_heads = 2, c.head_dim = 16;
  models::LlamaModel model(c);
  model.init_random(11);
  model.set_recompute(recompute);
  models::SamplerRng rng(5);
  models::Batch batch = models::make_batch(*models::synthetic_source(32), 4, 128, models::Split::Train, rng);
  for (auto& [name, p] : model.parameters()) p.realize();
  BackwardRun run;
  runtime_stats().reset_peak();
  const int64_t before = runtime_stats().bytes_live;
  Tensor loss = model.loss(batch.inputs, batch.targets);
  loss.backward();
  for (auto& [name, p] : model.parameters()) p.grad().realize();
  run.peak_bytes = runtime_stats().bytes_peak - before;
  run.loss = loss.item<float>();
  for (auto& [name, p] : model.parameters()) run.grads[name] = p.grad().to_vector<float>();
  return run;
}

TEST_P(Recompute, RecomputedLayersGiveTheSameGradientsInLessMemory) {
  BackwardRun kept = run_backward(false), again = run_backward(true);
  EXPECT_EQ(kept.loss, again.loss);  // the forward pass is the same computation
  ASSERT_EQ(kept.grads.size(), again.grads.size());
  for (auto& [name, want] : kept.grads) {
    const std::vector<float>& got = again.grads.at(name);
    ASSERT_EQ(got.size(), want.size()) << name;
    double scale = 0;
    for (float w : want) scale = std::max(scale, std::abs(static_cast<double>(w)));
    // The recomputed values are the same kernels' results; fusion may order sums differently.
    for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-5 * scale + 1e-7) << name << "[" << i << "]";
  }
  // Kept activations grow with the layers; recomputed ones are one layer's plus each layer's input.
  EXPECT_LT(again.peak_bytes, kept.peak_bytes * 6 / 10)
      << "peak " << (again.peak_bytes >> 10) << " KiB recomputed against " << (kept.peak_bytes >> 10) << " KiB kept";
}

// Attention scores above LATHE_ATTENTION_KEEP_MIB are computed again in the backward pass from
// q, k and v instead of being kept from the forward: the same gradients, a lower peak.
struct AttentionBackward {
  std::vector<std::vector<float>> grads;
  int64_t peak_bytes = 0;
};

AttentionBackward attention_backward(const char* keep_mib) {
  setenv("LATHE_ATTENTION_KEEP_MIB", keep_mib, 1);
  std::mt19937 gen(3);
  std::normal_distribution<float> normal;
  auto input = [&](Shape shape) {
    std::vector<float> v(static_cast<size_t>(numel(shape)));
    for (auto& x : v) x = normal(gen);
    return Tensor::from_vector(v, shape).requires_grad_();
  };
  Tensor q = input({2, 4, 256, 16}), k = input({2, 2, 256, 16}), v = input({2, 2, 256, 16}), w = input({2, 4, 256, 16});
  AttentionBackward run;
  runtime_stats().reset_peak();
  const int64_t before = runtime_stats().bytes_live;
  (ops::scaled_dot_product_attention(q, k, v, true) * w).sum().backward();
  for (Tensor* t : {&q, &k, &v, &w}) t->grad().realize();
  run.peak_bytes = runtime_stats().bytes_peak - before;
  for (Tensor* t : {&q, &k, &v, &w}) run.grads.push_back(t->grad().to_vector<float>());
  unsetenv("LATHE_ATTENTION_KEEP_MIB");
  return run;
}

TEST_P(Recompute, LargeAttentionScoresAreRecomputedNotKept) {
  AttentionBackward kept = attention_backward("100000"), again = attention_backward("0");
  for (size_t i = 0; i < kept.grads.size(); ++i)
    for (size_t j = 0; j < kept.grads[i].size(); ++j)
      ASSERT_NEAR(again.grads[i][j], kept.grads[i][j], 1e-5 * (1 + std::abs(kept.grads[i][j]))) << "input " << i << " [" << j << "]";
  // Kept, score-sized matrices (2 x 4 x 256 x 256 float32: 2 MiB each) wait for the backward;
  // recomputed, the backward's own transient ones are the peak: at least one matrix less.
  EXPECT_LT(again.peak_bytes, kept.peak_bytes - (3 << 19))
      << "peak " << (again.peak_bytes >> 10) << " KiB recomputed against " << (kept.peak_bytes >> 10) << " KiB kept";
}

TEST_P(Recompute, ASecondBackwardThroughALetGoGraphIsRefused) {
  Tensor w = Tensor::from_vector(std::vector<float>{1, 2, 3, 4}, {4}).requires_grad_();
  Tensor h = (w * w).exp();
  Tensor first = h.sum();
  first.backward();
  std::vector<float> g = w.grad().to_vector<float>();
  EXPECT_NEAR(g[1], 2 * 2 * std::exp(4.0), 1e-4 * std::exp(4.0));
  // As in PyTorch without retain_graph: h's history was let go; a new loss through it is refused.
  EXPECT_NE(error_of([&] { (h * 2.0).sum().backward(); }).find("earlier backward()"), std::string::npos);
  EXPECT_NE(error_of([&] { first.backward(); }).find("earlier backward()"), std::string::npos);
  // A loss built afresh from the parameters is fine.
  w.zero_grad();
  (w * w).exp().sum().backward();
  EXPECT_NEAR(w.grad().to_vector<float>()[1], g[1], 1e-4 * std::abs(g[1]));
}

}  // namespace
}  // namespace lathe::test
