#include "lathe/buffer.h"

#include "lathe/device.h"

namespace lathe {

Buffer::Buffer(Device* device, DType dtype, int64_t numel) : device_(device), dtype_(dtype), numel_(numel) {}

Buffer::~Buffer() {
  if (handle_ && device_) device_->release(handle_);
}

void* Buffer::handle() {
  if (!handle_) handle_ = device_->allocate(bytes() ? bytes() : 1);
  return handle_;
}

void Buffer::copy_in(const void* host) {
  if (bytes()) device_->copy_in(handle(), host, bytes());
}

void Buffer::copy_out(void* host) {
  if (bytes()) device_->copy_out(host, handle(), bytes());
}

}  // namespace lathe
