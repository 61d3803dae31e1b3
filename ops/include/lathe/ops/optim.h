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
  // The moments' storage: float32, or bfloat16 (half the memory; the update still computes in
  // float32 and rounds when it stores them).
  DType state_dtype = DType::Float32;
};

// What the trainer needs of an optimizer. A step has a host half (prepare_step: count it,
// upload learning rate and bias corrections into a persistent device tensor) and a device half
// (update: build and run the update kernels); a captured training step calls update() inside
// and prepare_step() before it.
class Optimizer {
 public:
  virtual ~Optimizer() = default;
  void step() { prepare_step(), update(); }  // parameters without a gradient are left alone
  virtual void prepare_step() = 0;
  // `grad_scale` (a scalar tensor, e.g. GradNorm::scale) multiplies every gradient as it is read.
  virtual void update(const Tensor& grad_scale = Tensor()) = 0;
  virtual void zero_grad() = 0;
  virtual void set_lr(double lr) = 0;
};

// AdamW with decoupled weight decay and bias correction, step for step like torch.optim.AdamW.
class AdamW : public Optimizer {
 public:
  // `decay[i]` says whether params[i] gets weight decay (empty: all do).
  AdamW(std::vector<Tensor> params, AdamWOptions options, std::vector<bool> decay = {});
  void prepare_step() override;
  void update(const Tensor& grad_scale = Tensor()) override;
  void zero_grad() override;
  void set_lr(double lr) override { options_.lr = lr; }
  double lr() const { return options_.lr; }
  int64_t steps() const { return steps_; }
  void set_steps(int64_t steps) { steps_ = steps; }
  std::vector<Tensor>& params() { return params_; }
  std::vector<Tensor>& exp_avg() { return m_; }
  std::vector<Tensor>& exp_avg_sq() { return v_; }

 private:
  std::vector<Tensor> params_, m_, v_;
  Tensor hyper_;  // 1 - lr * weight_decay, lr / bias correction 1, sqrt(bias correction 2)
  std::vector<bool> decay_;
  AdamWOptions options_;
  int64_t steps_ = 0;
};

// SGD with momentum (dampening 0), optional Nesterov and L2 weight decay, like torch.optim.SGD.
class SGD : public Optimizer {
 public:
  SGD(std::vector<Tensor> params, double lr, double momentum = 0, bool nesterov = false, double weight_decay = 0);
  void prepare_step() override;
  void update(const Tensor& grad_scale = Tensor()) override;
  void zero_grad() override;
  void set_lr(double lr) override { lr_ = lr; }

 private:
  std::vector<Tensor> params_, buf_;
  Tensor hyper_;  // the learning rate
  double lr_, momentum_, weight_decay_;
  bool nesterov_;
  int64_t steps_ = 0;
};

// The global L2 norm of the gradients (realized) and the factor min(1, max_norm / (norm + 1e-6))
// that clips them (lazy): scalar tensors, nothing read back to the host, no gradient written.
struct GradNorm {
  Tensor norm, scale;
};
GradNorm grad_norm(std::vector<Tensor>& params, double max_norm);

// Scales all gradients so their global L2 norm is at most max_norm; returns the norm before
// clipping (a scalar tensor, nothing is read back to the host). A training step passes
// grad_norm()'s scale to Optimizer::update() instead, which saves writing every gradient.
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
