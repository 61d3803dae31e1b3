// The one narrow boundary between the amd_kfd backend and the kernel: every system call the
// backend makes (open, ioctl, mmap, munmap, close) goes through a Driver, and the topology is
// read from its sysfs root. system_driver() is the real thing; TestDriver (test_driver.h, test
// support in a library of its own, loaded by test_driver() only when asked for) keeps a KFD's
// state and checks every argument the way the kernel does, without a GPU; EmulatorDriver
// (emulator_driver.h) runs each dispatch's machine code on an instruction-level emulator.
#pragma once
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "lathe/kernel.h"

namespace lathe::amd {

struct CodeObject;

// A kernel's stand-in on a driver without a GPU: it gets the pointer arguments read from the
// kernarg segment (already translated), the kernarg segment itself (for scalar arguments) and
// the grid size in work-items.
using Twin = std::function<void(const std::vector<void*>& args, const uint8_t* kernarg, uint64_t work_items)>;

class Driver {
 public:
  virtual ~Driver() = default;
  virtual int open(const std::string& path, int flags) = 0;  // fd, or -errno
  virtual int ioctl(int fd, unsigned long request, void* arg) = 0;  // 0, or -errno
  virtual void* mmap(void* addr, size_t length, int prot, int flags, int fd, off_t offset) = 0;  // MAP_FAILED on failure
  virtual int munmap(void* addr, size_t length) = 0;
  virtual int close(int fd) = 0;
  virtual std::string topology_root() const = 0;
  virtual std::string name() const = 0;  // for messages: "kfd" or "test driver"
  virtual std::string fault() const { return ""; }  // what went wrong on the device side, if known

  // Drivers without a GPU run each kernel as a twin registered under its code object, made
  // from the kernel's IR; the real driver needs none.
  virtual bool runs_twins() const { return false; }
  virtual Twin kernel_twin(const Kernel& kernel) {
    (void)kernel;
    return {};
  }
  virtual void register_twin(const CodeObject& code, const std::string& kernel, int pointer_args, Twin twin) {
    (void)code, (void)kernel, (void)pointer_args, (void)twin;
  }
  // A code object now lies at GPU address `va` (the emulator learns its kernels' names and code
  // sizes from this; a GPU needs no telling).
  virtual void code_loaded(const CodeObject& code, uint64_t va) { (void)code, (void)va; }
};

std::unique_ptr<Driver> system_driver();

// The test driver, from amd_kfd_test_driver.so beside the plugin (an Error that says where it
// was looked for when it is not there): kernels run as CPU twins, or with `emulator` as their
// machine code on the instruction-level emulator.
std::unique_ptr<Driver> test_driver(bool emulator = false);

// The test support library's entry points: a new TestDriver, or a new EmulatorDriver.
extern "C" Driver* lathe_amd_kfd_new_test_driver();
extern "C" Driver* lathe_amd_kfd_new_emulator_driver();

}  // namespace lathe::amd
