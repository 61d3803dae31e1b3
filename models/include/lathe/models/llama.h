// Llama 3.x decoder: parameters under Hugging Face names, transformers-style initialization,
// forward pass to logits and the mean cross-entropy loss.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "lathe/models/kv_cache.h"
#include "lathe/models/llama_config.h"
#include "lathe/ops/rope.h"
#include "lathe/tensor.h"

namespace lathe::models {

class LlamaModel {
 public:
  // Parameters are not created until init_random() or load (see hf_checkpoint.h).
  explicit LlamaModel(LlamaConfig config, Device* device = nullptr);

  const LlamaConfig& config() const { return config_; }
  Device* device() const { return device_; }

  // Normal(0, initializer_range) for every projection and the embedding, ones for the norms;
  // or, with torch_defaults, what torch.nn modules start from: Linear weights uniform in
  // +-1/sqrt(fan_in), Embedding N(0, 1), norms ones.
  void init_random(uint64_t seed, bool torch_defaults = false);
  // Sets one parameter (shape and name checked against the config); marks it requires_grad.
  void set_parameter(const std::string& name, Tensor value);
  bool complete() const;  // every parameter of the config is present
  // In Hugging Face order; with tied embeddings there is no lm_head entry.
  std::vector<std::pair<std::string, Tensor>> parameters() const;
  const Tensor& parameter(const std::string& name) const;

  // Parameters stay float32 (master weights). With bfloat16, the forward pass follows PyTorch's
  // autocast: each projection multiplies bfloat16 copies of its input and weight (accumulating
  // in float32) and gives bfloat16; the embedding, norms, residual stream and loss stay float32.
  // Gradients flow back through the casts to the float32 parameters.
  void set_compute_dtype(DType dtype) { compute_dtype_ = dtype; }
  // Each decoder layer's activations computed again in the backward pass from the layer's
  // input (RecomputeRegion) rather than kept from the forward: less memory, more compute.
  void set_recompute(bool on) { recompute_ = on; }

  // tokens [B, T] integer ids -> logits [B, T, vocab] float32. With a cache, the tokens are the
  // positions after cache->length(): they attend to the cached ones too, and join the cache.
  Tensor forward(const Tensor& tokens, KvCache* cache = nullptr) const;
  // Mean cross-entropy of forward(inputs) against targets, both [B, T].
  Tensor loss(const Tensor& inputs, const Tensor& targets) const;

 private:
  const ops::RopeTables& rope(int64_t seq_len) const;
  const Tensor& p(const std::string& name) const { return parameter(name); }
  // x @ W^T in the compute type (autocast's rule for projections).
  Tensor project(const Tensor& x, const std::string& weight) const;

  LlamaConfig config_;
  Device* device_;
  DType compute_dtype_ = DType::Float32;
  bool recompute_ = false;
  std::map<std::string, Tensor> params_;
  mutable std::map<int64_t, ops::RopeTables> rope_cache_;
};

}  // namespace lathe::models
