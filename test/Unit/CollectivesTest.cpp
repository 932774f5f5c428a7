//===- CollectivesTest.cpp - the interpreter's collectives ----------------===//
//
// Three ranks as threads, each with its own tensor, worked out by hand:
// rank r holds [[10r, 10r + 1], [10r + 2, 10r + 3], [10r + 4, 10r + 5]].
//
//===----------------------------------------------------------------------===//

#include "TestUtils.h"

#include "moe/Interpreter/Collectives.h"
#include "moert/GridGroups.h"

#include <thread>

using namespace moe::test;
using namespace mlir::moe::ref;

namespace {

constexpr int64_t kRanks = 3;

Tensor rankTensor(int64_t rank) {
  double b = 10.0 * rank;
  return f64({3, 2}, {b, b + 1, b + 2, b + 3, b + 4, b + 5});
}

/// Runs `body` as every rank of a group and returns each rank's result.
std::vector<Tensor>
onEveryRank(const std::function<Tensor(Communicator &)> &body,
            int64_t ranks = kRanks) {
  ThreadGroup group(ranks);
  std::vector<Tensor> results(ranks);
  std::vector<std::thread> threads;
  for (int64_t rank = 0; rank < ranks; ++rank)
    threads.emplace_back(
        [&, rank] { results[rank] = body(group.communicator(rank)); });
  for (std::thread &thread : threads)
    thread.join();
  return results;
}

TEST(CollectivesTest, AllGatherConcatenatesInRankOrder) {
  std::vector<Tensor> results = onEveryRank([](Communicator &comm) {
    return allGather(comm, rankTensor(comm.rank()), 1);
  });
  for (const Tensor &result : results)
    expectTensor(
        result, DType::F64, {3, 6},
        {0, 1, 10, 11, 20, 21, 2, 3, 12, 13, 22, 23, 4, 5, 14, 15, 24, 25});
}

TEST(CollectivesTest, AllReduceSumsMaxesAndConverts) {
  std::vector<Tensor> sums = onEveryRank([](Communicator &comm) {
    return allReduce(comm, rankTensor(comm.rank()), Reduction::Sum, DType::F64);
  });
  for (const Tensor &sum : sums)
    expectTensor(sum, DType::F64, {3, 2}, {30, 33, 36, 39, 42, 45});
  std::vector<Tensor> maxima = onEveryRank([](Communicator &comm) {
    Tensor local = rankTensor(comm.rank());
    local.data[0] = comm.rank() == 1 ? 99 : -1;
    return allReduce(comm, local, Reduction::Max, DType::F64);
  });
  expectTensor(maxima[2], DType::F64, {3, 2}, {99, 21, 22, 23, 24, 25});
  // The least: rank 0's values but the first, which rank 2 lowers.
  std::vector<Tensor> minima = onEveryRank([](Communicator &comm) {
    Tensor local = rankTensor(comm.rank());
    local.data[0] = comm.rank() == 2 ? -7 : 50;
    return allReduce(comm, local, Reduction::Min, DType::F64);
  });
  expectTensor(minima[1], DType::F64, {3, 2}, {-7, 1, 2, 3, 4, 5});
  // An f32 result is rounded to f32 once, after the sum.
  std::vector<Tensor> rounded = onEveryRank([](Communicator &comm) {
    return allReduce(comm, f64({}, {0.1}), Reduction::Sum, DType::F32);
  });
  EXPECT_EQ(rounded[0].dtype, DType::F32);
  EXPECT_EQ(rounded[0].data[0], double(float(0.1 + 0.1 + 0.1)));
}

TEST(CollectivesTest, ReduceScatterKeepsEachRanksRowsOfTheSum) {
  std::vector<Tensor> results = onEveryRank([](Communicator &comm) {
    return reduceScatter(comm, rankTensor(comm.rank()), 0, DType::F64);
  });
  expectTensor(results[0], DType::F64, {1, 2}, {30, 33});
  expectTensor(results[1], DType::F64, {1, 2}, {36, 39});
  expectTensor(results[2], DType::F64, {1, 2}, {42, 45});
}

TEST(CollectivesTest, AllToAllSendsPartQToRankQ) {
  std::vector<Tensor> results = onEveryRank([](Communicator &comm) {
    return allToAll(comm, rankTensor(comm.rank()), 0, 1);
  });
  // Rank q receives row q of every rank, side by side.
  expectTensor(results[0], DType::F64, {1, 6}, {0, 1, 10, 11, 20, 21});
  expectTensor(results[1], DType::F64, {1, 6}, {2, 3, 12, 13, 22, 23});
  expectTensor(results[2], DType::F64, {1, 6}, {4, 5, 14, 15, 24, 25});
}

TEST(CollectivesTest, AllSliceTakesTheRanksPartWithoutCommunicating) {
  ThreadGroup group(kRanks);
  expectTensor(allSlice(group.communicator(2), rankTensor(0), 0), DType::F64,
               {1, 2}, {4, 5});
}

TEST(CollectivesTest, ReducingTensorsOfDifferentShapesIsAnError) {
  std::vector<std::string> errors(kRanks);
  onEveryRank([&](Communicator &comm) {
    Tensor local = comm.rank() == 1 ? f64({2}, {1, 2}) : rankTensor(0);
    errors[comm.rank()] =
        errorOf([&] { allReduce(comm, local, Reduction::Sum, DType::F64); });
    return Tensor();
  });
  for (const std::string &error : errors)
    EXPECT_TRUE(contains(error, "ranks reduce tensors of different shapes: "
                                "[3, 2] and [2]"))
        << error;
}

TEST(CollectivesTest, UnevenSplitIsAnError) {
  std::string error = errorOf([] { split(rankTensor(0), 1, 3); });
  EXPECT_TRUE(contains(error, "axis 1 of size 2 does not split into 3 equal "
                              "parts"))
      << error;
}

TEST(CollectivesTest, AbortReleasesRanksWaitingForOneThatFailed) {
  ThreadGroup group(kRanks);
  std::vector<std::string> errors(kRanks);
  std::vector<std::thread> threads;
  // Ranks 0 and 1 wait in an all-gather that rank 2 never joins.
  for (int64_t rank = 0; rank < 2; ++rank)
    threads.emplace_back([&, rank] {
      try {
        allGather(group.communicator(rank), rankTensor(rank), 0);
      } catch (const moert::Error &error) {
        errors[rank] = error.what();
      }
    });
  // Abort only once both wait, so that the wake-up is what is tested.
  while (group.waitingRanks() < 2)
    std::this_thread::yield();
  group.abort();
  for (std::thread &thread : threads)
    thread.join();
  for (int64_t rank = 0; rank < 2; ++rank)
    EXPECT_TRUE(contains(errors[rank], "another rank failed")) << errors[rank];
}

// On a 2 x 3 grid, rank 4 stands at (1, 1).
TEST(CollectivesTest, GridGroupsFollowTheAxes) {
  std::vector<int64_t> grid = {2, 3};
  moert::GridGroup rows = moert::gridGroup(grid, {1}, 4);
  EXPECT_EQ(rows.color, 1);
  EXPECT_EQ(rows.index, 1);
  EXPECT_EQ(rows.size, 3);
  EXPECT_EQ(moert::gridGroupMembers(grid, {1}, 4),
            (std::vector<int64_t>{3, 4, 5}));
  moert::GridGroup columns = moert::gridGroup(grid, {0}, 5);
  EXPECT_EQ(columns.color, 2);
  EXPECT_EQ(columns.index, 1);
  EXPECT_EQ(columns.size, 2);
  EXPECT_EQ(moert::gridGroupMembers(grid, {0}, 5),
            (std::vector<int64_t>{2, 5}));
  // Every axis, in the order given: (1, 1) is 1 * 2 + 1 with axis 1 first.
  moert::GridGroup all = moert::gridGroup(grid, {1, 0}, 4);
  EXPECT_EQ(all.color, 0);
  EXPECT_EQ(all.index, 3);
  EXPECT_EQ(all.size, 6);
  EXPECT_EQ(moert::gridGroupMembers(grid, {0, 1}, 2),
            (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
  EXPECT_TRUE(
      contains(errorOf([&] { moert::gridGroup(grid, {2}, 0); }),
               "grid axis 2 is out of range or repeated for a 2-D grid"));
  EXPECT_TRUE(contains(errorOf([&] {
                         moert::gridGroup(grid, {0, 0}, 0);
                       }),
                       "grid axis 0 is out of range or repeated"));
  EXPECT_TRUE(contains(errorOf([&] { moert::gridGroup(grid, {0}, 6); }),
                       "rank 6 is outside a grid of 6 ranks"));
}

// A runtime's communicators by mask: a 2-D grid has masks 1 to 3.
TEST(CollectivesTest, GridCommunicatorsRefuseAxesTheGridLacks) {
  moert::GridCommunicators<int> groups;
  EXPECT_TRUE(contains(errorOf([&] { groups.of(moert::GridAxes{1}); }),
                       "has it joined its group?"));
  groups.byMask.resize(4);
  groups.byMask[3].comm = 7;
  EXPECT_EQ(groups.of(moert::GridAxes{3}).comm, 7);
  for (int32_t mask : {0, 4, -1})
    EXPECT_TRUE(contains(errorOf([&] { groups.of(moert::GridAxes{mask}); }),
                         "a collective over grid axes (mask " +
                             std::to_string(mask) +
                             ") that this process's grid does not have"));
}

// Six ranks as a 2 x 3 grid: sums over each row of the grid, and gathers
// over each column, each group in its own order.
TEST(CollectivesTest, SubgroupsExchangeWithinTheirGroup) {
  std::vector<int64_t> grid = {2, 3};
  std::vector<Tensor> rowSums = onEveryRank(
      [&](Communicator &all) {
        SubgroupCommunicator row(
            all, moert::gridGroupMembers(grid, {1}, all.rank()));
        EXPECT_EQ(row.size(), 3);
        EXPECT_EQ(row.rank(), all.rank() % 3);
        return allReduce(row, f64({1}, {double(all.rank())}), Reduction::Sum,
                         DType::F64);
      },
      6);
  for (int64_t rank = 0; rank < 6; ++rank)
    expectTensor(rowSums[rank], DType::F64, {1}, {rank < 3 ? 3.0 : 12.0});
  std::vector<Tensor> columns = onEveryRank(
      [&](Communicator &all) {
        SubgroupCommunicator column(
            all, moert::gridGroupMembers(grid, {0}, all.rank()));
        return allGather(column, f64({1}, {double(all.rank())}), 0);
      },
      6);
  for (int64_t rank = 0; rank < 6; ++rank)
    expectTensor(columns[rank], DType::F64, {2},
                 {double(rank % 3), double(rank % 3 + 3)});
}

} // namespace
