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

TEST(GlobalPlacementTest, PartsAreRunsOfTheWholeTensor) {
  GridModel grid;
  // Rank 3 is (1, 1) in the 2 x 2 grid.
  moert::RankGroup group{3, 4, 2};
  moert::GlobalPlacement dense =
      moert::placementOf(grid.model, grid.globals[0], group);
  EXPECT_EQ(dense.wholeShape, (Shape{4, 8}));
  EXPECT_EQ(dense.offsetBytes, 0);
  EXPECT_EQ(dense.partAxes, 0);
  EXPECT_EQ(dense.expertAxes, 0);

  moert::GlobalPlacement experts =
      moert::placementOf(grid.model, grid.globals[1], group);
  EXPECT_EQ(experts.wholeShape, (Shape{4, 8}));
  EXPECT_EQ(experts.offsetBytes, 64);
  EXPECT_EQ(experts.expertAxes, 2);

  // Part 3 of 4 of the replicated parameter.
  moert::GlobalPlacement denseMoment =
      moert::placementOf(grid.model, grid.globals[2], group);
  EXPECT_EQ(denseMoment.rankShape, (Shape{4, 8}));
  EXPECT_EQ(denseMoment.wholeShape, (Shape{4, 8}));
  EXPECT_EQ(denseMoment.offsetBytes, 3 * 32);
  EXPECT_EQ(denseMoment.partAxes, 3);
  EXPECT_EQ(denseMoment.expertAxes, 0);

  // Part 1 of 2 (replica 1) of the experts of expert rank 1.
  moert::GlobalPlacement expertMoment =
      moert::placementOf(grid.model, grid.globals[3], group);
  EXPECT_EQ(expertMoment.rankShape, (Shape{2, 8}));
  EXPECT_EQ(expertMoment.rankBytes, 64);
  EXPECT_EQ(expertMoment.wholeShape, (Shape{4, 8}));
  EXPECT_EQ(expertMoment.offsetBytes, 64 + 32);
  EXPECT_EQ(expertMoment.partAxes, 1);
  EXPECT_EQ(expertMoment.expertAxes, 2);

  // Rank 2 is (1, 0): replica 1 of expert rank 0.
  EXPECT_EQ(
      moert::placementOf(grid.model, grid.globals[3], {2, 4, 2}).offsetBytes,
      32);
  EXPECT_EQ(
      moert::placementOf(grid.model, grid.globals[2], {2, 4, 2}).offsetBytes,
      2 * 32);
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
