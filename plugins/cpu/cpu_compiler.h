// C source -> system C compiler -> shared object -> function pointer, with an on-disk cache
// keyed by the source, the compiler, its version, the flags and the host CPU.
#pragma once
#include <string>

namespace lathe::cpu {

using KernelFn = void (*)(void** buffers, long begin, long end);

class CCompiler {
 public:
  CCompiler();
  KernelFn build(const std::string& source, const std::string& function);
  const std::string& compiler() const { return cc_; }
  const std::string& cache_dir() const { return cache_dir_; }
  // Float32 lanes of the widest vectors the flags let the compiler use (AVX-512: 16, AVX: 8, else 4).
  int vector_floats() const { return vector_floats_; }

  // The compiler command (LATHE_CC, else cc) if it can be found on PATH, else empty.
  static std::string find_compiler();

 private:
  std::string cc_, flags_, identity_, cache_dir_;
  int vector_floats_ = 4;
};

}  // namespace lathe::cpu
