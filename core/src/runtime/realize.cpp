// Realizing the graph: schedule it, lower and compile what is new (cached), and run it.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "lathe/buffer.h"
#include "lathe/device.h"
#include "lathe/error.h"
#include "lathe/runtime.h"
#include "schedule/schedule.h"
#include "compile_programs.h"
#include "launch.h"
#include "codegen/lowering_cache.h"
#include "schedule/memory_plan.h"
#include "recording.h"
#include "schedule/sibling_groups.h"

namespace lathe {

Recording*& active_recording() {
  static Recording* recording = nullptr;
  return recording;
}

namespace {

std::string describe(const ScheduleItem& item) {
  std::string s = std::string(item.kind == ScheduleItem::Kind::Copy ? "copy " : "kernel ") + op_name(item.node->op) + " " +
                  dtype_name(item.node->dtype) + to_string(item.node->shape);
  return s;
}

}  // namespace

void copy_buffer(Buffer& source, Buffer& destination) {
  std::vector<unsigned char> host(source.bytes());
  source.copy_out(host.data());
  destination.copy_in(host.data());
  ++runtime_stats().copies;
  if (debug_level() >= 1)
    debug_log().info("copy {:>8} bytes {} -> {}", source.bytes(), source.device()->label(), destination.device()->label());
}

double launch_kernel(Program& program, const Kernel& kernel, Device* device, const std::vector<void*>& handles, bool timed) {
  const bool logged = debug_level() >= 1;
  double seconds = program.run(handles, timed || logged);
  ++runtime_stats().kernels_run;
  runtime_stats().device_seconds += seconds;
  if (logged)
    debug_log().info("{:<4} {:<28} {} buffers  global {:>8}  {:9.3f} ms  {:8.2f} GFLOP/s-est", device->label(), kernel.name,
                     handles.size(), kernel.global_size, seconds * 1e3, seconds > 0 ? kernel.ops_estimate / seconds * 1e-9 : 0.0);
  return seconds;
}

void realize_nodes(const std::vector<Node*>& roots) {
  std::vector<ScheduleItem> items = create_schedule(roots);
  if (items.empty()) return;
  std::unordered_map<Node*, Buffer*> made;
  for (auto& item : items) made[item.node] = item.output.get();
  // While a step is captured, the launches keep their buffers alive for the replay.
  Recording* recording = active_recording();
  std::unordered_map<Buffer*, std::shared_ptr<Buffer>> owner;
  if (debug_level() >= 2) {
    debug_log().info("schedule: {} items", items.size());
    for (auto& item : items) debug_log().info("  {}", describe(item));
  }
  // What a kernel reads rather than computes; `selves` are the nodes the kernel itself stores.
  auto input_of_for = [&](std::vector<Node*> selves) {
    return [&, selves](Node* n) -> Buffer* {
      if (std::find(selves.begin(), selves.end(), n) != selves.end()) return nullptr;
      if (n->buffer) {
        if (recording) owner.emplace(n->buffer.get(), n->buffer);
        return n->buffer.get();
      }
      auto it = made.find(n);
      return it == made.end() ? nullptr : it->second;
    };
  };
  // Items that can share a kernel are brought next to each other, then grouped.
  std::vector<std::optional<Reads>> known(items.size());
  auto reads_at = [&](size_t i) -> const Reads& {
    if (!known[i]) {
      auto input_of = input_of_for({items[i].node});
      known[i] = reads_of(items[i].value, input_of);
      if (known[i]->reduces) known[i]->structure = structure_key({{items[i].value, items[i].output.get()}}, input_of);
    }
    return *known[i];
  };
  const Joins joins = kernel_joins(items, reads_at, input_of_for);
  {
    std::vector<size_t> order = sibling_order(items, reads_at, joins);
    std::vector<ScheduleItem> moved;
    std::vector<std::optional<Reads>> moved_reads;
    for (size_t k : order) moved.push_back(std::move(items[k])), moved_reads.push_back(std::move(known[k]));
    items = std::move(moved);
    known = std::move(moved_reads);
  }
  const std::vector<size_t> first = sibling_groups(items, reads_at, joins);

  // Lower everything first so that all new kernels compile together (one kernel per group, at
  // its first item).
  std::vector<Lowered> lowered(items.size());
  std::vector<std::shared_ptr<Program>> program_of(items.size());
  std::vector<CompileJob> to_compile;
  std::vector<size_t> kernel_items;
  for (size_t i = 0; i < items.size(); ++i) {
    auto& item = items[i];
    if (item.kind == ScheduleItem::Kind::Copy || first[i] != i) continue;
    Outputs outs;
    std::vector<Node*> selves;
    for (size_t j = i; j < items.size() && first[j] == i; ++j) {
      outs.push_back({items[j].value, items[j].output.get()});
      selves.push_back(items[j].node);
    }
    // Where a group's shapes differ, the values that read the others come first (a row
    // kernel's rows before their statistics, an epilogue before the matmuls it reads).
    for (auto& o : outs)
      if (o.first->shape != outs.front().first->shape) {
        const Shape first_shape = o.first->shape;
        std::stable_partition(outs.begin(), outs.end(), [&](auto& x) { return x.first->shape == first_shape; });
        break;
      }
    check(item.node->device != nullptr, [&] { return "realize: " + describe(item) + " has no device"; });
    // Outputs without elements: nothing to compute, and no kernel may touch their buffers.
    if (std::all_of(outs.begin(), outs.end(), [](auto& o) { return numel(o.first->shape) == 0; })) continue;
    Device* device = item.node->device;
    lowered[i] = lower_cached(outs, input_of_for(selves), device);
    CachedLowering& entry = *lowered[i].entry;
    if (debug_level() >= 4) debug_log().info("IR:\n{}", entry.key);
    {
      std::lock_guard<std::mutex> lock(lowering_mu());
      auto it = entry.programs.find(device);
      if (it != entry.programs.end()) program_of[i] = it->second;
    }
    if (!program_of[i] && !dry_run_active()) {
      to_compile.push_back({device, &entry.kernel, &entry.key});
      kernel_items.push_back(i);
    }
  }
  std::vector<std::shared_ptr<Program>> programs(to_compile.size());
  compile_missing(to_compile, programs);
  for (size_t k = 0; k < kernel_items.size(); ++k) {
    size_t i = kernel_items[k];
    program_of[i] = programs[k];
    std::lock_guard<std::mutex> lock(lowering_mu());
    lowered[i].entry->programs[to_compile[k].device] = programs[k];
  }

  // Every item of a group reads what the group's kernel reads.
  std::vector<std::vector<Buffer*>> reads(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    if (items[i].kind == ScheduleItem::Kind::Copy) {
      Node* src = items[i].value;
      reads[i].push_back(src->buffer ? src->buffer.get() : made.at(src));
      if (recording && src->buffer) owner.emplace(src->buffer.get(), src->buffer);
    } else {
      const Lowered& lk = lowered[first[i]];
      if (!lk.entry) continue;  // an empty group: launched never, reads nothing
      size_t outputs = 0;
      while (first[i] + outputs < items.size() && first[first[i] + outputs] == first[i]) ++outputs;
      reads[i].assign(lk.params.begin() + static_cast<long>(outputs), lk.params.end());
    }
  }
  std::vector<std::vector<Buffer*>> release = plan_releases(items, roots, reads);
  if (debug_level() >= 2) {
    size_t n = 0, bytes = 0, total = 0;
    for (auto& r : release)
      for (Buffer* b : r) ++n, bytes += b->bytes();
    for (auto& item : items) total += item.output->bytes();
    debug_log().info("memory plan: {} of {} outputs ({} of {} MiB) released after their last reader", n, items.size(), bytes >> 20, total >> 20);
  }

  if (recording)  // only now: the memory plan counts the owners of each output
    for (auto& item : items) owner[item.output.get()] = item.output;
  for (size_t i = 0; i < items.size(); ++i) {
    auto& item = items[i];
    if (item.kind == ScheduleItem::Kind::Copy) {
      copy_buffer(*reads[i][0], *item.output);
      if (recording) recording->launches.push_back({nullptr, nullptr, {item.output, owner.at(reads[i][0])}});
      for (Buffer* b : release[i]) b->release_memory();
      continue;
    }
    if (first[i] == i && lowered[i].entry) {  // a group's kernel runs at its first item
      Device* device = item.node->device;
      const Lowered& lk = lowered[i];
      const Kernel& kernel = lk.entry->kernel;
      std::vector<void*> handles;
      handles.reserve(lk.params.size());
      for (Buffer* b : lk.params) {
        check(b->device() == device, [&] { return "realize: kernel " + kernel.name + " reads a buffer on " + b->device()->label() +
                                         " while running on " + device->label() + "; move tensors with to()"; });
        handles.push_back(b->handle());
      }
      if (program_of[i]) launch_kernel(*program_of[i], kernel, device, handles);  // none in a DryRun
      if (recording) {
        RecordedLaunch launch{program_of[i], &kernel, {}};
        for (Buffer* b : lk.params) launch.buffers.push_back(owner.at(b));
        recording->launches.push_back(std::move(launch));
      }
      for (size_t j = i; j < items.size() && first[j] == i; ++j)
        for (Buffer* b : release[j]) b->release_memory();
    }
    if (debug_level() >= 3)  // a memory trace: what each item leaves allocated
      debug_log().info("after item {}: {:.1f} MiB live{} ({})", i, static_cast<double>(runtime_stats().bytes_live) / (1 << 20),
                       item.node->recomputed ? ", recomputed" : "", describe(item));
  }
  for (auto& item : items) {
    item.node->buffer = item.output;
    // History that autograd can never use would only keep buffers alive.
    if (!item.node->tracks_grad || item.node->backward_done || item.node->op == Op::Assign) item.node->src.clear();
  }
}

}  // namespace lathe
