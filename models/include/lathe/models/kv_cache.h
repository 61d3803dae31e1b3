// The key/value cache of a generation: per layer, the keys and values of the positions seen so
// far, which forward() attends to instead of recomputing them.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "lathe/ops/rope.h"
#include "lathe/tensor.h"

namespace lathe::models {

class KvCache {
 public:
  // capacity 0: the cache grows by each step's positions (every step has new shapes, so new
  // kernels). capacity > 0: buffers of that many positions, written in place, and the position
  // kept on the device: after the prompt, every one-token step runs the same kernels.
  explicit KvCache(int64_t capacity = 0) : capacity_(capacity) {}

  int64_t length() const { return length_; }  // positions held
  int64_t capacity() const { return capacity_; }

  // For forward(): a step of `tokens` new positions over `layers` layers begins (checked
  // against the capacity; a fixed cache takes the prompt first, then one token at a time).
  void begin(int64_t tokens, int64_t layers, Device* device);
  // The rotary tables' rows of this step's positions, from tables of at least capacity rows.
  ops::RopeTables rows(const ops::RopeTables& tables) const;
  // This step's keys and values [B, Hkv, T, D] join layer `layer`; returns what to attend to.
  std::pair<Tensor, Tensor> append(int64_t layer, const Tensor& k, const Tensor& v);
  // For causal attention over what append() returned: query i sees keys up to offset + i.
  Tensor causal_offset() const { return capacity_ > 0 ? position_ : Tensor(); }
  void end() { length_ += step_tokens_; }

 private:
  int64_t capacity_, length_ = 0, step_tokens_ = 0;
  std::vector<Tensor> keys_, values_;
  Tensor position_;  // fixed capacity: length_ on the device (int32 [1]), rewritten each step
};

}  // namespace lathe::models
