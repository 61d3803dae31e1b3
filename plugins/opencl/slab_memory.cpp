#include "slab_memory.h"

#include <algorithm>

namespace lathe::opencl {

SlabMemory::SlabMemory(cl_context context, size_t alignment, size_t max_alloc, size_t slab_bytes)
    : context_(context), alignment_(std::max<size_t>(alignment, 256)), max_alloc_(max_alloc), slab_bytes_(slab_bytes) {}

cl_mem SlabMemory::allocate(size_t bytes, cl_int* error) {
  *error = CL_SUCCESS;
  const size_t length = (std::max<size_t>(bytes, 1) + alignment_ - 1) / alignment_ * alignment_;
  for (size_t s = 0; s < slabs_.size(); ++s)  // first fit
    for (auto& [offset, free] : slabs_[s].free)
      if (free >= length) return carve(s, length, bytes, error);
  // A new slab: twice the last one (fewer distinct allocations as the memory in use grows,
  // at most half of the newest slab unused), or just this buffer when that is larger or does
  // not fit.
  const size_t next = slab_bytes_ == 0 ? 0 : std::min(std::max(slab_bytes_, 2 * last_slab_), max_alloc_);
  for (size_t size : {std::max(next, length), length}) {
    cl_mem buffer = clCreateBuffer(context_, CL_MEM_READ_WRITE, size, nullptr, error);
    if (*error != CL_SUCCESS) continue;
    auto empty = std::find_if(slabs_.begin(), slabs_.end(), [](const Slab& s) { return s.buffer == nullptr; });
    if (empty == slabs_.end()) empty = slabs_.insert(slabs_.end(), Slab{});
    *empty = Slab{buffer, size, {{0, size}}};
    last_slab_ = size;
    return carve(static_cast<size_t>(empty - slabs_.begin()), length, bytes, error);
  }
  return nullptr;
}

cl_mem SlabMemory::carve(size_t s, size_t length, size_t bytes, cl_int* error) {
  Slab& slab = slabs_[s];
  auto it = std::find_if(slab.free.begin(), slab.free.end(), [&](const auto& f) { return f.second >= length; });
  const size_t offset = it->first, rest = it->second - length;
  slab.free.erase(it);
  if (rest > 0) slab.free[offset + length] = rest;
  cl_buffer_region region{offset, std::max<size_t>(bytes, 1)};
  cl_mem buffer = clCreateSubBuffer(slab.buffer, CL_MEM_READ_WRITE, CL_BUFFER_CREATE_TYPE_REGION, &region, error);
  if (*error != CL_SUCCESS) {
    give_back({s, offset, length});
    return nullptr;
  }
  placed_[buffer] = {s, offset, length};
  return buffer;
}

void SlabMemory::release(cl_mem buffer) {
  auto node = placed_.extract(buffer);
  if (node.empty()) return;
  clReleaseMemObject(buffer);
  give_back(node.mapped());
}

void SlabMemory::give_back(const Placement& p) {
  auto& free = slabs_[p.slab].free;
  size_t offset = p.offset, length = p.length;
  auto next = free.lower_bound(offset);
  if (next != free.end() && next->first == offset + length) {  // merge with the range after
    length += next->second;
    next = free.erase(next);
  }
  if (next != free.begin()) {  // and the one before
    auto prev = std::prev(next);
    if (prev->first + prev->second == offset) {
      prev->second += length;
      return;
    }
  }
  free[offset] = length;
}

bool SlabMemory::release_empty_slabs() {
  bool any = false;
  for (Slab& slab : slabs_)
    if (slab.buffer && slab.free.size() == 1 && slab.free.begin()->second == slab.bytes) {
      clReleaseMemObject(slab.buffer);
      slab = Slab{};
      any = true;
    }
  return any;
}

}  // namespace lathe::opencl
