// Dispatches on the emulator: the kernel found by its entry address, decoded once from the
// code in GPU memory, run over memory that only the live GPU allocations make up.
#include "emulator_driver.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>

#include "emulator/gcn_dispatch.h"
#include "lathe/runtime.h"

namespace lathe::amd {
namespace {

// Global memory for the emulator: the driver's GPU allocations, the last one remembered
// because consecutive accesses mostly hit the same buffer.
class AllocationMemory : public emu::Memory {
 public:
  explicit AllocationMemory(std::function<bool(uint64_t, uint64_t, uint64_t&, uint64_t&)> find) : find_(std::move(find)) {}
  uint8_t* global(uint64_t va, uint64_t bytes) override {
    if (va >= lo_ && va + bytes <= hi_ && va + bytes >= va) return reinterpret_cast<uint8_t*>(va);
    uint64_t lo, hi;
    if (!find_(va, bytes, lo, hi)) return nullptr;
    lo_ = lo, hi_ = hi;
    return reinterpret_cast<uint8_t*>(va);
  }

 private:
  std::function<bool(uint64_t, uint64_t, uint64_t&, uint64_t&)> find_;
  uint64_t lo_ = 1, hi_ = 0;
};

// With LATHE_DEBUG=1, what every emulator driver of the process executed, said at exit (the
// devices, and so their drivers, are never destroyed).
struct ExitReport {
  std::mutex mu;
  EmulatorDriver::Counters total;
  ~ExitReport() {
    if (debug_level() < 1 || total.dispatches == 0) return;
    std::fprintf(stderr, "amd_kfd emulator: %llu dispatches, %llu waves, %.3g wave instructions in %.2f s (%.3g per second)\n",
                 static_cast<unsigned long long>(total.dispatches), static_cast<unsigned long long>(total.waves),
                 static_cast<double>(total.instructions), total.seconds, total.instructions / std::max(total.seconds, 1e-9));
  }
};
ExitReport& exit_report() {
  static ExitReport report;
  return report;
}

std::string target_of(const std::string& triple) {
  const size_t at = triple.rfind('-');
  return at == std::string::npos ? triple : triple.substr(at + 1);
}

}  // namespace

void EmulatorDriver::code_loaded(const CodeObject& code, uint64_t va) {
  std::lock_guard<std::mutex> lock(kernels_mu_);
  for (const KernelInfo& k : code.kernels) kernels_[va + k.entry_offset] = Loaded{k.name, target_of(code.target), k.code_size, nullptr};
}

EmulatorDriver::Counters EmulatorDriver::counters() const {
  std::lock_guard<std::mutex> lock(kernels_mu_);
  return counters_;
}

bool EmulatorDriver::execute(const KernelDispatchPacket& p, uint64_t packet_va, const KernelDescriptor& kd) {
  const uint64_t entry = p.kernel_object + static_cast<uint64_t>(kd.kernel_code_entry_byte_offset);
  std::shared_ptr<const emu::Program> program;
  {
    std::lock_guard<std::mutex> lock(kernels_mu_);
    auto it = kernels_.find(entry);
    if (it == kernels_.end())
      return fail("the kernel descriptor at kernel_object points at " + std::to_string(entry) + ", where no loaded code object has a kernel"), false;
    Loaded& k = it->second;
    if (!gpu_range(entry, k.code_size)) return fail("kernel " + k.name + "'s code is not in GPU memory"), false;
    if (!k.program) {
      try {
        k.program = std::make_shared<const emu::Program>(
            emu::load_program(emu::family_of(k.target), reinterpret_cast<const uint8_t*>(entry), k.code_size, k.name));
      } catch (const Error& e) {
        return fail(std::string("kernel ") + k.name + ": " + e.what()), false;
      }
    }
    program = k.program;
  }
  if (!segments_ok(p, kd)) return false;
  emu::DispatchShape shape;
  const uint16_t* group = &p.workgroup_size_x;
  const uint32_t* grid = &p.grid_size_x;
  for (int d = 0; d < 3; ++d) shape.group[d] = group[d], shape.grid[d] = grid[d];
  shape.group_segment_bytes = p.group_segment_size;
  shape.kernarg_address = p.kernarg_address;
  shape.packet_address = packet_va;
  AllocationMemory memory([this](uint64_t va, uint64_t bytes, uint64_t& lo, uint64_t& hi) {
    const Allocation* a = gpu_range(va, bytes);
    if (!a) return false;
    lo = a->va, hi = a->va + a->size;
    return true;
  });
  const auto start = std::chrono::steady_clock::now();
  emu::DispatchStats stats;
  try {
    stats = emu::run_dispatch(*program, kd, shape, memory);
  } catch (const Error& e) {
    return fail(e.what()), false;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (auto [c, mu] : {std::pair{&counters_, &kernels_mu_}, std::pair{&exit_report().total, &exit_report().mu}}) {
    std::lock_guard<std::mutex> lock(*mu);
    c->dispatches += 1;
    c->instructions += stats.instructions;
    c->waves += stats.waves;
    c->seconds += seconds;
  }
  return true;
}

namespace {
std::string emulated_target() {
  const char* t = std::getenv("LATHE_AMD_KFD_EMULATOR_TARGET");
  return t && *t ? t : "gfx942";
}
}  // namespace

EmulatorDriver::EmulatorDriver() : TestDriver(emulated_target()) {}

extern "C" __attribute__((visibility("default"))) Driver* lathe_amd_kfd_new_emulator_driver() { return new EmulatorDriver(); }

}  // namespace lathe::amd
