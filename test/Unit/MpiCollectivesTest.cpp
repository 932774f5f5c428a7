//===- MpiCollectivesTest.cpp - the MPI collectives of compiled models ----===//
//
// Run under mpirun (test/Target/mpi-collectives.test): every rank checks
// what it receives from moert/Collectives.h against what each rank's
// deterministic inputs must give, bit for bit, and prints one line.
//
//===----------------------------------------------------------------------===//

#include "moert/Collectives.h"
#include "moert/Error.h"

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
/// rank `to`: a run of nonzero rows of varying length (none to all), an
/// interior zero row that must travel, and a trailing -0 row (not zero in
/// bits) where the run is full.
float exchanged(int64_t from, int64_t to, int64_t segment, int64_t row,
                int64_t i) {
  int64_t rows = (from + 2 * to + segment) % (kSegmentRows + 1);
  if (row >= rows)
    return 0.0f;
  if (row == 0 && rows >= 3)
    return 0.0f;
  if (row == kSegmentRows - 1)
    return -0.0f;
  return static_cast<float>(1 + from * 1000 + to * 100 + segment * 10 + row) +
         i * 0.125f;
}

void checkAllToAll(int64_t size, int64_t rank) {
  int64_t block = kSegments * kSegmentRows * kRowLength;
  std::vector<float> local(size * block), received(size * block, 7.0f);
  for (int64_t to = 0; to < size; ++to)
    for (int64_t s = 0; s < kSegments; ++s)
      for (int64_t row = 0; row < kSegmentRows; ++row)
        for (int64_t i = 0; i < kRowLength; ++i)
          local[((to * kSegments + s) * kSegmentRows + row) * kRowLength + i] =
              exchanged(rank, to, s, row, i);
  allToAll(local.data(), size * block, kSegmentRows, kRowLength,
           received.data());
  for (int64_t from = 0; from < size; ++from)
    for (int64_t s = 0; s < kSegments; ++s)
      for (int64_t row = 0; row < kSegmentRows; ++row)
        for (int64_t i = 0; i < kRowLength; ++i)
          expect(
              sameBits(received[((from * kSegments + s) * kSegmentRows + row) *
                                    kRowLength +
                                i],
                       exchanged(from, rank, s, row, i)),
              "all-to-all from rank " + std::to_string(from) + ", segment " +
                  std::to_string(s) + ", row " + std::to_string(row));
}

void checkGatherReduceSlice(int64_t size, int64_t rank) {
  // Values whose sum depends on the order: the ranks add in rank order.
  std::vector<float> local = {1e8f * (rank % 2 ? -1 : 1), 0.5f + rank};
  std::vector<float> whole(2 * size), sum(2);
  allGather(local.data(), 2, whole.data());
  for (int64_t r = 0; r < size; ++r)
    expect(whole[2 * r + 1] == 0.5f + r, "all-gather");
  allReduceSum(local.data(), 2, sum.data());
  double first = 0, second = 0;
  for (int64_t r = 0; r < size; ++r) {
    first += 1e8 * (r % 2 ? -1 : 1);
    second += 0.5 + r;
  }
  expect(sum[0] == static_cast<float>(first) &&
             sum[1] == static_cast<float>(second),
         "all-reduce");

  std::vector<float> blocks(size), part(1);
  for (int64_t q = 0; q < size; ++q)
    blocks[q] = static_cast<float>(rank * 10 + q);
  reduceScatterSum(blocks.data(), 1, part.data());
  float expected = 0;
  for (int64_t r = 0; r < size; ++r)
    expected += static_cast<float>(r * 10 + rank);
  expect(part[0] == expected, "reduce-scatter");

  // Two groups of one block of two values per rank.
  std::vector<int64_t> grouped(2 * size * 2), mine(4);
  for (size_t i = 0; i < grouped.size(); ++i)
    grouped[i] = static_cast<int64_t>(i);
  allSlice(grouped.data(), 2, 2, mine.data());
  expect(mine[0] == 2 * rank && mine[1] == 2 * rank + 1 &&
             mine[2] == 2 * (size + rank) && mine[3] == 2 * (size + rank) + 1,
         "all-slice");
}

} // namespace

int main(int argc, char **argv) {
  std::string usage = std::string("usage: mpirun -np P ") + argv[0] + " P\n";
  if (argc == 2 &&
      (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h")) {
    std::cout << usage;
    return 0;
  }
  // The group size, parsed strictly: P must be the number mpirun started.
  char *end = nullptr;
  errno = 0;
  long ranks = argc == 2 ? std::strtol(argv[1], &end, 10) : 0;
  if (argc != 2 || *argv[1] == '\0' || *end != '\0' || errno == ERANGE ||
      ranks < 1 || ranks > (1 << 20)) {
    std::cerr << "error: P must be a rank count from 1 to " << (1 << 20) << "\n"
              << usage;
    return 2;
  }
  try {
    joinGroup(static_cast<int>(ranks));
  } catch (const moert::Error &error) {
    std::cerr << "error: " << error.what() << "\n";
    return 1;
  }
  int64_t size = groupSize(), rank = groupRank();
  checkAllToAll(size, rank);
  checkGatherReduceSlice(size, rank);
  if (failures == 0)
    std::cout << "rank " << rank << " of " << size
              << ": all-to-all, all-gather, all-reduce, reduce-scatter and "
                 "all-slice agree\n";
  leaveGroup();
  return failures == 0 ? 0 : 1;
}
