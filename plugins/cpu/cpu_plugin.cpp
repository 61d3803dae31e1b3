// The cpu backend: kernels rendered as C, built by the system compiler, run on a thread pool.
#include <unistd.h>

#include <boost/dll/alias.hpp>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "cpu_compiler.h"
#include "lathe/device.h"
#include "lathe/error.h"
#include "lathe/render.h"
#include "cpu_dialect.h"
#include "thread_pool.h"

namespace lathe::cpu {
namespace {

// Below this many operations a kernel runs on the calling thread: waking workers costs more.
constexpr int64_t kParallelThreshold = 1 << 15;

class CpuProgram : public Program {
 public:
  CpuProgram(KernelFn fn, std::string source, const Kernel& k, ThreadPool& pool)
      : fn_(fn), source_(std::move(source)), global_(k.global_size), ops_(k.ops_estimate), pool_(pool) {}

  double run(const std::vector<void*>& buffers, bool timed) override {
    auto t0 = std::chrono::steady_clock::now();
    void** b = const_cast<void**>(buffers.data());
    if (ops_ < kParallelThreshold || global_ < 2) fn_(b, 0, global_);
    else pool_.parallel_for(global_, [&](int64_t begin, int64_t end) { fn_(b, begin, end); });
    if (!timed) return 0;
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  const std::string& source() const override { return source_; }

 private:
  KernelFn fn_;
  std::string source_;
  int64_t global_, ops_;
  ThreadPool& pool_;
};

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

int thread_count() {
  if (const char* t = std::getenv("LATHE_CPU_THREADS"); t && *t) {
    char* end = nullptr;
    long n = std::strtol(t, &end, 10);
    if (*end != '\0' || n < 1 || n > 4096)
      throw Error(std::string("LATHE_CPU_THREADS = '") + t + "' is not a thread count from 1 to 4096; unset it to use every core");
    return static_cast<int>(n);
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

std::string cpu_name() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "CPU";
}

uint64_t memory_bytes() { return static_cast<uint64_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<uint64_t>(sysconf(_SC_PAGE_SIZE)); }

class CpuDevice : public Device {
 public:
  explicit CpuDevice(const DeviceOptions& options) : pool_(thread_count()) {
    info_.name = cpu_name() + " (" + std::to_string(pool_.size()) + " threads)";
    info_.memory_bytes = memory_bytes();
    limit_ = info_.memory_bytes;
    for (auto& [key, value] : options) {
      if (key != "memory_limit_mib") throw Error("cpu: unknown option '" + key + "' (known: memory_limit_mib)");
      try {
        size_t used = 0;
        long long mib = std::stoll(value, &used);
        if (used != value.size() || mib < 1 || mib > (int64_t{1} << 40)) throw Error("range");
        limit_ = static_cast<uint64_t>(mib) << 20;
      } catch (...) {
        throw Error("cpu: option memory_limit_mib must be a positive whole number of MiB, got '" + value + "'");
      }
    }
    info_.compute_units = pool_.size();
    info_.vector_floats = compiler_.vector_floats();
    info_.dtypes = {DType::Bool, DType::UInt8, DType::Int32, DType::UInt32, DType::Int64,
                    DType::Float16, DType::BFloat16, DType::Float32};
  }
  const DeviceInfo& info() const override { return info_; }

  // Freed blocks are kept by size and handed out again: fresh pages would cost a page fault
  // each on first touch, which dominates memory-bound kernels.
  // Under AddressSanitizer every buffer is its exact size and freed at once, so a kernel that
  // reads or writes past a buffer, or a freed one, is reported.
  void* allocate(size_t bytes) override {
    size_t rounded = kSanitized ? std::max<size_t>(bytes, 1) : (bytes + 63) / 64 * 64;
    if (kSanitized) {
      void* p = nullptr;
      if (posix_memalign(&p, 64, rounded) != 0) throw OutOfMemoryError("cpu: cannot allocate " + std::to_string(bytes >> 20) + " MiB");
      std::lock_guard<std::mutex> lock(mu_);
      sizes_[p] = rounded;
      live_bytes_ += rounded;
      return p;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = free_.find(rounded);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached_bytes_ -= rounded;
        sizes_[p] = rounded;
        live_bytes_ += rounded;
        return p;
      }
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      // Linux overcommits: without a budget an oversized batch would meet the OOM killer
      // instead of an error. The budget is physical memory, or the `memory_limit` option.
      if (live_bytes_ + rounded > limit_) {
        for (auto& [size, blocks] : free_)  // give cached blocks back before refusing
          for (void* b : blocks) std::free(b);
        free_.clear();
        cached_bytes_ = 0;
        if (live_bytes_ + rounded > limit_)
          throw OutOfMemoryError("cpu: allocating " + std::to_string(bytes >> 20) + " MiB would exceed the device's " +
                                 std::to_string(limit_ >> 20) + " MiB (" + std::to_string(live_bytes_ >> 20) +
                                 " MiB in use); use a smaller batch or model");
      }
    }
    void* p = std::aligned_alloc(64, rounded);
    if (!p) throw OutOfMemoryError("cpu: cannot allocate " + std::to_string(bytes >> 20) + " MiB; use a smaller batch or model");
    std::lock_guard<std::mutex> lock(mu_);
    sizes_[p] = rounded;
    live_bytes_ += rounded;
    return p;
  }
  void release(void* handle) override {
    std::lock_guard<std::mutex> lock(mu_);
    size_t size = sizes_.at(handle);
    sizes_.erase(handle);
    live_bytes_ -= size;
    if (kSanitized || cached_bytes_ + size > info_.memory_bytes / 8) {
      std::free(handle);
      return;
    }
    free_[size].push_back(handle);
    cached_bytes_ += size;
  }
  void copy_in(void* dst, const void* host, size_t bytes) override { std::memcpy(dst, host, bytes); }
  void copy_out(void* host, const void* src, size_t bytes) override { std::memcpy(host, src, bytes); }

  std::unique_ptr<Program> compile(const Kernel& kernel) override {
    std::string source = render_c_family(kernel, dialect_);
    KernelFn fn = compiler_.build(source, kernel.name);
    return std::make_unique<CpuProgram>(fn, std::move(source), kernel, pool_);
  }
  void synchronize() override {}

 private:
  DeviceInfo info_;
  std::mutex mu_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  std::unordered_map<void*, size_t> sizes_;
  size_t cached_bytes_ = 0, live_bytes_ = 0, limit_ = 0;
  ThreadPool pool_;
  CCompiler compiler_;
  CpuDialect dialect_;
};

uint32_t abi_version() { return kPluginAbiVersion; }

ProbeResult probe() {
  std::string cc = CCompiler::find_compiler();
  const char* env = std::getenv("LATHE_CC");
  if (cc.empty() && env && std::strchr(env, '/'))
    return {false, std::string("LATHE_CC = ") + env + " is not an executable file; point it at gcc or clang, or unset it", {}};
  if (cc.empty()) return {false, "no C compiler on PATH: install gcc (apt-get install gcc) or set LATHE_CC", {}};
  return {true, "", {"cpu:0 " + cpu_name() + " (" + std::to_string(thread_count()) + " threads), compiler " + cc}};
}

std::unique_ptr<Device> create(int index, const DeviceOptions& options) {
  if (index != 0) throw Error("cpu has one device, cpu:0; got index " + std::to_string(index));
  return std::make_unique<CpuDevice>(options);
}

}  // namespace

const PluginDescriptor descriptor{kPluginAbiVersion, "cpu", &probe, &create};

}  // namespace lathe::cpu

BOOST_DLL_ALIAS(lathe::cpu::abi_version, lathe_plugin_abi_version)
BOOST_DLL_ALIAS(lathe::cpu::descriptor, lathe_plugin)
