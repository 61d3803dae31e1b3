// The byte-level BPE tokenizer against Hugging Face `tokenizers` and `tiktoken`: the encodings of
// a multilingual corpus (and of tinyshakespeare, where it is at hand) that fixtures/tokenizer/
// make_fixture.py recorded, round trips, and bad files; and Meta's own Llama 3 tokenizer file
// (scripts/fetch_llama3_tokenizer.sh) against both libraries (make_llama3_expected.py).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "lathe/error.h"
#include "lathe/models/tokenizer.h"

namespace lathe::test {
namespace {

const std::string kDir = std::string(LATHE_FIXTURES) + "/tokenizer/";

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string fnv1a(const std::vector<int32_t>& ids) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (int32_t id : ids)
    for (int k = 0; k < 4; ++k) h = (h ^ ((static_cast<uint32_t>(id) >> (8 * k)) & 0xff)) * 0x100000001b3ull;
  char buf[17];
  snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

// The texts the fixture encoded, by name (tinyshakespeare only where the shared data is).
std::map<std::string, std::string> texts() {
  std::map<std::string, std::string> t;
  t["multilingual"] = slurp(kDir + "multilingual.txt");
  std::string& m = t["multilingual"];
  const size_t a = m.find('\n'), b = m.find('\n', a + 1);  // the specials go after the first two newlines
  t["with_specials"] = m.substr(0, a + 1) + "<|end_of_text|>" + m.substr(a + 1, b - a) + "<|begin_of_text|>" + m.substr(b + 1);
  for (const char* p : {"/../../shared/data/tinyshakespeare.txt", "/../shared/data/tinyshakespeare.txt"}) {
    std::string path = std::string(LATHE_FIXTURES) + "/.." + p;
    if (std::filesystem::exists(path)) t["tinyshakespeare"] = slurp(path);
  }
  return t;
}

// Checks each text's ids against one library's record in an expected-encodings file.
void expect_encodings(const models::Tokenizer& tok, const nlohmann::json& want, const std::string& library,
                      const std::map<std::string, std::string>& text_of) {
  for (auto& [name, text] : text_of) {
    const auto& w = want.at(name);
    ASSERT_EQ(w.at("bytes").get<size_t>(), text.size()) << name << ": not the text the fixture encoded";
    const auto& e = w.at(library);
    std::vector<int32_t> ids = tok.encode(text);
    std::vector<int32_t> first(ids.begin(), ids.begin() + std::min<size_t>(32, ids.size()));
    EXPECT_EQ(first, e.at("first").get<std::vector<int32_t>>()) << name << " (" << library << ")";
    EXPECT_EQ(static_cast<int64_t>(ids.size()), e.at("count").get<int64_t>()) << name << " (" << library << ")";
    EXPECT_EQ(fnv1a(ids), e.at("fnv1a").get<std::string>()) << name << ": the ids differ from " << library << "'s";
    EXPECT_EQ(tok.decode(ids), text) << name << ": decode(encode(x)) != x";
  }
}

class TokenizerFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(TokenizerFixture, EncodesAsTheReferenceLibraryAndDecodesBack) {
  const nlohmann::json want = nlohmann::json::parse(slurp(kDir + "expected.json")).at("encodings");
  models::Tokenizer tok = models::Tokenizer::load(kDir + GetParam());
  const auto text_of = texts();
  expect_encodings(tok, want, GetParam(), text_of);
  int64_t bytes = 0;
  for (auto& [name, text] : text_of) bytes += static_cast<int64_t>(text.size());
  if (!HasFailure()) std::printf("[ tokenizer ] %s: %lld bytes encoded as the reference does\n", GetParam().c_str(), static_cast<long long>(bytes));
}

INSTANTIATE_TEST_SUITE_P(Files, TokenizerFixture, ::testing::Values("bpe_llama3_pattern.json", "bpe_gpt2_pattern.json", "ranks.tiktoken"),
                         [](const auto& info) { return info.param.substr(0, info.param.find('.')); });

// Meta's tokenizer.model for Llama 3 (128,000 ranks; the 256 special tokens follow as Llama 3.1
// names them), encoded as tiktoken (the way Meta's tokenizer.py loads it) and as Hugging Face
// tokenizers (through transformers' conversion of the same file) encode it.
TEST(Tokenizer, MetasLlama3FileEncodesAsTiktokenAndTokenizers) {
  const char* env = std::getenv("LATHE_LLAMA3_TOKENIZER");
  const std::string path = env && *env ? env : LATHE_LLAMA3_TOKENIZER_DEFAULT;
  if (!std::filesystem::exists(path))
    GTEST_SKIP() << path << " is absent: scripts/fetch_llama3_tokenizer.sh fetches it (scripts/setup.sh runs it)";
  models::Tokenizer tok = models::Tokenizer::load(path);
  EXPECT_EQ(tok.vocab_size(), 128256);
  // Meta's own test (llama_models/llama3/tests/api/test_tokenizer.py), BOS and EOS written out.
  EXPECT_EQ(tok.encode("<|begin_of_text|>This is a test sentence.<|end_of_text|>"),
            (std::vector<int32_t>{128000, 2028, 374, 264, 1296, 11914, 13, 128001}));
  EXPECT_EQ(tok.encode("<|start_header_id|>user<|end_header_id|>\n\nThis is a test sentence.<|eot_id|>"),
            (std::vector<int32_t>{128006, 882, 128007, 271, 2028, 374, 264, 1296, 11914, 13, 128009}));
  ASSERT_TRUE(tok.end_of_text().has_value());
  EXPECT_EQ(*tok.end_of_text(), 128001);
  const nlohmann::json record = nlohmann::json::parse(slurp(kDir + "llama3_expected.json"));
  auto text_of = texts();
  text_of["chat"] =
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>"
      "<|start_header_id|>user<|end_header_id|>\n\n  \xC3\x87" "a va?  1234567 tokens,\tplease!\r\n<|eot_id|>"
      "<|reserved_special_token_247|>";
  for (const char* library : {"tiktoken", "tokenizers"}) expect_encodings(tok, record.at("encodings"), library, text_of);
  int64_t bytes = 0;
  for (auto& [name, text] : text_of) bytes += static_cast<int64_t>(text.size());
  if (!HasFailure()) std::printf("[ tokenizer ] Meta's Llama 3 file: %lld bytes encoded as tiktoken and tokenizers do\n", static_cast<long long>(bytes));
}

TEST(Tokenizer, SpecialTokensAreMatchedInTheText) {
  models::Tokenizer tok = models::Tokenizer::load(kDir + "bpe_llama3_pattern.json");
  ASSERT_TRUE(tok.end_of_text().has_value());
  std::vector<int32_t> ids = tok.encode("a<|end_of_text|>b");
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[1], *tok.end_of_text());
  EXPECT_EQ(tok.decode(ids), "a<|end_of_text|>b");
  // Invalid UTF-8 goes through byte by byte.
  const std::string bad = "ok\xff\xfe end";
  EXPECT_EQ(tok.decode(tok.encode(bad)), bad);
}

TEST(Tokenizer, BadFilesAndIdsSayWhatIsWrong) {
  const std::string dir = ::testing::TempDir();
  auto error_of = [](const std::function<void()>& f) -> std::string {
    try {
      f();
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir + name) << text;
    return dir + name;
  };
  EXPECT_NE(error_of([&] { models::Tokenizer::load(dir + "missing.json"); }).find("cannot open"), std::string::npos);
  EXPECT_NE(error_of([&] { models::Tokenizer::load(write("notjson.json", "{ nope")); }).find("not valid JSON"), std::string::npos);
  EXPECT_NE(error_of([&] { models::Tokenizer::load(write("nomodel.json", "{\"version\": 1}")); }).find("no \"model\""), std::string::npos);
  EXPECT_NE(error_of([&] { models::Tokenizer::load(write("wp.json", "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}")); }).find("WordPiece"),
            std::string::npos);
  EXPECT_NE(error_of([&] { models::Tokenizer::load(write("bytes.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}}")); })
                .find("no token for byte"),
            std::string::npos);
  EXPECT_NE(error_of([&] { models::Tokenizer::load(write("text.model", "hello world\n")); }).find("line 1"), std::string::npos);
  std::string json = slurp(kDir + "bpe_llama3_pattern.json");
  json.replace(json.find("\"merges\": ["), 11, "\"merges\": [\"zz qq\",");
  EXPECT_NE(error_of([&] { models::Tokenizer::load(write("badmerge.json", json)); }).find("merge 0"), std::string::npos);
  models::Tokenizer tok = models::Tokenizer::load(kDir + "ranks.tiktoken");
  EXPECT_NE(error_of([&] { tok.decode({1, static_cast<int32_t>(tok.vocab_size())}); }).find("outside the vocabulary"), std::string::npos);
}

}  // namespace
}  // namespace lathe::test
