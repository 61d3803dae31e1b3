// `lathe bench`: generated kernels beside the machine's reference libraries, measured in the
// same run: float32 matmul against OpenBLAS sgemm, a large elementwise op against memcpy.
#ifdef LATHE_HAVE_CBLAS
#include <cblas.h>
#endif
#include <fmt/format.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <vector>

#include "commands.h"
#include "lathe/backends.h"
#include "lathe/device.h"
#include "lathe/tensor.h"

namespace lathe::app {
namespace {

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

void row(const std::string& what, double ours, double anchor, const char* unit, const char* anchor_name) {
  fmt::print("{:<26} {:>10.1f} {:<7} {:>10.1f} {:<7} {:>6.2f}x  ({})\n", what, ours, unit, anchor, unit, ours / anchor, anchor_name);
}

void bench(const std::string& backend, const std::vector<int64_t>& sizes, int repeat, int64_t elements) {
  Device* device = get_device(backend);
  fmt::print("backend {} ({})\n", device->label(), device->info().name);
  fmt::print("{:<26} {:>18} {:>18} {:>8}\n", "benchmark", "lathe", "anchor", "ratio");
  for (int64_t n : sizes) {
    Tensor a = Tensor::rand({n, n}, DType::Float32, device).realize();
    Tensor b = Tensor::rand({n, n}, DType::Float32, device).realize();
    double ours = best_seconds(repeat, [&] {
      a.matmul(b).realize();
      device->synchronize();
    });
    double flop = 2.0 * static_cast<double>(n) * n * n;
#ifdef LATHE_HAVE_CBLAS
    std::vector<float> ha = a.to_vector<float>(), hb = b.to_vector<float>(), hc(static_cast<size_t>(n * n));
    double blas = best_seconds(repeat, [&] {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(n), static_cast<int>(n), static_cast<int>(n), 1.0f,
                  ha.data(), static_cast<int>(n), hb.data(), static_cast<int>(n), 0.0f, hc.data(), static_cast<int>(n));
    });
    row(fmt::format("matmul f32 {}^3", n), flop / ours * 1e-9, flop / blas * 1e-9, "GFLOP/s", "OpenBLAS sgemm");
#else
    fmt::print("{:<26} {:>10.1f} GFLOP/s  (built without OpenBLAS: no anchor)\n", fmt::format("matmul f32 {}^3", n), flop / ours * 1e-9);
#endif
  }
  Tensor x = Tensor::rand({elements}, DType::Float32, device).realize();
  double ours = best_seconds(repeat, [&] {
    (x * 2.0 + 1.0).realize();
    device->synchronize();
  });
  std::vector<float> src(static_cast<size_t>(elements), 1.0f), dst(static_cast<size_t>(elements));
  double copy = best_seconds(repeat, [&] { std::memcpy(dst.data(), src.data(), src.size() * sizeof(float)); });
  double bytes = 2.0 * static_cast<double>(elements) * sizeof(float);  // read + write
  row(fmt::format("x*2+1 f32 {}M", elements >> 20), bytes / ours * 1e-9, bytes / copy * 1e-9, "GB/s", "memcpy, read+write");
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("bench", "Measure generated kernels against OpenBLAS and memcpy on this machine");
  static std::string backend = "cpu";
  static std::vector<int64_t> sizes = {1024, 2048};
  static int repeat = 5;
  static int64_t megs = 64;
  cmd->add_option("--backend", backend, "backend to measure")->capture_default_str();
  cmd->add_option("--sizes", sizes, "square matmul sizes")->capture_default_str()->delimiter(',');
  cmd->add_option("--repeat", repeat, "timed runs per benchmark (the best counts)")->capture_default_str();
  cmd->add_option("--elementwise-mi", megs, "elements of the elementwise benchmark, in units of 2^20")->capture_default_str();
  cmd->callback([] { bench(backend, sizes, repeat, megs << 20); });
}

}  // namespace lathe::app
