//===- moe-export.cpp - a checkpoint to a Hugging Face model folder -------===//
//
// Writes what transformers' AutoModelForCausalLM.from_pretrained loads: a
// config.json (model_type mixtral, or llama for a dense model, with the
// keys transformers needs and the model's own, Skywork's gating keys
// included) and the trainable weights under Hugging Face's names in
// safetensors files, experts one tensor each as save_pretrained writes
// them, sharded with an index above --max-shard-size. The weights come
// from a training checkpoint (which records its config) or any file
// moe-run --params reads, with --config.
//
//===----------------------------------------------------------------------===//

#include "moe/Frontend/ModelBuilder.h"
#include "moe/Frontend/ModelConfig.h"
#include "moe/InitAllDialects.h"
#include "moe/MoeDialect.h"
#include "moe/Support/ToolCommandLine.h"
#include "moe/Support/ToolFiles.h"
#include "moert/AtomicFile.h"
#include "moert/Checkpoint.h"
#include "moert/Error.h"
#include "moert/Files.h"
#include "moert/WeightSource.h"

#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <sys/stat.h>

using namespace mlir;
namespace cl = llvm::cl;
using nlohmann::json;

static cl::OptionCategory toolOptions("moe-export options");

static cl::opt<std::string>
    inputPath(cl::cat(toolOptions), cl::Positional, cl::Required,
              cl::desc("<checkpoint or weights.safetensors>"));
static cl::opt<std::string>
    outputDir(cl::cat(toolOptions), "o", cl::Required,
              cl::desc("Folder to write (new or empty)"),
              cl::value_desc("dir"));
static cl::opt<std::string>
    configPath(cl::cat(toolOptions), "config",
               cl::desc("The model's config.json (default: the one the "
                        "checkpoint records)"),
               cl::value_desc("file"));
static cl::opt<uint64_t> maxShardBytes(
    cl::cat(toolOptions), "max-shard-size", cl::init(5'000'000'000),
    cl::desc("Largest safetensors file before sharding, in bytes"));

/// The config text: --config, or what the checkpoint's metadata records.
static std::string configText(const moert::WeightSource &source) {
  // A Hugging Face folder has its config.json.
  if (configPath.empty() && llvm::sys::fs::is_directory(inputPath))
    configPath = inputPath + "/config.json";
  if (!configPath.empty()) {
    std::vector<char> text = moert::readRegularFile(configPath, "config");
    return std::string(text.begin(), text.end());
  }
  if (!source.getMetadata().count("moe"))
    moert::fail("{}: records no config (not a training checkpoint): give "
                "--config",
                inputPath.getValue());
  std::string config =
      moert::parseCheckpointRun(inputPath, source.getMetadata()).config;
  if (config.empty())
    moert::fail("{}: records no config (its model was compiled from IR "
                "without one): give --config",
                inputPath.getValue());
  return config;
}

/// config.json for transformers: the model's keys, plus the architecture
/// and every key transformers reads that the model leaves at our default.
static json huggingFaceConfig(const std::string &text,
                              const moe::ModelConfig &config) {
  json out = json::parse(text, nullptr, /*allow_exceptions=*/false);
  bool moe = config.isMoe();
  out["architectures"] = {moe ? "MixtralForCausalLM" : "LlamaForCausalLM"};
  out["model_type"] = moe ? "mixtral" : "llama";
  out["num_key_value_heads"] = config.numKvHeads;
  if (!out.contains("rope_parameters"))
    out["rope_theta"] = config.ropeTheta;
  out["rms_norm_eps"] = config.rmsNormEps;
  out["tie_word_embeddings"] = config.tieWordEmbeddings;
  out["hidden_act"] = "silu";
  // transformers 5 types these float and refuses an integer such as 0.
  for (const char *key : {"attention_dropout", "initializer_range",
                          "router_aux_loss_coef", "router_jitter_noise"})
    if (out.contains(key) && out[key].is_number_integer())
      out[key] = out[key].get<double>();
  out.erase("torch_dtype");
  out["dtype"] = "float32";
  if (moe) {
    if (out.contains("num_experts")) {
      out.erase("num_experts");
      out["num_local_experts"] = config.numExperts;
    }
    // transformers' Mixtral sizes its experts by intermediate_size.
    out.erase("moe_intermediate_size");
    out["intermediate_size"] = config.expertIntermediateSize;
    out["sliding_window"] = nullptr;
    // Named, since a Mixtral config that names no kind imports with
    // transformers' pooled loss.
    if (!config.pooledAuxLoss)
      out["moe_aux_loss_kind"] = config.auxLossKind == moe::AuxLossKind::switch_
                                     ? "switch"
                                     : "skywork";
  }
  return out;
}

/// What transformers computes differently from the model, said once.
static void noteDifferences(const moe::ModelConfig &config) {
  if (!config.isMoe())
    return;
  auto note = [](const char *what) {
    fmt::print(stderr, "moe-export: note: {}\n", what);
  };
  if (config.gateNormLambda)
    note("transformers' Mixtral has no gating logit normalization: its "
         "routing (and logits) will differ");
  if (config.capacityFactor)
    note("transformers' Mixtral is dropless: where this model drops tokens "
         "over capacity, its logits will differ");
  if (!config.renormalize)
    note("transformers' Mixtral renormalizes the top-k gate values");
  if (!config.pooledAuxLoss)
    note("transformers trains Mixtral with its own load-balancing loss (over "
         "all layers' tokens pooled, with output_router_logits), not this "
         "model's per-layer one; moe_aux_loss_kind keeps ours for moe-import");
}

static void writeText(const std::string &path, const std::string &text) {
  moert::AtomicFile file(path);
  file.write(text.data(), text.size());
  file.commit();
}

namespace {

/// The export's files, written into a new folder beside the output that
/// becomes the output only once every file is complete: a failure (a full
/// disk) removes it, and a killed export leaves it under its own name, so
/// that neither leaves a partial model where transformers would look, nor
/// a non-empty output folder that a rerun refuses.
class StagingFolder {
public:
  explicit StagingFolder(llvm::StringRef output) : output(output.str()) {
    std::string pattern = output.rtrim('/').str() + ".tmp-XXXXXX";
    if (!mkdtemp(pattern.data()))
      moert::fail("{}: cannot create a folder beside it: {}", this->output,
                  moert::describeErrno());
    path = pattern;
    // mkdtemp's folder is 0700; the output gets a new folder's mode.
    mode_t mask = umask(0);
    umask(mask);
    chmod(path.c_str(), 0777 & ~mask);
  }
  StagingFolder(const StagingFolder &) = delete;
  StagingFolder &operator=(const StagingFolder &) = delete;
  ~StagingFolder() {
    if (!path.empty())
      llvm::sys::fs::remove_directories(path);
  }

  const std::string &folder() const { return path; }

  /// The staging folder becomes the output (absent, or an empty folder).
  void commit() {
    if (rename(path.c_str(), output.c_str()) != 0)
      moert::fail("{}: cannot put the exported folder in place: {}", output,
                  moert::describeErrno());
    path.clear();
  }

private:
  std::string output, path;
};

} // namespace

static int run() {
  // 0 would mean one file per tensor.
  if (maxShardBytes == 0)
    moert::fail("option --max-shard-size: 0 is not a size (give bytes, at "
                "least 1)");
  if (outputDir.empty())
    moert::fail("option -o needs a folder name");
  // Never write into a folder that holds something already.
  bool exists = llvm::sys::fs::exists(outputDir);
  if (exists && !llvm::sys::fs::is_directory(outputDir))
    moert::fail("{}: exists and is not a folder", outputDir.getValue());
  if (exists) {
    std::error_code error;
    llvm::sys::fs::directory_iterator entry(outputDir, error);
    if (error || entry != llvm::sys::fs::directory_iterator())
      moert::fail("{}: exists and is not an empty folder",
                  outputDir.getValue());
  }
  // The folder is made, not its parents: a mistyped path is an error, as
  // in the other tools.
  llvm::StringRef parent =
      llvm::sys::path::parent_path(llvm::StringRef(outputDir).rtrim('/'));
  if (!exists && !parent.empty() && !llvm::sys::fs::is_directory(parent))
    moert::fail("{}: cannot create the folder: {} {}", outputDir.getValue(),
                parent.str(),
                llvm::sys::fs::exists(parent) ? "is not a folder"
                                              : "does not exist");

  // The weights are read once: a checkpoint can be most of the disk.
  moert::WeightSource source(inputPath);
  std::string text = configText(source);
  llvm::Expected<moe::ModelConfig> config =
      moe::parseModelConfig(text, configPath.empty() ? inputPath : configPath);
  if (!config)
    moert::fail("{}", llvm::toString(config.takeError()));
  noteDifferences(*config);

  // The trainable globals, from the model the config builds.
  DialectRegistry registry;
  moe::registerAllDialects(registry);
  MLIRContext context(registry);
  llvm::Expected<OwningOpRef<ModuleOp>> imported = moe::importModelConfig(
      context, text, configPath.empty() ? inputPath : configPath,
      {Float32Type::get(&context)});
  if (!imported)
    moert::fail("{}", llvm::toString(imported.takeError()));
  OwningOpRef<ModuleOp> module = std::move(*imported);
  // Every tensor of the source is exported or has a reason not to be.
  auto hasGlobal = [&](const std::string &name) {
    auto global = module->lookupSymbol<ml_program::GlobalOp>(name);
    return global && global->hasAttr(moe::kTrainableAttrName);
  };
  for (const std::string &name : source.names())
    if (!hasGlobal(name) && !module->lookupSymbol(name) &&
        !moert::isIgnorableTensor(name, hasGlobal))
      moert::fail("{}: tensor '{}' has no place in the model",
                  inputPath.getValue(), name);
  std::vector<std::pair<std::string, moert::OwnedTensor>> tensors;
  module->walk([&](ml_program::GlobalOp global) {
    if (!global->hasAttr(moe::kTrainableAttrName))
      return;
    std::string name = global.getSymName().str();
    moert::OwnedTensor tensor = source.get(name, moert::DType::F32);
    std::vector<int64_t> expected(
        cast<ShapedType>(global.getType()).getShape().begin(),
        cast<ShapedType>(global.getType()).getShape().end());
    if (tensor.shape != expected)
      moert::fail("{}: tensor '{}' is {}, but the config gives {}",
                  inputPath.getValue(), name, moert::formatShape(tensor.shape),
                  moert::formatShape(expected));
    for (auto &piece : moert::toHuggingFace(name, std::move(tensor)))
      tensors.push_back(std::move(piece));
  });

  // Everything is read and checked: now the folder.
  StagingFolder staging(outputDir);

  // Shards in order, each at most --max-shard-size (a larger tensor alone).
  std::vector<std::vector<size_t>> shards(1);
  uint64_t shardBytes = 0, totalBytes = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    uint64_t bytes = tensors[i].second.data.size();
    if (!shards.back().empty() && shardBytes + bytes > maxShardBytes) {
      shards.emplace_back();
      shardBytes = 0;
    }
    shards.back().push_back(i);
    shardBytes += bytes;
    totalBytes += bytes;
  }
  json weightMap = json::object();
  for (size_t shard = 0; shard < shards.size(); ++shard) {
    std::string file = shards.size() == 1
                           ? "model.safetensors"
                           : fmt::format("model-{:05}-of-{:05}.safetensors",
                                         shard + 1, shards.size());
    std::vector<moert::TensorView> views;
    for (size_t i : shards[shard]) {
      views.push_back(tensors[i].second.view(tensors[i].first));
      weightMap[tensors[i].first] = file;
    }
    moert::writeSafetensors(staging.folder() + "/" + file, views,
                            {{"format", "pt"}});
  }
  if (shards.size() > 1) {
    json index = {{"metadata", {{"total_size", totalBytes}}},
                  {"weight_map", weightMap}};
    std::string indexText = index.dump(2) + "\n";
    writeText(staging.folder() + "/model.safetensors.index.json", indexText);
  }
  std::string configJson = huggingFaceConfig(text, *config).dump(2) + "\n";
  writeText(staging.folder() + "/config.json", configJson);
  staging.commit();
  fmt::print("{}: {} tensors in {} file{}, config.json\n", outputDir.getValue(),
             tensors.size(), shards.size(), shards.size() == 1 ? "" : "s");
  return 0;
}

int main(int argc, char **argv) {
  llvm::InitLLVM initLLVM(argc, argv);
  moe::initToolFiles("moe-export");
  moe::parseToolCommandLine(argc, argv, toolOptions,
                            "checkpoint to a Hugging Face model folder\n");
  return moert::exitOnErrors("moe-export", run);
}
