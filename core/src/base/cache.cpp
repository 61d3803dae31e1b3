// Where lathe keeps files between runs (LATHE_CACHE_DIR), content hashes and atomic writes.
#include "lathe/cache.h"

#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "lathe/error.h"

namespace lathe {

namespace fs = std::filesystem;

std::string cache_root() {
  if (const char* d = std::getenv("LATHE_CACHE_DIR"); d && *d) return d;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/lathe";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/lathe";
  return (fs::temp_directory_path() / "lathe-cache").string();
}

std::string cache_dir(const std::string& name) {
  std::string dir = (fs::path(cache_root()) / name).string();
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error("cannot create the cache folder " + dir + ": " + ec.message() + "; set LATHE_CACHE_DIR to a writable folder");
  return dir;
}

std::string content_hash(const std::string& text) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : text) h = (h ^ c) * 1099511628211ULL;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

void write_atomically(const std::string& path, const std::string& bytes) {
  static std::atomic<int> counter{0};
  std::string tmp = path + ".tmp." + std::to_string(getpid()) + "." + std::to_string(counter++);
  {
    std::ofstream out(tmp, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) fs::remove(tmp, ec);
}

}  // namespace lathe
