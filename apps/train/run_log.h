// What a training run reports: console lines or a progress bar, a log file, metrics as JSON
// lines, MLPerf-style :::MLLOG events, and a plot of the loss curves.
#pragma once
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace lathe::app {

struct StepMetrics {
  int64_t step;  // 1-based: optimizer steps done
  double loss, lr, grad_norm, tokens_per_s, elapsed_s;
  std::optional<double> val_loss;
};

class RunLog {
 public:
  // Logs to stderr (a progress bar when it is a terminal) and to <dir>/train.log; metrics go to
  // <dir>/metrics.jsonl, whose entries after `resume_step` are dropped (they belong to a run
  // that was cut short and is being redone). A run's other ranks (`primary` false) write no
  // files and print only warnings and errors.
  RunLog(const std::string& dir, int64_t total_steps, int64_t resume_step, bool mllog, bool primary = true);
  ~RunLog();
  spdlog::logger& log() { return *logger_; }
  void step(const StepMetrics& m, bool print_line);
  void mllog(const std::string& key, const nlohmann::json& value, const nlohmann::json& metadata = nlohmann::json::object(),
             const char* event = "POINT_IN_TIME");
  // Draws <dir>/loss.svg from the metrics with gnuplot; returns why not when it cannot.
  std::string plot();

 private:
  std::string dir_;
  int64_t total_;
  bool tty_, mllog_, primary_;
  bool bar_open_ = false;
  std::shared_ptr<spdlog::logger> logger_;
};

}  // namespace lathe::app
