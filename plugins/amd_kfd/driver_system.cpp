// The drivers the backend opens: the amdgpu kernel driver itself, or the test driver, which
// lives in a library of its own beside the plugin and is loaded only when asked for.
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "driver.h"
#include "lathe/error.h"

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

std::unique_ptr<Driver> test_driver(bool emulator) {
  // Beside the library this function is in (the plugin, or a test program's own folder).
  Dl_info self{};
  std::string dir = ".";
  if (dladdr(reinterpret_cast<void*>(&system_driver), &self) && self.dli_fname)
    dir = std::filesystem::path(self.dli_fname).parent_path().string();
  const std::string path = dir + "/amd_kfd_test_driver.so";
  const char* which = emulator ? "LATHE_AMD_KFD_DRIVER=emulator" : "LATHE_AMD_KFD_DRIVER=test";
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) throw Error(std::string("amd_kfd: the test driver (") + which + ") needs " + path + ", built and installed with the plugin: " + dlerror());
  const char* entry = emulator ? "lathe_amd_kfd_new_emulator_driver" : "lathe_amd_kfd_new_test_driver";
  auto make = reinterpret_cast<Driver* (*)()>(dlsym(lib, entry));
  if (!make) throw Error("amd_kfd: " + path + " does not export " + entry + "; rebuild it with this plugin");
  return std::unique_ptr<Driver>(make());  // the library stays loaded: its code runs the driver
}

}  // namespace lathe::amd
