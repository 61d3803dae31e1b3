// `lathe eval`: the mean cross-entropy of a Hugging Face Llama checkpoint on a token batch,
// optionally with its logits and the gradients of that loss.
#include <fmt/format.h>

#include "commands.h"
#include "lathe/backends.h"
#include "lathe/models/hf_checkpoint.h"
#include "lathe/models/npy.h"
#include "lathe/models/safetensors.h"
#include "lathe/ops/nn.h"

namespace lathe::app {
namespace {

struct EvalArgs {
  std::string model, tokens, backend, logits_out, grads_out;
};

void run_eval(const EvalArgs& a) {
  if (!a.backend.empty()) set_default_device(a.backend);
  models::LlamaModel model = models::load_hf_model(a.model);
  Tensor tokens = models::load_npy(a.tokens);
  check(tokens.ndim() == 2 && tokens.shape()[0] >= 1 && tokens.shape()[1] >= 2,
        a.tokens + ": tokens must be a [batch, time+1] integer array with batch >= 1 and time >= 1, got shape " + to_string(tokens.shape()));
  check(!is_float(tokens.dtype()), a.tokens + ": tokens must be integers, got " + std::string(dtype_name(tokens.dtype())));
  ops::check_ids(tokens, model.config().vocab_size, a.tokens);
  int64_t t = tokens.shape()[1] - 1;
  Tensor logits = model.forward(tokens.slice(1, 0, t));
  Tensor loss = ops::cross_entropy(logits, tokens.slice(1, 1, t + 1));
  fmt::print("loss: {:.9g}\n", loss.item<float>());
  if (!a.logits_out.empty()) models::save_npy(a.logits_out, logits);
  if (!a.grads_out.empty()) {
    loss.backward();
    std::vector<std::pair<std::string, Tensor>> grads;
    for (auto& [name, p] : model.parameters()) grads.push_back({name, p.grad()});
    models::save_safetensors(a.grads_out, grads, {{"format", "pt"}});
  }
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("eval", "Loss (and optionally logits and gradients) of a Llama checkpoint on a token batch");
  static EvalArgs a;
  cmd->add_option("--model", a.model, "folder with config.json and model.safetensors (or an index)")->required();
  cmd->add_option("--tokens", a.tokens, ".npy integer array [B, T+1]: inputs [:, :-1], targets [:, 1:]")->required();
  cmd->add_option("--backend", a.backend, "backend to run on (default: LATHE_BACKEND or cpu)");
  cmd->add_option("--logits-out", a.logits_out, "write the float32 logits [B, T, vocab] here (.npy)");
  cmd->add_option("--grads-out", a.grads_out, "write the gradients of the loss here (.safetensors, Hugging Face names)");
  cmd->callback([] { run_eval(a); });
}

}  // namespace lathe::app
