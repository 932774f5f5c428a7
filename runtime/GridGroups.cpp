//===- GridGroups.cpp - the process groups of a grid's axes ---------------===//

#include "moert/GridGroups.h"

#include "moert/Error.h"

namespace {

/// `rank`'s coordinates on the grid `shape` (row-major).
std::vector<int64_t> coordinates(const std::vector<int64_t> &shape,
                                 int64_t rank) {
  int64_t ranks = 1;
  for (int64_t extent : shape)
    ranks *= extent;
  if (rank < 0 || rank >= ranks)
    moert::fail("rank {} is outside a grid of {} ranks", rank, ranks);
  std::vector<int64_t> position(shape.size());
  for (size_t axis = shape.size(); axis-- > 0;) {
    position[axis] = rank % shape[axis];
    rank /= shape[axis];
  }
  return position;
}

} // namespace

std::vector<int64_t> moert::modelGridShape(int64_t ranks, int64_t expertRanks) {
  if (ranks < 1 || expertRanks < 1 || ranks % expertRanks != 0)
    fail("{} ranks that share the experts do not divide {} ranks", expertRanks,
         ranks);
  if (expertRanks == ranks)
    return {ranks};
  return {ranks / expertRanks, expertRanks};
}

void moert::failNoGridAxes(int32_t mask) {
  fail("a collective over grid axes (mask {}) that this process's grid does "
       "not have: has it joined its group?",
       mask);
}

std::vector<int64_t> moert::axesOfMask(int32_t mask) {
  std::vector<int64_t> axes;
  for (int64_t axis = 0; axis < 31; ++axis)
    if (mask & (int32_t(1) << axis))
      axes.push_back(axis);
  return axes;
}

moert::GridGroup moert::gridGroup(const std::vector<int64_t> &shape,
                                  const std::vector<int64_t> &axes,
                                  int64_t rank) {
  std::vector<int64_t> position = coordinates(shape, rank);
  std::vector<bool> inGroup(shape.size(), false);
  GridGroup group;
  for (int64_t axis : axes) {
    if (axis < 0 || axis >= static_cast<int64_t>(shape.size()) || inGroup[axis])
      fail("grid axis {} is out of range or repeated for a {}-D grid", axis,
           shape.size());
    inGroup[axis] = true;
    group.index = group.index * shape[axis] + position[axis];
    group.size *= shape[axis];
  }
  for (size_t axis = 0; axis < shape.size(); ++axis)
    if (!inGroup[axis])
      group.color = group.color * shape[axis] + position[axis];
  return group;
}

std::vector<int64_t> moert::gridGroupMembers(const std::vector<int64_t> &shape,
                                             const std::vector<int64_t> &axes,
                                             int64_t rank) {
  GridGroup mine = gridGroup(shape, axes, rank);
  std::vector<int64_t> members(mine.size);
  int64_t ranks = 1;
  for (int64_t extent : shape)
    ranks *= extent;
  for (int64_t other = 0; other < ranks; ++other) {
    GridGroup theirs = gridGroup(shape, axes, other);
    if (theirs.color == mine.color)
      members[theirs.index] = other;
  }
  return members;
}
