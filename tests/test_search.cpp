// LATHE_SEARCH: timed candidates replace the heuristics' options, the winner computes the same
// values, and it is cached on disk so that the next process does not search again.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "codegen/search.h"
#include "lathe/runtime.h"
#include "schedule/schedule.h"
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
  Opts heuristic = heuristic_opts(items[0].value, input_of, dev->info());
  const double before = runtime_stats().search_seconds;
  Outputs outs = {{items[0].value, items[0].output.get()}};
  Opts found = search_opts(outs, input_of, dev, "test-matmul", heuristic, 2);
  EXPECT_GT(runtime_stats().search_seconds, before);  // it did time candidates
  // The winner computes the matmul.
  LoweredKernel lk = lower_kernel(items[0].value, items[0].output.get(), input_of, apply_opts(found, items[0].value, dev->info()));
  auto program = dev->compile(lk.kernel);
  std::vector<void*> handles;
  for (Buffer* b : lk.params) handles.push_back(b->handle());
  program->run(handles, true);
  std::vector<float> got(64 * 32);
  items[0].output->copy_out(got.data());
  ref::Array want = ref::matmul(xa, wa);
  for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want.v[i], 1e-4) << i << " with " << opts_text(found);
  // Cached: one file under search/, read back without timing anything.
  ASSERT_TRUE(fs::exists(cache / "search"));
  int files = 0;
  for (auto& e : fs::directory_iterator(cache / "search")) files += e.path().extension() == ".opt";
  EXPECT_EQ(files, 1);
  const double after = runtime_stats().search_seconds;
  Opts again = search_opts(outs, input_of, dev, "test-matmul", heuristic, 2);
  EXPECT_EQ(runtime_stats().search_seconds, after);
  EXPECT_EQ(opts_text(again), opts_text(found));
  fs::remove_all(cache / "search");  // the compiler of this process keeps building into cache
}

// Kernels of several outputs are searched too (two sums of one structure, one kernel).
TEST(Search, SearchesKernelsOfSeveralOutputs) {
  fs::path cache = fs::temp_directory_path() / ("lathe-search-test-" + std::to_string(getpid()));
  setenv("LATHE_CACHE_DIR", cache.c_str(), 1);
  set_default_device("cpu");
  std::mt19937 rng(8);
  ref::Array xa = ref::random({64, 128}, rng);
  Tensor x = ref::tensor(xa).realize();
  Tensor sum = x.sum({1}), squares = (x * x).sum({1});
  std::vector<ScheduleItem> items = create_schedule({sum.node().get(), squares.node().get()});
  ASSERT_EQ(items.size(), 2u);
  std::set<Node*> selves = {items[0].node, items[1].node};
  auto input_of = [&](Node* n) -> Buffer* { return selves.count(n) ? nullptr : n->buffer.get(); };
  Outputs outs = {{items[0].value, items[0].output.get()}, {items[1].value, items[1].output.get()}};
  Device* dev = items[0].node->device;
  const double before = runtime_stats().search_seconds;
  Opts found = search_opts(outs, input_of, dev, "test-two-sums", heuristic_opts(items[0].value, input_of, dev->info()), 2);
  EXPECT_GT(runtime_stats().search_seconds, before);
  LoweredKernel lk = lower_kernel(outs, input_of, apply_opts(found, items[0].value, dev->info()));
  auto program = dev->compile(lk.kernel);
  std::vector<void*> handles;
  for (Buffer* b : lk.params) handles.push_back(b->handle());
  program->run(handles, true);
  std::vector<float> s(64), q(64);
  const bool sum_first = items[0].node == sum.node().get();
  outs[sum_first ? 0 : 1].second->copy_out(s.data());
  outs[sum_first ? 1 : 0].second->copy_out(q.data());
  for (int r = 0; r < 64; ++r) {
    double ws = 0, wq = 0;
    for (int c = 0; c < 128; ++c) ws += xa.v[r * 128 + c], wq += xa.v[r * 128 + c] * xa.v[r * 128 + c];
    ASSERT_NEAR(s[r], ws, 1e-4) << opts_text(found);
    ASSERT_NEAR(q[r], wq, 1e-3) << opts_text(found);
  }
  // A tile larger than an axis is refused with an error, for several outputs as for one.
  EXPECT_THROW(lower_kernel(outs, input_of, apply_opts({{OptKind::Upcast, 0, 128}}, items[0].value, dev->info())), Error);
  fs::remove_all(cache / "search");
}

// Action lists read back as written; malformed text, and actions whose precondition fails,
// are refused with the action named.
TEST(Opts, TextRoundTripsAndPreconditionsAreChecked) {
  Opts opts = {{OptKind::Outer, 1}, {OptKind::Upcast, 1, 32}, {OptKind::Upcast, 0, 8}, {OptKind::Stage, -1, 1024}, {OptKind::Reload}};
  EXPECT_EQ(opts_text(opts), "outer(1) upcast(1,32) upcast(0,8) stage(1024) reload");
  std::optional<Opts> parsed = parse_opts(opts_text(opts));
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(*parsed, opts);
  EXPECT_EQ(opts_text(*parse_opts("none")), "none");
  for (const char* bad : {"upcast(1)", "bogus(3)", "upcast(1,x)", "upcast(1,99999999999999999999)", "reload(2)", "upcast(1,2"})
    EXPECT_FALSE(parse_opts(bad).has_value()) << bad;
  LoweringOptions o = apply_opts(opts, 2, false, false);
  EXPECT_EQ(o.upcast, (std::vector<int64_t>{8, 32}));
  EXPECT_EQ(o.loop_order, (std::vector<int>{1, 0}));
  EXPECT_EQ(o.stage_chunk, 1024);
  EXPECT_TRUE(o.reload_epilogue);
  auto refused = [](const Opts& list, size_t rank, bool groups) {
    try {
      apply_opts(list, rank, groups, groups);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(refused({{OptKind::Upcast, 2, 4}}, 2, false).find("upcast(2,4): axis out of range"), std::string::npos);
  EXPECT_NE(refused({{OptKind::Upcast, 0, 4}, {OptKind::Upcast, 0, 2}}, 2, false).find("given twice"), std::string::npos);
  EXPECT_NE(refused({{OptKind::Local, 0, 4}}, 2, false).find("needs a device with work-groups"), std::string::npos);
  EXPECT_NE(refused({{OptKind::Rows}}, 2, true).find("needs group(N)"), std::string::npos);
  EXPECT_NE(refused({{OptKind::Reload}}, 2, true).find("loop devices only"), std::string::npos);
  // Row kernels tile only their row (an upcast of another axis computed other values).
  EXPECT_NE(refused({{OptKind::GroupReduce, -1, 8}, {OptKind::Rows}, {OptKind::Upcast, 0, 2}}, 2, true).find("only axis 1"),
            std::string::npos);
  EXPECT_EQ(refused({{OptKind::GroupReduce, -1, 8}, {OptKind::Rows}, {OptKind::Upcast, 1, 2}}, 2, true), "");
}

}  // namespace
}  // namespace lathe::test
