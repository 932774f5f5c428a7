//===- CollectivesTest.cpp - the interpreter's collectives ----------------===//
//
// Three ranks as threads, each with its own tensor, worked out by hand:
// rank r holds [[10r, 10r + 1], [10r + 2, 10r + 3], [10r + 4, 10r + 5]].
//
//===----------------------------------------------------------------------===//

#include "TestUtils.h"

#include "moe/Interpreter/Collectives.h"

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
onEveryRank(const std::function<Tensor(Communicator &)> &body) {
  ThreadGroup group(kRanks);
  std::vector<Tensor> results(kRanks);
  std::vector<std::thread> threads;
  for (int64_t rank = 0; rank < kRanks; ++rank)
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

} // namespace
