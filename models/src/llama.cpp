#include "lathe/models/llama.h"

#include <cmath>
#include <optional>
#include <tuple>

#include "lathe/backends.h"
#include "lathe/ops/attention.h"
#include "lathe/ops/nn.h"

namespace lathe::models {

LlamaModel::LlamaModel(LlamaConfig config, Device* device) : config_(std::move(config)), device_(device ? device : default_device()) {
  config_.validate("model config");
}

void LlamaModel::init_random(uint64_t seed, bool torch_defaults) {
  Tensor::manual_seed(seed);
  for (auto& [name, shape] : config_.parameter_shapes()) {
    bool norm = shape.size() == 1;
    bool embedding = name.find("embed_tokens") != std::string::npos;
    Tensor t = norm ? Tensor::ones(shape, DType::Float32, device_)
               : !torch_defaults ? Tensor::randn(shape, DType::Float32, device_) * config_.initializer_range
               : embedding ? Tensor::randn(shape, DType::Float32, device_)
                           : (Tensor::rand(shape, DType::Float32, device_) * 2.0 - 1.0) * (1.0 / std::sqrt(static_cast<double>(shape[1])));
    set_parameter(name, t.contiguous().realize());
  }
}

void LlamaModel::set_parameter(const std::string& name, Tensor value) {
  for (auto& [n, shape] : config_.parameter_shapes())
    if (n == name) {
      check(value.shape() == shape, "parameter " + name + " has shape " + to_string(value.shape()) + ", the config needs " + to_string(shape));
      check(value.device() == device_, "parameter " + name + " lives on another device than the model");
      value.requires_grad_();
      params_[name] = value;
      return;
    }
  throw Error("'" + name + "' is not a parameter of this Llama configuration");
}

bool LlamaModel::complete() const {
  for (auto& [n, shape] : config_.parameter_shapes())
    if (!params_.count(n)) return false;
  return true;
}

std::vector<std::pair<std::string, Tensor>> LlamaModel::parameters() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (auto& [n, shape] : config_.parameter_shapes()) out.push_back({n, parameter(n)});
  return out;
}

const Tensor& LlamaModel::parameter(const std::string& name) const {
  auto it = params_.find(name);
  if (it == params_.end()) throw Error("model parameter " + name + " is not set (initialize or load the model first)");
  return it->second;
}

const ops::RopeTables& LlamaModel::rope(int64_t seq_len) const {
  auto it = rope_cache_.find(seq_len);
  if (it == rope_cache_.end())
    it = rope_cache_.emplace(seq_len, ops::rope_tables(seq_len, config_.head_dim, config_.rope_theta, config_.rope_scaling, device_)).first;
  return it->second;
}

Tensor LlamaModel::project(const Tensor& x, const std::string& weight) const {
  return ops::linear(x.cast(compute_dtype_), p(weight).cast(compute_dtype_));
}

Tensor LlamaModel::forward(const Tensor& tokens, KvCache* cache) const {
  check(tokens.ndim() == 2, "forward: tokens must be [batch, time], got " + to_string(tokens.shape()));
  const auto& c = config_;
  const int64_t b = tokens.shape()[0], t = tokens.shape()[1], h = c.num_attention_heads, kv = c.num_key_value_heads, hd = c.head_dim;
  const int64_t past = cache ? cache->length() : 0;
  // The rotary tables cover every position this step can see (a fixed cache checks past + t against its size).
  const int64_t positions = cache && cache->capacity() > 0 ? cache->capacity() : past + t;
  check(positions <= c.max_position_embeddings, "forward: position " + std::to_string(positions) + " is beyond the model's " +
                                                    std::to_string(c.max_position_embeddings) + " (max_position_embeddings)");
  ops::RopeTables tables = rope(positions);
  if (cache) {
    cache->begin(t, c.num_hidden_layers, tokens.device());
    tables = cache->rows(tables);
  }
  Tensor x = ops::embedding(tokens, p("model.embed_tokens.weight"));
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    std::string pre = "model.layers." + std::to_string(l) + ".";
    std::optional<RecomputeRegion> region;
    if (recompute_) region.emplace();
    // Cast once for the projections that share an input (one copy stored, not one each).
    Tensor n = ops::rms_norm(x, p(pre + "input_layernorm.weight"), c.rms_norm_eps).cast(compute_dtype_);
    Tensor q = project(n, pre + "self_attn.q_proj.weight").reshape({b, t, h, hd}).transpose(1, 2);
    Tensor k = project(n, pre + "self_attn.k_proj.weight").reshape({b, t, kv, hd}).transpose(1, 2);
    Tensor v = project(n, pre + "self_attn.v_proj.weight").reshape({b, t, kv, hd}).transpose(1, 2);
    k = ops::apply_rope(k, tables);
    if (cache) std::tie(k, v) = cache->append(l, k, v);  // the new positions join the cached ones
    Tensor a = ops::scaled_dot_product_attention(ops::apply_rope(q, tables), k, v, true, cache ? cache->causal_offset() : Tensor());
    x = x + project(a.transpose(1, 2).reshape({b, t, h * hd}), pre + "self_attn.o_proj.weight");
    n = ops::rms_norm(x, p(pre + "post_attention_layernorm.weight"), c.rms_norm_eps).cast(compute_dtype_);
    Tensor mlp = ops::swiglu(project(n, pre + "mlp.gate_proj.weight"), project(n, pre + "mlp.up_proj.weight"));
    x = x + project(mlp, pre + "mlp.down_proj.weight");
  }
  if (cache) cache->end();
  x = ops::rms_norm(x, p("model.norm.weight"), c.rms_norm_eps);
  return project(x, c.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight").cast(DType::Float32);
}

Tensor LlamaModel::loss(const Tensor& inputs, const Tensor& targets) const {
  return ops::cross_entropy(forward(inputs), targets);
}

}  // namespace lathe::models
