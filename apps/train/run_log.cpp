#include "run_log.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "lathe/models/atomic_file.h"

namespace lathe::app {
namespace fs = std::filesystem;

namespace {

std::string duration(double s) {
  int64_t t = static_cast<int64_t>(s + 0.5);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", static_cast<long long>(t / 3600), static_cast<long long>(t / 60 % 60),
                static_cast<long long>(t % 60));
  return buf;
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

RunLog::RunLog(const std::string& dir, int64_t total_steps, int64_t resume_step, bool mllog, bool primary)
    : dir_(dir), total_(total_steps), tty_(primary && isatty(STDERR_FILENO)), mllog_(mllog && primary), primary_(primary) {
  auto console = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  if (!primary) {
    logger_ = std::make_shared<spdlog::logger>("train", console);
    logger_->set_pattern("[%H:%M:%S] %v");
    logger_->set_level(spdlog::level::warn);
    return;
  }
  fs::create_directories(dir);
  auto file = std::make_shared<spdlog::sinks::basic_file_sink_mt>((fs::path(dir) / "train.log").string());
  logger_ = std::make_shared<spdlog::logger>("train", spdlog::sinks_init_list{console, file});
  logger_->set_pattern("[%H:%M:%S] %v");
  // Keep only the metrics of steps this run will not redo.
  fs::path metrics = fs::path(dir) / "metrics.jsonl";
  std::string kept;
  if (std::ifstream in{metrics}) {
    for (std::string line; std::getline(in, line);) {
      try {
        if (nlohmann::json::parse(line).at("step").get<int64_t>() <= resume_step) kept += line + "\n";
      } catch (...) {
      }
    }
  }
  models::write_file_atomically(metrics.string(), kept);
}

RunLog::~RunLog() {
  if (bar_open_) std::fputs("\n", stderr);
}

void RunLog::step(const StepMetrics& m, bool print_line) {
  if (!primary_) return;
  nlohmann::json j = {{"step", m.step}, {"loss", m.loss}, {"lr", m.lr}, {"grad_norm", m.grad_norm},
                      {"tokens_per_s", m.tokens_per_s}, {"elapsed_s", m.elapsed_s}};
  if (m.val_loss) j["val_loss"] = *m.val_loss;
  std::ofstream(fs::path(dir_) / "metrics.jsonl", std::ios::app) << j.dump() << "\n";
  double left = m.tokens_per_s > 0 && m.step > 0 ? m.elapsed_s / static_cast<double>(m.step) * static_cast<double>(total_ - m.step) : 0;
  std::string text = fmt::format("step {:>6}/{} loss {:.4f} lr {:.3e} grad {:.3f} {:.{}f} tok/s left {}", m.step, total_, m.loss, m.lr,
                                 m.grad_norm, m.tokens_per_s, m.tokens_per_s < 10 ? 2 : 0, duration(left));
  if (m.val_loss) text += fmt::format(" val {:.4f}", *m.val_loss);
  if (tty_) {  // a bar that redraws in place; the log file still gets every printed line
    int width = 24, done = static_cast<int>(static_cast<double>(width) * static_cast<double>(m.step) / static_cast<double>(total_));
    std::fprintf(stderr, "\r[%s%s] %s\033[K", std::string(done, '#').c_str(), std::string(width - done, '.').c_str(), text.c_str());
    std::fflush(stderr);
    bar_open_ = true;
  }
  if (print_line || m.val_loss) {
    if (tty_) {
      std::fputs("\r\033[K", stderr);
      bar_open_ = false;
    }
    logger_->info("{}", text);
  }
}

void RunLog::mllog(const std::string& key, const nlohmann::json& value, const nlohmann::json& metadata, const char* event) {
  if (!mllog_) return;
  nlohmann::json j = {{"namespace", ""}, {"time_ms", now_ms()}, {"event_type", event}, {"key", key}, {"value", value}, {"metadata", metadata}};
  if (bar_open_) {
    std::fputs("\r\033[K", stderr);
    bar_open_ = false;
  }
  logger_->info(":::MLLOG {}", j.dump());
}

std::string RunLog::plot() {
  if (std::system("command -v gnuplot > /dev/null 2>&1") != 0) return "gnuplot is not installed (apt-get install gnuplot-nox)";
  fs::path dir(dir_), train = dir / "loss_train.tsv", val = dir / "loss_val.tsv";
  {
    std::ifstream in(dir / "metrics.jsonl");
    std::ofstream t(train), v(val);
    for (std::string line; std::getline(in, line);) {
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_discarded()) continue;
      t << j["step"] << "\t" << j["loss"] << "\n";
      if (j.contains("val_loss")) v << j["step"] << "\t" << j["val_loss"] << "\n";
    }
  }
  std::string script = "set terminal svg size 800,480 background rgb 'white'; set output '" + (dir / "loss.svg").string() +
                       "'; set xlabel 'step'; set ylabel 'loss'; set grid; set key top right;"
                       " plot '" + train.string() + "' using 1:2 with lines title 'train', '" + val.string() +
                       "' using 1:2 with linespoints title 'validation'";
  std::string cmd = "gnuplot -e \"" + script + "\" 2>&1";
  std::string out;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[256];
    while (std::fgets(buf, sizeof buf, p)) out += buf;
    if (pclose(p) != 0) return "gnuplot failed: " + out;
  }
  return "";
}

}  // namespace lathe::app
