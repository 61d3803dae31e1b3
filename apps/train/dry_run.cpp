// `lathe train --dry-run`: the first step's memory, planned by realize without running it.
#include "dry_run.h"

#include <fmt/format.h>
#include <sys/resource.h>

#include "config.h"
#include "lathe/runtime.h"

namespace lathe::app {
namespace {

std::string gib(int64_t bytes) { return fmt::format("{:.2f} GiB ({:.1f} MiB)", static_cast<double>(bytes) / (1 << 30), static_cast<double>(bytes) / (1 << 20)); }

}  // namespace

int64_t host_peak_resident_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<int64_t>(u.ru_maxrss) * 1024;  // KiB on Linux
}

int64_t report_dry_run(const TrainConfig& c, const models::LlamaModel& model, TrainStep& step, const models::TokenSource& data,
                       Device* device) {
  check(dry_run_active(), "report_dry_run: no DryRun is active");
  int64_t params = 0;
  for (auto& [name, p] : model.parameters()) params += p.numel() * static_cast<int64_t>(itemsize(p.dtype()));
  // As the trainer's first step: the peak counts from what is live when the step starts.
  models::SamplerRng rng(data.sampler_start(static_cast<uint64_t>(c.seed) * 2 + 1, models::Split::Train));
  std::vector<Tensor> windows;
  for (int micro = 0; micro < c.grad_accum; ++micro)
    windows.push_back(models::make_batch(data, c.batch_size, c.seq_len, models::Split::Train, rng, device).tokens);
  runtime_stats().reset_peak();
  step.run(windows, c.lr);
  const int64_t peak = runtime_stats().bytes_peak, kept = runtime_stats().bytes_live;
  fmt::print("dry run of one step on {} ({}): nothing was allocated, compiled or run\n", device->label(), device->info().name);
  fmt::print("  parameters                   {}  ({} parameters, {})\n", gib(params), model.config().parameter_count(),
             dtype_name(model.parameters().begin()->second.dtype()));
  fmt::print("  held between steps           {}  (parameters, gradients, optimizer state)\n", gib(kept));
  fmt::print("  the step's buffers at peak   {}  (activations and temporaries; train.recompute = {})\n", gib(peak - kept),
             c.recompute ? "true" : "false");
  fmt::print("  peak of the step             {}\n", gib(peak));
  const uint64_t capacity = device->info().memory_bytes;
  if (capacity == 0) {
    fmt::print("  {} reports no memory size\n", device->label());
  } else if (static_cast<uint64_t>(peak) <= capacity) {
    fmt::print("  fits in {}'s {}\n", device->label(), gib(static_cast<int64_t>(capacity)));
  } else {
    std::string fixes = c.recompute ? "" : "set train.recompute = true, ";
    if (c.state_dtype != "bf16") fixes += "set optimizer.state_dtype = \"bf16\", ";
    if (c.grad_dtype != "bf16") fixes += "set train.grad_dtype = \"bf16\", ";
    fmt::print("  does not fit in {}'s {}: {}or lower train.batch_size or train.seq_len and raise train.grad_accum\n", device->label(),
               gib(static_cast<int64_t>(capacity)), fixes);
  }
  return peak;
}

}  // namespace lathe::app
