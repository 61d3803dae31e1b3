#include "lathe/models/hf_checkpoint.h"

#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "lathe/models/atomic_file.h"
#include "lathe/models/safetensors.h"

namespace lathe::models {
namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace {

std::string shard_name(size_t i, size_t n) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "model-%05zu-of-%05zu.safetensors", i + 1, n);
  return buf;
}

}  // namespace

std::string llama_config_json(const LlamaConfig& c, DType dtype) {
  json j;
  j["architectures"] = {"LlamaForCausalLM"};
  j["model_type"] = "llama";
  j["vocab_size"] = c.vocab_size;
  j["hidden_size"] = c.hidden_size;
  j["intermediate_size"] = c.intermediate_size;
  j["num_hidden_layers"] = c.num_hidden_layers;
  j["num_attention_heads"] = c.num_attention_heads;
  j["num_key_value_heads"] = c.num_key_value_heads;
  j["head_dim"] = c.head_dim;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["rms_norm_eps"] = c.rms_norm_eps;
  j["rope_theta"] = c.rope_theta;
  if (c.rope_scaling)
    j["rope_scaling"] = {{"rope_type", "llama3"},
                         {"factor", c.rope_scaling->factor},
                         {"low_freq_factor", c.rope_scaling->low_freq_factor},
                         {"high_freq_factor", c.rope_scaling->high_freq_factor},
                         {"original_max_position_embeddings", c.rope_scaling->original_max_position_embeddings}};
  else
    j["rope_scaling"] = nullptr;
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  j["initializer_range"] = c.initializer_range;
  j["hidden_act"] = "silu";
  j["attention_bias"] = false;
  j["mlp_bias"] = false;
  j["torch_dtype"] = dtype == DType::BFloat16 ? "bfloat16" : dtype == DType::Float16 ? "float16" : "float32";
  return j.dump(2) + "\n";
}

LlamaModel load_hf_model(const std::string& dir, Device* device) {
  fs::path root(dir);
  if (!fs::is_directory(root)) throw Error("model folder " + dir + " does not exist");
  LlamaModel model(load_llama_config((root / "config.json").string()), device);
  // Which file holds which tensor.
  std::map<std::string, std::string> where;
  fs::path single = root / "model.safetensors", index = root / "model.safetensors.index.json";
  if (fs::exists(index)) {
    std::ifstream f(index);
    std::stringstream ss;
    ss << f.rdbuf();
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(ss.str());
    } catch (const nlohmann::json::exception& e) {
      throw Error(index.string() + " is not valid JSON: " + e.what());
    }
    if (!j.contains("weight_map") || !j["weight_map"].is_object()) throw Error(index.string() + " has no weight_map object");
    for (auto& [name, file] : j["weight_map"].items()) {
      if (!file.is_string()) throw Error(index.string() + ": weight_map[\"" + name + "\"] is " + file.dump() + ", not a shard's file name");
      where[name] = (root / file.get<std::string>()).string();
    }
  } else if (fs::exists(single)) {
    SafetensorsFile f(single.string());
    for (auto& t : f.tensors()) where[t.name] = single.string();
  } else {
    throw Error(dir + " holds neither model.safetensors nor model.safetensors.index.json");
  }
  std::map<std::string, std::unique_ptr<SafetensorsFile>> open;
  for (auto& [name, shape] : model.config().parameter_shapes()) {
    auto it = where.find(name);
    if (it == where.end()) throw Error(dir + ": the checkpoint lacks tensor " + name + " that the config needs");
    auto& file = open[it->second];
    if (!file) file = std::make_unique<SafetensorsFile>(it->second);
    const SafetensorInfo& info = file->info(name);
    if (info.shape != shape)
      throw Error(it->second + ": tensor " + name + " has shape " + to_string(info.shape) + " but config.json implies " + to_string(shape));
    model.set_parameter(name, file->load(name, model.device()).cast(DType::Float32).contiguous().realize());
  }
  return model;
}

void save_hf_model(const LlamaModel& model, const std::string& dir, size_t max_shard_bytes, DType dtype) {
  check(is_float(dtype), std::string("save_hf_model: parameters are stored as a float type, not ") + dtype_name(dtype));
  fs::create_directories(dir);
  // Greedy shards in parameter order.
  std::vector<std::vector<std::pair<std::string, Tensor>>> shards(1);
  size_t bytes = 0;
  for (auto& [name, t] : model.parameters()) {
    size_t n = static_cast<size_t>(t.numel()) * itemsize(dtype);
    if (!shards.back().empty() && bytes + n > max_shard_bytes) {
      shards.emplace_back();
      bytes = 0;
    }
    shards.back().push_back({name, t.cast(dtype)});
    bytes += n;
  }
  fs::path root(dir);
  if (shards.size() == 1) {
    save_safetensors((root / "model.safetensors").string(), shards[0], {{"format", "pt"}});
    fs::remove(root / "model.safetensors.index.json");
  } else {
    json index;
    size_t total = 0;
    for (size_t i = 0; i < shards.size(); ++i) {
      save_safetensors((root / shard_name(i, shards.size())).string(), shards[i], {{"format", "pt"}});
      for (auto& [name, t] : shards[i]) {
        index["weight_map"][name] = shard_name(i, shards.size());
        total += static_cast<size_t>(t.numel()) * itemsize(dtype);
      }
    }
    index["metadata"] = {{"total_size", total}};
    write_file_atomically((root / "model.safetensors.index.json").string(), index.dump(2) + "\n");
    fs::remove(root / "model.safetensors");
  }
  write_file_atomically((root / "config.json").string(), llama_config_json(model.config(), dtype));
}

}  // namespace lathe::models
