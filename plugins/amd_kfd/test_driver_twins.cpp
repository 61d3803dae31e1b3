// Test support: the test driver's CPU twins, rendered and built as the cpu backend does, and
// the entry point through which the amd_kfd plugin creates a TestDriver.
#include <mutex>

#include <algorithm>

#include "../cpu/cpu_compiler.h"
#include "../cpu/cpu_dialect.h"
#include "test_driver.h"

namespace lathe::amd {

Twin TestDriver::kernel_twin(const Kernel& kernel) {
  static std::once_flag once;
  static std::unique_ptr<cpu::CCompiler> compiler;
  std::call_once(once, [] { compiler = std::make_unique<cpu::CCompiler>(); });
  cpu::KernelFn fn = compiler->build(render_c_family(kernel, cpu::CpuDialect()), kernel.name);
  const int64_t items = std::max<int64_t>(1, kernel.global_size);
  return [fn, items](const std::vector<void*>& a, const uint8_t*, uint64_t) { fn(const_cast<void**>(a.data()), 0, items); };
}

extern "C" __attribute__((visibility("default"))) Driver* lathe_amd_kfd_new_test_driver() { return new TestDriver(); }

}  // namespace lathe::amd
