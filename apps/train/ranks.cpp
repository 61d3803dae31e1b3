// Rank-specific parts of a run: device choice, config agreement, micro-batch shares, launcher stops.
#include "ranks.h"

#include <unistd.h>

#include <csignal>
#include <cstring>
#include <sstream>

#include <spdlog/spdlog.h>

#include "lathe/backends.h"

namespace lathe::app {

int rank_device(const TrainConfig& c, const Communicator& comm) {
  if (c.set_keys.count("backend.device") || comm.size() == 1) return c.device;
  size_t devices = 0;
  for (const PluginStatus& s : discover_backends())
    if (s.name == c.backend && s.usable) devices = s.devices.size();
  const auto local = static_cast<size_t>(comm.local_rank());
  if (local < devices) return static_cast<int>(local);
  if (devices <= 1) return 0;  // one device (cpu): every rank of the host shares it
  throw Error("rank " + std::to_string(comm.rank()) + " is rank " + std::to_string(local) + " of its host, which has only " +
              std::to_string(devices) + " " + c.backend + " devices: start at most " + std::to_string(devices) +
              " ranks per host (mpirun -npernode " + std::to_string(devices) + ") or set backend.device");
}

void check_same_config(const TrainConfig& c, Communicator& comm) {
  if (comm.size() == 1) return;
  // Rank 0's values, one "key\tvalue" line each, compared key by key.
  const auto mine = config_values(c);
  std::string text;
  for (auto& [key, value] : mine) text += key + "\t" + value + "\n";
  uint64_t length = text.size();
  comm.broadcast(&length, sizeof length, 0);
  text.resize(length);
  comm.broadcast(text.data(), length, 0);
  std::istringstream first(text);
  std::string differs, line;
  for (size_t i = 0; i < mine.size() && std::getline(first, line) && differs.empty(); ++i) {
    const std::string theirs = line.substr(line.find('\t') + 1);
    if (mine[i].first != "backend.device" && mine[i].second != theirs)
      differs = mine[i].first + " = " + mine[i].second + " here, " + theirs + " on rank 0";
  }
  std::vector<int64_t> flags(static_cast<size_t>(comm.size()), 0);
  flags[static_cast<size_t>(comm.rank())] = differs.empty() ? 0 : 1;
  comm.all_reduce_sum(flags.data(), flags.size(), DType::Int64);
  std::string ranks;
  for (size_t r = 0; r < flags.size(); ++r)
    if (flags[r]) ranks += (ranks.empty() ? "" : ", ") + std::to_string(r);
  if (ranks.empty()) return;
  if (!differs.empty()) spdlog::error("rank {} was given another config than rank 0: {}", comm.rank(), differs);
  throw EveryRankError("rank(s) " + ranks + " were given another config than rank 0 (each names the key above); every rank must "
                       "train the same config: pass the same file and --set options to all");
}

MicroBatchShare micro_batch_share(const TrainConfig& c, const Communicator& comm) {
  if (c.grad_accum % comm.size() != 0)
    throw EveryRankError("train.grad_accum = " + std::to_string(c.grad_accum) + " counts the micro-batches of a step over all ranks, and " +
                         std::to_string(comm.size()) + " ranks cannot share them equally: set train.grad_accum to a multiple of " +
                         std::to_string(comm.size()) + " (a global batch of train.batch_size x train.grad_accum sequences)");
  const int each = c.grad_accum / comm.size();
  return {comm.rank() * each, each};
}

namespace {
const std::atomic<int64_t>* stopped_step = nullptr;
int stopped_rank = 0;

// Async-signal-safe: formats with nothing but write(2).
void on_launcher_stop(int) {
  char text[160] = "lathe: rank ";
  auto append_number = [&](int64_t v) {
    char digits[24];
    int n = 0;
    do digits[n++] = static_cast<char>('0' + v % 10), v /= 10; while (v > 0);
    size_t at = std::strlen(text);
    while (n > 0) text[at++] = digits[--n];
    text[at] = '\0';
  };
  append_number(stopped_rank);
  std::strcat(text, " stopped by the launcher during step ");
  append_number(stopped_step->load() + 1);
  std::strcat(text, ": another rank ended first (the launcher names it); the last checkpoint is intact\n");
  ssize_t ignored = write(STDERR_FILENO, text, std::strlen(text));
  (void)ignored;
  std::_Exit(143);
}
}  // namespace

void report_launcher_stop(const Communicator& comm, const std::atomic<int64_t>& step) {
  if (comm.size() == 1) return;
  stopped_step = &step;
  stopped_rank = comm.rank();
  std::signal(SIGTERM, on_launcher_stop);
}

}  // namespace lathe::app
