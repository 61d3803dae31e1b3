// safetensors: round trips in every dtype, and clear errors for damaged files.
#include <filesystem>
#include <fstream>

#include "lathe/models/safetensors.h"
#include "test_util.h"

namespace lathe::test {
namespace {

namespace fs = std::filesystem;
using models::SafetensorsFile;

fs::path scratch(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("lathe_st_" + std::to_string(getpid()));
  fs::create_directories(dir);
  return dir / name;
}

// A file with a hand-written header and `data_bytes` zero bytes of data.
void write_raw(const fs::path& p, const std::string& header, size_t data_bytes) {
  std::ofstream f(p, std::ios::binary);
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) f.put(static_cast<char>(n >> (8 * i)));
  f << header << std::string(data_bytes, '\0');
}

TEST(Safetensors, RoundTripsEveryDtypeAndMetadata) {
  std::mt19937 rng(5);
  ref::Array a = ref::random({3, 5}, rng);
  std::vector<std::pair<std::string, Tensor>> tensors = {
      {"model.embed_tokens.weight", ref::tensor(a)},
      {"half", ref::tensor(a, DType::Float16)},
      {"bf", ref::tensor(a, DType::BFloat16).transpose()},  // a view: saved as its values
      {"ids", Tensor::arange(0, 7, 1, DType::Int64)},
      {"mask", Tensor::ones({2}, DType::Bool)},
  };
  fs::path p = scratch("round.safetensors");
  models::save_safetensors(p.string(), tensors, {{"format", "pt"}});
  SafetensorsFile f(p.string());
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.tensors().size(), 5u);
  for (auto& [name, t] : tensors) {
    ASSERT_TRUE(f.contains(name)) << name;
    Tensor back = f.load(name);
    EXPECT_EQ(back.dtype(), t.dtype()) << name;
    EXPECT_EQ(back.shape(), t.shape()) << name;
    EXPECT_EQ(back.to_bytes(), t.to_bytes()) << name;
  }
  EXPECT_NE(error_of([&] { f.info("missing.weight"); }).find("no tensor named 'missing.weight'"), std::string::npos);
  // The writer leaves no temporary files behind.
  for (auto& e : fs::directory_iterator(p.parent_path())) EXPECT_EQ(e.path().string().find(".tmp."), std::string::npos);
}

TEST(Safetensors, DamagedFilesGiveClearErrors) {
  fs::path p = scratch("bad.safetensors");
  EXPECT_NE(error_of([&] { SafetensorsFile f((p.string() + ".none")); }).find("cannot open"), std::string::npos);
  std::ofstream(p) << "abc";
  EXPECT_NE(error_of([&] { SafetensorsFile f(p.string()); }).find("truncated"), std::string::npos);
  write_raw(p, "{not json", 0);
  EXPECT_NE(error_of([&] { SafetensorsFile f(p.string()); }).find("not valid JSON"), std::string::npos);
  write_raw(p, R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}})", 16);
  EXPECT_NE(error_of([&] { SafetensorsFile f(p.string()); }).find("needs 16"), std::string::npos);
  write_raw(p, R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})", 10);
  EXPECT_NE(error_of([&] { SafetensorsFile f(p.string()); }).find("truncated"), std::string::npos);
  write_raw(p, R"({"w":{"dtype":"F99","shape":[1],"data_offsets":[0,4]}})", 4);
  EXPECT_NE(error_of([&] { SafetensorsFile f(p.string()); }).find("'F99' is not supported"), std::string::npos);
  write_raw(p, R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12);
  EXPECT_NE(error_of([&] { SafetensorsFile f(p.string()); }).find("overlap"), std::string::npos);
  // A header length that runs past the end of the file.
  {
    std::ofstream f(p, std::ios::binary);
    f.put(static_cast<char>(0xff));
    f << std::string(7, '\0') << "{}";
  }
  EXPECT_NE(error_of([&] { SafetensorsFile f(p.string()); }).find("truncated"), std::string::npos);
}

}  // namespace
}  // namespace lathe::test
