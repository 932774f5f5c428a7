//===- TransformerKernels.cpp - reference transformer ops -----------------===//

#include "KernelUtils.h"
#include "moe/Interpreter/ReferenceKernels.h"

using namespace mlir::moe::ref;

using mlir::moe::ref::detail::checkedIndex;
using mlir::moe::ref::detail::gemmOperand;
using mlir::moe::ref::detail::logSumExp;

Tensor mlir::moe::ref::embedding(const Tensor &table, const Tensor &ids) {
  int64_t vocab = table.dim(0), hidden = table.dim(1);
  std::vector<int64_t> shape = ids.shape;
  shape.push_back(hidden);
  Tensor result = Tensor::zeros(table.dtype, shape);
  for (int64_t i = 0; i < ids.numel(); ++i) {
    int64_t id = checkedIndex(ids.data[i], vocab, "moe.embedding: token id");
    std::copy_n(&table.data[id * hidden], hidden, &result.data[i * hidden]);
  }
  return result;
}

Tensor mlir::moe::ref::rmsNorm(const Tensor &input, const Tensor &weight,
                               double eps) {
  int64_t hidden = input.dim(-1), rows = input.rowCount();
  Tensor result = Tensor::zeros(input.dtype, input.shape);
  for (int64_t r = 0; r < rows; ++r) {
    const double *x = &input.data[r * hidden];
    double meanSquare = 0;
    for (int64_t i = 0; i < hidden; ++i)
      meanSquare += x[i] * x[i];
    double scale = 1.0 / std::sqrt(meanSquare / hidden + eps);
    for (int64_t i = 0; i < hidden; ++i)
      result.data[r * hidden + i] = x[i] * scale * weight.data[i];
  }
  return result;
}

Tensor mlir::moe::ref::linear(const Tensor &input, const Tensor &weight,
                              const Tensor *bias) {
  int64_t out = weight.dim(0), in = weight.dim(1), rows = input.rowCount();
  Tensor result = Tensor::zeros(input.dtype, detail::withLastDim(input, out));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < out; ++o) {
      double sum = bias ? bias->data[o] : 0.0;
      for (int64_t i = 0; i < in; ++i)
        sum += input.data[r * in + i] * weight.data[o * in + i];
      result.data[r * out + o] = sum;
    }
  return result;
}

Tensor mlir::moe::ref::rope(const Tensor &input, double theta, bool inverse,
                            const moert::RopeScaling &scaling,
                            int64_t rotaryDim, bool interleaved) {
  int64_t batch = input.dim(0), seq = input.dim(1), heads = input.dim(2);
  int64_t headDim = input.dim(3);
  int64_t rotated = rotaryDim ? rotaryDim : headDim, half = rotated / 2;
  // The dimensions past the rotated ones pass as they are.
  Tensor result = input;
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t s = 0; s < seq; ++s)
      for (int64_t h = 0; h < heads; ++h) {
        int64_t base = ((b * seq + s) * heads + h) * headDim;
        for (int64_t i = 0; i < half; ++i) {
          double angle = (inverse ? -s : s) *
                         moert::rows::ropeFrequency(i, rotated, theta, scaling);
          double c = scaling.attentionFactor * std::cos(angle);
          double sine = scaling.attentionFactor * std::sin(angle);
          int64_t first = interleaved ? 2 * i : i;
          int64_t second = interleaved ? 2 * i + 1 : i + half;
          double x1 = input.data[base + first], x2 = input.data[base + second];
          result.data[base + first] = x1 * c - x2 * sine;
          result.data[base + second] = x2 * c + x1 * sine;
        }
      }
  return result;
}

AttentionResult mlir::moe::ref::attention(const Tensor &query,
                                          const Tensor &key,
                                          const Tensor &value,
                                          moert::AttentionMask mask,
                                          const Tensor *sinks) {
  int64_t batch = query.dim(0), seq = query.dim(1), heads = query.dim(2);
  int64_t headDim = query.dim(3), kvHeads = key.dim(2);
  int64_t group = heads / kvHeads;
  double scale = 1.0 / std::sqrt(static_cast<double>(headDim));
  auto at = [&](int64_t b, int64_t s, int64_t h, int64_t numHeads) {
    return ((b * seq + s) * numHeads + h) * headDim;
  };
  AttentionResult result{Tensor::zeros(query.dtype, query.shape),
                         Tensor::zeros(query.dtype, {batch, heads, seq})};
  std::vector<double> scores(seq);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < seq; ++i) {
        int64_t first = mask.firstKey(i), end = mask.endKey(i, seq);
        const double *q = &query.data[at(b, i, h, heads)];
        for (int64_t j = first; j < end; ++j) {
          const double *k = &key.data[at(b, j, h / group, kvHeads)];
          double dot = 0;
          for (int64_t d = 0; d < headDim; ++d)
            dot += q[d] * k[d];
          scores[j] = dot * scale;
        }
        double normalizer = logSumExp(scores.data() + first, end - first);
        if (sinks) {
          // log(exp(normalizer) + exp(sink)), without overflow.
          double sink = sinks->data[h];
          double high = std::max(normalizer, sink);
          normalizer = high + std::log(std::exp(normalizer - high) +
                                       std::exp(sink - high));
        }
        result.lse.data[(b * heads + h) * seq + i] = normalizer;
        double *out = &result.result.data[at(b, i, h, heads)];
        for (int64_t j = first; j < end; ++j) {
          double probability =
              gemmOperand(std::exp(scores[j] - normalizer), query.dtype);
          const double *v = &value.data[at(b, j, h / group, kvHeads)];
          for (int64_t d = 0; d < headDim; ++d)
            out[d] += probability * v[d];
        }
      }
  return result;
}

Tensor mlir::moe::ref::swiglu(const Tensor &gate, const Tensor &up) {
  Tensor result = Tensor::zeros(gate.dtype, gate.shape);
  for (int64_t i = 0; i < gate.numel(); ++i)
    result.data[i] =
        gate.data[i] / (1.0 + std::exp(-gate.data[i])) * up.data[i];
  return result;
}

Tensor mlir::moe::ref::sigmoidScale(const Tensor &input, const Tensor &logit) {
  // The elements each logit gates: a row's, or its own.
  int64_t hidden = logit.shape == input.shape ? 1 : input.dim(-1);
  Tensor result = input;
  for (int64_t r = 0; r < logit.numel(); ++r) {
    double sigmoid = moert::rows::sigmoid(logit.data[r]);
    for (int64_t h = 0; h < hidden; ++h)
      result.data[r * hidden + h] *= sigmoid;
  }
  return result;
}

Tensor mlir::moe::ref::add(const Tensor &lhs, const Tensor &rhs) {
  Tensor result = lhs;
  for (int64_t i = 0; i < lhs.numel(); ++i)
    result.data[i] += rhs.data[i];
  return result;
}

Tensor mlir::moe::ref::mul(const Tensor &lhs, const Tensor &rhs) {
  Tensor result = lhs;
  for (int64_t i = 0; i < lhs.numel(); ++i)
    result.data[i] *= rhs.data[i];
  return result;
}

Tensor mlir::moe::ref::scale(const Tensor &input, double factor) {
  Tensor result = input;
  for (double &value : result.data)
    value *= factor;
  return result;
}

Tensor mlir::moe::ref::slice(const Tensor &input, int64_t offset,
                             int64_t size) {
  int64_t width = input.dim(-1), rows = input.rowCount();
  Tensor result = Tensor::zeros(input.dtype, detail::withLastDim(input, size));
  for (int64_t r = 0; r < rows; ++r)
    std::copy_n(&input.data[r * width + offset], size, &result.data[r * size]);
  return result;
}

Tensor mlir::moe::ref::pad(const Tensor &input, int64_t offset, int64_t width) {
  int64_t size = input.dim(-1), rows = input.rowCount();
  Tensor result = Tensor::zeros(input.dtype, detail::withLastDim(input, width));
  for (int64_t r = 0; r < rows; ++r)
    std::copy_n(&input.data[r * size], size, &result.data[r * width + offset]);
  return result;
}

Tensor mlir::moe::ref::concat(const Tensor &lhs, const Tensor &rhs,
                              const std::vector<int64_t> &shape) {
  Tensor result = Tensor::zeros(lhs.dtype, shape);
  int64_t width = shape.back(), rows = result.rowCount();
  int64_t heads = detail::headsOf(shape);
  for (int64_t r = 0; r < rows; ++r) {
    double *row = &result.data[r * width];
    for (const Tensor *part : {&lhs, &rhs}) {
      int64_t partWidth = part->dim(-1);
      int64_t source =
          moert::rows::concatOperandRow(r, heads, detail::headsOf(part->shape));
      row = std::copy_n(&part->data[source * partWidth], partWidth, row);
    }
  }
  return result;
}

Tensor mlir::moe::ref::crossEntropy(const Tensor &logits, const Tensor &targets,
                                    const LossTargets &counted) {
  int64_t vocab = logits.dim(-1), rows = targets.numel();
  double total = 0;
  for (int64_t r = 0; r < rows; ++r) {
    if (counted.ignoreIndex && targets.data[r] == *counted.ignoreIndex)
      continue;
    const double *row = &logits.data[r * vocab];
    int64_t target =
        checkedIndex(targets.data[r], vocab, "moe.cross_entropy: target");
    total += logSumExp(row, vocab) - row[target];
  }
  double divisor = counted.divisor.value_or(static_cast<double>(rows));
  return Tensor::scalar(logits.dtype, divisor == 0 ? 0.0 : total / divisor);
}

Tensor mlir::moe::ref::countTargets(const Tensor &targets,
                                    std::optional<int64_t> ignoreIndex,
                                    moert::DType dtype) {
  int64_t count = 0;
  for (double target : targets.data)
    count += !(ignoreIndex && target == *ignoreIndex);
  return Tensor::scalar(dtype, static_cast<double>(count));
}
