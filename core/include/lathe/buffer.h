// Device memory owned by the graph: allocated on first use, released when the last node or
// tensor that refers to it goes away.
#pragma once
#include <cstddef>
#include <cstdint>

#include "lathe/dtype.h"

namespace lathe {

class Device;

class Buffer {
 public:
  Buffer(Device* device, DType dtype, int64_t numel);
  ~Buffer();
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  void* handle();  // allocates on first call
  // Gives the device memory back early (the memory planner, once nothing will read it again);
  // a later handle() is an error.
  void release_memory();
  bool allocated() const { return handle_ != nullptr; }
  Device* device() const { return device_; }
  DType dtype() const { return dtype_; }
  int64_t numel() const { return numel_; }
  size_t bytes() const { return static_cast<size_t>(numel_) * itemsize(dtype_); }

  void copy_in(const void* host);   // whole buffer
  void copy_out(void* host);

 private:
  Device* device_;
  DType dtype_;
  int64_t numel_;
  void* handle_ = nullptr;
  bool released_ = false;
  bool placeholder_ = false;  // counted but never allocated (DryRun)
};

}  // namespace lathe
