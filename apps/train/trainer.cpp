// The training loop: model, optimizer, data, checkpoints and logs, as a TrainConfig says.
#include "trainer.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <optional>

#include "checkpoint.h"
#include "dry_run.h"
#include "lathe/backends.h"
#include "lathe/models/data.h"
#include "lathe/models/hf_checkpoint.h"
#include "lathe/models/megatron.h"
#include "lathe/ops/optim.h"
#include "lathe/runtime.h"
#include "run_folder.h"
#include "run_log.h"
#include "train_step.h"

namespace lathe::app {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::unique_ptr<models::TokenSource> make_source(const TrainConfig& c) {
  if (c.data_source == "synthetic") return models::synthetic_source(c.synthetic_vocab);
  const bool idx = c.data_path.size() > 4 && c.data_path.compare(c.data_path.size() - 4, 4, ".idx") == 0;
  if (c.data_format == "megatron" || idx) return models::megatron_source(c.data_path, c.val_fraction);
  return models::file_source(c.data_path, c.val_fraction);
}

models::LlamaModel make_model(const TrainConfig& c, int64_t data_vocab, Device* device) {
  if (!c.hf_checkpoint.empty()) return models::load_hf_model(c.hf_checkpoint, device);
  models::LlamaConfig mc;
  if (!c.preset.empty()) {
    mc = models::llama_preset(c.preset);
  } else {
    mc.hidden_size = c.hidden_size;
    mc.intermediate_size = c.intermediate_size;
    mc.num_attention_heads = c.num_heads;
    mc.num_key_value_heads = c.num_kv_heads;
    mc.head_dim = c.hidden_size / c.num_heads;
    mc.rope_theta = c.rope_theta;
    mc.rope_scaling.reset();
    mc.rms_norm_eps = c.rms_norm_eps;
    mc.tie_word_embeddings = c.tie_embeddings;
    mc.max_position_embeddings = std::max(2048, c.seq_len);
  }
  // A preset keeps its own sizes unless the config names them.
  if (c.preset.empty() || c.set_keys.count("model.num_layers")) mc.num_hidden_layers = c.num_layers;
  if (c.vocab_size > 0) mc.vocab_size = c.vocab_size;
  else if (c.preset.empty()) mc.vocab_size = data_vocab;
  mc.initializer_range = c.init_std;
  models::LlamaModel model(mc, device);
  model.init_random(static_cast<uint64_t>(c.seed), c.init == "pytorch");
  return model;
}

// The mean validation loss over eval_batches windows, through a captured forward pass.
double evaluate(StepCapture& forward, const models::TokenSource& data, const TrainConfig& c, models::SamplerRng& rng, Device* device) {
  double total = 0;
  for (int i = 0; i < c.eval_batches; ++i) {
    Tensor windows = models::make_batch(data, c.batch_size, c.seq_len, models::Split::Validation, rng, device).tokens;
    total += forward({windows})[0].item<float>();
  }
  return total / c.eval_batches;
}

}  // namespace

TrainResult train(const TrainConfig& c) {
  std::optional<DryRun> dry;  // from the start: the model's initialization is planned, not run
  if (c.dry_run) dry.emplace();
  Device* device = get_device(c.backend + ":" + std::to_string(c.device), c.backend_options);
  set_default_device(c.backend + ":" + std::to_string(c.device));
  auto data = make_source(c);
  models::LlamaModel model = make_model(c, data->vocab_size(), device);
  check(model.config().vocab_size >= data->vocab_size(),
        "model.vocab_size (" + std::to_string(model.config().vocab_size) + ") is smaller than the data's vocabulary (" +
            std::to_string(data->vocab_size()) + ")");
  auto require_bf16 = [&](const char* key) {
    const auto& dt = device->info().dtypes;
    check(std::find(dt.begin(), dt.end(), DType::BFloat16) != dt.end(),
          std::string(key) + " = \"bf16\": backend " + c.backend + " has no bfloat16; use \"fp32\"");
  };
  if (c.precision == "bf16") {
    require_bf16("train.precision");
    model.set_compute_dtype(DType::BFloat16);
  }
  if (c.state_dtype == "bf16") require_bf16("optimizer.state_dtype");
  if (c.grad_dtype == "bf16") require_bf16("train.grad_dtype");
  model.set_recompute(c.recompute);
  std::vector<Tensor> params;
  std::vector<bool> decay;
  for (auto& [name, p] : model.parameters()) {
    if (c.grad_dtype == "bf16") p.set_grad_dtype(DType::BFloat16);
    params.push_back(p);
    decay.push_back(p.ndim() >= 2);
  }
  std::unique_ptr<ops::Optimizer> optimizer;
  ops::AdamW* adamw = nullptr;  // checkpoints carry AdamW's moments
  if (c.optimizer == "adamw") {
    auto a = std::make_unique<ops::AdamW>(params, ops::AdamWOptions{c.lr, c.beta1, c.beta2, c.eps, c.weight_decay,
                                                                        c.state_dtype == "bf16" ? DType::BFloat16 : DType::Float32}, decay);
    adamw = a.get();
    optimizer = std::move(a);
  } else {
    optimizer = std::make_unique<ops::SGD>(params, c.lr, c.momentum, false, c.weight_decay);
  }
  TrainStep train_step(model, params, *optimizer, c.grad_clip);
  StepCapture eval_forward([&model](const std::vector<Tensor>& windows) {
    NoGradGuard no_grad;
    models::Batch b = models::batch_of(windows[0]);
    return std::vector<Tensor>{model.loss(b.inputs, b.targets)};
  });
  ops::LrSchedule schedule{c.lr, c.min_lr, c.warmup_steps, c.steps, c.decay};

  if (c.dry_run) {
    report_dry_run(c, model, train_step, *data, device);
    return {};
  }

  TrainState state;
  models::SamplerRng train_rng(static_cast<uint64_t>(c.seed) * 2 + 1), val_rng(static_cast<uint64_t>(c.seed) * 2 + 2);
  // Everything checkable before the first step: the run folder, both data splits.
  claim_run_folder(c, model.config());
  {  // a lower bound on a step's memory: one micro-batch's logits (float32)
    const int64_t logits = checked_mul(checked_mul(c.batch_size, c.seq_len, "train.batch_size x train.seq_len"),
                                       checked_mul(model.config().vocab_size, 4, "the vocabulary's bytes"), "a batch's logits in bytes");
    if (device->info().memory_bytes > 0 && static_cast<uint64_t>(logits) > device->info().memory_bytes)
      throw Error("train.batch_size x train.seq_len = " + std::to_string(int64_t{c.batch_size} * c.seq_len) + " tokens: their logits alone take " +
                  std::to_string(logits >> 30) + " GiB, more than " + device->label() + "'s " + std::to_string(device->info().memory_bytes >> 30) +
                  " GiB. Lower train.batch_size or train.seq_len and raise train.grad_accum.");
  }
  for (auto split : {models::Split::Train, models::Split::Validation}) {
    models::SamplerRng probe(0);
    std::vector<int32_t> window;
    data->sample(1, c.seq_len, split, probe, window);
  }
  double load_seconds = 0;
  if (c.resume == "auto") {
    auto load_start = Clock::now();
    if (auto s = load_latest_checkpoint(c.out_dir, model, adamw)) state = *s;
    load_seconds = seconds_since(load_start);
  }
  record_run_model(c, model.config());
  if (state.step > 0) {
    train_rng.set_state(state.train_rng);
    val_rng.set_state(state.val_rng);
    Tensor::set_random_state(state.tensor_rng);
  }
  RunLog run(c.out_dir, c.steps, state.step, c.mllog);
  auto& log = run.log();
  log.info("model: {} parameters, {} layers, width {}, vocab {}; data: {}", model.config().parameter_count(), model.config().num_hidden_layers,
           model.config().hidden_size, model.config().vocab_size, data->describe());
  log.info("backend: {} ({})", device->label(), device->info().name);
  if (state.step > 0) log.info("resuming from the checkpoint at step {} (read in {:.2f} s)", state.step, load_seconds);
  if (state.step >= c.steps) log.info("the run already finished ({} steps); nothing to do", state.step);
  run.mllog("run_start", nullptr, {{"step", state.step}}, "INTERVAL_START");
  run.mllog("global_batch_size", c.batch_size * c.grad_accum);
  run.mllog("opt_base_learning_rate", c.lr);

  TrainResult result;
  int64_t peak_step_bytes = 0;
  const int64_t first_step = state.step;
  auto start = Clock::now();
  int64_t tokens_per_step = static_cast<int64_t>(c.batch_size) * c.seq_len * c.grad_accum;
  auto window_start = Clock::now();
  int64_t window_steps = 0;
  for (int64_t step = state.step; step < c.steps; ++step) {
    auto step_start = Clock::now();
    const double device_before = runtime_stats().device_seconds;
    const std::pair<double, int64_t> compile_before{runtime_stats().compile_seconds, runtime_stats().kernels_compiled};
    runtime_stats().reset_peak();
    double lr = ops::lr_at(schedule, step);
    TrainStep::Result r;
    try {
      std::vector<Tensor> windows;
      for (int micro = 0; micro < c.grad_accum; ++micro)
        windows.push_back(models::make_batch(*data, c.batch_size, c.seq_len, models::Split::Train, train_rng, device).tokens);
      r = train_step.run(windows, lr);
    } catch (const OutOfMemoryError& e) {
      throw Error("step " + std::to_string(step + 1) + ": the batch does not fit in device memory (" + e.what() +
                  "). Lower train.batch_size or train.seq_len and raise train.grad_accum; the last checkpoint is intact.");
    }
    double loss = r.loss, grad_norm = r.grad_norm;
    if (!std::isfinite(loss) || !std::isfinite(grad_norm)) {
      // The update already applied non-finite values to the weights: nothing of this step may be saved.
      auto intact = list_checkpoints(c.out_dir);
      throw Error("step " + std::to_string(step + 1) + ": the training " + (std::isfinite(loss) ? "gradient norm" : "loss") + " is " +
                  std::to_string(std::isfinite(loss) ? grad_norm : loss) + "; stopped without writing a checkpoint (" +
                  (intact.empty() ? std::string("none was written yet") : "the last intact one is " + intact.back()) +
                  "). Lower optimizer.lr, raise schedule.warmup_steps or set optimizer.grad_clip.");
    }
    ++window_steps;
    peak_step_bytes = std::max<int64_t>(peak_step_bytes, runtime_stats().bytes_peak);
    if (step == first_step) {
      log.info("device memory: {:.1f} MiB at the peak of the first step; host: {:.1f} MiB resident at the peak so far",
               static_cast<double>(runtime_stats().bytes_peak) / (1 << 20), static_cast<double>(host_peak_resident_bytes()) / (1 << 20));
      log.info("first step: {:.1f} s, {:.1f} s of it building {} kernels (disk-cache hits included)", seconds_since(step_start),
               runtime_stats().compile_seconds - compile_before.first, runtime_stats().kernels_compiled - compile_before.second);
    }
    if (debug_level() >= 1) {
      // Kernels are timed one by one at this level, so wall time = host time + device time.
      double wall = seconds_since(step_start), device_s = runtime_stats().device_seconds - device_before;
      log.info("step {}: wall {:.1f} ms = host {:.1f} ms + device {:.1f} ms", step + 1, wall * 1e3, (wall - device_s) * 1e3, device_s * 1e3);
    }

    int64_t done = step + 1;
    bool last = done == c.steps;
    std::optional<double> val;
    if ((c.eval_every > 0 && done % c.eval_every == 0) || last) {
      val = evaluate(eval_forward, *data, c, val_rng, device);
      run.mllog("eval_accuracy", *val, {{"epoch_num", done}, {"metric", "validation loss"}});
    }
    double tps = static_cast<double>(window_steps * tokens_per_step) / std::max(seconds_since(window_start), 1e-9);
    double elapsed = state.elapsed_s + seconds_since(start);
    run.step({done, loss, lr, grad_norm, tps, elapsed, val}, done % c.log_every == 0 || last);
    if (done % c.log_every == 0) window_start = Clock::now(), window_steps = 0;
    result = {done, loss, val ? *val : result.final_val_loss, false};

    bool reached = val && c.target_loss > 0 && *val <= c.target_loss;
    if ((c.checkpoint_every > 0 && done % c.checkpoint_every == 0) || (c.checkpoint_every >= 0 && (last || reached))) {
      state = {done, train_rng.state(), val_rng.state(), Tensor::random_state(), elapsed};
      const auto save_start = Clock::now();
      const uint64_t bytes = save_checkpoint(c.out_dir, model, adamw, state, c.keep);
      log.info("checkpoint of step {}: {:.1f} MiB written in {:.2f} s", done, static_cast<double>(bytes) / (1 << 20),
               std::chrono::duration<double>(Clock::now() - save_start).count());
      state.elapsed_s = 0;
      state.step = done;
    }
    if (reached) {
      log.info("validation loss {:.4f} reached the target {:.4f} at step {} after {:.1f} s", *val, c.target_loss, done, elapsed);
      run.mllog("run_stop", nullptr, {{"status", "success"}, {"step", done}, {"time_to_target_s", elapsed}}, "INTERVAL_END");
      result.reached_target = true;
      break;
    }
  }
  log.info("device memory: {:.1f} MiB at the peak of a training step (parameters, optimizer state and the step's buffers); "
           "host: {:.1f} MiB resident at the peak",
           static_cast<double>(peak_step_bytes) / (1 << 20), static_cast<double>(host_peak_resident_bytes()) / (1 << 20));
  if (!result.reached_target) run.mllog("run_stop", nullptr, {{"status", c.target_loss > 0 ? "aborted" : "success"}}, "INTERVAL_END");
  if (c.export_hf) {
    std::string hf = (std::filesystem::path(c.out_dir) / "hf").string();
    const auto export_start = Clock::now();
    models::save_hf_model(model, hf, size_t{4} << 30, c.export_dtype == "bf16" ? DType::BFloat16 : DType::Float32);
    log.info("exported the model in Hugging Face layout to {} in {:.2f} s", hf,
             std::chrono::duration<double>(Clock::now() - export_start).count());
  }
  if (c.plot) {
    std::string why = run.plot();
    if (why.empty()) log.info("loss curves: {}", (std::filesystem::path(c.out_dir) / "loss.svg").string());
    else log.warn("no plot: {}", why);
  }
  return result;
}

}  // namespace lathe::app
