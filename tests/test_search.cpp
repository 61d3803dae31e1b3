// LATHE_SEARCH: timed candidates replace the heuristics' options, the winner computes the same
// values, and it is cached on disk so that the next process does not search again.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "../core/src/search.h"
#include "lathe/runtime.h"
#include "test_util.h"

namespace lathe::test {
namespace {

namespace fs = std::filesystem;

TEST(Search, FindsOptionsThatComputeTheSameAndCachesThem) {
  fs::path cache = fs::temp_directory_path() / ("lathe-search-test-" + std::to_string(getpid()));
  setenv("LATHE_CACHE_DIR", cache.c_str(), 1);
  set_default_device("cpu");
  std::mt19937 rng(7);
  ref::Array xa = ref::random({64, 96}, rng), wa = ref::random({96, 32}, rng);
  Tensor x = ref::tensor(xa).realize(), w = ref::tensor(wa).realize();
  Tensor y = x.matmul(w);
  std::vector<ScheduleItem> items = create_schedule({y.node().get()});
  ASSERT_EQ(items.size(), 1u);
  Node* self = items[0].node;
  auto input_of = [self](Node* n) -> Buffer* { return n == self ? nullptr : n->buffer.get(); };
  Device* dev = self->device;
  LoweringOptions heuristic = default_options(items[0].value, input_of, dev->info());
  const double before = runtime_stats().search_seconds;
  LoweringOptions found = search_options(items[0].value, items[0].output.get(), input_of, dev, "test-matmul", heuristic, 2);
  EXPECT_GT(runtime_stats().search_seconds, before);  // it did time candidates
  // The winner computes the matmul.
  LoweredKernel lk = lower_kernel(items[0].value, items[0].output.get(), input_of, found);
  auto program = dev->compile(lk.kernel);
  std::vector<void*> handles;
  for (Buffer* b : lk.params) handles.push_back(b->handle());
  program->run(handles, true);
  std::vector<float> got(64 * 32);
  items[0].output->copy_out(got.data());
  ref::Array want = ref::matmul(xa, wa);
  for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want.v[i], 1e-4) << i << " with " << options_text(found);
  // Cached: one file under search/, read back without timing anything.
  ASSERT_TRUE(fs::exists(cache / "search"));
  int files = 0;
  for (auto& e : fs::directory_iterator(cache / "search")) files += e.path().extension() == ".opt";
  EXPECT_EQ(files, 1);
  const double after = runtime_stats().search_seconds;
  LoweringOptions again = search_options(items[0].value, items[0].output.get(), input_of, dev, "test-matmul", heuristic, 2);
  EXPECT_EQ(runtime_stats().search_seconds, after);
  EXPECT_EQ(options_text(again), options_text(found));
  LoweringOptions parsed;
  EXPECT_TRUE(parse_options(options_text(found), parsed));
  EXPECT_EQ(options_text(parsed), options_text(found));
  EXPECT_FALSE(parse_options("upcast=1;bogus=3", parsed));
  fs::remove_all(cache);
}

}  // namespace
}  // namespace lathe::test
