// Byte-level BPE tokenizer (GPT-2 and Llama 3 style), read from a Hugging Face tokenizer.json or a
// tiktoken ranks file, encoding and decoding as Hugging Face `tokenizers` does.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace lathe::models {

class Tokenizer {
 public:
  // `path`: a tokenizer.json (model type BPE with byte-level pre-tokenization) or a tiktoken file
  // of "base64-token rank" lines (Llama 3's tokenizer.model: the Llama 3 pattern and its 256
  // special tokens are added). Errors name the file and what is wrong with it.
  static Tokenizer load(const std::string& path);

  // Special (added) tokens written in the text are matched, as `tokenizers` does; no BOS or EOS
  // is added. Invalid UTF-8 passes through byte by byte.
  std::vector<int32_t> encode(std::string_view text) const;
  std::string decode(const std::vector<int32_t>& ids) const;  // an id out of range is an Error

  int64_t vocab_size() const { return static_cast<int64_t>(bytes_of_id_.size()); }
  std::optional<int32_t> id_of(const std::string& token) const;  // a special token's or a byte string's id
  // The end-of-document token: <|end_of_text|>, <|endoftext|> or </s>, when the vocabulary has one.
  std::optional<int32_t> end_of_text() const;

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

 private:
  Tokenizer();
  void add_special(const std::string& content, int32_t id);
  void finish(const std::string& pattern, const std::string& where);
  void encode_piece(std::string_view piece, std::vector<int32_t>& out) const;
  void encode_ordinary(std::string_view text, std::vector<int32_t>& out) const;

  std::vector<std::string> bytes_of_id_;          // id -> the bytes it stands for (specials: their text)
  std::unordered_map<std::string, int32_t> ids_;  // bytes -> id, for mergeable tokens
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges_;  // (left, right) -> (rank, merged id)
  bool rank_by_id_ = false;    // tiktoken: a pair's rank is the id of its concatenation
  bool ignore_merges_ = false;  // a piece that is itself a token is emitted whole (Llama 3's tokenizer.json)
  std::vector<std::pair<std::string, int32_t>> specials_;  // longest first
  bool special_starts_[256] = {};  // first bytes of specials: where the text is searched for them
  int32_t byte_ids_[256];
  struct Regex;
  std::unique_ptr<Regex> regex_;  // the pre-tokenizer's pattern (none: the whole text is one piece)
};

}  // namespace lathe::models
