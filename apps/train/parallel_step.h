// A training step across ranks: each rank runs its share of the step's micro-batches, the
// gradients are summed across ranks in buckets (device -> host -> Communicator -> device), and
// every rank applies the update to every parameter, or, with the optimizer sharded (ZeRO stage
// 1), each rank updates its own parameters and the new weights are gathered by all.
#pragma once
#include <vector>

#include "communicator.h"
#include "lathe/capture.h"
#include "lathe/models/llama.h"
#include "lathe/ops/optim.h"

namespace lathe::app {

// Which rank owns each parameter (keeps its optimizer state and computes its update):
// consecutive parameters in blocks of about equal bytes, so that each bucket's parts are in
// rank order, as a reduce-scatter lays them out.
struct ShardPlan {
  std::vector<int> owner;  // per parameter
  static ShardPlan balanced(const std::vector<Tensor>& params, int ranks);
  std::vector<size_t> owned_by(int rank) const;
};

class ParallelStep {
 public:
  // `optimizer` holds every parameter, or with `shards`, only this rank's; `step_micro_batches`
  // counts a step's micro-batches over all ranks (each loss is divided by it).
  ParallelStep(std::vector<Tensor> params, ops::Optimizer& optimizer, const ShardPlan* shards, Communicator& comm,
               double grad_clip, int step_micro_batches, size_t bucket_bytes,
               std::function<Tensor(const Tensor& window)> loss_of);

  struct Result {
    double loss;  // mean over all ranks' micro-batches, summed in the step's order
    double grad_norm;
    double issue_seconds;          // host time to issue the local forward and backward pass
    double communication_seconds;  // gradients (and with shards, weights) across ranks, copies included
  };
  // `windows`: this rank's micro-batches, which are the step's `first`, `first + 1`, ...
  Result run(const std::vector<Tensor>& windows, int first, double lr);

 private:
  struct Bucket {
    size_t begin, end;            // parameters [begin, end)
    std::vector<size_t> counts;   // elements owned by each rank
  };
  std::vector<Tensor> backward(const std::vector<Tensor>& windows);
  std::vector<Tensor> update(const std::vector<Tensor>& inputs);
  double sum_gradients(std::vector<Tensor>& grads, std::vector<double>& owned_squares);
  void gather_weights();

  std::vector<Tensor> params_;
  ops::Optimizer& optimizer_;
  const ShardPlan* shards_;
  Communicator& comm_;
  double grad_clip_;
  int step_micro_;
  std::function<Tensor(const Tensor&)> loss_of_;
  std::vector<size_t> owned_;  // under shards: this rank's parameters
  std::vector<Bucket> buckets_;
  std::vector<unsigned char> staging_;
  Tensor scale_;  // the clipping factor under shards, computed on the host
  StepCapture backward_, update_;
};

}  // namespace lathe::app
