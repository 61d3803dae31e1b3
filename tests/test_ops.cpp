// ops/: every building block against a float64 reference, with gradients checked.
#include <cmath>
#include <numbers>

#include "grad_check.h"
#include "lathe/ops/attention.h"
#include "lathe/ops/nn.h"
#include "lathe/ops/optim.h"
#include "lathe/ops/rope.h"
#include "lathe/runtime.h"
#include "schedule/schedule.h"

namespace lathe::test {
namespace {

class Ops : public Conformance {};
LATHE_CONFORMANCE(Ops);

double sumf(double a, double b) { return a + b; }

ref::Array ref_log_softmax(const ref::Array& x) {  // over the last axis of a 2-D array
  int64_t n = x.shape[0], c = x.shape[1];
  ref::Array r = x;
  for (int64_t i = 0; i < n; ++i) {
    double m = -INFINITY, s = 0;
    for (int64_t j = 0; j < c; ++j) m = std::max(m, x.v[i * c + j]);
    for (int64_t j = 0; j < c; ++j) s += std::exp(x.v[i * c + j] - m);
    for (int64_t j = 0; j < c; ++j) r.v[i * c + j] = x.v[i * c + j] - m - std::log(s);
  }
  return r;
}

ref::Array ref_rms_norm(const ref::Array& x, const ref::Array& w, double eps) {
  int64_t d = x.shape.back(), rows = x.size() / d;
  ref::Array r = x;
  for (int64_t i = 0; i < rows; ++i) {
    double ms = 0;
    for (int64_t j = 0; j < d; ++j) ms += x.v[i * d + j] * x.v[i * d + j];
    double scale = 1 / std::sqrt(ms / static_cast<double>(d) + eps);
    for (int64_t j = 0; j < d; ++j) r.v[i * d + j] = x.v[i * d + j] * scale * w.v[j];
  }
  return r;
}

// [B, H, T, D] attention with GQA, causal, in float64 loops.
ref::Array ref_attention(const ref::Array& q, const ref::Array& k, const ref::Array& v) {
  int64_t b = q.shape[0], h = q.shape[1], t = q.shape[2], d = q.shape[3], hkv = k.shape[1];
  ref::Array out{q.shape, std::vector<double>(q.v.size())};
  for (int64_t bi = 0; bi < b; ++bi)
    for (int64_t hi = 0; hi < h; ++hi) {
      int64_t g = hi / (h / hkv);
      for (int64_t i = 0; i < t; ++i) {
        std::vector<double> p(static_cast<size_t>(i + 1));
        double m = -INFINITY, s = 0;
        for (int64_t j = 0; j <= i; ++j) {
          double dot = 0;
          for (int64_t e = 0; e < d; ++e) dot += q.v[((bi * h + hi) * t + i) * d + e] * k.v[((bi * hkv + g) * t + j) * d + e];
          p[j] = dot / std::sqrt(static_cast<double>(d));
          m = std::max(m, p[j]);
        }
        for (auto& x : p) s += (x = std::exp(x - m));
        for (int64_t e = 0; e < d; ++e) {
          double acc = 0;
          for (int64_t j = 0; j <= i; ++j) acc += p[j] / s * v.v[((bi * hkv + g) * t + j) * d + e];
          out.v[((bi * h + hi) * t + i) * d + e] = acc;
        }
      }
    }
  return out;
}

ref::Array ref_rope(const ref::Array& x, const std::vector<double>& inv) {  // x [..., T, D]
  int64_t d = x.shape.back(), t = x.shape[x.shape.size() - 2], rows = x.size() / d;
  ref::Array r = x;
  for (int64_t row = 0; row < rows; ++row) {
    int64_t pos = row % t;
    for (int64_t i = 0; i < d; ++i) {
      double angle = static_cast<double>(static_cast<float>(pos) * static_cast<float>(inv[i % (d / 2)]));
      double rot = i < d / 2 ? -x.v[row * d + i + d / 2] : x.v[row * d + i - d / 2];
      r.v[row * d + i] = x.v[row * d + i] * std::cos(angle) + rot * std::sin(angle);
    }
  }
  return r;
}

TEST_P(Ops, LinearSoftmaxLogSoftmax) {
  ref::Array x = ref::random({5, 7}, rng), w = ref::random({3, 7}, rng), b = ref::random({3}, rng);
  ref::Array want = ref::binary(ref::matmul(x, ref::permute(w, {1, 0})), b, sumf);
  EXPECT_TRUE(close(ops::linear(ref::tensor(x), ref::tensor(w), ref::tensor(b)), want, {1e-5, 1e-5}));
  ref::Array big = ref::unary(x, [](double v) { return v * 30; });  // large logits: stability
  ref::Array ls = ref_log_softmax(big);
  EXPECT_TRUE(close(ops::log_softmax(ref::tensor(big)), ls, {1e-5, 1e-5}));
  EXPECT_TRUE(close(ops::softmax(ref::tensor(big)), ref::unary(ls, [](double v) { return std::exp(v); }), {1e-5, 1e-6}));
}

TEST_P(Ops, CrossEntropyWithAndWithoutIgnoreIndex) {
  ref::Array logits = ref::random({6, 5}, rng, -3, 3);
  std::vector<int32_t> targets = {0, 4, 2, 2, 1, 3};
  ref::Array ls = ref_log_softmax(logits);
  double all = 0, kept = 0;
  for (int i = 0; i < 6; ++i) {
    all -= ls.v[i * 5 + targets[i]];
    if (targets[i] != 2) kept -= ls.v[i * 5 + targets[i]];
  }
  Tensor t = Tensor::from_vector(targets, {6}, DType::Int32);
  EXPECT_NEAR(ops::cross_entropy(ref::tensor(logits), t).item<float>(), all / 6, 1e-6);
  EXPECT_NEAR(ops::cross_entropy(ref::tensor(logits), t, 2).item<float>(), kept / 4, 1e-6);
  // [B, T, C] logits with [B, T] targets
  EXPECT_NEAR(ops::cross_entropy(ref::tensor(logits).reshape({2, 3, 5}), t.reshape({2, 3})).item<float>(), all / 6, 1e-6);
  EXPECT_THROW(ops::cross_entropy(ref::tensor(logits), t.reshape({2, 3})), Error);
}

TEST_P(Ops, RmsNormSwigluEmbeddingOneHot) {
  ref::Array x = ref::random({2, 3, 8}, rng), w = ref::random({8}, rng);
  EXPECT_TRUE(close(ops::rms_norm(ref::tensor(x), ref::tensor(w), 1e-5), ref_rms_norm(x, w, 1e-5), {1e-5, 1e-6}));
  ref::Array g = ref::random({4, 6}, rng), u = ref::random({4, 6}, rng);
  EXPECT_TRUE(close(ops::swiglu(ref::tensor(g), ref::tensor(u)),
                    ref::binary(g, u, [](double a, double b) { return a / (1 + std::exp(-a)) * b; }), {1e-5, 1e-6}));
  ref::Array table = ref::random({10, 4}, rng);
  std::vector<int32_t> ids = {3, 0, 9, 3, 7};
  Tensor emb = ops::embedding(Tensor::from_vector(ids, {5}, DType::Int32), ref::tensor(table));
  std::vector<int64_t> idx(ids.begin(), ids.end());
  EXPECT_TRUE(close(emb, ref::gather_axis(table, 0, idx)));
  EXPECT_THROW(ops::check_ids(Tensor::from_vector(std::vector<int32_t>{1, 10}, {2}, DType::Int32), 10, "tokens.npy"), Error);
  EXPECT_NO_THROW(ops::check_ids(Tensor::from_vector(ids, {5}, DType::Int32), 10, "tokens.npy"));
}

TEST_P(Ops, DropoutKeepsExpectationAndIsIdentityInEval) {
  Tensor::manual_seed(3);
  Tensor x = Tensor::ones({100000});
  std::vector<float> y = ops::dropout(x, 0.25, true).to_vector<float>();
  int zeros = 0;
  double total = 0;
  for (float v : y) {
    zeros += v == 0;
    total += v;
    ASSERT_TRUE(v == 0 || std::abs(v - 1 / 0.75) < 1e-6) << v;
  }
  EXPECT_NEAR(zeros / 100000.0, 0.25, 0.01);
  EXPECT_NEAR(total / 100000.0, 1.0, 0.02);
  EXPECT_EQ(ops::dropout(x, 0.25, false).node(), x.node());
}

TEST_P(Ops, RopeWithAndWithoutLlama3Scaling) {
  ops::Llama3RopeScaling s{8.0, 1.0, 4.0, 8192};
  // The published Llama 3.1 rule, evaluated independently.
  std::vector<double> plain = ops::rope_inverse_frequencies(128, 500000, std::nullopt);
  std::vector<double> scaled = ops::rope_inverse_frequencies(128, 500000, s);
  for (size_t i = 0; i < plain.size(); ++i) {
    double f = 1 / std::pow(500000.0, 2.0 * static_cast<double>(i) / 128), wl = 2 * std::numbers::pi / f, want;
    if (wl < 8192 / 4.0) want = f;
    else if (wl > 8192 / 1.0) want = f / 8;
    else {
      double sm = (8192 / wl - 1) / 3;
      want = (1 - sm) * f / 8 + sm * f;
    }
    EXPECT_NEAR(plain[i], f, 1e-15);
    EXPECT_NEAR(scaled[i], want, 1e-12 * f);
  }
  EXPECT_LT(scaled.back(), plain.back());  // the lowest frequency was stretched
  EXPECT_EQ(scaled.front(), plain.front());  // the highest was not
  ref::Array x = ref::random({2, 3, 5, 8}, rng);
  for (auto scaling : {std::optional<ops::Llama3RopeScaling>{}, std::optional<ops::Llama3RopeScaling>{ops::Llama3RopeScaling{4, 1, 4, 4}}}) {
    auto tables = ops::rope_tables(5, 8, 10000, scaling);
    EXPECT_TRUE(close(ops::apply_rope(ref::tensor(x), tables), ref_rope(x, ops::rope_inverse_frequencies(8, 10000, scaling)), {1e-5, 1e-5}));
  }
}

TEST_P(Ops, CausalAttentionWithGroupedQueries) {
  for (int64_t hkv : {4, 2, 1}) {
    ref::Array q = ref::random({2, 4, 6, 8}, rng), k = ref::random({2, hkv, 6, 8}, rng), v = ref::random({2, hkv, 6, 8}, rng);
    Tensor got = ops::scaled_dot_product_attention(ref::tensor(q), ref::tensor(k), ref::tensor(v));
    EXPECT_TRUE(close(got, ref_attention(q, k, v), {1e-5, 1e-5})) << hkv << " kv heads";
  }
  Tensor q = Tensor::zeros({1, 3, 2, 4}), k = Tensor::zeros({1, 2, 2, 4});
  EXPECT_THROW(ops::scaled_dot_product_attention(q, k, k), Error);
}

// At long sequences (T >= 4 (D + D / group), and score matrices over LATHE_RECOMPUTE_MIB, here
// 0) the scores are recomputed inside each reduction that reads them: neither the forward nor
// the backward stores a T x T matrix per head.
TEST_P(Ops, LongSequenceAttentionNeverStoresScoresPerHead) {
  struct Env {
    Env() { setenv("LATHE_RECOMPUTE_MIB", "0", 1); }
    ~Env() { unsetenv("LATHE_RECOMPUTE_MIB"); }
  } env;
  const int64_t H = 2, T = 256, D = 8;
  ref::Array q = ref::random({1, H, T, D}, rng), k = ref::random({1, 1, T, D}, rng), v = ref::random({1, 1, T, D}, rng);
  Tensor tq = ref::tensor(q).realize().requires_grad_(), tk = ref::tensor(k).realize().requires_grad_(),
         tv = ref::tensor(v).realize().requires_grad_();
  Tensor out = ops::scaled_dot_product_attention(tq, tk, tv);
  for (auto& item : create_schedule({out.node().get()}))
    EXPECT_LT(numel(item.node->shape), H * T * T) << "stored " << op_name(item.node->op) << " " << to_string(item.node->shape);
  EXPECT_TRUE(close(out, ref_attention(q, k, v), {1e-5, 1e-5}));
  // The backward's largest buffers are the mask ([T, T] booleans shared by the heads) and
  // [H, T, D] values: far below one float32 score matrix per head.
  Tensor loss = (out * out).sum();
  int64_t live = runtime_stats().bytes_live;
  runtime_stats().reset_peak();
  loss.backward();
  EXPECT_LT(runtime_stats().bytes_peak - live, H * T * T * 4 / 2);
  // Gradients against finite differences of the float64 reference, at a smaller size.
  GradCase c{"long attention", [](auto& t) { return ops::scaled_dot_product_attention(t[0], t[1], t[2]); },
             [](auto& a) { return ref_attention(a[0], a[1], a[2]); }, {{1, 2, 64, 4}, {1, 1, 64, 4}, {1, 1, 64, 4}}};
  check_case(c, rng);
}

// At a size where the work-group heuristics pick their tallest tiles for the recomputing
// kernels (T = 512, D = 64), the recomputed forward and gradients agree with the stored-score
// path, which the float64 checks above cover at smaller sizes.
TEST_P(Ops, RecomputedAttentionMatchesStoredScoresAtSize) {
  const int64_t H = 2, T = 512, D = 64;
  ref::Array q = ref::random({1, H, T, D}, rng, -1, 1), k = ref::random({1, 1, T, D}, rng, -1, 1),
             v = ref::random({1, 1, T, D}, rng, -1, 1);
  auto run = [&](const char* recompute_mib) {
    setenv("LATHE_RECOMPUTE_MIB", recompute_mib, 1);
    Tensor tq = ref::tensor(q).realize().requires_grad_(), tk = ref::tensor(k).realize().requires_grad_(),
           tv = ref::tensor(v).realize().requires_grad_();
    Tensor out = ops::scaled_dot_product_attention(tq, tk, tv);
    (out * out).sum().backward();
    std::vector<std::vector<float>> got = {out.to_vector<float>(), tq.grad().to_vector<float>(), tk.grad().to_vector<float>(),
                                           tv.grad().to_vector<float>()};
    unsetenv("LATHE_RECOMPUTE_MIB");
    return got;
  };
  auto recomputed = run("0"), stored = run("4096");
  const char* names[] = {"output", "dq", "dk", "dv"};
  for (size_t i = 0; i < recomputed.size(); ++i) {
    double worst = 0, scale = 0;
    for (size_t j = 0; j < stored[i].size(); ++j) {
      worst = std::max(worst, static_cast<double>(std::abs(recomputed[i][j] - stored[i][j])));
      scale = std::max(scale, static_cast<double>(std::abs(stored[i][j])));
    }
    EXPECT_LE(worst, 1e-4 * scale) << names[i] << ": largest difference " << worst << " of values up to " << scale;
  }
}

TEST_P(Ops, Gradients) {
  Tensor targets = Tensor::from_vector(std::vector<int32_t>{1, 0, 3}, {3}, DType::Int32);
  Tensor ids = Tensor::from_vector(std::vector<int32_t>{2, 0, 2, 1}, {4}, DType::Int32);
  auto rope = ops::rope_tables(4, 6, 10000, std::nullopt);
  std::vector<double> inv = ops::rope_inverse_frequencies(6, 10000, std::nullopt);
  std::vector<GradCase> cases = {
      {"linear", [](auto& t) { return ops::linear(t[0], t[1], t[2]); },
       [](auto& a) { return ref::binary(ref::matmul(a[0], ref::permute(a[1], {1, 0})), a[2], sumf); }, {{3, 4}, {5, 4}, {5}}},
      {"log_softmax", [](auto& t) { return ops::log_softmax(t[0]); }, [](auto& a) { return ref_log_softmax(a[0]); }, {{3, 5}}},
      {"cross_entropy", [&](auto& t) { return ops::cross_entropy(t[0], targets).reshape({1}); },
       [](auto& a) {
         ref::Array ls = ref_log_softmax(a[0]);
         return ref::Array{{1}, {-(ls.v[0 * 4 + 1] + ls.v[1 * 4 + 0] + ls.v[2 * 4 + 3]) / 3}};
       },
       {{3, 4}}},
      {"rms_norm", [](auto& t) { return ops::rms_norm(t[0], t[1], 1e-5); }, [](auto& a) { return ref_rms_norm(a[0], a[1], 1e-5); }, {{3, 6}, {6}}},
      {"swiglu", [](auto& t) { return ops::swiglu(t[0], t[1]); },
       [](auto& a) { return ref::binary(a[0], a[1], [](double g, double u) { return g / (1 + std::exp(-g)) * u; }); }, {{5}, {5}}},
      {"embedding", [&](auto& t) { return ops::embedding(ids, t[0]); }, [](auto& a) { return ref::gather_axis(a[0], 0, {2, 0, 2, 1}); }, {{3, 5}}},
      {"rope", [&](auto& t) { return ops::apply_rope(t[0], rope); }, [&](auto& a) { return ref_rope(a[0], inv); }, {{2, 4, 6}}},
      {"attention", [](auto& t) { return ops::scaled_dot_product_attention(t[0], t[1], t[2]); },
       [](auto& a) { return ref_attention(a[0], a[1], a[2]); }, {{1, 2, 3, 4}, {1, 1, 3, 4}, {1, 1, 3, 4}}},
  };
  for (auto& c : cases) check_case(c, rng);
}

TEST_P(Ops, AdamWMatchesTheReferenceStepByStep) {
  ref::Array p0 = ref::random({4, 3}, rng), b0 = ref::random({3}, rng);
  Tensor w = ref::tensor(p0).contiguous().realize().requires_grad_(), b = ref::tensor(b0).contiguous().realize().requires_grad_();
  ops::AdamWOptions o{1e-2, 0.9, 0.95, 1e-5, 0.1};
  ops::AdamW opt({w, b}, o, {true, false});
  std::vector<double> pw = p0.v, pb = b0.v, mw(12), vw(12), mb(3), vb(3);
  for (int step = 1; step <= 3; ++step) {
    opt.zero_grad();
    (w * w * static_cast<double>(step)).sum().backward();  // grad: 2 * step * w
    (b * 3.0).sum().backward();                           // grad: 3
    opt.set_lr(o.lr * step);
    opt.step();
    double lr = o.lr * step, bc1 = 1 - std::pow(0.9, step), bc2 = 1 - std::pow(0.95, step);
    auto update = [&](std::vector<double>& p, std::vector<double>& m, std::vector<double>& v, bool decay, auto grad) {
      for (size_t i = 0; i < p.size(); ++i) {
        double g = grad(p[i]);
        if (decay) p[i] *= 1 - lr * 0.1;
        m[i] = 0.9 * m[i] + 0.1 * g;
        v[i] = 0.95 * v[i] + 0.05 * g * g;
        p[i] -= lr / bc1 * m[i] / (std::sqrt(v[i]) / std::sqrt(bc2) + 1e-5);
      }
    };
    update(pw, mw, vw, true, [&](double x) { return 2.0 * step * x; });
    update(pb, mb, vb, false, [](double) { return 3.0; });
    EXPECT_TRUE(close(w, ref::Array{{4, 3}, pw}, {0, 1e-6})) << "step " << step;
    EXPECT_TRUE(close(b, ref::Array{{3}, pb}, {0, 1e-6})) << "step " << step;
  }
  EXPECT_EQ(opt.steps(), 3);
}

// optimizer.state_dtype = "bf16": the moments are stored as bfloat16 (half the memory), the
// update computes in float32 and rounds them when it stores them. The reference rounds each
// moment to bfloat16 after every update; parameters agree within a fraction of one step.
TEST_P(Ops, AdamWWithBfloat16MomentsMatchesARoundingReference) {
  auto bf16 = [](double x) { return static_cast<double>(bfloat16_bits_to_float(float_to_bfloat16_bits(static_cast<float>(x)))); };
  ref::Array p0 = ref::random({6, 5}, rng);
  Tensor w = ref::tensor(p0).contiguous().realize().requires_grad_();
  ops::AdamWOptions o{1e-2, 0.9, 0.95, 1e-5, 0.1, DType::BFloat16};
  ops::AdamW opt({w}, o);
  ASSERT_EQ(opt.exp_avg()[0].dtype(), DType::BFloat16);
  ASSERT_EQ(opt.exp_avg_sq()[0].dtype(), DType::BFloat16);
  std::vector<double> p = p0.v, m(p.size()), v(p.size());
  for (int step = 1; step <= 5; ++step) {
    opt.zero_grad();
    (w * w * static_cast<double>(step)).sum().backward();  // grad: 2 * step * w
    opt.step();
    const double bc1 = 1 - std::pow(0.9, step), bc2 = 1 - std::pow(0.95, step);
    for (size_t i = 0; i < p.size(); ++i) {
      const double g = 2.0 * step * p[i];
      p[i] *= 1 - o.lr * 0.1;
      m[i] = bf16(0.9 * m[i] + 0.1 * g);
      v[i] = bf16(0.95 * v[i] + 0.05 * g * g);
      p[i] -= o.lr / bc1 * m[i] / (std::sqrt(v[i]) / std::sqrt(bc2) + 1e-5);
    }
    // A moment one bfloat16 step off (float32 arithmetic before the rounding) moves a parameter
    // by under 1% of lr; the moments then agree within one bfloat16 step, plus what a parameter
    // 1e-4 apart changes in the gradient (2 * step * 1e-4, and in g^2 about 20 times that, weighted 0.05).
    EXPECT_TRUE(close(w, ref::Array{{6, 5}, p}, {0, 1e-4})) << "step " << step;
    EXPECT_TRUE(close(opt.exp_avg()[0].cast(DType::Float32), ref::Array{{6, 5}, m}, {1.0 / 128, 2e-3})) << "step " << step;
    EXPECT_TRUE(close(opt.exp_avg_sq()[0].cast(DType::Float32), ref::Array{{6, 5}, v}, {1.0 / 128, 2e-3})) << "step " << step;
  }
}

TEST_P(Ops, SgdMomentumNesterovAndClipping) {
  for (bool nesterov : {false, true}) {
    Tensor w = Tensor::from_vector(std::vector<float>{1, -2}, {2}).contiguous().realize().requires_grad_();
    ops::SGD opt({w}, 0.1, 0.9, nesterov, 0.01);
    double p[2] = {1, -2}, buf[2] = {0, 0};
    for (int step = 0; step < 3; ++step) {
      opt.zero_grad();
      (w * w).sum().backward();
      opt.step();
      for (int i = 0; i < 2; ++i) {
        double g = 2 * p[i] + 0.01 * p[i];
        buf[i] = step == 0 ? g : 0.9 * buf[i] + g;
        p[i] -= 0.1 * (nesterov ? g + 0.9 * buf[i] : buf[i]);
      }
      EXPECT_TRUE(close(w, ref::Array{{2}, {p[0], p[1]}}, {0, 1e-6})) << "nesterov " << nesterov << " step " << step;
    }
  }
  Tensor a = Tensor::from_vector(std::vector<float>{3, 0}, {2}).requires_grad_();
  Tensor c = Tensor::from_vector(std::vector<float>{4}, {1}).requires_grad_();
  ((a * a).sum() * 0.5 + (c * c).sum() * 0.5).backward();  // grads (3, 0) and (4): norm 5
  std::vector<Tensor> params = {a, c};
  EXPECT_NEAR(ops::clip_grad_norm(params, 1.0).item<float>(), 5.0, 1e-5);
  EXPECT_TRUE(close(a.grad(), ref::Array{{2}, {0.6, 0}}, {0, 1e-5}));
  EXPECT_TRUE(close(c.grad(), ref::Array{{1}, {0.8}}, {0, 1e-5}));
  EXPECT_NEAR(ops::clip_grad_norm(params, 10.0).item<float>(), 1.0, 1e-5);  // below the limit: unchanged
  EXPECT_TRUE(close(c.grad(), ref::Array{{1}, {0.8}}, {0, 1e-5}));
  // Clipping as the optimizer reads the gradients gives the same step as clipping them first.
  ref::Array start = ref::random({3, 4}, rng);
  Tensor w1 = ref::tensor(start).contiguous().realize().requires_grad_(), w2 = ref::tensor(start).contiguous().realize().requires_grad_();
  ops::AdamW first({w1}, {1e-2, 0.9, 0.95, 1e-8, 0.1}), second({w2}, {1e-2, 0.9, 0.95, 1e-8, 0.1});
  for (int step = 0; step < 3; ++step) {
    first.zero_grad(), second.zero_grad();
    (w1 * w1 * 7.0).sum().backward(), (w2 * w2 * 7.0).sum().backward();
    std::vector<Tensor> p1 = {w1}, p2 = {w2};
    float n1 = ops::clip_grad_norm(p1, 0.5).item<float>();
    first.step();
    ops::GradNorm n2 = ops::grad_norm(p2, 0.5);
    second.prepare_step();
    second.update(n2.scale);
    EXPECT_EQ(n1, n2.norm.item<float>());
    // Not bit for bit: the C compiler may contract the inline scale into a fused multiply-add.
    std::vector<float> a = w1.to_vector<float>(), b = w2.to_vector<float>();
    for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-6 * (1 + std::abs(a[i]))) << "step " << step << " element " << i;
  }
}

TEST(LrSchedule, WarmupThenDecay) {
  ops::LrSchedule s{1e-3, 1e-4, 10, 110, "cosine"};
  EXPECT_DOUBLE_EQ(ops::lr_at(s, 0), 1e-4);
  EXPECT_DOUBLE_EQ(ops::lr_at(s, 9), 1e-3);
  EXPECT_DOUBLE_EQ(ops::lr_at(s, 10), 1e-3);
  EXPECT_NEAR(ops::lr_at(s, 60), 1e-4 + 0.5 * 9e-4, 1e-15);
  EXPECT_NEAR(ops::lr_at(s, 110), 1e-4, 1e-15);
  EXPECT_NEAR(ops::lr_at(s, 500), 1e-4, 1e-15);
  s.decay = "linear";
  EXPECT_NEAR(ops::lr_at(s, 35), 1e-3 - 0.25 * 9e-4, 1e-15);
  s.decay = "constant";
  EXPECT_DOUBLE_EQ(ops::lr_at(s, 100), 1e-3);
  s.decay = "step";
  EXPECT_THROW(ops::lr_at(s, 100), Error);
}

}  // namespace
}  // namespace lathe::test
