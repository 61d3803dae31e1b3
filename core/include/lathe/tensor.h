// lathe::Tensor — a handle to a lazily computed n-dimensional array. Every method builds graph
// nodes from the primitive op set; nothing runs until realize() or a read back to the host.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "lathe/dtype.h"
#include "lathe/error.h"
#include "lathe/graph.h"
#include "lathe/shape.h"

namespace lathe {

class Device;
struct TensorImpl;

// A host number in an op with a tensor. Whether it was written as a float decides the result
// type with an integer tensor (int * 2 stays int, int * 2.5 becomes float32).
struct Scalar {
  double value;
  bool is_float;
  Scalar(double v) : value(v), is_float(true) {}
  Scalar(float v) : value(v), is_float(true) {}
  Scalar(int v) : value(v), is_float(false) {}
  Scalar(long v) : value(static_cast<double>(v)), is_float(false) {}
  Scalar(long long v) : value(static_cast<double>(v)), is_float(false) {}
  Scalar(bool v) : value(v), is_float(false) {}
};

using Axes = std::vector<int>;

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(NodeRef node);

  // ---- creation (device null: the default device, LATHE_BACKEND or cpu)
  static Tensor from_data(const void* data, const Shape& shape, DType dtype, Device* device = nullptr);
  template <class T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape, DType dtype, Device* device = nullptr);
  static Tensor from_vector(const std::vector<float>& values, const Shape& shape, Device* device = nullptr) {
    return from_vector(values, shape, DType::Float32, device);
  }
  static Tensor scalar(Scalar value, DType dtype = DType::Float32, Device* device = nullptr);
  static Tensor full(const Shape& shape, Scalar value, DType dtype = DType::Float32, Device* device = nullptr);
  static Tensor zeros(const Shape& shape, DType dtype = DType::Float32, Device* device = nullptr);
  static Tensor ones(const Shape& shape, DType dtype = DType::Float32, Device* device = nullptr);
  static Tensor arange(double start, double stop, double step = 1, DType dtype = DType::Int32, Device* device = nullptr);
  static Tensor eye(int64_t n, int64_t m = -1, DType dtype = DType::Float32, Device* device = nullptr);
  // Counter-based (Threefry-2x32): the same seed gives the same numbers on every backend.
  static void manual_seed(uint64_t seed);
  // The generator's whole state (seed and number of draws), for checkpoints.
  static std::pair<uint64_t, uint64_t> random_state();
  static void set_random_state(std::pair<uint64_t, uint64_t> state);
  static Tensor rand(const Shape& shape, DType dtype = DType::Float32, Device* device = nullptr);   // [0, 1)
  static Tensor randn(const Shape& shape, DType dtype = DType::Float32, Device* device = nullptr);  // N(0, 1)
  static Tensor randint(int64_t low, int64_t high, const Shape& shape, DType dtype = DType::Int32, Device* device = nullptr);
  Tensor zeros_like() const;
  Tensor ones_like() const;
  Tensor full_like(Scalar value) const;

  // ---- properties
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  int64_t size(int axis) const;
  size_t ndim() const { return shape().size(); }
  int64_t numel() const;
  DType dtype() const;
  Device* device() const;
  const NodeRef& node() const;

  // ---- elementwise (NumPy broadcasting, PyTorch type promotion)
  Tensor add(const Tensor& o) const;
  Tensor sub(const Tensor& o) const;
  Tensor mul(const Tensor& o) const;
  Tensor div(const Tensor& o) const;  // true division; floats result for integer inputs
  Tensor idiv(const Tensor& o) const; // integer division truncating toward zero
  Tensor mod(const Tensor& o) const;
  Tensor pow(const Tensor& o) const;
  Tensor pow(Scalar exponent) const;
  Tensor maximum(const Tensor& o) const;
  Tensor minimum(const Tensor& o) const;
  Tensor neg() const;
  Tensor reciprocal() const;
  Tensor exp() const;
  Tensor exp2() const;
  Tensor log() const;
  Tensor log2() const;
  Tensor sqrt() const;
  Tensor rsqrt() const;
  Tensor sin() const;
  Tensor cos() const;
  Tensor tanh() const;
  Tensor sigmoid() const;
  Tensor relu() const;
  Tensor gelu(bool tanh_approximation = false) const;  // exact: 0.5 x (1 + erf(x / sqrt 2))
  Tensor silu() const;
  Tensor erf() const;
  Tensor abs() const;
  Tensor sign() const;
  Tensor square() const;
  Tensor trunc() const;
  Tensor floor() const;
  Tensor clamp(std::optional<double> low, std::optional<double> high) const;
  Tensor cast(DType dtype) const;
  Tensor bitcast(DType dtype) const;
  Tensor lt(const Tensor& o) const;
  Tensor gt(const Tensor& o) const;
  Tensor le(const Tensor& o) const;
  Tensor ge(const Tensor& o) const;
  Tensor eq(const Tensor& o) const;
  Tensor ne(const Tensor& o) const;
  Tensor logical_and(const Tensor& o) const;
  Tensor logical_or(const Tensor& o) const;
  Tensor logical_xor(const Tensor& o) const;
  Tensor logical_not() const;
  Tensor bitwise_and(const Tensor& o) const;
  Tensor bitwise_or(const Tensor& o) const;
  Tensor bitwise_xor(const Tensor& o) const;
  Tensor shl(int64_t bits) const;
  Tensor shr(int64_t bits) const;
  // Tensor op host number: the number becomes a constant of the promoted type.
  Tensor scalar_like(Scalar value) const;

  // ---- reductions (no axes: all of them)
  Tensor sum(const Axes& axes = {}, bool keepdim = false) const;
  Tensor max(const Axes& axes = {}, bool keepdim = false) const;
  Tensor min(const Axes& axes = {}, bool keepdim = false) const;
  Tensor mean(const Axes& axes = {}, bool keepdim = false) const;
  Tensor var(const Axes& axes = {}, bool keepdim = false, int64_t correction = 1) const;
  Tensor std(const Axes& axes = {}, bool keepdim = false, int64_t correction = 1) const;
  Tensor argmax(std::optional<int> axis = std::nullopt, bool keepdim = false) const;  // int32, first maximum
  Tensor argmin(std::optional<int> axis = std::nullopt, bool keepdim = false) const;

  // ---- movement (views: they become index arithmetic, never copies)
  Tensor reshape(Shape shape) const;  // one extent may be -1
  Tensor permute(std::vector<int> order) const;
  Tensor transpose(int a = -2, int b = -1) const;
  Tensor expand(Shape shape) const;   // -1 keeps an extent
  Tensor broadcast_to(const Shape& shape) const;
  Tensor pad(const std::vector<std::pair<int64_t, int64_t>>& pads, Scalar value = 0) const;
  Tensor shrink(const std::vector<std::pair<int64_t, int64_t>>& ranges) const;
  // Python-style slice of one axis: negative indices count from the end; step may be negative.
  Tensor slice(int axis, std::optional<int64_t> start, std::optional<int64_t> stop, int64_t step = 1) const;
  Tensor select(int axis, int64_t index) const;  // drops the axis
  Tensor flip(const Axes& axes) const;
  Tensor squeeze(std::optional<int> axis = std::nullopt) const;
  Tensor unsqueeze(int axis) const;
  Tensor flatten(int start = 0, int end = -1) const;
  Tensor repeat(const std::vector<int64_t>& times) const;
  static Tensor cat(const std::vector<Tensor>& tensors, int axis = 0);
  static Tensor stack(const std::vector<Tensor>& tensors, int axis = 0);
  static Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);

  // ---- linear algebra: batched, broadcasting like numpy.matmul
  Tensor matmul(const Tensor& o) const;
  Tensor dot(const Tensor& o) const { return matmul(o); }

  // ---- evaluation and host access
  Tensor contiguous() const;
  Tensor& realize();
  Tensor to(Device* device) const;
  template <class T>
  std::vector<T> to_vector() const;
  template <class T>
  T item() const;
  // The stored bytes, row-major, in this tensor's dtype (16-bit floats as their bits).
  std::vector<unsigned char> to_bytes() const;
  // Overwrites this tensor's memory (realized first) with numel() values of its dtype from the
  // host: how a persistent tensor (a learning rate, a captured step's constant) gets new values.
  void copy_from_host(const void* data);
  // The reverse: numel() values of its dtype into `data` (realized first), without to_bytes()'s
  // allocation: how gradients reach a host buffer to be summed across processes.
  void copy_to_host(void* data) const;

  // ---- autograd
  Tensor& requires_grad_(bool on = true);
  bool requires_grad() const;
  Tensor grad() const;  // undefined until backward() reached this tensor
  void zero_grad();
  // Replaces the gradient (like assigning to torch's .grad): same shape, cast to grad_dtype().
  void set_grad(const Tensor& grad);
  // The dtype backward() stores this tensor's gradient in (its own unless set): bf16 gradients of
  // float32 master weights halve their memory. Accumulation adds in the wider of the two dtypes.
  Tensor& set_grad_dtype(DType dtype);
  DType grad_dtype() const;
  void backward();      // from a scalar float tensor; accumulates into .grad()
  Tensor detach() const;
  // In-place update of this tensor's buffer (optimizer steps). Shapes and dtypes must match.
  Tensor& assign(const Tensor& value);

 private:
  std::shared_ptr<TensorImpl> impl_;
  void read_host(void* out, DType as) const;
  Tensor reduce_op(Op op, const Axes& axes, bool keepdim, const char* name) const;
  friend void realize(std::vector<Tensor> tensors);
};

// Realizes several tensors in one schedule (shared work is computed once).
void realize(std::vector<Tensor> tensors);

// While alive, new ops record no history for autograd (like torch.no_grad()).
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};
bool grad_enabled();

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator+(const Tensor& a, Scalar b);
Tensor operator-(const Tensor& a, Scalar b);
Tensor operator*(const Tensor& a, Scalar b);
Tensor operator/(const Tensor& a, Scalar b);
Tensor operator+(Scalar a, const Tensor& b);
Tensor operator-(Scalar a, const Tensor& b);
Tensor operator*(Scalar a, const Tensor& b);
Tensor operator/(Scalar a, const Tensor& b);
Tensor operator-(const Tensor& a);
Tensor operator<(const Tensor& a, const Tensor& b);
Tensor operator>(const Tensor& a, const Tensor& b);
Tensor operator<(const Tensor& a, Scalar b);
Tensor operator>(const Tensor& a, Scalar b);

// ---- host conversion helpers used by to_vector / from_vector
void convert_to_host(const void* src, DType from, void* dst, DType to, int64_t n);

template <class T>
constexpr DType host_dtype() {
  if constexpr (std::is_same_v<T, bool>) return DType::Bool;
  else if constexpr (std::is_same_v<T, uint8_t>) return DType::UInt8;
  else if constexpr (std::is_same_v<T, int32_t>) return DType::Int32;
  else if constexpr (std::is_same_v<T, uint32_t>) return DType::UInt32;
  else if constexpr (std::is_same_v<T, int64_t>) return DType::Int64;
  else if constexpr (std::is_same_v<T, float>) return DType::Float32;
  else static_assert(sizeof(T) == 0, "unsupported host type: use bool, uint8_t, int32_t, uint32_t, int64_t or float");
}

template <class T>
Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape, DType dtype, Device* device) {
  if constexpr (std::is_same_v<T, double>) {
    std::vector<float> f(values.begin(), values.end());
    return from_vector(f, shape, dtype, device);
  } else {
    check(static_cast<int64_t>(values.size()) == lathe::numel(shape),
          "from_vector: " + std::to_string(values.size()) + " values for shape " + to_string(shape));
    std::vector<unsigned char> bytes(values.size() * itemsize(dtype));
    if constexpr (std::is_same_v<T, bool>) {
      std::vector<uint8_t> b(values.begin(), values.end());
      convert_to_host(b.data(), DType::Bool, bytes.data(), dtype, static_cast<int64_t>(values.size()));
    } else {
      convert_to_host(values.data(), host_dtype<T>(), bytes.data(), dtype, static_cast<int64_t>(values.size()));
    }
    return from_data(bytes.data(), shape, dtype, device);
  }
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  if constexpr (std::is_same_v<T, double>) {
    std::vector<float> f = to_vector<float>();
    return std::vector<double>(f.begin(), f.end());
  } else if constexpr (std::is_same_v<T, bool>) {
    std::vector<uint8_t> b = to_vector<uint8_t>();
    return std::vector<bool>(b.begin(), b.end());
  } else {
    std::vector<T> out(static_cast<size_t>(numel()));
    read_host(out.data(), host_dtype<T>());
    return out;
  }
}

template <class T>
T Tensor::item() const {
  check(numel() == 1, "item(): tensor of shape " + to_string(shape()) + " has " + std::to_string(numel()) + " elements, not 1");
  return to_vector<T>()[0];
}

}  // namespace lathe
