// The cases of tinygrad's test_ops.py that lathe's Tensor API offers, checked on every backend
// against outputs and gradients PyTorch computed (tools/gen_test_ops.py, data in
// fixtures/test_ops/), with tinygrad's tolerances: |lathe - torch| <= atol + rtol * |torch|.
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "lathe/models/safetensors.h"
#include "lathe/ops/nn.h"
#include "test_util.h"

namespace lathe::test {
namespace {

class TorchOps : public Conformance {};
LATHE_CONFORMANCE(TorchOps);

// The generator's inputs: SplitMix64 from the case's index, uniform in [low, high) (see the script).
std::vector<float> uniform(uint64_t& state, double low, double high, int64_t n) {
  std::vector<float> out(static_cast<size_t>(n));
  for (auto& x : out) {
    uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    x = static_cast<float>(low + (high - low) * (static_cast<double>(z >> 11) / 9007199254740992.0));
  }
  return out;
}

std::vector<std::string> words(const std::string& op) {
  std::istringstream in(op);
  std::vector<std::string> w;
  for (std::string s; in >> s;) w.push_back(s);
  return w;
}

// The op spec applied with lathe's API (the same specs as tools/gen_test_ops.py's torch_op).
Tensor apply_spec(const std::string& spec, const std::vector<Tensor>& t) {
  std::vector<std::string> w = words(spec);
  const std::string name = w[0];
  std::vector<int64_t> n;
  for (size_t i = 1; i < w.size(); ++i)
    if (w[i] != "-" && w[i].find('.') == std::string::npos) n.push_back(std::stoll(w[i]));
  auto axes = [&] { return w.size() > 1 && w[1] == "-" ? Axes{} : Axes(n.begin(), n.end()); };
  auto num = [&](size_t i) { return std::stod(w[i]); };
  const Tensor& x = t[0];
  static const std::map<std::string, Tensor (Tensor::*)() const> unary = {
      {"neg", &Tensor::neg},   {"relu", &Tensor::relu}, {"abs", &Tensor::abs},         {"exp", &Tensor::exp},
      {"exp2", &Tensor::exp2}, {"sin", &Tensor::sin},   {"cos", &Tensor::cos},         {"tanh", &Tensor::tanh},
      {"sigmoid", &Tensor::sigmoid}, {"silu", &Tensor::silu}, {"square", &Tensor::square}, {"sign", &Tensor::sign},
      {"erf", &Tensor::erf},   {"log", &Tensor::log},   {"log2", &Tensor::log2},       {"sqrt", &Tensor::sqrt},
      {"rsqrt", &Tensor::rsqrt}, {"reciprocal", &Tensor::reciprocal}, {"trunc", &Tensor::trunc}, {"floor", &Tensor::floor}};
  if (auto it = unary.find(name); it != unary.end()) return (x.*(it->second))();
  static const std::map<std::string, Tensor (Tensor::*)(const Tensor&) const> binary = {
      {"add", &Tensor::add}, {"sub", &Tensor::sub}, {"mul", &Tensor::mul}, {"div", &Tensor::div}, {"maximum", &Tensor::maximum},
      {"minimum", &Tensor::minimum}, {"matmul", &Tensor::matmul}, {"lt", &Tensor::lt}, {"gt", &Tensor::gt}, {"le", &Tensor::le},
      {"ge", &Tensor::ge}, {"eq", &Tensor::eq}, {"ne", &Tensor::ne}};
  if (auto it = binary.find(name); it != binary.end()) return (x.*(it->second))(t[1]);
  if (name == "pow_tensor") return x.pow(t[1]);
  if (name == "gelu") return x.gelu();
  if (name == "gelu_tanh") return x.gelu(true);
  if (name == "clip") return x.clamp(num(1), num(2));
  if (name == "pow") return x.pow(num(1));
  if (name == "sum") return x.sum(axes());
  if (name == "max") return x.max(axes());
  if (name == "min") return x.min(axes());
  if (name == "mean") return x.mean(axes());
  if (name == "var") return x.var(axes());
  if (name == "std") return x.std(axes());
  if (name == "sum_twice") return x.sum(axes()).sum();
  if (name == "argmax") return x.argmax(static_cast<int>(n[0]));
  if (name == "argmin") return x.argmin(static_cast<int>(n[0]));
  if (name == "reshape") return x.reshape(Shape(n.begin(), n.end()));
  if (name == "permute") return x.permute(std::vector<int>(n.begin(), n.end()));
  if (name == "transpose") return x.transpose(static_cast<int>(n[0]), static_cast<int>(n[1]));
  if (name == "expand") return x.expand(Shape(n.begin(), n.end()));
  if (name == "flip") return x.flip(axes());
  if (name == "squeeze") return n.empty() ? x.squeeze() : x.squeeze(static_cast<int>(n[0]));
  if (name == "unsqueeze") return x.unsqueeze(static_cast<int>(n[0]));
  if (name == "flatten") return x.flatten(static_cast<int>(n[0]), static_cast<int>(n[1]));
  if (name == "repeat") return x.repeat(n);
  if (name == "cat") return Tensor::cat(t, static_cast<int>(n[0]));
  if (name == "stack") return Tensor::stack(t, static_cast<int>(n[0]));
  if (name == "pad") return x.pad({{n[0], n[1]}, {n[2], n[3]}});
  if (name == "padding_add") return x + t[1].pad({{2, 2}, {2, 2}});
  if (name == "shrink") return x.shrink({{n[0], n[1]}, {n[2], n[3]}});
  if (name == "slice") {
    auto at = [&](size_t i) { return w[i] == "-" ? std::optional<int64_t>() : std::optional<int64_t>(std::stoll(w[i])); };
    return x.slice(std::stoi(w[1]), at(2), at(3), w.size() > 4 ? std::stoll(w[4]) : 1);
  }
  if (name == "where_gt") return Tensor::where(x.gt(x.scalar_like(0.5)), t[1], t[2]);
  if (name == "softmax") return ops::softmax(x, static_cast<int>(n[0]));
  if (name == "log_softmax") return ops::log_softmax(x, static_cast<int>(n[0]));
  if (name == "cross_entropy") {
    std::vector<int32_t> targets(static_cast<size_t>(x.shape()[0]));
    for (size_t i = 0; i < targets.size(); ++i) targets[i] = static_cast<int32_t>(i % static_cast<size_t>(x.shape()[1]));
    return ops::cross_entropy(x, Tensor::from_vector(targets, {x.shape()[0]}, DType::Int32));
  }
  throw Error("test_ops: no lathe spelling for op '" + spec + "'");
}

// Compares like np.testing.assert_allclose (NaN equals NaN, infinities must match).
std::string mismatch(const Tensor& got, const Tensor& want, double atol, double rtol) {
  if (got.shape() != want.shape()) return "shape " + to_string(got.shape()) + " != torch's " + to_string(want.shape());
  std::vector<float> g = got.cast(DType::Float32).to_vector<float>(), w = want.cast(DType::Float32).to_vector<float>();
  for (size_t i = 0; i < g.size(); ++i) {
    bool ok = (std::isnan(g[i]) && std::isnan(w[i])) || (std::isinf(w[i]) ? g[i] == w[i] : std::abs(g[i] - w[i]) <= atol + rtol * std::abs(w[i]));
    if (!ok) return "element " + std::to_string(i) + ": lathe " + std::to_string(g[i]) + ", torch " + std::to_string(w[i]);
  }
  return "";
}

TEST_P(TorchOps, TinygradTestOpsCasesMatchPyTorch) {
  const std::string dir = std::string(LATHE_FIXTURES) + "/test_ops";
  std::ifstream in(dir + "/cases.json");
  ASSERT_TRUE(in) << "missing " << dir << "/cases.json (tools/gen_test_ops.py writes it)";
  nlohmann::json manifest = nlohmann::json::parse(in);
  models::SafetensorsFile data(dir + "/cases.safetensors");
  const auto& cases = manifest["cases"];
  int passed = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    const std::string id = std::to_string(i) + " " + c["test"].get<std::string>() + " (" + c["op"].get<std::string>() + ")";
    std::vector<Tensor> inputs;
    uint64_t state = i;
    for (int k = 0; k < c["inputs"].get<int>(); ++k) {
      Tensor x;
      if (c["shapes"].is_null()) {
        x = data.load(std::to_string(i) + ".in" + std::to_string(k));
      } else {
        Shape s = c["shapes"][k].get<Shape>();
        x = Tensor::from_vector(uniform(state, c["low"].get<double>(), c["high"].get<double>(), numel(s)), s);
      }
      if (c["grads"].get<bool>()) x.requires_grad_();
      inputs.push_back(x);
    }
    std::string why;
    try {
      Tensor out = apply_spec(c["op"].get<std::string>(), inputs);
      why = mismatch(out, data.load(std::to_string(i) + ".out"), c["atol"].get<double>(), c["rtol"].get<double>());
      if (why.empty() && c["grads"].get<bool>()) {
        out.sum().backward();
        for (size_t k = 0; k < inputs.size() && why.empty(); ++k) {
          why = mismatch(inputs[k].grad(), data.load(std::to_string(i) + ".grad" + std::to_string(k)), c["grad_atol"].get<double>(),
                         c["grad_rtol"].get<double>());
          if (!why.empty()) why = "gradient " + std::to_string(k) + ": " + why;
        }
      }
    } catch (const std::exception& e) {
      why = std::string("threw: ") + e.what();
    }
    EXPECT_TRUE(why.empty()) << "case " << id << ": " << why;
    passed += why.empty();
  }
  std::printf("test_ops: %d of %zu cases (from %zu of tinygrad's test_ops tests) match PyTorch %s on %s\n", passed, cases.size(),
              manifest["tinygrad_tests"].size(), manifest["torch"].get<std::string>().c_str(), GetParam().c_str());
}

}  // namespace
}  // namespace lathe::test
