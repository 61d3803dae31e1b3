// The single-process communicator, and the choice between it and MPI's ranks.
#include "communicator.h"

#include <cstdlib>
#include <cstring>

#include "lathe/error.h"

namespace lathe::app {
namespace {

class SingleProcess : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_rank() const override { return 0; }
  std::string describe() const override { return "one process"; }
  void all_reduce_sum(void*, size_t, DType) override {}
  void all_reduce_sum(double*, size_t) override {}
  void reduce_scatter_sum(void*, const std::vector<size_t>&, DType) override {}
  void all_gather(void*, const std::vector<size_t>&, DType) override {}
  void broadcast(void*, size_t, int) override {}
  void barrier() override {}
  [[noreturn]] void abort(int exit_code) override { std::exit(exit_code); }
};

// The world size a launcher announced in the environment (Open MPI, MPICH/Hydra, PMIx, Slurm's
// PMI), or 0 when none did.
int launched_size() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS"})
    if (const char* v = std::getenv(name); v && *v) return std::atoi(v);
  return 0;
}

}  // namespace

std::unique_ptr<Communicator> single_process() { return std::make_unique<SingleProcess>(); }

std::unique_ptr<Communicator> connect_ranks() {
  const int size = launched_size();
  if (size <= 1) return single_process();
  if (!built_with_mpi())
    throw Error("this process was started by an MPI launcher as one of " + std::to_string(size) +
                " ranks, but lathe was built without MPI: install it (apt-get install libopenmpi-dev openmpi-bin) and "
                "rebuild (cmake -S . -B build), or run lathe train without mpirun");
  return mpi_ranks();
}

#ifndef LATHE_HAVE_MPI
bool built_with_mpi() { return false; }
std::unique_ptr<Communicator> mpi_ranks() { throw Error("lathe was built without MPI"); }
#endif

}  // namespace lathe::app
