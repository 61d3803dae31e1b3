// The Llama model against transformers: loss, logits, gradients and one AdamW step on the
// fixtures written by tools/make_reference.py (GQA, tied and untied embeddings, llama3 RoPE
// scaling, both config.json layouts, a sharded checkpoint).
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "lathe/models/hf_checkpoint.h"
#include "lathe/models/npy.h"
#include "lathe/models/safetensors.h"
#include "lathe/ops/nn.h"
#include "lathe/ops/optim.h"
#include "test_util.h"

namespace lathe::test {
namespace {

namespace fs = std::filesystem;
using models::LlamaModel;

class LlamaReference : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {
 protected:
  void SetUp() override { set_default_device(std::get<0>(GetParam())); }
  fs::path dir() const { return fs::path(LATHE_FIXTURES) / "llama" / std::get<1>(GetParam()); }
  nlohmann::json expected() const {
    std::ifstream f(dir() / "expected.json");
    return nlohmann::json::parse(f);
  }
};

std::vector<std::tuple<std::string, std::string>> cases() {
  std::vector<std::tuple<std::string, std::string>> out;
  for (auto& b : backends_under_test())
    for (const char* c : {"gqa_untied_llama3", "gqa_untied_llama3_sharded", "tied_mha_newer_layout"}) out.push_back({b, c});
  return out;
}
INSTANTIATE_TEST_SUITE_P(Fixtures, LlamaReference, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return std::get<0>(info.param) + "_" + std::get<1>(info.param); });

double relative_l2(const std::vector<float>& got, const std::vector<float>& want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    num += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
    den += double(want[i]) * want[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

TEST_P(LlamaReference, LossLogitsAndGradientsMatchTransformers) {
  LlamaModel model = models::load_hf_model(dir().string());
  Tensor tokens = models::load_npy((dir() / "tokens.npy").string());
  int64_t t = tokens.shape()[1] - 1;
  Tensor inputs = tokens.slice(1, 0, t), targets = tokens.slice(1, 1, t + 1);
  Tensor logits = model.forward(inputs);
  Tensor loss = ops::cross_entropy(logits, targets);
  double want_loss = expected()["loss"].get<double>();
  EXPECT_NEAR(loss.item<float>(), want_loss, 1e-5 * std::abs(want_loss));

  std::vector<float> got_logits = logits.to_vector<float>();
  std::vector<float> want_logits = models::load_npy((dir() / "logits.npy").string()).to_vector<float>();
  ASSERT_EQ(got_logits.size(), want_logits.size());
  double worst = 0;
  for (size_t i = 0; i < got_logits.size(); ++i) worst = std::max(worst, std::abs(double(got_logits[i]) - want_logits[i]));
  EXPECT_LT(worst, 1e-4) << "largest logit difference";

  loss.backward();
  models::SafetensorsFile grads((dir() / "grads.safetensors").string());
  for (auto& [name, p] : model.parameters()) {
    ASSERT_TRUE(grads.contains(name)) << name;
    ASSERT_TRUE(p.grad().defined()) << name;
    EXPECT_LT(relative_l2(p.grad().to_vector<float>(), grads.load(name).to_vector<float>()), 1e-3) << name;
  }
}

TEST_P(LlamaReference, OneAdamWStepMatchesTorch) {
  // The step is applied to transformers' own gradients: on a first step AdamW moves each
  // weight by about lr * g / (|g| + eps), which magnifies float32 differences of tiny
  // gradients; the gradients themselves are checked by the test above.
  LlamaModel model = models::load_hf_model(dir().string());
  models::SafetensorsFile grads((dir() / "grads.safetensors").string());
  for (auto& [name, p] : model.parameters()) {
    Tensor param = p;
    param.set_grad(grads.load(name));
  }
  auto e = expected()["adamw"];
  std::vector<Tensor> params;
  std::vector<bool> decay;
  for (auto& [name, p] : model.parameters()) {
    params.push_back(p);
    decay.push_back(p.ndim() >= 2);
  }
  ops::AdamW opt(params, {e["lr"], e["beta1"], e["beta2"], e["eps"], e["weight_decay"]}, decay);
  opt.step();
  models::SafetensorsFile after((dir() / "adamw_step.safetensors").string());
  size_t i = 0;
  for (auto& [name, p] : model.parameters()) {
    std::vector<float> got = params[i++].to_vector<float>(), want = after.load(name).to_vector<float>();
    double worst = 0;
    for (size_t j = 0; j < got.size(); ++j) worst = std::max(worst, std::abs(double(got[j]) - want[j]));
    EXPECT_LE(worst, 1e-6) << name;
  }
}

}  // namespace
}  // namespace lathe::test
