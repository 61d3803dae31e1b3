// The plugin boundary. A backend is a shared library exporting two symbols through Boost.DLL
// aliases: `lathe_plugin_abi_version` (checked before anything else) and `lathe_plugin`, a
// descriptor with probe() and create(). Devices allocate memory, copy, compile kernels and run them.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "lathe/dtype.h"
#include "lathe/kernel.h"
#include "lathe/matrix_unit.h"

namespace lathe {

// Bump whenever anything in this file, kernel.h, matrix_unit.h, symbolic.h or graph.h changes layout.
constexpr uint32_t kPluginAbiVersion = 7;

struct DeviceInfo {
  std::string name;             // e.g. "cpu: AMD EPYC 7B13 (2 threads)"
  uint64_t memory_bytes = 0;
  int compute_units = 1;
  std::vector<DType> dtypes;    // element types the device can store and compute with
  // Run every output loop of a kernel in parallel (one index over all of them: GPUs want
  // thousands of work-items) rather than only the outermost (CPUs want long inner loops).
  bool parallel_all_outer_loops = false;
  // Work-groups: the most work-items one group may hold (1: the device has no work-groups,
  // kernels never use Special, DefineLocal or Barrier) and the local memory a group may use.
  int64_t max_local_size = 1;
  int64_t local_memory_bytes = 0;
  // Float32 lanes of the vector registers kernels are compiled for (16 with AVX-512, 8 with
  // AVX2); 0 where it does not apply. CPU heuristics size register tiles by it.
  int vector_floats = 0;
  // Matrix units kernels may use (work-group devices only); empty: none.
  std::vector<MatrixUnit> matrix_units;
};

// A compiled kernel. run() blocks until the kernel finished when `timed`, and then returns
// the kernel's time in seconds; otherwise it may return before the kernel ran and returns 0.
class Program {
 public:
  virtual ~Program() = default;
  virtual double run(const std::vector<void*>& buffers, bool timed) = 0;
  virtual const std::string& source() const = 0;
};

class Device {
 public:
  virtual ~Device() = default;
  virtual const DeviceInfo& info() const = 0;
  virtual void* allocate(size_t bytes) = 0;  // throws OutOfMemoryError with the sizes
  virtual void release(void* handle) = 0;
  virtual void copy_in(void* dst, const void* host, size_t bytes) = 0;
  virtual void copy_out(void* host, const void* src, size_t bytes) = 0;
  virtual std::unique_ptr<Program> compile(const Kernel& kernel) = 0;
  // Several kernels at once, programs in the same order. Backends whose compiler costs much
  // per call build them as one program; by default each is compiled on its own.
  virtual std::vector<std::unique_ptr<Program>> compile_many(const std::vector<const Kernel*>& kernels) {
    std::vector<std::unique_ptr<Program>> out;
    for (const Kernel* k : kernels) out.push_back(compile(*k));
    return out;
  }
  virtual void synchronize() = 0;

  const std::string& backend() const { return backend_; }
  std::string label() const { return backend_ + ":" + std::to_string(index_); }
  void set_identity(std::string backend, int index) { backend_ = std::move(backend); index_ = index; }

 private:
  std::string backend_;
  int index_ = 0;
};

struct ProbeResult {
  bool usable = false;
  std::string reason;                // why not, when unusable
  std::vector<std::string> devices;  // one line per device found
};

using DeviceOptions = std::map<std::string, std::string>;

struct PluginDescriptor {
  uint32_t abi_version;
  const char* name;
  ProbeResult (*probe)();  // cheap and free of side effects
  std::unique_ptr<Device> (*create)(int index, const DeviceOptions& options);
};

}  // namespace lathe
