//===- TrainMain.cpp - the training driver of every compiled model --------===//
//
// Linked with a model's generated code into a training binary: loads data
// (text or llm.c token files) with a held-out validation split or a
// validation file of its own, trains with the model's train_step, prints a
// progress line per step, writes metrics as JSONL, evaluates, checkpoints
// (resumable to the same loss curve) and ends with a sample of generated
// text. --skip-train only evaluates and samples the weights it loaded.
//
//===----------------------------------------------------------------------===//

#include "CheckpointSaves.h"
#include "ProfileReport.h"
#include "Sampling.h"
#include "SharedCores.h"
#include "StepMetrics.h"
#include "StopSignals.h"
#include "TrainData.h"
#include "TrainOptions.h"
#include "moert/AtomicFile.h"
#include "moert/Checkpoint.h"
#include "moert/Error.h"
#include "moert/Files.h"
#include "moert/MetricsLog.h"
#include "moert/MicroBatches.h"
#include "moert/ModelState.h"
#include "moert/StandardStreams.h"
#include "moert/StateNames.h"
#include "moert/TokenData.h"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <numeric>
#include <optional>
#include <vector>

#include <sys/auxv.h>
#include <sys/stat.h>
#include <unistd.h>

namespace {

using Clock = std::chrono::steady_clock;

/// Calls a model function with host inputs by position; its inputs and
/// outputs live in the target's memory, its outputs also on the host.
class Function {
public:
  Function(const moe_model &model, const moe_function &function, void *state,
           void *arena)
      : model(model), function(function), state(state), arena(arena),
        outputOffsets(packedOffsets(function, model.alignment)),
        outputs(model, outputOffsets.back(),
                fmt::format("the outputs of {}", function.name)),
        hostOutputs(outputOffsets.back()) {
    for (int64_t i = 0; i < function.num_inputs; ++i)
      inputs.emplace_back(model, moert::tensorBytes(function.inputs[i]),
                          fmt::format("input {} of {}", i, function.name));
  }

  /// Runs the function to completion on `hostInputs`.
  void call(const std::vector<const void *> &hostInputs) {
    std::vector<const void *> inputPointers;
    for (size_t i = 0; i < inputs.size(); ++i) {
      inputs[i].copyFromHost(hostInputs[i]);
      inputPointers.push_back(inputs[i].data());
    }
    std::vector<void *> outputPointers;
    for (int64_t i = 0; i < function.num_outputs; ++i)
      outputPointers.push_back(static_cast<char *>(outputs.data()) +
                               outputOffsets[i]);
    function.call(state, arena, inputPointers.data(), outputPointers.data());
    model.target->synchronize();
    outputs.copyToHost(hostOutputs.data());
  }

  /// The scalar f32 output named `name`, if the function has one.
  std::optional<float> scalar(std::string_view name) const {
    for (int64_t i = 0; i < function.num_outputs; ++i)
      if (name == function.outputs[i].name &&
          function.outputs[i].dtype == MOE_F32)
        return *output(i);
    return std::nullopt;
  }
  const float *output(int64_t index) const {
    return reinterpret_cast<const float *>(hostOutput(index));
  }
  /// Every output by name.
  nlohmann::json outputsByName() const {
    nlohmann::json line = nlohmann::json::object();
    for (int64_t i = 0; i < function.num_outputs; ++i)
      moert::addOutput(line, function, i, hostOutput(i));
    return line;
  }

private:
  /// Where each output starts in one buffer holding them all, each at
  /// `alignment`, then the buffer's size: a call copies its outputs to the
  /// host at once (a train step has several small ones a layer, and a copy
  /// from a GPU waits for the GPU).
  static std::vector<int64_t> packedOffsets(const moe_function &function,
                                            int64_t alignment) {
    alignment = std::max<int64_t>(alignment, 1);
    std::vector<int64_t> offsets{0};
    for (int64_t i = 0; i < function.num_outputs; ++i) {
      int64_t bytes = moert::tensorBytes(function.outputs[i]);
      offsets.push_back(offsets.back() +
                        (bytes + alignment - 1) / alignment * alignment);
    }
    return offsets;
  }
  const char *hostOutput(int64_t index) const {
    return static_cast<const char *>(hostOutputs.data()) + outputOffsets[index];
  }

  const moe_model &model;
  const moe_function &function;
  void *state;
  void *arena;
  std::vector<int64_t> outputOffsets;
  moert::TargetBuffer outputs;
  moert::AlignedBuffer hostOutputs;
  std::vector<moert::TargetBuffer> inputs;
};

const moe_function &requireFunction(const moe_model &model,
                                    std::string_view name) {
  const moe_function *function = moert::findFunction(model, name);
  if (!function)
    moert::fail("the model has no function '{}'", name);
  return *function;
}

/// This rank's rows of the global batch: every rank draws the batch one
/// process would draw and keeps its part.
moert::TokenBatch rankPart(moert::TokenBatch global, int64_t batch,
                           const moert::RankGroup &group) {
  if (group.ranks == 1)
    return global;
  moert::TokenBatch mine{batch, global.seqLen, {}, {}};
  auto part = [&](const std::vector<int32_t> &all) {
    auto begin = all.begin() + group.rank * batch * global.seqLen;
    return std::vector<int32_t>(begin, begin + batch * global.seqLen);
  };
  mine.inputs = part(global.inputs);
  mine.targets = part(global.targets);
  return mine;
}

moert::TokenBatch nextBatch(moert::BatchSampler &sampler, int64_t batch,
                            const moert::RankGroup &group) {
  return rankPart(sampler.next(batch * group.ranks), batch, group);
}

/// The output the binaries report as the loss, in training and validation:
/// the cross-entropy alone (lm_loss) where the loss function also returns
/// it, beside an objective with aux terms; else the loss.
std::string reportedLoss(const moe_function &lossFunction) {
  for (int64_t i = 0; i < lossFunction.num_outputs; ++i)
    if (lossFunction.outputs[i].name == moert::kLanguageModelLoss)
      return std::string(moert::kLanguageModelLoss);
  return "loss";
}

/// The mean `loss` output of `forward` over `batches` fixed validation
/// batches, or with `batches` 0 over the whole batches of the windows in
/// order (all of them but those that fill no batch, which are fewer than a
/// batch); none when a signal asked the run (any rank) to stop before they
/// were all done.
std::optional<double> evaluate(const moe_model &model, Function &forward,
                               const std::string &loss,
                               const std::vector<int32_t> &tokens,
                               int64_t batch, int64_t seqLen, int64_t batches,
                               uint64_t seed, const moert::RankGroup &group) {
  int64_t global = batch * group.ranks;
  std::optional<moert::BatchSampler> sampler;
  if (batches > 0)
    sampler.emplace(tokens, seqLen, seed ^ 0x76616c6964ULL, "validation data");
  else
    batches = moert::windowsInOrder(tokens.size(), seqLen) / global;
  double total = 0;
  for (int64_t b = 0; b < batches; ++b) {
    if (moert::stopRequestedOnAnyRank(model, group) != 0)
      return std::nullopt;
    moert::TokenBatch data =
        sampler
            ? nextBatch(*sampler, batch, group)
            : rankPart(moert::windowBatch(tokens, seqLen, b * global, global),
                       batch, group);
    forward.call({data.inputs.data(), data.targets.data()});
    total += *forward.scalar(loss);
  }
  return total / static_cast<double>(batches);
}

/// Every rank of `group` holds the same `text`, else every rank fails,
/// naming the first rank that differs, `what` it differs in ("was started
/// with other options") and a `hint`: ranks that disagree would wait in a
/// collective, write past a peer's buffers, or train apart without a word.
void requireSameOnEveryRank(const moe_model &model,
                            const moert::RankGroup &group,
                            std::string_view text, const std::string &what,
                            const std::string &hint = "") {
  uint64_t hash = std::hash<std::string_view>()(text);
  std::vector<uint64_t> hashes(group.ranks);
  model.target->gather(group.allAxes(), &hash, sizeof hash, hashes.data());
  for (int64_t rank = 1; rank < group.ranks; ++rank)
    if (hashes[rank] != hashes[0])
      moert::fail("rank {} {} than rank 0{}", rank, what, hint);
}

/// What tells compiled models apart: their names, configs, settings and
/// state layout.
std::string modelFingerprint(const moe_model &model) {
  std::string text =
      fmt::format("{}\n{}\n{}\n{}\n", model.name, model.config_json,
                  model.training, model.state_bytes);
  for (int64_t i = 0; i < model.num_globals; ++i)
    text += fmt::format("{} {}\n", model.globals[i].tensor.name,
                        model.globals[i].bytes);
  return text;
}

/// A digest of the globals that every rank holds whole and alike (not an
/// expert shard, not a part of the distributed optimizer's moments): one
/// hash per global, so that no copy of the state is made.
std::string replicatedStateDigest(const moe_model &model, const void *state) {
  std::string digest;
  for (int64_t i = 0; i < model.num_globals; ++i) {
    const moe_global &global = model.globals[i];
    if (!global.sharded && !global.part_axes && !global.transient)
      digest += fmt::format(
          "{:x}\n",
          std::hash<std::string_view>()(std::string_view(
              static_cast<const char *>(state) + global.offset, global.bytes)));
  }
  return digest;
}

/// Throws where a binary of one process was started as one of several by
/// an MPI launcher (its environment says so: Open MPI's mpirun, or a PMI
/// launcher such as MPICH's mpiexec and srun): each would train the whole
/// model alone, as a copy of the others.
void requireOneProcessJob() {
  for (const char *variable : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"}) {
    const char *value = std::getenv(variable);
    if (value && std::strtol(value, nullptr, 10) > 1)
      moert::fail("this binary trains in one process, but it was started as "
                  "one of {} ({}={}): run it without mpirun, or compile it "
                  "with moe-compile --expert-parallel N for a job of N ranks",
                  value, variable, value);
  }
}

/// What this process's messages start with: under mpirun, which
/// interleaves the ranks' output, the binary and the rank (once the job's
/// group is joined; -1 before, and in a job of one process).
std::string rankedName(const char *binary, int32_t rank) {
  return rank < 0 ? std::string(binary)
                  : fmt::format("{} (rank {})", binary, rank);
}

/// `rank` is set once the job's group is joined (a job of one process
/// leaves it -1).
int run(int argc, char **argv, int32_t &rank) {
  Clock::time_point launched = Clock::now();
  const moe_model &model = *moe_get_model();
  if (model.abi_version != MOE_ABI_VERSION)
    moert::fail("model ABI version {} does not match the driver's {}",
                model.abi_version, MOE_ABI_VERSION);
  int64_t scheduledSteps = moert::scheduledSteps(model.training);
  moert::TrainOptions options =
      moert::parseTrainOptions(argc, argv, scheduledSteps);
  int32_t threads =
      model.target->set_threads(static_cast<int32_t>(options.threads));
  // An expert-parallel model runs as one process per rank; rank 0 reports
  // and writes files, every rank computes.
  moert::RankGroup group;
  if (model.ranks == 1)
    requireOneProcessJob();
  if (model.ranks > 1) {
    group.ranks = model.ranks;
    group.expertRanks = model.expert_ranks;
    try {
      group.rank = model.target->join_group(model.ranks, model.expert_ranks);
    } catch (const moert::GroupError &error) {
      rank = error.rank;
      throw;
    }
    rank = static_cast<int32_t>(group.rank);
    requireSameOnEveryRank(model, group, modelFingerprint(model),
                           "runs another model",
                           " (another binary at that path on its node?)");
    std::string line;
    for (int i = 1; i < argc; ++i)
      line.append(argv[i]).push_back('\0');
    requireSameOnEveryRank(model, group, line, "was started with other options",
                           ": every rank takes the same command line");
    // The default of every core, shared with the ranks on those cores. The
    // count is a collective, taken whatever each rank's environment says.
    int32_t sharing =
        static_cast<int32_t>(moert::ranksSharingCores(model, group));
    if (options.threads == 0 && !std::getenv("OMP_NUM_THREADS"))
      threads =
          model.target->set_threads(std::max<int32_t>(1, threads / sharing));
    if (group.rank != 0 && !std::freopen("/dev/null", "w", stdout))
      moert::fail("cannot silence rank {}'s output", group.rank);
  }
  bool primary = group.rank == 0;
  const moe_function &trainStep = requireFunction(model, "train_step");
  const moe_function &forwardFn = requireFunction(model, "forward");
  std::string lossName = reportedLoss(forwardFn);
  if (trainStep.num_inputs != 2 || trainStep.inputs[0].rank != 2)
    moert::fail("train_step must take input_ids and labels [batch, seq]");
  // Gradient accumulation: micro_batches - 1 micro steps before each step.
  int64_t microBatches = std::max<int64_t>(model.micro_batches, 1);
  const moe_function *microStepFn =
      microBatches > 1 ? &requireFunction(model, moert::kMicroStepFunction)
                       : nullptr;
  int64_t batch = trainStep.inputs[0].shape[0];
  int64_t seqLen = trainStep.inputs[0].shape[1];

  // The state lives in the target's memory; initialization and checkpoints
  // read and write its host view.
  moert::StateBuffers state(model);
  int64_t arenaBytes = 0;
  for (int64_t i = 0; i < model.num_functions; ++i)
    arenaBytes = std::max(arenaBytes, model.functions[i].arena_bytes);
  moert::TargetBuffer arena(
      model, arenaBytes,
      "the arena (a step's activations and temporaries; moe-compile "
      "--micro-batches N divides the activations by about N)");

  // Everything knowable before step 1 is checked before step 1: the data,
  // its vocabulary and validation split, the checkpoint to resume and the
  // files to write.
  moert::requireDistinctFiles(
      {{"--metrics", options.metrics}, {"--checkpoint", options.checkpoint}},
      {{"--data", options.data},
       {"--val-data", options.valData},
       {"--init-from", options.initFrom}});
  int64_t vocab = 0;
  if (const moe_global *table =
          moert::findGlobal(model, moert::kTokenEmbeddingGlobal))
    vocab = table->tensor.shape[0];
  moert::TrainData data = moert::readTrainData(options, vocab, seqLen);
  if (int64_t windows = moert::windowsInOrder(data.validation.size(), seqLen);
      options.evalBatches == 0 && windows < batch * group.ranks)
    moert::fail("{}: --eval-batches all: the validation tokens hold {} "
                "window{} of {}, fewer than one batch of {}",
                data.validationFile, windows, windows == 1 ? "" : "s",
                seqLen + 1, batch * group.ranks);
  if (primary)
    fmt::print(stderr, "{}", data.note);
  std::vector<int32_t> &tokens = data.train, &valTokens = data.validation;
  // Each split's tokens are digested once: for checkpoints, which record the
  // training split's, and for the ranks, which compare both.
  std::string trainData = moert::tokensFingerprint(tokens);
  if (group.ranks > 1)
    requireSameOnEveryRank(
        model, group, trainData + "\n" + moert::tokensFingerprint(valTokens),
        fmt::format("read other data from {}{}", options.data,
                    options.valData.empty() ? "" : " or " + options.valData));
  moert::RunPosition position{0, options.seed, 0, trainData};
  double initializationSeconds = 0;
  if (!options.resume.empty()) {
    moert::CheckpointRun run =
        moert::loadCheckpoint(options.resume, model, state.host(), group);
    position = run.position;
    if (group.ranks > 1)
      requireSameOnEveryRank(
          model, group,
          fmt::format("{} {} {}\n", position.step, position.seed,
                      position.trainPosition) +
              replicatedStateDigest(model, state.host()),
          fmt::format("resumed another run from {}", options.resume));
    // Resuming under other settings (say a new learning-rate schedule) is
    // allowed, but said, since this run's settings (and data) win.
    std::string changes;
    auto addChanges = [&](const std::string &more) {
      if (!more.empty())
        changes += (changes.empty() ? "" : "; ") + more;
    };
    // What evaluation depends on, with --skip-train: the config, not the
    // training settings or data.
    if (!options.skipTrain)
      addChanges(moert::trainingChanges(run.training, model.training));
    addChanges(moert::resumableChanges(options.resume, run,
                                       moert::configTextOf(model),
                                       moert::adaptiveAuxCoefficients(model)));
    addChanges(run.stateChanges);
    if (!options.skipTrain && !position.trainData.empty() &&
        position.trainData != trainData)
      addChanges(fmt::format("training data ({}): {} -> {}", options.data,
                             position.trainData, trainData));
    position.trainData = trainData;
    if (!changes.empty() && primary)
      fmt::print(stderr,
                 "note: {} was trained with other settings than this "
                 "run's, which {}: {}\n",
                 options.resume,
                 options.skipTrain ? "it is evaluated with"
                                   : "training goes on with",
                 changes);
    if (options.isGiven("seed") && position.seed != options.seed)
      moert::fail("{}: the run was trained with --seed {}, not {}: resume "
                  "without --seed, or with --seed {}",
                  options.resume, position.seed, options.seed, position.seed);
    options.seed = position.seed;
    if (!options.skipTrain && position.step >= options.steps)
      moert::fail("{} is at step {}, at or past --steps {}: nothing to train",
                  options.resume, position.step, options.steps);
  } else {
    Clock::time_point start = Clock::now();
    moert::initializeState(model, state.host(), options.seed, group);
    initializationSeconds =
        std::chrono::duration<double>(Clock::now() - start).count();
    if (!options.initFrom.empty()) {
      std::string note = moert::initializeFromWeights(
          options.initFrom, model, state.host(), group, options.seed);
      if (primary)
        fmt::print(stderr, "{}", note);
      // Copies that start apart drift apart: a checkpoint would then hold a
      // mix of them that no rank trained.
      if (group.ranks > 1)
        requireSameOnEveryRank(
            model, group, replicatedStateDigest(model, state.host()),
            fmt::format("read other weights from {}", options.initFrom));
    }
  }
  // --skip-train draws no training batch (and may read no --data).
  std::optional<moert::BatchSampler> train;
  if (!options.skipTrain) {
    train.emplace(std::move(tokens), seqLen, options.seed,
                  options.data + " (training split)");
    train->setPosition(position.trainPosition);
  }
  if (!options.resume.empty())
    fmt::print("resumed {} at step {}\n", options.resume, position.step);
  if (!options.initFrom.empty())
    fmt::print("initialized from {}\n", options.initFrom);
  state.hostToTarget();

  std::optional<moert::CheckpointSaves> checkpoints;
  if (!options.checkpoint.empty())
    checkpoints.emplace(
        options.checkpoint, model, group, position.step, options.steps,
        options.checkpointInterval > 0 &&
            position.step + options.checkpointInterval < options.steps,
        std::vector<moert::FileOption>{{"--init-from", options.initFrom},
                                       {"--resume", options.resume},
                                       {"--data", options.data},
                                       {"--val-data", options.valData}},
        primary);

  const moe_function *logitsFn = moert::findFunction(model, "logits");
  std::optional<std::vector<int32_t>> prompt;
  if (logitsFn && options.sampleTokens > 0)
    prompt = moert::promptTokens(options, data.text, data.firstToken,
                                 logitsFn->outputs[0].shape[2]);

  Function step(model, trainStep, state.target(), arena.data());
  std::optional<Function> microStep;
  if (microStepFn)
    microStep.emplace(model, *microStepFn, state.target(), arena.data());
  Function forward(model, forwardFn, state.target(), arena.data());
  const moe_function *similarityFn =
      moert::findFunction(model, "expert_similarity");
  std::optional<Function> similarity;
  if (similarityFn)
    similarity.emplace(model, *similarityFn, state.target(), arena.data());
  std::optional<moert::MetricsLog> metrics;
  if (primary && !options.metrics.empty())
    metrics.emplace(options.metrics);
  auto record = [&](const nlohmann::json &line) {
    if (metrics)
      metrics->append(line);
  };
  std::optional<int64_t> savedStep;
  auto saveCheckpoint = [&] {
    position.trainPosition = train->getPosition();
    state.targetToHost();
    std::string path = checkpoints->pathOf(position.step);
    moert::saveCheckpoint(path, model, state.host(), position, group);
    savedStep = position.step;
    fmt::print("checkpoint {} (step {})\n", path, position.step);
  };

  if (options.skipTrain)
    fmt::print("{}: no training (--skip-train) at step {}, validating on {} "
               "({} tokens), {} target, {} threads",
               model.name, position.step, data.validationFile, valTokens.size(),
               model.target->name, threads);
  else
    fmt::print("{}: {} steps of {} x {} tokens on {} ({} training, {} "
               "validation tokens{}), {} target, {} threads",
               model.name, options.steps, batch * group.ranks, seqLen,
               options.data, train->size(), valTokens.size(),
               options.valData.empty() ? "" : " from " + options.valData,
               model.target->name, threads);
  if (microBatches > 1 && !options.skipTrain)
    fmt::print(", {} micro-batches a step", microBatches);
  if (group.ranks > 1)
    fmt::print(", {} ranks", group.ranks);
  if (group.ranks > 1 && group.expertRanks == 1)
    fmt::print(" (data parallel: each holds every expert)");
  else if (group.expertRanks < group.ranks)
    fmt::print(" ({} replicas of {} that share the experts)",
               group.ranks / group.expertRanks, group.expertRanks);
  if (std::any_of(model.globals, model.globals + model.num_globals,
                  [](const moe_global &global) { return global.part_axes; }))
    fmt::print(", distributed optimizer");
  if (group.ranks > 1)
    fmt::print(", {:.1f} MB of state a rank", model.state_bytes / 1e6);
  fmt::print("\nready in {:.2f} s (parameters initialized in {:.2f} s)\n",
             std::chrono::duration<double>(Clock::now() - launched).count(),
             initializationSeconds);
  if (!options.skipTrain && options.steps > 0 && options.steps < scheduledSteps)
    fmt::print("note: --steps {} ends the run short of its learning-rate "
               "schedule's decay-steps, {} (moe-compile --optimizer "
               "decay-steps=N sets them)\n",
               options.steps, scheduledSteps);
  auto measureSimilarity = [&] {
    similarity->call({});
    nlohmann::json similarities = {{"step", position.step}};
    similarities.update(similarity->outputsByName());
    record(similarities);
    fmt::print("step {:5} | expert similarity {}\n", position.step,
               moert::layerValues(similarities, "expert_similarity"));
  };
  int64_t firstStep = position.step;
  // A run's first step computes on the state it started from: a
  // resumed checkpoint's, which a damaged file may have made non-finite.
  auto divergenceAdvice = [&] {
    bool firstFromCheckpoint =
        !options.resume.empty() && position.step == firstStep + 1;
    return std::string(firstFromCheckpoint
                           ? " (the first step after --resume: is the "
                             "checkpoint's state damaged? else lower the "
                             "learning rate)"
                           : " (lower the learning rate)") +
           "; the last checkpoint is kept";
  };
  auto validate = [&] {
    std::optional<double> evaluated =
        evaluate(model, forward, lossName, valTokens, batch, seqLen,
                 options.evalBatches, options.seed, group);
    if (!evaluated)
      return; // stopped: a part of the batches is no validation loss
    double valLoss = *evaluated;
    fmt::print("step {:5} | validation loss {:.4f}\n", position.step, valLoss);
    record({{"step", position.step}, {"val_loss", valLoss}});
    // The last step's update shows only here (or in the next step's loss).
    if (!std::isfinite(valLoss))
      moert::fail("the validation loss at step {} is {}: the weights no "
                  "longer give finite losses{}",
                  position.step, valLoss,
                  options.skipTrain ? "" : divergenceAdvice());
  };

  // A step's figures, and the time of steps in collectives (not
  // validation's).
  double tokensPerStep =
      static_cast<double>(microBatches * batch * group.ranks * seqLen);
  double flopsPerStep = trainStep.model_flops +
                        (microStepFn ? static_cast<double>(microBatches - 1) *
                                           microStepFn->model_flops
                                     : 0);
  moert::ProgressLog progress(lossName, options.steps, tokensPerStep,
                              flopsPerStep, group.ranks);
  double collectiveSeconds = 0;
  moert::StepProfile profile(microStepFn ? std::vector{microStepFn, &trainStep}
                                         : std::vector{&trainStep});
  moert::allowStopBetweenSteps();
  while (!options.skipTrain && position.step < options.steps &&
         moert::stopRequestedOnAnyRank(model, group) == 0) {
    Clock::time_point start = Clock::now();
    double collectivesBefore = model.target->collective_seconds();
    std::vector<nlohmann::json> microBatchFigures;
    for (int64_t micro = 1; micro <= microBatches; ++micro) {
      Function &function = micro < microBatches ? *microStep : step;
      moert::TokenBatch data = nextBatch(*train, batch, group);
      function.call({data.inputs.data(), data.targets.data()});
      microBatchFigures.push_back(function.outputsByName());
    }
    double seconds =
        std::chrono::duration<double>(Clock::now() - start).count();
    profile.recordStep(seconds);
    collectiveSeconds += model.target->collective_seconds() - collectivesBefore;
    ++position.step;
    nlohmann::json figures = moert::meanOverMicroBatches(microBatchFigures);
    nlohmann::json line = figures;
    line.update(
        {{"step", position.step},
         {"step_seconds", seconds},
         {"tokens_per_second", tokensPerStep / seconds},
         {"model_flops_per_second", flopsPerStep / seconds},
         {"consumed_samples", train->getPosition()},
         {"time", std::chrono::duration<double>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count()}});
    record(line);
    // A diverged step's update is not trusted: the run stops before any
    // checkpoint holds it.
    for (std::string_view key :
         {std::string_view("loss"), moert::kGradNormOutput})
      if (auto value = figures.find(key);
          value != figures.end() && !std::isfinite(value->get<double>()))
        moert::fail("training diverged at step {}: the {} is {}{}",
                    position.step, key == "loss" ? "loss" : "gradient norm",
                    value->get<double>(), divergenceAdvice());
    progress.add(std::move(figures), seconds);
    if (position.step % options.logInterval == 0 ||
        position.step == options.steps) {
      progress.print(position.step);
      std::fflush(stdout);
    }
    bool last = position.step == options.steps;
    if (similarity && options.similarityInterval > 0 &&
        (position.step % options.similarityInterval == 0 || last))
      measureSimilarity();
    if ((options.evalInterval > 0 &&
         position.step % options.evalInterval == 0) ||
        last)
      validate();
    if (!options.checkpoint.empty() &&
        ((options.checkpointInterval > 0 &&
          position.step % options.checkpointInterval == 0) ||
         last))
      saveCheckpoint();
  }

  if (options.skipTrain) {
    if (similarity && options.similarityInterval > 0)
      measureSimilarity();
    validate();
  } else if (options.steps == 0 && !options.checkpoint.empty()) {
    // The initialized state as a step-0 checkpoint: a run, or moe-run
    // --resume, can start from it.
    saveCheckpoint();
  }
  if (int stopSignal = moert::stopRequestedOnAnyRank(model, group)) {
    // The ranks stop after the same step, whose checkpoint they write.
    bool save = !options.skipTrain && !options.checkpoint.empty() &&
                savedStep != position.step && position.step > firstStep;
    // The steps since the last progress line show too.
    progress.print(position.step);
    if (save)
      saveCheckpoint();
    std::fflush(stdout);
    std::string saved =
        options.checkpoint.empty() ? std::string("no checkpoint asked for")
        : savedStep
            ? fmt::format("{} holds step {}", checkpoints->pathOf(*savedStep),
                          *savedStep)
            : fmt::format("{} not written by this run", options.checkpoint);
    // Every rank says so: a signal may reach one rank only.
    moert::printToStderr(fmt::format(
        "{}: stopped by {} after step {}{}", rankedName(argv[0], rank),
        stopSignal == SIGINT ? "SIGINT" : "SIGTERM", position.step,
        primary ? "; " + saved : ""));
    // None ends before rank 0 has written the checkpoint and said so:
    // mpirun ends the others when one exits so.
    if (save)
      moert::waitForEveryRank(model, group);
    return 128 + stopSignal;
  }
  if (profile.enabled() && position.step > firstStep) {
    fmt::print("{}", profile.format());
    record({{"profile", profile.json()}});
  }
  if (prompt) {
    Function logits(model, *logitsFn, state.target(), arena.data());
    std::vector<int32_t> window(batch * seqLen, 0);
    auto logitsOf = [&](const std::vector<int32_t> &tokens) {
      std::copy(tokens.begin(), tokens.end(), window.begin());
      logits.call({window.data()});
      return logits.output(0);
    };
    std::vector<int32_t> sample = moert::sampleTokens(
        logitsOf, *prompt, seqLen, logitsFn->outputs[0].shape[2], options,
        [&] { return moert::stopRequestedOnAnyRank(model, group) != 0; });
    if (data.text)
      fmt::print("---- sample (temperature {:.2f}, top-k {}) ----\n{}{}\n",
                 options.temperature, options.topK,
                 moert::formatTokens(*prompt, true),
                 moert::formatTokens(sample, true));
    else
      fmt::print("---- sample (temperature {:.2f}, top-k {}; token ids after "
                 "the prompt {}) ----\n{}\n",
                 options.temperature, options.topK,
                 moert::formatTokens(*prompt, false),
                 moert::formatTokens(sample, false));
  }
  // Where steps ran (not --skip-train, not --steps 0).
  double trainSeconds = progress.secondsTimed();
  if (group.ranks > 1 && trainSeconds > 0) {
    if (model.target->collective_seconds() < 0)
      fmt::print("{:.2f} s of training steps; this target does not time its "
                 "collectives apart (--profile's binaries do)\n",
                 trainSeconds);
    else
      fmt::print("{:.2f} s of {:.2f} s of training steps in collectives\n",
                 collectiveSeconds, trainSeconds);
  }
  if (group.ranks > 1)
    model.target->leave_group();
  return 0;
}

/// libgomp waits at a barrier by spinning 300,000 times (milliseconds on
/// recent x86) before it sleeps, so runs side by side on the same cores
/// spin away each other's time slices at every barrier of a step
/// (docs/Performance.md, "Runs side by side"). 1,000 spins are as fast for
/// a run alone. libgomp reads its environment when it is loaded, so the
/// binary runs itself again with GOMP_SPINCOUNT=1000; returns where it
/// does not: where the user chose libgomp's wait or the threads' places
/// (the first run's binding would narrow the second's CPUs), under
/// valgrind (whose tools would not follow), and where a loader ran the
/// binary (`ld.so BINARY`: /proc/self/exe is the loader).
void shortenOpenMpSpinning(char **argv) {
  for (const char *name : {"GOMP_SPINCOUNT", "OMP_WAIT_POLICY", "OMP_PROC_BIND",
                           "OMP_PLACES", "GOMP_CPU_AFFINITY"})
    if (std::getenv(name))
      return;
  const char *preload = std::getenv("LD_PRELOAD");
  if (preload && std::strstr(preload, "vgpreload"))
    return;
  const char *path = reinterpret_cast<const char *>(getauxval(AT_EXECFN));
  struct stat running, named;
  if (!path || stat("/proc/self/exe", &running) != 0 ||
      stat(path, &named) != 0 || running.st_dev != named.st_dev ||
      running.st_ino != named.st_ino)
    return;
  // This process's environment stays as it was if the exec fails.
  std::vector<char *> environment;
  for (char **entry = environ; *entry; ++entry)
    environment.push_back(*entry);
  char spinCount[] = "GOMP_SPINCOUNT=1000";
  environment.push_back(spinCount);
  environment.push_back(nullptr);
  execve("/proc/self/exe", argv, environment.data());
}

} // namespace

int main(int argc, char **argv) {
  shortenOpenMpSpinning(argv);
  moert::reportFailedWrites();
  moert::reserveStandardStreams();
  int32_t rank = -1;
  try {
    moert::takeStopSignals();
    int status = run(argc, argv, rank);
    if (status == 0)
      moert::requireStdoutWritten();
    return status;
  } catch (...) {
    // mpirun interleaves the ranks' output: say whose error it is (a file
    // missing on one node).
    return moert::exitOnErrors(rankedName(argv[0], rank).c_str(),
                               []() -> int { throw; });
  }
}
