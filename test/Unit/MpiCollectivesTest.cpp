//===- MpiCollectivesTest.cpp - the MPI collectives of compiled models ----===//
//
// Run under mpirun (test/Target/mpi-collectives.test): every rank checks
// what it receives from moert/Collectives.h over every set of axes of the
// model's grid against what each rank's deterministic inputs must give, bit
// for bit, and prints one line. Inputs depend on the group (its color), so
// that a value from another group shows.
//
//===----------------------------------------------------------------------===//

#include "moert/Collectives.h"
#include "moert/Error.h"
#include "moert/GridGroups.h"

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

using namespace moert::cpu;

namespace {

int failures = 0;

void expect(bool condition, const std::string &what) {
  if (!condition) {
    ++failures;
    std::cerr << "rank " << groupRank() << ": " << what << "\n";
  }
}

bool sameBits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

constexpr int64_t kSegments = 3, kSegmentRows = 4, kRowLength = 5;

/// Value `i` of row `row` of segment `segment` that rank `from` sends to
/// rank `to` of group `color`: a run of nonzero rows of varying length (none
/// to all), an interior zero row that must travel, and a trailing -0 row
/// (not zero in bits) where the run is full.
float exchanged(int64_t color, int64_t from, int64_t to, int64_t segment,
                int64_t row, int64_t i) {
  int64_t rows = (from + 2 * to + segment) % (kSegmentRows + 1);
  if (row >= rows)
    return 0.0f;
  if (row == 0 && rows >= 3)
    return 0.0f;
  if (row == kSegmentRows - 1)
    return -0.0f;
  return static_cast<float>(1 + color * 10000 + from * 1000 + to * 100 +
                            segment * 10 + row) +
         i * 0.125f;
}

void checkAllToAll(moert::GridAxes axes, const moert::GridGroup &group) {
  int64_t size = group.size, rank = group.index, color = group.color;
  int64_t block = kSegments * kSegmentRows * kRowLength;
  std::vector<float> local(size * block), received(size * block, 7.0f);
  for (int64_t to = 0; to < size; ++to)
    for (int64_t s = 0; s < kSegments; ++s)
      for (int64_t row = 0; row < kSegmentRows; ++row)
        for (int64_t i = 0; i < kRowLength; ++i)
          local[((to * kSegments + s) * kSegmentRows + row) * kRowLength + i] =
              exchanged(color, rank, to, s, row, i);
  allToAll(axes, local.data(), size * block, kSegmentRows, kRowLength,
           received.data());
  for (int64_t from = 0; from < size; ++from)
    for (int64_t s = 0; s < kSegments; ++s)
      for (int64_t row = 0; row < kSegmentRows; ++row)
        for (int64_t i = 0; i < kRowLength; ++i)
          expect(
              sameBits(received[((from * kSegments + s) * kSegmentRows + row) *
                                    kRowLength +
                                i],
                       exchanged(color, from, rank, s, row, i)),
              "all-to-all from rank " + std::to_string(from) + ", segment " +
                  std::to_string(s) + ", row " + std::to_string(row));
}

void checkGatherReduceSlice(moert::GridAxes axes,
                            const moert::GridGroup &group) {
  int64_t size = group.size, rank = group.index;
  double offset = 100.0 * group.color;
  // Values whose sum depends on the order: the ranks add in rank order.
  std::vector<float> local = {1e8f * (rank % 2 ? -1 : 1),
                              static_cast<float>(0.5 + rank + offset)};
  std::vector<float> whole(2 * size), sum(2);
  allGather(axes, local.data(), 2, whole.data());
  for (int64_t r = 0; r < size; ++r)
    expect(whole[2 * r + 1] == static_cast<float>(0.5 + r + offset),
           "all-gather");
  allReduceSum(axes, local.data(), 2, sum.data());
  double first = 0, second = 0;
  for (int64_t r = 0; r < size; ++r) {
    first += 1e8 * (r % 2 ? -1 : 1);
    second += 0.5 + r + offset;
  }
  expect(sum[0] == static_cast<float>(first) &&
             sum[1] == static_cast<float>(second),
         "all-reduce");

  std::vector<float> blocks(size), part(1);
  for (int64_t q = 0; q < size; ++q)
    blocks[q] = static_cast<float>(rank * 10 + q + offset);
  reduceScatterSum(axes, blocks.data(), 1, part.data());
  float expected = 0;
  for (int64_t r = 0; r < size; ++r)
    expected += static_cast<float>(r * 10 + rank + offset);
  expect(part[0] == expected, "reduce-scatter");

  // Two groups of one block of two values per rank.
  std::vector<int64_t> grouped(2 * size * 2), mine(4);
  for (size_t i = 0; i < grouped.size(); ++i)
    grouped[i] = static_cast<int64_t>(i);
  allSlice(axes, grouped.data(), 2, 2, mine.data());
  expect(mine[0] == 2 * rank && mine[1] == 2 * rank + 1 &&
             mine[2] == 2 * (size + rank) && mine[3] == 2 * (size + rank) + 1,
         "all-slice");
}

} // namespace

/// A rank count from the command line, parsed strictly, or -1.
long parseRanks(const char *text) {
  char *end = nullptr;
  errno = 0;
  long ranks = std::strtol(text, &end, 10);
  if (*text == '\0' || *end != '\0' || errno == ERANGE || ranks < 1 ||
      ranks > (1 << 20))
    return -1;
  return ranks;
}

int main(int argc, char **argv) {
  std::string usage =
      std::string("usage: mpirun -np P ") + argv[0] + " P [EXPERT_RANKS]\n";
  if (argc == 2 &&
      (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h")) {
    std::cout << usage;
    return 0;
  }
  // P must be the number mpirun started; the expert ranks (default P) make
  // the grid, [P] or [P / EXPERT_RANKS, EXPERT_RANKS].
  long ranks = argc == 2 || argc == 3 ? parseRanks(argv[1]) : -1;
  long expertRanks = argc == 3 ? parseRanks(argv[2]) : ranks;
  if (ranks < 0 || expertRanks < 0) {
    std::cerr << "error: P and EXPERT_RANKS must be rank counts from 1 to "
              << (1 << 20) << "\n"
              << usage;
    return 2;
  }
  std::vector<int64_t> shape;
  try {
    shape = moert::modelGridShape(ranks, expertRanks);
    joinGroup(static_cast<int>(ranks), static_cast<int>(expertRanks));
  } catch (const moert::Error &error) {
    std::cerr << "error: " << error.what() << "\n";
    return 1;
  }
  int64_t rank = groupRank();
  int32_t masks = (int32_t(1) << shape.size()) - 1;
  for (int32_t mask = 1; mask <= masks; ++mask) {
    moert::GridGroup group =
        moert::gridGroup(shape, moert::axesOfMask(mask), rank);
    checkAllToAll(moert::GridAxes{mask}, group);
    checkGatherReduceSlice(moert::GridAxes{mask}, group);
  }
  if (failures == 0)
    std::cout << "rank " << rank << " of " << groupSize()
              << ": all-to-all, all-gather, all-reduce, reduce-scatter and "
                 "all-slice agree over "
              << masks << " set(s) of grid axes\n";
  leaveGroup();
  return failures == 0 ? 0 : 1;
}
