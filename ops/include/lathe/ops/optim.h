// Optimizers, gradient clipping and learning-rate schedules. Hyperparameters that change from
// step to step (learning rate, bias corrections) reach the kernels as a small device tensor,
// so every step runs the same compiled kernels.
#pragma once
#include <string>
#include <vector>

#include "lathe/tensor.h"

namespace lathe::ops {

struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.01;
};

// AdamW with decoupled weight decay and bias correction, step for step like torch.optim.AdamW.
class AdamW {
 public:
  // `decay[i]` says whether params[i] gets weight decay (empty: all do).
  AdamW(std::vector<Tensor> params, AdamWOptions options, std::vector<bool> decay = {});
  void step();  // parameters without a gradient are left alone
  void zero_grad();
  void set_lr(double lr) { options_.lr = lr; }
  double lr() const { return options_.lr; }
  int64_t steps() const { return steps_; }
  void set_steps(int64_t steps) { steps_ = steps; }
  std::vector<Tensor>& params() { return params_; }
  std::vector<Tensor>& exp_avg() { return m_; }
  std::vector<Tensor>& exp_avg_sq() { return v_; }

 private:
  std::vector<Tensor> params_, m_, v_;
  std::vector<bool> decay_;
  AdamWOptions options_;
  int64_t steps_ = 0;
};

// SGD with momentum (dampening 0), optional Nesterov and L2 weight decay, like torch.optim.SGD.
class SGD {
 public:
  SGD(std::vector<Tensor> params, double lr, double momentum = 0, bool nesterov = false, double weight_decay = 0);
  void step();
  void zero_grad();
  void set_lr(double lr) { lr_ = lr; }

 private:
  std::vector<Tensor> params_, buf_;
  double lr_, momentum_, weight_decay_;
  bool nesterov_;
  int64_t steps_ = 0;
};

// Scales all gradients so their global L2 norm is at most max_norm; returns the norm before
// clipping (a scalar tensor, nothing is read back to the host).
Tensor clip_grad_norm(std::vector<Tensor>& params, double max_norm);

struct LrSchedule {
  double max_lr = 1e-3;
  double min_lr = 0;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
  std::string decay = "cosine";  // "cosine", "linear" or "constant"
};
// Linear warm-up from max_lr/warmup to max_lr over the first warmup_steps (step counted from
// 0), then decay to min_lr at total_steps, flat after.
double lr_at(const LrSchedule& schedule, int64_t step);

}  // namespace lathe::ops
