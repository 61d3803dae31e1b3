// Buffers: device memory of one tensor, allocated on first use, copied to and from the host.
#include "lathe/buffer.h"

#include "lathe/device.h"
#include "lathe/error.h"
#include "lathe/runtime.h"
#include "recording.h"

namespace lathe {

Buffer::Buffer(Device* device, DType dtype, int64_t numel) : device_(device), dtype_(dtype), numel_(numel) {
  checked_mul(numel, static_cast<int64_t>(itemsize(dtype)), "a buffer's size in bytes");
}

Buffer::~Buffer() {
  if (handle_ && device_) {
    device_->release(handle_);
    runtime_stats().bytes_live -= static_cast<int64_t>(bytes());
  }
}

void Buffer::release_memory() {
  if (handle_ && device_) {
    device_->release(handle_);
    runtime_stats().bytes_live -= static_cast<int64_t>(bytes());
  }
  handle_ = nullptr;
  released_ = true;
}

void* Buffer::handle() {
  if (!handle_) {
    check(!released_, "internal error: a buffer was read after the memory planner released it");
    handle_ = device_->allocate(bytes() ? bytes() : 1);
    auto& s = runtime_stats();
    int64_t live = s.bytes_live += static_cast<int64_t>(bytes());
    for (int64_t peak = s.bytes_peak; live > peak && !s.bytes_peak.compare_exchange_weak(peak, live);) {
    }
  }
  return handle_;
}

void Buffer::copy_in(const void* host) {
  if (Recording* r = active_recording()) r->host_writes.insert(this);
  if (bytes()) device_->copy_in(handle(), host, bytes());
}

void Buffer::copy_out(void* host) {
  if (bytes()) device_->copy_out(host, handle(), bytes());
}

}  // namespace lathe
