//===- TrainData.cpp - a run's training and validation tokens -------------===//

#include "TrainData.h"
#include "moert/Error.h"
#include "moert/TokenData.h"

moert::TrainData moert::readTrainData(const TrainOptions &options,
                                      int64_t vocab, int64_t seqLen) {
  TrainData run;
  DataTokens data = readTokens(options.data);
  if (vocab > 0)
    checkVocabulary(data.ids, vocab, options.data);
  run.text = data.text;
  run.train = std::move(data.ids);
  if (options.valData.empty()) {
    int64_t validation = validationTokens(
        static_cast<int64_t>(run.train.size()), options.valFraction);
    if (validation < seqLen + 1)
      fail("{}: its validation split (--val-fraction {}) has {} tokens, "
           "fewer than one window of {}: give more data, a larger "
           "--val-fraction or a --val-data file",
           options.data, options.valFraction, validation, seqLen + 1);
    run.firstToken = run.train.front();
    run.validation.assign(run.train.end() - validation, run.train.end());
    run.train.resize(run.train.size() - validation);
    run.validationFile = options.data;
    return run;
  }
  if (static_cast<int64_t>(run.train.size()) < seqLen + 1)
    fail("{}: --data has {} tokens, fewer than one window of {}", options.data,
         run.train.size(), seqLen + 1);
  run.firstToken = run.train.front();
  DataTokens validation = readTokens(options.valData);
  auto kind = [](bool text) {
    return text ? "a text file (its bytes are the tokens)"
                : "an llm.c token file";
  };
  if (validation.text != run.text)
    fail("{}: --val-data is {}, but --data {} is {}: give both in one format",
         options.valData, kind(validation.text), options.data, kind(run.text));
  if (vocab > 0)
    checkVocabulary(validation.ids, vocab, options.valData);
  if (static_cast<int64_t>(validation.ids.size()) < seqLen + 1)
    fail("{}: --val-data has {} tokens, fewer than one window of {}",
         options.valData, validation.ids.size(), seqLen + 1);
  run.validation = std::move(validation.ids);
  run.validationFile = options.valData;
  return run;
}
