// Elementwise math, composed from the primitive unary/binary/ternary ops.
#include <cmath>
#include <numbers>

#include "lathe/tensor.h"
#include "tensor_impl.h"

namespace lathe {
namespace {

// Zeros shaped like x whose gradient with respect to x is 0 (for any x, inf and NaN included):
// it keeps x in the graph where PyTorch defines a zero gradient (sign, x ** 0), so that
// backward() gives x a zero .grad() instead of none. The condition is true for every value.
Tensor zero_gradient_of(const Tensor& x) {
  return Tensor::where(x.eq(x).logical_or(x.ne(x)), x.zeros_like(), x);
}

// Broadcast both operands to a common shape and dtype.
std::pair<NodeRef, NodeRef> align(const Tensor& a, const Tensor& b, const char* op, std::optional<DType> force = {}) {
  Shape out = broadcast_shapes(a.shape(), b.shape(), op);
  DType t = force ? *force : promote(a.dtype(), b.dtype());
  return {a.cast(t).broadcast_to(out).node(), b.cast(t).broadcast_to(out).node()};
}

Tensor binary(Op op, const Tensor& a, const Tensor& b, const char* name, std::optional<DType> force = {}) {
  auto [x, y] = align(a, b, name, force);
  return wrap(node_binary(op, x, y));
}

Tensor unary(Op op, const Tensor& x) { return wrap(node_unary(op, x.node())); }

// Float math on integer inputs first casts to the default float, as in PyTorch.
Tensor as_float(const Tensor& x) { return is_float(x.dtype()) ? x : x.cast(kDefaultFloat); }

// A function built from several primitives that PyTorch runs as one op (exp, sigmoid, silu,
// ...): on a 16-bit float it computes in float32 and rounds once, as that op does, instead of
// after each primitive (fewer roundings, and the conversions stay out of the arithmetic).
template <typename F>
Tensor rounded_once(const Tensor& x, F f) {
  if (x.dtype() != DType::BFloat16 && x.dtype() != DType::Float16) return f(as_float(x));
  return f(x.cast(DType::Float32)).cast(x.dtype());
}

}  // namespace

Tensor Tensor::scalar_like(Scalar value) const {
  DType t = dtype();
  if (value.is_float && !is_float(t)) t = kDefaultFloat;
  if (!value.is_float && t == DType::Bool && value.value != 0 && value.value != 1) t = DType::Int32;
  return full(shape(), value, t, device());
}

Tensor Tensor::cast(DType to) const { return to == dtype() ? *this : wrap(node_cast(node(), to)); }
Tensor Tensor::bitcast(DType to) const { return wrap(node_bitcast(node(), to)); }

Tensor Tensor::add(const Tensor& o) const { return binary(Op::Add, *this, o, "add"); }
Tensor Tensor::mul(const Tensor& o) const { return binary(Op::Mul, *this, o, "mul"); }
Tensor Tensor::sub(const Tensor& o) const {
  auto [x, y] = align(*this, o, "sub");
  check(x->dtype != DType::Bool, [&] { return "sub: subtraction of bool tensors is not defined; use logical_xor"; });
  return wrap(node_binary(Op::Add, x, node_unary(Op::Neg, y)));
}
Tensor Tensor::div(const Tensor& o) const {
  DType t = promote(dtype(), o.dtype());
  if (!is_float(t)) t = kDefaultFloat;
  auto [x, y] = align(*this, o, "div", t);
  return wrap(node_binary(Op::Mul, x, node_unary(Op::Recip, y)));
}
Tensor Tensor::idiv(const Tensor& o) const { return binary(Op::IDiv, *this, o, "idiv"); }
Tensor Tensor::mod(const Tensor& o) const { return binary(Op::Mod, *this, o, "mod"); }
Tensor Tensor::maximum(const Tensor& o) const { return binary(Op::Max, *this, o, "maximum"); }
Tensor Tensor::minimum(const Tensor& o) const { return neg().maximum(o.neg()).neg(); }

Tensor Tensor::neg() const {
  if (dtype() == DType::Bool) return logical_not();
  return unary(Op::Neg, *this);
}
Tensor Tensor::reciprocal() const { return unary(Op::Recip, as_float(*this)); }
Tensor Tensor::exp2() const { return unary(Op::Exp2, as_float(*this)); }
Tensor Tensor::log2() const { return unary(Op::Log2, as_float(*this)); }
Tensor Tensor::exp() const {
  return rounded_once(*this, [](const Tensor& x) { return (x * (1.0 / std::numbers::ln2)).exp2(); });
}
Tensor Tensor::log() const {
  return rounded_once(*this, [](const Tensor& x) { return x.log2() * std::numbers::ln2; });
}
Tensor Tensor::sqrt() const { return unary(Op::Sqrt, as_float(*this)); }
Tensor Tensor::rsqrt() const {
  return rounded_once(*this, [](const Tensor& x) { return x.sqrt().reciprocal(); });
}
Tensor Tensor::sin() const { return unary(Op::Sin, as_float(*this)); }
Tensor Tensor::cos() const {
  return rounded_once(*this, [](const Tensor& x) { return (std::numbers::pi / 2 - x).sin(); });
}
Tensor Tensor::trunc() const { return unary(Op::Trunc, as_float(*this)); }
Tensor Tensor::floor() const {
  Tensor t = trunc();
  return where(as_float(*this) < t, t - 1.0, t);
}
Tensor Tensor::sigmoid() const {
  return rounded_once(*this, [](const Tensor& x) { return (1.0 + (-x).exp()).reciprocal(); });
}
Tensor Tensor::tanh() const {
  return rounded_once(*this, [](const Tensor& x) { return 2.0 * (2.0 * x).sigmoid() - 1.0; });
}
Tensor Tensor::relu() const { return where(*this > 0, *this, zeros_like()); }
Tensor Tensor::silu() const {
  return rounded_once(*this, [](const Tensor& x) { return x * x.sigmoid(); });
}
Tensor Tensor::square() const { return *this * *this; }
// The gradient is sign(x), 0 at zero as in PyTorch (x * 0 carries it), and NaN stays NaN.
Tensor Tensor::abs() const { return where(*this < 0, neg(), where(*this > 0, *this, *this * 0)); }
Tensor Tensor::sign() const {
  Tensor one = ones_like(), zero = zeros_like();
  Tensor s = where(*this > 0, one, where(*this < 0, -one, zero));
  return is_float(dtype()) ? s + zero_gradient_of(*this) : s;
}

// Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7), odd extension for x < 0.
Tensor Tensor::erf() const {
  Tensor x = as_float(*this);
  Tensor ax = x.abs();
  Tensor t = (1.0 + 0.3275911 * ax).reciprocal();
  Tensor poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  Tensor y = 1.0 - poly * (-(ax * ax)).exp();
  return where(x < 0, -y, y);
}

Tensor Tensor::gelu(bool tanh_approximation) const {
  Tensor x = as_float(*this);
  if (tanh_approximation)
    return 0.5 * x * (1.0 + (std::sqrt(2.0 / std::numbers::pi) * (x + 0.044715 * x * x * x)).tanh());
  return 0.5 * x * (1.0 + (x * (1.0 / std::numbers::sqrt2)).erf());
}

Tensor Tensor::pow(const Tensor& o) const {
  // exp2(b * log2|a|), with the sign of a negative base for integer exponents (odd: negative,
  // even: positive; otherwise NaN, as in PyTorch), and 0^b = 0 for b > 0, 1 for b = 0.
  DType t = promote(dtype(), o.dtype());
  if (!is_float(t)) t = kDefaultFloat;
  auto [an, bn] = align(*this, o, "pow", t);
  Tensor a(an), b(bn);
  Tensor mag = (b * a.abs().log2()).exp2();
  Tensor b_int = b.trunc().eq(b);
  Tensor b_odd = b_int.logical_and((b - 2.0 * (b * 0.5).trunc()).ne(a.zeros_like()));
  Tensor nan = a.full_like(std::nan(""));
  Tensor neg_base = where(b_int, where(b_odd, -mag, mag), nan);
  Tensor r = where(a < 0, neg_base, mag);
  Tensor zero_base = where(b.eq(b.zeros_like()), b.ones_like(), where(b > 0, b.zeros_like(), b.full_like(INFINITY)));
  return where(a.eq(a.zeros_like()), zero_base, r);
}
Tensor Tensor::pow(Scalar e) const {
  if (!e.is_float || e.value == std::floor(e.value)) {
    if (e.value == 2) return as_float(*this) * as_float(*this);
    if (e.value == 1) return as_float(*this);
    if (e.value == 0) return as_float(*this).ones_like() + zero_gradient_of(as_float(*this));
    if (e.value == -1) return reciprocal();
  }
  if (e.value == 0.5) return sqrt();
  return pow(as_float(*this).scalar_like(e));
}

// Low first, then high (so low > high gives high everywhere); the gradient passes only strictly
// inside (low, high), 0 at the bounds as in PyTorch 2.15; NaN stays NaN.
Tensor Tensor::clamp(std::optional<double> low, std::optional<double> high) const {
  Tensor r = *this;
  if (low) r = where(r.le(r.scalar_like(*low)), r.scalar_like(*low), r);
  if (high) r = where(r.ge(r.scalar_like(*high)), r.scalar_like(*high), r);
  return r;
}

Tensor Tensor::lt(const Tensor& o) const { return binary(Op::CmpLt, *this, o, "lt"); }
Tensor Tensor::gt(const Tensor& o) const { return o.lt(*this); }
Tensor Tensor::le(const Tensor& o) const { return gt(o).logical_not(); }
Tensor Tensor::ge(const Tensor& o) const { return lt(o).logical_not(); }
Tensor Tensor::ne(const Tensor& o) const { return binary(Op::CmpNe, *this, o, "ne"); }
Tensor Tensor::eq(const Tensor& o) const { return ne(o).logical_not(); }

Tensor Tensor::logical_and(const Tensor& o) const { return binary(Op::And, cast(DType::Bool), o.cast(DType::Bool), "logical_and"); }
Tensor Tensor::logical_or(const Tensor& o) const { return binary(Op::Or, cast(DType::Bool), o.cast(DType::Bool), "logical_or"); }
Tensor Tensor::logical_xor(const Tensor& o) const { return binary(Op::Xor, cast(DType::Bool), o.cast(DType::Bool), "logical_xor"); }
Tensor Tensor::logical_not() const { return logical_xor(full(shape(), 1, DType::Bool, device())); }
Tensor Tensor::bitwise_and(const Tensor& o) const { return binary(Op::And, *this, o, "bitwise_and"); }
Tensor Tensor::bitwise_or(const Tensor& o) const { return binary(Op::Or, *this, o, "bitwise_or"); }
Tensor Tensor::bitwise_xor(const Tensor& o) const { return binary(Op::Xor, *this, o, "bitwise_xor"); }
Tensor Tensor::shl(int64_t bits) const { return binary(Op::Shl, *this, scalar_like(Scalar(static_cast<long long>(bits))), "shl"); }
Tensor Tensor::shr(int64_t bits) const { return binary(Op::Shr, *this, scalar_like(Scalar(static_cast<long long>(bits))), "shr"); }

Tensor Tensor::where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  Shape out = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
  DType t = promote(a.dtype(), b.dtype());
  return wrap(node_where(cond.cast(DType::Bool).broadcast_to(out).node(), a.cast(t).broadcast_to(out).node(),
                         b.cast(t).broadcast_to(out).node()));
}

Tensor operator+(const Tensor& a, const Tensor& b) { return a.add(b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return a.sub(b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return a.mul(b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return a.div(b); }
Tensor operator+(const Tensor& a, Scalar b) { return a.add(a.scalar_like(b)); }
Tensor operator-(const Tensor& a, Scalar b) { return a.sub(a.scalar_like(b)); }
Tensor operator*(const Tensor& a, Scalar b) { return a.mul(a.scalar_like(b)); }
Tensor operator/(const Tensor& a, Scalar b) { return a.div(a.scalar_like(b)); }
Tensor operator+(Scalar a, const Tensor& b) { return b.scalar_like(a).add(b); }
Tensor operator-(Scalar a, const Tensor& b) { return b.scalar_like(a).sub(b); }
Tensor operator*(Scalar a, const Tensor& b) { return b.scalar_like(a).mul(b); }
Tensor operator/(Scalar a, const Tensor& b) { return b.scalar_like(a).div(b); }
Tensor operator-(const Tensor& a) { return a.neg(); }
Tensor operator<(const Tensor& a, const Tensor& b) { return a.lt(b); }
Tensor operator>(const Tensor& a, const Tensor& b) { return a.gt(b); }
Tensor operator<(const Tensor& a, Scalar b) { return a.lt(a.scalar_like(b)); }
Tensor operator>(const Tensor& a, Scalar b) { return a.gt(a.scalar_like(b)); }

}  // namespace lathe
