// The whole training loop learns: a tiny Llama overfits one fixed batch.
#include "lathe/models/data.h"
#include "lathe/models/llama.h"
#include "lathe/ops/optim.h"
#include <algorithm>
#include <fstream>

#include "test_util.h"

namespace lathe::test {
namespace {

TEST(Training, TinyModelDrivesAFixedBatchLossNearZero) {
  models::LlamaConfig c = models::llama_preset("tiny");
  c.vocab_size = 16, c.hidden_size = 32, c.intermediate_size = 64, c.num_hidden_layers = 1;
  c.num_attention_heads = 2, c.num_key_value_heads = 1, c.head_dim = 16;
  models::LlamaModel model(c);
  model.init_random(7);
  std::vector<Tensor> params;
  for (auto& [name, p] : model.parameters()) params.push_back(p);
  ops::AdamW opt(params, {1e-2, 0.9, 0.95, 1e-8, 0.0});
  models::SamplerRng rng(3);
  models::Batch batch = models::make_batch(*models::synthetic_source(16), 2, 8, models::Split::Train, rng);
  std::vector<int32_t> random_targets = Tensor::randint(0, 16, {2, 8}).to_vector<int32_t>();
  Tensor targets = Tensor::from_vector(random_targets, {2, 8}, DType::Int32);  // unlearnable except by memorising
  float first = 0, last = 0;
  for (int step = 0; step < 150; ++step) {
    opt.zero_grad();
    Tensor loss = model.loss(batch.inputs, targets);
    loss.backward();
    opt.step();
    last = loss.item<float>();
    if (step == 0) first = last;
  }
  EXPECT_GT(first, 2.0f);  // about log(16)
  EXPECT_LT(last, 0.05f);
}

TEST(Training, DataSourcesReadEveryLayout) {
  std::string dir = ::testing::TempDir();
  std::vector<uint32_t> small = {1, 2, 3, 65535, 7, 8, 9, 10, 11, 12};
  models::write_llmc_tokens(dir + "/t16.bin", small);
  std::vector<uint32_t> big = small;
  big[3] = 100000;  // needs uint32
  models::write_llmc_tokens(dir + "/t32.bin", big);
  auto a = models::file_source(dir + "/t16.bin", 0.2), b = models::file_source(dir + "/t32.bin", 0.2);
  EXPECT_EQ(a->vocab_size(), 65536);
  EXPECT_EQ(b->vocab_size(), 100001);
  models::SamplerRng rng(1);
  std::vector<int32_t> out;
  b->sample(3, 3, models::Split::Train, rng, out);  // windows of 4 inside the first 8 tokens
  for (int w = 0; w < 3; ++w)
    for (int t = 1; t < 4; ++t) {
      auto it = std::find(big.begin(), big.end(), static_cast<uint32_t>(out[w * 4]));
      ASSERT_NE(it, big.end());
      EXPECT_EQ(static_cast<uint32_t>(out[w * 4 + t]), *(it + t));
    }
  EXPECT_THROW(a->sample(1, 3, models::Split::Validation, rng, out), Error);  // 2 validation tokens < one window
  EXPECT_THROW(models::file_source(dir + "/missing.bin", 0.1), Error);
  std::ofstream(dir + "/text.txt") << "hello world";
  auto text = models::file_source(dir + "/text.txt", 0.0);
  EXPECT_EQ(text->vocab_size(), 256);
  text->sample(1, 10, models::Split::Train, rng, out);
  EXPECT_EQ(std::string(out.begin(), out.end()), "hello world");
}

// data.val_path: validation windows come from a file of their own, training windows from all of
// data.path, each source with its own sampler order.
TEST(Training, AValidationFileOfItsOwnGivesTheValidationWindows) {
  std::string dir = ::testing::TempDir();
  std::vector<uint32_t> train, validation;
  for (uint32_t i = 0; i < 200; ++i) train.push_back(i), validation.push_back(1000 + i % 7);
  models::write_llmc_tokens(dir + "/train.bin", train);
  models::write_llmc_tokens(dir + "/val.bin", validation);
  auto data = models::separate_validation(models::file_source(dir + "/train.bin", 0), models::file_source(dir + "/val.bin", 0));
  EXPECT_EQ(data->vocab_size(), 1007);  // the larger of the two
  EXPECT_NE(data->describe().find("validation: " + dir + "/val.bin"), std::string::npos) << data->describe();
  models::SamplerRng train_rng(data->sampler_start(3, models::Split::Train)), val_rng(data->sampler_start(4, models::Split::Validation));
  std::vector<int32_t> out;
  int32_t last_start = 0;
  for (int round = 0; round < 20; ++round) {
    data->sample(4, 15, models::Split::Train, train_rng, out);
    for (int32_t t : out) ASSERT_LT(t, 200) << "a training token from the validation file";
    for (size_t w = 0; w < 4; ++w) last_start = std::max(last_start, out[w * 16]);
    data->sample(4, 15, models::Split::Validation, val_rng, out);
    for (int32_t t : out) ASSERT_GE(t, 1000) << "a validation token from the training file";
  }
  // All of train.bin trains: windows start past token 164, where a held-back last tenth would end them.
  EXPECT_GT(last_start, 164);
}

}  // namespace
}  // namespace lathe::test
