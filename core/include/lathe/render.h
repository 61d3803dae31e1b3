// The C-family renderer shared by every backend that speaks a C dialect (C, OpenCL C,
// AMDGPU C). A dialect supplies the spelling of types, the kernel signature, the parallel
// loop and the few builtins that differ; the walk over the IR is the same for all.
#pragma once
#include <string>
#include <vector>

#include "lathe/kernel.h"

namespace lathe {

class CDialect {
 public:
  virtual ~CDialect() = default;
  virtual std::string prelude() const;                       // helpers the kernel body uses
  virtual std::string signature(const Kernel& kernel) const;  // up to and including "{"
  // Opens the parallel loop over `var` (extent `extent`); the default is a plain loop over
  // the [gstart, gend) slice the host passes in.
  virtual std::string global_loop(const std::string& var, int64_t extent) const;
  virtual std::string type(DType dtype) const;          // register type
  virtual std::string storage_type(DType dtype) const;  // element type in memory
  virtual std::string load(DType dtype, const std::string& ptr_index) const;
  virtual std::string store(DType dtype, const std::string& ptr_index, const std::string& value) const;
  virtual std::string math(Op op, DType dtype, const std::string& x) const;  // exp2, log2, sin, sqrt, trunc
  virtual std::string bitcast(DType from, DType to, const std::string& x) const;

  // Work-groups (only dialects of devices with DeviceInfo::max_local_size > 1 need these).
  virtual std::string special(SpecialId id) const;  // the group id or local id, as an expression
  virtual std::string local_array(DType dtype, const std::string& name, int64_t elements) const;
  virtual std::string barrier() const;
  // A line before a loop that limits its unrolling to `factor`; "" where not supported.
  virtual std::string unroll_hint(int64_t factor) const { (void)factor; return ""; }
  // One IOp::Mma: `acc` the four accumulators (updated in place), `a` and `b` the fragments'
  // 32-bit registers. Only dialects of devices that list a native MatrixUnit implement it.
  virtual std::string mma(DType input, const std::vector<std::string>& acc, const std::vector<std::string>& a,
                          const std::vector<std::string>& b) const;

  // One access to four consecutive elements at `base + index` (index a multiple of four) of a
  // 32-bit or 16-bit type; dialects without vector types return false from vector_access()
  // and never see these. `lane` is the expression of one element's value in the vector `vec`
  // as a register; `lanes` the registers to store ("a, b, c, d").
  virtual bool vector_access() const { return false; }
  virtual std::string vector_type(DType dtype, bool local) const;
  virtual std::string vector_load(DType dtype, const std::string& base, const std::string& index, bool local) const;
  virtual std::string vector_lane(DType dtype, bool local, const std::string& vec, int lane) const;
  virtual std::string vector_store(DType dtype, const std::string& base, const std::string& index, bool local,
                                   const std::vector<std::string>& lanes) const;
};

std::string render_c_family(const Kernel& kernel, const CDialect& dialect);

// The C library name of a unary math op (exp2, log2, sin, sqrt, trunc), which dialects spell
// with their own prefix or suffix; an error for any other op.
std::string math_function(Op op);

}  // namespace lathe
