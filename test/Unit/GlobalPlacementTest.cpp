//===- GlobalPlacementTest.cpp - a rank's globals in the whole tensors ----===//
//
// Where a rank's part of a global lies in the whole tensor: the experts'
// rows over the expert axis, the distributed optimizer's flat parts over a
// parameter's copies, and both at once; and the refusal of descriptions
// that do not add up.
//
//===----------------------------------------------------------------------===//

#include "moert/GlobalPlacement.h"
#include "ErrorTestUtils.h"

#include <gtest/gtest.h>

#include <string>

namespace {

using Shape = std::vector<int64_t>;

/// A 2 x 2 grid's model: a replicated [4, 8] parameter, an expert
/// parameter (this rank's [2, 8] of [4, 8]), and each one's Adam moment as
/// the distributed optimizer splits it.
struct GridModel {
  static constexpr int64_t wholeShape[] = {4, 8};
  static constexpr int64_t expertShape[] = {2, 8};
  static constexpr int64_t denseMomentShape[] = {8};
  static constexpr int64_t expertMomentShape[] = {8};
  moe_global globals[4] = {};
  moe_model model{};

  GridModel() {
    globals[0].tensor = {"dense", MOE_F32, 2, wholeShape};
    globals[0].bytes = 128;
    globals[1].tensor = {"experts", MOE_F32, 2, expertShape};
    globals[1].bytes = 64;
    globals[1].sharded = 1;
    // Over both axes (mask 3): a quarter of the replicated parameter.
    globals[2].tensor = {"dense.exp_avg", MOE_F32, 1, denseMomentShape};
    globals[2].bytes = 32;
    globals[2].part_axes = 3;
    globals[2].part_of = 0;
    // Over the replica axis (mask 1): half of this rank's experts.
    globals[3].tensor = {"experts.exp_avg", MOE_F32, 1, expertMomentShape};
    globals[3].bytes = 32;
    globals[3].sharded = 1;
    globals[3].part_axes = 1;
    globals[3].part_of = 1;
    model.ranks = 4;
    model.expert_ranks = 2;
    model.num_globals = 4;
    model.globals = globals;
  }
};

/// A placement's figures as one line, to compare with what a case expects.
std::string describe(const moert::GlobalPlacement &placement) {
  auto shape = [](const Shape &dims) {
    std::string text;
    for (int64_t dim : dims)
      text += (text.empty() ? "" : "x") + std::to_string(dim);
    return text;
  };
  return "rank " + shape(placement.rankShape) + " (" +
         std::to_string(placement.rankBytes) + " bytes), whole " +
         shape(placement.wholeShape) + ", at byte " +
         std::to_string(placement.offsetBytes) + ", part axes " +
         std::to_string(placement.partAxes) + ", expert axes " +
         std::to_string(placement.expertAxes);
}

TEST(GlobalPlacementTest, PartsAreRunsOfTheWholeTensor) {
  GridModel grid;
  struct Case {
    int32_t rank;
    int global;
    const char *expected;
  };
  // Rank 3 is (1, 1) in the 2 x 2 grid: replica 1 of expert rank 1; rank 2
  // is (1, 0). A replicated parameter's moment is part 2 * replica + expert
  // rank of 4, an expert weight's part `replica` of 2 of the rank's experts.
  const Case cases[] = {
      {3, 0,
       "rank 4x8 (128 bytes), whole 4x8, at byte 0, part axes 0, "
       "expert axes 0"},
      {3, 1,
       "rank 2x8 (64 bytes), whole 4x8, at byte 64, part axes 0, "
       "expert axes 2"},
      {3, 2,
       "rank 4x8 (128 bytes), whole 4x8, at byte 96, part axes 3, "
       "expert axes 0"},
      {3, 3,
       "rank 2x8 (64 bytes), whole 4x8, at byte 96, part axes 1, "
       "expert axes 2"},
      {2, 2,
       "rank 4x8 (128 bytes), whole 4x8, at byte 64, part axes 3, "
       "expert axes 0"},
      {2, 3,
       "rank 2x8 (64 bytes), whole 4x8, at byte 32, part axes 1, "
       "expert axes 2"},
  };
  for (const Case &c : cases)
    EXPECT_EQ(describe(moert::placementOf(grid.model, grid.globals[c.global],
                                          {c.rank, 4, 2})),
              c.expected)
        << "rank " << c.rank << ", global " << c.global;
}

TEST(GlobalPlacementTest, InconsistentPartsAreRefused) {
  GridModel grid;
  auto place = [&] {
    moert::placementOf(grid.model, grid.globals[2], {0, 4, 2});
  };
  grid.globals[2].part_of = 7;
  EXPECT_EQ(moe::test::errorOf(place), "global 'dense.exp_avg' is a part of "
                                       "global 7, which the model lacks");
  grid.globals[2].part_of = 0;
  grid.globals[2].part_axes = 1;
  EXPECT_EQ(moe::test::errorOf(place), "global 'dense.exp_avg' is not one of 2 "
                                       "equal parts of 'dense'");
}

} // namespace
