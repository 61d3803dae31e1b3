// The optimization vocabulary: text form, preconditions and application of action lists.
#include "opt.h"

#include <cctype>
#include <set>

#include "lathe/error.h"

namespace lathe {
namespace {

constexpr OptKind kAllKinds[] = {OptKind::Upcast, OptKind::Local, OptKind::GroupReduce, OptKind::SplitReduce,
                                 OptKind::Stage,  OptKind::Outer, OptKind::Reload,      OptKind::Rows,
                                 OptKind::MatrixUnit};

bool takes_amount(OptKind kind) { return kind != OptKind::Outer && kind != OptKind::Reload && kind != OptKind::Rows; }

// Parses a non-negative decimal number that fits in 62 bits (no exceptions, no overflow).
std::optional<int64_t> parse_count(const std::string& s) {
  if (s.empty() || s.size() > 18) return std::nullopt;
  int64_t v = 0;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

}  // namespace

const char* opt_kind_name(OptKind kind) {
  switch (kind) {
    case OptKind::Upcast: return "upcast";
    case OptKind::Local: return "local";
    case OptKind::GroupReduce: return "group";
    case OptKind::SplitReduce: return "split";
    case OptKind::Stage: return "stage";
    case OptKind::Outer: return "outer";
    case OptKind::Reload: return "reload";
    case OptKind::Rows: return "rows";
    case OptKind::MatrixUnit: return "mma";
  }
  return "?";
}

bool opt_takes_axis(OptKind kind) {
  return kind == OptKind::Upcast || kind == OptKind::Local || kind == OptKind::Outer || kind == OptKind::MatrixUnit;
}

std::string opts_text(const Opts& opts) {
  std::string s;
  for (const Opt& o : opts) {
    if (!s.empty()) s += ' ';
    s += opt_kind_name(o.kind);
    std::vector<std::string> args;
    if (opt_takes_axis(o.kind)) args.push_back(std::to_string(o.axis));
    if (takes_amount(o.kind)) args.push_back(std::to_string(o.amount));
    if (args.empty()) continue;
    s += '(';
    for (size_t i = 0; i < args.size(); ++i) s += (i ? "," : "") + args[i];
    s += ')';
  }
  return s.empty() ? "none" : s;
}

std::optional<Opts> parse_opts(const std::string& text) {
  Opts opts;
  if (text == "none") return opts;
  size_t at = 0;
  while (at < text.size()) {
    size_t end = text.find(' ', at);
    std::string word = text.substr(at, end == std::string::npos ? std::string::npos : end - at);
    at = end == std::string::npos ? text.size() : end + 1;
    std::string name = word.substr(0, word.find('('));
    std::vector<std::string> args;
    if (name.size() < word.size()) {
      if (word.back() != ')') return std::nullopt;
      std::string inner = word.substr(name.size() + 1, word.size() - name.size() - 2);
      for (size_t p = 0;;) {
        size_t comma = inner.find(',', p);
        args.push_back(inner.substr(p, comma == std::string::npos ? std::string::npos : comma - p));
        if (comma == std::string::npos) break;
        p = comma + 1;
      }
    }
    std::optional<OptKind> kind;
    for (OptKind k : kAllKinds)
      if (name == opt_kind_name(k)) kind = k;
    if (!kind) return std::nullopt;
    Opt o{*kind};
    const size_t want = (opt_takes_axis(*kind) ? 1u : 0u) + (takes_amount(*kind) ? 1u : 0u);
    if (args.size() != want) return std::nullopt;
    size_t next = 0;
    if (opt_takes_axis(*kind)) {
      auto axis = parse_count(args[next++]);
      if (!axis || *axis > 64) return std::nullopt;
      o.axis = static_cast<int>(*axis);
    }
    if (takes_amount(*kind)) {
      auto amount = parse_count(args[next]);
      if (!amount) return std::nullopt;
      o.amount = *amount;
    }
    opts.push_back(o);
  }
  return opts;
}

LoweringOptions apply_opts(const Opts& opts, size_t rank, bool flatten, bool work_groups, const std::vector<MatrixUnit>& units) {
  LoweringOptions out;
  out.flatten_outer = flatten;
  out.upcast.assign(rank, 1);
  std::set<std::pair<int, int>> seen;  // (kind, axis): each at most once
  bool rows = false;
  for (const Opt& o : opts) {
    const std::string what = std::string("optimization ") + opts_text({o}) + ": ";
    if (!seen.insert({static_cast<int>(o.kind), o.axis}).second) throw Error(what + "given twice for one kernel");
    if (opt_takes_axis(o.kind) && (o.axis < 0 || static_cast<size_t>(o.axis) >= rank))
      throw Error(what + "axis out of range for a kernel of " + std::to_string(rank) + " output axes");
    if (takes_amount(o.kind) && o.amount < 1 && o.kind != OptKind::Stage && o.kind != OptKind::MatrixUnit)
      throw Error(what + "the amount must be at least 1");
    const bool group_kind =
        o.kind == OptKind::Local || o.kind == OptKind::GroupReduce || o.kind == OptKind::Rows || o.kind == OptKind::MatrixUnit;
    if (group_kind && !work_groups) throw Error(what + "needs a device with work-groups");
    if (o.kind == OptKind::Reload && work_groups) throw Error(what + "applies to loop devices only");
    switch (o.kind) {
      case OptKind::Upcast: out.upcast[static_cast<size_t>(o.axis)] = o.amount; break;
      case OptKind::Local:
        if (out.local.empty()) out.local.assign(rank, 1);
        out.local[static_cast<size_t>(o.axis)] = o.amount;
        break;
      case OptKind::GroupReduce: out.group_reduce = o.amount; break;
      case OptKind::SplitReduce: out.reduce_split = o.amount; break;
      case OptKind::Stage: out.stage_chunk = o.amount; break;
      case OptKind::Outer:
        if (!out.loop_order.empty()) throw Error(what + "only one axis can be outermost");
        out.loop_order.push_back(o.axis);
        for (int d = 0; d < static_cast<int>(rank); ++d)
          if (d != o.axis) out.loop_order.push_back(d);
        break;
      case OptKind::Reload: out.reload_epilogue = true; break;
      case OptKind::Rows: rows = true; break;
      case OptKind::MatrixUnit:
        if (units.empty()) throw Error(what + "the device has no matrix unit");
        if (o.amount >= static_cast<int64_t>(rank) || o.amount == o.axis)
          throw Error(what + "the columns' axis must be another output axis");
        out.matrix_unit = units[0];
        out.mma_rows = o.axis;
        out.mma_cols = static_cast<int>(o.amount);
        break;
    }
  }
  if (out.matrix_unit && (out.stage_chunk < 1 || out.group_reduce > 1 || rows))
    throw Error("optimization mma: needs stage(N) (its factors come from local memory) and no group or rows");
  if (rows && out.group_reduce < 2) throw Error("optimization rows: needs group(N) with N > 1 lanes");
  // A row kernel's group computes one row: its lanes tile only the row itself.
  if (rows)
    for (size_t d = 0; d + 1 < rank; ++d)
      if (out.upcast[d] > 1 || (!out.local.empty() && out.local[d] > 1))
        throw Error("optimization rows: a group computes one row, so only axis " + std::to_string(rank - 1) +
                    " may be upcast (axis " + std::to_string(d) + " is)");
  out.spread_rows = rows;
  return out;
}

LoweringOptions apply_opts(const Opts& opts, const Node* value, const DeviceInfo& device) {
  const bool groups = device.max_local_size > 1;
  return apply_opts(opts, value->shape.size(), groups || device.parallel_all_outer_loops, groups, device.matrix_units);
}

}  // namespace lathe
