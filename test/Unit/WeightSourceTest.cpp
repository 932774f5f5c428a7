//===- WeightSourceTest.cpp - Hugging Face weights under our names -------===//
//
// moert::WeightSource's layouts and dtypes, and moert::toHuggingFace's
// names, which it reads back.
//
//===----------------------------------------------------------------------===//

#include "moert/WeightSource.h"
#include "moe/Interpreter/Tensor.h"
#include "moert/Error.h"
#include "moert/Safetensors.h"

#include "TemporaryDirectory.h"
#include "TestUtils.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <set>
#include <string>
#include <vector>

using moert::DType;
using moert::SafetensorsReader;
using moert::TensorView;

using namespace moe::test;

namespace {

/// Gives every test its own empty directory and removes it afterwards.
class WeightSourceTest : public ::testing::Test {
protected:
  std::string pathOf(const std::string &name) const {
    return directory.pathOf(name);
  }

  TemporaryDirectory directory{"moe-weight-source"};
};

} // namespace

template <typename T>
static std::vector<T> valuesOf(const moert::OwnedTensor &tensor) {
  std::vector<T> values(tensor.data.size() / sizeof(T));
  std::memcpy(values.data(), tensor.data.data(), tensor.data.size());
  return values;
}

TEST_F(WeightSourceTest, HalfPrecisionTensorsConvertExactly) {
  // bf16: 1, -2.5, 3.140625; f16: 1, -2.5, 2^-24 (the smallest subnormal),
  // 65504 (the largest finite); then an f16 infinity and a bf16 NaN.
  uint16_t bf16[] = {0x3F80, 0xC020, 0x4049};
  uint16_t f16[] = {0x3C00, 0xC100, 0x0001, 0x7BFF};
  uint16_t f16Infinity[] = {0x3C00, 0x7C00};
  uint16_t bf16NaN[] = {0x7FC0};
  std::string path = pathOf("half.safetensors");
  moert::writeSafetensors(path, {{"b", DType::BF16, {3}, bf16},
                                 {"h", DType::F16, {4}, f16},
                                 {"hinf", DType::F16, {2}, f16Infinity},
                                 {"bnan", DType::BF16, {1}, bf16NaN}});
  moert::WeightSource source(path);
  EXPECT_EQ(valuesOf<float>(source.get("b", DType::F32)),
            (std::vector<float>{1, -2.5f, 3.140625f}));
  EXPECT_EQ(valuesOf<double>(source.get("h", DType::F64)),
            (std::vector<double>{1, -2.5, std::ldexp(1.0, -24), 65504}));
  // Weights are read finite.
  std::string infinity = errorOf([&] { source.get("hinf", DType::F64); });
  EXPECT_TRUE(contains(infinity, path + ": tensor 'hinf' holds inf at "
                                        "element 1"))
      << infinity;
  std::string nan = errorOf([&] { source.get("bnan", DType::F32); });
  EXPECT_TRUE(contains(nan, "tensor 'bnan' holds nan at element 0")) << nan;
  // Computing with them is refused by name, not misread.
  std::string message = errorOf(
      [&] { Tensor::fromView(SafetensorsReader(path).getTensors()[0]); });
  EXPECT_TRUE(contains(message, "BF16 tensors are read and converted"))
      << message;
}

TEST_F(WeightSourceTest, PerExpertTensorsStackInExpertOrder) {
  float expert0[] = {0, 1, 2, 3, 4, 5}, expert1[] = {6, 7, 8, 9, 10, 11};
  std::string path = pathOf("experts.safetensors");
  std::string prefix = "model.layers.3.block_sparse_moe.experts.";
  moert::writeSafetensors(
      path, {{prefix + "1.w1.weight", DType::F32, {2, 3}, expert1},
             {prefix + "0.w1.weight", DType::F32, {2, 3}, expert0}});
  moert::WeightSource source(path);
  EXPECT_EQ(source.names(), std::set<std::string>{prefix + "w1"});
  moert::OwnedTensor stacked = source.get(prefix + "w1", DType::F32);
  EXPECT_EQ(stacked.shape, (std::vector<int64_t>{2, 2, 3}));
  EXPECT_EQ(valuesOf<float>(stacked),
            (std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}));
}

TEST_F(WeightSourceTest, PerExpertTensorsOfDifferentShapesDoNotStack) {
  // Expert 1 has a row fewer than expert 0: stacked, its bytes would not
  // fill the [2, 2, 3] the first expert's shape gives the whole.
  float expert0[] = {0, 1, 2, 3, 4, 5}, expert1[] = {6, 7, 8};
  std::string path = pathOf("ragged.safetensors");
  std::string prefix = "model.layers.0.block_sparse_moe.experts.";
  moert::writeSafetensors(
      path, {{prefix + "0.w1.weight", DType::F32, {2, 3}, expert0},
             {prefix + "1.w1.weight", DType::F32, {1, 3}, expert1}});
  moert::WeightSource source(path);
  std::string message = errorOf([&] { source.get(prefix + "w1", DType::F32); });
  EXPECT_TRUE(contains(message, "expert tensors of '" + prefix +
                                    "w1' differ in shape: '" + prefix +
                                    "0.w1.weight' is [2, 3], '" + prefix +
                                    "1.w1.weight' is [1, 3]"))
      << message;
}

TEST_F(WeightSourceTest, FusedGateUpSplitsIntoGateAndUp) {
  // 2 experts of [2 x 2 intermediate rows, 1 hidden column]: per expert,
  // rows 0-1 are the gate, rows 2-3 the up projection.
  float gateUp[] = {0, 1, 2, 3, 4, 5, 6, 7};
  std::string path = pathOf("fused.safetensors");
  moert::writeSafetensors(path, {{"model.layers.0.mlp.experts.gate_up_proj",
                                  DType::F32,
                                  {2, 4, 1},
                                  gateUp}});
  moert::WeightSource source(path);
  std::string prefix = "model.layers.0.block_sparse_moe.experts.";
  EXPECT_EQ(valuesOf<float>(source.get(prefix + "w1", DType::F32)),
            (std::vector<float>{0, 1, 4, 5}));
  EXPECT_EQ(valuesOf<float>(source.get(prefix + "w3", DType::F32)),
            (std::vector<float>{2, 3, 6, 7}));
  EXPECT_EQ(source.get(prefix + "w3", DType::F32).shape,
            (std::vector<int64_t>{2, 2, 1}));
}

TEST_F(WeightSourceTest, IntegersDoNotBecomeFloats) {
  int32_t ids[] = {1, 2};
  std::string path = pathOf("ids.safetensors");
  moert::writeSafetensors(path, {{"ids", DType::I32, {2}, ids}});
  std::string message =
      errorOf([&] { moert::WeightSource(path).get("ids", DType::F32); });
  EXPECT_TRUE(
      contains(message, "tensor 'ids' is I32, which does not convert to F32"))
      << message;
}

TEST_F(WeightSourceTest, F64BeyondF32IsRefusedAsF32) {
  // Finite in f64, infinite once narrowed: an f32 weight is read finite.
  double weights[] = {1.5, 1e300};
  std::string path = pathOf("huge.safetensors");
  moert::writeSafetensors(path, {{"w", DType::F64, {2}, weights}});
  moert::WeightSource source(path);
  EXPECT_EQ(valuesOf<double>(source.get("w", DType::F64))[1], 1e300);
  std::string message = errorOf([&] { source.get("w", DType::F32); });
  EXPECT_TRUE(contains(message, path + ": tensor 'w' holds 1e+300 at element "
                                       "1, beyond f32's range"))
      << message;
}

TEST_F(WeightSourceTest, AGlobalComesFromOneLayoutOnly) {
  // Expert 0 per expert, and the whole stacked tensor too: refused, naming
  // both tensors.
  float expert[] = {0, 1}, stacked[] = {0, 1, 2, 3};
  std::string path = pathOf("mixed.safetensors");
  std::string prefix = "model.layers.0.block_sparse_moe.experts.";
  moert::writeSafetensors(path,
                          {{prefix + "0.w2.weight", DType::F32, {1, 2}, expert},
                           {prefix + "w2", DType::F32, {2, 1, 2}, stacked}});
  std::string message = errorOf([&] { moert::WeightSource source(path); });
  EXPECT_TRUE(contains(message, "gives '" + prefix + "w2' a second time"))
      << message;
}

moert::OwnedTensor tensorOf(std::vector<float> values,
                            std::vector<int64_t> shape) {
  moert::OwnedTensor tensor{DType::F32, std::move(shape), {}};
  tensor.data.assign(reinterpret_cast<const char *>(values.data()),
                     reinterpret_cast<const char *>(values.data()) +
                         values.size() * sizeof(float));
  return tensor;
}

TEST_F(WeightSourceTest, GraniteExpertsFuseGateRowsFirstAndReadBack) {
  std::string prefix = "model.layers.0.block_sparse_moe.";
  // Two experts, each a [1, 2] gate and up projection.
  moert::OwnedTensor gate = tensorOf({1, 2, 3, 4}, {2, 1, 2});
  moert::OwnedTensor up = tensorOf({5, 6, 7, 8}, {2, 1, 2});
  auto pieces =
      moert::toHuggingFace({{prefix + "experts.w3", up},
                            {prefix + "gate.weight", tensorOf({9, 10}, {1, 2})},
                            {prefix + "experts.w1", gate}},
                           moert::ExpertNames::Granite);
  ASSERT_EQ(pieces.size(), 2u);
  EXPECT_EQ(pieces[0].first, prefix + "router.layer.weight");
  EXPECT_EQ(pieces[1].first, prefix + "input_linear.weight");
  EXPECT_EQ(pieces[1].second.shape, (std::vector<int64_t>{2, 2, 2}));
  EXPECT_EQ(pieces[1].second.data,
            tensorOf({1, 2, 5, 6, 3, 4, 7, 8}, {2, 2, 2}).data);
  std::vector<TensorView> views;
  for (const auto &[pieceName, tensor] : pieces)
    views.push_back(tensor.view(pieceName));
  std::string path = pathOf("granite.safetensors");
  moert::writeSafetensors(path, views);
  moert::WeightSource source(path);
  EXPECT_EQ(source.get(prefix + "experts.w1", DType::F32).data, gate.data);
  EXPECT_EQ(source.get(prefix + "experts.w3", DType::F32).data, up.data);
  EXPECT_TRUE(source.contains(prefix + "gate.weight"));
}

TEST_F(WeightSourceTest, GraniteSharedMlpFusesGateRowsFirstAndReadsBack) {
  std::string ours = "model.layers.1.mlp.shared_experts.";
  std::string theirs = "model.layers.1.shared_mlp.";
  // A shared MLP 2 wide on a hidden state of 1.
  moert::OwnedTensor gate = tensorOf({1, 2}, {2, 1});
  moert::OwnedTensor up = tensorOf({3, 4}, {2, 1});
  moert::OwnedTensor down = tensorOf({5, 6}, {1, 2});
  auto pieces = moert::toHuggingFace({{ours + "up_proj.weight", up},
                                      {ours + "down_proj.weight", down},
                                      {ours + "gate_proj.weight", gate}},
                                     moert::ExpertNames::Granite);
  ASSERT_EQ(pieces.size(), 2u);
  EXPECT_EQ(pieces[0].first, theirs + "output_linear.weight");
  EXPECT_EQ(pieces[1].first, theirs + "input_linear.weight");
  EXPECT_EQ(pieces[1].second.shape, (std::vector<int64_t>{4, 1}));
  EXPECT_EQ(pieces[1].second.data, tensorOf({1, 2, 3, 4}, {4, 1}).data);
  std::vector<TensorView> views;
  for (const auto &[pieceName, tensor] : pieces)
    views.push_back(tensor.view(pieceName));
  std::string path = pathOf("granite-shared.safetensors");
  moert::writeSafetensors(path, views);
  moert::WeightSource source(path);
  EXPECT_EQ(source.get(ours + "gate_proj.weight", DType::F32).data, gate.data);
  EXPECT_EQ(source.get(ours + "up_proj.weight", DType::F32).data, up.data);
  EXPECT_EQ(source.get(ours + "down_proj.weight", DType::F32).data, down.data);

  // Fused rows that do not halve, or an expert's rank, are refused.
  float odd[] = {1, 2, 3};
  std::string oddPath = pathOf("granite-odd.safetensors");
  moert::writeSafetensors(
      oddPath, {{theirs + "input_linear.weight", DType::F32, {3, 1}, odd}});
  std::string message = errorOf([&] { moert::WeightSource odd(oddPath); });
  EXPECT_TRUE(contains(message, "tensor '" + theirs +
                                    "input_linear.weight' is [3, 1], not [2 "
                                    "x intermediate, hidden]"))
      << message;
  std::string stackedPath = pathOf("granite-stacked.safetensors");
  moert::writeSafetensors(
      stackedPath,
      {{theirs + "input_linear.weight", DType::F32, {1, 2, 1}, odd}});
  message = errorOf([&] { moert::WeightSource stacked(stackedPath); });
  EXPECT_TRUE(contains(message, "is [1, 2, 1], not [2 x intermediate, "
                                "hidden]"))
      << message;
}

TEST_F(WeightSourceTest, ExportedExpertsReadBackBitForBit) {
  float values[] = {0.1f, -2, 3e-30f, 4, 5, 6};
  moert::OwnedTensor stacked{DType::F32, {3, 2, 1}, {}};
  stacked.data.assign(reinterpret_cast<const char *>(values),
                      reinterpret_cast<const char *>(values) + sizeof(values));
  std::string name = "model.layers.2.block_sparse_moe.experts.w3";
  auto pieces = moert::toHuggingFace({{name, stacked}});
  ASSERT_EQ(pieces.size(), 3u);
  EXPECT_EQ(pieces[1].first,
            "model.layers.2.block_sparse_moe.experts.1.w3.weight");
  std::vector<TensorView> views;
  for (const auto &[pieceName, tensor] : pieces)
    views.push_back(tensor.view(pieceName));
  std::string path = pathOf("exported.safetensors");
  moert::writeSafetensors(path, views);
  moert::OwnedTensor back = moert::WeightSource(path).get(name, DType::F32);
  EXPECT_EQ(back.shape, stacked.shape);
  EXPECT_EQ(back.data, stacked.data);
}
