// Generation: the key/value cache gives what recomputing the whole sequence gives, greedy
// decoding follows transformers' generate() where the fixture holds its continuation, and the
// sampler's filters keep what they should.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "lathe/error.h"
#include "lathe/models/generate.h"
#include "lathe/models/hf_checkpoint.h"
#include "lathe/runtime.h"
#include "test_util.h"

namespace lathe::test {
namespace {

const std::string kModel = std::string(LATHE_FIXTURES) + "/llama/gqa_untied_llama3";

TEST(Generate, TheCacheGivesWhatRecomputingTheSequenceGives) {
  models::LlamaModel model = models::load_hf_model(kModel);
  models::GenerateOptions o;
  o.max_tokens = 6;
  const std::vector<int32_t> prompt = {1, 5, 9, 3};
  std::vector<int32_t> cached = models::generate(model, prompt, o);
  // Without a cache: the whole sequence through forward() at every step, argmax of the last.
  NoGradGuard no_grad;
  std::vector<int32_t> seq = prompt, full;
  for (int i = 0; i < 6; ++i) {
    Tensor logits = model.forward(Tensor::from_vector(seq, {1, static_cast<int64_t>(seq.size())}, DType::Int32));
    const int64_t t = logits.shape()[1];
    int32_t id = models::pick_token(logits.slice(1, t - 1, t).contiguous().to_vector<float>(), o, 0.5);
    full.push_back(id), seq.push_back(id);
  }
  EXPECT_EQ(cached, full);
  std::ifstream in(kModel + "/generate_expected.json");
  if (!in) GTEST_SKIP() << "no transformers continuation in the fixture (make_generate_fixture.py writes it)";
  auto want = nlohmann::json::parse(in);
  o.max_tokens = static_cast<int64_t>(want.at("greedy").size());
  EXPECT_EQ(models::generate(model, want.at("prompt").get<std::vector<int32_t>>(), o), want.at("greedy").get<std::vector<int32_t>>())
      << "transformers " << want.value("transformers", std::string());
}

TEST(Generate, AFixedSizeCacheGivesTheGrowingOnesLogitsWithTheSameKernelsEachStep) {
  models::LlamaModel model = models::load_hf_model(kModel);
  NoGradGuard no_grad;
  models::KvCache growing, fixed(12);
  std::vector<int32_t> next = {1, 5, 9, 3};
  std::vector<int64_t> compiled;
  for (int step = 0; step < 7; ++step) {
    Tensor tokens = Tensor::from_vector(next, {1, static_cast<int64_t>(next.size())}, DType::Int32);
    std::vector<float> want = model.forward(tokens, &growing).to_vector<float>();
    const int64_t before = runtime_stats().kernels_compiled;
    std::vector<float> got = model.forward(tokens, &fixed).to_vector<float>();
    compiled.push_back(runtime_stats().kernels_compiled - before);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-5 * (1 + std::abs(want[i]))) << "step " << step << " [" << i << "]";
    const auto last = want.end() - model.config().vocab_size;
    next = {static_cast<int32_t>(std::max_element(last, want.end()) - last)};
  }
  EXPECT_EQ(fixed.length(), 10);
  EXPECT_GT(compiled[0], 0);  // the prompt, then the first one-token step
  for (size_t s = 2; s < compiled.size(); ++s) EXPECT_EQ(compiled[s], 0) << "step " << s << " built new kernels";
  // Past its capacity, or several tokens after the prompt: refused with the reason.
  Tensor two = Tensor::from_vector(std::vector<int32_t>{1, 2}, {1, 2}, DType::Int32);
  EXPECT_NE(error_of([&] { model.forward(two, &fixed); }).find("one token per step"), std::string::npos);
  Tensor one = Tensor::from_vector(std::vector<int32_t>{1}, {1, 1}, DType::Int32);
  model.forward(one, &fixed), model.forward(one, &fixed);
  EXPECT_NE(error_of([&] { model.forward(one, &fixed); }).find("do not fit the cache's 12"), std::string::npos);
}

TEST(Generate, SamplingKeepsTheTopTokensAndFollowsTheSeed) {
  const std::vector<float> logits = {0.0f, 3.0f, 1.0f, 2.9f, -5.0f};
  models::GenerateOptions o;
  EXPECT_EQ(models::pick_token(logits, o, 0.99), 1);  // greedy ignores the draw
  o.temperature = 1.0;
  o.top_k = 2;
  for (double d : {0.0, 0.3, 0.6, 0.999}) {
    int32_t id = models::pick_token(logits, o, d);
    EXPECT_TRUE(id == 1 || id == 3) << d;
  }
  o.top_k = 0;
  o.top_p = 0.3;  // token 1 alone holds about 45%
  EXPECT_EQ(models::pick_token(logits, o, 0.999), 1);
  o.top_p = 1;
  EXPECT_EQ(models::pick_token(logits, o, 0.0), 1);
  EXPECT_EQ(models::pick_token(logits, o, 0.9999999), 4);  // the least likely, at the top of [0, 1)
  models::LlamaModel model = models::load_hf_model(kModel);
  models::GenerateOptions s;
  s.temperature = 1.0, s.max_tokens = 4, s.seed = 3;
  EXPECT_EQ(models::generate(model, {1, 2}, s), models::generate(model, {1, 2}, s));
  EXPECT_THROW(models::generate(model, {100000}, s), Error);
}

}  // namespace
}  // namespace lathe::test
