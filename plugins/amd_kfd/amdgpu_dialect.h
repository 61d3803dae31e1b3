// The AMDGPU dialect: OpenCL C as clang compiles it for amdgcn-amd-amdhsa without device
// libraries, so work-item ids, barriers and math are compiler builtins rather than library
// calls. Kernels without work-groups run in groups of kFlatGroupSize work-items.
#pragma once
#include "lathe/render_opencl.h"

namespace lathe::amd {

constexpr int kFlatGroupSize = 256;

class AmdgpuDialect : public OpenCLDialect {
 public:
  std::string global_loop(const std::string& var, int64_t extent) const override;
  std::string special(SpecialId id) const override;
  std::string barrier() const override;
  std::string math(Op op, DType dtype, const std::string& x) const override;
};

}  // namespace lathe::amd
