// Compiling the new kernels of a schedule, in batches, on a thread per core.
#include "compile_programs.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "lathe/error.h"
#include "lathe/runtime.h"
#include "launch.h"

namespace lathe {
namespace {

// A freshly compiled program, counted and (LATHE_DEBUG=3) logged with its source.
std::shared_ptr<Program> keep_program(const Kernel& kernel, std::unique_ptr<Program> program) {
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  if (debug_level() >= 3) debug_log().info("source of {}:\n{}", kernel.name, program->source());
  ++runtime_stats().kernels_compiled;
  return std::shared_ptr<Program>(std::move(program));
}


// Compiles one batch of kernels of one device; on failure each kernel alone, so that the error
// names the kernel that does not build.
void compile_batch(const std::vector<CompileJob>& jobs, const std::vector<size_t>& batch, std::vector<std::shared_ptr<Program>>& out) {
  Device* device = jobs[batch[0]].device;
  auto start = std::chrono::steady_clock::now();
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
    out[batch[b]] = keep_program(*job.kernel, std::move(p));
  }
  if (debug_level() >= 2)
    debug_log().info("compiled batch of {} ({}{}) in {:.2f} s", batch.size(), jobs[batch[0]].kernel->name, batch.size() > 1 ? ", ..." : "",
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

}  // namespace

void compile_missing(const std::vector<CompileJob>& jobs, std::vector<std::shared_ptr<Program>>& out) {
  // Kernels of the same IR on the same device (duplicates in one schedule) compile once.
  std::unordered_map<Device*, std::unordered_map<std::string, size_t>> first;
  std::vector<size_t> source(jobs.size());
  std::unordered_map<Device*, std::vector<size_t>> todo;
  size_t missing = 0;
  for (size_t i = 0; i < jobs.size(); ++i) {
    auto [it, fresh] = first[jobs[i].device].emplace(*jobs[i].key, i);
    source[i] = it->second;
    if (fresh) todo[jobs[i].device].push_back(i), ++missing;
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
  for (size_t i = 0; i < jobs.size(); ++i) out[i] = out[source[i]];
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  runtime_stats().compile_seconds += seconds;
  if (debug_level() >= 1) debug_log().info("compiled {} kernels in {} batches in {:.2f} s", missing, batches.size(), seconds);
}

}  // namespace lathe
