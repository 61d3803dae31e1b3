// Trains y = 3x - 1 by gradient descent through an installed lathe: prints the fitted values.
#include <cstdio>

#include "lathe/tensor.h"

int main() {
  using lathe::Tensor;
  Tensor::manual_seed(0);
  Tensor x = Tensor::rand({64, 1});
  Tensor y = x * 3.0 - 1.0;
  Tensor w = Tensor::zeros({1, 1}).requires_grad_(), b = Tensor::zeros({1}).requires_grad_();
  for (int step = 0; step < 200; ++step) {
    w.zero_grad();
    b.zero_grad();
    Tensor loss = (x.matmul(w) + b - y).square().mean();
    loss.backward();
    lathe::NoGradGuard no_grad;
    w.assign(w - 0.5 * w.grad());
    b.assign(b - 0.5 * b.grad());
    lathe::realize({w, b});
  }
  std::printf("w=%.3f b=%.3f\n", w.item<float>(), b.item<float>());
  return 0;
}
