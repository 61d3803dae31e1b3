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

}  // namespace lathe::amd
