// The AMDGPU dialect: OpenCL C as clang compiles it for amdgcn-amd-amdhsa without device
// libraries, so work-item ids, barriers and math are compiler builtins rather than library
// calls. Kernels without work-groups run in groups of kFlatGroupSize work-items.
#pragma once
#include <vector>

#include "lathe/matrix_unit.h"
#include "lathe/render_opencl.h"

namespace lathe::amd {

constexpr int kFlatGroupSize = 256;

class AmdgpuDialect : public OpenCLDialect {
 public:
  std::string global_loop(const std::string& var, int64_t extent) const override;
  std::string special(SpecialId id) const override;
  std::string barrier() const override;
  std::string math(Op op, DType dtype, const std::string& x) const override;
  // v_mfma_f32_16x16x16_bf16 (the MatrixUnit of CDNA2 and CDNA3).
  std::string mma(DType input, const std::vector<std::string>& acc, const std::vector<std::string>& a,
                  const std::vector<std::string>& b) const override;
};

// The matrix units of a target (MFMA from gfx90a on); none for targets lathe does not render
// one for.
std::vector<MatrixUnit> matrix_units_of(const std::string& target);

}  // namespace lathe::amd
