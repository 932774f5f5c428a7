//===- moe-export.cpp - a checkpoint to a Hugging Face model folder -------===//
//
// Writes what transformers' AutoModelForCausalLM.from_pretrained loads: a
// config.json (of the family that computes the model, TransformersModels.h:
// transformersModelNames() lists them, each from its model_type;
// with the keys transformers needs and the model's own, Skywork's gating keys
// included) and the trainable weights (and the routers' expert-selection
// biases) under Hugging Face's names in safetensors files, experts one tensor
// each as save_pretrained writes them, sharded with an index above
// --max-shard-size. The weights come from a training checkpoint
// (which records its config) or any file moe-run --params reads, with --config.
//
//===----------------------------------------------------------------------===//

#include "moe/Frontend/ModelBuilder.h"
#include "moe/Frontend/ModelConfig.h"
#include "moe/Frontend/TransformersModels.h"
#include "moe/InitAllDialects.h"
#include "moe/MoeDialect.h"
#include "moe/Support/ToolCommandLine.h"
#include "moe/Support/ToolFiles.h"
#include "moert/AtomicFile.h"
#include "moert/Checkpoint.h"
#include "moert/Error.h"
#include "moert/Files.h"
#include "moert/StateNames.h"
#include "moert/WeightSource.h"

#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include <functional>
#include <string>
#include <vector>

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
static cl::opt<uint64_t>
    maxShardBytes(cl::cat(toolOptions), "max-shard-size",
                  cl::init(5'000'000'000),
                  cl::desc("Largest safetensors file before sharding, in bytes "
                           "(default 5000000000, as transformers' 5GB)"));

/// The config the checkpoint's metadata records, or "" (a weights file, or
/// a model compiled from IR without one).
static std::string recordedConfig(const moert::WeightSource &source) {
  if (!source.getMetadata().count("moe"))
    return "";
  return moert::parseCheckpointRun(inputPath, source.getMetadata()).config;
}

/// The config text: --config, or what the checkpoint's metadata records.
static std::string configText(const moert::WeightSource &source) {
  // A Hugging Face folder has its config.json.
  if (configPath.empty() && llvm::sys::fs::is_directory(inputPath))
    configPath = moe::modelInputPath(inputPath);
  if (!configPath.empty()) {
    std::vector<char> text = moert::readRegularFile(configPath, "config");
    return std::string(text.begin(), text.end());
  }
  if (!source.getMetadata().count("moe"))
    moert::fail("{}: records no config (not a training checkpoint): give "
                "--config",
                inputPath.getValue());
  std::string config = recordedConfig(source);
  if (config.empty())
    moert::fail("{}: records no config (its model was compiled from IR "
                "without one): give --config",
                inputPath.getValue());
  return config;
}

/// Refuses a --config whose model computes other logits than the one the
/// checkpoint trained, but for how it routes over capacity (exported
/// dropless, a model computes what transformers' Mixtral does); it notes
/// that and other training settings (the losses, the padding token).
static void requireRecordedModel(const std::string &recorded,
                                 const moe::ModelConfig &config) {
  llvm::Expected<moe::ModelConfig> trained =
      moe::parseModelConfig(recorded, inputPath + " (its recorded config)");
  if (!trained)
    moert::fail("{}", llvm::toString(trained.takeError()));
  static constexpr llvm::StringLiteral kMayDiffer[] = {
      "moe_capacity_factor", "moe_drop_policy",  "moe_aux_loss_kind",
      "moe_aux_loss_coeff",  "moe_z_loss_coeff", "pad_token_id"};
  std::string changes, allowed;
  for (const moe::ConfigDifference &difference :
       moe::modelDifferences(*trained, config)) {
    std::string &list =
        llvm::is_contained(kMayDiffer, difference.key) ? allowed : changes;
    list +=
        fmt::format("{}{} {} (the checkpoint's: {})", list.empty() ? "" : ", ",
                    difference.key, difference.to, difference.from);
  }
  if (!changes.empty())
    moert::fail("{}: describes another model than {} trained: {}; leave "
                "--config out to export the config it records (only the "
                "capacity, the drop policy, the auxiliary losses and the "
                "padding token may differ)",
                configPath.getValue(), inputPath.getValue(), changes);
  if (!allowed.empty())
    fmt::print(stderr,
               "moe-export: note: {} differs from the config {} records: "
               "{}\n",
               configPath.getValue(), inputPath.getValue(), allowed);
}

/// config.json for transformers' `model`: the model's keys, plus the
/// architecture and every key transformers reads that the model leaves at
/// our default.
static json huggingFaceConfig(const std::string &text,
                              const moe::ModelConfig &config,
                              const moe::TransformersModel &model) {
  json out = json::parse(text, nullptr, /*allow_exceptions=*/false);
  // Keys in the spelling of the config's own class (Sarvam-MoE's
  // num_experts) take the one `model`'s class reads, which the writers
  // below set.
  if (out.contains("model_type") && out["model_type"].is_string()) {
    auto renamed = moe::renameKeyAliases(
        out, moe::transformersModelNamed(out["model_type"].get<std::string>()),
        "the config");
    if (!renamed)
      moert::fail("{}", llvm::toString(renamed.takeError()));
  }
  out["architectures"] = {model.architecture};
  out["model_type"] = model.modelType;
  moe::writeAttentionKeys(out, config, &model);
  moe::writeClassDefaultedKeys(out, config, &model);
  moe::writeMultiplierKeys(out, config, &model);
  out["hidden_act"] = "silu";
  // transformers 5 types these float and refuses an integer such as 0.
  for (const char *key : {"attention_dropout", "initializer_range",
                          "router_aux_loss_coef", "router_jitter_noise"})
    if (out.contains(key) && out[key].is_number_integer())
      out[key] = out[key].get<double>();
  out.erase("torch_dtype");
  out["dtype"] = "float32";
  if (config.isMoe()) {
    moe::writeExpertCountKeys(out, config, &model);
    if (model.expertsByIntermediateSize) {
      out.erase("moe_intermediate_size");
      out["intermediate_size"] = config.expertIntermediateSize;
    } else {
      // intermediate_size is the dense layers', which it has none of.
      out["moe_intermediate_size"] = config.expertIntermediateSize;
      out["intermediate_size"] = config.intermediateSize;
    }
    if (!model.alwaysRenormalizes)
      out["norm_topk_prob"] = config.renormalize;
    if (model.sharedExpertSize)
      out["shared_expert_intermediate_size"] =
          config.sharedExpertIntermediateSize;
    out.erase("routed_scaling_factor");
    out.erase("router_scaling_factor");
    if (model.scalesWeights)
      out[model.scaleKey ? model.scaleKey : "routed_scaling_factor"] =
          config.routedScale;
    if (model.expertGroups) {
      out["n_group"] = config.routerGroups;
      out["topk_group"] = config.routerGroupTopK;
    }
    // DeepSeek-V2's class chooses among all experts by default.
    out.erase("topk_method");
    if (model.topkMethod)
      out["topk_method"] =
          config.routerGroups == 1 ? "greedy" : "group_limited_greedy";
    if (model.predictionLayersKey) {
      out.erase("num_mtp_layers");
      out[model.predictionLayersKey] = 0;
    }
    // transformers reads the coefficient as router_aux_loss_coef, and
    // without one takes its class's default, which need not be the one the
    // import took (another family's, or ours).
    out.erase("moe_aux_loss_coeff");
    out["router_aux_loss_coef"] = config.configuredAuxLossCoeff;
    moe::writeLayerPlacementKeys(out, config, &model);
    // Named, since a transformers MoE config that names no kind imports
    // with transformers' pooled loss (Dots1's with none; MiniMax-M2's and
    // ERNIE 4.5 MoE's over a softmax's top-k without the bias, which the
    // import refuses).
    if (!config.pooledAuxLoss)
      out["moe_aux_loss_kind"] = config.auxLossKind == moe::AuxLossKind::switch_
                                     ? "switch"
                                     : "skywork";
    else if ((!model.auxLoss || model.expertBias) && config.auxLossCoeff != 0)
      out["moe_aux_loss_kind"] = "transformers";
  }
  return out;
}

/// What transformers' `model` computes differently from the model, said
/// once.
static void noteDifferences(const moe::ModelConfig &config,
                            const moe::TransformersModel &model) {
  if (!config.isMoe())
    return;
  auto note = [](const std::string &what) {
    fmt::print(stderr, "moe-export: note: {}\n", what);
  };
  if (config.gateNormLambda)
    note(fmt::format("transformers' {} has no gating logit normalization: "
                     "its routing (and logits) will differ",
                     model.name));
  if (config.capacityFactor)
    note(fmt::format("transformers' {} is dropless: where this model drops "
                     "tokens over capacity, its logits will differ",
                     model.name));
  if (!config.renormalize && model.alwaysRenormalizes)
    note(fmt::format("transformers' {} renormalizes the top-k gate values",
                     model.name));
  if (!config.pooledAuxLoss && model.auxLoss)
    note(fmt::format("transformers trains {} with its own load-balancing "
                     "loss (over all layers' tokens pooled, with "
                     "output_router_logits), not this model's per-layer one; "
                     "moe_aux_loss_kind keeps ours for moe-import",
                     model.name));
  if (!model.auxLoss && config.auxLossCoeff != 0)
    note(fmt::format("transformers trains {} without a load-balancing loss; "
                     "moe_aux_loss_kind keeps ours for moe-import",
                     model.name));
  if (config.pooledAuxLoss && model.auxLoss && model.expertBias &&
      config.auxLossCoeff != 0)
    note(fmt::format("transformers trains {} with a load-balancing loss over "
                     "a softmax of the router logits and its top-k without "
                     "the bias, not this model's over the scores and the "
                     "experts it routes by; moe_aux_loss_kind keeps ours for "
                     "moe-import",
                     model.name));
  if (model.expertBias)
    note(fmt::format("transformers' {} keeps e_score_correction_bias as it "
                     "is in training (moe-compile's binaries move it towards "
                     "an even load)",
                     model.name));
}

static void writeText(const std::string &path, const std::string &text) {
  moert::AtomicFile file(path);
  file.write(text.data(), text.size());
  file.commit();
}

namespace {

/// What the folders of interrupted exports inside an output start with.
constexpr llvm::StringLiteral kStagingPrefix = ".moe-export-";

/// Whether `path` is an interrupted export's folder, which an export into
/// its output removes.
bool isStagingFolder(llvm::StringRef path) {
  return llvm::sys::path::filename(path).starts_with(kStagingPrefix);
}

/// The interrupted exports' folders in `folder`; throws moert::Error when it
/// holds anything else: an export never writes into a folder that holds
/// something already.
std::vector<std::string> requireEmptyButStaging(const std::string &folder) {
  std::vector<std::string> staging;
  std::error_code error;
  for (llvm::sys::fs::directory_iterator entry(folder, error), end;
       error || entry != end; entry.increment(error)) {
    if (error || !isStagingFolder(entry->path()))
      moert::fail("{}: exists and is not an empty folder", folder);
    staging.push_back(entry->path());
  }
  return staging;
}

/// The export's files, written into a hidden folder inside the output and
/// moved up into it only once every file is complete: a failure (a full
/// disk) leaves the output as it was (absent, or an empty folder), and a
/// killed export leaves only that folder, which the next export into the
/// output removes. Inside the output, the files are written on its file
/// system, and the output keeps its own mode, owner and links.
class StagingFolder {
public:
  /// `output` is an empty folder but for interrupted exports' folders, or
  /// absent (`create`).
  StagingFolder(std::string outputPath, bool create)
      : output(std::move(outputPath)), created(create) {
    if (create && mkdir(output.c_str(), 0777) != 0)
      moert::fail("{}: cannot create the folder: {}", output,
                  moert::describeErrno());
    // One export into a folder at a time, held until this one ends: a
    // second would take the first's staging folder for an interrupted
    // export's, or mix its files with the first's.
    lock = open(output.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (lock < 0 || flock(lock, LOCK_EX | LOCK_NB) != 0) {
      std::string reason = errno == EWOULDBLOCK
                               ? std::string("another moe-export is writing it")
                               : "cannot lock it: " + moert::describeErrno();
      if (lock >= 0)
        close(lock);
      removeCreatedOutput();
      moert::fail("{}: {}", output, reason);
    }
    // Under the lock, again: an export that ended since the caller looked
    // filled it.
    for (const std::string &interrupted : requireEmptyButStaging(output))
      llvm::sys::fs::remove_directories(interrupted);
    std::string pattern = output + "/" + kStagingPrefix.str() + "XXXXXX";
    if (!mkdtemp(pattern.data())) {
      std::string reason = moert::describeErrno();
      removeCreatedOutput();
      moert::fail("{}: cannot create a folder in it: {}", output, reason);
    }
    path = pattern;
  }
  StagingFolder(const StagingFolder &) = delete;
  StagingFolder &operator=(const StagingFolder &) = delete;
  ~StagingFolder() {
    if (!path.empty()) {
      llvm::sys::fs::remove_directories(path);
      removeCreatedOutput();
    }
    if (lock >= 0)
      close(lock);
  }

  /// Writes the output's file `name` with `write(path)`, into the staging
  /// folder; an error names the output's file, not the staging one.
  void write(const std::string &name,
             const std::function<void(const std::string &)> &write) {
    names.push_back(name);
    try {
      write(path + "/" + name);
    } catch (const moert::Error &error) {
      std::string message = error.what();
      for (size_t at; (at = message.find(path)) != std::string::npos;)
        message.replace(at, path.size(), output);
      throw moert::Error(message);
    }
  }

  /// Moves the files written into the output.
  void commit() {
    for (const std::string &name : names)
      if (rename((path + "/" + name).c_str(), (output + "/" + name).c_str()))
        moert::fail("{}/{}: cannot move it into place: {}", output, name,
                    moert::describeErrno());
    rmdir(path.c_str());
    path.clear();
  }

private:
  void removeCreatedOutput() {
    if (created)
      rmdir(output.c_str());
  }

  std::string output, path;
  bool created;
  int lock = -1;
  std::vector<std::string> names;
};

} // namespace

static int run() {
  // 0 would mean one file per tensor.
  if (maxShardBytes == 0)
    moert::fail("option --max-shard-size: 0 is not a size (give bytes, at "
                "least 1)");
  if (outputDir.empty())
    moert::fail("option -o needs a folder name");
  bool exists = llvm::sys::fs::exists(outputDir);
  if (exists && !llvm::sys::fs::is_directory(outputDir))
    moert::fail("{}: exists and is not a folder", outputDir.getValue());
  if (exists)
    requireEmptyButStaging(outputDir);
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
  if (std::string note = source.predictionLayersNote(); !note.empty())
    fmt::print(stderr, "moe-export: {}", note);
  std::string text = configText(source);
  llvm::Expected<moe::ModelConfig> config =
      moe::parseModelConfig(text, configPath.empty() ? inputPath : configPath);
  if (!config)
    moert::fail("{}", llvm::toString(config.takeError()));
  if (std::string recorded = recordedConfig(source);
      !recorded.empty() && text != recorded)
    requireRecordedModel(recorded, *config);
  llvm::Expected<const moe::TransformersModel &> model =
      moe::transformersModelOf(*config);
  if (!model)
    moert::fail("{}: cannot be exported: {}",
                configPath.empty() ? inputPath.getValue()
                                   : configPath.getValue(),
                llvm::toString(model.takeError()));
  noteDifferences(*config, *model);

  // The trainable globals, and the expert-selection biases that route with
  // them, from the model the config builds.
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
  auto exported = [](ml_program::GlobalOp global) {
    return global->hasAttr(moe::kTrainableAttrName) ||
           moert::isExpertBias(global.getSymName().str());
  };
  auto hasGlobal = [&](const std::string &name) {
    auto global = module->lookupSymbol<ml_program::GlobalOp>(name);
    return global && exported(global);
  };
  for (const std::string &name : source.names())
    if (!hasGlobal(name) && !module->lookupSymbol(name) &&
        !moert::isIgnorableTensor(name, hasGlobal))
      moert::fail("{}: tensor '{}' has no place in the model",
                  inputPath.getValue(), name);
  std::vector<std::pair<std::string, moert::OwnedTensor>> globals;
  module->walk([&](ml_program::GlobalOp global) {
    if (!exported(global))
      return;
    std::string name = global.getSymName().str();
    std::vector<int64_t> expected(
        cast<ShapedType>(global.getType()).getShape().begin(),
        cast<ShapedType>(global.getType()).getShape().end());
    // A bias the source lacks starts from 0, as moe-run and --init-from
    // start it.
    bool zeroBias =
        !global->hasAttr(moe::kTrainableAttrName) && !source.contains(name);
    moert::OwnedTensor tensor =
        zeroBias ? moert::OwnedTensor{moert::DType::F32, expected,
                                      std::vector<char>(
                                          moert::numElements(expected) *
                                          sizeof(float))}
                 : source.get(name, moert::DType::F32);
    if (tensor.shape != expected)
      moert::fail("{}: tensor '{}' is {}, but the config gives {}",
                  inputPath.getValue(), name, moert::formatShape(tensor.shape),
                  moert::formatShape(expected));
    globals.emplace_back(name, std::move(tensor));
  });
  std::vector<std::pair<std::string, moert::OwnedTensor>> tensors =
      moert::toHuggingFace(std::move(globals), model->expertNames);

  // Everything is read and checked: now the folder.
  StagingFolder staging(outputDir, !exists);

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
    staging.write(file, [&](const std::string &path) {
      moert::writeSafetensors(path, views, {{"format", "pt"}});
    });
  }
  if (shards.size() > 1) {
    json index = {{"metadata", {{"total_size", totalBytes}}},
                  {"weight_map", weightMap}};
    std::string indexText = index.dump(2) + "\n";
    staging.write("model.safetensors.index.json",
                  [&](const std::string &path) { writeText(path, indexText); });
  }
  std::string configJson =
      huggingFaceConfig(text, *config, *model).dump(2) + "\n";
  staging.write("config.json",
                [&](const std::string &path) { writeText(path, configJson); });
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
  return moe::runTool(run);
}
