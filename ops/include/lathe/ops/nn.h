// Neural-network building blocks composed only of Tensor ops (no backend code).
#pragma once
#include <optional>

#include "lathe/tensor.h"

namespace lathe::ops {

// x @ weight^T + bias, with weight laid out [out_features, in_features] as in PyTorch.
Tensor linear(const Tensor& x, const Tensor& weight, const std::optional<Tensor>& bias = std::nullopt);
// Numerically stable: the row maximum is subtracted first (and carries no gradient).
Tensor softmax(const Tensor& x, int axis = -1);
Tensor log_softmax(const Tensor& x, int axis = -1);
// Mean over positions of -log softmax(logits)[target]. logits [..., C], targets [...] integer.
// Positions whose target equals ignore_index do not count (if all are ignored the result is NaN,
// as in PyTorch).
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, std::optional<int64_t> ignore_index = std::nullopt);
// x / sqrt(mean(x^2 over the last axis) + eps) * weight, computed in float32.
Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps);
// silu(gate) * up: the gated unit of the Llama MLP.
Tensor swiglu(const Tensor& gate, const Tensor& up);
// rows of weight [V, D] picked by integer ids [...] -> [..., D]; ids outside [0, V) throw when
// checked on the host (see check_ids), otherwise read as zero rows.
Tensor embedding(const Tensor& ids, const Tensor& weight);
// Throws lathe::Error naming `what` when an id lies outside [0, vocab).
void check_ids(const Tensor& ids, int64_t vocab, const std::string& what);
// Zeroes each element with probability p and scales the rest by 1/(1-p); identity when !training.
Tensor dropout(const Tensor& x, double p, bool training);
// Integer class ids -> one-hot bool [..., classes].
Tensor one_hot(const Tensor& ids, int64_t classes);

}  // namespace lathe::ops
