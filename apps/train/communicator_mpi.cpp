// The Communicator over MPI (Open MPI from Debian): shared memory within a host, TCP, UCX or
// libfabric between hosts, as mpirun chooses. MPI has no bfloat16, so bfloat16 sums use a type of
// two bytes and an operation of their own.
// The C API only: Open MPI and MPICH otherwise pull in their deprecated C++ bindings.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <climits>
#include <cstring>

#include "communicator.h"
#include "lathe/error.h"

namespace lathe::app {
namespace {

void check_mpi(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(rc, text, &length);
  throw Error(std::string("MPI ") + what + " failed: " + std::string(text, static_cast<size_t>(length)));
}

void add_bfloat16(void* in, void* inout, int* count, MPI_Datatype*) {
  const auto* a = static_cast<const uint16_t*>(in);
  auto* b = static_cast<uint16_t*>(inout);
  for (int i = 0; i < *count; ++i) b[i] = float_to_bfloat16_bits(bfloat16_bits_to_float(a[i]) + bfloat16_bits_to_float(b[i]));
}

class MpiRanks : public Communicator {
 public:
  MpiRanks() {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) check_mpi(MPI_Init(nullptr, nullptr), "initialization");
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);  // errors become lathe errors, named
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    MPI_Comm host;
    check_mpi(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &host), "host split");
    MPI_Comm_rank(host, &local_rank_);
    MPI_Comm_size(host, &local_size_);
    MPI_Comm_free(&host);
    MPI_Type_contiguous(2, MPI_BYTE, &bfloat16_);
    MPI_Type_commit(&bfloat16_);
    MPI_Op_create(&add_bfloat16, 1, &add_bfloat16_);
  }
  ~MpiRanks() override {
    MPI_Op_free(&add_bfloat16_);
    MPI_Type_free(&bfloat16_);
    MPI_Finalize();
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }
  std::string describe() const override {
    int version = 0, subversion = 0;
    MPI_Get_version(&version, &subversion);
    return std::to_string(size_) + " MPI ranks (" + std::to_string(local_size_) + " on this host; MPI " + std::to_string(version) + "." +
           std::to_string(subversion) + ")";
  }

  struct Kind {
    MPI_Datatype type;
    MPI_Op op;
    size_t bytes;
  };
  void all_reduce_sum(double* data, size_t count) override { sum(data, count, {MPI_DOUBLE, MPI_SUM, 8}); }
  void all_reduce_sum(void* data, size_t count, DType dtype) override { sum(data, count, of(dtype)); }
  void sum(void* data, size_t count, Kind kind) {
    auto [type, op, bytes] = kind;
    // MPI counts are ints: larger buffers go in pieces.
    for (size_t done = 0; done < count;) {
      int n = static_cast<int>(std::min<size_t>(count - done, INT_MAX / 2));
      check_mpi(MPI_Allreduce(MPI_IN_PLACE, static_cast<char*>(data) + done * bytes, n, type, op, MPI_COMM_WORLD), "all-reduce");
      done += static_cast<size_t>(n);
    }
  }
  void reduce_scatter_sum(void* data, const std::vector<size_t>& counts, DType dtype) override {
    auto [type, op, bytes] = of(dtype);
    std::vector<int> n = ints(counts);
    check_mpi(MPI_Reduce_scatter(MPI_IN_PLACE, data, n.data(), type, op, MPI_COMM_WORLD), "reduce-scatter");
    // In place, MPI leaves this rank's part at the start of the buffer: move it to its offset.
    size_t offset = 0;
    for (int r = 0; r < rank_; ++r) offset += counts[static_cast<size_t>(r)];
    if (offset) std::memmove(static_cast<char*>(data) + offset * bytes, data, counts[static_cast<size_t>(rank_)] * bytes);
  }
  void all_gather(void* data, const std::vector<size_t>& counts, DType dtype) override {
    auto [type, op, bytes] = of(dtype);
    std::vector<int> n = ints(counts), displacements(n.size());
    for (size_t r = 1; r < n.size(); ++r) displacements[r] = displacements[r - 1] + n[r - 1];
    check_mpi(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, data, n.data(), displacements.data(), type, MPI_COMM_WORLD), "all-gather");
  }
  void broadcast(void* data, size_t bytes, int root) override {
    for (size_t done = 0; done < bytes;) {
      int n = static_cast<int>(std::min<size_t>(bytes - done, INT_MAX / 2));
      check_mpi(MPI_Bcast(static_cast<char*>(data) + done, n, MPI_BYTE, root, MPI_COMM_WORLD), "broadcast");
      done += static_cast<size_t>(n);
    }
  }
  void barrier() override { check_mpi(MPI_Barrier(MPI_COMM_WORLD), "barrier"); }
  [[noreturn]] void abort(int exit_code) override {
    MPI_Abort(MPI_COMM_WORLD, exit_code);
    std::exit(exit_code);
  }

 private:
  Kind of(DType dtype) const {
    switch (dtype) {
      case DType::Float32: return {MPI_FLOAT, MPI_SUM, 4};
      case DType::Int64: return {MPI_INT64_T, MPI_SUM, 8};
      case DType::BFloat16: return {bfloat16_, add_bfloat16_, 2};
      default: throw Error(std::string("MPI sums of ") + dtype_name(dtype) + " are not supported (float32, bfloat16, int64 and float64 are)");
    }
  }
  static std::vector<int> ints(const std::vector<size_t>& counts) {
    std::vector<int> n;
    size_t total = 0;
    for (size_t c : counts) total += c, n.push_back(static_cast<int>(c));
    if (total > INT_MAX) throw Error("a collective of " + std::to_string(total) + " elements: more than MPI's int counts hold; lower distributed.bucket_mib");
    return n;
  }
  int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1;
  MPI_Datatype bfloat16_;
  MPI_Op add_bfloat16_;
};

}  // namespace

bool built_with_mpi() { return true; }
std::unique_ptr<Communicator> mpi_ranks() { return std::make_unique<MpiRanks>(); }

}  // namespace lathe::app
