#include "amdgpu_dialect.h"

#include "lathe/error.h"

namespace lathe::amd {

std::string AmdgpuDialect::global_loop(const std::string& var, int64_t extent) const {
  return "const long " + var + " = (long)__builtin_amdgcn_workgroup_id_x() * " + std::to_string(kFlatGroupSize) +
         " + (long)__builtin_amdgcn_workitem_id_x(); if (" + var + " < " + std::to_string(extent) + "L) {";
}

std::string AmdgpuDialect::special(SpecialId id) const {
  return id == SpecialId::GroupId ? "(long)__builtin_amdgcn_workgroup_id_x()" : "(long)__builtin_amdgcn_workitem_id_x()";
}

std::string AmdgpuDialect::barrier() const {
  // The fences make local-memory writes before the barrier visible to the group after it.
  return "__builtin_amdgcn_fence(__ATOMIC_RELEASE, \"workgroup\"); __builtin_amdgcn_s_barrier(); "
         "__builtin_amdgcn_fence(__ATOMIC_ACQUIRE, \"workgroup\");";
}

std::string AmdgpuDialect::math(Op op, DType, const std::string& x) const {
  return "__builtin_" + math_function(op) + "f(" + x + ")";
}

std::string AmdgpuDialect::mma(DType input, const std::vector<std::string>& acc, const std::vector<std::string>& a,
                               const std::vector<std::string>& b) const {
  check(input == DType::BFloat16 && acc.size() == 4 && a.size() == 2 && b.size() == 2,
        "AMDGPU renderer: the matrix unit is v_mfma_f32_16x16x16_bf16 (bfloat16; 4, 2 and 2 registers)");
  // Each 32-bit word holds two steps, the lower in its low half: as a short4, the four steps in order.
  std::string s = "{ float4 d_ = __builtin_amdgcn_mfma_f32_16x16x16bf16_1k(as_short4((uint2)(" + a[0] + ", " + a[1] + ")), as_short4((uint2)(" +
                  b[0] + ", " + b[1] + ")), (float4)(" + acc[0] + ", " + acc[1] + ", " + acc[2] + ", " + acc[3] + "), 0, 0, 0);";
  for (size_t i = 0; i < 4; ++i) s += " " + acc[i] + " = d_.s" + std::to_string(i) + ";";
  return s + " }";
}

std::vector<MatrixUnit> matrix_units_of(const std::string& target) {
  if (target.rfind("gfx90a", 0) == 0 || target.rfind("gfx94", 0) == 0 || target.rfind("gfx95", 0) == 0) return {mfma_f32_16x16x16_bf16()};
  return {};
}

}  // namespace lathe::amd
