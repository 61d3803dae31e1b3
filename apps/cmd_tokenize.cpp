// `lathe tokenize`: text to token ids with a byte-level BPE tokenizer (and back with --decode);
// whole corpora (text, jsonl, jsonl.gz) into llm.c or Megatron token files on all cores.
#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "commands.h"
#include "lathe/error.h"
#include "lathe/models/data.h"
#include "lathe/models/megatron.h"
#include "lathe/models/tokenizer.h"

namespace lathe::app {
namespace {

bool ends_with(const std::string& s, const char* suffix) {
  const size_t n = std::char_traits<char>::length(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

// Calls `chunk` with the bytes of a file, gzip-compressed or not (zlib reads both).
void read_chunks(const std::string& path, const std::function<void(const char*, size_t)>& chunk) {
  gzFile f = gzopen(path.c_str(), "rb");
  check(f != nullptr, "lathe tokenize: cannot open " + path);
  char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) chunk(buf, static_cast<size_t>(n));
  int err = 0;
  const char* msg = gzerror(f, &err);
  std::string why = msg ? msg : "read error";
  gzclose(f);
  check(n == 0 && err == Z_OK, "lathe tokenize: " + path + ": " + why + " (a truncated .gz?)");
}

void for_each_line(const std::string& path, const std::function<void(std::string&)>& line) {
  std::string cur;
  read_chunks(path, [&](const char* p, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      if (p[i] != '\n') {
        cur.push_back(p[i]);
        continue;
      }
      line(cur);
      cur.clear();
    }
  });
  if (!cur.empty()) line(cur);
}

// Each input's documents, in order: a text file is one document, each jsonl line's "text" one.
void for_each_document(const std::string& path, const std::function<void(std::string)>& document) {
  if (!ends_with(path, ".jsonl") && !ends_with(path, ".jsonl.gz")) {
    std::string all;
    read_chunks(path, [&](const char* p, size_t n) { all.append(p, n); });
    return document(std::move(all));
  }
  int64_t n = 0;
  for_each_line(path, [&](std::string& l) {
    ++n;
    if (l.find_first_not_of(" \t\r") == std::string::npos) return;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(l);
    } catch (const std::exception& e) {
      throw Error(path + ":" + std::to_string(n) + ": not a JSON line (" + e.what() + ")");
    }
    check(j.is_object() && j.contains("text") && j["text"].is_string(), path + ":" + std::to_string(n) + ": no string \"text\" field");
    document(j["text"].get<std::string>());
  });
}

// Encodes every document of the inputs on `threads` threads, a batch at a time, each followed by
// the end-of-document token, and hands them over in input order.
void tokenize_corpus(const models::Tokenizer& tok, const std::vector<std::string>& inputs, int threads,
                     const std::function<void(const std::vector<int32_t>&)>& out) {
  const auto eod = tok.end_of_text();
  check(eod.has_value(), "lathe tokenize: the tokenizer has no end-of-text token (<|end_of_text|>, <|endoftext|> or </s>)");
  const auto start = std::chrono::steady_clock::now();
  int64_t bytes = 0, tokens = 0;
  std::vector<std::string> batch;
  size_t batch_bytes = 0;
  auto flush = [&] {
    std::vector<std::vector<int32_t>> ids(batch.size());
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        for (size_t d = static_cast<size_t>(t); d < batch.size(); d += static_cast<size_t>(threads)) {
          ids[d] = tok.encode(batch[d]);
          ids[d].push_back(*eod);
        }
      });
    for (auto& p : pool) p.join();
    for (size_t d = 0; d < batch.size(); ++d) bytes += static_cast<int64_t>(batch[d].size()), tokens += static_cast<int64_t>(ids[d].size()), out(ids[d]);
    batch.clear();
    batch_bytes = 0;
    const double s = std::max(1e-9, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    fmt::print(stderr, "\r{:.1f} MB, {} tokens: {:.2f} MB/s, {:.0f} tokens/s   ", bytes / 1e6, tokens, bytes / 1e6 / s, tokens / s);
  };
  for (auto& path : inputs)
    for_each_document(path, [&](std::string doc) {
      batch_bytes += doc.size();
      batch.push_back(std::move(doc));
      if (batch_bytes >= (size_t{8} << 20)) flush();
    });
  flush();
  fmt::print(stderr, "\n");
}

}  // namespace

void add_tokenize_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("tokenize", "Encode text into token ids (or decode ids) with a tokenizer.json or tiktoken file");
  static std::string tokenizer, text, decode, output, format = "bin";
  static std::vector<std::string> inputs;
  static int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  cmd->add_option("--tokenizer", tokenizer, "tokenizer.json (Hugging Face) or tokenizer.model (tiktoken ranks, Llama 3)")->required();
  auto* t = cmd->add_option("--text", text, "encode this text and print its ids separated by spaces (special tokens in it are matched; no BOS/EOS added)");
  auto* d = cmd->add_option("--decode", decode, "decode these ids (separated by spaces or commas) and print the text");
  t->excludes(d);
  auto* i = cmd->add_option("--input", inputs, "text, .jsonl or .jsonl.gz files (one document per file or per line's \"text\")");
  cmd->add_option("--output", output, "with --input: where the tokens go (PREFIX.bin, and PREFIX.idx for megatron)");
  cmd->add_option("--format", format, "bin (llm.c, read by data.source = \"file\") or megatron (.bin + .idx)")
      ->check(CLI::IsMember({"bin", "megatron"}))
      ->capture_default_str();
  cmd->add_option("--threads", threads, "encoding threads")->capture_default_str();
  i->excludes(t)->excludes(d);
  cmd->callback([] {
    check(!text.empty() || !decode.empty() || !inputs.empty(),
          "lathe tokenize: give --text STRING to encode, --decode IDS to decode, or --input FILES --output PREFIX");
    models::Tokenizer tok = models::Tokenizer::load(tokenizer);
    if (!inputs.empty()) {
      check(!output.empty(), "lathe tokenize --input: give --output PREFIX");
      check(threads >= 1, "lathe tokenize: --threads must be at least 1");
      const std::string prefix = ends_with(output, ".bin") ? output.substr(0, output.size() - 4) : output;
      if (format == "megatron") {
        models::MegatronWriter w(prefix, tok.vocab_size());
        tokenize_corpus(tok, inputs, threads, [&](const std::vector<int32_t>& ids) { w.add_document(ids); });
        w.finish();
        fmt::print("{} tokens in {}.bin and {}.idx\n", w.tokens(), prefix, prefix);
      } else {
        std::vector<uint32_t> all;
        tokenize_corpus(tok, inputs, threads, [&](const std::vector<int32_t>& ids) { all.insert(all.end(), ids.begin(), ids.end()); });
        models::write_llmc_tokens(prefix + ".bin", all);
        fmt::print("{} tokens in {}.bin\n", all.size(), prefix);
      }
      return;
    }
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
