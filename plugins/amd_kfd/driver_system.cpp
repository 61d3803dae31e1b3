#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>

#include "driver.h"

namespace lathe::amd {
namespace {

class SystemDriver : public Driver {
 public:
  int open(const std::string& path, int flags) override {
    int fd = ::open(path.c_str(), flags | O_CLOEXEC);
    return fd >= 0 ? fd : -errno;
  }
  int ioctl(int fd, unsigned long request, void* arg) override {
    int r;
    do r = ::ioctl(fd, request, arg);
    while (r == -1 && (errno == EINTR || errno == EAGAIN));
    return r == 0 ? 0 : -errno;
  }
  void* mmap(void* addr, size_t length, int prot, int flags, int fd, off_t offset) override {
    return ::mmap(addr, length, prot, flags, fd, offset);
  }
  int munmap(void* addr, size_t length) override { return ::munmap(addr, length) == 0 ? 0 : -errno; }
  int close(int fd) override { return ::close(fd) == 0 ? 0 : -errno; }
  std::string topology_root() const override { return "/sys/devices/virtual/kfd/kfd/topology/nodes"; }
  std::string name() const override { return "kfd"; }
};

}  // namespace

std::unique_ptr<Driver> system_driver() { return std::make_unique<SystemDriver>(); }

}  // namespace lathe::amd
