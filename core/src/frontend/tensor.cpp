// Tensor handles: construction from host data, properties, realize, host reads, assign.
#include "lathe/tensor.h"

#include <cmath>
#include <cstring>
#include <mutex>

#include "lathe/backends.h"
#include "lathe/buffer.h"
#include "lathe/device.h"
#include "lathe/runtime.h"
#include "tensor_impl.h"

namespace lathe {
namespace {

thread_local bool g_grad_enabled = true;

struct GradRegistry {
  std::mutex mu;
  std::vector<std::weak_ptr<TensorImpl>> items;
};
GradRegistry& grad_registry() {
  static GradRegistry r;
  return r;
}

}  // namespace

bool grad_enabled() { return g_grad_enabled; }
NoGradGuard::NoGradGuard() : previous_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = previous_; }

void register_requires_grad(const std::shared_ptr<TensorImpl>& impl) {
  auto& r = grad_registry();
  std::lock_guard<std::mutex> lock(r.mu);
  std::erase_if(r.items, [](auto& w) { return w.expired(); });
  r.items.push_back(impl);
}

std::vector<std::shared_ptr<TensorImpl>> tensors_requiring_grad() {
  auto& r = grad_registry();
  std::lock_guard<std::mutex> lock(r.mu);
  std::vector<std::shared_ptr<TensorImpl>> out;
  for (auto& w : r.items)
    if (auto p = w.lock(); p && p->requires_grad) out.push_back(p);
  return out;
}

Tensor wrap(NodeRef node) {
  if (!g_grad_enabled && node->tracks_grad) node = node_detach(node);
  return Tensor(std::move(node));
}

Device* resolve(Device* device) { return device ? device : default_device(); }

Tensor::Tensor(NodeRef node) : impl_(std::make_shared<TensorImpl>()) { impl_->node = std::move(node); }

const NodeRef& Tensor::node() const {
  check(impl_ != nullptr, [&] { return "use of an undefined Tensor (default-constructed, or a grad that backward() never reached)"; });
  return impl_->node;
}
const Shape& Tensor::shape() const { return node()->shape; }
int64_t Tensor::size(int axis) const { return shape()[normalize_axis(axis, ndim(), "size")]; }
int64_t Tensor::numel() const { return lathe::numel(shape()); }
DType Tensor::dtype() const { return node()->dtype; }
Device* Tensor::device() const { return node()->device; }

Tensor Tensor::from_data(const void* data, const Shape& shape, DType dtype, Device* device) {
  for (int64_t s : shape) check(s >= 0, [&] { return "from_data: negative extent in shape " + to_string(shape); });
  device = resolve(device);
  auto buffer = std::make_shared<Buffer>(device, dtype, lathe::numel(shape));
  buffer->copy_in(data);
  return Tensor(node_buffer(buffer, dtype, shape));
}

Tensor Tensor::scalar(Scalar value, DType dtype, Device* device) { return full({}, value, dtype, device); }

Tensor Tensor::full(const Shape& shape, Scalar value, DType dtype, Device* device) {
  for (int64_t s : shape) check(s >= 0, [&] { return "full: negative extent in shape " + to_string(shape); });
  return Tensor(node_const(value.value, dtype, shape, resolve(device)));
}
Tensor Tensor::zeros(const Shape& shape, DType dtype, Device* device) { return full(shape, 0, dtype, device); }
Tensor Tensor::ones(const Shape& shape, DType dtype, Device* device) { return full(shape, 1, dtype, device); }
Tensor Tensor::zeros_like() const { return full(shape(), 0, dtype(), device()); }
Tensor Tensor::ones_like() const { return full(shape(), 1, dtype(), device()); }
Tensor Tensor::full_like(Scalar value) const { return full(shape(), value, dtype(), device()); }

namespace {

// 0..n-1 as int32. Small ranges come from the host; larger ones are built from two small
// ones (i*b + j) so that no O(n) host array is needed and consumers fuse the index math.
Tensor iota(int64_t n, Device* device) {
  constexpr int64_t kHostLimit = 4096;
  if (n <= kHostLimit) {
    std::vector<int32_t> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) v[i] = static_cast<int32_t>(i);
    return Tensor::from_vector(v, {n}, DType::Int32, device);
  }
  int64_t b = kHostLimit, a = (n + b - 1) / b;
  Tensor hi = iota(a, device).reshape({a, 1}) * Scalar(static_cast<int>(b));
  Tensor lo = iota(b, device).reshape({1, b});
  return (hi + lo).reshape({a * b}).shrink({{0, n}});
}

}  // namespace

Tensor Tensor::arange(double start, double stop, double step, DType dtype, Device* device) {
  check(step != 0, [&] { return "arange: step must not be zero"; });
  int64_t n = std::max<int64_t>(0, static_cast<int64_t>(std::ceil((stop - start) / step)));
  device = resolve(device);
  Tensor idx = iota(n, device);
  if (is_float(dtype)) return (idx.cast(DType::Float32) * step + start).cast(dtype);
  bool integral = std::floor(start) == start && std::floor(step) == step;
  check(integral, [&] { return "arange: integer dtype " + std::string(dtype_name(dtype)) + " needs integer start and step"; });
  DType wide = dtype == DType::Int64 ? DType::Int64 : DType::Int32;
  return (idx.cast(wide) * Scalar(static_cast<long long>(step)) + Scalar(static_cast<long long>(start))).cast(dtype);
}

Tensor Tensor::eye(int64_t n, int64_t m, DType dtype, Device* device) {
  if (m < 0) m = n;
  Tensor r = arange(0, static_cast<double>(n), 1, DType::Int32, device).reshape({n, 1});
  Tensor c = arange(0, static_cast<double>(m), 1, DType::Int32, device).reshape({1, m});
  return r.eq(c).cast(dtype);
}

Tensor Tensor::contiguous() const { return wrap(node_contiguous(node())); }

Tensor& Tensor::realize() {
  realize_nodes({node().get()});
  return *this;
}

void realize(std::vector<Tensor> tensors) {
  std::vector<Node*> roots;
  for (auto& t : tensors) roots.push_back(t.node().get());
  realize_nodes(roots);
}

void Tensor::copy_from_host(const void* data) {
  realize();
  node()->buffer->copy_in(data);
}

Tensor Tensor::to(Device* device) const {
  if (device == this->device()) return *this;
  return wrap(node_copy(node(), device));
}

void convert_to_host(const void* src, DType from, void* dst, DType to, int64_t n) {
  if (n == 0) return;  // an empty vector's data() may be null, which memcpy must not see
  if (from == to) {
    std::memcpy(dst, src, static_cast<size_t>(n) * itemsize(from));
    return;
  }
  auto* s = static_cast<const unsigned char*>(src);
  auto* d = static_cast<unsigned char*>(dst);
  for (int64_t i = 0; i < n; ++i) {
    const unsigned char* p = s + i * itemsize(from);
    unsigned char* q = d + i * itemsize(to);
    double f = 0;
    int64_t v = 0;
    switch (from) {
      case DType::Bool: v = *p != 0; f = static_cast<double>(v); break;
      case DType::UInt8: v = *p; f = static_cast<double>(v); break;
      case DType::Int32: { int32_t x; std::memcpy(&x, p, 4); v = x; f = x; break; }
      case DType::UInt32: { uint32_t x; std::memcpy(&x, p, 4); v = x; f = x; break; }
      case DType::Int64: { std::memcpy(&v, p, 8); f = static_cast<double>(v); break; }
      case DType::Float16: { uint16_t x; std::memcpy(&x, p, 2); f = half_bits_to_float(x); v = static_cast<int64_t>(f); break; }
      case DType::BFloat16: { uint16_t x; std::memcpy(&x, p, 2); f = bfloat16_bits_to_float(x); v = static_cast<int64_t>(f); break; }
      case DType::Float32: { float x; std::memcpy(&x, p, 4); f = x; v = std::isfinite(x) ? static_cast<int64_t>(x) : 0; break; }
    }
    switch (to) {
      case DType::Bool: *q = is_float(from) ? f != 0 : v != 0; break;
      case DType::UInt8: *q = static_cast<uint8_t>(v); break;
      case DType::Int32: { int32_t x = static_cast<int32_t>(v); std::memcpy(q, &x, 4); break; }
      case DType::UInt32: { uint32_t x = static_cast<uint32_t>(v); std::memcpy(q, &x, 4); break; }
      case DType::Int64: std::memcpy(q, &v, 8); break;
      case DType::Float16: { uint16_t x = float_to_half_bits(static_cast<float>(f)); std::memcpy(q, &x, 2); break; }
      case DType::BFloat16: { uint16_t x = float_to_bfloat16_bits(static_cast<float>(f)); std::memcpy(q, &x, 2); break; }
      case DType::Float32: { float x = static_cast<float>(f); std::memcpy(q, &x, 4); break; }
    }
  }
}

void Tensor::read_host(void* out, DType as) const {
  realize_nodes({node().get()});
  Buffer* b = node()->buffer.get();
  std::vector<unsigned char> raw(b->bytes());
  b->copy_out(raw.data());
  convert_to_host(raw.data(), dtype(), out, as, numel());
}

void Tensor::copy_to_host(void* data) const { read_host(data, dtype()); }

std::vector<unsigned char> Tensor::to_bytes() const {
  std::vector<unsigned char> out(static_cast<size_t>(numel()) * itemsize(dtype()));
  read_host(out.data(), dtype());
  return out;
}

Tensor& Tensor::requires_grad_(bool on) {
  node();
  check(!on || is_float(dtype()), [&] { return std::string("requires_grad: only float tensors can require grad, this one is ") + dtype_name(dtype()); });
  impl_->requires_grad = on;
  if (on) {
    // A fresh node so that turning tracking on never changes graphs built earlier.
    NodeRef n = std::make_shared<Node>(*impl_->node);
    n->tracks_grad = true;
    impl_->node = n;
    register_requires_grad(impl_);
  }
  return *this;
}
bool Tensor::requires_grad() const { return impl_ && impl_->requires_grad; }
Tensor Tensor::grad() const {
  node();
  Tensor g;
  g.impl_ = impl_->grad;  // shares the gradient: assign() on it (clipping) updates it in place
  return g;
}
void Tensor::zero_grad() {
  node();
  impl_->grad.reset();
}
Tensor& Tensor::set_grad_dtype(DType dtype) {
  node();
  check(is_float(dtype), std::string("set_grad_dtype: a gradient is a float tensor, not ") + dtype_name(dtype));
  impl_->grad_dtype = dtype;
  return *this;
}
DType Tensor::grad_dtype() const { return impl_->grad_dtype.value_or(dtype()); }
void Tensor::set_grad(const Tensor& grad) {
  check(grad.shape() == shape(), [&] { return "set_grad: gradient " + to_string(grad.shape()) + " does not match tensor " + to_string(shape()); });
  auto g = std::make_shared<TensorImpl>();
  g->node = node_contiguous(grad.cast(grad_dtype()).node());
  g->node->tracks_grad = false;
  impl_->grad = g;
}

Tensor Tensor::detach() const { return Tensor(node_detach(node())); }

Tensor& Tensor::assign(const Tensor& value) {
  Tensor v = value;
  if (v.dtype() != dtype()) v = v.cast(dtype());
  if (v.shape() != shape()) v = v.broadcast_to(shape());
  NodeRef n = node_assign(node(), v.node());
  n->tracks_grad = impl_->requires_grad;  // the updated tensor is a leaf again
  impl_->node = n;
  return *this;
}

}  // namespace lathe
