// The collectives data-parallel training needs (all-reduce, reduce-scatter, all-gather,
// broadcast, barrier) behind one small interface: MPI's ranks when the process was started by
// mpirun, a single process otherwise (and whenever lathe was built without MPI).
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "lathe/dtype.h"

namespace lathe::app {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // This rank's index among the ranks of its host: the device it takes by default.
  virtual int local_rank() const = 0;
  virtual std::string describe() const = 0;

  // Sums in place, elementwise across ranks; every rank ends with the sum. `dtype`: Float32,
  // BFloat16 (summed as bfloat16, rounded to nearest even after each addition) or Int64.
  virtual void all_reduce_sum(void* data, size_t count, DType dtype) = 0;
  virtual void all_reduce_sum(double* data, size_t count) = 0;  // losses, squared norms
  // `data` holds parts of counts[0], ..., counts[size-1] elements one after another; rank r ends
  // with the sum of part r, in place at part r's offset (the other parts are left undefined).
  virtual void reduce_scatter_sum(void* data, const std::vector<size_t>& counts, DType dtype) = 0;
  // The same layout: rank r's part r is copied into part r of every rank's `data`.
  virtual void all_gather(void* data, const std::vector<size_t>& counts, DType dtype) = 0;
  virtual void broadcast(void* data, size_t bytes, int root) = 0;
  virtual void barrier() = 0;
  // Stops every rank; called by the rank that reports an error, after reporting it.
  [[noreturn]] virtual void abort(int exit_code) = 0;
};

// One process: every collective is the identity.
std::unique_ptr<Communicator> single_process();
// The ranks mpirun (or another MPI launcher) started, when it started this process; else
// single_process(). A launched process in a build without MPI is refused with the fix.
std::unique_ptr<Communicator> connect_ranks();
bool built_with_mpi();

// Implemented by communicator_mpi.cpp where MPI was found.
std::unique_ptr<Communicator> mpi_ranks();

}  // namespace lathe::app
