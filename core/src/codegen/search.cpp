// LATHE_SEARCH: a beam over action lists timed on the device, the winners cached on disk.
#include "search.h"

#include "codegen/search_candidate.h"

#include <optional>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

#include "lathe/cache.h"
#include "lathe/error.h"
#include "lathe/runtime.h"

namespace lathe {
namespace {

namespace fs = std::filesystem;

fs::path cache_file(const std::string& key, const Device* device) {
  return fs::path(cache_root()) / "search" / (content_hash(key + "|" + device->info().name) + ".opt");
}

// Single changes of one action list: each amount doubled or halved, each action dropped, and
// actions the list lacks added (a 2-wide tile on any axis, two partial accumulators, a
// reloaded epilogue on loop devices, staging in 16-step chunks on work-group devices).
std::vector<Opts> neighbours(const Opts& opts, size_t axes, bool work_groups) {
  std::vector<Opts> out;
  for (size_t i = 0; i < opts.size(); ++i) {
    Opts dropped = opts;
    dropped.erase(dropped.begin() + static_cast<std::ptrdiff_t>(i));
    out.push_back(dropped);
    const Opt& o = opts[i];
    if (o.kind == OptKind::Outer || o.kind == OptKind::Reload || o.kind == OptKind::Rows) continue;
    if (o.kind == OptKind::Stage && !work_groups) continue;  // the loops form stages whole reductions only
    for (int64_t amount : {o.amount * 2, o.amount / 2}) {
      const bool same_as_dropped = amount == 1 && o.kind != OptKind::Local && o.kind != OptKind::Stage;
      if (amount < 1 || amount > 256 || same_as_dropped) continue;
      Opts changed = opts;
      changed[i].amount = amount;
      out.push_back(changed);
    }
  }
  auto has = [&](OptKind kind, int axis) {
    return std::any_of(opts.begin(), opts.end(), [&](const Opt& o) { return o.kind == kind && o.axis == axis; });
  };
  for (size_t d = 0; d < axes; ++d)
    if (!has(OptKind::Upcast, static_cast<int>(d))) {
      Opts added = opts;
      added.push_back({OptKind::Upcast, static_cast<int>(d), 2});
      out.push_back(added);
    }
  if (!has(OptKind::SplitReduce, -1)) {
    Opts added = opts;
    added.push_back({OptKind::SplitReduce, -1, 2});
    out.push_back(added);
  }
  if (!work_groups && !has(OptKind::Reload, -1)) {
    Opts added = opts;
    added.push_back({OptKind::Reload});
    out.push_back(added);
  }
  bool has_local = std::any_of(opts.begin(), opts.end(), [](const Opt& o) { return o.kind == OptKind::Local; });
  if (work_groups && has_local && !has(OptKind::Stage, -1)) {
    Opts added = opts;
    added.push_back({OptKind::Stage, -1, 16});
    out.push_back(added);
  }
  return out;
}

}  // namespace

int search_width() {
  static int width = [] {
    const char* v = std::getenv("LATHE_SEARCH");
    return v ? std::max(0, std::atoi(v)) : 0;
  }();
  return width;
}

Opts search_opts(const Outputs& outs, const std::function<Buffer*(Node*)>& input_of, Device* device, const std::string& key,
                 const Opts& heuristic, int width) {
  fs::path file = cache_file(key, device);
  {
    std::ifstream in(file);
    std::string line;
    if (in && std::getline(in, line))
      if (std::optional<Opts> cached = parse_opts(line)) return *cached;
  }
  auto start = std::chrono::steady_clock::now();
  const size_t axes = outs[0].first->shape.size();
  const bool work_groups = device->info().max_local_size > 1;
  std::vector<std::pair<double, Opts>> beam;
  std::set<std::string> tried;
  CandidateResult reference = run_candidate(outs, input_of, device, heuristic, nullptr);
  tried.insert(opts_text(heuristic));
  if (reference.status != CandidateResult::Status::Timed) return heuristic;
  const double base = reference.seconds;
  beam.push_back({base, heuristic});
  std::pair<double, Opts> best = beam[0];
  int timed = 1, wrong = 0;
  for (int round = 0; round < 2; ++round) {
    std::vector<std::pair<double, Opts>> next;
    for (auto& [t, o] : beam)
      for (Opts& n : neighbours(o, axes, work_groups)) {
        if (!tried.insert(opts_text(n)).second) continue;
        CandidateResult r = run_candidate(outs, input_of, device, n, &reference.values);
        ++timed;
        if (r.status == CandidateResult::Status::Timed) next.push_back({r.seconds, n});
        if (r.status == CandidateResult::Status::WrongValues) {
          ++wrong;  // a lowering bug for this combination of actions: never chosen
          spdlog::warn("search: {} computes other values than the heuristics' {} (largest difference {:.3g} of the scale); not used",
                       opts_text(n), opts_text(heuristic), r.difference);
        }
      }
    std::sort(next.begin(), next.end(), [](auto& a, auto& b) { return a.first < b.first; });
    if (next.size() > static_cast<size_t>(std::max(width, 1))) next.resize(static_cast<size_t>(std::max(width, 1)));
    if (!next.empty() && next[0].first < best.first) best = next[0];
    beam = next;
    if (beam.empty()) break;
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  runtime_stats().search_seconds += seconds;
  spdlog::info("search {} ({} output{}): {} candidates ({} with other values) in {:.1f} s: {:.3f} ms (heuristics {:.3f} ms: {}) with {}",
               lower_kernel(outs, input_of, apply_opts(best.second, outs[0].first, device->info())).kernel.name, outs.size(),
               outs.size() == 1 ? "" : "s", timed, wrong, seconds, best.first * 1e3, base * 1e3, opts_text(heuristic), opts_text(best.second));
  cache_dir("search");
  write_atomically(file.string(), opts_text(best.second) + "\n");
  return best.second;
}

}  // namespace lathe
