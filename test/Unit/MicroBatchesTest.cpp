//===- MicroBatchesTest.cpp - a step's figures from its micro-batches -----===//

#include "moert/MicroBatches.h"

#include <gtest/gtest.h>

namespace {

using nlohmann::json;

TEST(MicroBatchesTest, OneMicroBatchIsTheStepAsItIs) {
  json line = {{"loss", 2.5}, {"dropped", 3}, {"load", {1, 2}}};
  json step = moert::meanOverMicroBatches({line});
  EXPECT_EQ(step, line);
  EXPECT_TRUE(step["dropped"].is_number_integer());
}

TEST(MicroBatchesTest, NumbersAndListsAreMeansOverTheMicroBatches) {
  json first = {{"loss", 3.0}, {"dropped", 2}, {"load", {1, 4}}};
  json last = {{"loss", 2.0},
               {"dropped", 5},
               {"load", {2, 1}},
               {"grad_norm", 0.5},
               {"lr", 1e-3}};
  json step = moert::meanOverMicroBatches({first, first, last});
  EXPECT_DOUBLE_EQ(step["loss"].get<double>(), 8.0 / 3);
  EXPECT_DOUBLE_EQ(step["dropped"].get<double>(), 3.0);
  EXPECT_DOUBLE_EQ(step["load"][0].get<double>(), 4.0 / 3);
  EXPECT_DOUBLE_EQ(step["load"][1].get<double>(), 3.0);
  // The optimizer's own figures come from the train step alone.
  EXPECT_DOUBLE_EQ(step["grad_norm"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(step["lr"].get<double>(), 1e-3);
}

TEST(MicroBatchesTest, FiguresOtherThanNumbersAreTheLastMicroBatchs) {
  // Only numbers, and numbers in lists, have means: a string, a list's
  // string and a list's nested list are the last micro-batch's, beside the
  // mean of the list's number ((1 + 3) / 2 = 2).
  json first = {{"phase", "micro"}, {"mixed", {1, "a", {5, 6}}}};
  json last = {{"phase", "step"}, {"mixed", {3, "b", {7, 8}}}};
  json step = moert::meanOverMicroBatches({first, last});
  EXPECT_EQ(step["phase"], "step");
  ASSERT_EQ(step["mixed"].size(), 3u);
  EXPECT_DOUBLE_EQ(step["mixed"][0].get<double>(), 2.0);
  EXPECT_EQ(step["mixed"][1], "b");
  EXPECT_EQ(step["mixed"][2], json({7, 8}));
}

TEST(MicroBatchesTest, KeysOfTheLastValueKeepTheLastLines) {
  // A progress line's interval: the loss and loads are means over its
  // steps, the optimizer's state the last step's.
  json first = {{"loss", 4.0}, {"lr", 1e-3}, {"load", {1, 3}}};
  json last = {{"loss", 2.0}, {"lr", 5e-4}, {"load", {3, 5}}};
  json interval = moert::meanOfFigures(
      {first, last}, [](std::string_view key) { return key == "lr"; });
  EXPECT_DOUBLE_EQ(interval["loss"].get<double>(), 3.0);
  EXPECT_DOUBLE_EQ(interval["lr"].get<double>(), 5e-4);
  EXPECT_DOUBLE_EQ(interval["load"][0].get<double>(), 2.0);
  EXPECT_DOUBLE_EQ(interval["load"][1].get<double>(), 4.0);
}

} // namespace
