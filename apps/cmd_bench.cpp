// `lathe bench`: generated kernels and whole training steps beside the references measured in the
// same run: OpenBLAS sgemm and memcpy (linked in), PyTorch (tools/bench_torch.py for kernels,
// the mini-MLPerf reference script for training steps) when Python has torch.
#ifdef LATHE_HAVE_CBLAS
#include <cblas.h>
#endif
#include <fmt/format.h>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <vector>

#include "commands.h"
#include "train/train_step.h"
#include "lathe/backends.h"
#include "lathe/device.h"
#include "lathe/runtime.h"
#include "lathe/models/llama.h"
#include "lathe/ops/attention.h"
#include "lathe/ops/nn.h"
#include "lathe/ops/optim.h"
#include "lathe/tensor.h"

namespace lathe::app {
namespace {

namespace fs = std::filesystem;

struct Options {
  std::string backend = "cpu";
  std::vector<int64_t> sizes = {1024, 2048};
  std::vector<int64_t> bf16_sizes;  // bfloat16 matmuls (float32 sums, as PyTorch's)
  int repeat = 5;
  int64_t megs = 64;
  std::vector<std::string> presets = {"cpu"};
  std::vector<std::string> attention;  // BxHxTxD shapes (none: 16x6x256x64 on GPUs, 2x6x256x64 otherwise)
  std::string python = "python3", torch_device = "cpu", torch_ref, torch_ref_data;
  std::vector<std::string> llama;  // PRESET,SEQ,BATCH[,PRECISION[,recompute]]
};

// Best wall time of `repeat` runs after one warm-up run (compilation, first touch).
double best_seconds(int repeat, const std::function<void()>& f) {
  f();
  double best = 1e30;
  for (int i = 0; i < repeat; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

std::string run_command(const std::string& cmd) {
  std::string out;
  FILE* f = popen((cmd + " 2>/dev/null").c_str(), "r");
  if (!f) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  pclose(f);
  return out;
}

// The folder of tools/bench_torch.py: next to the source tree the binary was built from, or cwd.
std::string tools_dir() {
  for (fs::path p : {fs::path(LATHE_SOURCE_DIR) / "tools", fs::current_path() / "tools"})
    if (fs::exists(p / "bench_torch.py")) return p.string();
  return "";
}

// PyTorch's seconds per spec, or an empty map (with the reason in `why`).
std::map<std::string, double> torch_anchor(const Options& o, const std::vector<std::string>& specs, std::string& version, std::string& why) {
  std::map<std::string, double> out;
  std::string dir = tools_dir();
  if (dir.empty()) return why = "tools/bench_torch.py not found", out;
  std::string cmd = "'" + o.python + "' '" + dir + "/bench_torch.py' " + o.torch_device + " " + std::to_string(o.repeat);
  for (auto& s : specs) cmd += " " + s;
  std::string text = run_command(cmd);
  try {
    auto j = nlohmann::json::parse(text.substr(text.find('{')));
    version = j.at("torch").get<std::string>();
    for (auto& s : specs) out[s] = j.at(s).get<double>();
  } catch (const std::exception&) {
    why = "PyTorch not available to " + o.python + " (pip install torch, or --python)";
    out.clear();
  }
  return out;
}

struct Anchor {
  std::string name;
  double value;  // in the row's unit; 0 when missing
};

void row(const std::string& what, double ours, const char* unit, const std::vector<Anchor>& anchors) {
  std::string line = fmt::format("{:<30} {:>11.1f} {:<9}", what, ours, unit);
  for (auto& a : anchors)
    if (a.value > 0) line += fmt::format("  {} {:.1f} ({:.2f}x)", a.name, a.value, ours / a.value);
  fmt::print("{}\n", line);
}

// Causal attention: 4*B*H*T*T*D FLOPs forward (two matmuls), counted as if unmasked.
void bench_attention(const Options& o, Device* device, const std::string& att, const std::string& tname,
                     const std::function<double(const std::string&, double)>& t) {
  int64_t B, H, T, D;
  if (std::sscanf(att.c_str(), "%ldx%ldx%ldx%ld", &B, &H, &T, &D) != 4 || B < 1 || H < 1 || T < 1 || D < 1)
    throw Error("lathe bench: --attention '" + att + "' is not BxHxTxD (e.g. 16x6x256x64)");
  Tensor q = Tensor::rand({B, H, T, D}, DType::Float32, device).realize(), k = Tensor::rand({B, H, T, D}, DType::Float32, device).realize(),
         v = Tensor::rand({B, H, T, D}, DType::Float32, device).realize();
  double aflop = 4.0 * B * H * T * T * D;
  double ours = best_seconds(o.repeat, [&] { ops::scaled_dot_product_attention(q, k, v, true).realize(), device->synchronize(); });
  row("attention fwd " + att, aflop / ours * 1e-9, "GFLOP/s", {{tname, t("attention:" + att, aflop * 1e-9)}});
  Tensor qg = q.detach().requires_grad_(), kg = k.detach().requires_grad_(), vg = v.detach().requires_grad_();
  Tensor g = Tensor::rand({B, H, T, D}, DType::Float32, device).realize();  // an output gradient that varies, as in training
  ours = best_seconds(o.repeat, [&] {
    (ops::scaled_dot_product_attention(qg, kg, vg, true) * g).sum().backward();
    device->synchronize();
  });
  row("attention fwd+bwd " + att, 3 * aflop / ours * 1e-9, "GFLOP/s", {{tname, t("attention_bwd:" + att, 3 * aflop * 1e-9)}});
}

void bench_kernels(const Options& o, Device* device) {
  const bool gpu = device->info().max_local_size > 1;
  const int64_t rows = 8192, cols = 1024;
  std::vector<std::string> shapes = o.attention;
  if (shapes.empty()) shapes.push_back(gpu ? "16x6x256x64" : "2x6x256x64");
  std::vector<std::string> specs;
  for (int64_t n : o.sizes) specs.push_back("matmul:" + std::to_string(n));
  for (int64_t n : o.bf16_sizes) specs.push_back("matmul_bf16:" + std::to_string(n));
  specs.push_back("elementwise:" + std::to_string(o.megs << 20));
  specs.push_back(fmt::format("softmax:{}x{}", rows, cols));
  for (auto& att : shapes) {
    specs.push_back("attention:" + att);
    specs.push_back("attention_bwd:" + att);
  }
  std::string version, why;
  std::map<std::string, double> torch = torch_anchor(o, specs, version, why);
  std::string tname = torch.empty() ? "" : "PyTorch " + version;
  if (torch.empty()) fmt::print("(no PyTorch anchor: {})\n", why);
  auto t = [&](const std::string& spec, double work) { return torch.count(spec) ? work / torch[spec] : 0.0; };

  for (int64_t n : o.sizes) {
    Tensor a = Tensor::rand({n, n}, DType::Float32, device).realize(), b = Tensor::rand({n, n}, DType::Float32, device).realize();
    double flop = 2.0 * static_cast<double>(n) * n * n;
    double ours = best_seconds(o.repeat, [&] { a.matmul(b).realize(), device->synchronize(); });
    double blas = 0;
#ifdef LATHE_HAVE_CBLAS
    std::vector<float> ha = a.to_vector<float>(), hb = b.to_vector<float>(), hc(static_cast<size_t>(n * n));
    int ni = static_cast<int>(n);
    blas = flop / best_seconds(o.repeat, [&] {
             cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, ni, ni, ni, 1.0f, ha.data(), ni, hb.data(), ni, 0.0f, hc.data(), ni);
           }) * 1e-9;
#endif
    row(fmt::format("matmul f32 {}^3", n), flop / ours * 1e-9, "GFLOP/s",
        {{"OpenBLAS sgemm", blas}, {tname, t("matmul:" + std::to_string(n), flop * 1e-9)}});
  }
  for (int64_t n : o.bf16_sizes) {
    Tensor a = Tensor::rand({n, n}, DType::Float32, device).cast(DType::BFloat16).realize();
    Tensor b = Tensor::rand({n, n}, DType::Float32, device).cast(DType::BFloat16).realize();
    double flop = 2.0 * static_cast<double>(n) * n * n;
    double ours = best_seconds(o.repeat, [&] { a.matmul(b).realize(), device->synchronize(); });
    row(fmt::format("matmul bf16 {}^3", n), flop / ours * 1e-9, "GFLOP/s", {{tname, t("matmul_bf16:" + std::to_string(n), flop * 1e-9)}});
  }
  const int64_t elements = o.megs << 20;
  Tensor x = Tensor::rand({elements}, DType::Float32, device).realize();
  double bytes = 2.0 * static_cast<double>(elements) * sizeof(float);  // read + write
  double ours = best_seconds(o.repeat, [&] { (x * 2.0 + 1.0).realize(), device->synchronize(); });
  std::vector<float> src(static_cast<size_t>(elements), 1.0f), dst(src.size());
  double copy = best_seconds(o.repeat, [&] { std::memcpy(dst.data(), src.data(), src.size() * sizeof(float)); });
  row(fmt::format("x*2+1 f32 {}M", o.megs), bytes / ours * 1e-9, "GB/s",
      {{"memcpy", bytes / copy * 1e-9}, {tname, t("elementwise:" + std::to_string(elements), bytes * 1e-9)}});

  Tensor s = Tensor::rand({rows, cols}, DType::Float32, device).realize();
  double sbytes = 2.0 * rows * cols * sizeof(float);
  ours = best_seconds(o.repeat, [&] { ops::softmax(s, -1).realize(), device->synchronize(); });
  row(fmt::format("softmax f32 {}x{}", rows, cols), sbytes / ours * 1e-9, "GB/s", {{tname, t(fmt::format("softmax:{}x{}", rows, cols), sbytes * 1e-9)}});

  for (auto& att : shapes) bench_attention(o, device, att, tname, t);
}


// What issuing one launch costs the host on this device, by the number of buffers the kernel
// takes: 2000 launches of a small elementwise kernel, issued without waiting, then one wait.
void bench_issue(Device* device) {
  for (int inputs : {1, 8, 32}) {
    std::vector<Tensor> xs;
    Tensor y;
    for (int k = 0; k < inputs; ++k) {
      xs.push_back(Tensor::rand({1024}, DType::Float32, device).realize());
      y = y.defined() ? y + xs.back() : xs.back() * 1.0;
    }
    PreparedKernel kernel = prepare_kernel(y.node().get());
    Program* program = kernel.program.get();
    const std::vector<void*>& handles = kernel.handles;
    const int launches = 2000;
    program->run(handles, false);
    device->synchronize();
    double issue = 1e30;
    for (int r = 0; r < 3; ++r) {
      auto start = std::chrono::steady_clock::now();
      for (int i = 0; i < launches; ++i) program->run(handles, false);
      issue = std::min(issue, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      device->synchronize();
    }
    row(fmt::format("issue a launch, {} buffers", handles.size()), issue / launches * 1e6, "us", {});
  }
}

// A training step of a mini-MLPerf preset (model, batch and AdamW as the preset has them) on
// random tokens, in tokens per second; PyTorch's figure from the reference script when given.
void bench_training(const Options& o, Device* device, const std::string& preset) {
  bool gpu = preset == "gpu";
  models::LlamaConfig c;
  c.vocab_size = 256;
  c.hidden_size = gpu ? 384 : 128;
  c.intermediate_size = gpu ? 1024 : 384;
  c.num_hidden_layers = gpu ? 6 : 4;
  c.num_attention_heads = c.num_key_value_heads = gpu ? 6 : 4;
  c.head_dim = c.hidden_size / c.num_attention_heads;
  c.rope_theta = 10000;
  c.max_position_embeddings = 1024;
  const int64_t B = gpu ? 64 : 16, T = gpu ? 256 : 128;
  models::LlamaModel model(c, device);
  model.init_random(0);
  std::vector<Tensor> params;
  std::vector<bool> decay;
  for (auto& [name, p] : model.parameters()) params.push_back(p), decay.push_back(p.ndim() >= 2);
  ops::AdamW opt(params, {1e-3, 0.9, 0.99, 1e-8, 0.1}, decay);
  Tensor tokens = Tensor::randint(0, 256, {B, T + 1}, DType::Int32, device).realize();
  TrainStep train_step(model, params, opt, 1.0);
  double issue = 1e30;
  StepCapture::ReplayStats replay;
  auto step = [&] {  // reads the loss: waits for the device
    double issued = train_step.run({tokens}, 1e-3).issue_seconds;
    if (issued < issue) issue = issued, replay = train_step.capture().last_replay();
  };
  for (int warm = 0; warm < 3 && !train_step.capture().replaying(); ++warm) step();  // compile, then capture
  double seconds = best_seconds(o.repeat, step);
  // The kernels alone, each waited for: what the device must do whatever the host does.
  double kernels = 0;
  if (gpu && train_step.capture().replaying()) {
    train_step.capture().time_kernels(true);
    train_step.run({tokens}, 1e-3);
    kernels = train_step.capture().last_replay().kernel_seconds;
    train_step.capture().time_kernels(false);
  }
  double ref = 0;
  if (!o.torch_ref.empty() && !o.torch_ref_data.empty()) {
    fs::path out = fs::temp_directory_path() / ("lathe-bench-ref-" + std::to_string(getpid()));
    fs::create_directories(out);
    run_command("PRESET=" + preset + " REF_OUT='" + out.string() + "' '" + o.python + "' '" + o.torch_ref + "' fp32 60 '" +
                o.torch_ref_data + "' 0");
    std::ifstream in(out / "shakespeare_fp32.json");
    if (in) ref = nlohmann::json::parse(in).value("train_tokens_per_s", 0.0);
    fs::remove_all(out);
  }
  row(fmt::format("train step, {} preset", preset), static_cast<double>(B * T) / seconds, "tokens/s", {{"PyTorch fp32 (reference script)", ref}});
  fmt::print("  issuing a step took {:.2f} ms of {:.2f} ms ({:.1f}%; kernels included where launches are synchronous, as on cpu){}\n", issue * 1e3, seconds * 1e3, 100 * issue / seconds,
             train_step.capture().replaying() ? ", replayed" : ", not captured: " + train_step.capture().not_captured_reason());
  if (gpu && replay.slow_launches > 0)
    fmt::print("  of which {:.2f} ms in {} launches of over 20 us each (dozens of buffers, or a full driver queue)\n", replay.slow_seconds * 1e3,
               replay.slow_launches);
  if (kernels > 0)  // launches are asynchronous: issuing overlaps the device's work
    fmt::print("  its kernels alone take {:.2f} ms (each timed on its own): the host adds {:.2f} ms ({:.1f}%) to the step's wall time\n",
               kernels * 1e3, std::max(0.0, seconds - kernels) * 1e3, 100 * std::max(0.0, seconds - kernels) / seconds);
}

// A training step of a real-size Llama preset on random tokens (AdamW, clipping) beside
// transformers' LlamaForCausalLM of the same sizes (tools/bench_llama_torch.py): tokens/s, model
// TFLOP/s (6 x parameters x tokens) and peak device memory of each.
void bench_llama(const Options& o, Device* device, const std::string& spec) {
  std::vector<std::string> f;
  for (size_t at = 0; at <= spec.size();) {
    size_t comma = std::min(spec.find(',', at), spec.size());
    f.push_back(spec.substr(at, comma - at));
    at = comma + 1;
  }
  auto number = [&](size_t i) {
    try {
      return std::stoll(f.at(i));
    } catch (const std::exception&) {
      throw Error("lathe bench --llama " + spec + ": field " + std::to_string(i + 1) + " must be a number; the form is PRESET,SEQ,BATCH[,fp32|bf16[,recompute]]");
    }
  };
  check(f.size() >= 3 && f.size() <= 5, "lathe bench --llama " + spec + ": the form is PRESET,SEQ,BATCH[,fp32|bf16[,recompute]]");
  const int64_t T = number(1), B = number(2);
  const std::string precision = f.size() > 3 ? f[3] : "fp32";
  check(precision == "fp32" || precision == "bf16", "lathe bench --llama " + spec + ": precision is fp32 or bf16, not '" + precision + "'");
  check(f.size() < 5 || f[4] == "recompute", "lathe bench --llama " + spec + ": the fifth field can only be 'recompute'");
  models::LlamaConfig c = models::llama_preset(f[0]);
  c.max_position_embeddings = std::max<int64_t>(c.max_position_embeddings, T);
  models::LlamaModel model(c, device);
  model.init_random(0);
  if (precision == "bf16") model.set_compute_dtype(DType::BFloat16);
  model.set_recompute(f.size() == 5);
  std::vector<Tensor> params;
  std::vector<bool> decay;
  for (auto& [name, p] : model.parameters()) params.push_back(p), decay.push_back(p.ndim() >= 2);
  ops::AdamW opt(params, {1e-4, 0.9, 0.95, 1e-8, 0.1}, decay);
  TrainStep train_step(model, params, opt, 1.0);
  Tensor tokens = Tensor::randint(0, c.vocab_size, {B, T + 1}, DType::Int32, device).realize();
  runtime_stats().reset_peak();
  for (int warm = 0; warm < 2; ++warm) train_step.run({tokens}, 1e-4);  // compile, then capture
  const double best = best_seconds(o.repeat, [&] { train_step.run({tokens}, 1e-4); });  // reads the loss: waits for the device
  const double tokens_per_s = static_cast<double>(B * T) / best, flops = 6.0 * static_cast<double>(c.parameter_count());
  const double peak_gib = static_cast<double>(runtime_stats().bytes_peak) / (1 << 30);
  std::string label = fmt::format("{} seq {} batch {} {}{}", f[0], T, B, precision, f.size() == 5 ? " recompute" : "");
  fmt::print("llama step, {:<36} {:>9.0f} tokens/s  {:6.1f} TFLOP/s  {:6.1f} GiB peak\n", label, tokens_per_s, tokens_per_s * flops * 1e-12, peak_gib);
  std::string dir = tools_dir();
  if (o.python == "none" || dir.empty()) return;
  nlohmann::json sizes = {{"vocab_size", c.vocab_size}, {"hidden_size", c.hidden_size}, {"intermediate_size", c.intermediate_size},
                          {"num_hidden_layers", c.num_hidden_layers}, {"num_attention_heads", c.num_attention_heads},
                          {"num_key_value_heads", c.num_key_value_heads}, {"head_dim", c.head_dim}, {"rope_theta", c.rope_theta},
                          {"rms_norm_eps", c.rms_norm_eps}, {"tie_word_embeddings", c.tie_word_embeddings}};
  std::string text = run_command(fmt::format("'{}' '{}/bench_llama_torch.py' {} {} {} {} {} '{}'", o.python, dir, o.torch_device, o.repeat,
                                             precision, T, B, sizes.dump()));
  try {
    auto j = nlohmann::json::parse(text.substr(text.find('{')));
    const double torch_peak = j.value("peak_bytes", 0.0) / (1 << 30);
    if (j.contains("oom")) {
      fmt::print("  PyTorch {} ran out of device memory ({}, {:.1f} GiB at the peak)\n", j.at("torch").get<std::string>(),
                 j.at("oom").get<std::string>(), torch_peak);
      return;
    }
    const double torch_tps = static_cast<double>(B * T) / j.at("step_s").get<double>();
    fmt::print("  PyTorch {} ({}): {:.0f} tokens/s ({:.2f}x), {:.1f} TFLOP/s, {:.1f} GiB peak ({:.2f}x lathe's)\n", j.at("torch").get<std::string>(),
               precision == "bf16" ? "bf16 autocast" : "fp32", torch_tps, tokens_per_s / torch_tps, torch_tps * flops * 1e-12, torch_peak,
               torch_peak > 0 ? torch_peak / peak_gib : 0.0);
  } catch (const std::exception&) {
    fmt::print("  PyTorch anchor: not available to {} (transformers and torch needed)\n", o.python);
  }
}

void bench(const Options& o) {
  Device* device = get_device(o.backend);
  fmt::print("backend {} ({})\n", device->label(), device->info().name);
  bench_kernels(o, device);
  if (device->info().max_local_size > 1) bench_issue(device);  // where launches are asynchronous
  for (auto& p : o.presets) {
    if (p == "none") continue;
    if (p != "cpu" && p != "gpu") throw Error("lathe bench: unknown preset '" + p + "' (known: cpu, gpu, none)");
    bench_training(o, device, p);
  }
  for (auto& spec : o.llama) bench_llama(o, device, spec);
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("bench", "Measure kernels and training steps beside OpenBLAS, memcpy and PyTorch on this machine");
  static Options o;
  cmd->add_option("--backend", o.backend, "backend to measure")->capture_default_str();
  cmd->add_option("--sizes", o.sizes, "square matmul sizes")->capture_default_str()->delimiter(',');
  cmd->add_option("--bf16-sizes", o.bf16_sizes, "square bfloat16 matmul sizes (none by default)")->delimiter(',');
  cmd->add_option("--repeat", o.repeat, "timed runs per benchmark (the best counts)")->capture_default_str();
  cmd->add_option("--elementwise-mi", o.megs, "elements of the elementwise benchmark, in units of 2^20")->capture_default_str();
  cmd->add_option("--attention", o.attention, "causal attention shapes BxHxTxD to time (default 16x6x256x64 on GPUs, 2x6x256x64 otherwise)")
      ->delimiter(',');
  cmd->add_option("--presets", o.presets, "training steps to time: cpu, gpu (none: empty)")->capture_default_str()->delimiter(',');
  cmd->add_option("--python", o.python, "Python with torch for the PyTorch anchors")->capture_default_str();
  cmd->add_option("--torch-device", o.torch_device, "where PyTorch runs: cpu or cuda")->capture_default_str();
  cmd->add_option("--torch-ref", o.torch_ref, "the mini-MLPerf PyTorch reference script (ref_shakespeare.py) for training-step anchors");
  cmd->add_option("--torch-ref-data", o.torch_ref_data, "tinyshakespeare.txt for the reference script");
  cmd->add_option("--llama", o.llama,
                  "PRESET,SEQ,BATCH[,fp32|bf16[,recompute]]: a real-size Llama training step beside transformers' (repeatable)");
  cmd->callback([] { bench(o); });
}

}  // namespace lathe::app
