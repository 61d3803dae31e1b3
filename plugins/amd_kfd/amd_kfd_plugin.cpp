// The amd_kfd backend: kernels rendered in the AMDGPU dialect, compiled to code objects with
// clang/lld, loaded by our own ELF loader and dispatched on an AQL queue created through the
// KFD; no ROCm runtime. With LATHE_AMD_KFD_DRIVER=test (or the option driver = "test") the
// same code runs against the test driver, a KFD without a GPU (test support: see driver.h).
#include <unistd.h>

#include <boost/dll/alias.hpp>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>

#include <spdlog/spdlog.h>

#include "amdgpu_dialect.h"
#include "code_object.h"
#include "kfd_gpu.h"
#include "lathe/cache.h"
#include "lathe/device.h"
#include "lathe/error.h"
#include "driver.h"

namespace lathe::amd {
namespace {

namespace fs = std::filesystem;

constexpr size_t kKernargSlot = 256, kKernargBytes = 4 << 20, kStagingBytes = 64 << 20;

// Which driver: the kernel's ("kfd"), or test support without a GPU: "test" (CPU twins) or
// "emulator" (the machine code on the instruction-level emulator).
std::string driver_choice(const DeviceOptions& options) {
  auto it = options.find("driver");
  if (it != options.end()) return it->second;
  const char* env = std::getenv("LATHE_AMD_KFD_DRIVER");
  return env && *env ? env : "kfd";
}
bool test_mode(const DeviceOptions& options) {
  const std::string d = driver_choice(options);
  if (d != "kfd" && d != "test" && d != "emulator")
    throw Error("amd_kfd: unknown driver '" + d + "' (LATHE_AMD_KFD_DRIVER or the option driver: kfd, test or emulator)");
  return d != "kfd";
}

class AmdDevice;

class AmdProgram : public Program {
 public:
  AmdProgram(AmdDevice& dev, GpuMemory code, const KernelInfo& info, std::string source, int pointer_args, uint32_t work_items,
             uint16_t group)
      : dev_(dev), code_(code), info_(info), source_(std::move(source)), pointer_args_(pointer_args), work_items_(work_items), group_(group) {}
  double run(const std::vector<void*>& buffers, bool timed) override;
  const std::string& source() const override { return source_; }
  // Queues the kernel over `work_items` with these kernarg words (buffer addresses, scalars).
  void launch(const std::vector<uint64_t>& words, uint32_t work_items);

 private:
  AmdDevice& dev_;
  GpuMemory code_;
  KernelInfo info_;
  std::string source_;
  int pointer_args_;
  uint32_t work_items_;
  uint16_t group_;
};

class AmdDevice : public Device {
 public:
  AmdDevice(int index, const DeviceOptions& options) {
    std::string clang, lld;
    for (auto& [k, v] : options) {
      if (k == "clang") clang = v;
      else if (k == "lld") lld = v;
      else if (k == "target") target_override_ = v;
      else if (k != "driver")
        throw Error("amd_kfd: unknown option '" + k + "' (known: driver = \"kfd\", \"test\" or \"emulator\", clang, lld, target such as \"gfx950\")");
    }
    driver_ = test_mode(options) ? test_driver(driver_choice(options) == "emulator") : system_driver();
    twins_ = driver_->runs_twins();
    std::vector<GpuNode> nodes = read_topology(driver_->topology_root());
    if (index < 0 || index >= static_cast<int>(nodes.size()))
      throw Error("amd_kfd: device index " + std::to_string(index) + " is out of range; " + std::to_string(nodes.size()) + " GPU(s) found");
    tools_ = find_toolchain(clang, lld);
    gpu_ = std::make_unique<KfdGpu>(*driver_, nodes[index]);
    const GpuNode& n = gpu_->node();
    info_.name = gpu_->description();
    info_.memory_bytes = gpu_->vram_bytes();
    info_.compute_units = n.compute_units;
    info_.dtypes = {DType::Bool, DType::UInt8, DType::Int32, DType::UInt32, DType::Int64, DType::Float16, DType::BFloat16, DType::Float32};
    info_.parallel_all_outer_loops = true;
    // CPU twins run one work-item at a time: no work-groups against the test driver.
    info_.max_local_size = twins_ ? 1 : kFlatGroupSize;
    info_.local_memory_bytes = twins_ ? 0 : int64_t{n.lds_size_kb} * 1024;
    if (!twins_) info_.matrix_units = matrix_units_of(target());
    kernargs_ = gpu_->alloc(kKernargBytes, MemoryKind::Gtt, true);
    staging_ = gpu_->alloc(kStagingBytes, MemoryKind::Gtt, true);
    blit_ = build(R"(__kernel void lathe_copy(__global uint* dst, __global const uint* src, ulong words) {
  ulong i = (ulong)__builtin_amdgcn_workgroup_id_x() * 256 + __builtin_amdgcn_workitem_id_x();
  if (i < words) dst[i] = src[i];
}
)", "lathe_copy", 2, 1, [](const std::vector<void*>& a, const uint8_t* kernarg, uint64_t) {
      uint64_t words;
      std::memcpy(&words, kernarg + 16, 8);
      std::memcpy(a[0], a[1], words * 4);
    });
  }
  ~AmdDevice() override {
    blit_.reset();
    gpu_.reset();  // frees everything in reverse, then the queue, event and VM
  }

  const DeviceInfo& info() const override { return info_; }
  std::string target() const { return target_override_.empty() ? gpu_->node().target : target_override_; }

  void* allocate(size_t bytes) override { return new GpuMemory(gpu_->alloc((bytes + 3) / 4 * 4, MemoryKind::Vram, false)); }
  void release(void* handle) override {
    auto* m = static_cast<GpuMemory*>(handle);
    // A queued kernel may still use it. Buffers are released by destructors, also while an
    // earlier failure unwinds: a failed wait is logged here, not thrown (that would terminate).
    try {
      synchronize();
    } catch (const Error& e) {
      spdlog::error("amd_kfd: releasing a buffer after a failed dispatch: {}", e.what());
    }
    gpu_->free(*m);
    delete m;
  }
  void copy_in(void* dst, const void* host, size_t bytes) override {
    auto* m = static_cast<GpuMemory*>(dst);
    for (size_t off = 0; off < bytes; off += kStagingBytes) {
      size_t n = std::min(kStagingBytes, bytes - off);
      synchronize();
      std::memcpy(staging_.host, static_cast<const char*>(host) + off, n);
      blit_->launch({m->va + off, staging_.va, (n + 3) / 4}, copy_items(n));
    }
    synchronize();
  }
  void copy_out(void* host, const void* src, size_t bytes) override {
    auto* m = static_cast<const GpuMemory*>(src);
    for (size_t off = 0; off < bytes; off += kStagingBytes) {
      size_t n = std::min(kStagingBytes, bytes - off);
      blit_->launch({staging_.va, m->va + off, (n + 3) / 4}, copy_items(n));
      synchronize();
      std::memcpy(static_cast<char*>(host) + off, staging_.host, n);
    }
  }

  std::unique_ptr<Program> compile(const Kernel& kernel) override {
    std::string source = render_c_family(kernel, dialect_);
    // A kernel without a global loop (one output) is one work-item: more would all run its body
    // and race on the same element.
    uint32_t items = kernel.local_size > 0 ? static_cast<uint32_t>(kernel.global_size)
                     : kernel.global_size <= 1 ? 1
                                               : static_cast<uint32_t>((kernel.global_size + kFlatGroupSize - 1) / kFlatGroupSize * kFlatGroupSize);
    uint16_t group = static_cast<uint16_t>(kernel.local_size > 0 ? kernel.local_size : std::min<uint32_t>(items, kFlatGroupSize));
    Twin twin;  // on a driver without a GPU: the same IR run on the CPU
    if (twins_) twin = driver_->kernel_twin(kernel);
    return build(source, kernel.name, static_cast<int>(kernel.params.size()), items, twin, group);
  }
  void synchronize() override { gpu_->wait_idle(); }

  // A kernarg slot for the next dispatch: its host pointer and GPU address.
  std::pair<uint8_t*, uint64_t> kernarg_slot() {
    if (next_kernarg_ + kKernargSlot > kKernargBytes) {
      synchronize();  // every earlier dispatch has read its arguments
      next_kernarg_ = 0;
    }
    size_t off = next_kernarg_;
    next_kernarg_ += kKernargSlot;
    return {static_cast<uint8_t*>(kernargs_.host) + off, kernargs_.va + off};
  }
  KfdGpu& gpu() { return *gpu_; }

 private:
  // The copy kernel moves one 32-bit word per work-item, in whole groups.
  static uint32_t copy_items(size_t bytes) {
    return static_cast<uint32_t>(((bytes + 3) / 4 + kFlatGroupSize - 1) / kFlatGroupSize * kFlatGroupSize);
  }
  std::unique_ptr<AmdProgram> build(const std::string& source, const std::string& name, int pointer_args, uint32_t items,
                                    Twin twin, uint16_t group = kFlatGroupSize) {
    std::vector<uint8_t> elf = cached_code_object(source);
    CodeObject co = read_code_object(elf);
    const KernelInfo& k = co.kernel(name);
    if (k.private_segment_size > 0)
      throw Error("amd_kfd: kernel " + name + " needs " + std::to_string(k.private_segment_size) +
                  " bytes of scratch per work-item (register spills); this backend does not set up scratch memory yet");
    GpuMemory code = gpu_->alloc(co.image.size(), MemoryKind::Gtt, true, true);
    std::vector<uint8_t> placed = co.placed_at(code.va);
    std::memcpy(code.host, placed.data(), placed.size());
    driver_->code_loaded(co, code.va);
    if (twins_) driver_->register_twin(co, name, pointer_args, std::move(twin));
    return std::make_unique<AmdProgram>(*this, code, k, source, pointer_args, items, group);
  }

  static bool needs_scratch(const CodeObject& co) {
    for (const KernelInfo& k : co.kernels)
      if (k.private_segment_size > 0) return true;
    return false;
  }

  // Code objects on disk by source, target and toolchain: clang takes ~0.1 s a kernel.
  std::vector<uint8_t> cached_code_object(const std::string& source) {
    const std::string dir = cache_dir("amd_kfd");
    fs::path file = fs::path(dir) / (content_hash(source + target() + tools_.clang + tools_.lld) + "." + target() + ".co");
    std::ifstream in(file, std::ios::binary);
    if (in) {
      std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      try {
        if (!needs_scratch(read_code_object(bytes))) return bytes;
      } catch (const Error&) {  // damaged: rebuild
      }
    }
    std::vector<uint8_t> bytes = compile_code_object(source, target(), tools_, dir);
    // Unrolling can hoist so many loads that registers spill to scratch, which this backend does
    // not set up: build again with less unrolling, then none, before refusing the kernel.
    for (const char* flags : {"-mllvm -unroll-threshold=150", "-fno-unroll-loops"}) {
      if (!needs_scratch(read_code_object(bytes))) break;
      bytes = compile_code_object(source, target(), tools_, dir, flags);
    }
    write_atomically(file.string(), std::string(bytes.begin(), bytes.end()));
    return bytes;
  }

  std::unique_ptr<Driver> driver_;
  bool twins_ = false;  // the driver runs kernels as CPU twins (the test driver)
  std::unique_ptr<KfdGpu> gpu_;
  Toolchain tools_;
  std::string target_override_;
  DeviceInfo info_;
  GpuMemory kernargs_, staging_;
  size_t next_kernarg_ = 0;
  std::unique_ptr<AmdProgram> blit_;
  AmdgpuDialect dialect_;
};

void AmdProgram::launch(const std::vector<uint64_t>& words, uint32_t work_items) {
  auto [host, va] = dev_.kernarg_slot();
  std::memset(host, 0, kKernargSlot);
  std::memcpy(host, words.data(), std::min(kKernargSlot, words.size() * 8));
  // The group segment the descriptor asks for, as the HSA runtime passes it.
  dev_.gpu().dispatch(code_.va + info_.descriptor_offset, va, work_items, group_, info_.descriptor.group_segment_fixed_size,
                      info_.private_segment_size);
}

double AmdProgram::run(const std::vector<void*>& buffers, bool timed) {
  std::vector<uint64_t> words;
  for (void* b : buffers) words.push_back(static_cast<GpuMemory*>(b)->va);
  check(words.size() * 8 <= kKernargSlot, "amd_kfd: kernel has too many buffers for a kernarg slot");
  auto start = std::chrono::steady_clock::now();
  launch(words, work_items_);
  if (!timed) return 0;
  dev_.synchronize();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

uint32_t abi_version() { return kPluginAbiVersion; }

ProbeResult probe() {
  Toolchain tools = find_toolchain();
  std::string no_tools = tools.clang.empty() || tools.lld.empty()
                             ? "no clang/ld.lld for AMDGPU code objects (apt-get install clang-19 lld-19, or set LATHE_AMDGPU_CLANG and LATHE_AMDGPU_LLD)"
                             : "";
  bool testing;
  try {
    testing = test_mode({});
  } catch (const Error& e) {
    return {false, e.what(), {}};
  }
  if (testing) {
    if (!no_tools.empty()) return {false, no_tools, {}};
    if (driver_choice({}) == "emulator")
      return {true, "", {"amd_kfd:0 AMD gfx942 through the emulator driver (LATHE_AMD_KFD_DRIVER=emulator): no GPU, machine code runs on the instruction-level emulator"}};
    return {true, "", {"amd_kfd:0 AMD gfx942 through the test driver (LATHE_AMD_KFD_DRIVER=test): no GPU, kernels run as CPU twins"}};
  }
  if (access("/dev/kfd", F_OK) != 0)
    return {false, "no /dev/kfd: this machine has no AMD GPU or the amdgpu kernel driver is not loaded (LATHE_AMD_KFD_DRIVER=test "
                   "runs the backend against its test driver)", {}};
  if (access("/dev/kfd", R_OK | W_OK) != 0) return {false, "/dev/kfd is not readable and writable: add your user to the render group", {}};
  std::vector<GpuNode> nodes;
  try {
    nodes = read_topology(system_driver()->topology_root());
  } catch (const std::exception& e) {
    return {false, e.what(), {}};
  }
  if (nodes.empty()) return {false, "/dev/kfd exists but the KFD topology lists no GPU node", {}};
  if (!no_tools.empty()) return {false, no_tools, {}};
  ProbeResult r{true, "", {}};
  for (size_t i = 0; i < nodes.size(); ++i)
    r.devices.push_back("amd_kfd:" + std::to_string(i) + " " + nodes[i].target + ", " + std::to_string(nodes[i].compute_units) + " CUs, " +
                        std::to_string(nodes[i].vram_bytes >> 30) + " GiB (gpu_id " + std::to_string(nodes[i].gpu_id) + ")");
  return r;
}

std::unique_ptr<Device> create(int index, const DeviceOptions& options) { return std::make_unique<AmdDevice>(index, options); }

}  // namespace

const PluginDescriptor descriptor{kPluginAbiVersion, "amd_kfd", &probe, &create};

}  // namespace lathe::amd

BOOST_DLL_ALIAS(lathe::amd::abi_version, lathe_plugin_abi_version)
BOOST_DLL_ALIAS(lathe::amd::descriptor, lathe_plugin)
