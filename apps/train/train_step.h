// One optimizer step over a list of micro-batches: losses, backward passes, gradient clipping
// and the optimizer's update, captured after it settles and replayed from then on (see
// lathe/capture.h). The trainer and `lathe bench` both time this.
#pragma once
#include <vector>

#include "lathe/capture.h"
#include "lathe/models/llama.h"
#include "lathe/ops/optim.h"

namespace lathe::app {

class TrainStep {
 public:
  // grad_clip <= 0: no clipping (the norm is still measured).
  TrainStep(models::LlamaModel& model, std::vector<Tensor> params, ops::Optimizer& optimizer, double grad_clip);

  struct Result {
    double loss;  // mean over the micro-batches
    double grad_norm;
    // Host time to issue the step (build and schedule it, or replay its launches), before
    // waiting for the device; launches are asynchronous on GPU backends.
    double issue_seconds;
  };
  // `windows`: one [B, T + 1] int32 tensor of token windows per micro-batch.
  Result run(const std::vector<Tensor>& windows, double lr);
  const StepCapture& capture() const { return capture_; }
  StepCapture& capture() { return capture_; }

 private:
  std::vector<Tensor> device_step(const std::vector<Tensor>& windows);
  models::LlamaModel& model_;
  std::vector<Tensor> params_;
  ops::Optimizer& optimizer_;
  double grad_clip_;
  StepCapture capture_;
};

}  // namespace lathe::app
