//===- GlobalPlacementTest.cpp - a rank's globals in the whole tensors ----===//
//
// Where a rank's part of a global lies in the whole tensor: the experts'
// rows over the expert axis, the distributed optimizer's flat parts over a
// parameter's copies (padded to a multiple of them), and both at once; and
// the refusal of descriptions that do not add up.
//
//===----------------------------------------------------------------------===//

#include "moert/GlobalPlacement.h"
#include "ErrorTestUtils.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

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
         std::to_string(placement.offsetBytes) + " (" +
         std::to_string(placement.runBytes) + " in it, parts " +
         std::to_string(placement.partsBytes) + "), part axes " +
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
       "rank 4x8 (128 bytes), whole 4x8, at byte 0 (128 in it, parts 0), "
       "part axes 0, expert axes 0"},
      {3, 1,
       "rank 2x8 (64 bytes), whole 4x8, at byte 64 (64 in it, parts 0), "
       "part axes 0, expert axes 2"},
      {3, 2,
       "rank 4x8 (128 bytes), whole 4x8, at byte 96 (32 in it, parts 128), "
       "part axes 3, expert axes 0"},
      {3, 3,
       "rank 2x8 (64 bytes), whole 4x8, at byte 96 (32 in it, parts 64), "
       "part axes 1, expert axes 2"},
      {2, 2,
       "rank 4x8 (128 bytes), whole 4x8, at byte 64 (32 in it, parts 128), "
       "part axes 3, expert axes 0"},
      {2, 3,
       "rank 2x8 (64 bytes), whole 4x8, at byte 32 (32 in it, parts 64), "
       "part axes 1, expert axes 2"},
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
  EXPECT_EQ(moe::test::errorOf(place),
            "global 'dense.exp_avg' is not one of 2 equal parts of 'dense' "
            "(padded with zeros to a multiple of 2)");
}

/// 3 ranks that each hold a [2, 5] parameter and a third of its moment,
/// padded to 3 parts of 4 elements; and a [4] one, whose last part is all
/// padding (3 parts of 2).
struct PaddedModel {
  static constexpr int64_t shape[] = {2, 5};
  static constexpr int64_t partShape[] = {4};
  static constexpr int64_t smallShape[] = {4};
  static constexpr int64_t smallPartShape[] = {2};
  moe_global globals[4] = {};
  moe_model model{};

  PaddedModel() {
    globals[0].tensor = {"w", MOE_F32, 2, shape};
    globals[0].bytes = 40;
    globals[1].tensor = {"w.exp_avg", MOE_F32, 1, partShape};
    globals[1].bytes = 16;
    globals[1].part_axes = 1;
    globals[1].part_of = 0;
    globals[2].tensor = {"b", MOE_F32, 1, smallShape};
    globals[2].bytes = 16;
    globals[3].tensor = {"b.exp_avg", MOE_F32, 1, smallPartShape};
    globals[3].bytes = 8;
    globals[3].part_axes = 1;
    globals[3].part_of = 2;
    model.ranks = 3;
    model.expert_ranks = 1;
    model.num_globals = 4;
    model.globals = globals;
  }
};

TEST(GlobalPlacementTest, LastPartsEndInPadding) {
  PaddedModel padded;
  const char *expected[][2] = {
      {"rank 2x5 (40 bytes), whole 2x5, at byte 0 (16 in it, parts 48), "
       "part axes 1, expert axes 0",
       "rank 4 (16 bytes), whole 4, at byte 0 (8 in it, parts 24), part "
       "axes 1, expert axes 0"},
      {"rank 2x5 (40 bytes), whole 2x5, at byte 16 (16 in it, parts 48), "
       "part axes 1, expert axes 0",
       "rank 4 (16 bytes), whole 4, at byte 8 (8 in it, parts 24), part "
       "axes 1, expert axes 0"},
      {"rank 2x5 (40 bytes), whole 2x5, at byte 32 (8 in it, parts 48), "
       "part axes 1, expert axes 0",
       "rank 4 (16 bytes), whole 4, at byte 16 (0 in it, parts 24), part "
       "axes 1, expert axes 0"},
  };
  for (int32_t rank = 0; rank < 3; ++rank)
    for (int part = 0; part < 2; ++part)
      EXPECT_EQ(describe(moert::placementOf(
                    padded.model, padded.globals[2 * part + 1], {rank, 3, 1})),
                expected[rank][part])
          << "rank " << rank << ", part " << part;

  // A part's run comes from the whole tensor, its padding is zero.
  const float whole[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  float part[4] = {-1, -1, -1, -1};
  moert::copyRunOf(padded.model, padded.globals[1], {2, 3, 1}, whole, part);
  EXPECT_EQ(std::vector<float>(part, part + 4),
            (std::vector<float>{9, 10, 0, 0}));
  moert::copyRunOf(padded.model, padded.globals[1], {1, 3, 1}, whole, part);
  EXPECT_EQ(std::vector<float>(part, part + 4),
            (std::vector<float>{5, 6, 7, 8}));

  // Parts of 3 (as 4 ranks would hold) are no part of 3 ranks' padding.
  padded.globals[1].bytes = 12;
  EXPECT_EQ(moe::test::errorOf([&] {
              moert::placementOf(padded.model, padded.globals[1], {0, 3, 1});
            }),
            "global 'w.exp_avg' is not one of 3 equal parts of 'w' (padded "
            "with zeros to a multiple of 3)");
}

TEST(GlobalPlacementTest, PaddedExpertPartsStayInTheirShard) {
  // 2 replicas of 2 expert ranks: each rank holds a [1, 5] shard of a
  // [2, 5] expert weight, and its moment is one of 2 parts of 3 over the
  // replicas. Rank 2 (replica 1, expert rank 0) holds elements 3-4 of
  // shard 0 and a zero, not shard 1's first element.
  static constexpr int64_t shardShape[] = {1, 5};
  static constexpr int64_t partShape[] = {3};
  moe_global globals[2] = {};
  globals[0].tensor = {"experts", MOE_F32, 2, shardShape};
  globals[0].bytes = 20;
  globals[0].sharded = 1;
  globals[1].tensor = {"experts.exp_avg", MOE_F32, 1, partShape};
  globals[1].bytes = 12;
  globals[1].sharded = 1;
  globals[1].part_axes = 1;
  globals[1].part_of = 0;
  moe_model model{};
  model.ranks = 4;
  model.expert_ranks = 2;
  model.num_globals = 2;
  model.globals = globals;
  const float whole[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  const std::vector<float> expected[4] = {
      {1, 2, 3}, {6, 7, 8}, {4, 5, 0}, {9, 10, 0}};
  for (int32_t rank = 0; rank < 4; ++rank) {
    float part[3] = {-1, -1, -1};
    moert::copyRunOf(model, globals[1], {rank, 4, 2}, whole, part);
    EXPECT_EQ(std::vector<float>(part, part + 3), expected[rank])
        << "rank " << rank;
  }
  EXPECT_EQ(describe(moert::placementOf(model, globals[1], {2, 4, 2})),
            "rank 1x5 (20 bytes), whole 2x5, at byte 12 (8 in it, parts 24), "
            "part axes 1, expert axes 2");
}

} // namespace
