//===- TrainOptions.cpp - the training driver's command line --------------===//

#include "TrainOptions.h"
#include "CheckpointSaves.h"
#include "moert/Checkpoint.h"
#include "moert/Error.h"
#include "moert/ModelAbi.h"
#include "moert/TokenData.h"

#include <fmt/core.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <map>
#include <string>

namespace {

const char *kUsage = R"(usage: {0} [options]
  --data FILE              text (one token per byte) or llm.c token file
                           (GPT-2's uint16 or Llama 3's uint32 tokens)
                           (default {2})
  --steps N                total optimizer steps (default {1})
  --eval-interval N        validation loss every N steps (default 100; 0: end only)
  --eval-batches N         batches per validation (default 8; all: every
                           window of the validation tokens once, in order)
  --val-fraction F         tail of the data held out for validation (default 0.1)
  --val-data FILE          validate on this file instead (in --data's format),
                           training on all of --data (--skip-train reads it
                           alone, without --data)
  --seed N                 initialization and data seed (default 0)
  --threads N              host threads of the kernels (default: all cores,
                           shared with the ranks on them under mpirun)
  --checkpoint FILE        write a checkpoint here (at the end, every
                           --checkpoint-interval steps, and on a stop by
                           SIGINT or SIGTERM); {{step}} in FILE's name: a
                           file per save, named by its step, each kept
  --checkpoint-interval N  (default 0: end only)
  --resume FILE            continue the run saved in a checkpoint
  --init-from PATH         start from these weights: a Hugging Face model
                           folder or safetensors file, or a checkpoint
  --metrics FILE           append one JSON object per step (JSONL)
  --sample-tokens N        generate N tokens at the end (default 200)
  --temperature T          sampling temperature (default 0.8)
  --top-k K                sample among the K most likely tokens (default 40)
  --prompt TEXT            text to continue (default a newline); for an
                           llm.c token file, token ids separated by spaces
                           (default the data's first token; --skip-train
                           with --val-data: that file's)
  --log-interval N         progress lines (the means of the steps since the
                           last, then one per MoE layer) every N steps
                           (default 10)
  --similarity-interval N  average pairwise cosine similarity of each MoE
                           layer's experts every N steps (default 100; 0: off)
  --skip-train             train nothing: report the validation loss (and the
                           expert similarity) of the weights from --resume,
                           --init-from or the initialization, then sample
)";

/// What --skip-train leaves without effect: training, and writing its
/// state.
const char *const kTrainingOptions[] = {"steps", "eval-interval", "checkpoint",
                                        "checkpoint-interval", "log-interval"};

constexpr int64_t kMaxCount = int64_t(1) << 53;

/// `text` as an integer in [min, max], or an Error naming `option`.
int64_t parseInteger(const std::string &option, const std::string &text,
                     int64_t min, int64_t max) {
  errno = 0;
  char *end = nullptr;
  long long value = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || text.find_first_of(" \t") == 0)
    moert::fail("option --{}: '{}' is not an integer", option, text);
  if (errno == ERANGE || value < min || value > max)
    moert::fail("option --{}: {} is outside [{}, {}]", option, text, min, max);
  return value;
}

/// `text` as a finite real in (0, max], or an Error naming `option`.
double parsePositiveReal(const std::string &option, const std::string &text,
                         double max) {
  errno = 0;
  char *end = nullptr;
  double value = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || text.find_first_of(" \t") == 0 ||
      !std::isfinite(value))
    moert::fail("option --{}: '{}' is not a finite number", option, text);
  if (!(value > 0) || !(value <= max))
    moert::fail("option --{}: {} is outside (0, {}]", option, text, max);
  return value;
}

} // namespace

int64_t moert::scheduledSteps(const std::string &training) {
  std::map<std::string, std::string> settings = trainingSettings(training);
  auto decaySteps = settings.find("moe-optimizer.decay-steps");
  auto decay = settings.find("moe-optimizer.lr-decay");
  if (decaySteps == settings.end() ||
      (decay != settings.end() && decay->second == "constant"))
    return 0;
  char *end = nullptr;
  long long steps = std::strtoll(decaySteps->second.c_str(), &end, 10);
  return *end == '\0' && steps > 0 ? steps : 0;
}

moert::TrainOptions moert::parseTrainOptions(int argc, char **argv,
                                             int64_t scheduledSteps) {
  TrainOptions options;
  if (scheduledSteps > 0)
    options.steps = scheduledSteps;
  using Setter = std::function<void(const std::string &, const std::string &)>;
  auto count = [](int64_t &field, int64_t min) -> Setter {
    return [&field, min](const std::string &name, const std::string &v) {
      field = parseInteger(name, v, min, kMaxCount);
    };
  };
  // An empty file name would read as "not given".
  auto path = [](std::string &field) -> Setter {
    return [&field](const std::string &name, const std::string &v) {
      if (v.empty())
        fail("option --{} needs a file name", name);
      field = v;
    };
  };
  std::map<std::string, Setter> setters = {
      {"data", path(options.data)},
      {"steps", count(options.steps, 0)},
      {"eval-interval", count(options.evalInterval, 0)},
      {"eval-batches",
       [&](const std::string &name, const std::string &v) {
         options.evalBatches =
             v == "all" ? 0 : parseInteger(name, v, 1, kMaxCount);
       }},
      {"val-fraction",
       [&](const std::string &name, const std::string &v) {
         options.valFraction =
             parsePositiveReal(name, v, moert::kMaxValFraction);
       }},
      {"val-data", path(options.valData)},
      {"seed",
       [&](const std::string &name, const std::string &v) {
         options.seed =
             static_cast<uint64_t>(parseInteger(name, v, 0, kMaxCount));
       }},
      {"threads",
       [&](const std::string &name, const std::string &v) {
         options.threads = parseInteger(name, v, 1, MOE_MAX_THREADS);
       }},
      {"checkpoint", path(options.checkpoint)},
      {"checkpoint-interval", count(options.checkpointInterval, 0)},
      {"resume", path(options.resume)},
      {"init-from", path(options.initFrom)},
      {"metrics", path(options.metrics)},
      {"sample-tokens", count(options.sampleTokens, 0)},
      {"temperature",
       [&](const std::string &name, const std::string &v) {
         options.temperature = parsePositiveReal(name, v, 1e6);
       }},
      {"top-k", count(options.topK, 0)},
      {"prompt",
       [&](const std::string &, const std::string &v) { options.prompt = v; }},
      {"log-interval", count(options.logInterval, 1)},
      {"similarity-interval", count(options.similarityInterval, 0)},
  };
  std::map<std::string, bool *> flags = {{"skip-train", &options.skipTrain}};
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      fmt::print(fmt::runtime(kUsage), argv[0],
                 scheduledSteps > 0
                     ? fmt::format("{}: the compiled\n{:27}learning-rate "
                                   "schedule's decay-steps",
                                   scheduledSteps, "")
                     : std::to_string(TrainOptions().steps),
                 TrainOptions().data);
      std::exit(0);
    }
    if (arg.rfind("--", 0) != 0)
      fail("unexpected argument '{}' (see --help)", arg);
    std::string name = arg.substr(2), value;
    size_t eq = name.find('=');
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    if (!options.given.insert(name).second)
      fail("option --{} is given twice", name);
    if (auto flag = flags.find(name); flag != flags.end()) {
      if (eq != std::string::npos)
        fail("option --{} takes no value", name);
      *flag->second = true;
      continue;
    }
    auto setter = setters.find(name);
    if (setter == setters.end())
      fail("unknown option --{} (see --help)", name);
    if (eq == std::string::npos) {
      if (i + 1 == argc)
        fail("option --{} needs a value", name);
      value = argv[++i];
    }
    setter->second(name, value);
  }
  if (options.skipTrain)
    for (const char *name : kTrainingOptions)
      if (options.isGiven(name))
        fail("option --{} does nothing with --skip-train, which trains no "
             "step",
             name);
  if (!options.resume.empty() && !options.initFrom.empty())
    fail("options --resume and --init-from: give one (--resume continues a "
         "run with its optimizer state, --init-from starts one from "
         "weights)");
  if (options.skipTrain && options.isGiven("val-data") &&
      options.isGiven("data"))
    fail("option --data does nothing with --skip-train and --val-data, "
         "which validates on --val-data alone");
  if (options.isGiven("val-fraction") && options.isGiven("val-data"))
    fail("options --val-fraction and --val-data: give one (--val-fraction "
         "holds out the tail of --data for validation, --val-data validates "
         "on a file of its own)");
  if (options.prompt.empty())
    fail("option --prompt: the prompt must have at least one character (the "
         "default is a newline)");
  // Options that would do nothing, silently.
  moert::requireCheckpointPattern(options.checkpoint);
  if (options.isGiven("checkpoint-interval") && options.checkpoint.empty())
    fail("option --checkpoint-interval needs --checkpoint FILE, where the "
         "checkpoints go");
  if (options.sampleTokens == 0)
    for (const char *name : {"temperature", "top-k", "prompt"})
      if (options.isGiven(name))
        fail("option --{} does nothing with --sample-tokens 0, which "
             "samples no text",
             name);
  return options;
}
