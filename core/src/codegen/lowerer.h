// Internal to the lowering: the walk that turns one kernel's graph fragment into kernel IR.
// lower.cpp holds the walk, loops, register tiles and epilogues; lower_reduce.cpp reductions
// in loops (partial accumulators, float keys, nested reductions); lower_groups.cpp the
// work-group forms (grouped reductions, operands staged in local memory).
#pragma once
#include <functional>
#include <map>
#include <set>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "codegen/access.h"
#include "codegen/lower.h"

namespace lathe {

Inst make_const(DType dtype, double value);
Inst make_const_acc(DType dtype, double init);  // a DefineAcc with its initial value
constexpr int32_t kNegInfKey = static_cast<int32_t>(0x807fffffu);  // max_key(-inf)
double reduce_identity(Op reduce_op, DType dtype);
// How a matrix unit of `input` computes reduction r, a sum of products of two float32 factors:
// 1 when both are exactly `input` values (casts from it), 3 when one is and the other is split
// into three bfloat16 parts (float32 accuracy), 0 when it cannot.
int matrix_unit_parts(Node* r, DType input);
// Local memory that reduce_mma stages for a factor over `tile` positions and `chunk` steps (the
// larger of its two layouts).
int64_t mma_stage_bytes(int64_t tile, int64_t chunk);

class Lowerer {
 public:
  Lowerer(Node* value, Buffer* output, const std::function<Buffer*(Node*)>& input_of);
  // Another value stored by the same kernel: the first value's shape, or in a row kernel a
  // statistic of its rows that the first value reads.
  void add_output(Node* value, Buffer* output);
  LoweredKernel run(const LoweringOptions& opt);
  // The top-level reductions of the first value (or the places outside reductions where it
  // reads `target`) and where it reads them, for an output element whose index along axis d
  // is variable d.
  std::vector<std::pair<Node*, Ctx>> top_reads(Node* target = nullptr);

 private:
  using Accs = std::vector<std::pair<int, Ctx>>;  // accumulator register and its tile context
  // The forms of a top-level reduction, tried in order by lower_reduction (lower.cpp's table):
  // each lowers r when its precondition holds.
  bool form_online(Node* r, Accs& accs, const LoweringOptions& opt, const std::vector<int64_t>& up);
  bool form_grouped(Node* r, Accs& accs, const LoweringOptions& opt, const std::vector<int64_t>& up);
  bool form_packed(Node* r, Accs& accs, const LoweringOptions& opt, const std::vector<int64_t>& up);
  bool form_mma(Node* r, Accs& accs, const LoweringOptions& opt, const std::vector<int64_t>& up);
  bool form_staged(Node* r, Accs& accs, const LoweringOptions& opt, const std::vector<int64_t>& up);
  bool form_loops(Node* r, Accs& accs, const LoweringOptions& opt, const std::vector<int64_t>& up);
  void lower_reduction(Node* r, Accs& accs, const LoweringOptions& opt, const std::vector<int64_t>& up);
  Accs accs_of(Node* r);  // an accumulator for each place the kernel reads r

  int new_var(const std::string& prefix);
  void open_range(int var, int64_t extent, bool global, bool reduction = false);
  void close_range();
  std::vector<Expr> open_reduce_loops(Node* r);
  static Ctx reduce_src_ctx(Node* r, const Ctx& c, const std::vector<Expr>& rvars);
  static std::string memo_key(const Node* n, const Ctx& c);
  bool memoized(const std::string& memo) const;  // lowered already in an open scope
  std::string cse_key(const Inst& in);
  int emit(const Inst& in, bool cse);
  int param(Buffer* b, DType dtype);
  static std::string reduce_key(Node* r, const Ctx& c);
  // The context in which the output context `output` reads top-level reduction r (none when
  // it reads r at more than one place).
  std::optional<Ctx> reduce_ctx_for(Node* r, const Ctx& output);
  int lower(Node* n, const Ctx& c);
  int lower_uncached(Node* n, const Ctx& c);
  void estimate();
  bool reads_an_output(const std::vector<Node*>& values);  // does any value read an output buffer of this kernel?

  // lower.cpp: loops over the output (one parallel), the epilogue and the stores.
  void open_output_loops(const LoweringOptions& opt, const std::vector<int64_t>& up, const std::vector<int>& order,
                         std::string& name);
  bool reload_epilogue(const std::vector<Ctx>& ctxs, const std::function<void(size_t, const Ctx&, int)>& store);

  // lower_reduce.cpp: each reduction in its own loop nest.
  void reduce_in_loops(Node* r, Accs& accs, int64_t split);
  void lower_nested_together(Node* src, const std::vector<Ctx>& ctxs);
  int max_key(int value);     // float32 register -> its ordered int32 key
  int from_max_key(int key);  // and back
  int flip_negative_magnitudes(int bits);

  // lower_pack.cpp: the loops form's staged factor (a packed strip, see LoweringOptions::stage_chunk).
  struct Pack {
    Node* reduce = nullptr;
    int factor = -1;         // which source of the reduced product is staged
    std::vector<int> axes;   // output axes it depends on (its strip spans their register tile)
    int64_t tile = 1;        // strip positions per reduction step
    int array = -1;          // the local array, once copied
  };
  Pack pack_;
  void plan_pack(const LoweringOptions& opt, const std::vector<int64_t>& up, const std::vector<int>& order);
  void pack_when_open(const std::vector<bool>& opened, const std::vector<int64_t>& up);
  void reduce_packed(Node* r, Accs& accs, const std::vector<int64_t>& up);

  // lower_online.cpp: a maximum and a sum that reads it, in one pass; both read at the same
  // contexts (maxes[a] and sums[a] belong to one tile register).
  void reduce_online(Node* max, Node* sum, Accs& maxes, Accs& sums, double rate, int64_t lanes, int64_t split);
  int online_rescale(int from, int to, double rate);

  // lower_groups.cpp: work-groups instead of loops.
  void open_groups(const LoweringOptions& opt, const std::vector<int64_t>& up, const std::vector<int>& order,
                   std::string& name);
  void reduce_grouped(Node* r, Accs& accs, int64_t lanes, int64_t split);
  bool reduce_staged(Node* r, Accs& accs, const LoweringOptions& opt, const std::vector<int64_t>& up);
  struct OperandUse {
    bool ok = false;            // found at a single context
    std::vector<int> axes;      // tile axes (of the output) the operand depends on
    bool k_contiguous = false;  // consecutive reduction indices are consecutive in memory
  };
  OperandUse probe_operand(Node* r, Node* operand, const std::vector<int>& tile_axes);

  // lower_mma.cpp: the staged matmul on a matrix unit (LoweringOptions::matrix_unit).
  int64_t registers_along(const LoweringOptions& opt, size_t d, int64_t up) const;
  Expr register_index(const LoweringOptions& opt, size_t d, int64_t up, int64_t c);
  bool reduce_mma(Node* r, Accs& accs, const LoweringOptions& opt, const std::vector<int64_t>& up);
  struct MmaStage;
  std::vector<int> load_stage(Node* r, const MmaStage& st, const Expr& chunk_start, int64_t chunk);
  void store_stage(const MmaStage& st, const std::vector<int>& values, int64_t chunk);
  void mma_emulated_share(const MatrixUnit& unit, const std::vector<std::vector<int>>& a, const std::vector<std::vector<int>>& b,
                          int scratch, int64_t tile_words);
  void mma_emulated(const MatrixUnit& unit, int64_t a_first, int64_t b_first, const std::vector<int>& acc, int scratch,
                    int64_t tile_words);
  std::map<std::string, std::pair<int64_t, int64_t>> mma_register_;  // output context key -> its register along rows, columns
  std::vector<Expr> split_reduce_index(Node* r, const Expr& k);
  int define_local(DType dtype, int64_t elements);
  // `array` may be handed out again by define_local: every access to it so far is followed by
  // a barrier all of the group passes.
  void release_local(int array);
  int local_load(int array, const Expr& index, std::vector<IndexBound> valid, bool cse);
  void local_store(int array, const Expr& index, int value, std::vector<IndexBound> valid = {});
  void barrier();

  Node* value_;
  std::vector<Node*> more_values_;  // outputs 1.. (add_output)
  std::function<Buffer*(Node*)> input_of_;
  Kernel k_;
  std::vector<Buffer*> params_;
  std::unordered_map<Buffer*, int> param_index_;
  std::vector<std::unordered_map<std::string, int>> cse_;
  std::map<std::pair<Node*, std::string>, int> top_acc_;
  std::vector<Node*> top_reduces_;           // top-level reductions, each once
  std::vector<std::pair<Node*, Ctx>> tops_;  // top-level reductions at each place they are read
  std::map<Node*, std::pair<Node*, double>> online_;  // maximum -> (the sum read through it, rate)
  std::set<Node*> lowered_tops_;
  std::map<std::string, Ctx> output_ctx_;  // reduce_key -> the output context that reads it
  std::vector<Expr> outer_;
  // Work-group form: per output axis, the group's first index; the work-item's id, its
  // output lane and its reduction lane within the group.
  std::vector<Expr> group_base_;
  Expr local_id_, local_out_, reduce_lane_;
  bool spread_rows_ = false;  // a row kernel: the reduction lanes also spread the last axis
  int64_t local_outputs_ = 1;  // work-items per group along output axes (warps, with a matrix unit)
  std::vector<Expr> local_pos_;  // per output axis, the work-item's (warp's) position in its group
  std::vector<int64_t> frag_;    // per output axis, a matrix unit's fragment extent (1 without one)
  std::vector<DType> local_dtypes_;
  std::vector<int64_t> local_extents_;
  std::vector<int> free_locals_;  // arrays a finished staged reduction left
};

}  // namespace lathe
