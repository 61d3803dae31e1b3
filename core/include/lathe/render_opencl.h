// The OpenCL C dialect of the shared C-family renderer: one work-item per output element (or
// work-groups with local memory); 16-bit floats stored as ushort and converted with the same
// round-to-nearest-even code as the C dialect. The AMDGPU dialect builds on it.
#pragma once
#include "lathe/render.h"

namespace lathe {

class OpenCLDialect : public CDialect {
 public:
  std::string prelude() const override;
  std::string signature(const Kernel& kernel) const override;
  std::string global_loop(const std::string& var, int64_t extent) const override;
  std::string type(DType dtype) const override;
  std::string storage_type(DType dtype) const override;
  std::string math(Op op, DType dtype, const std::string& x) const override;
  std::string bitcast(DType from, DType to, const std::string& x) const override;
  std::string special(SpecialId id) const override;
  std::string local_array(DType dtype, const std::string& name, int64_t elements) const override;
  std::string barrier() const override;
  std::string unroll_hint(int64_t factor) const override { return "#pragma unroll " + std::to_string(factor); }
  bool vector_access() const override { return true; }
  std::string vector_type(DType dtype, bool local) const override;
  std::string vector_load(DType dtype, const std::string& base, const std::string& index, bool local) const override;
  std::string vector_lane(DType dtype, bool local, const std::string& vec, int lane) const override;
  std::string vector_store(DType dtype, const std::string& base, const std::string& index, bool local,
                           const std::vector<std::string>& lanes) const override;
  // NVIDIA's OpenCL compiler passes inline PTX through: mma.sync on sm_80 and later.
  std::string mma(DType input, const std::vector<std::string>& acc, const std::vector<std::string>& a,
                  const std::vector<std::string>& b) const override;
};

}  // namespace lathe
