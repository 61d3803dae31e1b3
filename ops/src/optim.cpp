#include "lathe/ops/optim.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <numeric>

namespace lathe::ops {
namespace {

// Element i of a small device vector, broadcast to `like`'s shape.
Tensor element(const Tensor& values, int i, const Tensor& like) {
  return values.select(0, i).cast(like.dtype()).broadcast_to(like.shape());
}

// Writes host numbers into a persistent device vector (made on first use). The update kernels
// read them from there, so every step, and a captured step's replay, runs the same kernels.
void upload(Tensor& values, const std::vector<float>& v, Device* device) {
  if (!values.defined()) values = Tensor::zeros({static_cast<int64_t>(v.size())}, DType::Float32, device).contiguous().realize();
  values.copy_from_host(v.data());
}

// Parameter indices with equal shapes next to each other (otherwise in order): the updates
// of same-shaped parameters then sit side by side in the schedule, where they share kernels.
std::vector<size_t> by_shape(const std::vector<Tensor>& params) {
  std::vector<size_t> order(params.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return params[a].shape() < params[b].shape(); });
  return order;
}

}  // namespace

AdamW::AdamW(std::vector<Tensor> params, AdamWOptions options, std::vector<bool> decay)
    : params_(std::move(params)), decay_(std::move(decay)), options_(options) {
  if (decay_.empty()) decay_.assign(params_.size(), true);
  check(decay_.size() == params_.size(), "AdamW: " + std::to_string(decay_.size()) + " decay flags for " + std::to_string(params_.size()) + " parameters");
  for (auto& p : params_) {
    const DType state = options_.state_dtype == DType::Float32 ? p.dtype() : options_.state_dtype;
    m_.push_back(Tensor::zeros(p.shape(), state, p.device()).contiguous().realize());
    v_.push_back(Tensor::zeros(p.shape(), state, p.device()).contiguous().realize());
  }
}

void AdamW::prepare_step() {
  ++steps_;
  const auto& o = options_;
  double bc1 = 1 - std::pow(o.beta1, static_cast<double>(steps_));
  double bc2 = 1 - std::pow(o.beta2, static_cast<double>(steps_));
  upload(hyper_, {static_cast<float>(1 - o.lr * o.weight_decay), static_cast<float>(o.lr / bc1), static_cast<float>(std::sqrt(bc2))},
         params_.empty() ? nullptr : params_[0].device());
}

// The gradient as the update reads it: in the parameter's dtype (a bf16 gradient of a float32
// master weight is widened as it is read), scaled by `grad_scale` when given.
static Tensor scaled_grad(const Tensor& p, const Tensor& grad_scale) {
  Tensor g = p.grad();
  if (g.defined() && g.dtype() != p.dtype()) g = g.cast(p.dtype());
  if (!g.defined() || !grad_scale.defined()) return g;
  return g * grad_scale.reshape({}).cast(g.dtype()).broadcast_to(g.shape());
}

void AdamW::update(const Tensor& grad_scale) {
  NoGradGuard no_grad;
  check(hyper_.defined(), "AdamW::update(): call prepare_step() first");
  const auto& o = options_;
  std::vector<Tensor> updated;
  for (size_t i : by_shape(params_)) {
    Tensor& p = params_[i];
    Tensor g = scaled_grad(p, grad_scale);
    if (!g.defined()) continue;
    Tensor decayed = decay_[i] && o.weight_decay != 0 ? p * element(hyper_, 0, p) : p;
    Tensor m_prev = m_[i].cast(g.dtype()), v_prev = v_[i].cast(g.dtype());  // 16-bit moments compute in float32
    Tensor m = m_prev + (g - m_prev) * (1 - o.beta1);
    Tensor v = v_prev * o.beta2 + g * g * (1 - o.beta2);
    Tensor denom = v.sqrt() / element(hyper_, 2, p) + o.eps;
    m_[i].assign(m.cast(m_[i].dtype()));
    v_[i].assign(v.cast(v_[i].dtype()));
    p.assign(decayed - element(hyper_, 1, p) * m / denom);
    updated.insert(updated.end(), {p, m_[i], v_[i]});
  }
  realize(updated);
}

void AdamW::zero_grad() {
  for (auto& p : params_) p.zero_grad();
}

SGD::SGD(std::vector<Tensor> params, double lr, double momentum, bool nesterov, double weight_decay)
    : params_(std::move(params)), lr_(lr), momentum_(momentum), weight_decay_(weight_decay), nesterov_(nesterov) {
  buf_.resize(params_.size());
}

void SGD::prepare_step() {
  upload(hyper_, {static_cast<float>(lr_)}, params_.empty() ? nullptr : params_[0].device());
}

void SGD::update(const Tensor& grad_scale) {
  NoGradGuard no_grad;
  check(hyper_.defined(), "SGD::update(): call prepare_step() first");
  std::vector<Tensor> updated;
  for (size_t i : by_shape(params_)) {
    Tensor& p = params_[i];
    Tensor g = scaled_grad(p, grad_scale);
    if (!g.defined()) continue;
    if (weight_decay_ != 0) g = g + p * weight_decay_;
    if (momentum_ != 0) {
      if (!buf_[i].defined()) buf_[i] = g.contiguous();
      else buf_[i].assign(buf_[i] * momentum_ + g);
      g = nesterov_ ? g + buf_[i] * momentum_ : buf_[i];
      updated.push_back(buf_[i]);
    }
    p.assign(p - element(hyper_, 0, p) * g);
    updated.push_back(p);
  }
  realize(updated);
  ++steps_;
}

void SGD::zero_grad() {
  for (auto& p : params_) p.zero_grad();
}

GradNorm grad_norm(std::vector<Tensor>& params, double max_norm) {
  NoGradGuard no_grad;
  Tensor total;
  for (size_t i : by_shape(params)) {
    const Tensor& p = params[i];
    if (!p.grad().defined()) continue;
    Tensor sq = p.grad().cast(DType::Float32).square().sum();
    total = total.defined() ? total + sq : sq;
  }
  if (!total.defined()) return {Tensor::scalar(0.0), Tensor::scalar(1.0)};
  Tensor norm = total.sqrt().realize();
  return {norm, (max_norm / (norm + 1e-6)).clamp(std::nullopt, 1.0)};
}

Tensor clip_grad_norm(std::vector<Tensor>& params, double max_norm) {
  NoGradGuard no_grad;
  GradNorm n = grad_norm(params, max_norm);
  std::vector<Tensor> grads;
  for (size_t i : by_shape(params)) {
    Tensor g = params[i].grad();
    if (!g.defined()) continue;
    g.assign(g * n.scale.cast(g.dtype()));
    grads.push_back(g);
  }
  realize(grads);
  return n.norm;
}

double lr_at(const LrSchedule& s, int64_t step) {
  if (step < s.warmup_steps) return s.max_lr * static_cast<double>(step + 1) / static_cast<double>(s.warmup_steps);
  int64_t span = std::max<int64_t>(1, s.total_steps - s.warmup_steps);
  double progress = std::min(1.0, static_cast<double>(step - s.warmup_steps) / static_cast<double>(span));
  if (s.decay == "constant") return s.max_lr;
  if (s.decay == "linear") return s.max_lr - (s.max_lr - s.min_lr) * progress;
  check(s.decay == "cosine", "lr schedule: unknown decay '" + s.decay + "'; use cosine, linear or constant");
  return s.min_lr + 0.5 * (s.max_lr - s.min_lr) * (1 + std::cos(std::numbers::pi * progress));
}

}  // namespace lathe::ops
