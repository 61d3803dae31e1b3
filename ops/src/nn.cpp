#include "lathe/ops/nn.h"

#include <algorithm>

namespace lathe::ops {

Tensor linear(const Tensor& x, const Tensor& weight, const std::optional<Tensor>& bias) {
  check(weight.ndim() == 2, "linear: weight must be [out, in], got " + to_string(weight.shape()));
  Tensor y = x.matmul(weight.transpose());
  return bias ? y + *bias : y;
}

Tensor softmax(const Tensor& x, int axis) {
  Tensor e = (x - x.max({axis}, true).detach()).exp();
  return e / e.sum({axis}, true);
}

Tensor log_softmax(const Tensor& x, int axis) {
  Tensor shifted = x - x.max({axis}, true).detach();
  return shifted - shifted.exp().sum({axis}, true).log();
}

Tensor one_hot(const Tensor& ids, int64_t classes) {
  check(!is_float(ids.dtype()), std::string("one_hot: ids must be integers, got ") + dtype_name(ids.dtype()));
  Shape s(ids.ndim(), 1);
  s.push_back(classes);
  Tensor range = Tensor::arange(0, static_cast<double>(classes), 1, DType::Int32, ids.device()).reshape(s);
  return ids.cast(DType::Int32).unsqueeze(-1).eq(range);
}

Tensor cross_entropy(const Tensor& logits, const Tensor& targets, std::optional<int64_t> ignore_index) {
  Shape lead(logits.shape().begin(), logits.shape().end() - 1);
  check(targets.shape() == lead, "cross_entropy: targets " + to_string(targets.shape()) + " do not match logits " +
                                     to_string(logits.shape()) + " without its class axis");
  int64_t classes = logits.shape().back();
  Tensor logp = log_softmax(logits.cast(DType::Float32), -1);
  Tensor picked = Tensor::where(one_hot(targets, classes), logp, logp.zeros_like()).sum({-1});
  if (!ignore_index) return -picked.mean();
  Tensor keep = targets.ne(targets.scalar_like(static_cast<long long>(*ignore_index)));
  Tensor total = Tensor::where(keep, picked, picked.zeros_like()).sum();
  return -total / keep.sum().cast(DType::Float32);
}

Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps) {
  Tensor xf = x.cast(DType::Float32);
  Tensor normed = xf * (xf.square().mean({-1}, true) + eps).rsqrt();
  return weight * normed.cast(x.dtype());
}

Tensor swiglu(const Tensor& gate, const Tensor& up) { return gate.silu() * up; }

Tensor embedding(const Tensor& ids, const Tensor& weight) {
  check(weight.ndim() == 2, "embedding: weight must be [vocab, dim], got " + to_string(weight.shape()));
  // A one-hot contraction: the only gather the primitive op set can express.
  return one_hot(ids, weight.shape()[0]).cast(weight.dtype()).matmul(weight);
}

void check_ids(const Tensor& ids, int64_t vocab, const std::string& what) {
  std::vector<int64_t> v = ids.cast(DType::Int64).to_vector<int64_t>();
  for (size_t i = 0; i < v.size(); ++i)
    if (v[i] < 0 || v[i] >= vocab)
      throw Error(what + ": token id " + std::to_string(v[i]) + " at position " + std::to_string(i) +
                  " is outside the vocabulary [0, " + std::to_string(vocab) + ")");
}

Tensor dropout(const Tensor& x, double p, bool training) {
  check(p >= 0 && p < 1, "dropout: p must be in [0, 1), got " + std::to_string(p));
  if (!training || p == 0) return x;
  Tensor u = Tensor::rand(x.shape(), DType::Float32, x.device());
  Tensor keep = u.ge(u.scalar_like(p));
  return Tensor::where(keep, x * (1.0 / (1.0 - p)), x.zeros_like());
}

}  // namespace lathe::ops
