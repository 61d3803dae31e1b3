// The one narrow boundary between the amd_kfd backend and the kernel: every system call the
// backend makes (open, ioctl, mmap, munmap, close) goes through a Driver, and the topology is
// read from its sysfs root. system_driver() is the real thing; TestDriver (test_driver.h)
// keeps a KFD's state and checks every argument the way the kernel does, without a GPU.
#pragma once
#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <string>

namespace lathe::amd {

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
};

std::unique_ptr<Driver> system_driver();

}  // namespace lathe::amd
