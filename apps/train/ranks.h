// What a training run does differently as one of several ranks: the device each takes, the
// check that all were given the same config, each rank's share of a step's micro-batches, and
// how a failure on one rank is reported while the launcher stops the others.
#pragma once
#include <atomic>
#include <cstdint>

#include "communicator.h"
#include "config.h"
#include "lathe/error.h"

namespace lathe::app {

// An error every rank meets at the same point (a non-finite loss, configs that differ): rank 0
// reports it and all ranks stop without aborting one another.
class EveryRankError : public Error {
 public:
  using Error::Error;
};

// backend.device when the config sets it, else this rank's index on its host (all ranks share a
// backend's only device, as cpu's).
int rank_device(const TrainConfig& config, const Communicator& comm);
// Throws EveryRankError naming the first key whose value differs from rank 0's (backend.device,
// which may differ, excepted).
void check_same_config(const TrainConfig& config, Communicator& comm);

struct MicroBatchShare {
  int first = 0, count = 1;  // this rank runs micro-batches [first, first + count) of each step
};
// train.grad_accum counts a step's micro-batches over all ranks, so the global batch and the
// order of its samples do not depend on the number of ranks; it must be a multiple of it.
MicroBatchShare micro_batch_share(const TrainConfig& config, const Communicator& comm);

// The step a rank is working on, for the message it prints when the launcher stops it
// (SIGTERM: another rank failed or was killed).
void report_launcher_stop(const Communicator& comm, const std::atomic<int64_t>& step);

}  // namespace lathe::app
