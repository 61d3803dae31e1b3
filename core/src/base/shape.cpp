// Shapes: element counts, contiguous strides and their text form.
#include "lathe/shape.h"

#include "lathe/error.h"

namespace lathe {

int64_t numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t s : shape) {
    if (s < 0) throw Error("shape " + to_string(shape) + " has a negative extent");
    if (__builtin_mul_overflow(n, s, &n))
      throw Error("shape " + to_string(shape) + " has more elements than a 64-bit count holds");
  }
  return n;
}

int64_t checked_mul(int64_t a, int64_t b, const std::string& what) {
  int64_t r;
  if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r))
    throw Error(what + ": " + std::to_string(a) + " x " + std::to_string(b) + " is negative or overflows a 64-bit count");
  return r;
}

Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size(), 1);
  for (int i = static_cast<int>(shape.size()) - 2; i >= 0; --i) strides[i] = strides[i + 1] * shape[i + 1];
  return strides;
}

std::string to_string(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

int normalize_axis(int axis, size_t ndim, const char* op) {
  int n = static_cast<int>(ndim);
  if (axis < -n || axis >= n)
    throw Error(std::string(op) + ": axis " + std::to_string(axis) + " is out of range for a tensor of " +
                std::to_string(ndim) + " dimensions (valid: " + std::to_string(-n) + ".." + std::to_string(n - 1) + ")");
  return axis < 0 ? axis + n : axis;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    if (da != db && da != 1 && db != 1)
      throw Error(std::string(op) + ": shapes " + to_string(a) + " and " + to_string(b) +
                  " do not broadcast (dimension " + std::to_string(i) + ": " + std::to_string(da) + " vs " +
                  std::to_string(db) + "); each dimension must match or be 1");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

}  // namespace lathe
