//===- Checkpoint.h - training checkpoints ----------------------*- C++ -*-===//
//
// A checkpoint is one safetensors file holding every global of a compiled
// model (weights, Adam moments, the step counter, adaptive coefficients;
// not the transient gradient accumulators, zero between steps, nor the
// constants of the config, which its metadata records) under its
// Hugging Face style name, and in its "__metadata__" the run's
// position: "moe" maps to a JSON object with the model name, config and
// canonical config, the step, the seed, the training data's sampler
// position, the training settings of the binary that wrote it and the
// names of its config constants. It is written atomically, so a failed
// write leaves any existing checkpoint intact.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CHECKPOINT_H
#define MOERT_CHECKPOINT_H

#include "moert/GlobalPlacement.h"
#include "moert/ModelAbi.h"

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>

namespace moert {

class WriterLock;

struct RunPosition {
  int64_t step = 0;           // optimizer steps taken
  uint64_t seed = 0;          // the run's seed
  uint64_t trainPosition = 0; // the training sampler's stream position
  std::string trainData;      // its data's fingerprint ("" where not recorded)
};

/// Writes the state with every sharded global whole, so that any number of
/// ranks (that divides it) resumes from it: every rank calls this (the
/// sharded globals are gathered with the model's target) and rank 0 writes.
void saveCheckpoint(const std::string &path, const moe_model &model,
                    const void *state, const RunPosition &position,
                    const RankGroup &group);

/// What a checkpoint's metadata says about its run.
struct CheckpointRun {
  std::string model;
  std::string config; // the config.json text the model was imported from
  RunPosition position;
  std::string training;        // moe_model.training of the binary that wrote it
  std::string canonicalConfig; // moe_model.canonical_config, or ""
  /// The globals its model held as constants of the config (which it left
  /// out); unknown before ABI 11.
  std::optional<std::set<std::string>> configConstants;
  /// What loadCheckpoint changed of the state beyond the config's keys
  /// (stateOriginChanges).
  std::string stateChanges;
};

/// A model's config.json text and its canonical form (moe_model's
/// config_json and canonical_config), "" where it has none.
struct ModelConfigText {
  std::string config, canonical;
};

/// What `model` says of its config.
ModelConfigText configTextOf(const moe_model &model);

/// Reads and checks the "__metadata__" of checkpoint `path` (format, JSON,
/// the types and ranges of every field); throws moert::Error.
CheckpointRun
parseCheckpointRun(const std::string &path,
                   const std::map<std::string, std::string> &metadata);

/// Throws unless checkpoint `path` (whose metadata says `run`) was written
/// by a model imported from `config` (by its canonical form where both have
/// one, else by its JSON), naming the first key that differs and its two
/// values; `resumer` says what should resume it instead ("the binary that
/// wrote it"), and `weightsReader` how to read its weights alone, where the
/// key that differs leaves their shapes. The keys that neither the weights
/// nor the optimizer state depend on may differ (resumableChanges lists
/// them): the step's shape, the capacity and drop policy, the
/// initializer's scale and the aux-loss coefficients.
void requireCheckpointConfig(const std::string &path, const CheckpointRun &run,
                             const ModelConfigText &config,
                             const std::string &resumer,
                             const std::string &weightsReader);

/// What a resume from `run` changes of the state beyond the config's keys:
/// globals this model holds constant that the checkpoint's trained (the
/// config's values replace the checkpoint's), and globals this model trains
/// that the checkpoint's held constant (they start from their
/// initializers), as "NAME (and N more): was -> is", "; "-separated; "" when
/// none or unknown. `checkpointHas` says whether the checkpoint holds a
/// tensor.
std::string stateOriginChanges(
    const CheckpointRun &run, const std::vector<std::string> &myConstants,
    const std::vector<std::string> &myState,
    const std::function<bool(const std::string &)> &checkpointHas);

/// Restores `state` from `path`, this rank's part of each sharded global,
/// and returns its metadata; throws moert::Error naming the file and the
/// tensor if the checkpoint is truncated, corrupt or of another model (a
/// missing, extra or differently shaped tensor), holds a non-finite value,
/// or its optimizer step count disagrees with its metadata. The config's
/// constants (moe_global.config_constant) take their initializers' values,
/// and so do globals missing from it that its model held constant (an
/// adaptive coefficient that was fixed).
CheckpointRun loadCheckpoint(const std::string &path, const moe_model &model,
                             void *state, const RankGroup &group);

/// A "pass.key=value ..." list of training settings (moe_model.training) as
/// key -> value ("" for a word without '=').
std::map<std::string, std::string> trainingSettings(const std::string &text);

/// The training settings ("key=value ..." lists, as moe_model.training)
/// that differ between a checkpoint's and this binary's, as "key: checkpoint
/// value -> this binary's value", "; "-separated; "" when they agree or
/// either is unknown.
std::string trainingChanges(const std::string &checkpoint,
                            const std::string &binary);

/// The config keys that requireCheckpointConfig lets differ and that do,
/// between a checkpoint's config and this model's, as trainingChanges says
/// its settings; "" when they agree. `adaptiveAux` says that the model's
/// aux-loss coefficients are state its steps move (adaptiveAuxCoefficients),
/// which the config's coefficient only starts.
std::string resumableChanges(const std::string &path, const CheckpointRun &run,
                             const ModelConfigText &config, bool adaptiveAux);

/// Whether `model`'s aux-loss coefficients are state that its steps move
/// (moe-adaptive-aux's) rather than constants of its config.
bool adaptiveAuxCoefficients(const moe_model &model);

/// Throws unless `path` is absent or a moe checkpoint (of any model): a
/// checkpoint replaces its predecessor, never another file (say the run's
/// own data) given by mistake.
void requireReplaceableCheckpoint(const std::string &path);

/// The step that checkpoint `path` holds if it is past `firstStep`, the step
/// a run starts at, of a run that `model` resumes (the same model and
/// configuration); none for any other file, or none there.
std::optional<int64_t> laterCheckpointStep(const std::string &path,
                                           const moe_model &model,
                                           int64_t firstStep);

/// Throws when `path` holds such a later step: a run started again without
/// --resume would replace the progress it was meant to continue.
void requireNoLaterCheckpoint(const std::string &path, const moe_model &model,
                              int64_t firstStep);

/// Throws moert::Error, naming the sizes, when the file system of the
/// checkpoint that `lock` is for has less room than the run's saves of
/// `model` need (one checkpoint; where saves follow the first, each
/// written beside the last, two less the file there now), or fewer free
/// inodes (one; two where saves follow a new file's first): a run would
/// otherwise find out at a checkpoint, after the steps before it.
void requireRoomForCheckpoint(const WriterLock &lock, const moe_model &model,
                              const RankGroup &group, bool severalSaves);

/// Overwrites the trainable globals of `state` (initialized before) with
/// the weights at `path`: a Hugging Face model folder or safetensors file,
/// or one of our checkpoints (see WeightSource.h), converted to the model's
/// dtype, this rank's part of each sharded global. Every trainable global
/// must be there with its shape, and every tensor must have a global; the
/// other globals (optimizer state) keep their initial values. Throws
/// moert::Error naming the file, the tensor and both shapes (or its first
/// non-finite value), before any global is written. A model that moe-upcycle
/// wrote also reads a checkpoint of the dense model it came from (one that
/// lacks the model's own trainable globals): each global with an upcycle rule
/// is built by it (moert/Upcycle.h; noise and fresh routers drawn from `seed`),
/// and every dense tensor must feed a rule. Returns notes naming the
/// config keys that a checkpoint of the model was trained with otherwise
/// (rope_theta, top-k: what the weights fit but compute differently) and
/// the multi-token-prediction layers skipped, or "".
std::string initializeFromWeights(const std::string &path,
                                  const moe_model &model, void *state,
                                  const RankGroup &group, uint64_t seed);

} // namespace moert

#endif // MOERT_CHECKPOINT_H
