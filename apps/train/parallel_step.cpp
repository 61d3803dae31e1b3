// The data-parallel step: buckets, the two captured halves, reduce-scatter and all-gather under shards.
#include "parallel_step.h"

#include <chrono>
#include <cmath>

#include "lathe/error.h"
#include "ranks.h"

namespace lathe::app {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double squares(const unsigned char* data, int64_t n, DType dtype) {
  double s = 0;
  if (dtype == DType::Float32) {
    const auto* f = reinterpret_cast<const float*>(data);
    for (int64_t i = 0; i < n; ++i) s += static_cast<double>(f[i]) * f[i];
  } else {
    std::vector<float> f(static_cast<size_t>(n));
    convert_to_host(data, dtype, f.data(), DType::Float32, n);
    for (float x : f) s += static_cast<double>(x) * x;
  }
  return s;
}

}  // namespace

ShardPlan ShardPlan::balanced(const std::vector<Tensor>& params, int ranks) {
  if (static_cast<int>(params.size()) < ranks)  // every rank computes the same plan, and meets this together
    throw EveryRankError("distributed.shard_optimizer: " + std::to_string(ranks) + " ranks share " + std::to_string(params.size()) +
                         " parameters, fewer than one each; run fewer ranks or set distributed.shard_optimizer = false");
  double total = 0;
  for (const Tensor& p : params) total += static_cast<double>(p.numel());
  ShardPlan plan;
  double before = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    // A parameter goes to the rank whose equal share its middle falls in, but never skips a rank
    // that would be left with nothing and never leaves too few parameters for the ranks after it.
    int r = static_cast<int>((before + 0.5 * static_cast<double>(params[i].numel())) / total * ranks);
    int previous = plan.owner.empty() ? -1 : plan.owner.back();
    r = std::clamp(r, std::max(previous, 0), previous + 1);
    r = std::max(r, ranks - static_cast<int>(params.size() - i));
    plan.owner.push_back(std::min(r, ranks - 1));
    before += static_cast<double>(params[i].numel());
  }
  return plan;
}

std::vector<size_t> ShardPlan::owned_by(int rank) const {
  std::vector<size_t> out;
  for (size_t i = 0; i < owner.size(); ++i)
    if (owner[i] == rank) out.push_back(i);
  return out;
}

ParallelStep::ParallelStep(std::vector<Tensor> params, ops::Optimizer& optimizer, const ShardPlan* shards, Communicator& comm,
                           double grad_clip, int step_micro_batches, size_t bucket_bytes, std::function<Tensor(const Tensor&)> loss_of)
    : params_(std::move(params)),
      optimizer_(optimizer),
      shards_(shards),
      comm_(comm),
      grad_clip_(grad_clip > 0 ? grad_clip : 1e30),
      step_micro_(step_micro_batches),
      loss_of_(std::move(loss_of)),
      backward_([this](const std::vector<Tensor>& w) { return backward(w); }),
      update_([this](const std::vector<Tensor>& in) { return update(in); }) {
  // Buckets of consecutive parameters of one gradient dtype, each at most bucket_bytes unless a
  // single parameter is larger.
  size_t largest = 0;
  for (size_t i = 0; i < params_.size();) {
    Bucket b{i, i, std::vector<size_t>(static_cast<size_t>(comm_.size()), 0)};
    size_t bytes = 0;
    const DType dtype = params_[i].grad_dtype();
    while (b.end < params_.size() && params_[b.end].grad_dtype() == dtype &&
           (b.end == b.begin || bytes + static_cast<size_t>(params_[b.end].numel()) * itemsize(dtype) <= bucket_bytes)) {
      const size_t n = static_cast<size_t>(params_[b.end].numel());
      bytes += n * itemsize(dtype);
      b.counts[static_cast<size_t>(shards_ ? shards_->owner[b.end] : 0)] += n;
      // The weights are gathered through the same buffer in their own dtype.
      largest = std::max(largest, bytes / itemsize(dtype) * std::max(itemsize(dtype), itemsize(params_[b.end].dtype())));
      ++b.end;
    }
    i = b.end;
    buckets_.push_back(std::move(b));
  }
  staging_.resize(largest);
  if (shards_) owned_ = shards_->owned_by(comm_.rank());
  if (shards_) scale_ = Tensor::full({}, 1.0, DType::Float32, params_.front().device()).contiguous().realize();
}

// The local micro-batches' losses and the gradients they leave.
std::vector<Tensor> ParallelStep::backward(const std::vector<Tensor>& windows) {
  for (Tensor& p : params_) p.zero_grad();
  std::vector<Tensor> out;
  for (const Tensor& w : windows) {
    Tensor loss = loss_of_(w) * (1.0 / static_cast<double>(step_micro_));
    loss.backward();
    out.push_back(loss);
  }
  for (Tensor& p : params_) {
    check(p.grad().defined(), "data parallel training: a parameter received no gradient");
    out.push_back(p.grad());
  }
  return out;
}

// Unsharded: the summed gradients in, the update of every parameter as in a single process
// (the norm measured on the device), the norm out. Sharded: the clipping factor and this rank's
// summed gradients in, its parameters' update.
std::vector<Tensor> ParallelStep::update(const std::vector<Tensor>& inputs) {
  if (!shards_) {
    for (size_t i = 0; i < params_.size(); ++i) params_[i].set_grad(inputs[i]);
    ops::GradNorm clip = ops::grad_norm(params_, grad_clip_);
    optimizer_.update(clip.scale);
    return {clip.norm};
  }
  for (size_t k = 0; k < owned_.size(); ++k) params_[owned_[k]].set_grad(inputs[1 + k]);
  optimizer_.update(inputs[0]);
  return {};
}

// Sums each gradient across ranks, in buckets through the host; under shards only the owner's
// copy is summed and written back, and the squares of its elements are added up on the way.
double ParallelStep::sum_gradients(std::vector<Tensor>& grads, std::vector<double>& owned_squares) {
  auto start = Clock::now();
  for (const Bucket& b : buckets_) {
    const DType dtype = params_[b.begin].grad_dtype();
    const size_t item = itemsize(dtype);
    size_t offset = 0;
    for (size_t i = b.begin; i < b.end; ++i) {
      grads[i].copy_to_host(staging_.data() + offset * item);
      offset += static_cast<size_t>(grads[i].numel());
    }
    if (shards_) comm_.reduce_scatter_sum(staging_.data(), b.counts, dtype);
    else comm_.all_reduce_sum(staging_.data(), offset, dtype);
    offset = 0;
    for (size_t i = b.begin; i < b.end; ++i) {
      const unsigned char* data = staging_.data() + offset * item;
      if (!shards_) {
        grads[i].copy_from_host(data);
      } else if (shards_->owner[i] == comm_.rank()) {
        grads[i].copy_from_host(data);
        owned_squares[i] = squares(data, grads[i].numel(), dtype);
      }
      offset += static_cast<size_t>(grads[i].numel());
    }
  }
  return seconds_since(start);
}

// Each owner's new weights to every rank.
void ParallelStep::gather_weights() {
  for (const Bucket& b : buckets_) {
    const DType dtype = params_[b.begin].dtype();
    const size_t item = itemsize(dtype);
    size_t offset = 0;
    for (size_t i = b.begin; i < b.end; ++i) {
      if (shards_->owner[i] == comm_.rank()) params_[i].copy_to_host(staging_.data() + offset * item);
      offset += static_cast<size_t>(params_[i].numel());
    }
    comm_.all_gather(staging_.data(), b.counts, dtype);
    offset = 0;
    for (size_t i = b.begin; i < b.end; ++i) {
      if (shards_->owner[i] != comm_.rank()) params_[i].copy_from_host(staging_.data() + offset * item);
      offset += static_cast<size_t>(params_[i].numel());
    }
  }
}

ParallelStep::Result ParallelStep::run(const std::vector<Tensor>& windows, int first, double lr) {
  optimizer_.set_lr(lr);
  optimizer_.prepare_step();
  Result r{0, 0, 0, 0};
  auto start = Clock::now();
  std::vector<Tensor> out = backward_(windows);
  r.issue_seconds = seconds_since(start);
  std::vector<Tensor> grads(out.begin() + static_cast<std::ptrdiff_t>(windows.size()), out.end());
  std::vector<double> squares_of(params_.size(), 0.0);
  r.communication_seconds = sum_gradients(grads, squares_of);
  if (!shards_) {
    r.grad_norm = update_(grads)[0].item<float>();
  } else {
    // Each entry came from its owner alone, so this sum is exact and the same on every rank.
    auto start_norm = Clock::now();
    comm_.all_reduce_sum(squares_of.data(), squares_of.size());
    double total = 0;
    for (double s : squares_of) total += s;
    r.grad_norm = std::sqrt(total);
    const float scale = static_cast<float>(std::min(1.0, grad_clip_ / (r.grad_norm + 1e-6)));
    scale_.copy_from_host(&scale);
    r.communication_seconds += seconds_since(start_norm);
    std::vector<Tensor> inputs{scale_};
    for (size_t i : owned_) inputs.push_back(grads[i]);
    update_(inputs);
    auto start_gather = Clock::now();
    gather_weights();
    r.communication_seconds += seconds_since(start_gather);
  }
  // Every micro-batch's loss, each from the one rank that ran it: summed in the step's order,
  // as a single process adds them.
  std::vector<double> losses(static_cast<size_t>(step_micro_), 0.0);
  for (size_t k = 0; k < windows.size(); ++k) losses[static_cast<size_t>(first) + k] = out[k].item<float>();
  comm_.all_reduce_sum(losses.data(), losses.size());
  for (double l : losses) r.loss += l;
  return r;
}

}  // namespace lathe::app
