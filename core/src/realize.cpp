#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>
#include <cstdlib>
#include <mutex>
#include <set>
#include <unordered_map>

#include "lathe/buffer.h"
#include "lathe/device.h"
#include "lathe/error.h"
#include "lathe/lower.h"
#include "lathe/render.h"
#include "lathe/runtime.h"
#include "launch.h"
#include "memory_plan.h"
#include "recording.h"
#include "search.h"

namespace lathe {

RuntimeStats& runtime_stats() {
  static RuntimeStats stats;
  return stats;
}

Recording*& active_recording() {
  static Recording* recording = nullptr;
  return recording;
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
struct ProgramCache {
  std::mutex mu;
  std::unordered_map<Device*, std::unordered_map<std::string, std::shared_ptr<Program>>> programs;
};
// Deliberately leaked, like the devices: programs must not be released during static
// destruction, after a backend's driver may already have shut down.
ProgramCache& program_cache() {
  static ProgramCache* c = new ProgramCache;
  return *c;
}

std::shared_ptr<Program> cached_program(Device* device, const std::string& key) {
  auto& c = program_cache();
  std::lock_guard<std::mutex> lock(c.mu);
  auto& per = c.programs[device];
  auto it = per.find(key);
  return it == per.end() ? nullptr : it->second;
}

// Keeps a freshly compiled program in the cache (first one wins when two threads raced).
std::shared_ptr<Program> keep_program(Device* device, const Kernel& kernel, const std::string& key, std::unique_ptr<Program> program) {
  if (debug_level() >= 3) debug_log().info("source of {}:\n{}", kernel.name, program->source());
  auto& c = program_cache();
  std::lock_guard<std::mutex> lock(c.mu);
  ++runtime_stats().kernels_compiled;
  return c.programs[device].emplace(key, std::move(program)).first->second;
}

// A kernel to compile: its device, IR and the IR's text (the program cache key).
struct CompileJob {
  Device* device;
  const Kernel* kernel;
  const std::string* key;
};

// Compiles one batch of kernels of one device; on failure each kernel alone, so that the error
// names the kernel that does not build.
void compile_batch(const std::vector<CompileJob>& jobs, const std::vector<size_t>& batch, std::vector<std::shared_ptr<Program>>& out) {
  Device* device = jobs[batch[0]].device;
  std::vector<const Kernel*> kernels;
  for (size_t i : batch) kernels.push_back(jobs[i].kernel);
  std::vector<std::unique_ptr<Program>> programs;
  try {
    if (kernels.size() > 1) programs = device->compile_many(kernels);
  } catch (const Error&) {
    programs.clear();
  }
  for (size_t b = 0; b < batch.size(); ++b) {
    const CompileJob& job = jobs[batch[b]];
    std::unique_ptr<Program> p;
    if (b < programs.size()) p = std::move(programs[b]);
    else try {
        p = device->compile(*job.kernel);
      } catch (const Error& e) {
        throw Error("backend '" + device->backend() + "' failed to compile kernel " + job.kernel->name + ": " + e.what());
      }
    out[batch[b]] = keep_program(device, *job.kernel, *job.key, std::move(p));
  }
}

// Compiles every kernel not yet cached: in as many batches as there are cores, each batch on
// its own thread (compilers are single-threaded processes, and a training step's first run
// needs hundreds of kernels); a backend may build a whole batch as one program.
void compile_missing(const std::vector<CompileJob>& jobs, std::vector<std::shared_ptr<Program>>& out) {
  std::unordered_map<std::string, size_t> first;  // duplicates in one schedule compile once
  std::unordered_map<Device*, std::vector<size_t>> todo;
  size_t missing = 0;
  for (size_t i = 0; i < jobs.size(); ++i) {
    out[i] = cached_program(jobs[i].device, *jobs[i].key);
    if (!out[i] && first.emplace(*jobs[i].key, i).second) todo[jobs[i].device].push_back(i), ++missing;
  }
  if (missing == 0) return;
  auto start = std::chrono::steady_clock::now();
  size_t threads = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::vector<size_t>> batches;
  for (auto& [device, list] : todo) {
    size_t n = std::min(list.size(), threads);
    size_t base = batches.size();
    batches.resize(base + n);
    for (size_t k = 0; k < list.size(); ++k) batches[base + k % n].push_back(list[k]);
  }
  std::atomic<size_t> next{0};
  std::exception_ptr failure;
  std::mutex failure_mu;
  auto worker = [&] {
    for (size_t j; (j = next.fetch_add(1)) < batches.size();) {
      try {
        compile_batch(jobs, batches[j], out);
      } catch (...) {
        std::lock_guard<std::mutex> lock(failure_mu);
        if (!failure) failure = std::current_exception();
      }
    }
  };
  std::vector<std::thread> pool;
  for (size_t t = 1; t < std::min(threads, batches.size()); ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  if (failure) std::rethrow_exception(failure);
  for (size_t i = 0; i < jobs.size(); ++i)
    if (!out[i]) out[i] = cached_program(jobs[i].device, *jobs[i].key);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  runtime_stats().compile_seconds += seconds;
  if (debug_level() >= 1) debug_log().info("compiled {} kernels in {} batches in {:.2f} s", missing, batches.size(), seconds);
}

// A kernel's structure, independent of which buffers it reads: every training step builds
// the same graphs over new buffers, and this key lets them reuse the lowered kernel.
struct Fragment {
  std::string signature;
  std::vector<Buffer*> inputs;  // boundary buffers in visit order
};

using Outputs = std::vector<std::pair<Node*, Buffer*>>;  // the values one kernel stores, and where

Fragment fragment_of(const Outputs& outs, const std::function<Buffer*(Node*)>& input_of) {
  Fragment f;
  std::unordered_map<Node*, int> ids;
  std::string& sig = f.signature;
  sig.reserve(256);
  for (auto& [value, output] : outs) {
  sig += "|";
  // Iterative post-order so deep graphs cannot overflow the stack.
  std::vector<std::pair<Node*, size_t>> stack = {{value, 0}};
  while (!stack.empty()) {
    auto& [n, i] = stack.back();
    Buffer* in = input_of(n);
    if (!in && i < n->src.size()) {
      Node* child = n->src[i++].get();
      if (!ids.count(child)) stack.push_back({child, 0});
      continue;
    }
    if (ids.count(n)) {
      stack.pop_back();
      continue;
    }
    int id = static_cast<int>(ids.size());
    ids[n] = id;
    sig += std::to_string(id) + ":";
    if (in) {
      // Which output (-2, -3, ...) or earlier input shares this buffer: the lowering merges them.
      int same = -1;
      for (size_t o = 0; o < outs.size() && same == -1; ++o)
        if (outs[o].second == in) same = -2 - static_cast<int>(o);
      for (size_t k = 0; k < f.inputs.size() && same == -1; ++k)
        if (f.inputs[k] == in) same = static_cast<int>(k);
      f.inputs.push_back(in);
      sig += "IN" + std::to_string(same) + "/" + std::to_string(static_cast<int>(n->dtype)) + to_string(n->shape);
    } else {
      sig += std::to_string(static_cast<int>(n->op)) + "/" + std::to_string(static_cast<int>(n->dtype)) + to_string(n->shape);
      for (int64_t a : n->arg) sig += "," + std::to_string(a);
      if (n->op == Op::Reduce) sig += "r" + std::to_string(static_cast<int>(n->reduce_op));
      if (n->op == Op::Const) {
        uint64_t bits;
        std::memcpy(&bits, &n->fvalue, sizeof bits);
        sig += "c" + std::to_string(bits) + "/" + std::to_string(n->ivalue);
      }
      for (auto& src : n->src) sig += "<" + std::to_string(ids.at(src.get()));
    }
    sig += ";";
    stack.pop_back();
  }
  }
  return f;
}

// A lowered fragment, kept for the life of the process: steady training steps find their
// kernels, their program-cache keys and their compiled programs here without rebuilding any.
struct CachedLowering {
  Kernel kernel;
  std::vector<int> param_input;  // for params 1..n: index into Fragment::inputs
  std::string key;               // kernel_ir_text(kernel)
  std::unordered_map<Device*, std::shared_ptr<Program>> programs;  // guarded by lowering_mu()
};

std::mutex& lowering_mu() {
  static std::mutex mu;
  return mu;
}

struct Lowered {
  CachedLowering* entry = nullptr;
  std::vector<Buffer*> params;  // params[0] is the output
};

// Lowers through a cache keyed by the fragment's structure.
Lowered lower_cached(const Outputs& outs, const std::function<Buffer*(Node*)>& input_of, Device* dev) {
  const DeviceInfo& device = dev->info();
  static std::unordered_map<std::string, CachedLowering> cache;
  Node* value = outs[0].first;
  Fragment f = fragment_of(outs, input_of);
  // The options depend on what the device offers, not on which device it is.
  f.signature += "|" + std::to_string(device.parallel_all_outer_loops) + "/" + std::to_string(device.max_local_size) + "/" +
                 std::to_string(device.local_memory_bytes) + "/" + std::to_string(device.compute_units);
  Lowered out;
  {
    std::lock_guard<std::mutex> lock(lowering_mu());
    auto it = cache.find(f.signature);
    if (it != cache.end()) out.entry = &it->second;
  }
  if (!out.entry) {
    LoweringOptions options = default_options(value, input_of, device);
    if (search_width() > 0 && outs.size() == 1) options = search_options(value, outs[0].second, input_of, dev, f.signature, options);
    LoweredKernel lk = lower_kernel(outs, input_of, options);
    CachedLowering c{std::move(lk.kernel), {}, {}, {}};
    for (size_t p = outs.size(); p < lk.params.size(); ++p)
      c.param_input.push_back(static_cast<int>(std::find(f.inputs.begin(), f.inputs.end(), lk.params[p]) - f.inputs.begin()));
    c.key = kernel_ir_text(c.kernel);
    std::lock_guard<std::mutex> lock(lowering_mu());
    out.entry = &cache.emplace(std::move(f.signature), std::move(c)).first->second;  // node-based: the address is stable
  }
  for (auto& o : outs) out.params.push_back(o.second);
  for (int k : out.entry->param_input) out.params.push_back(f.inputs[k]);
  return out;
}

// What a value's expression reads: each stored buffer, and whether some path to it passes a
// movement op (so that an element reads other elements); whether a reduction is inside.
struct Reads {
  bool reduces = false;
  std::unordered_map<Buffer*, bool> moved;
};

Reads reads_of(Node* value, const std::function<Buffer*(Node*)>& input_of) {
  Reads r;
  std::set<std::pair<Node*, bool>> seen;
  std::vector<std::pair<Node*, bool>> stack = {{value, false}};
  while (!stack.empty()) {
    auto [n, moved] = stack.back();
    stack.pop_back();
    if (!seen.insert({n, moved}).second) continue;
    if (Buffer* b = input_of(n)) {
      r.moved[b] = r.moved[b] || moved;
      continue;
    }
    if (n->op == Op::Reduce) r.reduces = true;
    for (auto& src : n->src) stack.push_back({src.get(), moved || is_movement(n->op) || n->op == Op::Reduce});
  }
  return r;
}

// Consecutive kernel items that one kernel stores together: elementwise values of one shape on
// one device (an optimizer's update of a parameter and of its two moments: one launch and one
// read of the gradient instead of three). A member never reads what an earlier member writes
// (it wants the new value; the kernel loads everything before it stores) and reads what a
// later member writes only element for element. Returns each item's first member.
std::vector<size_t> sibling_groups(const std::vector<ScheduleItem>& items, const std::vector<Reads>& reads) {
  constexpr size_t kMaxMembers = 8;
  std::vector<size_t> first(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    first[i] = i;
    if (i == 0 || items[i].kind != ScheduleItem::Kind::Kernel || reads[i].reduces) continue;
    size_t g = first[i - 1];
    const ScheduleItem& lead = items[g];
    if (lead.kind != ScheduleItem::Kind::Kernel || reads[g].reduces || i - g >= kMaxMembers ||
        lead.node->device != items[i].node->device || lead.value->shape != items[i].value->shape)
      continue;
    bool ok = true;
    for (size_t m = g; m < i && ok; ++m) {
      Buffer* earlier = items[m].output.get();
      auto later = reads[m].moved.find(items[i].output.get());
      ok = earlier != items[i].output.get() && !reads[i].moved.count(earlier) && (later == reads[m].moved.end() || !later->second);
    }
    if (ok) first[i] = g;
  }
  return first;
}

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

void launch_kernel(Program& program, const Kernel& kernel, Device* device, const std::vector<void*>& handles) {
  bool timed = debug_level() >= 1;
  double seconds = program.run(handles, timed);
  ++runtime_stats().kernels_run;
  runtime_stats().device_seconds += seconds;
  if (timed)
    debug_log().info("{:<4} {:<28} {} buffers  global {:>8}  {:9.3f} ms  {:8.2f} GFLOP/s-est", device->label(), kernel.name,
                     handles.size(), kernel.global_size, seconds * 1e3, seconds > 0 ? kernel.ops_estimate / seconds * 1e-9 : 0.0);
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
  std::vector<Reads> item_reads(items.size());
  for (size_t i = 0; i < items.size(); ++i)
    if (items[i].kind == ScheduleItem::Kind::Kernel) item_reads[i] = reads_of(items[i].value, input_of_for({items[i].node}));
  const std::vector<size_t> first = sibling_groups(items, item_reads);

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
    check(item.node->device != nullptr, "realize: " + describe(item) + " has no device");
    Device* device = item.node->device;
    lowered[i] = lower_cached(outs, input_of_for(selves), device);
    CachedLowering& entry = *lowered[i].entry;
    if (debug_level() >= 4) debug_log().info("IR:\n{}", entry.key);
    {
      std::lock_guard<std::mutex> lock(lowering_mu());
      auto it = entry.programs.find(device);
      if (it != entry.programs.end()) program_of[i] = it->second;
    }
    if (!program_of[i]) {
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
    if (first[i] == i) {  // a group's kernel runs at its first item
      Device* device = item.node->device;
      const Lowered& lk = lowered[i];
      const Kernel& kernel = lk.entry->kernel;
      std::vector<void*> handles;
      handles.reserve(lk.params.size());
      for (Buffer* b : lk.params) {
        check(b->device() == device, "realize: kernel " + kernel.name + " reads a buffer on " + b->device()->label() +
                                         " while running on " + device->label() + "; move tensors with to()");
        handles.push_back(b->handle());
      }
      launch_kernel(*program_of[i], kernel, device, handles);
      if (recording) {
        RecordedLaunch launch{program_of[i], &kernel, {}};
        for (Buffer* b : lk.params) launch.buffers.push_back(owner.at(b));
        recording->launches.push_back(std::move(launch));
      }
      for (size_t j = i; j < items.size() && first[j] == i; ++j)
        for (Buffer* b : release[j]) b->release_memory();
    }
  }
  for (auto& item : items) {
    item.node->buffer = item.output;
    // History that autograd can never use would only keep buffers alive.
    if (!item.node->tracks_grad || item.node->op == Op::Assign) item.node->src.clear();
  }
}

}  // namespace lathe
