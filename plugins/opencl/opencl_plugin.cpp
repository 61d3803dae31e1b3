// The opencl backend: OpenCL C through the ICD loader, on any OpenCL 1.2+ platform (PoCL on
// CPUs, GPUs from any vendor). Devices are numbered across platforms in discovery order.
#include "cl_discover.h"  // first: it picks the OpenCL version of the headers

#include <CL/cl_ext.h>  // CL_PLATFORM_NOT_FOUND_KHR: the ICD loader found no platform
#include <dlfcn.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/dll/alias.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <unordered_map>
#include <utility>
#include <vector>

#include "lathe/cache.h"
#include "lathe/device.h"
#include "lathe/error.h"
#include "lathe/render_opencl.h"
#include "slab_memory.h"

extern char** environ;

namespace lathe::opencl {
namespace {

namespace fs = std::filesystem;

constexpr const char* kBuildOptions = "-cl-std=CL1.2";

// Programs build in helper processes (lathe_opencl_compiler, beside this plugin) while another
// build of the process is under way: NVIDIA's compiler builds one program at a time per process
// (43 kernels on an H200: 5.4 s from 16 threads, 4.3 s from one; two processes at once took
// 3.5 and 3.8 s each). LATHE_OPENCL_COMPILE_PROCESSES=0 builds everything in this process, =1
// every batch of two or more kernels in a helper (a lone kernel is built faster in-process).
enum class HelperUse { Never, Concurrent, Always };
HelperUse helper_use() {
  const char* mode = std::getenv("LATHE_OPENCL_COMPILE_PROCESSES");
  if (!mode) return HelperUse::Concurrent;
  return std::string(mode) == "0" ? HelperUse::Never : HelperUse::Always;
}

// The helper's path; empty when it is not installed beside the plugin.
const std::string& compiler_helper() {
  static const std::string path = [] {
    Dl_info info{};
    if (!dladdr(reinterpret_cast<void*>(&compiler_helper), &info) || !info.dli_fname) return std::string();
    fs::path p = fs::path(info.dli_fname).parent_path() / "lathe_opencl_compiler";
    return access(p.c_str(), X_OK) == 0 ? p.string() : std::string();
  }();
  return path;
}

std::string error_name(cl_int e) {
  switch (e) {
    case CL_DEVICE_NOT_FOUND: return "CL_DEVICE_NOT_FOUND";
    case CL_OUT_OF_RESOURCES: return "CL_OUT_OF_RESOURCES";
    case CL_OUT_OF_HOST_MEMORY: return "CL_OUT_OF_HOST_MEMORY";
    case CL_MEM_OBJECT_ALLOCATION_FAILURE: return "CL_MEM_OBJECT_ALLOCATION_FAILURE";
    case CL_BUILD_PROGRAM_FAILURE: return "CL_BUILD_PROGRAM_FAILURE";
    case CL_INVALID_VALUE: return "CL_INVALID_VALUE";
    case CL_INVALID_BUFFER_SIZE: return "CL_INVALID_BUFFER_SIZE";
    case CL_INVALID_KERNEL_ARGS: return "CL_INVALID_KERNEL_ARGS";
    case CL_INVALID_WORK_GROUP_SIZE: return "CL_INVALID_WORK_GROUP_SIZE";
    case CL_PLATFORM_NOT_FOUND_KHR: return "CL_PLATFORM_NOT_FOUND_KHR (no OpenCL platform installed)";
    default: return "OpenCL error " + std::to_string(e);
  }
}

void ok(cl_int e, const char* call) {
  if (e == CL_SUCCESS) return;
  // Drivers that commit memory lazily (NVIDIA's) report a full device at the first command
  // that uses a buffer.
  if (e == CL_MEM_OBJECT_ALLOCATION_FAILURE || e == CL_OUT_OF_RESOURCES)
    throw OutOfMemoryError(std::string("opencl: ") + call + " ran out of device memory or resources (" + error_name(e) +
                           "); use a smaller batch or model");
  throw Error(std::string("opencl: ") + call + " failed: " + error_name(e));
}

// A compiled kernel. A replayed step launches each kernel on the same buffers every time, so
// kernel objects keep their arguments set: one object per argument list for the first kBound
// lists a program sees, and a launch on one of them only enqueues; further lists share one
// object whose arguments are set as they change. Once the device frees any buffer for real, a
// handle may come back naming other memory: then every list is bound again.
class ClProgram : public Program {
 public:
  // `kernel` (of `function` in `program`, both owned from here) is the shared object.
  ClProgram(cl_command_queue queue, cl_program program, cl_kernel kernel, std::string function, std::string source, int64_t global,
            int64_t local, bool finish_each, const std::atomic<uint64_t>* frees)
      : queue_(queue), program_(program), shared_{{}, kernel}, function_(std::move(function)), source_(std::move(source)), global_(global),
        local_(local), finish_each_(finish_each), frees_(frees), frees_seen_(frees->load()) {}
  ~ClProgram() override {
    clReleaseKernel(shared_.kernel);
    for (auto& b : bound_) clReleaseKernel(b.kernel);
    clReleaseProgram(program_);
  }
  double run(const std::vector<void*>& buffers, bool timed) override {
    cl_kernel kernel = kernel_for(buffers);
    size_t global = static_cast<size_t>(global_), local = static_cast<size_t>(local_);
    cl_event ev = nullptr;
    ok(clEnqueueNDRangeKernel(queue_, kernel, 1, nullptr, &global, local_ > 0 ? &local : nullptr, 0, nullptr, timed ? &ev : nullptr),
       "clEnqueueNDRangeKernel");
    if (!timed) {
      if (finish_each_) ok(clFinish(queue_), "clFinish");
      return 0;
    }
    ok(clWaitForEvents(1, &ev), "clWaitForEvents");
    cl_ulong start = 0, end = 0;
    clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_START, sizeof start, &start, nullptr);
    clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_END, sizeof end, &end, nullptr);
    clReleaseEvent(ev);
    return static_cast<double>(end - start) * 1e-9;
  }
  const std::string& source() const override { return source_; }

 private:
  static constexpr size_t kBound = 64;
  struct Bound {
    std::vector<void*> args;
    cl_kernel kernel;
  };
  static void set_args(Bound& b, const std::vector<void*>& buffers) {
    for (size_t i = 0; i < buffers.size(); ++i) {
      cl_mem m = static_cast<cl_mem>(buffers[i]);
      ok(clSetKernelArg(b.kernel, static_cast<cl_uint>(i), sizeof m, &m), "clSetKernelArg");
    }
    b.args = buffers;
  }
  cl_kernel kernel_for(const std::vector<void*>& buffers) {
    if (uint64_t frees = frees_->load(); frees != frees_seen_) {
      for (auto& b : bound_) clReleaseKernel(b.kernel);
      bound_.clear();
      shared_.args.clear();
      frees_seen_ = frees;
    }
    for (auto& b : bound_)
      if (b.args == buffers) return b.kernel;
    if (bound_.size() < kBound) {
      cl_int e = CL_SUCCESS;
      Bound b{{}, clCreateKernel(program_, function_.c_str(), &e)};
      ok(e, "clCreateKernel");
      bound_.push_back(b);
      set_args(bound_.back(), buffers);
      return b.kernel;
    }
    if (shared_.args != buffers) set_args(shared_, buffers);
    return shared_.kernel;
  }

  cl_command_queue queue_;
  cl_program program_;
  Bound shared_;  // for argument lists beyond the first kBound
  std::string function_;
  std::string source_;
  int64_t global_, local_;  // local_ 0: the driver chooses the work-group size
  bool finish_each_;
  const std::atomic<uint64_t>* frees_;  // the device's count of buffers freed for real
  uint64_t frees_seen_;
  std::vector<Bound> bound_;
};

class ClDevice : public Device {
 public:
  ClDevice(const Found& f) : found_(f) {
    cl_int e;
    context_ = clCreateContext(nullptr, 1, &f.device, nullptr, nullptr, &e);
    ok(e, "clCreateContext");
    queue_ = clCreateCommandQueue(context_, f.device, CL_QUEUE_PROFILING_ENABLE, &e);
    ok(e, "clCreateCommandQueue");
    cl_uint align_bits = 0;
    cl_ulong max_alloc = 0;
    clGetDeviceInfo(f.device, CL_DEVICE_MEM_BASE_ADDR_ALIGN, sizeof align_bits, &align_bits, nullptr);
    clGetDeviceInfo(f.device, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof max_alloc, &max_alloc, nullptr);
    // The first slab's size, for experiments; 0: every buffer an allocation of its own.
    const char* slab_mib = std::getenv("LATHE_OPENCL_SLAB_MIB");
    slabs_ = SlabMemory(context_, align_bits / 8, max_alloc, slab_mib ? std::stoull(slab_mib) << 20 : size_t{256} << 20);
    cl_ulong mem = 0;
    clGetDeviceInfo(f.device, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof mem, &mem, nullptr);
    cl_uint cus = 0;
    clGetDeviceInfo(f.device, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cus, &cus, nullptr);
    info_.name = f.platform_name + " / " + f.device_name;
    info_.memory_bytes = mem;
    info_.compute_units = static_cast<int>(cus);
    info_.dtypes = {DType::Bool, DType::UInt8, DType::Int32, DType::UInt32, DType::Int64, DType::Float16, DType::BFloat16, DType::Float32};
    info_.parallel_all_outer_loops = true;
    size_t max_group = 0;
    cl_ulong local_mem = 0;
    clGetDeviceInfo(f.device, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof max_group, &max_group, nullptr);
    clGetDeviceInfo(f.device, CL_DEVICE_LOCAL_MEM_SIZE, sizeof local_mem, &local_mem, nullptr);
    info_.max_local_size = static_cast<int64_t>(std::min<size_t>(max_group, 256));  // 256: room for registers
    info_.local_memory_bytes = static_cast<int64_t>(local_mem);
    driver_ = device_string(f.device, CL_DRIVER_VERSION) + "/" + device_string(f.device, CL_DEVICE_VERSION);
    info_.matrix_units = matrix_units(f);
    // PoCL caches compiled kernels itself, by source; its program binaries are not portable
    // outside that cache.
    bool pocl = f.platform_name.find("Portable Computing Language") != std::string::npos;
    binary_cache_ = !pocl;
    // PoCL compiles a kernel's work-group function when it first runs, on its own thread; a
    // launch still queued at process exit would compile inside LLVM as it is torn down. On a
    // CPU device waiting for each launch costs nothing worth keeping.
    finish_each_launch_ = pocl;
    if (const char* env = std::getenv("LATHE_OPENCL_BINARY_CACHE")) binary_cache_ = std::string(env) != "0";
  }
  const DeviceInfo& info() const override { return info_; }

  // NVIDIA's platform from compute capability 8.0 on passes mma.sync through inline PTX.
  // LATHE_OPENCL_MATRIX_UNITS: auto (that), off, or emulate (a unit built from local memory on
  // any device, for tests).
  static std::vector<MatrixUnit> matrix_units(const Found& f) {
    const char* env = std::getenv("LATHE_OPENCL_MATRIX_UNITS");
    const std::string mode = env ? env : "auto";
    check(mode == "auto" || mode == "off" || mode == "emulate",
          "LATHE_OPENCL_MATRIX_UNITS=" + mode + ": use auto, off or emulate");
    if (mode == "off") return {};
    if (mode == "emulate") {
      MatrixUnit u = mma_sync_m16n8k16_bf16();
      u.native = false;
      return {u};
    }
    if (f.platform_name.find("NVIDIA") == std::string::npos) return {};
    cl_uint major = 0;  // CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV (cl_nv_device_attribute_query)
    if (clGetDeviceInfo(f.device, 0x4000, sizeof major, &major, nullptr) != CL_SUCCESS || major < 8) return {};
    return {mma_sync_m16n8k16_bf16()};
  }

  // Released buffers are kept by size and handed out again: a training step allocates and
  // frees hundreds of them, and clCreateBuffer costs far more than a lookup. Reuse is safe
  // because the queue is in order: a kernel still using the old contents runs before any
  // command on the new owner.
  void* allocate(size_t bytes) override {
    {
      std::lock_guard<std::mutex> lock(pool_mu_);
      auto it = pool_.find(bytes);
      if (it != pool_.end() && !it->second.empty()) {
        cl_mem m = it->second.back();
        it->second.pop_back();
        pooled_bytes_ -= bytes;
        return m;
      }
    }
    // Some drivers (NVIDIA's) accept any size and fail only when the memory is first used.
    if (bytes > slabs_.max_alloc())
      throw OutOfMemoryError("opencl: cannot allocate " + std::to_string(bytes >> 20) + " MiB on " + info_.name + ", whose largest buffer is " +
                             std::to_string(slabs_.max_alloc() >> 20) + " MiB; use a smaller batch or model");
    cl_int e;
    std::unique_lock<std::mutex> lock(pool_mu_);
    cl_mem m = slabs_.allocate(bytes, &e);
    bool full = e == CL_MEM_OBJECT_ALLOCATION_FAILURE || e == CL_OUT_OF_RESOURCES || e == CL_OUT_OF_HOST_MEMORY;
    if (full) {
      lock.unlock();
      bool drained = drain_pool();
      lock.lock();
      if (slabs_.release_empty_slabs() || drained) m = slabs_.allocate(bytes, &e);
    }
    if (e == CL_MEM_OBJECT_ALLOCATION_FAILURE || e == CL_OUT_OF_RESOURCES || e == CL_OUT_OF_HOST_MEMORY || e == CL_INVALID_BUFFER_SIZE)
      throw OutOfMemoryError("opencl: cannot allocate " + std::to_string(bytes >> 20) + " MiB on " + info_.name + " (" +
                             error_name(e) + "); use a smaller batch or model");
    ok(e, "clCreateSubBuffer");
    sizes_[m] = bytes;
    return m;
  }
  void release(void* handle) override {
    cl_mem m = static_cast<cl_mem>(handle);
    std::lock_guard<std::mutex> lock(pool_mu_);
    size_t bytes = sizes_.at(m);
    if (pooled_bytes_ + bytes > info_.memory_bytes / 4) {
      sizes_.erase(m);
      slabs_.release(m);
      ++frees_;
      return;
    }
    pool_[bytes].push_back(m);
    pooled_bytes_ += bytes;
  }
  void copy_in(void* dst, const void* host, size_t bytes) override {
    ok(clEnqueueWriteBuffer(queue_, static_cast<cl_mem>(dst), CL_TRUE, 0, bytes, host, 0, nullptr, nullptr), "clEnqueueWriteBuffer");
  }
  void copy_out(void* host, const void* src, size_t bytes) override {
    ok(clEnqueueReadBuffer(queue_, static_cast<cl_mem>(const_cast<void*>(src)), CL_TRUE, 0, bytes, host, 0, nullptr, nullptr),
       "clEnqueueReadBuffer");
  }

  std::unique_ptr<Program> compile(const Kernel& kernel) override { return std::move(compile_many({&kernel})[0]); }

  // Kernels with a cached binary load on their own; the others build as one program, each
  // function renamed to be unique in it: a driver's compiler may cost more per call than per
  // kernel. Each kernel's cache entry then refers to the shared binary and its function name.
  std::vector<std::unique_ptr<Program>> compile_many(const std::vector<const Kernel*>& kernels) override {
    std::vector<std::unique_ptr<Program>> out(kernels.size());
    std::vector<std::string> sources(kernels.size()), keys(kernels.size());
    std::vector<size_t> missing;
    for (size_t i = 0; i < kernels.size(); ++i) {
      sources[i] = render_c_family(*kernels[i], dialect_);
      keys[i] = content_hash(sources[i] + info_.name + driver_);
      auto [program, function] = load_cached(keys[i], kernels[i]->name);
      if (program) out[i] = make_program(program, function, *kernels[i], sources[i]);
      else missing.push_back(i);
    }
    if (missing.empty()) return out;
    std::string source = sources[missing[0]], key = keys[missing[0]];
    std::vector<std::string> functions = {kernels[missing[0]]->name};
    if (missing.size() > 1) {
      const std::string prelude = dialect_.prelude();
      source = prelude;
      functions.clear();
      for (size_t k = 0; k < missing.size(); ++k) {
        // The rendered source with its function renamed (the name appears once, in the signature).
        const std::string& name = kernels[missing[k]]->name;
        std::string body = sources[missing[k]].substr(prelude.size());
        functions.push_back(name + "_" + std::to_string(k));
        body.replace(body.find("__kernel void " + name + "("), 15 + name.size(), "__kernel void " + functions.back() + "(");
        source += body;
      }
      key = content_hash(source + info_.name + driver_);
    }
    cl_program program = nullptr;
    {
      struct Building {  // this device's builds under way
        std::atomic<int>& n;
        int others;
        explicit Building(std::atomic<int>& count) : n(count), others(count.fetch_add(1)) {}
        ~Building() { n.fetch_sub(1); }
      } building(builds_);
      HelperUse use = helper_use();
      if (binary_cache_ && (use == HelperUse::Always ? missing.size() > 1 : use == HelperUse::Concurrent && building.others > 0) &&
          build_in_helper(source, key))
        program = load_cached(key, functions[0]).first;
      if (!program) program = build(source, missing.size() > 1 ? std::to_string(missing.size()) + " kernels" : "kernel " + functions[0], key);
    }
    for (size_t k = 0; k < missing.size(); ++k) {
      size_t i = missing[k];
      if (binary_cache_ && missing.size() > 1) write_atomically((fs::path(cache_dir("opencl")) / (keys[i] + ".ref")).string(), key + "\n" + functions[k]);
      out[i] = make_program(program, functions[k], *kernels[i], sources[i]);
    }
    clReleaseProgram(program);  // each Program holds its own reference
    return out;
  }
  void synchronize() override { ok(clFinish(queue_), "clFinish"); }

  // Builds OpenCL C for this device (the build log and a copy of the source on failure) and
  // keeps its binary under `key`.
  cl_program build(const std::string& source, const std::string& what, const std::string& key) {
    cl_int e;
    const char* text = source.c_str();
    cl_program program = clCreateProgramWithSource(context_, 1, &text, nullptr, &e);
    ok(e, "clCreateProgramWithSource");
    if (clBuildProgram(program, 1, &found_.device, kBuildOptions, nullptr, nullptr) != CL_SUCCESS) {
      std::string log = build_log(program, found_.device);
      clReleaseProgram(program);
      fs::path src = fs::path(cache_dir("opencl")) / (key + ".cl");
      std::ofstream(src) << source;
      throw Error("opencl: " + what + " failed to build on " + info_.name + " (source: " + src.string() + "):\n" + log);
    }
    if (std::string bytes = binary_cache_ ? program_binary(program) : ""; !bytes.empty())
      write_atomically((fs::path(cache_dir("opencl")) / (key + ".bin")).string(), bytes);  // concurrent processes may build it too
    return program;
  }

  // Builds `source` into the cache's binary for `key` in a helper process; false (with a
  // warning when the helper ran and failed) if that did not work out.
  bool build_in_helper(const std::string& source, const std::string& key) {
    const std::string& helper = compiler_helper();
    if (helper.empty()) return false;
    static std::atomic<uint64_t> serial{0};
    const fs::path dir = cache_dir("opencl");
    const fs::path src = dir / (key + ".cl.tmp" + std::to_string(getpid()) + "_" + std::to_string(serial++));
    std::ofstream(src) << source;
    std::vector<std::string> args = {helper, found_.platform_name, found_.device_name, kBuildOptions, src.string(), (dir / (key + ".bin")).string()};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t quiet;  // a failed build is built again here, which reports it
    posix_spawn_file_actions_init(&quiet);
    posix_spawn_file_actions_addopen(&quiet, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int status = -1;
    bool spawned = posix_spawn(&pid, helper.c_str(), &quiet, nullptr, argv.data(), environ) == 0;
    bool built = spawned && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    posix_spawn_file_actions_destroy(&quiet);
    std::error_code ignored;
    fs::remove(src, ignored);
    if (spawned && !built && !(WIFEXITED(status) && WEXITSTATUS(status) == 1))
      std::fprintf(stderr, "opencl: %s failed (status %d); building in this process\n", helper.c_str(), status);
    return built;
  }

  // A kernel's cached program (a new reference) and its function name, from its own binary or
  // through a reference to a shared one; null when there is none or it no longer loads.
  std::pair<cl_program, std::string> load_cached(const std::string& key, const std::string& name) {
    if (!binary_cache_) return {nullptr, ""};
    fs::path dir = fs::path(cache_dir("opencl"));
    std::string binary = key, function = name;
    std::ifstream ref(dir / (key + ".ref"));
    if (ref) std::getline(ref, binary), std::getline(ref, function);
    std::lock_guard<std::mutex> lock(loaded_mu_);
    auto it = loaded_.find(binary);
    if (it == loaded_.end()) {
      std::ifstream in(dir / (binary + ".bin"), std::ios::binary);
      if (!in) return {nullptr, ""};
      std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      const unsigned char* p = reinterpret_cast<const unsigned char*>(bytes.data());
      size_t n = bytes.size();
      cl_int e, status;
      cl_program program = clCreateProgramWithBinary(context_, 1, &found_.device, &n, &p, &status, &e);
      if (e != CL_SUCCESS || status != CL_SUCCESS || clBuildProgram(program, 1, &found_.device, "", nullptr, nullptr) != CL_SUCCESS) {
        if (program) clReleaseProgram(program);
        return {nullptr, ""};
      }
      it = loaded_.emplace(binary, program).first;  // kept: other kernels may live in it
    }
    clRetainProgram(it->second);
    return {it->second, function};
  }

  std::unique_ptr<Program> make_program(cl_program program, const std::string& function, const Kernel& kernel, std::string source) {
    cl_int e;
    cl_kernel k = clCreateKernel(program, function.c_str(), &e);
    ok(e, "clCreateKernel");
    clRetainProgram(program);
    return std::make_unique<ClProgram>(queue_, program, k, function, std::move(source), std::max<int64_t>(1, kernel.global_size), kernel.local_size,
                                       finish_each_launch_, &frees_);
  }

  // Frees every pooled buffer; true when there was any.
  bool drain_pool() {
    std::lock_guard<std::mutex> lock(pool_mu_);
    bool any = pooled_bytes_ > 0;
    for (auto& [bytes, list] : pool_)
      for (cl_mem m : list) sizes_.erase(m), slabs_.release(m), ++frees_;
    pool_.clear();
    pooled_bytes_ = 0;
    return any;
  }

 private:
  Found found_;
  cl_context context_ = nullptr;
  cl_command_queue queue_ = nullptr;
  DeviceInfo info_;
  std::string driver_;
  bool binary_cache_ = true, finish_each_launch_ = false;
  OpenCLDialect dialect_;
  std::mutex pool_mu_;
  std::unordered_map<size_t, std::vector<cl_mem>> pool_;
  std::unordered_map<cl_mem, size_t> sizes_;
  SlabMemory slabs_{nullptr, 0, 0};  // set up with the context
  size_t pooled_bytes_ = 0;
  std::atomic<uint64_t> frees_{0};  // buffers released to the driver (kernel arguments bound to them are stale)
  std::atomic<int> builds_{0};      // compile_many calls under way
  std::mutex loaded_mu_;
  std::unordered_map<std::string, cl_program> loaded_;  // binaries loaded from the cache, by key
};

uint32_t abi_version() { return kPluginAbiVersion; }

ProbeResult probe() {
  std::vector<Found> all;
  try {
    all = discover();
  } catch (const std::exception& e) {
    return {false, e.what(), {}};
  }
  if (all.empty())
    return {false, "no OpenCL platform with a device was found (install an ICD such as pocl-opencl-icd, or set OCL_ICD_VENDORS)", {}};
  ProbeResult r{true, "", {}};
  for (size_t i = 0; i < all.size(); ++i) r.devices.push_back("opencl:" + std::to_string(i) + " " + all[i].platform_name + " / " + all[i].device_name);
  return r;
}

std::unique_ptr<Device> create(int index, const DeviceOptions& options) {
  std::string platform, device_name;
  for (auto& [k, v] : options) {
    if (k == "platform") platform = v;
    else if (k == "device") device_name = v;
    else throw Error("opencl: unknown option '" + k + "' (known: platform, a name substring or index; device, a name substring)");
  }
  std::vector<Found> all = discover(platform);
  if (!device_name.empty())
    std::erase_if(all, [&](const Found& f) { return f.device_name.find(device_name) == std::string::npos; });
  if (all.empty())
    throw Error("opencl: no device on a platform matching '" + platform + "'" + (device_name.empty() ? "" : " named like '" + device_name + "'") +
                "; run `lathe backends` to list them");
  if (index < 0 || index >= static_cast<int>(all.size()))
    throw Error("opencl: device index " + std::to_string(index) + " is out of range; " + std::to_string(all.size()) + " device(s) found");
  return std::make_unique<ClDevice>(all[index]);
}

}  // namespace

const PluginDescriptor descriptor{kPluginAbiVersion, "opencl", &probe, &create};

}  // namespace lathe::opencl

BOOST_DLL_ALIAS(lathe::opencl::abi_version, lathe_plugin_abi_version)
BOOST_DLL_ALIAS(lathe::opencl::descriptor, lathe_plugin)
