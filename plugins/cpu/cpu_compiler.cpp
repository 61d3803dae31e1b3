#include "cpu_compiler.h"

#include <dlfcn.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <cstring>
#include <sstream>

#include "lathe/cache.h"
#include "lathe/error.h"

namespace lathe::cpu {
namespace fs = std::filesystem;
namespace {

std::string run_capture(const std::string& cmd) {
  std::string out;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[256];
    while (fgets(buf, sizeof buf, p)) out += buf;
    pclose(p);
  }
  return out;
}

std::string read_file(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0 || line.rfind("flags", 0) == 0) return line;
  return "unknown";
}

}  // namespace

std::string CCompiler::find_compiler() {
  const char* env = std::getenv("LATHE_CC");
  std::string cc = env && *env ? env : "cc";
  if (cc.find('/') != std::string::npos) return access(cc.c_str(), X_OK) == 0 ? cc : "";
  const char* path = std::getenv("PATH");
  std::stringstream ss(path ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(ss, dir, ':'))
    if (!dir.empty() && access((dir + "/" + cc).c_str(), X_OK) == 0) return dir + "/" + cc;
  return "";
}

CCompiler::CCompiler() {
  cc_ = find_compiler();
  if (cc_.empty())
    throw Error("cpu backend: no C compiler found (looked for " +
                std::string(std::getenv("LATHE_CC") ? std::getenv("LATHE_CC") : "cc") +
                " on PATH); install gcc or clang, or set LATHE_CC");
  // -fno-math-errno lets sqrtf and friends inline; no flag here changes IEEE results except
  // contraction of a*b+c into FMA, which only makes them more accurate.
  flags_ = "-O3 -march=native -fPIC -shared -std=gnu11 -fno-math-errno -fno-trapping-math -fno-plt";
  // GCC keeps 256-bit vectors on AVX-512 processors unless asked: the register tiles are sized
  // for 32 registers of 16 floats (docs/codegen.md has the measurements).
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx512f")) flags_ += " -mprefer-vector-width=512";
#endif
  if (const char* extra = std::getenv("LATHE_CFLAGS")) flags_ += std::string(" ") + extra;
  identity_ = run_capture("'" + cc_ + "' --version 2>/dev/null | head -n 1") + flags_ + cpu_model();
  // What the flags (LATHE_CFLAGS included) really target, from the compiler's own macros.
  const std::string macros = run_capture("'" + cc_ + "' " + flags_ + " -dM -E -x c /dev/null 2>/dev/null");
  const bool wide512 = macros.find("__AVX512F__") != std::string::npos && flags_.find("prefer-vector-width=512") != std::string::npos;
  vector_floats_ = wide512 ? 16 : macros.find("__AVX__") != std::string::npos ? 8 : 4;
  cache_dir_ = lathe::cache_dir("cpu");
}

KernelFn CCompiler::build(const std::string& source, const std::string& function) {
  std::string hex = content_hash(identity_ + "\n" + source);
  fs::path so = fs::path(cache_dir_) / (hex + ".so");
  fs::path src = fs::path(cache_dir_) / (hex + ".c");
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!fs::exists(so)) {
      static std::atomic<int> counter{0};
      std::string tag = "." + std::to_string(getpid()) + "." + std::to_string(counter++);
      fs::path tmp_src = src.string() + tag + ".c", tmp_so = so.string() + tag, log = so.string() + tag + ".log";
      { std::ofstream(tmp_src) << source; }
      std::string cmd = "'" + cc_ + "' " + flags_ + " -o '" + tmp_so.string() + "' '" + tmp_src.string() + "' 2> '" + log.string() + "'";
      int rc = std::system(cmd.c_str());
      std::error_code ec;
      fs::rename(tmp_src, src, ec);
      if (rc != 0) {
        std::string msg = read_file(log);
        fs::remove(log, ec);
        fs::remove(tmp_so, ec);
        throw Error("the C compiler failed on kernel " + function + " (source: " + src.string() + "):\n" + msg);
      }
      fs::remove(log, ec);
      fs::rename(tmp_so, so, ec);  // atomic: other processes see the old state or the whole file
      if (ec) throw Error("cannot move compiled kernel into the cache at " + so.string() + ": " + ec.message());
    }
    // Loaded objects are never closed: programs live as long as the process.
    void* handle = dlopen(so.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle) {
      if (auto fn = reinterpret_cast<KernelFn>(dlsym(handle, function.c_str()))) return fn;
    }
    // A damaged cache entry (truncated file, wrong architecture): rebuild it once.
    std::error_code ec;
    fs::remove(so, ec);
  }
  throw Error("cannot load compiled kernel " + function + " from " + so.string() + ": " + (dlerror() ? dlerror() : "symbol missing"));
}

}  // namespace lathe::cpu
