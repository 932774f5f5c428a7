//===- MoeGradOps.td - backward ops of the moe dialect -----*- tablegen -*-===//
//
// The ops that moe-autodiff builds for the vector-Jacobian products of the
// forward ops. Each takes the forward op's inputs it needs and the gradient
// of its output(s), and returns the gradients of its differentiable inputs.
// Routing decisions (indices, slots) are inputs: a backward op never
// re-routes. Included from MoeOps.td.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_GRAD_OPS_TD
#define MOE_GRAD_OPS_TD

/// A backward op: it carries the Backward trait.
class Moe_GradOp<string mnemonic, list<Trait> traits = []>
    : Moe_Op<mnemonic, !listconcat([Moe_Backward], traits)>;

def Moe_EmbeddingGradOp : Moe_GradOp<"embedding_grad"> {
  let summary = "gradient of moe.embedding with respect to its table";
  let description = [{
    `d_table[v, :] = sum over positions p with ids[p] = v of d_result[p, :]`,
    and 0 for `v = padding_id`. The vocabulary size is the first dimension
    of the result.
  }];
  let arguments = (ins Moe_IndexTensor:$ids, Moe_FloatTensor:$d_result,
                       OptionalAttr<I64Attr>:$padding_id);
  let results = (outs Moe_FloatTensor:$d_table);
  let assemblyFormat = [{
    $ids `,` $d_result (`padding_id` `=` $padding_id^)? attr-dict `:`
    type($ids) `,` type($d_result) `->` type($d_table)
  }];
}

def Moe_RmsNormGradOp : Moe_GradOp<"rms_norm_grad",
    [AllTypesMatch<["d_result", "d_input"]>,
     AllTypesMatch<["weight", "d_weight"]>,
     DeclareOpInterfaceMethods<Moe_WidenableOperandOpInterface>]> {
  let summary = "gradients of moe.rms_norm";
  let description = [{
    `input` has the gradients' type, or is bf16 for f32 gradients: the
    stored activation, widened as it is read (moe-widen-operands).
  }];
  let arguments = (ins Moe_WidenableTensor:$input, Moe_FloatTensor:$weight,
                       Moe_FloatTensor:$d_result, F64Attr:$eps);
  let results = (outs Moe_FloatTensor:$d_input, Moe_FloatTensor:$d_weight);
  let assemblyFormat = [{
    $input `,` $weight `,` $d_result `eps` `=` $eps attr-dict `:`
    custom<ConvertedType>(type($input), type($d_result)) `,` type($weight)
  }];
}

def Moe_LinearInputGradOp : Moe_GradOp<"linear_input_grad",
    [DeclareOpInterfaceMethods<Moe_NarrowableResultOpInterface>]> {
  let summary = "gradient of moe.linear (and moe.router) with respect to the input";
  let description = [{
    `d_input[..., i] = sum_o d_result[..., o] * weight[o, i]`. Over bf16
    operands the GEMM accumulates in f32 and `d_input` is f32, or bf16: the
    f32 result rounded to nearest even (moe-narrow-results).
  }];
  let arguments = (ins Moe_GemmTensor:$d_result, Moe_GemmTensor:$weight);
  let results = (outs Moe_NarrowableTensor:$d_input);
  let assemblyFormat = [{
    $d_result `,` $weight attr-dict `:` type($d_result) `,` type($weight) `->` type($d_input)
  }];
}

def Moe_LinearWeightGradOp : Moe_GradOp<"linear_weight_grad"> {
  let summary = "gradient of moe.linear (and moe.router) with respect to the weight";
  let description = [{
    `d_weight[o, i] = sum over rows r of d_result[r, o] * input[r, i]`, where
    the rows are all leading positions.
  }];
  let arguments = (ins Moe_GemmTensor:$d_result, Moe_GemmTensor:$input);
  let results = (outs Moe_FloatTensor:$d_weight);
  let assemblyFormat = [{
    $d_result `,` $input attr-dict `:` type($d_result) `,` type($input) `->` type($d_weight)
  }];
}

def Moe_BiasGradOp : Moe_GradOp<"bias_grad"> {
  let summary = "gradient of a bias: the sum of d_result over its leading positions";
  let arguments = (ins Moe_FloatTensor:$d_result);
  let results = (outs Moe_FloatTensor:$d_bias);
  let assemblyFormat = "$d_result attr-dict `:` type($d_result) `->` type($d_bias)";
}

def Moe_AttentionGradOp : Moe_GradOp<"attention_grad",
    [AllTypesMatch<["query", "output", "d_result"]>,
     AllTypesMatch<["key", "value"]>,
     Moe_GemmResultOf<"query", "d_query">, Moe_GemmResultOf<"key", "d_key">,
     Moe_GemmResultOf<"key", "d_value">]> {
  let summary = "gradients of moe.attention";
  let description = [{
    `output` and `lse` are the forward's result (in the operands' type) and
    log-sum-exp: each query row's probabilities are exp(score - lse), from
    scores recomputed from `query` and `key`, and the softmax backward's
    sum over the row, sum_j p_j dp_j, is `d_result . output` (as in
    FlashAttention's backward: no second pass over the keys), each query
    seeing the keys that `causal` and `window` let it see in the forward.
    The gradients
    of grouped-query heads sharing a key/value head add up.

    Over bf16 operands the GEMMs accumulate in f32 and their f32 operands
    are rounded to bf16 first: the probabilities where they multiply
    `d_result` (for `d_value`), and the scores' gradients (softmax backward,
    scaled) where they multiply `key` and `query`. The softmax backward
    itself is f32.
  }];
  let arguments = (ins Moe_GemmTensor:$query, Moe_GemmTensor:$key,
                       Moe_GemmTensor:$value, Moe_GemmTensor:$output,
                       Moe_FloatTensor:$lse, Moe_GemmTensor:$d_result,
                       UnitAttr:$causal,
                       OptionalAttr<Moe_AttentionWindowAttr>:$window);
  let results = (outs Moe_FloatTensor:$d_query, Moe_FloatTensor:$d_key,
                      Moe_FloatTensor:$d_value);
  let assemblyFormat = [{
    $query `,` $key `,` $value `,` $output `,` $lse `,` $d_result
    (`causal` $causal^)? (`window` $window^)? attr-dict `:` type($query)
    `,` type($key) `` custom<AttentionLseType>(ref(type($query)), type($lse))
  }];
}

def Moe_AttentionSinksGradOp : Moe_GradOp<"attention_sinks_grad",
    [AllTypesMatch<["output", "d_result"]>, AllTypesMatch<["sinks", "d_sinks"]>]> {
  let summary = "gradient of moe.attention's sinks";
  let description = [{
    A sink takes the probability `exp(sink - lse)` of each row of its head
    and passes no value on, so its gradient is
    `d_sinks[h] = -sum over batch b and query i of
    exp(sinks[h] - lse[b, h, i]) * (d_result[b, i, h] . output[b, i, h])`:
    the row's softmax-backward sum (as in moe.attention_grad) against the
    sink's probability. `output` and `lse` are the forward's results. The
    sums are in the sinks' type whatever the activations' (f32 over bf16).

    ```mlir
    %ds = moe.attention_sinks_grad %s, %lse, %o, %do : tensor<4xf32>, tensor<8x64x4x32xf32>
    ```
  }];
  let arguments = (ins Moe_FloatTensor:$sinks, Moe_FloatTensor:$lse,
                       Moe_GemmTensor:$output, Moe_GemmTensor:$d_result);
  let results = (outs Moe_FloatTensor:$d_sinks);
  let assemblyFormat = [{
    $sinks `,` $lse `,` $output `,` $d_result attr-dict `:` type($sinks) `,`
    type($output) `` custom<AttentionLseType>(ref(type($output)), type($lse))
  }];
}

def Moe_SwigluGradOp : Moe_GradOp<"swiglu_grad",
    [AllTypesMatch<["gate", "up", "d_result", "d_gate", "d_up"]>]> {
  let summary = "gradients of moe.swiglu";
  let arguments = (ins Moe_FloatTensor:$gate, Moe_FloatTensor:$up,
                       Moe_FloatTensor:$d_result);
  let results = (outs Moe_FloatTensor:$d_gate, Moe_FloatTensor:$d_up);
  let assemblyFormat = "$gate `,` $up `,` $d_result attr-dict `:` type($gate)";
  let hasVerifier = 0;
}

def Moe_ConcatGradOp : Moe_GradOp<"concat_grad"> {
  let summary = "gradients of moe.concat";
  let description = [{
    The parts of `d_result` that each operand of moe.concat gave, summed
    over the heads for an operand of one head that every head read.

    ```mlir
    %dn, %dp = moe.concat_grad %dk : tensor<8x64x4x64xf32> -> tensor<8x64x4x48xf32>, tensor<8x64x1x16xf32>
    ```
  }];
  let arguments = (ins Moe_FloatTensor:$d_result);
  let results = (outs Moe_FloatTensor:$d_lhs, Moe_FloatTensor:$d_rhs);
  let assemblyFormat = [{
    $d_result attr-dict `:` type($d_result) `->` type($d_lhs) `,` type($d_rhs)
  }];
}

def Moe_SigmoidScaleGradOp : Moe_GradOp<"sigmoid_scale_grad",
    [AllTypesMatch<["input", "d_result", "d_input"]>,
     AllTypesMatch<["logit", "d_logit"]>]> {
  let summary = "gradients of moe.sigmoid_scale";
  let description = [{
    With `s = sigmoid(logit)`: `d_input = d_result * s` and, per logit,
    `d_logit = s (1 - s) sum_h d_result[..., h] input[..., h]` over the
    elements it gates (a row's, or its own).
  }];
  let arguments = (ins Moe_FloatTensor:$input, Moe_FloatTensor:$logit,
                       Moe_FloatTensor:$d_result);
  let results = (outs Moe_FloatTensor:$d_input, Moe_FloatTensor:$d_logit);
  let assemblyFormat = [{
    $input `,` $logit `,` $d_result attr-dict `:` type($input) `,`
    type($logit)
  }];
  let hasVerifier = 1;
}

def Moe_CrossEntropyGradOp : Moe_GradOp<"cross_entropy_grad",
    [DeclareOpInterfaceMethods<Moe_NarrowableResultOpInterface>]> {
  let summary = "gradient of moe.cross_entropy with respect to the logits";
  let description = [{
    `d_logits[p, :] = d_loss * (softmax(logits[p, :]) - onehot(targets[p])) / N`
    for each counted position, 0 for the others; `N` is `divisor` when
    given (0 gives 0) and the number of positions otherwise. `divisor` and
    `ignore_index` are the forward's. `d_logits` has the logits' type, or
    is bf16 for f32 logits: the values rounded to nearest even
    (moe-narrow-results).
  }];
  let arguments = (ins Moe_FloatTensor:$logits, Moe_IndexTensor:$targets,
                       Moe_FloatScalar:$d_loss,
                       Optional<Moe_FloatScalar>:$divisor,
                       OptionalAttr<I64Attr>:$ignore_index);
  let results = (outs Moe_NarrowableTensor:$d_logits);
  let assemblyFormat = [{
    $logits `,` $targets `,` $d_loss (`divisor` $divisor^)? attr-dict `:`
    custom<ConvertedType>(type($logits), type($d_logits)) `,` type($targets)
    `,` type($d_loss) (`,` type($divisor)^)?
  }];
}

def Moe_GateGradOp : Moe_GradOp<"gate_grad",
    [AllTypesMatch<["logits", "d_probs", "d_logits"]>]> {
  let summary = "gradient of moe.gate with respect to the logits";
  let description = [{
    Given the gradients of the gate's `probs` and `weights` outputs and the
    forward's top-k `indices`, the gradient of the logits: through the
    scale and the renormalization of the selected scores (when
    `renormalize`), the sigmoid
    scores' sum (sigmoid `scoring`), the softmax or the sigmoid, and the
    logit normalization over the expert axis (mean and population std, when
    `norm_lambda` is set). Attributes as in moe.gate.
  }];
  let arguments = (ins Moe_FloatTensor:$logits, Moe_IndexTensor:$indices,
                       Moe_FloatTensor:$d_probs, Moe_FloatTensor:$d_weights,
                       DefaultValuedAttr<Moe_GateScoring,
                                         "GateScoring::softmax">:$scoring,
                       OptionalAttr<F64Attr>:$norm_lambda,
                       DefaultValuedAttr<F64Attr, "1.0e-6">:$norm_eps,
                       UnitAttr:$renormalize,
                       DefaultValuedAttr<F64Attr, "1.0">:$scale);
  let results = (outs Moe_FloatTensor:$d_logits);
  let assemblyFormat = [{
    $logits `,` $indices `,` $d_probs `,` $d_weights
    (`scoring` `=` $scoring^)? (`norm_lambda` `=` $norm_lambda^)? (`norm_eps` `=` $norm_eps^)?
    (`renormalize` $renormalize^)? (`scale` `=` $scale^)? attr-dict `:`
    type($logits) `,`
    type($indices) `,` type($d_weights)
  }];
}

def Moe_GateNormGradOp : Moe_GradOp<"gate_norm_grad",
    [AllTypesMatch<["logits", "d_result", "d_logits"]>]> {
  let summary = "gradient of moe.gate_norm with respect to the logits";
  let description = [{
    Through the mean and the population std of each row exactly (at std 0
    only the centring path remains). Attributes as in moe.gate_norm.
  }];
  let arguments = (ins Moe_FloatTensor:$logits, Moe_FloatTensor:$d_result,
                       F64Attr:$norm_lambda,
                       DefaultValuedAttr<F64Attr, "1.0e-6">:$norm_eps);
  let results = (outs Moe_FloatTensor:$d_logits);
  let assemblyFormat = [{
    $logits `,` $d_result `norm_lambda` `=` $norm_lambda
    (`norm_eps` `=` $norm_eps^)? attr-dict `:` type($logits)
  }];
}

def Moe_DispatchGradOp : Moe_GradOp<"dispatch_grad",
    [AllTypesMatch<["indices", "slots"]>]> {
  let summary = "gradient of moe.dispatch with respect to the tokens";
  let description = [{
    `d_tokens[t] = sum over choices c with slots[t, c] != -1 of
    d_buffer[indices[t, c], slots[t, c]]`: dropped assignments get nothing.
  }];
  let arguments = (ins Moe_FloatTensor:$d_buffer, Moe_IndexTensor:$indices,
                       Moe_IndexTensor:$slots);
  let results = (outs Moe_FloatTensor:$d_tokens);
  let assemblyFormat = [{
    $d_buffer `,` $indices `,` $slots attr-dict `:` type($d_buffer) `,`
    type($indices) `->` type($d_tokens)
  }];
}

def Moe_ExpertFfnGradOp : Moe_GradOp<"expert_ffn_grad",
    [AllTypesMatch<["input", "d_result"]>,
     AllTypesMatch<["gate_proj", "up_proj"]>,
     Moe_GemmResultOf<"input", "d_input">,
     Moe_GemmResultOf<"gate_proj", "d_gate_proj">,
     Moe_GemmResultOf<"gate_proj", "d_up_proj">,
     Moe_GemmResultOf<"down_proj", "d_down_proj">]> {
  let summary = "gradients of moe.expert_ffn";
  let description = [{
    `projections` is the forward's result of the same name, for the same
    operands.
  }];
  let arguments = (ins Moe_GemmTensor:$input, Moe_GemmTensor:$gate_proj,
                       Moe_GemmTensor:$up_proj, Moe_GemmTensor:$down_proj,
                       Moe_GemmTensor:$projections, Moe_GemmTensor:$d_result);
  let results = (outs Moe_FloatTensor:$d_input, Moe_FloatTensor:$d_gate_proj,
                      Moe_FloatTensor:$d_up_proj, Moe_FloatTensor:$d_down_proj);
  let assemblyFormat = [{
    $input `,` $gate_proj `,` $up_proj `,` $down_proj `,` $projections `,`
    $d_result attr-dict `:` type($input) `,` type($gate_proj) `,`
    type($down_proj) `,` type($projections)
  }];
}

def Moe_CombineGradOp : Moe_GradOp<"combine_grad",
    [AllTypesMatch<["indices", "slots"]>,
     AllTypesMatch<["weights", "d_weights"]>,
     DeclareOpInterfaceMethods<Moe_NarrowableResultOpInterface>,
     DeclareOpInterfaceMethods<Moe_WidenableOperandOpInterface>]> {
  let summary = "gradients of moe.combine";
  let description = [{
    `d_expert_output[indices[t, c], slots[t, c]] = weights[t, c] * d_result[t]`
    and `d_weights[t, c] = <d_result[t], expert_output[indices[t, c], slots[t, c]]>`
    for kept assignments; dropped ones (slot -1) get zero. The op computes
    in `d_result`'s type. `d_expert_output` has that type, or is bf16 where
    it is f32: the values rounded to nearest even (moe-narrow-results).
    `expert_output` too may be bf16 where it is f32: the stored activation,
    widened as it is read (moe-widen-operands).
  }];
  let arguments = (ins Moe_WidenableTensor:$expert_output, Moe_FloatTensor:$weights,
                       Moe_IndexTensor:$indices, Moe_IndexTensor:$slots,
                       Moe_FloatTensor:$d_result);
  let results = (outs Moe_NarrowableTensor:$d_expert_output,
                      Moe_FloatTensor:$d_weights);
  let assemblyFormat = [{
    $expert_output `,` $weights `,` $indices `,` $slots `,` $d_result
    attr-dict `:` custom<ConvertedType>(type($expert_output),
                                           type($d_expert_output))
    `,` type($weights) `,` type($indices) `,` type($d_result)
  }];
}

def Moe_AuxLossGradOp : Moe_GradOp<"aux_loss_grad",
    [AllTypesMatch<["probs", "d_probs"]>]> {
  let summary = "gradient of moe.aux_loss with respect to the gate probabilities";
  let description = [{
    `skywork`: `d_probs[i, j] = -2 d_loss (1/n - P_j) / T`; `switch`:
    `d_probs[i, j] = d_loss * n * f_j / T` (the fractions f_j are constant).
  }];
  let arguments = (ins Moe_AuxLossKind:$kind, Moe_FloatTensor:$probs,
                       Moe_IndexTensor:$indices, Moe_FloatScalar:$d_loss);
  let results = (outs Moe_FloatTensor:$d_probs);
  let assemblyFormat = [{
    $kind $probs `,` $indices `,` $d_loss attr-dict `:` type($probs) `,`
    type($indices) `,` type($d_loss)
  }];
}

def Moe_PooledAuxLossGradOp : Moe_GradOp<"pooled_aux_loss_grad"> {
  let summary = "gradient of moe.pooled_aux_loss with respect to the probabilities";
  let description = [{
    For every layer `l`, `d_probs_l[i, j] = d_loss * n * c_j / N^2`, with
    `c_j` and `N` of moe.pooled_aux_loss (the counts are constant); one
    result per layer, shaped like its `probs`.
  }];
  let arguments = (ins Variadic<Moe_IndexTensor>:$indices,
                       Moe_FloatScalar:$d_loss);
  let results = (outs Variadic<Moe_FloatTensor>:$d_probs);
  let assemblyFormat = [{
    `(` $indices `)` `,` $d_loss attr-dict `:` `(` type($indices) `)` `,`
    type($d_loss) `->` `(` type($d_probs) `)`
  }];
}

def Moe_ZLossGradOp : Moe_GradOp<"z_loss_grad",
    [AllTypesMatch<["logits", "d_logits"]>]> {
  let summary = "gradient of moe.z_loss with respect to the logits";
  let description = [{
    `d_logits[i, j] = d_loss * 2 * lse_i * softmax(logits[i])_j / T`.
  }];
  let arguments = (ins Moe_FloatTensor:$logits, Moe_FloatScalar:$d_loss);
  let results = (outs Moe_FloatTensor:$d_logits);
  let assemblyFormat = [{
    $logits `,` $d_loss attr-dict `:` type($logits) `,` type($d_loss)
  }];
}

#endif // MOE_GRAD_OPS_TD
