// `lathe generate`: a Hugging Face Llama folder continues a prompt, tokens streamed as they come.
#include <fmt/format.h>

#include <filesystem>
#include <sstream>

#include "commands.h"
#include "lathe/backends.h"
#include "lathe/error.h"
#include "lathe/models/generate.h"
#include "lathe/models/hf_checkpoint.h"
#include "lathe/models/tokenizer.h"
#include "train/checkpoint.h"

namespace lathe::app {

// A Hugging Face folder as given; a training run's folder gives its newest checkpoint (each holds
// a config.json), or its hf/ export.
std::string model_folder(const std::string& dir) {
  namespace fs = std::filesystem;
  if (fs::exists(fs::path(dir) / "config.json")) return dir;
  const auto steps = list_checkpoints(dir);
  for (auto it = steps.rbegin(); it != steps.rend(); ++it)
    if (fs::exists(fs::path(*it) / "config.json")) return *it;
  if (fs::exists(fs::path(dir) / "hf" / "config.json")) return (fs::path(dir) / "hf").string();
  throw Error("lathe generate --model " + dir + ": no config.json there, in a checkpoint under checkpoints/, or in hf/; "
              "give a Hugging Face model folder or a training run's folder");
}

void add_generate_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("generate", "Continue a prompt with a Llama model (Hugging Face folder: config.json + safetensors)");
  static std::string model_dir, prompt, prompt_ids, tokenizer, backend = "cpu";
  static models::GenerateOptions o;
  static bool print_ids = false;
  cmd->add_option("--model", model_dir, "Hugging Face folder (config.json, model.safetensors), or a training run's folder (its newest checkpoint)")->required();
  cmd->add_option("--prompt", prompt, "text to continue (needs a tokenizer: --tokenizer, or tokenizer.json in the model folder)");
  cmd->add_option("--prompt-ids", prompt_ids, "token ids to continue, separated by commas");
  cmd->add_option("--tokenizer", tokenizer, "tokenizer.json or tiktoken file (default: the model folder's tokenizer.json)");
  cmd->add_option("--max-tokens", o.max_tokens, "tokens to generate")->capture_default_str();
  cmd->add_option("--temperature", o.temperature, "0: greedy")->capture_default_str();
  cmd->add_option("--top-k", o.top_k, "sample among the k most likely tokens (0: all)")->capture_default_str();
  cmd->add_option("--top-p", o.top_p, "sample among the fewest most likely tokens whose probability reaches p")->capture_default_str();
  cmd->add_option("--seed", o.seed, "seed of the sampler")->capture_default_str();
  cmd->add_option("--backend", backend, "backend to run on (see `lathe backends`)")->capture_default_str();
  cmd->add_flag("--print-ids", print_ids, "print the generated ids (space-separated) instead of text");
  cmd->callback([] {
    check(prompt.empty() != prompt_ids.empty(), "lathe generate: give exactly one of --prompt TEXT and --prompt-ids 1,2,3");
    check(o.temperature >= 0 && o.top_p > 0 && o.top_p <= 1 && o.top_k >= 0,
          "lathe generate: --temperature must be >= 0, --top-p in (0, 1], --top-k >= 0");
    Device* device = get_device(backend);
    std::optional<models::Tokenizer> tok;
    std::string tok_path = tokenizer.empty() ? (std::filesystem::path(model_dir) / "tokenizer.json").string() : tokenizer;
    if (!tokenizer.empty() || std::filesystem::exists(tok_path)) tok = models::Tokenizer::load(tok_path);
    std::vector<int32_t> ids;
    if (!prompt.empty()) {
      check(tok.has_value(), "lathe generate --prompt: no tokenizer (give --tokenizer FILE, or put tokenizer.json in " + model_dir + ")");
      ids = tok->encode(prompt);
    } else {
      std::istringstream in(prompt_ids);
      for (std::string f; std::getline(in, f, ',');) {
        try {
          ids.push_back(static_cast<int32_t>(std::stol(f)));
        } catch (const std::exception&) {
          throw Error("lathe generate --prompt-ids: '" + f + "' is not a token id");
        }
      }
    }
    const std::string folder = model_folder(model_dir);
    if (folder != model_dir) fmt::print(stderr, "lathe generate: the model of {}\n", folder);
    models::LlamaModel model = models::load_hf_model(folder, device);
    if (tok) o.stop = tok->end_of_text();
    std::vector<int32_t> shown;
    size_t printed = 0;
    auto stream = [&](int32_t id) {  // text as it comes; a UTF-8 character cut between tokens waits for its rest
      if (print_ids || !tok) return;
      shown.push_back(id);
      std::string text = tok->decode(shown);
      size_t end = text.size();
      for (size_t back = 1; back <= 3 && back <= end; ++back) {
        unsigned char c = static_cast<unsigned char>(text[end - back]);
        if ((c & 0xc0) == 0x80) continue;
        int need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
        if (static_cast<size_t>(need) > back) end -= back;
        break;
      }
      if (end > printed) fmt::print("{}", text.substr(printed, end - printed)), std::fflush(stdout), printed = end;
    };
    std::vector<int32_t> out = models::generate(model, ids, o, stream);
    if (print_ids || !tok) {
      std::string line;
      for (size_t i = 0; i < out.size(); ++i) line += (i ? " " : "") + std::to_string(out[i]);
      fmt::print("{}\n", line);
    } else {
      std::string text = tok->decode(shown);
      fmt::print("{}\n", text.substr(printed));
    }
  });
}

}  // namespace lathe::app
