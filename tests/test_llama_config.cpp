// Llama configurations: presets with exact sizes, and config.json in both layouts.
#include <gtest/gtest.h>

#include "lathe/models/llama_config.h"

namespace lathe::models {
namespace {

TEST(LlamaConfig, PresetsCountTheirParametersWithoutAllocating) {
  EXPECT_EQ(llama_preset("llama3.1-8b").parameter_count(), 8030261248LL);
  EXPECT_EQ(llama_preset("llama3.2-1b").parameter_count(), 1235814400LL);  // tied embeddings count once
  LlamaConfig c = llama_preset("llama3.1-8b");
  auto shapes = c.parameter_shapes();
  EXPECT_EQ(shapes.size(), 1 + 32 * 9 + 2u);
  EXPECT_EQ(shapes[2].first, "model.layers.0.self_attn.k_proj.weight");
  EXPECT_EQ(shapes[2].second, (Shape{1024, 4096}));
  EXPECT_EQ(shapes.back().first, "lm_head.weight");
  EXPECT_TRUE(c.rope_scaling.has_value());
  for (auto& name : llama_preset_names()) EXPECT_NO_THROW(llama_preset(name).validate(name));
  EXPECT_THROW(llama_preset("llama9"), Error);
}

const char* kOlder = R"({
  "architectures": ["LlamaForCausalLM"], "vocab_size": 300, "hidden_size": 64, "intermediate_size": 160,
  "num_hidden_layers": 2, "num_attention_heads": 8, "num_key_value_heads": 2, "rms_norm_eps": 1e-5,
  "rope_theta": 500000.0, "tie_word_embeddings": true, "max_position_embeddings": 256,
  "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                   "original_max_position_embeddings": 64}})";

const char* kNewer = R"({
  "vocab_size": 300, "hidden_size": 64, "intermediate_size": 160, "num_hidden_layers": 2,
  "num_attention_heads": 8, "num_key_value_heads": 2, "head_dim": 16, "rms_norm_eps": 1e-5,
  "tie_word_embeddings": false,
  "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
                      "high_freq_factor": 4.0, "original_max_position_embeddings": 64}})";

TEST(LlamaConfig, ReadsBothConfigLayouts) {
  LlamaConfig a = parse_llama_config(kOlder, "old/config.json"), b = parse_llama_config(kNewer, "new/config.json");
  for (auto* c : {&a, &b}) {
    EXPECT_EQ(c->num_key_value_heads, 2);
    EXPECT_DOUBLE_EQ(c->rope_theta, 500000.0);
    ASSERT_TRUE(c->rope_scaling.has_value());
    EXPECT_DOUBLE_EQ(c->rope_scaling->factor, 8.0);
    EXPECT_EQ(c->rope_scaling->original_max_position_embeddings, 64);
  }
  EXPECT_EQ(a.head_dim, 8);   // hidden_size / heads when the key is absent
  EXPECT_EQ(b.head_dim, 16);  // explicit head_dim wins
  EXPECT_EQ(b.parameter_shapes()[1].second, (Shape{128, 64}));  // q_proj: 8 heads of 16
  EXPECT_TRUE(a.tie_word_embeddings);
  EXPECT_FALSE(b.tie_word_embeddings);
  EXPECT_NE(a.parameter_shapes().back().first, "lm_head.weight");
  EXPECT_EQ(b.parameter_shapes().back().first, "lm_head.weight");
}

TEST(LlamaConfig, BadConfigsNameTheFileAndKey) {
  auto message = [](const std::string& text) {
    try {
      parse_llama_config(text, "m/config.json");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(message("{ nope").find("m/config.json is not valid JSON"), std::string::npos);
  EXPECT_NE(message(R"({"vocab_size": 10})").find("'hidden_size' is missing"), std::string::npos);
  EXPECT_NE(message(R"({"vocab_size": "x", "hidden_size": 8})").find("'vocab_size' must be a whole number, got \"x\""), std::string::npos);
  std::string gqa = R"({"vocab_size": 10, "hidden_size": 8, "intermediate_size": 8, "num_hidden_layers": 1,
                        "num_attention_heads": 4, "num_key_value_heads": 3})";
  EXPECT_NE(message(gqa).find("num_key_value_heads (3) must divide"), std::string::npos);
  EXPECT_THROW(load_llama_config("/nonexistent/config.json"), Error);
}

}  // namespace
}  // namespace lathe::models
