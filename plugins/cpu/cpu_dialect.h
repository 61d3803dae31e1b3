// The cpu backend's C dialect: the C renderer's spelling, plus each kernel's vectorization hints
// for GCC, read off its IR.
#pragma once
#include "lathe/render.h"

namespace lathe::cpu {

class CpuDialect : public CDialect {
 public:
  std::string signature(const Kernel& kernel) const override;
};

}  // namespace lathe::cpu
