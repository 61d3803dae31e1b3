// The training loop: model, optimizer, data, checkpoints and logs, as a TrainConfig says.
#include "trainer.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <optional>

#include "checkpoint.h"
#include "communicator.h"
#include "dry_run.h"
#include "lathe/backends.h"
#include "lathe/models/data.h"
#include "lathe/models/hf_checkpoint.h"
#include "lathe/models/megatron.h"
#include "lathe/ops/optim.h"
#include "lathe/runtime.h"
#include "parallel_step.h"
#include "ranks.h"
#include "run_folder.h"
#include "run_log.h"
#include "train_step.h"

namespace lathe::app {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// One dataset file (or Megatron prefix), split by val_fraction; `samples` are Megatron's sample
// counts for its two splits.
std::unique_ptr<models::TokenSource> file_or_megatron(const TrainConfig& c, const std::string& path, double val_fraction,
                                                      int64_t train_samples, int64_t validation_samples) {
  const bool idx = path.size() > 4 && path.compare(path.size() - 4, 4, ".idx") == 0;
  if (c.data_format == "megatron" || idx)
    return models::megatron_source(path, val_fraction, {static_cast<uint32_t>(c.seed), c.seq_len, train_samples, validation_samples});
  return models::file_source(path, val_fraction);
}

std::unique_ptr<models::TokenSource> make_source(const TrainConfig& c) {
  if (c.data_source == "synthetic") return models::synthetic_source(c.synthetic_vocab);
  // Megatron's sample counts, which set its epochs: every step's micro-batches, and every
  // evaluation's batches (one every eval.every steps, and one more).
  const int64_t evaluations = (c.eval_every > 0 ? c.steps / c.eval_every : 0) + 1;
  const int64_t train_samples = c.steps * c.grad_accum * c.batch_size, validation_samples = evaluations * c.eval_batches * c.batch_size;
  if (c.val_path.empty()) return file_or_megatron(c, c.data_path, c.val_fraction, train_samples, validation_samples);
  // A validation set of its own: all of data.path trains, all of data.val_path validates (as
  // Megatron's per-split data paths, each sampled over all its documents with the same seed).
  return models::separate_validation(file_or_megatron(c, c.data_path, 0, train_samples, 0),
                                     file_or_megatron(c, c.val_path, 0, validation_samples, 0));
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

// The step's windows, one tensor per micro-batch this rank runs: every rank draws all of them in
// order, so the sample stream and the sampler's state do not depend on the number of ranks.
std::vector<Tensor> draw_windows(const models::TokenSource& data, const TrainConfig& c, int count, models::Split split, models::SamplerRng& rng,
                                 Device* device, const std::function<bool(int)>& mine) {
  std::vector<Tensor> out;
  std::vector<int32_t> window;
  for (int i = 0; i < count; ++i) {
    data.sample(c.batch_size, c.seq_len, split, rng, window);
    if (mine(i)) out.push_back(Tensor::from_vector(window, {c.batch_size, c.seq_len + 1}, DType::Int32, device));
  }
  return out;
}

// The mean validation loss over eval_batches windows, through a captured forward pass; the ranks
// share the windows and add the losses in their order, as one process does.
double evaluate(StepCapture& forward, const models::TokenSource& data, const TrainConfig& c, models::SamplerRng& rng, Device* device,
                Communicator& comm) {
  auto mine = [&](int i) { return i % comm.size() == comm.rank(); };
  std::vector<Tensor> windows = draw_windows(data, c, c.eval_batches, models::Split::Validation, rng, device, mine);
  std::vector<double> losses(static_cast<size_t>(c.eval_batches), 0.0);
  for (int i = 0, k = 0; i < c.eval_batches; ++i)
    if (mine(i)) losses[static_cast<size_t>(i)] = forward({windows[static_cast<size_t>(k++)]})[0].item<float>();
  comm.all_reduce_sum(losses.data(), losses.size());
  double total = 0;
  for (double l : losses) total += l;
  return total / c.eval_batches;
}

TrainResult train_ranks(const TrainConfig& c, Communicator& comm, std::atomic<int64_t>& current_step) {
  const bool primary = comm.rank() == 0, ranks = comm.size() > 1;
  check_same_config(c, comm);
  const MicroBatchShare share = micro_batch_share(c, comm);
  if (ranks && c.dry_run) throw EveryRankError("lathe train --dry-run plans one process's step: run it without mpirun");
  std::optional<DryRun> dry;  // from the start: the model's initialization is planned, not run
  if (c.dry_run) dry.emplace();
  const std::string device_name = c.backend + ":" + std::to_string(rank_device(c, comm));
  Device* device = get_device(device_name, c.backend_options);
  set_default_device(device_name);
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
  std::vector<std::string> names;
  for (auto& [name, p] : model.parameters()) {
    if (c.grad_dtype == "bf16") p.set_grad_dtype(DType::BFloat16);
    params.push_back(p);
    names.push_back(name);
  }
  // Under a sharded optimizer this rank's optimizer holds its own parameters only.
  std::optional<ShardPlan> shards;
  if (ranks && c.shard_optimizer) shards = ShardPlan::balanced(params, comm.size());
  std::vector<Tensor> optimized;
  std::vector<bool> decay;
  OptimizerState opt_state;
  for (size_t i = 0; i < params.size(); ++i)
    if (!shards || shards->owner[i] == comm.rank()) {
      optimized.push_back(params[i]);
      decay.push_back(params[i].ndim() >= 2);
      opt_state.names.push_back(names[i]);
    }
  std::unique_ptr<ops::Optimizer> optimizer;
  if (c.optimizer == "adamw") {
    auto a = std::make_unique<ops::AdamW>(optimized, ops::AdamWOptions{c.lr, c.beta1, c.beta2, c.eps, c.weight_decay,
                                                                           c.state_dtype == "bf16" ? DType::BFloat16 : DType::Float32}, decay);
    opt_state.adamw = a.get();  // checkpoints carry AdamW's moments
    opt_state.sharded = shards.has_value();
    optimizer = std::move(a);
  } else {
    optimizer = std::make_unique<ops::SGD>(optimized, c.lr, c.momentum, false, c.weight_decay);
  }
  TrainStep train_step(model, params, *optimizer, c.grad_clip);
  std::optional<ParallelStep> parallel_step;
  if (ranks)
    parallel_step.emplace(params, *optimizer, shards ? &*shards : nullptr, comm, c.grad_clip, c.grad_accum, size_t(c.bucket_mib) << 20,
                          [&model](const Tensor& window) {
                            models::Batch b = models::batch_of(window);
                            return model.loss(b.inputs, b.targets);
                          });
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
  models::SamplerRng train_rng(data->sampler_start(static_cast<uint64_t>(c.seed) * 2 + 1, models::Split::Train)),
      val_rng(data->sampler_start(static_cast<uint64_t>(c.seed) * 2 + 2, models::Split::Validation));
  // Everything checkable before the first step: the run folder, both data splits.
  if (primary) claim_run_folder(c, model.config());
  comm.barrier();  // the folder is claimed before any rank reads it
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
    if (auto s = load_latest_checkpoint(c.out_dir, model, opt_state)) state = *s;
    load_seconds = seconds_since(load_start);
    std::vector<int64_t> steps(static_cast<size_t>(comm.size()), 0);
    steps[static_cast<size_t>(comm.rank())] = state.step;
    comm.all_reduce_sum(steps.data(), steps.size(), DType::Int64);
    if (std::adjacent_find(steps.begin(), steps.end(), std::not_equal_to<>()) != steps.end())
      throw EveryRankError("the ranks resumed from different checkpoints (a damaged file that only some ranks read?); remove the newest "
                           "checkpoint folder in " + c.out_dir + "/checkpoints and start again");
  }
  if (primary) record_run_model(c, model.config());
  if (state.step > 0) {
    train_rng.set_state(state.train_rng);
    val_rng.set_state(state.val_rng);
    Tensor::set_random_state(state.tensor_rng);
  }
  RunLog run(c.out_dir, c.steps, state.step, c.mllog, primary);
  auto& log = run.log();
  log.info("model: {} parameters, {} layers, width {}, vocab {}; data: {}", model.config().parameter_count(), model.config().num_hidden_layers,
           model.config().hidden_size, model.config().vocab_size, data->describe());
  log.info("backend: {} ({})", device->label(), device->info().name);
  if (ranks)
    log.info("data parallel: {}, {} of the step's {} micro-batches each{}", comm.describe(), share.count, c.grad_accum,
             shards ? "; optimizer state sharded (each rank updates its own parameters)" : "");
  if (shards && opt_state.adamw) {  // what each rank keeps of AdamW's two moments
    std::vector<double> mib(static_cast<size_t>(comm.size()), 0.0);
    const double moment_bytes = c.state_dtype == "bf16" ? 2 : 4;
    for (size_t i = 0; i < params.size(); ++i)
      mib[static_cast<size_t>(shards->owner[i])] += 2 * moment_bytes * static_cast<double>(params[i].numel()) / (1 << 20);
    std::string each;
    for (size_t r = 0; r < mib.size(); ++r) each += fmt::format("{}rank {}: {:.1f} MiB", r ? ", " : "", r, mib[r]);
    log.info("optimizer moments per rank: {}", each);
  }
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
  double communication_seconds = 0;
  report_launcher_stop(comm, current_step);
  for (int64_t step = state.step; step < c.steps; ++step) {
    current_step = step;
    auto step_start = Clock::now();
    const double device_before = runtime_stats().device_seconds;
    const std::pair<double, int64_t> compile_before{runtime_stats().compile_seconds, runtime_stats().kernels_compiled};
    runtime_stats().reset_peak();
    double lr = ops::lr_at(schedule, step);
    TrainStep::Result r;
    try {
      std::vector<Tensor> windows = draw_windows(*data, c, c.grad_accum, models::Split::Train, train_rng, device,
                                                 [&](int i) { return i >= share.first && i < share.first + share.count; });
      if (!parallel_step) {
        r = train_step.run(windows, lr);
      } else {
        ParallelStep::Result p = parallel_step->run(windows, share.first, lr);
        r = {p.loss, p.grad_norm, p.issue_seconds};
        communication_seconds += p.communication_seconds;
        if (debug_level() >= 1) log.info("step {}: communication {:.1f} ms", step + 1, p.communication_seconds * 1e3);
      }
    } catch (const OutOfMemoryError& e) {
      throw Error("step " + std::to_string(step + 1) + ": the batch does not fit in device memory (" + e.what() +
                  "). Lower train.batch_size or train.seq_len and raise train.grad_accum; the last checkpoint is intact.");
    }
    double loss = r.loss, grad_norm = r.grad_norm;
    if (!std::isfinite(loss) || !std::isfinite(grad_norm)) {
      // The update already applied non-finite values to the weights: nothing of this step may be saved.
      auto intact = list_checkpoints(c.out_dir);
      throw EveryRankError("step " + std::to_string(step + 1) + ": the training " + (std::isfinite(loss) ? "gradient norm" : "loss") + " is " +
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
      val = evaluate(eval_forward, *data, c, val_rng, device, comm);
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
      const uint64_t bytes = save_checkpoint(c.out_dir, model, opt_state, state, c.keep, comm);
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
  if (ranks && result.steps_done > first_step)
    log.info("communication: {:.1f} ms per step on average ({} ranks)", communication_seconds * 1e3 / static_cast<double>(result.steps_done - first_step),
             comm.size());
  if (!result.reached_target) run.mllog("run_stop", nullptr, {{"status", c.target_loss > 0 ? "aborted" : "success"}}, "INTERVAL_END");
  if (c.export_hf && primary) {
    std::string hf = (std::filesystem::path(c.out_dir) / "hf").string();
    const auto export_start = Clock::now();
    models::save_hf_model(model, hf, size_t{4} << 30, c.export_dtype == "bf16" ? DType::BFloat16 : DType::Float32);
    log.info("exported the model in Hugging Face layout to {} in {:.2f} s", hf,
             std::chrono::duration<double>(Clock::now() - export_start).count());
  }
  if (c.plot && primary) {
    std::string why = run.plot();
    if (why.empty()) log.info("loss curves: {}", (std::filesystem::path(c.out_dir) / "loss.svg").string());
    else log.warn("no plot: {}", why);
  }
  return result;
}

}  // namespace

TrainResult train(const TrainConfig& c) {
  std::unique_ptr<Communicator> comm = connect_ranks();
  std::atomic<int64_t> current_step{0};
  if (comm->size() == 1) return train_ranks(c, *comm, current_step);
  try {
    return train_ranks(c, *comm, current_step);
  } catch (const EveryRankError&) {
    // Every rank stops here: rank 0 reports it, the others leave quietly.
    if (comm->rank() == 0) throw;
    comm.reset();
    std::exit(1);
  } catch (const std::exception& e) {
    // The other ranks may be waiting in a collective for this one: stop them all.
    spdlog::error("rank {} of {}, step {}: {}", comm->rank(), comm->size(), current_step.load() + 1, e.what());
    comm->abort(1);
    return {};  // abort() does not return
  }
}

}  // namespace lathe::app
