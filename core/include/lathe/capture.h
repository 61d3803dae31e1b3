// Step capture and replay. A training step builds the same graph every time; StepCapture runs
// it normally until two calls in a row launch the same kernels on the same buffers, keeps that
// launch list, gives the step's short-lived buffers memory by lifetime, and from then on only
// launches: no graph is built, scheduled, lowered or compiled in the steady state.
//
// What a step may do: read its inputs (passed on every call: same shapes, dtypes and devices),
// read and assign persistent tensors (parameters, optimizer state; realize the assignments
// inside the step: work left lazy when it returns is not part of it), and return tensors,
// which are realized before it ends. The returned tensors are the same objects on every replay, overwritten in place.
// What stops the capture (the step then keeps running normally, with a warning saying why):
// a kernel sequence that changes from call to call, a tensor it reads that is replaced between
// calls without being an input, a constant it uploads that changes, or a host write into a
// persistent tensor from inside the step. LATHE_CAPTURE=0 turns capture off.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "lathe/tensor.h"

namespace lathe {

struct CaptureTrace;  // one traced call (capture.cpp)
struct CapturePlan;   // what a replay launches

class StepCapture {
 public:
  using Step = std::function<std::vector<Tensor>(const std::vector<Tensor>& inputs)>;
  explicit StepCapture(Step step);
  ~StepCapture();
  StepCapture(const StepCapture&) = delete;
  StepCapture& operator=(const StepCapture&) = delete;

  std::vector<Tensor> operator()(const std::vector<Tensor>& inputs);

  bool replaying() const;
  // Why the step runs normally ("" while still warming up or once replaying).
  const std::string& not_captured_reason() const { return reason_; }
  size_t launches() const;        // kernels and copies per replay
  size_t buffers_shared() const;  // short-lived buffers folded into shared memory blocks
  size_t memory_blocks() const;   // the blocks they were folded into
  // The last replay: its launches that took over 20 µs to issue, and their time (a launch with
  // dozens of buffers, such as an optimizer's update of many parameters, or a driver waiting for
  // room in its queue; the two cannot be told apart from the host); with time_kernels(true),
  // the device time of its kernels, each waited for and timed on its own.
  struct ReplayStats {
    size_t slow_launches = 0;
    double slow_seconds = 0;
    double kernel_seconds = 0;
  };
  const ReplayStats& last_replay() const { return stats_; }
  void time_kernels(bool on) { time_kernels_ = on; }

 private:
  Step step_;
  std::unique_ptr<CaptureTrace> previous_;
  std::unique_ptr<CapturePlan> plan_;
  std::string reason_;
  ReplayStats stats_;
  bool time_kernels_ = false;
  int attempts_ = 0;
  bool given_up_ = false;
};

}  // namespace lathe
