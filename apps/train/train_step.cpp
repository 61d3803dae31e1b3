#include "train_step.h"

#include <chrono>

#include "lathe/models/data.h"

namespace lathe::app {

TrainStep::TrainStep(models::LlamaModel& model, std::vector<Tensor> params, ops::Optimizer& optimizer, double grad_clip)
    : model_(model),
      params_(std::move(params)),
      optimizer_(optimizer),
      grad_clip_(grad_clip),
      capture_([this](const std::vector<Tensor>& windows) { return device_step(windows); }) {}

// Everything here runs on the device: the host reads nothing until the step returns.
std::vector<Tensor> TrainStep::device_step(const std::vector<Tensor>& windows) {
  optimizer_.zero_grad();
  std::vector<Tensor> out;
  for (const Tensor& w : windows) {
    models::Batch b = models::batch_of(w);
    Tensor loss = model_.loss(b.inputs, b.targets) * (1.0 / static_cast<double>(windows.size()));
    loss.backward();
    out.push_back(loss);
  }
  ops::GradNorm clip = ops::grad_norm(params_, grad_clip_ > 0 ? grad_clip_ : 1e30);
  out.push_back(clip.norm);
  optimizer_.update(clip.scale);  // clipped as they are read: no pass that rewrites the gradients
  return out;
}

TrainStep::Result TrainStep::run(const std::vector<Tensor>& windows, double lr) {
  optimizer_.set_lr(lr);
  optimizer_.prepare_step();
  auto start = std::chrono::steady_clock::now();
  std::vector<Tensor> out = capture_(windows);
  double issued = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  Result r{0, out.back().item<float>(), issued};
  for (size_t i = 0; i + 1 < out.size(); ++i) r.loss += out[i].item<float>();
  return r;
}

}  // namespace lathe::app
