#include "lathe/ops/rope.h"

#include <cmath>
#include <numbers>

namespace lathe::ops {

std::vector<double> rope_inverse_frequencies(int64_t head_dim, double theta, const std::optional<Llama3RopeScaling>& s) {
  check(head_dim > 0 && head_dim % 2 == 0, "rope: head_dim must be even, got " + std::to_string(head_dim));
  std::vector<double> inv(static_cast<size_t>(head_dim / 2));
  for (int64_t i = 0; i < head_dim / 2; ++i)
    inv[i] = 1.0 / std::pow(theta, static_cast<double>(2 * i) / static_cast<double>(head_dim));
  if (!s) return inv;
  check(s->high_freq_factor > s->low_freq_factor, "rope: llama3 scaling needs high_freq_factor > low_freq_factor");
  const double old_len = static_cast<double>(s->original_max_position_embeddings);
  const double low_wavelen = old_len / s->low_freq_factor, high_wavelen = old_len / s->high_freq_factor;
  for (double& f : inv) {
    double wavelen = 2 * std::numbers::pi / f;
    if (wavelen < high_wavelen) continue;  // high frequencies stay
    if (wavelen > low_wavelen) {
      f /= s->factor;  // low frequencies stretch by the factor
      continue;
    }
    double smooth = (old_len / wavelen - s->low_freq_factor) / (s->high_freq_factor - s->low_freq_factor);
    f = (1 - smooth) * f / s->factor + smooth * f;
  }
  return inv;
}

RopeTables rope_tables(int64_t seq_len, int64_t head_dim, double theta, const std::optional<Llama3RopeScaling>& scaling,
                       Device* device) {
  std::vector<double> inv = rope_inverse_frequencies(head_dim, theta, scaling);
  std::vector<float> c(static_cast<size_t>(seq_len * head_dim)), s(c.size());
  for (int64_t t = 0; t < seq_len; ++t)
    for (int64_t i = 0; i < head_dim; ++i) {
      // float32 angle, as the reference implementations compute it
      float angle = static_cast<float>(t) * static_cast<float>(inv[i % (head_dim / 2)]);
      c[t * head_dim + i] = std::cos(angle);
      s[t * head_dim + i] = std::sin(angle);
    }
  return {Tensor::from_vector(c, {seq_len, head_dim}, device), Tensor::from_vector(s, {seq_len, head_dim}, device)};
}

Tensor apply_rope(const Tensor& x, const RopeTables& tables) {
  int64_t d = x.shape().back(), t = x.shape()[x.ndim() - 2];
  check(tables.cos.shape()[0] >= t && tables.cos.shape()[1] == d,
        "apply_rope: tables " + to_string(tables.cos.shape()) + " do not cover x " + to_string(x.shape()));
  Tensor cos = tables.cos.slice(0, 0, t).cast(x.dtype()), sin = tables.sin.slice(0, 0, t).cast(x.dtype());
  Tensor x1 = x.slice(-1, 0, d / 2), x2 = x.slice(-1, d / 2, d);
  Tensor rotated = Tensor::cat({-x2, x1}, -1);
  return x * cos + rotated * sin;
}

}  // namespace lathe::ops
