// Internal: what a Tensor handle points to, and helpers shared by the tensor_*.cpp files.
#pragma once
#include <optional>

#include "lathe/tensor.h"

namespace lathe {

struct TensorImpl {
  NodeRef node;
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;
  std::optional<DType> grad_dtype;  // unset: the tensor's own dtype
};

// Wraps a freshly built node; inside a NoGradGuard the result records no history.
Tensor wrap(NodeRef node);
Device* resolve(Device* device);
// Live tensors that require grad (for backward()).
std::vector<std::shared_ptr<TensorImpl>> tensors_requiring_grad();
void register_requires_grad(const std::shared_ptr<TensorImpl>& impl);

}  // namespace lathe
