// `lathe tokenize`: text to token ids with a byte-level BPE tokenizer (and back with --decode).
#include <fmt/format.h>

#include <sstream>

#include "commands.h"
#include "lathe/error.h"
#include "lathe/models/tokenizer.h"

namespace lathe::app {

void add_tokenize_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("tokenize", "Encode text into token ids (or decode ids) with a tokenizer.json or tiktoken file");
  static std::string tokenizer, text, decode;
  cmd->add_option("--tokenizer", tokenizer, "tokenizer.json (Hugging Face) or tokenizer.model (tiktoken ranks, Llama 3)")->required();
  auto* t = cmd->add_option("--text", text, "encode this text and print its ids separated by spaces (special tokens in it are matched; no BOS/EOS added)");
  auto* d = cmd->add_option("--decode", decode, "decode these ids (separated by spaces or commas) and print the text");
  t->excludes(d);
  cmd->callback([] {
    check(!text.empty() || !decode.empty(), "lathe tokenize: give --text STRING to encode or --decode IDS to decode");
    models::Tokenizer tok = models::Tokenizer::load(tokenizer);
    if (!decode.empty()) {
      std::vector<int32_t> ids;
      std::string field;
      std::istringstream in(decode);
      while (std::getline(in, field, decode.find(',') != std::string::npos ? ',' : ' ')) {
        if (field.find_first_not_of(' ') == std::string::npos) continue;
        try {
          ids.push_back(static_cast<int32_t>(std::stol(field)));
        } catch (const std::exception&) {
          throw Error("lathe tokenize --decode: '" + field + "' is not a token id");
        }
      }
      fmt::print("{}", tok.decode(ids));
      return;
    }
    std::vector<int32_t> ids = tok.encode(text);
    std::string out;
    for (size_t i = 0; i < ids.size(); ++i) out += (i ? " " : "") + std::to_string(ids[i]);
    fmt::print("{}\n", out);
  });
}

}  // namespace lathe::app
