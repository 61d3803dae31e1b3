// Test support: the test driver's C twins, built with the cpu backend's C compiler wrapper, and
// the entry point through which the amd_kfd plugin creates a TestDriver.
#include <mutex>

#include "../cpu/cpu_compiler.h"
#include "test_driver.h"

namespace lathe::amd {

Twin TestDriver::c_twin(const std::string& c_source, const std::string& name, int64_t work_items) {
  static std::once_flag once;
  static std::unique_ptr<cpu::CCompiler> compiler;
  std::call_once(once, [] { compiler = std::make_unique<cpu::CCompiler>(); });
  cpu::KernelFn fn = compiler->build(c_source, name);
  return [fn, work_items](const std::vector<void*>& a, const uint8_t*, uint64_t) { fn(const_cast<void**>(a.data()), 0, work_items); };
}

extern "C" __attribute__((visibility("default"))) Driver* lathe_amd_kfd_new_test_driver() { return new TestDriver(); }

}  // namespace lathe::amd
