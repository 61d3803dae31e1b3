// Byte-level BPE: loading tokenizer.json and tiktoken files, the pre-tokenizer's regex (PCRE2),
// merges, special tokens.
#include "lathe/models/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "lathe/error.h"

namespace lathe::models {
namespace {

// Llama 3's pre-tokenizer: contractions, words with one leading non-letter, numbers of up to
// three digits, punctuation runs, newlines, other whitespace.
const char* kLlama3Pattern =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
// GPT-2's, which a ByteLevel pre-tokenizer with use_regex applies.
const char* kGpt2Pattern = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

// GPT-2's byte-level alphabet: each byte is a printable code point in tokenizer.json's strings.
struct ByteAlphabet {
  int byte_of_code[324];
  ByteAlphabet() {
    std::fill(std::begin(byte_of_code), std::end(byte_of_code), -1);
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
      byte_of_code[printable ? b : 256 + extra++] = b;
    }
  }
};

// A tokenizer.json token string back to its bytes; nullopt when a code point is not of the alphabet.
std::optional<std::string> token_bytes(const std::string& s) {
  static const ByteAlphabet alphabet;
  std::string out;
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    uint32_t cp;
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : 4;
    if (i + static_cast<size_t>(len) > s.size()) return std::nullopt;
    cp = len == 1 ? c : c & (0x7f >> len);
    for (int k = 1; k < len; ++k) cp = cp << 6 | (static_cast<unsigned char>(s[i + k]) & 0x3f);
    if (cp >= 324 || alphabet.byte_of_code[cp] < 0) return std::nullopt;
    out.push_back(static_cast<char>(alphabet.byte_of_code[cp]));
    i += static_cast<size_t>(len);
  }
  return out;
}

std::optional<std::string> base64_decode(const std::string& s) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char ch : s) {
    int v = ch >= 'A' && ch <= 'Z' ? ch - 'A' : ch >= 'a' && ch <= 'z' ? ch - 'a' + 26 : ch >= '0' && ch <= '9' ? ch - '0' + 52
            : ch == '+' ? 62 : ch == '/' ? 63 : ch == '=' ? -2 : -1;
    if (v == -1) return std::nullopt;
    if (v == -2) break;
    acc = acc << 6 | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) out.push_back(static_cast<char>(acc >> (bits -= 8) & 0xff));
  }
  return out;
}

uint64_t pair_key(int32_t a, int32_t b) { return static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32 | static_cast<uint32_t>(b); }

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  check(static_cast<bool>(in), "tokenizer: cannot open " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

struct Tokenizer::Regex {
  pcre2_code* code = nullptr;
  ~Regex() { pcre2_code_free(code); }
};

Tokenizer::Tokenizer() { std::fill(std::begin(byte_ids_), std::end(byte_ids_), -1); }
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

void Tokenizer::add_special(const std::string& content, int32_t id) {
  if (static_cast<size_t>(id) >= bytes_of_id_.size()) bytes_of_id_.resize(static_cast<size_t>(id) + 1);
  bytes_of_id_[static_cast<size_t>(id)] = content;
  specials_.push_back({content, id});
}

void Tokenizer::finish(const std::string& pattern, const std::string& where) {
  for (int b = 0; b < 256; ++b) {
    auto it = ids_.find(std::string(1, static_cast<char>(b)));
    check(it != ids_.end(), where + ": the vocabulary has no token for byte " + std::to_string(b) + "; a byte-level BPE needs all 256");
    byte_ids_[b] = it->second;
  }
  std::stable_sort(specials_.begin(), specials_.end(), [](auto& a, auto& b) { return a.first.size() > b.first.size(); });
  for (auto& [s, id] : specials_)
    if (!s.empty()) special_starts_[static_cast<unsigned char>(s[0])] = true;
  if (pattern.empty()) return;
  int err = 0;
  PCRE2_SIZE at = 0;
  regex_ = std::make_unique<Regex>();
  regex_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF,
                               &err, &at, nullptr);
  if (!regex_->code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    throw Error(where + ": the pre-tokenizer's pattern does not compile at offset " + std::to_string(at) + ": " + reinterpret_cast<char*>(msg));
  }
  pcre2_jit_compile(regex_->code, PCRE2_JIT_COMPLETE);  // when JIT is not available, matching is interpreted
}

Tokenizer Tokenizer::load(const std::string& path) {
  const std::string text = read_file(path);
  Tokenizer t;
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && text[first] == '{') {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(text);
    } catch (const std::exception& e) {
      throw Error(path + ": not valid JSON (" + e.what() + ")");
    }
    auto fail = [&](const std::string& what) { throw Error(path + ": " + what); };
    if (!j.contains("model") || !j["model"].is_object()) fail("no \"model\" object: not a Hugging Face tokenizer.json");
    const auto& m = j["model"];
    if (m.value("type", std::string("BPE")) != "BPE") fail("model type " + m.value("type", std::string()) + " is not supported (only BPE)");
    if (!j.value("normalizer", nlohmann::json()).is_null()) fail("a normalizer is not supported (byte-level BPE tokenizers have none)");
    if (m.value("byte_fallback", false)) fail("byte_fallback (SentencePiece-style BPE) is not supported");
    if (!m.contains("vocab") || !m["vocab"].is_object()) fail("model.vocab is missing");
    t.ignore_merges_ = m.value("ignore_merges", false);
    for (auto& [token, id] : m["vocab"].items()) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > std::numeric_limits<int32_t>::max())
        fail("model.vocab[\"" + token + "\"] is not a token id");
      auto bytes = token_bytes(token);
      if (!bytes) fail("model.vocab token \"" + token + "\" is not in the byte-level alphabet");
      const auto i = static_cast<int32_t>(id.get<int64_t>());
      if (static_cast<size_t>(i) >= t.bytes_of_id_.size()) t.bytes_of_id_.resize(static_cast<size_t>(i) + 1);
      t.bytes_of_id_[static_cast<size_t>(i)] = *bytes;
      t.ids_[*bytes] = i;
    }
    int32_t rank = 0;
    for (auto& merge : m.value("merges", nlohmann::json::array())) {
      std::string a, b;
      if (merge.is_string()) {
        const std::string s = merge.get<std::string>();
        const size_t space = s.find(' ');
        if (space == std::string::npos) fail("merge \"" + s + "\" is not two tokens");
        a = s.substr(0, space), b = s.substr(space + 1);
      } else if (merge.is_array() && merge.size() == 2) {
        a = merge[0].get<std::string>(), b = merge[1].get<std::string>();
      } else {
        fail("merge " + std::to_string(rank) + " is neither \"a b\" nor [a, b]");
      }
      auto ab = token_bytes(a), bb = token_bytes(b);
      if (!ab || !bb || !t.ids_.count(*ab) || !t.ids_.count(*bb) || !t.ids_.count(*ab + *bb))
        fail("merge " + std::to_string(rank) + " (\"" + a + "\" + \"" + b + "\") names tokens the vocabulary does not have");
      t.merges_.emplace(pair_key(t.ids_[*ab], t.ids_[*bb]), std::make_pair(rank++, t.ids_[*ab + *bb]));
    }
    for (auto& added : j.value("added_tokens", nlohmann::json::array())) {
      if (added.value("lstrip", false) || added.value("rstrip", false) || added.value("single_word", false))
        fail("added token " + added.value("content", std::string()) + ": lstrip, rstrip and single_word are not supported");
      t.add_special(added.at("content").get<std::string>(), added.at("id").get<int32_t>());
    }
    // Pre-tokenization: one splitting pattern (Split with a regex, or ByteLevel's own), then bytes.
    std::string pattern;
    std::vector<nlohmann::json> steps;
    const auto pre = j.value("pre_tokenizer", nlohmann::json());
    if (pre.is_object() && pre.value("type", std::string()) == "Sequence") steps = pre.at("pretokenizers").get<std::vector<nlohmann::json>>();
    else if (pre.is_object()) steps = {pre};
    for (auto& s : steps) {
      const std::string type = s.value("type", std::string());
      std::string p;
      if (type == "Split") {
        if (s.value("behavior", std::string()) != "Isolated" || s.value("invert", false)) fail("a Split pre-tokenizer other than Isolated is not supported");
        const auto& pat = s.at("pattern");
        p = pat.contains("Regex") ? pat["Regex"].get<std::string>() : "\\Q" + pat.at("String").get<std::string>() + "\\E";
      } else if (type == "ByteLevel") {
        if (s.value("add_prefix_space", false)) fail("ByteLevel with add_prefix_space is not supported");
        if (s.value("use_regex", true)) p = kGpt2Pattern;
      } else {
        fail("pre-tokenizer " + type + " is not supported (Split and ByteLevel are)");
      }
      if (!p.empty() && !pattern.empty()) fail("more than one splitting pre-tokenizer is not supported");
      if (!p.empty()) pattern = p;
    }
    t.finish(pattern, path);
    return t;
  }
  // tiktoken: "base64 rank" per line, ranks from 0 with no gaps; Llama 3's pattern and specials.
  std::istringstream lines(text);
  std::string line;
  int64_t n = 0;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    const size_t space = line.find(' ');
    auto bytes = space == std::string::npos ? std::nullopt : base64_decode(line.substr(0, space));
    int64_t rank = -1;
    if (bytes) try {
        rank = std::stoll(line.substr(space + 1));
      } catch (const std::exception&) {
      }
    check(bytes && rank == n, path + ": line " + std::to_string(n + 1) + " is not \"<base64 token> " + std::to_string(n) +
                                  "\"; neither a tokenizer.json nor a tiktoken ranks file");
    t.bytes_of_id_.push_back(*bytes);
    t.ids_[*bytes] = static_cast<int32_t>(n++);
  }
  check(n > 0, path + ": empty; neither a tokenizer.json nor a tiktoken ranks file");
  t.rank_by_id_ = true;
  // Llama 3.1's special tokens follow the ranks (128,000 of them in Llama 3's file).
  const std::vector<std::string> named = {"<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
                                          "<|finetune_right_pad_id|>", "<|reserved_special_token_2|>", "<|start_header_id|>",
                                          "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>", "<|python_tag|>"};
  for (int i = 0; i < 256; ++i) {
    std::string s = i < static_cast<int>(named.size()) ? named[static_cast<size_t>(i)]
                                                       : "<|reserved_special_token_" + std::to_string(i - static_cast<int>(named.size()) + 3) + "|>";
    t.add_special(s, static_cast<int32_t>(n + i));
  }
  t.finish(kLlama3Pattern, path);
  return t;
}

std::optional<int32_t> Tokenizer::id_of(const std::string& token) const {
  for (auto& [s, id] : specials_)
    if (s == token) return id;
  auto it = ids_.find(token);
  return it == ids_.end() ? std::nullopt : std::optional<int32_t>(it->second);
}

std::optional<int32_t> Tokenizer::end_of_text() const {
  for (const char* s : {"<|end_of_text|>", "<|endoftext|>", "</s>"})
    if (auto id = id_of(s)) return id;
  return std::nullopt;
}

// BPE of one pre-tokenized piece: bytes first, then the lowest-ranked adjacent pair merged,
// leftmost first among equals, until no pair merges.
void Tokenizer::encode_piece(std::string_view piece, std::vector<int32_t>& out) const {
  if (piece.empty()) return;
  if (ignore_merges_ || rank_by_id_) {
    auto whole = ids_.find(std::string(piece));
    if (whole != ids_.end()) return out.push_back(whole->second);
  }
  std::vector<int32_t> sym;
  sym.reserve(piece.size());
  for (char c : piece) sym.push_back(byte_ids_[static_cast<unsigned char>(c)]);
  std::string joined;
  auto merge_of = [&](int32_t a, int32_t b) -> std::pair<int32_t, int32_t> {
    if (rank_by_id_) {
      joined = bytes_of_id_[static_cast<size_t>(a)];
      joined += bytes_of_id_[static_cast<size_t>(b)];
      auto it = ids_.find(joined);
      return it == ids_.end() ? std::make_pair(-1, -1) : std::make_pair(it->second, it->second);
    }
    auto it = merges_.find(pair_key(a, b));
    return it == merges_.end() ? std::make_pair(-1, -1) : it->second;
  };
  while (sym.size() > 1) {
    int32_t best_rank = -1, best_id = -1;
    size_t at = 0;
    for (size_t i = 0; i + 1 < sym.size(); ++i) {
      auto [rank, id] = merge_of(sym[i], sym[i + 1]);
      if (rank >= 0 && (best_rank < 0 || rank < best_rank)) best_rank = rank, best_id = id, at = i;
    }
    if (best_rank < 0) break;
    sym[at] = best_id;
    sym.erase(sym.begin() + static_cast<std::ptrdiff_t>(at) + 1);
  }
  out.insert(out.end(), sym.begin(), sym.end());
}

void Tokenizer::encode_ordinary(std::string_view text, std::vector<int32_t>& out) const {
  if (!regex_) return encode_piece(text, out);
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(regex_->code, nullptr);
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t offset = 0, gap = 0;  // unmatched text (invalid UTF-8) becomes a piece of its own
  while (offset < text.size()) {
    int rc = pcre2_match(regex_->code, subject, text.size(), offset, 0, md, nullptr);
    if (rc < 0) break;
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    if (ov[1] == ov[0]) {  // an empty match: try again one byte on
      offset = ov[0] + 1;
      continue;
    }
    if (ov[0] > gap) encode_piece(text.substr(gap, ov[0] - gap), out);
    encode_piece(text.substr(ov[0], ov[1] - ov[0]), out);
    offset = gap = ov[1];
  }
  if (gap < text.size()) encode_piece(text.substr(gap), out);
  pcre2_match_data_free(md);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  std::vector<int32_t> out;
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (!special_starts_[static_cast<unsigned char>(text[i])]) continue;
    for (auto& [s, id] : specials_) {
      if (text.compare(i, s.size(), s) != 0) continue;
      encode_ordinary(text.substr(start, i - start), out);
      out.push_back(id);
      start = i + s.size();
      i = start - 1;
      break;
    }
  }
  encode_ordinary(text.substr(start), out);
  return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  for (int32_t id : ids) {
    check(id >= 0 && static_cast<size_t>(id) < bytes_of_id_.size(),
          "tokenizer: token id " + std::to_string(id) + " is outside the vocabulary (0 to " + std::to_string(bytes_of_id_.size() - 1) + ")");
    out += bytes_of_id_[static_cast<size_t>(id)];
  }
  return out;
}

}  // namespace lathe::models
