#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdlib>
#include <mutex>
#include <unordered_map>

#include "lathe/buffer.h"
#include "lathe/device.h"
#include "lathe/error.h"
#include "lathe/lower.h"
#include "lathe/render.h"
#include "lathe/runtime.h"

namespace lathe {

RuntimeStats& runtime_stats() {
  static RuntimeStats stats;
  return stats;
}

int debug_level() {
  static int level = [] {
    const char* v = std::getenv("LATHE_DEBUG");
    return v ? std::atoi(v) : 0;
  }();
  return level;
}

namespace {

// LATHE_DEBUG output goes to stderr, leaving stdout to the program's own results.
spdlog::logger& debug_log() {
  static std::shared_ptr<spdlog::logger> log = [] {
    auto l = spdlog::get("lathe.debug");
    return l ? l : spdlog::stderr_color_mt("lathe.debug");
  }();
  return *log;
}

// Compiled programs by device and kernel IR text: the IR fully determines the program.
Program* compiled_program(Device* device, const Kernel& kernel) {
  static std::mutex mu;
  static std::unordered_map<Device*, std::unordered_map<std::string, std::unique_ptr<Program>>> cache;
  std::string key = kernel_ir_text(kernel);
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = cache[device][key];
  if (!slot) {
    try {
      slot = device->compile(kernel);
    } catch (const Error& e) {
      throw Error("backend '" + device->backend() + "' failed to compile kernel " + kernel.name + ": " + e.what());
    }
    ++runtime_stats().kernels_compiled;
    if (debug_level() >= 3) debug_log().info("source of {}:\n{}", kernel.name, slot->source());
  }
  return slot.get();
}

std::string describe(const ScheduleItem& item) {
  std::string s = std::string(item.kind == ScheduleItem::Kind::Copy ? "copy " : "kernel ") + op_name(item.node->op) + " " +
                  dtype_name(item.node->dtype) + to_string(item.node->shape);
  return s;
}

void run_copy(const ScheduleItem& item, Buffer* source) {
  std::vector<unsigned char> host(source->bytes());
  source->copy_out(host.data());
  item.output->copy_in(host.data());
  ++runtime_stats().copies;
  if (debug_level() >= 1)
    debug_log().info("copy {:>8} bytes {} -> {}", source->bytes(), source->device()->label(), item.output->device()->label());
}

}  // namespace

void realize_nodes(const std::vector<Node*>& roots) {
  std::vector<ScheduleItem> items = create_schedule(roots);
  if (items.empty()) return;
  std::unordered_map<Node*, Buffer*> made;
  for (auto& item : items) made[item.node] = item.output.get();
  if (debug_level() >= 2) {
    debug_log().info("schedule: {} items", items.size());
    for (auto& item : items) debug_log().info("  {}", describe(item));
  }
  for (auto& item : items) {
    Node* self = item.node;
    auto input_of = [&](Node* n) -> Buffer* {
      if (n == self) return nullptr;
      if (n->buffer) return n->buffer.get();
      auto it = made.find(n);
      return it == made.end() ? nullptr : it->second;
    };
    if (item.kind == ScheduleItem::Kind::Copy) {
      run_copy(item, input_of(item.value));
      continue;
    }
    Device* device = item.node->device;
    check(device != nullptr, "realize: " + describe(item) + " has no device");
    LoweredKernel lk = lower_kernel(item.value, item.output.get(), input_of, default_options(item.value, input_of));
    if (debug_level() >= 4) debug_log().info("IR:\n{}", kernel_ir_text(lk.kernel));
    Program* program = compiled_program(device, lk.kernel);
    std::vector<void*> handles;
    for (Buffer* b : lk.params) {
      check(b->device() == device, "realize: kernel " + lk.kernel.name + " reads a buffer on " + b->device()->label() +
                                       " while running on " + device->label() + "; move tensors with to()");
      handles.push_back(b->handle());
    }
    bool timed = debug_level() >= 1;
    double seconds = program->run(handles, timed);
    ++runtime_stats().kernels_run;
    if (timed)
      debug_log().info("{:<4} {:<28} {} buffers  global {:>8}  {:9.3f} ms  {:8.2f} GFLOP/s-est", device->label(),
                   lk.kernel.name, lk.params.size(), lk.kernel.global_size, seconds * 1e3,
                   seconds > 0 ? lk.kernel.ops_estimate / seconds * 1e-9 : 0.0);
  }
  for (auto& item : items) {
    item.node->buffer = item.output;
    // History that autograd can never use would only keep buffers alive.
    if (!item.node->tracks_grad || item.node->op == Op::Assign) item.node->src.clear();
  }
}

}  // namespace lathe
