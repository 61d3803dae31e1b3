// The Llama model beyond the reference fixtures: checkpoint round trips (single file and
// sharded), bad checkpoints, and the 8B configuration run with one layer.
#include <cmath>
#include <filesystem>
#include <fstream>

#include "lathe/models/hf_checkpoint.h"
#include "lathe/models/safetensors.h"
#include "test_util.h"

namespace lathe::test {
namespace {

namespace fs = std::filesystem;
using models::LlamaModel;

fs::path scratch(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("lathe_llama_" + std::to_string(getpid())) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

TEST(LlamaModel, CheckpointsRoundTripSingleAndSharded) {
  for (bool tied : {false, true}) {
    models::LlamaConfig c = models::llama_preset("tiny");
    c.tie_word_embeddings = tied;
    LlamaModel a(c);
    a.init_random(11);
    for (size_t shard : {size_t{1} << 30, size_t{40000}}) {
      fs::path dir = scratch(std::string(tied ? "tied" : "untied") + std::to_string(shard));
      models::save_hf_model(a, dir.string(), shard);
      EXPECT_EQ(fs::exists(dir / "model.safetensors.index.json"), shard < (1u << 20));
      LlamaModel b = models::load_hf_model(dir.string());
      EXPECT_EQ(b.config().parameter_count(), c.parameter_count());
      EXPECT_EQ(b.config().tie_word_embeddings, tied);
      for (auto& [name, p] : a.parameters()) EXPECT_EQ(b.parameter(name).to_bytes(), p.to_bytes()) << name;
      Tensor tokens = Tensor::randint(0, 256, {1, 5});
      EXPECT_EQ(a.forward(tokens).to_bytes(), b.forward(tokens).to_bytes());
    }
  }
}

TEST(LlamaModel, Bf16ExportsHoldTheRoundedWeightsInHalfTheBytes) {
  models::LlamaConfig c = models::llama_preset("tiny");
  LlamaModel a(c);
  a.init_random(5);
  fs::path wide = scratch("export_fp32"), narrow = scratch("export_bf16");
  models::save_hf_model(a, wide.string());
  models::save_hf_model(a, narrow.string(), size_t{4} << 30, DType::BFloat16);
  const auto header = 1 << 14;  // the safetensors header is the same size either way, give or take
  EXPECT_NEAR(static_cast<double>(fs::file_size(narrow / "model.safetensors")), fs::file_size(wide / "model.safetensors") / 2.0, header);
  std::ifstream config(narrow / "config.json");
  std::string text((std::istreambuf_iterator<char>(config)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("\"torch_dtype\": \"bfloat16\""), std::string::npos) << text;
  LlamaModel b = models::load_hf_model(narrow.string());
  for (auto& [name, p] : a.parameters()) {
    std::vector<float> want = p.to_vector<float>(), got = b.parameter(name).cast(DType::Float32).to_vector<float>();
    for (size_t i = 0; i < want.size(); ++i)
      ASSERT_EQ(got[i], bfloat16_bits_to_float(float_to_bfloat16_bits(want[i]))) << name << "[" << i << "]";
  }
}

TEST(LlamaModel, InitializationFollowsTheConfig) {
  models::LlamaConfig c = models::llama_preset("small");
  LlamaModel m(c);
  m.init_random(3);
  std::vector<float> w = m.parameter("model.layers.0.mlp.up_proj.weight").to_vector<float>();
  double mean = 0, var = 0;
  for (float x : w) mean += x;
  mean /= static_cast<double>(w.size());
  for (float x : w) var += (x - mean) * (x - mean);
  EXPECT_NEAR(mean, 0, 0.002);
  EXPECT_NEAR(std::sqrt(var / static_cast<double>(w.size())), c.initializer_range, 0.001);
  EXPECT_EQ(m.parameter("model.norm.weight").to_vector<float>(), std::vector<float>(128, 1.0f));
}

TEST(LlamaModel, TorchDefaultInitialization) {
  models::LlamaConfig c = models::llama_preset("small");
  LlamaModel m(c);
  m.init_random(3, true);
  auto stats = [&](const std::string& name) {
    std::vector<float> w = m.parameter(name).to_vector<float>();
    double mean = 0, var = 0, peak = 0;
    for (float x : w) mean += x, peak = std::max(peak, std::abs(static_cast<double>(x)));
    mean /= static_cast<double>(w.size());
    for (float x : w) var += (x - mean) * (x - mean);
    return std::tuple{mean, std::sqrt(var / static_cast<double>(w.size())), peak};
  };
  // Linear: uniform in +-1/sqrt(fan_in), standard deviation 1/sqrt(3 fan_in).
  auto [mean, sd, peak] = stats("model.layers.0.mlp.down_proj.weight");  // [hidden, intermediate]
  double bound = 1.0 / std::sqrt(static_cast<double>(c.intermediate_size));
  EXPECT_NEAR(mean, 0, 0.002);
  EXPECT_LE(peak, bound);
  EXPECT_GT(peak, 0.99 * bound);
  EXPECT_NEAR(sd, bound / std::sqrt(3.0), 0.02 * bound);
  // Embedding: N(0, 1).
  auto [emean, esd, epeak] = stats("model.embed_tokens.weight");
  EXPECT_NEAR(emean, 0, 0.02);
  EXPECT_NEAR(esd, 1.0, 0.02);
  EXPECT_GT(epeak, 3.0);
}

TEST(LlamaModel, BadCheckpointsNameTheProblem) {
  LlamaModel a(models::llama_preset("tiny"));
  a.init_random(1);
  fs::path dir = scratch("bad");
  models::save_hf_model(a, dir.string());
  EXPECT_NE(error_of([&] { models::load_hf_model((dir / "nope").string()); }).find("does not exist"), std::string::npos);
  // A checkpoint that lacks a tensor the config needs.
  auto params = a.parameters();
  std::vector<std::pair<std::string, Tensor>> partial(params.begin() + 1, params.end());
  models::save_safetensors((dir / "model.safetensors").string(), partial);
  EXPECT_NE(error_of([&] { models::load_hf_model(dir.string()); }).find("lacks tensor model.embed_tokens.weight"), std::string::npos);
  // A tensor of the wrong shape.
  partial.insert(partial.begin(), {"model.embed_tokens.weight", Tensor::zeros({255, 64})});
  models::save_safetensors((dir / "model.safetensors").string(), partial);
  EXPECT_NE(error_of([&] { models::load_hf_model(dir.string()); }).find("has shape [255, 64] but config.json implies [256, 64]"), std::string::npos);
  // A truncated weights file.
  models::save_hf_model(a, dir.string());
  fs::resize_file(dir / "model.safetensors", fs::file_size(dir / "model.safetensors") - 100);
  EXPECT_NE(error_of([&] { models::load_hf_model(dir.string()); }).find("truncated"), std::string::npos);
  // A malformed config.
  std::ofstream(dir / "config.json") << "{\"vocab_size\": 256";
  EXPECT_NE(error_of([&] { models::load_hf_model(dir.string()); }).find("config.json is not valid JSON"), std::string::npos);
  fs::remove(dir / "config.json");
  EXPECT_NE(error_of([&] { models::load_hf_model(dir.string()); }).find("config.json: the file is missing"), std::string::npos);
}

TEST(LlamaModel, EightBillionConfigurationRunsWithOneLayer) {
  models::LlamaConfig c = models::llama_preset("llama3.1-8b");
  EXPECT_EQ(c.parameter_count(), 8030261248LL);
  c.num_hidden_layers = 1;  // every dimension of the 8B model, one decoder layer
  LlamaModel m(c);
  for (auto& [name, shape] : c.parameter_shapes())  // cheap deterministic weights, no RNG pass
    m.set_parameter(name, shape.size() == 1 ? Tensor::ones(shape) : (Tensor::full(shape, 0.01)).contiguous().realize());
  Tensor tokens = Tensor::from_vector(std::vector<int32_t>{1, 128000, 5, 77, 9}, {1, 5}, DType::Int32);
  Tensor loss = m.loss(tokens.slice(1, 0, 4), tokens.slice(1, 1, 5));
  float l = loss.item<float>();
  EXPECT_TRUE(std::isfinite(l));
  EXPECT_NEAR(l, std::log(128256.0), 1e-3);  // identical rows of lm_head: uniform prediction
  loss.backward();
  Tensor g = m.parameter("model.layers.0.mlp.down_proj.weight").grad();
  ASSERT_TRUE(g.defined());
  EXPECT_EQ(g.shape(), (Shape{4096, 14336}));
  EXPECT_TRUE(std::isfinite(g.sum().item<float>()));
}

}  // namespace
}  // namespace lathe::test
