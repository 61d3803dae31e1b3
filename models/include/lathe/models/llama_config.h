// Llama 3.x configuration: read from a Hugging Face config.json (older `rope_theta` /
// `rope_scaling` keys or newer `rope_parameters`), or taken from a preset of exact sizes.
#pragma once
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "lathe/ops/rope.h"
#include "lathe/shape.h"

namespace lathe::models {

struct LlamaConfig {
  int64_t vocab_size = 128256;
  int64_t hidden_size = 4096;
  int64_t intermediate_size = 14336;
  int64_t num_hidden_layers = 32;
  int64_t num_attention_heads = 32;
  int64_t num_key_value_heads = 8;
  int64_t head_dim = 128;
  int64_t max_position_embeddings = 131072;
  double rms_norm_eps = 1e-5;
  double rope_theta = 500000;
  std::optional<ops::Llama3RopeScaling> rope_scaling;
  bool tie_word_embeddings = false;
  double initializer_range = 0.02;

  // Throws lathe::Error naming the field when sizes do not fit together.
  void validate(const std::string& where) const;
  // Hugging Face parameter names and shapes, in the order transformers lists them.
  std::vector<std::pair<std::string, Shape>> parameter_shapes() const;
  int64_t parameter_count() const;
};

// Reads `path` (a config.json); errors name the file and the key.
LlamaConfig load_llama_config(const std::string& path);
LlamaConfig parse_llama_config(const std::string& json_text, const std::string& where);

// "llama3.1-8b", "llama3.1-70b", "llama3.1-405b", "llama3.2-1b", "llama3.2-3b", and small
// ones for tests and CPU training: "tiny" (2 layers) and "small" (4 layers).
LlamaConfig llama_preset(const std::string& name);
std::vector<std::string> llama_preset_names();

}  // namespace lathe::models
