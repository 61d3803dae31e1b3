// Causal scaled-dot-product attention with grouped-query attention.
#pragma once
#include "lathe/tensor.h"

namespace lathe::ops {

// q [B, H, T, D], k and v [B, Hkv, S, D] with Hkv dividing H: each group of H/Hkv query heads
// shares one key/value head. Causal masks key j for query i where j > i + offset: offset is S - T
// (aligned at the end), or `causal_offset` (an int32 [1] tensor on the device: a fixed-size key/value
// cache's position, which then changes without changing the kernels).
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal = true,
                                    const Tensor& causal_offset = Tensor());

// [B, Hkv, S, D] -> [B, Hkv*n_rep, S, D], each head repeated n_rep times in place.
Tensor repeat_kv(const Tensor& x, int64_t n_rep);

}  // namespace lathe::ops
