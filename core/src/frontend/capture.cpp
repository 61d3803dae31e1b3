// Step capture: a training step recorded once as kernel launches, then replayed.
#include "lathe/capture.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <unordered_map>

#include "lathe/buffer.h"
#include "lathe/runtime.h"
#include "runtime/launch.h"
#include "runtime/recording.h"

namespace lathe {
namespace {

bool capture_enabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("LATHE_CAPTURE");
    return !(v && std::string(v) == "0");
  }();
  return enabled;
}

// Calls that each launch something different; after this many the step stays uncaptured.
constexpr int kMaxAttempts = 4;

struct TraceLaunch {
  std::shared_ptr<Program> program;  // null: a copy from args[1] into args[0]
  const Kernel* kernel;
  std::vector<int> args;  // indices into the trace's entries
};

std::string launch_name(const TraceLaunch& l) { return l.kernel ? "kernel " + l.kernel->name : "a copy"; }

// One buffer a traced call used.
struct Entry {
  std::shared_ptr<Buffer> buffer;  // held until the trace is compared or planned
  std::weak_ptr<Buffer> identity;
  int input = -1;           // which input of the step it is, if any
  bool persistent = false;  // still referenced outside the step once it returned
  bool read_first = false;  // its first use reads it: it holds data from before the step
  std::vector<unsigned char> constant;  // a read-first buffer made inside the step: its bytes
  size_t first = 0, last = 0;           // launches that use it first and last
  // A buffer made and consumed inside the step: replays give it memory shared by lifetime.
  bool short_lived() const { return input < 0 && !persistent && !read_first; }
};

}  // namespace

struct CaptureTrace {
  std::vector<TraceLaunch> launches;
  std::vector<Entry> entries;
  std::string problem;  // something no later call can fix
};

struct CapturePlan {
  std::vector<TraceLaunch> launches;
  std::vector<std::shared_ptr<Buffer>> buffers;  // per entry: kept buffer or shared block; null for inputs
  std::vector<int> input;                        // per entry: input index or -1
  struct InputKind {
    Device* device;
    DType dtype;
    int64_t numel;
  };
  std::vector<InputKind> captured_inputs;  // what each input was (not the buffer: it is the caller's)
  std::vector<Tensor> outputs;
  size_t shared = 0, blocks = 0;
};

namespace {

using Trace = CaptureTrace;
using Plan = CapturePlan;

std::unique_ptr<Trace> trace_of(Recording& recording, const std::vector<std::shared_ptr<Buffer>>& inputs) {
  auto t = std::make_unique<Trace>();
  std::unordered_map<Buffer*, int> index;
  for (size_t i = 0; i < recording.launches.size(); ++i) {
    RecordedLaunch& l = recording.launches[i];
    TraceLaunch tl{std::move(l.program), l.kernel, {}};
    for (size_t k = 0; k < l.buffers.size(); ++k) {
      auto [it, fresh] = index.emplace(l.buffers[k].get(), static_cast<int>(t->entries.size()));
      if (fresh) {
        Entry e;
        e.identity = e.buffer = l.buffers[k];
        e.read_first = l.kernel ? !l.kernel->params[k].written : k != 0;  // a copy writes buffer 0
        e.first = i;
        t->entries.push_back(std::move(e));
      }
      t->entries[it->second].last = i;
      tl.args.push_back(it->second);
    }
    t->launches.push_back(std::move(tl));
  }
  recording.launches.clear();  // the entries now hold the recording's only references
  for (size_t k = 0; k < inputs.size(); ++k) {
    auto it = index.find(inputs[k].get());
    if (it != index.end()) t->entries[it->second].input = static_cast<int>(k);
  }
  for (Entry& e : t->entries) {
    e.persistent = e.input < 0 && e.buffer.use_count() > 1;
    if (e.persistent && recording.host_writes.count(e.buffer.get()) && t->problem.empty())
      t->problem = "the step writes host data into a tensor that outlives it (" + std::to_string(e.buffer->bytes()) +
                   " bytes, read by " + launch_name(t->launches[e.first]) +
                   "); a replay would not repeat that write. Write it before calling the step";
    if (e.input < 0 && !e.persistent && e.read_first) {
      e.constant.resize(e.buffer->bytes());
      if (e.buffer->allocated()) e.buffer->copy_out(e.constant.data());
    }
  }
  return t;
}

// Why two traced calls cannot share one replay ("" when they can).
std::string difference(const Trace& a, const Trace& b) {
  if (a.launches.size() != b.launches.size())
    return "the step launched " + std::to_string(a.launches.size()) + " and then " + std::to_string(b.launches.size()) + " kernels";
  for (size_t i = 0; i < a.launches.size(); ++i)
    if (a.launches[i].program != b.launches[i].program || a.launches[i].args != b.launches[i].args)
      return "launch " + std::to_string(i) + " differs between calls (" + launch_name(a.launches[i]) + ", then " +
             launch_name(b.launches[i]) + ")";
  for (size_t k = 0; k < a.entries.size(); ++k) {
    const Entry &x = a.entries[k], &y = b.entries[k];
    std::string reader = launch_name(b.launches[y.first]);
    if (x.input != y.input || x.persistent != y.persistent || x.read_first != y.read_first)
      return "a buffer used by " + reader + " changes its role between calls";
    if (y.persistent && y.read_first && x.identity.lock() != y.buffer)
      return reader + " reads a tensor that is replaced between calls but is not an input of the step; pass it as an input";
    if (y.input < 0 && !y.persistent && y.read_first && x.constant != y.constant)
      return reader + " reads a value uploaded inside the step that changes between calls; "
             "upload it into a persistent tensor before calling the step, or pass it as an input";
  }
  return "";
}

void drop_buffers(Trace& t) {
  for (Entry& e : t.entries) e.buffer.reset();
}

// Gives the step's short-lived buffers blocks of memory: a block serves one buffer at a time,
// from the launch that writes it first to the last launch that reads it.
std::unique_ptr<Plan> plan_of(Trace& t, const std::vector<std::shared_ptr<Buffer>>& inputs, std::vector<Tensor> outputs) {
  auto plan = std::make_unique<Plan>();
  size_t n = t.entries.size();
  std::vector<std::vector<int>> starts(t.launches.size()), ends(t.launches.size());
  for (size_t k = 0; k < n; ++k)
    if (t.entries[k].short_lived()) {
      starts[t.entries[k].first].push_back(static_cast<int>(k));
      ends[t.entries[k].last].push_back(static_cast<int>(k));
    }
  struct Block {
    Device* device;
    DType dtype;
    int64_t numel;
  };
  std::vector<Block> blocks;
  std::multimap<std::pair<Device*, size_t>, int> free_blocks;
  std::vector<int> block_of(n, -1);
  for (size_t i = 0; i < t.launches.size(); ++i) {
    for (int k : starts[i]) {
      const Buffer& b = *t.entries[k].buffer;
      auto it = free_blocks.find({b.device(), b.bytes()});
      if (it != free_blocks.end()) {
        block_of[k] = it->second;
        free_blocks.erase(it);
      } else {
        block_of[k] = static_cast<int>(blocks.size());
        blocks.push_back({b.device(), b.dtype(), b.numel()});
      }
    }
    // Released after the launch: a kernel's output never shares memory with its inputs.
    for (int k : ends[i]) free_blocks.insert({{t.entries[k].buffer->device(), t.entries[k].buffer->bytes()}, block_of[k]});
  }
  plan->buffers.resize(n);
  plan->input.resize(n);
  for (size_t k = 0; k < n; ++k) {
    plan->input[k] = t.entries[k].input;
    if (!t.entries[k].short_lived() && t.entries[k].input < 0) plan->buffers[k] = t.entries[k].buffer;
  }
  drop_buffers(t);  // the traced call's short-lived buffers go back before the blocks are taken
  std::vector<std::shared_ptr<Buffer>> memory;
  for (const Block& b : blocks) {
    memory.push_back(std::make_shared<Buffer>(b.device, b.dtype, b.numel));
    memory.back()->handle();
  }
  for (size_t k = 0; k < n; ++k)
    if (block_of[k] >= 0) {
      plan->buffers[k] = memory[block_of[k]];
      ++plan->shared;
    }
  plan->blocks = blocks.size();
  plan->launches = std::move(t.launches);
  for (auto& b : inputs) plan->captured_inputs.push_back({b->device(), b->dtype(), b->numel()});
  plan->outputs = std::move(outputs);
  return plan;
}

std::vector<Tensor> replay(Plan& plan, const std::vector<std::shared_ptr<Buffer>>& inputs, bool time_kernels, StepCapture::ReplayStats& stats) {
  check(inputs.size() == plan.captured_inputs.size(), "captured step: called with " + std::to_string(inputs.size()) +
                                                          " inputs, captured with " + std::to_string(plan.captured_inputs.size()));
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Buffer& now = *inputs[k];
    const CapturePlan::InputKind& then = plan.captured_inputs[k];
    check(now.device() == then.device && now.dtype() == then.dtype && now.numel() == then.numel,
          "captured step: input " + std::to_string(k) + " is " + std::to_string(now.numel()) + " " + dtype_name(now.dtype()) +
              " on " + now.device()->label() + ", captured as " + std::to_string(then.numel) + " " + dtype_name(then.dtype) +
              " on " + then.device->label() + "; a step keeps the shapes it was captured with");
  }
  auto buffer = [&](int k) { return plan.input[k] >= 0 ? inputs[plan.input[k]].get() : plan.buffers[k].get(); };
  std::vector<void*> handles;
  stats = {};
  constexpr double kWait = 20e-6;  // 3.5-6 times a launch of a few buffers on an H100 or H200 (3.5-5.7 us)
  for (TraceLaunch& l : plan.launches) {
    if (!l.program) {
      copy_buffer(*buffer(l.args[1]), *buffer(l.args[0]));
      continue;
    }
    handles.clear();
    for (int k : l.args) handles.push_back(buffer(k)->handle());
    auto start = std::chrono::steady_clock::now();
    stats.kernel_seconds += launch_kernel(*l.program, *l.kernel, buffer(l.args[0])->device(), handles, time_kernels);
    double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (took > kWait) ++stats.slow_launches, stats.slow_seconds += took;
  }
  return plan.outputs;
}

}  // namespace

StepCapture::StepCapture(Step step) : step_(std::move(step)) {}
StepCapture::~StepCapture() = default;

bool StepCapture::replaying() const { return plan_ != nullptr; }
size_t StepCapture::launches() const { return plan_ ? plan_->launches.size() : 0; }
size_t StepCapture::buffers_shared() const { return plan_ ? plan_->shared : 0; }
size_t StepCapture::memory_blocks() const { return plan_ ? plan_->blocks : 0; }

std::vector<Tensor> StepCapture::operator()(const std::vector<Tensor>& inputs) {
  std::vector<std::shared_ptr<Buffer>> buffers;
  for (size_t k = 0; k < inputs.size(); ++k) {
    check(inputs[k].defined(), "captured step: input " + std::to_string(k) + " is an undefined tensor");
    Tensor t = inputs[k];
    t.realize();
    buffers.push_back(t.node()->buffer);
  }
  if (plan_) return replay(*plan_, buffers, time_kernels_, stats_);
  if (given_up_ || !capture_enabled()) return step_(inputs);
  check(active_recording() == nullptr, "captured step: a captured step cannot call another one");
  Recording recording;
  active_recording() = &recording;
  std::vector<Tensor> outputs;
  try {
    outputs = step_(inputs);
    realize(outputs);
  } catch (...) {
    active_recording() = nullptr;
    throw;
  }
  active_recording() = nullptr;
  std::unique_ptr<Trace> trace = trace_of(recording, buffers);
  std::string problem = trace->problem;
  if (problem.empty() && previous_) problem = difference(*previous_, *trace);
  if (problem.empty() && previous_) {
    previous_.reset();
    plan_ = plan_of(*trace, buffers, outputs);
    spdlog::info("step captured: {} launches replayed per call; {} short-lived buffers share {} blocks of memory", plan_->launches.size(),
                 plan_->shared, plan_->blocks);
    return outputs;
  }
  drop_buffers(*trace);
  previous_ = std::move(trace);
  if (++attempts_ >= kMaxAttempts) {
    given_up_ = true;
    reason_ = problem;
    previous_.reset();
    spdlog::warn("the step is not captured and runs without replay: {}", reason_);
  }
  return outputs;
}

}  // namespace lathe
