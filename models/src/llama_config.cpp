#include "lathe/models/llama_config.h"

#include <cmath>
#include <cstdint>
#include <fstream>
#include <type_traits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "lathe/error.h"

namespace lathe::models {
namespace {

using json = nlohmann::json;

template <class T>
T get(const json& j, const char* key, T fallback, const std::string& where) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  // nlohmann truncates 2.5 to 2 and wraps large unsigned values; a count must be a whole number.
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>)
    if (!j[key].is_number_integer() || (j[key].is_number_unsigned() && j[key].get<uint64_t>() > INT64_MAX))
      throw Error(where + ": key '" + key + "' must be a whole number, got " + j[key].dump());
  try {
    return j[key].get<T>();
  } catch (const json::exception&) {
    throw Error(where + ": key '" + key + "' has the wrong type (" + j[key].dump() + ")");
  }
}

template <class T>
T need(const json& j, const char* key, const std::string& where) {
  if (!j.contains(key)) throw Error(where + ": required key '" + std::string(key) + "' is missing");
  return get<T>(j, key, T{}, where);
}

std::optional<ops::Llama3RopeScaling> parse_scaling(const json& s, const std::string& where) {
  if (!s.is_object()) return std::nullopt;
  std::string type = get<std::string>(s, "rope_type", get<std::string>(s, "type", "default", where), where);
  if (type == "default") return std::nullopt;
  if (type != "llama3") throw Error(where + ": rope type '" + type + "' is not supported (only default and llama3)");
  ops::Llama3RopeScaling r;
  r.factor = need<double>(s, "factor", where);
  r.low_freq_factor = get<double>(s, "low_freq_factor", 1.0, where);
  r.high_freq_factor = get<double>(s, "high_freq_factor", 4.0, where);
  r.original_max_position_embeddings = get<int64_t>(s, "original_max_position_embeddings", 8192, where);
  return r;
}

}  // namespace

void LlamaConfig::validate(const std::string& where) const {
  auto positive = [&](int64_t v, const char* name) {
    if (v <= 0) throw Error(where + ": " + name + " must be positive, got " + std::to_string(v));
  };
  positive(vocab_size, "vocab_size");
  positive(hidden_size, "hidden_size");
  positive(intermediate_size, "intermediate_size");
  positive(num_hidden_layers, "num_hidden_layers");
  positive(num_attention_heads, "num_attention_heads");
  positive(num_key_value_heads, "num_key_value_heads");
  positive(head_dim, "head_dim");
  if (num_attention_heads % num_key_value_heads != 0)
    throw Error(where + ": num_key_value_heads (" + std::to_string(num_key_value_heads) + ") must divide num_attention_heads (" +
                std::to_string(num_attention_heads) + ")");
  if (head_dim % 2 != 0) throw Error(where + ": head_dim must be even for rotary embeddings, got " + std::to_string(head_dim));
  positive(max_position_embeddings, "max_position_embeddings");
  if (!(rope_theta > 1)) throw Error(where + ": rope_theta must be greater than 1 (Llama uses 10000 or 500000), got " + std::to_string(rope_theta));
  if (!(rms_norm_eps > 0) || !std::isfinite(rms_norm_eps)) throw Error(where + ": rms_norm_eps must be a small positive number, got " + std::to_string(rms_norm_eps));
  // Parameter counts must fit a 64-bit count (numel throws otherwise), checked before anything is allocated.
  for (auto& [name, shape] : parameter_shapes()) numel(shape);
}

std::vector<std::pair<std::string, Shape>> LlamaConfig::parameter_shapes() const {
  std::vector<std::pair<std::string, Shape>> p;
  const int64_t d = hidden_size, q = num_attention_heads * head_dim, kv = num_key_value_heads * head_dim;
  p.push_back({"model.embed_tokens.weight", {vocab_size, d}});
  for (int64_t l = 0; l < num_hidden_layers; ++l) {
    std::string pre = "model.layers." + std::to_string(l) + ".";
    p.push_back({pre + "self_attn.q_proj.weight", {q, d}});
    p.push_back({pre + "self_attn.k_proj.weight", {kv, d}});
    p.push_back({pre + "self_attn.v_proj.weight", {kv, d}});
    p.push_back({pre + "self_attn.o_proj.weight", {d, q}});
    p.push_back({pre + "mlp.gate_proj.weight", {intermediate_size, d}});
    p.push_back({pre + "mlp.up_proj.weight", {intermediate_size, d}});
    p.push_back({pre + "mlp.down_proj.weight", {d, intermediate_size}});
    p.push_back({pre + "input_layernorm.weight", {d}});
    p.push_back({pre + "post_attention_layernorm.weight", {d}});
  }
  p.push_back({"model.norm.weight", {d}});
  if (!tie_word_embeddings) p.push_back({"lm_head.weight", {vocab_size, d}});
  return p;
}

int64_t LlamaConfig::parameter_count() const {
  int64_t n = 0;
  for (auto& [name, shape] : parameter_shapes()) n += numel(shape);
  return n;
}

LlamaConfig parse_llama_config(const std::string& text, const std::string& where) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw Error(where + " is not valid JSON: " + e.what());
  }
  if (!j.is_object()) throw Error(where + " must hold a JSON object");
  LlamaConfig c;
  c.vocab_size = need<int64_t>(j, "vocab_size", where);
  c.hidden_size = need<int64_t>(j, "hidden_size", where);
  c.intermediate_size = need<int64_t>(j, "intermediate_size", where);
  c.num_hidden_layers = need<int64_t>(j, "num_hidden_layers", where);
  c.num_attention_heads = need<int64_t>(j, "num_attention_heads", where);
  c.num_key_value_heads = get<int64_t>(j, "num_key_value_heads", c.num_attention_heads, where);
  c.head_dim = get<int64_t>(j, "head_dim", c.num_attention_heads > 0 ? c.hidden_size / c.num_attention_heads : 0, where);
  c.max_position_embeddings = get<int64_t>(j, "max_position_embeddings", 2048, where);
  c.rms_norm_eps = get<double>(j, "rms_norm_eps", 1e-6, where);
  c.tie_word_embeddings = get<bool>(j, "tie_word_embeddings", false, where);
  c.initializer_range = get<double>(j, "initializer_range", 0.02, where);
  if (j.contains("rope_parameters") && j["rope_parameters"].is_object()) {  // newer transformers
    const json& rp = j["rope_parameters"];
    c.rope_theta = get<double>(rp, "rope_theta", 10000.0, where);
    c.rope_scaling = parse_scaling(rp, where);
  } else {
    c.rope_theta = get<double>(j, "rope_theta", 10000.0, where);
    if (j.contains("rope_scaling")) c.rope_scaling = parse_scaling(j["rope_scaling"], where);
  }
  c.validate(where);
  return c;
}

LlamaConfig load_llama_config(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw Error("cannot read model config " + path + ": the file is missing or unreadable");
  std::stringstream ss;
  ss << f.rdbuf();
  return parse_llama_config(ss.str(), path);
}

LlamaConfig llama_preset(const std::string& name) {
  LlamaConfig c;  // defaults are Llama 3.1 8B
  ops::Llama3RopeScaling s31{8.0, 1.0, 4.0, 8192}, s32{32.0, 1.0, 4.0, 8192};
  c.rope_scaling = s31;
  if (name == "llama3.1-8b") return c;
  if (name == "llama3.1-70b") {
    c.hidden_size = 8192, c.intermediate_size = 28672, c.num_hidden_layers = 80, c.num_attention_heads = 64;
    return c;
  }
  if (name == "llama3.1-405b") {
    c.hidden_size = 16384, c.intermediate_size = 53248, c.num_hidden_layers = 126, c.num_attention_heads = 128;
    return c;
  }
  if (name == "llama3.2-1b" || name == "llama3.2-3b") {
    bool one = name == "llama3.2-1b";
    c.hidden_size = one ? 2048 : 3072, c.intermediate_size = 8192, c.num_hidden_layers = one ? 16 : 28;
    c.num_attention_heads = one ? 32 : 24, c.head_dim = one ? 64 : 128, c.tie_word_embeddings = true, c.rope_scaling = s32;
    return c;
  }
  if (name == "tiny" || name == "small") {
    bool tiny = name == "tiny";
    c.vocab_size = 256, c.hidden_size = tiny ? 64 : 128, c.intermediate_size = tiny ? 192 : 384;
    c.num_hidden_layers = tiny ? 2 : 4, c.num_attention_heads = 4, c.num_key_value_heads = tiny ? 2 : 4;
    c.head_dim = c.hidden_size / 4, c.max_position_embeddings = 1024, c.rope_theta = 10000, c.rope_scaling.reset();
    return c;
  }
  std::string names;
  for (auto& n : llama_preset_names()) names += (names.empty() ? "" : ", ") + n;
  throw Error("unknown model preset '" + name + "'; choose one of " + names);
}

std::vector<std::string> llama_preset_names() {
  return {"llama3.1-8b", "llama3.1-70b", "llama3.1-405b", "llama3.2-1b", "llama3.2-3b", "tiny", "small"};
}

}  // namespace lathe::models
