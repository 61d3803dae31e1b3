// Writing a file so that readers see the old contents or the new, never a part: a temporary
// file beside the target, fsync, rename, and fsync of the folder.
#pragma once
#include <string>

namespace lathe::models {

class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();  // removes the temporary file unless commit() ran
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t bytes);  // throws lathe::Error (disk full, ...)
  void commit();

 private:
  std::string path_, tmp_;
  int fd_ = -1;
};

// Whole file in one call.
void write_file_atomically(const std::string& path, const std::string& contents);

}  // namespace lathe::models
