// Buffers: device memory of one tensor, allocated on first use, copied to and from the host.
#include "lathe/buffer.h"

#include <atomic>
#include <cstring>

#include "lathe/device.h"
#include "lathe/error.h"
#include "lathe/runtime.h"
#include "recording.h"

namespace lathe {

Buffer::Buffer(Device* device, DType dtype, int64_t numel) : device_(device), dtype_(dtype), numel_(numel) {
  checked_mul(numel, static_cast<int64_t>(itemsize(dtype)), "a buffer's size in bytes");
}

namespace {
std::atomic<int> dry_runs{0};
}

DryRun::DryRun() { ++dry_runs; }
DryRun::~DryRun() { --dry_runs; }
bool dry_run_active() { return dry_runs.load() > 0; }

Buffer::~Buffer() { release_memory(); }

void Buffer::release_memory() {
  if (handle_ && device_) {
    if (!placeholder_) device_->release(handle_);
    runtime_stats().bytes_live -= static_cast<int64_t>(bytes());
  }
  handle_ = nullptr;
  released_ = true;
}

void* Buffer::handle() {
  if (!handle_) {
    check(!released_, "internal error: a buffer was read after the memory planner released it");
    placeholder_ = dry_run_active();
    handle_ = placeholder_ ? static_cast<void*>(this) : device_->allocate(bytes() ? bytes() : 1);
    auto& s = runtime_stats();
    int64_t live = s.bytes_live += static_cast<int64_t>(bytes());
    for (int64_t peak = s.bytes_peak; live > peak && !s.bytes_peak.compare_exchange_weak(peak, live);) {
    }
  }
  return handle_;
}

void Buffer::copy_in(const void* host) {
  if (Recording* r = active_recording()) r->host_writes.insert(this);
  void* h = bytes() ? handle() : nullptr;
  if (h && !placeholder_) device_->copy_in(h, host, bytes());
}

void Buffer::copy_out(void* host) {
  void* h = bytes() ? handle() : nullptr;
  if (h && placeholder_) std::memset(host, 0, bytes());
  else if (h) device_->copy_out(host, h, bytes());
}

}  // namespace lathe
