// The training loop: data, model, optimizer and schedule from a TrainConfig; evaluation,
// target loss, checkpoints, resume and export.
#pragma once
#include "config.h"

namespace lathe::app {

struct TrainResult {
  int64_t steps_done = 0;
  double final_train_loss = 0, final_val_loss = 0;
  bool reached_target = false;
};

TrainResult train(const TrainConfig& config);

}  // namespace lathe::app
