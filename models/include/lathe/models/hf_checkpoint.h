// Llama checkpoints in Hugging Face layout: config.json plus model.safetensors, or shards
// listed by model.safetensors.index.json. lathe writes its own checkpoints the same way, so
// transformers loads them.
#pragma once
#include <string>

#include "lathe/models/llama.h"

namespace lathe::models {

// Errors name the folder and file: a missing or malformed config.json, a missing tensor, a
// tensor of the wrong shape, or a damaged safetensors file.
LlamaModel load_hf_model(const std::string& dir, Device* device = nullptr);
// Parameters are stored as `dtype` (float32, or bfloat16 as Meta's releases are); shards never
// exceed max_shard_bytes (one file when all fit).
void save_hf_model(const LlamaModel& model, const std::string& dir, size_t max_shard_bytes = size_t{4} << 30,
                   DType dtype = DType::Float32);
std::string llama_config_json(const LlamaConfig& config, DType dtype = DType::Float32);

}  // namespace lathe::models
