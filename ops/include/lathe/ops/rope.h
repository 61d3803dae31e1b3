// Rotary position embeddings in the Llama (Hugging Face) layout: the two halves of each head
// rotate together, with optional Llama 3.1 frequency scaling.
#pragma once
#include <optional>
#include <vector>

#include "lathe/tensor.h"

namespace lathe::ops {

struct Llama3RopeScaling {
  double factor = 8.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

// The head_dim/2 inverse frequencies, theta^(-2i/head_dim), scaled as Llama 3.1 does when asked.
std::vector<double> rope_inverse_frequencies(int64_t head_dim, double theta, const std::optional<Llama3RopeScaling>& scaling);

struct RopeTables {
  Tensor cos, sin;  // [T, head_dim], float32
};
RopeTables rope_tables(int64_t seq_len, int64_t head_dim, double theta, const std::optional<Llama3RopeScaling>& scaling,
                       Device* device = nullptr);

// x [..., T, head_dim] -> x * cos + rotate_half(x) * sin, where rotate_half(x) = [-x2, x1].
Tensor apply_rope(const Tensor& x, const RopeTables& tables);

}  // namespace lathe::ops
