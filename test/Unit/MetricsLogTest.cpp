//===- MetricsLogTest.cpp - appending to the --metrics file ---------------===//
//
// A line that does not fit (a full disk, here a file size limit) is taken
// back: the file keeps only whole lines, and a later run may append to it.
//
//===----------------------------------------------------------------------===//

#include "moert/MetricsLog.h"
#include "ErrorTestUtils.h"
#include "TemporaryDirectory.h"

#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <string>
#include <sys/resource.h>

namespace {

/// Lowers the file size limit for its lifetime; writes past it fail with
/// EFBIG instead of a signal.
class FileSizeLimit {
public:
  explicit FileSizeLimit(rlim_t bytes) {
    getrlimit(RLIMIT_FSIZE, &saved);
    previousHandler = std::signal(SIGXFSZ, SIG_IGN);
    rlimit lowered = saved;
    lowered.rlim_cur = bytes;
    setrlimit(RLIMIT_FSIZE, &lowered);
  }
  ~FileSizeLimit() {
    setrlimit(RLIMIT_FSIZE, &saved);
    std::signal(SIGXFSZ, previousHandler);
  }

private:
  rlimit saved;
  void (*previousHandler)(int);
};

TEST(MetricsLogTest, AFailedWriteTakesBackItsPartialLine) {
  moe::test::TemporaryDirectory directory("metrics");
  std::string path = directory.pathOf("m.jsonl");
  std::string reason;
  {
    moert::MetricsLog log(path);
    FileSizeLimit limit(100);
    reason = moe::test::errorOf([&] {
      for (int step = 1; step < 100; ++step)
        log.append({{"step", step}, {"loss", 1.0 / step}});
    });
  }
  EXPECT_TRUE(moe::test::contains(reason, "cannot write metrics")) << reason;
  std::ifstream file(path);
  std::string line;
  int lines = 0;
  while (std::getline(file, line)) {
    EXPECT_TRUE(nlohmann::json::parse(line)["step"].is_number()) << line;
    ++lines;
  }
  EXPECT_GT(lines, 0);
  // Whole lines only, so the next run appends.
  moert::MetricsLog again(path);
  again.append({{"step", 100}});
}

TEST(MetricsLogTest, OneWriterAtATime) {
  moe::test::TemporaryDirectory directory("metrics");
  std::string path = directory.pathOf("m.jsonl");
  {
    moert::MetricsLog log(path);
    EXPECT_TRUE(moe::test::contains(
        moe::test::errorOf([&] { moert::MetricsLog second(path); }),
        "another run is writing metrics to it"));
    // A line the writer has half written is its own, not a torn file.
    log.append({{"step", 1}});
    std::ofstream(path, std::ios::app) << "{\"step\": 2, \"lo";
    EXPECT_TRUE(moe::test::contains(
        moe::test::errorOf([&] { moert::MetricsLog second(path); }),
        "another run is writing metrics to it"));
    std::ofstream(path, std::ios::app) << "ss\": 1}\n";
  }
  moert::MetricsLog after(path);
}

TEST(MetricsLogTest, RefusesFilesThatAreNotMetrics) {
  moe::test::TemporaryDirectory directory("metrics");
  std::string config = directory.pathOf("config.json");
  std::ofstream(config) << "{\"hidden_size\": 64}\n";
  EXPECT_TRUE(moe::test::contains(
      moe::test::errorOf([&] { moert::MetricsLog log(config); }),
      "is not a metrics file"));
  std::string torn = directory.pathOf("torn.jsonl");
  std::ofstream(torn) << "{\"step\": 1}\n{\"step\": 2, \"lo";
  EXPECT_TRUE(moe::test::contains(
      moe::test::errorOf([&] { moert::MetricsLog log(torn); }),
      "last line is incomplete"));
}

} // namespace
