// A growing cache concatenates each step's keys and values; a fixed one writes them in place
// at a position the kernels read from device memory, so decode steps repeat one set of kernels.
#include "lathe/models/kv_cache.h"

#include <string>

#include "lathe/error.h"
#include "lathe/ops/nn.h"

namespace lathe::models {

void KvCache::begin(int64_t tokens, int64_t layers, Device* device) {
  check(tokens > 0, "forward: no tokens for the cache");
  keys_.resize(static_cast<size_t>(layers)), values_.resize(static_cast<size_t>(layers));
  step_tokens_ = tokens;
  if (capacity_ == 0) return;
  check(length_ + tokens <= capacity_, "forward: " + std::to_string(length_ + tokens) + " positions do not fit the cache's " +
                                           std::to_string(capacity_) + "; make the KvCache larger");
  check(length_ == 0 || tokens == 1, "forward: a fixed-size cache takes the prompt first, then one token per step (got " +
                                         std::to_string(tokens) + " after " + std::to_string(length_) + ")");
  if (!position_.defined()) position_ = Tensor::zeros({1}, DType::Int32, device).contiguous().realize();
  const auto at = static_cast<int32_t>(length_);
  position_.copy_from_host(&at);
}

ops::RopeTables KvCache::rows(const ops::RopeTables& tables) const {
  const int64_t t = step_tokens_;
  if (capacity_ == 0) return {tables.cos.slice(0, length_, length_ + t), tables.sin.slice(0, length_, length_ + t)};
  // Row position + i of each table, looked up on the device (the position is not a host number).
  Tensor ids = (Tensor::arange(0, static_cast<double>(t), 1, DType::Int32, position_.device()) + position_.broadcast_to({t})).reshape({1, t});
  const int64_t width = tables.cos.shape()[1];
  return {ops::embedding(ids, tables.cos).reshape({t, width}), ops::embedding(ids, tables.sin).reshape({t, width})};
}

std::pair<Tensor, Tensor> KvCache::append(int64_t layer, const Tensor& k, const Tensor& v) {
  Tensor& keys = keys_.at(static_cast<size_t>(layer));
  Tensor& values = values_.at(static_cast<size_t>(layer));
  if (capacity_ == 0) {
    keys = (length_ > 0 ? Tensor::cat({keys, k}, 2) : k).contiguous().realize();
    values = (length_ > 0 ? Tensor::cat({values, v}, 2) : v).contiguous().realize();
    return {keys, values};
  }
  const int64_t t = k.shape()[2];
  if (length_ == 0) {  // the prompt: positions 0 to t-1, zeros after (masked until written)
    keys = k.pad({{0, 0}, {0, 0}, {0, capacity_ - t}, {0, 0}}).contiguous().realize();
    values = v.pad({{0, 0}, {0, 0}, {0, capacity_ - t}, {0, 0}}).contiguous().realize();
    return {keys, values};
  }
  Shape full = keys.shape();
  Tensor slot = Tensor::arange(0, static_cast<double>(capacity_), 1, DType::Int32, k.device()).reshape({1, 1, capacity_, 1});
  Tensor here = slot.eq(position_.reshape({1, 1, 1, 1}));
  keys.assign(Tensor::where(here, k.expand(full), keys));
  values.assign(Tensor::where(here, v.expand(full), values));
  realize({keys, values});
  return {keys, values};
}

}  // namespace lathe::models
