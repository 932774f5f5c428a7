//===- Checkpoint.cpp - training checkpoints ------------------------------===//

#include "moert/Checkpoint.h"
#include "moert/AtomicFile.h"
#include "moert/Error.h"
#include "moert/Files.h"
#include "moert/GridGroups.h"
#include "moert/Json.h"
#include "moert/ModelState.h"
#include "moert/Safetensors.h"
#include "moert/StateNames.h"
#include "moert/Upcycle.h"
#include "moert/WeightSource.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <set>
#include <sstream>
#include <sys/stat.h>
#include <sys/statvfs.h>

using nlohmann::json;

namespace {

/// The `format` metadata of our checkpoints.
constexpr char kCheckpointFormat[] = "moe-checkpoint-v1";

moert::DType dtypeOf(int32_t abiDType) {
  switch (abiDType) {
  case MOE_F32:
    return moert::DType::F32;
  case MOE_F64:
    return moert::DType::F64;
  case MOE_I32:
    return moert::DType::I32;
  default:
    return moert::DType::I64;
  }
}

/// `config`'s value of `key` as JSON text, or "none".
std::string keyText(const json &config, const std::string &key) {
  return config.contains(key) ? config[key].dump() : std::string("none");
}

/// The first top-level key whose value differs between two configs.
std::string firstDifference(const json &a, const json &b) {
  for (const auto &[key, value] : a.items())
    if (!b.contains(key) || b[key] != value)
      return key;
  for (const auto &[key, value] : b.items())
    if (!a.contains(key))
      return key;
  return "";
}

/// Whether a checkpoint holds `global`: not a transient one (zero between
/// steps), nor a constant of the config (which the config records, and a
/// resumed run takes from its model).
bool isCheckpointed(const moe_global &global) {
  return !global.transient && !global.config_constant;
}

} // namespace

void moert::requireReplaceableCheckpoint(const std::string &path) {
  requireReplaceableFile(path);
  struct stat status;
  if (stat(path.c_str(), &status) != 0)
    return;
  Metadata metadata;
  try {
    metadata = readSafetensorsMetadata(path);
  } catch (const Error &) {
    // Not safetensors at all: refused below like any other file.
  }
  if (metadata["format"] != kCheckpointFormat)
    fail("{}: exists and is not a moe checkpoint (no {} metadata): not "
         "replacing it",
         path, kCheckpointFormat);
}

std::optional<int64_t> moert::laterCheckpointStep(const std::string &path,
                                                  const moe_model &model,
                                                  int64_t firstStep) {
  struct stat status;
  if (stat(path.c_str(), &status) != 0)
    return std::nullopt;
  try {
    CheckpointRun run = parseCheckpointRun(path, readSafetensorsMetadata(path));
    if (run.model != model.name || run.position.step <= firstStep)
      return std::nullopt;
    requireCheckpointConfig(path, run, configTextOf(model), "", "");
    return run.position.step;
  } catch (const Error &) {
    // A damaged checkpoint, or another configuration's, which this model
    // cannot continue.
    return std::nullopt;
  }
}

void moert::requireNoLaterCheckpoint(const std::string &path,
                                     const moe_model &model,
                                     int64_t firstStep) {
  std::optional<int64_t> step = laterCheckpointStep(path, model, firstStep);
  if (!step)
    return;
  fail("{}: holds step {} of this model's training, and this run starts at "
       "step {}: continue it with --resume {}, or remove it (or give another "
       "--checkpoint) to start again",
       path, *step, firstStep, path);
}

void moert::requireRoomForCheckpoint(const WriterLock &lock,
                                     const moe_model &model,
                                     const RankGroup &group,
                                     bool severalSaves) {
  // The tensors, and a megabyte for the header (names, config, metadata).
  int64_t bytes = int64_t(1) << 20;
  for (int64_t i = 0; i < model.num_globals; ++i)
    if (isCheckpointed(model.globals[i]))
      bytes += static_cast<int64_t>(
          numElements(placementOf(model, model.globals[i], group).wholeShape) *
          dtypeSize(dtypeOf(model.globals[i].tensor.dtype)));
  // Each save writes a new file beside the last one, which it then
  // replaces: a second save needs room for two, less the file there now
  // (of a smaller model, it may be smaller), and an inode for each.
  const std::string &file = lock.file();
  struct stat existing;
  bool exists = stat(file.c_str(), &existing) == 0;
  int64_t existingBytes = exists ? static_cast<int64_t>(existing.st_size) : 0;
  int64_t needed =
      severalSaves ? std::max(bytes, 2 * bytes - existingBytes) : bytes;
  uint64_t inodes = severalSaves && !exists ? 2 : 1;
  struct statvfs space;
  // Some file systems report no sizes at all.
  if (statvfs(parentDirectory(file).c_str(), &space) != 0 ||
      space.f_blocks == 0)
    return;
  if (space.f_files > 0 && space.f_favail < inodes)
    fail("{}: its file system has {} free inode{}, and the checkpoint{} "
         "take{} {}",
         file, space.f_favail, space.f_favail == 1 ? "" : "s",
         inodes == 1 ? "" : " and its next save", inodes == 1 ? "s" : "",
         inodes);
  uint64_t blockSize = space.f_frsize ? space.f_frsize : space.f_bsize;
  if (static_cast<uint64_t>(space.f_bavail) <
      static_cast<uint64_t>(needed) / blockSize + 1)
    fail("{}: {}, and its file system has {} free", file,
         needed == bytes
             ? "a checkpoint takes " + describeBytes(bytes)
             : "two checkpoints (a new one beside the last) take " +
                   describeBytes(2 * bytes) +
                   (exists ? " less the " + describeBytes(existingBytes) +
                                 " of the file there"
                           : ""),
         describeBytes(static_cast<int64_t>(space.f_bavail * blockSize)));
}

void moert::saveCheckpoint(const std::string &path, const moe_model &model,
                           const void *state, const RunPosition &position,
                           const RankGroup &group) {
  std::vector<TensorView> tensors;
  std::vector<std::vector<char>> gathered;
  for (int64_t i = 0; i < model.num_globals; ++i) {
    const moe_global &global = model.globals[i];
    if (!isCheckpointed(global))
      continue;
    const char *data = static_cast<const char *>(state) + global.offset;
    GlobalPlacement placement = placementOf(model, global, group);
    // The optimizer's parts make the rank's tensor, and the parts of the
    // ranks that share the experts the whole tensor.
    auto gatherOver = [&](int32_t axes, int64_t bytes, int64_t wholeBytes) {
      std::vector<char> &whole = gathered.emplace_back(wholeBytes);
      model.target->gather(axes, data, bytes, whole.data());
      data = whole.data();
    };
    if (placement.partAxes != 0)
      gatherOver(placement.partAxes, global.bytes, placement.partsBytes);
    if (placement.expertAxes != 0)
      gatherOver(placement.expertAxes, placement.rankBytes,
                 placement.rankBytes * group.expertRanks);
    tensors.push_back({global.tensor.name, dtypeOf(global.tensor.dtype),
                       placement.wholeShape, data});
  }
  if (group.rank != 0)
    return;
  // A checkpoint is only ever replaced by one that can be resumed.
  for (const TensorView &tensor : tensors)
    requireFiniteToWrite(path, tensor, "the previous checkpoint");
  json constants = json::array();
  for (int64_t i = 0; i < model.num_globals; ++i)
    if (model.globals[i].config_constant)
      constants.push_back(model.globals[i].tensor.name);
  json run = {{"model", model.name},
              {"config", model.config_json},
              {"canonical_config", configTextOf(model).canonical},
              {"training", model.training},
              {"step", position.step},
              {"seed", position.seed},
              {"train_position", position.trainPosition},
              {"train_data", position.trainData},
              {"config_constants", constants}};
  writeSafetensors(path, tensors,
                   {{"format", kCheckpointFormat}, {"moe", run.dump()}});
}

moert::CheckpointRun moert::parseCheckpointRun(const std::string &path,
                                               const Metadata &metadata) {
  auto format = metadata.find("format");
  auto run = metadata.find("moe");
  if (format == metadata.end() || format->second != kCheckpointFormat ||
      run == metadata.end())
    fail("{}: not a moe training checkpoint (no {} metadata)", path,
         kCheckpointFormat);
  // A field twice (a seed, a sampler position) is an error, not the last.
  json fields = parseJsonOrFail(run->second, path + ": checkpoint metadata");
  if (!fields.is_object())
    fail("{}: checkpoint metadata is not a JSON object: {}", path, run->second);
  // The value alone, not all the metadata (which holds the whole config).
  auto require = [&](const char *key, bool valid, const char *expected) {
    if (!fields.contains(key))
      fail("{}: checkpoint metadata has no '{}' ({})", path, key, expected);
    if (!valid) {
      std::string value = fields[key].dump();
      if (value.size() > 80)
        value = value.substr(0, 77) + "...";
      fail("{}: checkpoint metadata '{}' must be {}, not {}", path, key,
           expected, value);
    }
  };
  auto isString = [&](const char *key) {
    return fields.contains(key) && fields[key].is_string();
  };
  auto isCount = [&](const char *key) {
    return fields.contains(key) && fields[key].is_number_unsigned();
  };
  require("model", isString("model"), "a string");
  // A JSON object's text, or "" (a model compiled from IR without a
  // config, ModelAbi.h).
  auto isObjectText = [&](const char *key) {
    if (!isString(key))
      return false;
    const std::string &text = fields[key].get_ref<const std::string &>();
    return text.empty() ||
           parseJson(text,
                     fmt::format("{}: checkpoint metadata '{}'", path, key))
               .is_object();
  };
  require("config", isObjectText("config"), "a config.json text or \"\"");
  require("step",
          isCount("step") && fields["step"].get<uint64_t>() <= INT64_MAX,
          "a non-negative integer");
  require("seed", isCount("seed"), "a non-negative integer");
  require("train_position", isCount("train_position"),
          "a non-negative integer");
  // Checkpoints of ABI 5 binaries have no training settings, older ones no
  // data fingerprint, and those before ABI 10 no canonical config.
  for (const char *optional : {"training", "train_data"})
    if (fields.contains(optional))
      require(optional, isString(optional), "a string");
  if (fields.contains("canonical_config"))
    require("canonical_config", isObjectText("canonical_config"),
            "a JSON object's text or \"\"");
  std::optional<std::set<std::string>> constants;
  if (fields.contains("config_constants")) {
    const json &names = fields["config_constants"];
    require("config_constants",
            names.is_array() &&
                std::all_of(names.begin(), names.end(),
                            [](const json &name) { return name.is_string(); }),
            "a list of global names");
    constants.emplace(names.begin(), names.end());
  }
  return {fields["model"].get<std::string>(),
          fields["config"].get<std::string>(),
          {fields["step"].get<int64_t>(), fields["seed"].get<uint64_t>(),
           fields["train_position"].get<uint64_t>(),
           fields.value("train_data", std::string())},
          fields.value("training", std::string()),
          fields.value("canonical_config", std::string()),
          std::move(constants)};
}

std::string moert::stateOriginChanges(
    const CheckpointRun &run, const std::vector<std::string> &myConstants,
    const std::vector<std::string> &myState,
    const std::function<bool(const std::string &)> &checkpointHas) {
  if (!run.configConstants)
    return "";
  std::vector<std::string> replaced, started;
  for (const std::string &name : myConstants)
    if (checkpointHas(name) && !run.configConstants->count(name))
      replaced.push_back(name);
  for (const std::string &name : myState)
    if (run.configConstants->count(name))
      started.push_back(name);
  std::string changes;
  auto add = [&](const std::vector<std::string> &names, const char *change) {
    if (names.empty())
      return;
    changes += fmt::format(
        "{}{}{}: {}", changes.empty() ? "" : "; ", names.front(),
        names.size() > 1 ? fmt::format(" (and {} more)", names.size() - 1) : "",
        change);
  };
  add(replaced, "trained -> the config's constant");
  add(started, "the config's constant -> trained from its initializer");
  return changes;
}

moert::ModelConfigText moert::configTextOf(const moe_model &model) {
  // Hand-made models (tests') may leave it null.
  return {model.config_json,
          model.canonical_config ? model.canonical_config : ""};
}

std::map<std::string, std::string>
moert::trainingSettings(const std::string &text) {
  std::map<std::string, std::string> values;
  std::istringstream words(text);
  for (std::string word; words >> word;) {
    size_t equals = word.find('=');
    values[word.substr(0, equals)] =
        equals == std::string::npos ? "" : word.substr(equals + 1);
  }
  return values;
}

std::string moert::trainingChanges(const std::string &checkpoint,
                                   const std::string &binary) {
  if (checkpoint.empty() || binary.empty())
    return "";
  std::map<std::string, std::string> before = trainingSettings(checkpoint),
                                     after = trainingSettings(binary);
  std::set<std::string> keys;
  for (const auto *values : {&before, &after})
    for (const auto &entry : *values)
      keys.insert(entry.first);
  auto valueOf = [](const std::map<std::string, std::string> &values,
                    const std::string &key) {
    auto found = values.find(key);
    return found == values.end() ? std::string("(none)") : found->second;
  };
  std::string changes;
  for (const std::string &key : keys) {
    std::string was = valueOf(before, key), is = valueOf(after, key);
    if (was != is)
      changes += (changes.empty() ? "" : "; ") + key + ": " + was + " -> " + is;
  }
  return changes;
}

namespace {
/// The canonical config keys of the step's shape and the initializer's
/// scale, which no weights read depend on.
constexpr std::string_view kStepKeys[] = {"moe_batch_size", "moe_seq_len",
                                          "initializer_range"};

/// The config keys that a run may change on resuming, since neither the
/// weights nor the optimizer state depend on them: the step's shape, the
/// experts' capacity and drop policy, the initializer's scale and the
/// auxiliary losses' coefficients (config constants, which the resumed run
/// takes from its model, or moe-adaptive-aux's state, which goes on).
constexpr const char *kResumableKeys[] = {
    "moe_batch_size", "moe_seq_len", "moe_capacity_factor", "moe_drop_policy",
    "initializer_range", "moe_aux_loss_coeff", "moe_z_loss_coeff",
    // As config files spell them, which checkpoints before ABI 10 compare.
    "router_aux_loss_coef", "router_z_loss_coef"};

/// The checkpoint's config and this model's as comparable JSON: their
/// canonical forms where both have one (so that a config file spelled
/// otherwise, say moe-export's, is the same config), else as written.
std::pair<json, json> comparableConfigs(const std::string &path,
                                        const moert::CheckpointRun &run,
                                        const moert::ModelConfigText &mine) {
  if (!run.canonicalConfig.empty() && !mine.canonical.empty())
    return {
        moert::parseJson(run.canonicalConfig, path + ": its canonical config"),
        moert::parseJson(mine.canonical, "the model's canonical config")};
  return {moert::parseJson(run.config, path + ": its config"),
          moert::parseJson(mine.config, "the model's config")};
}
} // namespace

std::string moert::resumableChanges(const std::string &path,
                                    const CheckpointRun &run,
                                    const ModelConfigText &config,
                                    bool adaptiveAux) {
  auto [saved, mine] = comparableConfigs(path, run, config);
  if (!saved.is_object() || !mine.is_object())
    return "";
  // Whether the checkpoint's coefficients were adaptive too.
  bool trainedAux =
      !run.configConstants ||
      std::none_of(
          run.configConstants->begin(), run.configConstants->end(),
          [](const std::string &name) { return isAuxLossCoeff(name); });
  std::string changes;
  for (const char *key : kResumableKeys) {
    auto value = [&](const json &config) {
      if (!config.contains(key))
        return std::string("(none)");
      // A canonical config's unset capacity.
      if (config[key].is_null() && key == std::string("moe_capacity_factor"))
        return std::string("dropless");
      return config[key].dump();
    };
    if (saved.contains(key) != mine.contains(key) ||
        (saved.contains(key) && saved[key] != mine[key]))
      changes +=
          (changes.empty() ? "" : "; ") + std::string(key) + ": " +
          value(saved) + " -> " + value(mine) +
          (adaptiveAux && trainedAux && key == std::string("moe_aux_loss_coeff")
               ? " (the adaptive coefficients' start: the "
                 "checkpoint's coefficients go on)"
               : "");
  }
  return changes;
}

bool moert::adaptiveAuxCoefficients(const moe_model &model) {
  for (int64_t i = 0; i < model.num_globals; ++i) {
    const moe_global &global = model.globals[i];
    if (isAuxLossCoeff(global.tensor.name) && !global.config_constant)
      return true;
  }
  return false;
}

void moert::requireCheckpointConfig(const std::string &path,
                                    const CheckpointRun &run,
                                    const ModelConfigText &config,
                                    const std::string &resumer,
                                    const std::string &weightsReader) {
  if (run.config == config.config)
    return;
  // The same config read from a file laid out otherwise is the same config,
  // whatever its resumable keys say.
  auto [saved, mine] = comparableConfigs(path, run, config);
  bool objects = saved.is_object() && mine.is_object();
  if (objects)
    for (const char *key : kResumableKeys) {
      saved.erase(key);
      mine.erase(key);
    }
  if (objects && saved == mine)
    return;
  std::string key = objects ? firstDifference(saved, mine) : "";
  // The canonical keys that shape the weights, which then do not fit.
  static constexpr std::string_view kWeightShapeKeys[] = {
      "vocab_size",
      "hidden_size",
      "intermediate_size",
      "mlp_only_layers",
      "num_hidden_layers",
      "num_attention_heads",
      "num_key_value_heads",
      "head_dim",
      "num_local_experts",
      "moe_intermediate_size",
      "shared_expert_intermediate_size",
      "shared_intermediate_size",
      "n_shared_experts",
      "tie_word_embeddings",
      "moe_qk_norm",
      "qkv_bias",
      "q_lora_rank",
      "kv_lora_rank",
      "qk_nope_head_dim",
      "qk_rope_head_dim",
      "v_head_dim"};
  // Every differing key, not the first alone, must leave the weights' shapes.
  bool weightsFit = true;
  for (std::string_view shaping : kWeightShapeKeys) {
    std::string name(shaping);
    if (objects && saved.value(name, json()) != mine.value(name, json()))
      weightsFit = false;
  }
  fail("{}: checkpoint of another configuration of model '{}'{}: resume it "
       "with {}{}",
       path, run.model,
       key.empty() ? std::string()
                   : fmt::format(" (its '{}' differs: {} in the checkpoint's "
                                 "config, {} in this one's)",
                                 key, keyText(saved, key), keyText(mine, key)),
       resumer,
       weightsFit && !weightsReader.empty() ? ", or " + weightsReader : "");
}

moert::CheckpointRun moert::loadCheckpoint(const std::string &path,
                                           const moe_model &model, void *state,
                                           const RankGroup &group) {
  SafetensorsReader file(path);
  CheckpointRun run = parseCheckpointRun(path, file.getMetadata());
  if (run.model != model.name)
    fail("{}: checkpoint of model '{}', but this binary trains '{}' "
         "(moe-compile --model-name names a binary's model, else its file "
         "name does)",
         path, run.model, model.name);
  requireCheckpointConfig(path, run, configTextOf(model),
                          "the binary that wrote it",
                          "start from its weights with --init-from (without "
                          "its optimizer state)");
  // Every tensor by name, so that a missing or an extra one is named (a
  // config constant's, which checkpoints before ABI 11 held, is taken as
  // read).
  for (const TensorView &tensor : file.getTensors())
    if (const moe_global *global = findGlobal(model, tensor.name);
        !global || global->transient)
      fail("{}: tensor '{}' is not part of model '{}'", path, tensor.name,
           model.name);
  // Training state that its model held constant (which it left out)
  // starts from its initializer; a weight may never be missing.
  auto startsAnew = [&](const moe_global &global) {
    return !global.trainable && !file.find(global.tensor.name) &&
           run.configConstants &&
           run.configConstants->count(global.tensor.name);
  };
  // Validate every tensor before writing any, so a bad file leaves the
  // state untouched.
  for (int64_t i = 0; i < model.num_globals; ++i) {
    const moe_global &global = model.globals[i];
    if (!isCheckpointed(global) || startsAnew(global))
      continue;
    const TensorView *tensor = file.find(global.tensor.name);
    if (!tensor)
      fail("{}: tensor '{}' is missing", path, global.tensor.name);
    std::vector<int64_t> whole = placementOf(model, global, group).wholeShape;
    if (tensor->dtype != dtypeOf(global.tensor.dtype) || tensor->shape != whole)
      fail("{}: tensor '{}' is {} {}, but the model expects {} {}", path,
           global.tensor.name, dtypeName(tensor->dtype),
           formatShape(tensor->shape), dtypeName(dtypeOf(global.tensor.dtype)),
           formatShape(whole));
    requireFinite(path, *tensor);
  }
  // The step count is the model's I64 scalar when it has one (its dtype
  // and shape checked above); Adam's bias correction reads it, the data
  // sampler the metadata.
  if (const TensorView *step = file.find(kOptimizerStepGlobal)) {
    int64_t counted;
    std::memcpy(&counted, step->data, sizeof(counted));
    if (counted != run.position.step)
      fail("{}: tensor '{}' counts {} steps, but the metadata says step {}",
           path, kOptimizerStepGlobal, counted, run.position.step);
  }
  for (int64_t i = 0; i < model.num_globals; ++i) {
    const moe_global &global = model.globals[i];
    char *data = static_cast<char *>(state) + global.offset;
    if (global.transient) {
      std::memset(data, 0, global.bytes);
      continue;
    }
    // The config's value, whatever the checkpoint was trained with (a
    // changed aux-loss coefficient, a z-loss added).
    if (global.config_constant || startsAnew(global)) {
      initializeGlobal(model, global, state, run.position.seed, group);
      continue;
    }
    copyRunOf(model, global, group, file.find(global.tensor.name)->data, data);
  }
  std::vector<std::string> constants, trained;
  for (int64_t i = 0; i < model.num_globals; ++i)
    if (model.globals[i].config_constant)
      constants.push_back(model.globals[i].tensor.name);
    else if (isCheckpointed(model.globals[i]))
      trained.push_back(model.globals[i].tensor.name);
  run.stateChanges =
      stateOriginChanges(run, constants, trained, [&](const std::string &name) {
        return file.find(name) != nullptr;
      });
  return run;
}

namespace {

/// Whether `model` was upcycled and `source` is a checkpoint of the model
/// it was upcycled from, rather than of the model itself: it holds none of
/// the tensors that only the upcycled model has (its experts and routers,
/// which rules build from other tensors or draw), as even a checkpoint of
/// the model itself that lacks some tensor does.
bool readsDenseCheckpoint(const moe_model &model,
                          const moert::WeightSource &source) {
  bool upcycled = false;
  for (int64_t i = 0; i < model.num_globals; ++i) {
    const moe_global &global = model.globals[i];
    if (!global.upcycle)
      continue;
    upcycled = true;
    moert::UpcycleRule rule =
        moert::parseUpcycleRule(global.upcycle, global.tensor.name);
    if (rule.kind != moert::UpcycleRule::Kind::Copy &&
        source.contains(global.tensor.name))
      return false;
  }
  return upcycled;
}

/// An upcycled model's globals, built by their rules from the dense
/// checkpoint `source`; every tensor of it must feed a rule.
void initializeUpcycled(const moert::WeightSource &source,
                        const moe_model &model, void *state,
                        const moert::RankGroup &group, uint64_t seed) {
  using namespace moert;
  std::set<std::string> sources;
  std::vector<std::pair<const moe_global *, OwnedTensor>> weights;
  for (int64_t i = 0; i < model.num_globals; ++i) {
    const moe_global &global = model.globals[i];
    if (!global.upcycle)
      continue;
    UpcycleRule rule = parseUpcycleRule(global.upcycle, global.tensor.name);
    if (!rule.source.empty())
      sources.insert(rule.source);
    weights.emplace_back(
        &global,
        upcycleTensor(rule, source, global.tensor.name,
                      placementOf(model, global, group).wholeShape,
                      dtypeOf(global.tensor.dtype), seed, global.init_value));
  }
  checkDenseTensorsUsed(source, sources);
  for (const auto &[global, tensor] : weights)
    copyRunOf(model, *global, group, tensor.data.data(),
              static_cast<char *>(state) + global->offset);
}

/// Where checkpoint `path` (whose metadata is `metadata`) of `model` was
/// trained as another configuration, by the keys that differ, as a note;
/// "" where none does, where it is another model's (a dense one that
/// `model` upcycles), or where either records no canonical config (a
/// Hugging Face file, an older checkpoint).
std::string otherConfigurationNote(const std::string &path,
                                   const moert::Metadata &metadata,
                                   const moe_model &model) {
  std::string mine = moert::configTextOf(model).canonical;
  moert::CheckpointRun run;
  try {
    run = moert::parseCheckpointRun(path, metadata);
  } catch (const moert::Error &) {
    return ""; // no checkpoint of ours, whose weights are read all the same
  }
  if (run.model != model.name || run.canonicalConfig.empty() || mine.empty())
    return "";
  json saved = moert::parseJson(run.canonicalConfig,
                                path + ": its canonical config"),
       now = moert::parseJson(mine, "the model's canonical config");
  std::set<std::string> keys;
  for (const json *config : {&saved, &now})
    for (const auto &item : config->items())
      keys.insert(item.key());
  std::string differences;
  for (const std::string &key : keys) {
    if (std::find(std::begin(kStepKeys), std::end(kStepKeys), key) !=
        std::end(kStepKeys))
      continue;
    std::string there = keyText(saved, key), here = keyText(now, key);
    if (there != here)
      differences +=
          fmt::format("{}{} {} there, {} here", differences.empty() ? "" : "; ",
                      key, there, here);
  }
  if (differences.empty())
    return "";
  return fmt::format("note: {} was trained as another configuration of its "
                     "model: {}\n",
                     path, differences);
}
} // namespace

std::string moert::initializeFromWeights(const std::string &path,
                                         const moe_model &model, void *state,
                                         const RankGroup &group,
                                         uint64_t seed) {
  WeightSource source(path);
  if (readsDenseCheckpoint(model, source)) {
    initializeUpcycled(source, model, state, group, seed);
    return "";
  }
  std::string note = otherConfigurationNote(path, source.getMetadata(), model) +
                     source.predictionLayersNote();
  auto hasGlobal = [&](const std::string &name) {
    return findGlobal(model, name) != nullptr;
  };
  for (const std::string &name : source.names())
    if (!hasGlobal(name) && !isIgnorableTensor(name, hasGlobal))
      fail("{}: tensor '{}' is not part of model '{}'", path, name, model.name);
  // Every tensor converted and checked before any is written.
  std::vector<std::pair<const moe_global *, OwnedTensor>> weights;
  for (int64_t i = 0; i < model.num_globals; ++i) {
    const moe_global &global = model.globals[i];
    // The weights, and the expert biases where the file has them: they
    // choose the experts, so a trained model routes with its own.
    bool routing =
        isExpertBias(global.tensor.name) && source.contains(global.tensor.name);
    if (!global.trainable && !routing)
      continue;
    OwnedTensor tensor =
        source.get(global.tensor.name, dtypeOf(global.tensor.dtype));
    std::vector<int64_t> whole = placementOf(model, global, group).wholeShape;
    if (tensor.shape != whole)
      fail("{}: tensor '{}' is {}, but the model expects {}", path,
           global.tensor.name, formatShape(tensor.shape), formatShape(whole));
    weights.emplace_back(&global, std::move(tensor));
  }
  for (const auto &[global, tensor] : weights)
    copyRunOf(model, *global, group, tensor.data.data(),
              static_cast<char *>(state) + global->offset);
  return note;
}
