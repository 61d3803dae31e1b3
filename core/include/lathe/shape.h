// Shapes are plain vectors of extents; helpers for sizes, strides, axes and printing.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace lathe {

using Shape = std::vector<int64_t>;

// The element count; throws for a negative extent or a count that overflows int64. Every
// parser and op takes sizes from here, so a shape cannot wrap to a small count downstream.
int64_t numel(const Shape& shape);
// a * b for sizes (element counts, bytes); throws naming `what` when negative or overflowing.
int64_t checked_mul(int64_t a, int64_t b, const std::string& what);
Shape contiguous_strides(const Shape& shape);  // row-major, in elements
std::string to_string(const Shape& shape);      // "[2, 3]"
// Turns a possibly negative axis into 0..ndim-1 or throws, naming the op.
int normalize_axis(int axis, size_t ndim, const char* op);
// The shape both operands broadcast to under NumPy rules, or throws naming the op.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

}  // namespace lathe
