//===- MoeOps.td - moe dialect operations ------------------*- tablegen -*-===//
//
// Tensor-level ops of a Llama-style MoE transformer. Shapes are static; the
// exact semantics of every op are those of the reference interpreter
// (lib/Interpreter), which follows DESIGN.md section 2.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_OPS_TD
#define MOE_OPS_TD

include "moe/MoeBase.td"
include "moe/MoeInterfaces.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

class Moe_Op<string mnemonic, list<Trait> traits = []>
    : Op<Moe_Dialect, mnemonic, !listconcat([Pure], traits)> {
  let hasVerifier = 1;
}

/// An op with a vector-Jacobian product (MoeVjp.cpp).
class Moe_DiffOp<string mnemonic, list<Trait> traits = []>
    : Moe_Op<mnemonic, !listconcat(
        [DeclareOpInterfaceMethods<Moe_DifferentiableOpInterface>], traits)>;

def Moe_FloatTensor : StaticShapeTensorOf<[F32, F64]>;
/// A GEMM's operand: f32 or f64, or bf16 (mixed precision), whose products
/// accumulate in f32 (`gemmResultType`; some results may then be rounded
/// to bf16, NarrowableResultOpInterface).
def Moe_GemmTensor : StaticShapeTensorOf<[F32, F64, BF16]>;
/// A GEMM result of the shape of `operand`: f32 when the operands are bf16.
class Moe_GemmResultOf<string operand, string result>
    : TypesMatchWith<"'" # result # "' has the shape of '" # operand #
                     "' and the element type of a GEMM over it",
                     operand, result, "::mlir::moe::gemmResultType($_self)">;

/// A result of a NarrowableResultOpInterface op: the float type it computes
/// in, or bf16 where that is f32 (the verifier checks which).
def Moe_NarrowableTensor : StaticShapeTensorOf<[F32, F64, BF16]>;
/// An operand of a WidenableOperandOpInterface op: the float type the op
/// computes in, or bf16 where that is f32 (the verifier checks which).
def Moe_WidenableTensor : StaticShapeTensorOf<[F32, F64, BF16]>;

def Moe_IndexTensor : StaticShapeTensorOf<[I32]>;
def Moe_FloatScalar : 0DTensorOf<[F32, F64]>;
def Moe_CountScalar : 0DTensorOf<[I64]>;
def Moe_CountVector : 1DTensorOf<[I64]>;
def Moe_CountTensor : StaticShapeTensorOf<[I64]>;

//===----------------------------------------------------------------------===//
// Transformer ops
//===----------------------------------------------------------------------===//

def Moe_EmbeddingOp : Moe_DiffOp<"embedding"> {
  let summary = "token embedding lookup";
  let description = [{
    `result[..., :] = table[ids[...], :]`. The table is `[vocab, hidden]`, the
    result has the shape of `ids` followed by `hidden`. An id outside
    `[0, vocab)` is an error at run time. With `padding_id` (in
    `[0, vocab)`), that id's row gets no gradient: PyTorch's
    `nn.Embedding(padding_idx=...)`, which transformers' models build from
    `pad_token_id`.

    ```mlir
    %h = moe.embedding %table[%ids] : tensor<256x128xf32>, tensor<8x64xi32> -> tensor<8x64x128xf32>
    %p = moe.embedding %table[%ids] padding_id = 1 : tensor<256x128xf32>, tensor<8x64xi32> -> tensor<8x64x128xf32>
    ```
  }];
  let arguments = (ins Moe_FloatTensor:$table, Moe_IndexTensor:$ids,
                       OptionalAttr<I64Attr>:$padding_id);
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat = [{
    $table `[` $ids `]` (`padding_id` `=` $padding_id^)? attr-dict `:`
    type($table) `,` type($ids) `->` type($result)
  }];
}

def Moe_RmsNormOp : Moe_DiffOp<"rms_norm",
    [DeclareOpInterfaceMethods<Moe_NarrowableResultOpInterface>]> {
  let summary = "RMSNorm over the last axis";
  let description = [{
    `result = input / sqrt(mean(input^2, last axis) + eps) * weight`, with
    `weight` of shape `[hidden]` (Llama's RMSNorm). The result has the
    input's type, or is bf16 for an f32 input: the values rounded to
    nearest even (moe-narrow-results).

    ```mlir
    %y = moe.rms_norm %x, %w eps = 1.0e-05 : tensor<8x64x128xf32>, tensor<128xf32>
    ```
  }];
  let arguments = (ins Moe_FloatTensor:$input, Moe_FloatTensor:$weight,
                       F64Attr:$eps);
  let results = (outs Moe_NarrowableTensor:$result);
  let assemblyFormat = [{
    $input `,` $weight `eps` `=` $eps attr-dict `:`
    custom<ConvertedType>(type($input), type($result)) `,` type($weight)
  }];
}

def Moe_LinearOp : Moe_DiffOp<"linear",
    [DeclareOpInterfaceMethods<Moe_NarrowableResultOpInterface>]> {
  let summary = "x W^T (+ b) with a Hugging Face [out, in] weight";
  let description = [{
    `result[..., o] = sum_i input[..., i] * weight[o, i] (+ bias[o])`.
    The weight has the Hugging Face layout `[out_features, in_features]`;
    the result replaces the last axis of the input by `out_features`.
    Over bf16 operands the GEMM accumulates in f32 and the result is f32,
    or without a bias bf16: the f32 result rounded to nearest even
    (moe-narrow-results).

    ```mlir
    %q = moe.linear %x, %wq : tensor<8x64x128xf32>, tensor<128x128xf32> -> tensor<8x64x128xf32>
    %z = moe.linear %x, %w bias %b : tensor<4x8xf32>, tensor<2x8xf32>, tensor<2xf32> -> tensor<4x2xf32>
    ```
  }];
  let arguments = (ins Moe_GemmTensor:$input, Moe_GemmTensor:$weight,
                       Optional<Moe_FloatTensor>:$bias);
  let results = (outs Moe_NarrowableTensor:$result);
  let assemblyFormat = [{
    $input `,` $weight (`bias` $bias^)? attr-dict `:` type($input) `,`
    type($weight) (`,` type($bias)^)? `->` type($result)
  }];
}

def Moe_RopeOp : Moe_DiffOp<"rope", [
    DeclareOpInterfaceMethods<Moe_NarrowableResultOpInterface>]> {
  let summary = "rotary position embedding (halves or interleaved pairs)";
  let description = [{
    The input is `[batch, seq, heads, head_dim]` with an even `head_dim`; the
    position of a token is its index along `seq`. For `i < head_dim / 2`,
    with `f_i = theta^(-2i / head_dim)` and `a = pos * f_i`:
    `y[i] = x[i] cos a - x[i + head_dim/2] sin a` and
    `y[i + head_dim/2] = x[i + head_dim/2] cos a + x[i] sin a`.
    With `scaling` the frequencies are scaled (Llama 3's, YaRN's long
    contexts; `#moe.rope_scaling`), and YaRN's `attention_factor`
    multiplies the rotated part of `y`. With `rotary_dim = r` (GLM's partial rotary embedding,
    transformers' partial_rotary_factor), the first `r` dimensions of each
    head rotate as a head of `r` would (`f_i = theta^(-2i / r)`, pairs `i`
    and `i + r/2`) and the others pass unchanged. With `interleaved` the
    pairs are `2i` and `2i + 1` instead, with the same `f_i` (ERNIE 4.5's
    and transformers' dense GLM's convention; DeepSeek-V3's rope_interleave
    turns the same pairs but writes them de-interleaved, which changes no
    attention score). With `inverse` the
    angles are negated: the transposed
    rotation, which is rope's own vector-Jacobian product. The result has
    the input's type, or is bf16 for an f32 input: the f32 result rounded
    to nearest even (moe-narrow-results).

    ```mlir
    %q2 = moe.rope %q theta = 1.0e+04 : tensor<8x64x4x32xf32>
    %q3 = moe.rope %q theta = 1.0e+04 : tensor<8x64x4x32xf32> -> tensor<8x64x4x32xbf16>
    %q4 = moe.rope %q theta = 5.0e+05 scaling = <llama3, factor = 8.0, original_positions = 8192.0> : tensor<8x64x4x32xf32>
    %q5 = moe.rope %q theta = 1.0e+04 rotary_dim = 16 : tensor<8x64x4x32xf32>
    %q6 = moe.rope %q theta = 1.0e+04 interleaved : tensor<8x64x4x32xf32>
    ```
  }];
  let arguments = (ins Moe_FloatTensor:$input, F64Attr:$theta,
                       OptionalAttr<ConfinedAttr<I64Attr, [IntPositive]>>:$rotary_dim,
                       OptionalAttr<Moe_RopeScalingAttr>:$scaling,
                       UnitAttr:$interleaved, UnitAttr:$inverse);
  let results = (outs Moe_NarrowableTensor:$result);
  let extraClassDeclaration = [{
    /// The leading dimensions of each head that rotate: all but for
    /// `rotary_dim`.
    int64_t getRotatedDims();
  }];
  let assemblyFormat = [{
    $input `theta` `=` $theta (`rotary_dim` `=` $rotary_dim^)?
    (`scaling` `=` $scaling^)? (`interleaved` $interleaved^)?
    (`inverse` $inverse^)?
    attr-dict `:` custom<ConvertedType>(type($input), type($result))
  }];
}

def Moe_AttentionOp : Moe_DiffOp<"attention",
    [AllTypesMatch<["key", "value"]>,
     DeclareOpInterfaceMethods<Moe_NarrowableResultOpInterface>]> {
  let summary = "scaled dot-product attention, grouped-query, optionally causal "
                "within a sliding window";
  let description = [{
    `query` is `[batch, seq, heads, head_dim]`, `key` and `value` are
    `[batch, seq, kv_heads, head_dim]` with `heads % kv_heads == 0`; query head
    `h` reads key/value head `h / (heads / kv_heads)`. Scores are scaled by
    `1 / sqrt(head_dim)`; with `causal`, position `i` attends to `j <= i`,
    and with a `window` of `W` positions too, only to `i - W < j <= i` (its
    own and the `W - 1` before it: transformers' `sliding_window`; `window`
    needs `causal`).

    Its two products are GEMMs: over bf16 operands (mixed precision) they
    accumulate in f32, the softmax is f32, and the probabilities are rounded
    to bf16 before they multiply `value`, as tensor cores read them (a
    flash kernel rounds them before dividing by the row's sum: the same
    to bf16 rounding). The result is then f32, or bf16: the f32 result
    rounded to nearest even as it is stored (moe-narrow-results), printed
    after an arrow.

    `lse` (`[batch, heads, seq]`, f32, or f64 over f64 operands; its
    type is not printed) is each query row's log-sum-exp of its scaled
    scores, max + log(sum of exp(score - max)), which moe.attention_grad
    reads so that it need not compute the softmax's statistics again
    (FlashAttention's scheme).

    With `sinks` (`[heads]`, the lse's element type: f32 master weights
    under mixed precision), each head's softmax also counts its sink, a
    logit that no key and no value stand behind (GPT-OSS's and
    GraniteSWA's learned attention sinks): the probabilities are
    `exp(score_j) / (exp(sink) + sum_k exp(score_k))`, so a row's
    probabilities sum to less than one, and `lse` includes the sink. That
    is transformers' `sigmoid(lse - sink)` scaling of the result, where
    `lse` leaves the sink out.

    ```mlir
    %o, %lse = moe.attention %q, %k, %v causal : tensor<8x64x4x32xf32>, tensor<8x64x2x32xf32>
    %o3, %lse3 = moe.attention %q, %k, %v sinks(%s : tensor<4xf32>) causal : tensor<8x64x4x32xf32>, tensor<8x64x2x32xf32>
    %o1, %lse1 = moe.attention %q, %k, %v causal window 16 : tensor<8x64x4x32xf32>, tensor<8x64x2x32xf32>
    %o2, %lse2 = moe.attention %q2, %k2, %v2 causal : tensor<8x64x4x32xbf16>, tensor<8x64x2x32xbf16> -> tensor<8x64x4x32xbf16>
    ```
  }];
  let arguments = (ins Moe_GemmTensor:$query, Moe_GemmTensor:$key,
                       Moe_GemmTensor:$value, Optional<Moe_FloatTensor>:$sinks,
                       UnitAttr:$causal,
                       OptionalAttr<Moe_AttentionWindowAttr>:$window);
  let results = (outs Moe_NarrowableTensor:$result, Moe_FloatTensor:$lse);
  let assemblyFormat = [{
    $query `,` $key `,` $value (`sinks` `(` $sinks^ `:` type($sinks) `)`)?
    (`causal` $causal^)? (`window` $window^)?
    attr-dict `:` type($query) `,` type($key)
    `` custom<GemmResultType>(ref(type($query)), type($result))
    `` custom<AttentionLseType>(ref(type($query)), type($lse))
  }];
  let builders = [
    // The lse's type follows from the query's.
    OpBuilder<(ins "Type":$resultType, "Value":$query, "Value":$key,
                   "Value":$value, "Value":$sinks, "bool":$causal,
                   CArg<"IntegerAttr", "{}">:$window), [{
      build($_builder, $_state, resultType,
            attentionLseType(query.getType()), query, key, value, sinks,
            causal, window);
    }]>
  ];
}

def Moe_SwigluOp : Moe_DiffOp<"swiglu", [AllTypesMatch<["gate", "up", "result"]>]> {
  let summary = "silu(gate) * up";
  let description = [{
    Elementwise `gate / (1 + exp(-gate)) * up`.

    ```mlir
    %h = moe.swiglu %g, %u : tensor<8x64x352xf32>
    ```
  }];
  let arguments = (ins Moe_FloatTensor:$gate, Moe_FloatTensor:$up);
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat = "$gate `,` $up attr-dict `:` type($result)";
  let hasVerifier = 0;
}

def Moe_SigmoidScaleOp : Moe_DiffOp<"sigmoid_scale",
    [AllTypesMatch<["input", "result"]>]> {
  let summary = "each row scaled by the sigmoid of its logit";
  let description = [{
    `result[..., h] = input[..., h] / (1 + exp(-logit[..., 0]))`, `logit`
    of `input`'s shape with a last dimension of 1: how Qwen2-MoE gates its
    shared expert's output, token by token. With `logit` of `input`'s
    shape, each element has its own gate, `logit[..., h]`: gated attention's
    output (MiniCPM5-MoE's).

    ```mlir
    %s = moe.sigmoid_scale %x, %g : tensor<8x64x512xf32>, tensor<8x64x1xf32>
    %t = moe.sigmoid_scale %y, %z : tensor<8x64x4x32xf32>, tensor<8x64x4x32xf32>
    ```
  }];
  let arguments = (ins Moe_FloatTensor:$input, Moe_FloatTensor:$logit);
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat =
      "$input `,` $logit attr-dict `:` type($input) `,` type($logit)";
  let hasVerifier = 1;
}

class Moe_BinaryOp<string mnemonic, string formula>
    : Moe_DiffOp<mnemonic, [AllTypesMatch<["lhs", "rhs", "result"]>]> {
  let summary = "elementwise " # formula;
  let description = "Elementwise `result = " # formula #
                    "` on two tensors of one type.";
  let arguments = (ins Moe_FloatTensor:$lhs, Moe_FloatTensor:$rhs);
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` type($result)";
  let hasVerifier = 0;
}

def Moe_AddOp : Moe_BinaryOp<"add", "lhs + rhs">;
def Moe_MulOp : Moe_BinaryOp<"mul", "lhs * rhs">;

def Moe_ScaleOp : Moe_DiffOp<"scale", [AllTypesMatch<["input", "result"]>]> {
  let summary = "elementwise product with a constant";
  let description = [{
    `result = input * factor`: the constant multipliers of models trained
    with muP (IBM Granite's `embedding_multiplier` on the embeddings,
    `residual_multiplier` on each sublayer's output before the residual
    add, `1 / logits_scaling` on the logits, and its attention's softmax
    scale, applied to the queries). Its gradient is the output's gradient
    times the same factor.

    ```mlir
    %s = moe.scale %x by 2.200000e-01 : tensor<8x64x512xf32>
    ```
  }];
  let arguments = (ins Moe_FloatTensor:$input, F64Attr:$factor);
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat = "$input `by` $factor attr-dict `:` type($result)";
}

def Moe_SliceOp : Moe_DiffOp<"slice"> {
  let summary = "a window of the last dimension";
  let description = [{
    `result[..., j] = input[..., offset + j]` for `j` below the result's
    last dimension: multi-head latent attention (DeepSeek-V2/V3) takes the
    rotated and the unrotated part of each query head, and the compressed
    keys and the shared rotated key, out of one projection. Its gradient is
    moe.pad's: the result's gradient at the same offset, zeros elsewhere.

    ```mlir
    %pe = moe.slice %q from 48 : tensor<8x64x4x64xf32> -> tensor<8x64x4x16xf32>
    ```
  }];
  let arguments = (ins Moe_FloatTensor:$input,
                       ConfinedAttr<I64Attr, [IntNonNegative]>:$offset);
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat = [{
    $input `from` $offset attr-dict `:` type($input) `->` type($result)
  }];
}

def Moe_PadOp : Moe_DiffOp<"pad"> {
  let summary = "zeros around the last dimension";
  let description = [{
    `result[..., offset + j] = input[..., j]`, the result's other elements
    zero: the narrower of multi-head latent attention's query and value
    heads padded to the other's width, as moe.attention's heads share one
    (vLLM pads DeepSeek's values so for FlashAttention too). Its gradient
    is moe.slice's at the same offset.

    ```mlir
    %v2 = moe.pad %v at 0 : tensor<8x64x4x32xf32> -> tensor<8x64x4x48xf32>
    ```
  }];
  let arguments = (ins Moe_FloatTensor:$input,
                       ConfinedAttr<I64Attr, [IntNonNegative]>:$offset);
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat = [{
    $input `at` $offset attr-dict `:` type($input) `->` type($result)
  }];
}

def Moe_ConcatOp : Moe_DiffOp<"concat"> {
  let summary = "two tensors side by side along the last dimension";
  let description = [{
    `result[..., h, :] = [lhs[..., h, :], rhs[..., h, :]]`: the operands
    agree with the result on every dimension but the last, except that one
    of size 1 second to last (a single head) is read for every head of the
    result. Multi-head latent attention's keys are each head's unrotated
    part beside one rotated part that all heads share. Its gradient is
    moe.concat_grad.

    ```mlir
    %k = moe.concat %nope, %pe : tensor<8x64x4x48xf32>, tensor<8x64x1x16xf32> -> tensor<8x64x4x64xf32>
    ```
  }];
  let arguments = (ins Moe_FloatTensor:$lhs, Moe_FloatTensor:$rhs);
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat = [{
    $lhs `,` $rhs attr-dict `:` type($lhs) `,` type($rhs) `->` type($result)
  }];
}

def Moe_CrossEntropyOp : Moe_DiffOp<"cross_entropy"> {
  let summary = "token cross-entropy of logits against targets";
  let description = [{
    `logits` is `[..., vocab]`, `targets` has the leading shape of `logits`.
    Each counted position `p` contributes
    `logsumexp(logits[p, :]) - logits[p, targets[p]]`. Without `divisor`
    every position counts and the result is their mean. With `divisor` the
    result is the sum of the counted positions' losses over `divisor` (0
    when `divisor` is 0): the number of counted targets, which
    moe.count_targets gives, or under expert parallelism the whole batch's
    count. With `ignore_index` (transformers' -100), positions whose target
    equals it do not count; it needs `divisor`. Any other target outside
    `[0, vocab)` is an error at run time.

    ```mlir
    %l = moe.cross_entropy %logits, %targets : tensor<8x64x256xf32>, tensor<8x64xi32> -> tensor<f32>
    %n = moe.count_targets %targets {ignore_index = -100 : i64} : tensor<8x64xi32> -> tensor<f32>
    %m = moe.cross_entropy %logits, %targets divisor %n {ignore_index = -100 : i64}
        : tensor<8x64x256xf32>, tensor<8x64xi32>, tensor<f32> -> tensor<f32>
    ```
  }];
  let arguments = (ins Moe_FloatTensor:$logits, Moe_IndexTensor:$targets,
                       Optional<Moe_FloatScalar>:$divisor,
                       OptionalAttr<I64Attr>:$ignore_index);
  let results = (outs Moe_FloatScalar:$result);
  let assemblyFormat = [{
    $logits `,` $targets (`divisor` $divisor^)? attr-dict `:` type($logits) `,`
    type($targets) (`,` type($divisor)^)? `->` type($result)
  }];
}

def Moe_CountTargetsOp : Moe_Op<"count_targets"> {
  let summary = "the number of targets that a cross-entropy counts";
  let description = [{
    The number of elements of `targets` that differ from `ignore_index`
    (all of them without it), as a float scalar: the `divisor` of a mean
    moe.cross_entropy over the counted positions.

    ```mlir
    %n = moe.count_targets %targets {ignore_index = -100 : i64} : tensor<8x64xi32> -> tensor<f32>
    ```
  }];
  let arguments = (ins Moe_IndexTensor:$targets,
                       OptionalAttr<I64Attr>:$ignore_index);
  let results = (outs Moe_FloatScalar:$result);
  let assemblyFormat = [{
    $targets attr-dict `:` type($targets) `->` type($result)
  }];
  let hasVerifier = 0;
}

//===----------------------------------------------------------------------===//
// Routing and experts
//===----------------------------------------------------------------------===//

def Moe_RouterOp : Moe_DiffOp<"router"> {
  let summary = "router logits z = W x (+ b) of every token for every expert";
  let description = [{
    `tokens` is `[T, hidden]`, `weight` is `[experts, hidden]` (Mixtral's
    `block_sparse_moe.gate.weight`), the optional `bias` is `[experts]`; the
    result is `[T, experts]`. A separate op from `moe.linear` so that the
    router chain (router, gate, dispatch statistics) can be fused as one.

    ```mlir
    %z = moe.router %x, %wg : tensor<512x128xf32>, tensor<8x128xf32> -> tensor<512x8xf32>
    ```
  }];
  let arguments = (ins Moe_FloatTensor:$tokens, Moe_FloatTensor:$weight,
                       Optional<Moe_FloatTensor>:$bias);
  let results = (outs Moe_FloatTensor:$logits);
  let assemblyFormat = [{
    $tokens `,` $weight (`bias` $bias^)? attr-dict `:` type($tokens) `,`
    type($weight) (`,` type($bias)^)? `->` type($logits)
  }];
}

def Moe_GateNormOp : Moe_DiffOp<"gate_norm",
    [AllTypesMatch<["logits", "result"]>]> {
  let summary = "Skywork-MoE gating logit normalization (the expanded form)";
  let description = [{
    For each token row `z` of `logits` (`[T, experts]`):
    `result = norm_lambda * (z - mean(z)) / (std(z) + norm_eps)`, the mean
    and the population std taken over the expert axis. `moe-fuse-router`
    folds it into the `norm_lambda` of the moe.gate that consumes it.

    ```mlir
    %zn = moe.gate_norm %z norm_lambda = 1.0 : tensor<512x8xf32>
    ```
  }];
  let arguments = (ins Moe_FloatTensor:$logits, F64Attr:$norm_lambda,
                       DefaultValuedAttr<F64Attr, "1.0e-6">:$norm_eps);
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat = [{
    $logits `norm_lambda` `=` $norm_lambda (`norm_eps` `=` $norm_eps^)?
    attr-dict `:` type($logits)
  }];
}

def Moe_GateOp : Moe_DiffOp<"gate"> {
  let summary = "Skywork-MoE gate: optional logit normalization, scoring, top-k";
  let description = [{
    For each token row `z` of `logits` (`[T, experts]`):
    with `norm_lambda`, `z~ = lambda * (z - mean(z)) / (std(z) + eps)` where
    mean and the population std are taken over the expert axis, else `z~ = z`.
    The experts' scores `s` are `softmax(z~)` (`scoring = softmax`, the
    default) or `sigmoid(z~)` element by element (`scoring = sigmoid`,
    DeepSeek-V3's); `probs` holds them, divided by their sum for sigmoid
    scores so that every row of `probs` is a distribution over the experts,
    as the auxiliary losses read it.

    `indices` (`[T, top_k]`) holds the `top_k` experts of largest score plus
    `bias` (`[experts]`, when given; the scores as stored, then the sum
    rounded to their type) in decreasing order, ties broken towards the
    lower expert index. The bias only chooses: DeepSeek-V3's auxiliary-loss-
    free balancing moves it between steps (moe-expert-bias), and it gets no
    gradient. `weights` (`[T, top_k]`) holds the chosen experts' scores,
    divided by their sum when `renormalize` is set (Mixtral, Skywork-MoE),
    times `scale` (DeepSeek's routed_scaling_factor; 1 by default).

    With `groups = G` (> 1; DeepSeek-V3's group-limited routing, n_group and
    topk_group), the experts form G groups of consecutive indices, each
    scored by the sum of its `group_score_top` (2 by default; DeepSeek-V2's
    group_limited_greedy: 1) largest keys (score plus bias, the sum in the
    scores' type), and the `group_top_k` groups of largest group score
    (ties towards the lower group) hold every choice.

    ```mlir
    %p, %w, %i = moe.gate %z top_k = 2 norm_lambda = 1.0 renormalize
        : tensor<512x8xf32> -> tensor<512x8xf32>, tensor<512x2xf32>, tensor<512x2xi32>
    %p2, %w2, %i2 = moe.gate %z bias %b top_k = 2 scoring = sigmoid renormalize
        : tensor<512x8xf32>, tensor<8xf32> -> tensor<512x8xf32>, tensor<512x2xf32>, tensor<512x2xi32>
    %p3, %w3, %i3 = moe.gate %z bias %b top_k = 2 groups = 4 group_top_k = 2 scoring = sigmoid
        : tensor<512x8xf32>, tensor<8xf32> -> tensor<512x8xf32>, tensor<512x2xf32>, tensor<512x2xi32>
    ```
  }];
  let arguments = (ins Moe_FloatTensor:$logits, Optional<Moe_FloatTensor>:$bias,
                       ConfinedAttr<I64Attr, [IntPositive]>:$top_k,
                       DefaultValuedAttr<Moe_GateScoring,
                                         "GateScoring::softmax">:$scoring,
                       OptionalAttr<F64Attr>:$norm_lambda,
                       DefaultValuedAttr<F64Attr, "1.0e-6">:$norm_eps,
                       UnitAttr:$renormalize,
                       DefaultValuedAttr<F64Attr, "1.0">:$scale,
                       DefaultValuedAttr<ConfinedAttr<I64Attr, [IntPositive]>,
                                         "1">:$groups,
                       DefaultValuedAttr<ConfinedAttr<I64Attr, [IntPositive]>,
                                         "1">:$group_top_k,
                       DefaultValuedAttr<ConfinedAttr<I64Attr, [IntPositive]>,
                                         "2">:$group_score_top);
  let results = (outs Moe_FloatTensor:$probs, Moe_FloatTensor:$weights,
                      Moe_IndexTensor:$indices);
  let assemblyFormat = [{
    $logits (`bias` $bias^)? `top_k` `=` $top_k
    (`groups` `=` $groups^)? (`group_top_k` `=` $group_top_k^)?
    (`group_score_top` `=` $group_score_top^)? (`scoring` `=` $scoring^)? (`norm_lambda` `=` $norm_lambda^)?
    (`norm_eps` `=` $norm_eps^)? (`renormalize` $renormalize^)?
    (`scale` `=` $scale^)? attr-dict `:` type($logits) (`,` type($bias)^)? `->` type($probs) `,` type($weights)
    `,` type($indices)
  }];
}

def Moe_DispatchOp : Moe_DiffOp<"dispatch", [
    DeclareOpInterfaceMethods<Moe_NarrowableResultOpInterface>]> {
  let summary = "gather tokens into per-expert buffers under a capacity";
  let description = [{
    `tokens` is `[T, hidden]`, `indices` the gate's `[T, k]` expert choices.
    The result `buffer` is `[experts, capacity, hidden]`. Assignments queue
    per expert in token-major order over (token, choice) pairs; an assignment
    arriving when its expert already holds `capacity` tokens is dropped.
    With a `priority` operand (`[T, k]`, the gate's weights), an expert
    over capacity keeps the assignments of highest priority instead (ties
    to the earlier token and choice) and drops the rest; the kept ones still
    take rows in token-major order.
    `slots[t, c]` is the row of `buffer[indices[t, c]]` that holds token `t`,
    or -1 when dropped; `dropped` counts the dropped assignments. Unused rows
    of `buffer` are zero. `buffer` has the tokens' type, or is bf16 for f32
    tokens: the rows rounded to nearest even (moe-narrow-results).

    With `capacity_factor = cf`, capacity must equal `ceil(cf * T * k /
    experts)`; `dropless` sets capacity to `T` (a token picks an expert at
    most once) and never drops.

    ```mlir
    %buf, %slots, %dropped = moe.dispatch %x, %i capacity_factor = 1.25
        : tensor<512x128xf32>, tensor<512x2xi32> -> tensor<8x160x128xf32>, tensor<512x2xi32>, tensor<i64>
    %buf2, %slots2, %dropped2 = moe.dispatch %x, %i priority %w capacity_factor = 1.0
        : tensor<512x128xf32>, tensor<512x2xi32>, tensor<512x2xf32> -> tensor<8x128x128xf32>, tensor<512x2xi32>, tensor<i64>
    ```
  }];
  let arguments = (ins Moe_FloatTensor:$tokens, Moe_IndexTensor:$indices,
                       Optional<Moe_FloatTensor>:$priority,
                       OptionalAttr<F64Attr>:$capacity_factor);
  let results = (outs Moe_NarrowableTensor:$buffer, Moe_IndexTensor:$slots,
                      Moe_CountScalar:$dropped);
  let assemblyFormat = [{
    $tokens `,` $indices (`priority` $priority^)? custom<Capacity>($capacity_factor)
    attr-dict `:` type($tokens) `,` type($indices) (`,` type($priority)^)? `->`
    type($buffer) `,` type($slots) `,` type($dropped)
  }];
  let extraClassDeclaration = [{
    bool isDropless() { return !getCapacityFactor(); }
  }];
}

def Moe_RouteOp : Moe_Op<"route"> {
  let summary = "the capacity decisions of moe.dispatch, without the tokens";
  let description = [{
    The routing half of moe.dispatch for `experts` experts: which
    assignments are kept and `dropped` are those moe.dispatch decides for the
    same `indices` (`[T, k]`), `priority` and capacity (`ceil(cf * T * k /
    experts)`, or `T` when `dropless`). An expert-parallel program routes the
    indices of the whole batch on every rank, so that what is kept does not
    depend on how the batch is split.

    The tokens form `ranks` equal parts, the parts of the ranks in order.
    Since an expert's queue keeps token order, each part's kept assignments
    of an expert are one run of consecutive rows of the expert's buffer:
    `counts[p, e]` is the length of part `p`'s run in expert `e`, and
    `slots[t, c]` is the row of assignment `(t, c)` within its part's run
    (-1 when dropped). With `ranks = 1` (the default) the slots are those of
    moe.dispatch.

    ```mlir
    %slots, %counts, %dropped = moe.route %i experts = 8 ranks = 2
        capacity_factor = 1.25
        : tensor<512x2xi32> -> tensor<512x2xi32>, tensor<2x8xi64>, tensor<i64>
    ```
  }];
  let arguments = (ins Moe_IndexTensor:$indices,
                       Optional<Moe_FloatTensor>:$priority, I64Attr:$experts,
                       DefaultValuedAttr<I64Attr, "1">:$ranks,
                       OptionalAttr<F64Attr>:$capacity_factor);
  let results = (outs Moe_IndexTensor:$slots, Moe_CountTensor:$counts,
                      Moe_CountScalar:$dropped);
  let assemblyFormat = [{
    $indices (`priority` $priority^)? `experts` `=` $experts
    (`ranks` `=` $ranks^)? custom<Capacity>($capacity_factor) attr-dict `:`
    type($indices) (`,` type($priority)^)? `->` type($slots) `,`
    type($counts) `,` type($dropped)
  }];
  let extraClassDeclaration = [{
    bool isDropless() { return !getCapacityFactor(); }
    /// Rows per expert: from the capacity factor, or T when dropless.
    int64_t getCapacity();
  }];
}

def Moe_PlaceOp : Moe_DiffOp<"place", [AllTypesMatch<["indices", "slots"]>]> {
  let summary = "tokens into per-expert buffers at given rows";
  let description = [{
    The placing half of moe.dispatch: `buffer[indices[t, c], slots[t, c]] =
    tokens[t]` for every choice whose slot is not -1; every other row of
    `buffer` (`[experts, capacity, hidden]`) is zero. The capacity is not
    tied to the number of tokens: with rows from moe.route over a whole
    batch, a rank places its own tokens in buffers of the batch's capacity.

    ```mlir
    %buf = moe.place %x, %i, %slots
        : tensor<256x128xf32>, tensor<256x2xi32> -> tensor<8x160x128xf32>
    ```
  }];
  let arguments = (ins Moe_FloatTensor:$tokens, Moe_IndexTensor:$indices,
                       Moe_IndexTensor:$slots);
  let results = (outs Moe_FloatTensor:$buffer);
  let assemblyFormat = [{
    $tokens `,` $indices `,` $slots attr-dict `:` type($tokens) `,`
    type($indices) `->` type($buffer)
  }];
}

def Moe_MergeRunsOp : Moe_DiffOp<"merge_runs"> {
  let summary = "the runs of an expert's queue, one per rank, into its buffer";
  let description = [{
    `runs` is `[ranks * experts, run_capacity, hidden]`: block `p * experts +
    e` holds, in its first `counts[p, e]` rows, the run of rank `p` in the
    queue of expert `e` (`counts` is `[ranks, experts]`, as moe.route gives
    it; the rest of the block is ignored). The result `[experts, capacity,
    hidden]` holds every expert's runs one after the other, in rank order,
    as moe.dispatch would have placed them, and zeros after the last.

    ```mlir
    %queue = moe.merge_runs %runs, %counts
        : tensor<8x64x128xf32>, tensor<2x4xi64> -> tensor<4x128x128xf32>
    ```
  }];
  let arguments = (ins Moe_FloatTensor:$runs, Moe_CountTensor:$counts);
  let results = (outs Moe_FloatTensor:$queue);
  let assemblyFormat = [{
    $runs `,` $counts attr-dict `:` type($runs) `,` type($counts) `->`
    type($queue)
  }];
}

def Moe_SplitRunsOp : Moe_DiffOp<"split_runs"> {
  let summary = "an expert's buffer back into its runs, one per rank";
  let description = [{
    The inverse of moe.merge_runs (and its transpose): `queue` is
    `[experts, capacity, hidden]`, the result `[ranks * experts,
    run_capacity, hidden]` holds in block `p * experts + e` the `counts[p,
    e]` rows of rank `p`'s run in expert `e`'s queue, and zeros after them.

    ```mlir
    %runs = moe.split_runs %queue, %counts
        : tensor<4x128x128xf32>, tensor<2x4xi64> -> tensor<8x64x128xf32>
    ```
  }];
  let arguments = (ins Moe_FloatTensor:$queue, Moe_CountTensor:$counts);
  let results = (outs Moe_FloatTensor:$runs);
  let assemblyFormat = [{
    $queue `,` $counts attr-dict `:` type($queue) `,` type($counts) `->`
    type($runs)
  }];
}

def Moe_ExpertFfnOp : Moe_DiffOp<"expert_ffn",
    [Moe_GemmResultOf<"input", "result">, AllTypesMatch<["gate_proj", "up_proj"]>]> {
  let summary = "grouped SwiGLU FFN: one FFN per expert over stacked weights";
  let description = [{
    `input` is `[experts, capacity, hidden]`; `gate_proj` and `up_proj` are
    `[experts, ffn, hidden]`, `down_proj` is `[experts, hidden, ffn]`
    (Mixtral's w1, w3 and w2 of every expert, stacked). For every expert `e`:
    `result[e] = (silu(input[e] gate_proj[e]^T) * (input[e] up_proj[e]^T)) down_proj[e]^T`.

    `projections` (`[experts, 2, capacity, ffn]`) keeps the two projections
    `input[e] gate_proj[e]^T` and `input[e] up_proj[e]^T` for
    moe.expert_ffn_grad, which then does not recompute them. It is not
    differentiable.

    With bf16 operands (moe-mixed-precision) the GEMMs accumulate in f32,
    `result` is f32, and `projections` are stored in bf16: the SwiGLU reads
    the rounded projections, and its output is rounded to bf16 before the
    down projection, as a GEMM operand. With bf16 `input` the weights may
    also be f32: the GEMMs then read them rounded to bf16 (to nearest even,
    as `arith.truncf`), which a kernel may do an expert at a time instead
    of copying the whole weight (`weight-copies=per-expert`).

    ```mlir
    %y, %proj = moe.expert_ffn %buf, %w1, %w3, %w2
        : tensor<8x160x128xf32>, tensor<8x352x128xf32>, tensor<8x128x352xf32> -> tensor<8x2x160x352xf32>
    ```
  }];
  let arguments = (ins Moe_GemmTensor:$input, Moe_GemmTensor:$gate_proj,
                       Moe_GemmTensor:$up_proj, Moe_GemmTensor:$down_proj);
  let results = (outs Moe_FloatTensor:$result, Moe_GemmTensor:$projections);
  let assemblyFormat = [{
    $input `,` $gate_proj `,` $up_proj `,` $down_proj attr-dict `:`
    type($input) `,` type($gate_proj) `,` type($down_proj) `->` type($projections)
  }];
}

def Moe_CombineOp : Moe_DiffOp<"combine"> {
  let summary = "weighted sum of each token's expert outputs";
  let description = [{
    `result[t] = sum_c weights[t, c] * expert_output[indices[t, c], slots[t, c]]`
    over the choices `c` whose slot is not -1: a dropped assignment adds
    nothing (the token's residual path carries it). `expert_output` is
    `[experts, capacity, hidden]`, the result `[T, hidden]`.

    ```mlir
    %y = moe.combine %out, %w, %i, %slots
        : tensor<8x160x128xf32>, tensor<512x2xf32>, tensor<512x2xi32>, tensor<512x2xi32> -> tensor<512x128xf32>
    ```
  }];
  let arguments = (ins Moe_FloatTensor:$expert_output, Moe_FloatTensor:$weights,
                       Moe_IndexTensor:$indices, Moe_IndexTensor:$slots);
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat = [{
    $expert_output `,` $weights `,` $indices `,` $slots attr-dict `:`
    type($expert_output) `,` type($weights) `,` type($indices) `,` type($slots)
    `->` type($result)
  }];
}

include "moe/MoeLossOps.td"

include "moe/MoeGradOps.td"
include "moe/MoeOptimizerOps.td"
include "moe/MoeFusedOps.td"

#endif // MOE_OPS_TD
