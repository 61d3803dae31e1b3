#include "search.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "lathe/cache.h"
#include "lathe/error.h"
#include "lathe/runtime.h"

namespace lathe {
namespace {

namespace fs = std::filesystem;

std::string join(const std::vector<int64_t>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s;
}

std::vector<int64_t> split(const std::string& s) {
  std::vector<int64_t> v;
  std::stringstream in(s);
  for (std::string part; std::getline(in, part, ',');)
    if (!part.empty()) v.push_back(std::stoll(part));
  return v;
}

fs::path cache_file(const std::string& key, const Device* device) {
  return fs::path(cache_root()) / "search" / (content_hash(key + "|" + device->info().name) + ".opt");
}

// Single changes of one option set: each factor doubled or halved, staging, lanes and the
// epilogue's form varied.
std::vector<LoweringOptions> neighbours(const LoweringOptions& o, size_t axes) {
  std::vector<LoweringOptions> out;
  auto vary = [&](std::vector<int64_t> LoweringOptions::*field) {
    std::vector<int64_t> base = (o.*field).empty() ? std::vector<int64_t>(axes, 1) : o.*field;
    for (size_t d = 0; d < axes; ++d)
      for (int64_t f : {base[d] * 2, base[d] / 2}) {
        if (f < 1 || f == base[d] || f > 64) continue;
        LoweringOptions n = o;
        n.*field = base;
        (n.*field)[d] = f;
        out.push_back(n);
      }
  };
  vary(&LoweringOptions::upcast);
  if (!o.local.empty()) vary(&LoweringOptions::local);
  for (int64_t chunk : {int64_t{0}, int64_t{8}, int64_t{16}, int64_t{32}})
    if (!o.local.empty() && chunk != o.stage_chunk) {
      LoweringOptions n = o;
      n.stage_chunk = chunk;
      out.push_back(n);
    }
  if (o.local.empty() && o.group_reduce == 1)
    for (int64_t split : {o.reduce_split * 2, o.reduce_split / 2})
      if (split >= 1 && split <= 32 && split != o.reduce_split) {
        LoweringOptions n = o;
        n.reduce_split = split;
        out.push_back(n);
      }
  if (o.local.empty() && o.group_reduce == 1) {  // the epilogue in registers or reloaded
    LoweringOptions n = o;
    n.reload_epilogue = !o.reload_epilogue;
    out.push_back(n);
  }
  for (int64_t lanes : {o.group_reduce * 2, o.group_reduce / 2})
    if (o.group_reduce > 1 && lanes >= 1 && lanes <= 256) {
      LoweringOptions n = o;
      n.group_reduce = lanes;
      out.push_back(n);
    }
  return out;
}

// Seconds of the kernel lowered with `o` (best of three timed launches on scratch buffers),
// or a negative value when the options do not apply to this kernel or the device refuses them.
double time_candidate(Node* value, Buffer* output, const std::function<Buffer*(Node*)>& input_of, Device* device,
                      const LoweringOptions& o) {
  try {
    if (!o.local.empty() || o.group_reduce > 1) {
      int64_t group = o.group_reduce;
      for (int64_t l : o.local) group *= l;
      if (group > device->info().max_local_size) return -1;
    }
    LoweredKernel lk = lower_kernel(value, output, input_of, o);
    std::unique_ptr<Program> program = device->compile(lk.kernel);
    std::vector<void*> scratch;
    for (Buffer* b : lk.params) scratch.push_back(device->allocate(std::max<size_t>(b->bytes(), 1)));
    double best = 1e30;
    try {
      program->run(scratch, true);
      for (int i = 0; i < 3; ++i) best = std::min(best, program->run(scratch, true));
    } catch (...) {
      best = -1;
    }
    for (void* h : scratch) device->release(h);
    return best;
  } catch (const std::exception&) {
    return -1;
  }
}

}  // namespace

int search_width() {
  static int width = [] {
    const char* v = std::getenv("LATHE_SEARCH");
    return v ? std::max(0, std::atoi(v)) : 0;
  }();
  return width;
}

std::string options_text(const LoweringOptions& o) {
  return "upcast=" + join(o.upcast) + ";order=" + join(std::vector<int64_t>(o.loop_order.begin(), o.loop_order.end())) +
         ";flatten=" + std::to_string(o.flatten_outer) + ";local=" + join(o.local) + ";lanes=" + std::to_string(o.group_reduce) +
         ";chunk=" + std::to_string(o.stage_chunk) + ";split=" + std::to_string(o.reduce_split) +
         ";reload=" + std::to_string(o.reload_epilogue);
}

bool parse_options(const std::string& text, LoweringOptions& o) {
  try {
    std::stringstream in(text);
    for (std::string item; std::getline(in, item, ';');) {
      auto eq = item.find('=');
      if (eq == std::string::npos) return false;
      std::string k = item.substr(0, eq), v = item.substr(eq + 1);
      if (k == "upcast") o.upcast = split(v);
      else if (k == "order") {
        o.loop_order.clear();
        for (int64_t x : split(v)) o.loop_order.push_back(static_cast<int>(x));
      } else if (k == "flatten") o.flatten_outer = v == "1";
      else if (k == "local") o.local = split(v);
      else if (k == "lanes") o.group_reduce = std::stoll(v);
      else if (k == "chunk") o.stage_chunk = std::stoll(v);
      else if (k == "split") o.reduce_split = std::stoll(v);
      else if (k == "reload") o.reload_epilogue = v == "1";
      else return false;
    }
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

LoweringOptions search_options(Node* value, Buffer* output, const std::function<Buffer*(Node*)>& input_of, Device* device,
                               const std::string& key, const LoweringOptions& heuristic, int width) {
  fs::path file = cache_file(key, device);
  {
    std::ifstream in(file);
    std::string line;
    LoweringOptions cached;
    if (in && std::getline(in, line) && parse_options(line, cached)) return cached;
  }
  auto start = std::chrono::steady_clock::now();
  const size_t axes = value->shape.size();
  std::vector<std::pair<double, LoweringOptions>> beam;
  std::set<std::string> tried;
  double base = time_candidate(value, output, input_of, device, heuristic);
  tried.insert(options_text(heuristic));
  if (base < 0) return heuristic;
  beam.push_back({base, heuristic});
  std::pair<double, LoweringOptions> best = beam[0];
  int timed = 1;
  for (int round = 0; round < 2; ++round) {
    std::vector<std::pair<double, LoweringOptions>> next;
    for (auto& [t, o] : beam)
      for (LoweringOptions& n : neighbours(o, axes)) {
        if (!tried.insert(options_text(n)).second) continue;
        double s = time_candidate(value, output, input_of, device, n);
        ++timed;
        if (s >= 0) next.push_back({s, n});
      }
    std::sort(next.begin(), next.end(), [](auto& a, auto& b) { return a.first < b.first; });
    if (next.size() > static_cast<size_t>(std::max(width, 1))) next.resize(static_cast<size_t>(std::max(width, 1)));
    if (!next.empty() && next[0].first < best.first) best = next[0];
    beam = next;
    if (beam.empty()) break;
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  runtime_stats().search_seconds += seconds;
  spdlog::info("search {}: {} candidates in {:.1f} s: {:.3f} ms (heuristics {:.3f} ms) with {}",
               lower_kernel(value, output, input_of, best.second).kernel.name, timed, seconds, best.first * 1e3, base * 1e3,
               options_text(best.second));
  cache_dir("search");
  write_atomically(file.string(), options_text(best.second) + "\n");
  return best.second;
}

}  // namespace lathe
