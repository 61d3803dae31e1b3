// The C-family renderer shared by every backend that speaks a C dialect (C, OpenCL C,
// AMDGPU C). A dialect supplies the spelling of types, the kernel signature, the parallel
// loop and the few builtins that differ; the walk over the IR is the same for all.
#pragma once
#include <string>

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
};

std::string render_c_family(const Kernel& kernel, const CDialect& dialect);

}  // namespace lathe
