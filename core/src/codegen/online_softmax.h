// Internal: when a sum over an axis can be computed in the same pass as a maximum over that
// axis (the online softmax normalizer: a running maximum, and the partial sum rescaled
// whenever the maximum grows).
#pragma once
#include <functional>
#include <optional>

#include "lathe/buffer.h"
#include "lathe/graph.h"

namespace lathe {

// The rate c when `sum` (a float32 Add reduction) reads `max` (a float32 Max reduction over
// the same axes of a same-shaped input) only as a factor exp2(c * max) of its summand, with
// c < 0: each read broadcasts max along the reduced axes (the element read is the one the
// sum computes), and reaches the summand through exp2 of something affine in max, then
// products, negations and selects against zero. A softmax's sum of exp(x - max) has rate
// -1/ln 2. Otherwise nothing. Stored values (input_of) are leaves, except `max` itself.
std::optional<double> online_rate(Node* sum, Node* max, const std::function<Buffer*(Node*)>& input_of);

// The one reduction a kernel's value computes at its top (under elementwise ops only), if any.
Node* only_top_reduction(Node* value, const std::function<Buffer*(Node*)>& input_of);

}  // namespace lathe
