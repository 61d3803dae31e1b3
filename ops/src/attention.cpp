#include "lathe/ops/attention.h"

#include <cmath>
#include <cstdlib>
#include <optional>

#include "lathe/graph.h"
#include "lathe/ops/nn.h"

namespace lathe::ops {
namespace {

// Score matrices (float32, all heads) of at least LATHE_ATTENTION_KEEP_MIB (default 32) are
// recomputed in the backward pass rather than kept; smaller ones cost little to keep.
int64_t kept_scores_bytes() {
  const char* v = std::getenv("LATHE_ATTENTION_KEEP_MIB");  // read per call: tests change it
  return (v ? std::atoll(v) : 32) << 20;
}

}  // namespace

Tensor repeat_kv(const Tensor& x, int64_t n_rep) {
  if (n_rep == 1) return x;
  const Shape& s = x.shape();
  return x.unsqueeze(2).expand({s[0], s[1], n_rep, s[2], s[3]}).reshape({s[0], s[1] * n_rep, s[2], s[3]});
}

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal, const Tensor& causal_offset) {
  check(q.ndim() == 4 && k.ndim() == 4 && v.ndim() == 4,
        "attention: q, k, v must be [B, heads, T, D]; got " + to_string(q.shape()) + ", " + to_string(k.shape()) + ", " + to_string(v.shape()));
  int64_t h = q.shape()[1], hkv = k.shape()[1];
  check(hkv > 0 && h % hkv == 0, "attention: " + std::to_string(hkv) + " key/value heads do not divide " + std::to_string(h) + " query heads");
  check(k.shape() == v.shape(), "attention: k " + to_string(k.shape()) + " and v " + to_string(v.shape()) + " differ");
  // 16-bit q, k, v: scores, softmax and the weighted sum in float32, the output rounded once to
  // their type, as fused attention kernels (PyTorch's included) compute it.
  const DType io = q.dtype();
  const bool narrow = io == DType::BFloat16 || io == DType::Float16;
  auto wide = [&](const Tensor& x) { return narrow ? x.cast(DType::Float32) : x; };
  int64_t t = q.shape()[2], s = k.shape()[2], d = q.shape()[3];
  // Large score matrices are not kept for the backward pass: it computes them again from q, k
  // and v (which are kept), as fused attention kernels do; only the output stays from the forward.
  std::optional<RecomputeRegion> region;
  const bool tracks = grad_enabled() && (q.node()->tracks_grad || k.node()->tracks_grad || v.node()->tracks_grad);
  if (tracks && q.shape()[0] * h * t * s * static_cast<int64_t>(sizeof(float)) >= kept_scores_bytes()) region.emplace();
  Tensor kr = repeat_kv(wide(k), h / hkv), vr = repeat_kv(wide(v), h / hkv);
  Tensor scores = wide(q).matmul(kr.transpose(-1, -2)) * (1.0 / std::sqrt(static_cast<double>(d)));
  if (causal) {
    Tensor row = Tensor::arange(0, static_cast<double>(t), 1, DType::Int32, q.device()).reshape({t, 1});
    row = causal_offset.defined() ? row + causal_offset.reshape({1, 1}).cast(DType::Int32) : row + Scalar(static_cast<long long>(s - t));
    Tensor col = Tensor::arange(0, static_cast<double>(s), 1, DType::Int32, q.device()).reshape({1, s});
    scores = Tensor::where(col > row, scores.full_like(-INFINITY), scores);
  }
  Tensor out = softmax(scores, -1).matmul(vr);
  return narrow ? out.cast(io) : out;
}

}  // namespace lathe::ops
