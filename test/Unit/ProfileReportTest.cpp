//===- ProfileReportTest.cpp - the --profile tables of a training binary --===//
//
// Sites with counters set by hand, so that the times, rates and the rows
// shown are known exactly (a compiled model's times vary from run to run).
//
//===----------------------------------------------------------------------===//

#include "ProfileReport.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

namespace {

moe_function functionOf(std::vector<moe_profile_site> &sites) {
  moe_function function{};
  function.name = "train_step";
  function.num_profile_sites = static_cast<int64_t>(sites.size());
  function.profile_sites = sites.data();
  return function;
}

std::vector<std::string> linesOf(const std::string &text) {
  std::vector<std::string> lines;
  std::istringstream stream(text);
  for (std::string line; std::getline(stream, line);)
    lines.push_back(line);
  return lines;
}

bool hasLine(const std::vector<std::string> &lines, const std::string &line) {
  return std::find(lines.begin(), lines.end(), line) != lines.end();
}

} // namespace

TEST(ProfileReportTest, FoldsLayerSegmentsAndGivesNoRatesWithoutTime) {
  std::vector<moe_profile_site> sites = {
      {"linear", "model.layers.0.mlp", 1e9, 1e8, 0, 0},
      {"linear", "model.layers.1.mlp", 1e9, 1e8, 0, 0},
      {"copy", "model.w1", 0, 1000, 0, 0},
      {"copy", "model.layers.10.w2", 0, 1000, 0, 0},
      {"softmax", "lm_head", 5e6, 1e6, 0, 0}};
  moe_function function = functionOf(sites);
  moert::StepProfile profile({&function});
  // The first step, 9 ms a call, is left out.
  for (moe_profile_site &site : sites) {
    site.calls = 1;
    site.nanoseconds = 9000000;
  }
  profile.recordStep(0.05);
  // The second: 2, 2, 0.5, 0.25 and 0 ms of its 10 ms.
  int64_t added[] = {2000000, 2000000, 500000, 250000, 0};
  for (size_t i = 0; i < sites.size(); ++i) {
    sites[i].calls = 2;
    sites[i].nanoseconds += added[i];
  }
  profile.recordStep(0.01);
  std::string text = profile.format();
  std::vector<std::string> lines = linesOf(text);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines[0], "profile of train_step over 1 step (the first one left "
                      "out): 10.00 ms/step, 4.75 ms of it in 5 kernel calls");
  // linear: 2 calls of 1 GFLOP and 0.1 GB in 4 ms, 40% of the step: 500
  // GFLOP/s, 50 GB/s. softmax took no time: no rates, not inf.
  EXPECT_TRUE(hasLine(lines, "linear                          2     4.000  "
                             "40.0%     500.0     50.0"))
      << text;
  EXPECT_TRUE(hasLine(lines, "softmax                         1     0.000   "
                             "0.0%         -        -"))
      << text;
  // A layer number is a whole segment of digits; the digits that end a
  // name ("w1") are not one.
  EXPECT_TRUE(hasLine(lines,
                      "linear @ model.layers.*.mlp                         "
                      "        2     4.000  40.0%     500.0     50.0"))
      << text;
  EXPECT_TRUE(hasLine(lines,
                      "copy @ model.w1                                     "
                      "        1     0.500   5.0%         -      0.0"))
      << text;
  EXPECT_TRUE(hasLine(lines,
                      "copy @ model.layers.*.w2                            "
                      "        1     0.250   2.5%         -      0.0"))
      << text;
  // The metrics file's figures leave the first step out too.
  nlohmann::json json = profile.json();
  EXPECT_EQ(json["steps"], 1);
  EXPECT_DOUBLE_EQ(json["seconds"].get<double>(), 0.01);
  EXPECT_EQ(json["sites"][2]["location"], "model.w1");
  EXPECT_EQ(json["sites"][2]["calls"], 1);
  EXPECT_NEAR(json["sites"][2]["seconds"].get<double>(), 5e-4, 1e-12);
}

TEST(ProfileReportTest, ShowsTheFifteenCostliestCallSites) {
  // 16 sites of distinct places, site i taking 17 - i ms.
  std::vector<std::string> names;
  for (int i = 1; i <= 16; ++i)
    names.push_back("site" + std::to_string(i));
  std::vector<moe_profile_site> sites;
  for (int i = 1; i <= 16; ++i)
    sites.push_back({"k", names[i - 1].c_str(), 0, 0, 1, (17 - i) * 1000000});
  moe_function function = functionOf(sites);
  moert::StepProfile profile({&function});
  profile.recordStep(0.2);
  std::vector<std::string> lines = linesOf(profile.format());
  auto header = std::find_if(lines.begin(), lines.end(), [](auto &line) {
    return line.rfind("costliest call sites", 0) == 0;
  });
  ASSERT_NE(header, lines.end());
  std::vector<std::string> shown(header + 1, lines.end());
  ASSERT_EQ(shown.size(), 15u);
  for (int i = 1; i <= 15; ++i)
    EXPECT_EQ(shown[i - 1].rfind("k @ site" + std::to_string(i) + " ", 0), 0u)
        << shown[i - 1];
}
