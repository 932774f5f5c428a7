//===- MoeLossOps.td - losses and metrics of moe ops -------*- tablegen -*-===//
//
// The ops of the auxiliary losses and their coefficients, the expert
// biases' loads and updates, and the routing metrics. Included from
// MoeOps.td, whose type constraints they use.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_LOSS_OPS_TD
#define MOE_LOSS_OPS_TD

//===----------------------------------------------------------------------===//
// Auxiliary losses and their coefficients
//===----------------------------------------------------------------------===//

def Moe_AuxLossOp : Moe_DiffOp<"aux_loss"> {
  let summary = "load-balancing auxiliary loss of one MoE layer";
  let description = [{
    `probs` is the gate's `[T, n]` softmax output, `indices` its `[T, k]`
    choices. With `P_j = (1/T) sum_i probs[i, j]`:
    - `skywork` (Skywork-MoE eq. 4): `sum_j (1/n - P_j)^2`;
    - `switch` (Switch/GShard): `n * sum_j f_j * P_j`, where `f_j` is the
      fraction of the `T * k` assignments that chose expert `j` (before any
      capacity drop), as in Megatron-LM.

    ```mlir
    %aux = moe.aux_loss skywork %p, %i : tensor<512x8xf32>, tensor<512x2xi32> -> tensor<f32>
    ```
  }];
  let arguments = (ins Moe_AuxLossKind:$kind, Moe_FloatTensor:$probs,
                       Moe_IndexTensor:$indices);
  let results = (outs Moe_FloatScalar:$result);
  let assemblyFormat = [{
    $kind $probs `,` $indices attr-dict `:` type($probs) `,` type($indices) `->` type($result)
  }];
}

def Moe_PooledAuxLossOp : Moe_DiffOp<"pooled_aux_loss",
    [SameVariadicOperandSize]> {
  let summary = "load-balancing loss over every MoE layer's tokens pooled";
  let description = [{
    transformers' Mixtral loss (`load_balancing_loss_func`): the tokens of
    all layers are pooled. Layer `l` gives its gate's `[T_l, n]` softmax
    output `probs` and `[T_l, k]` choices `indices`; with `N = sum_l T_l`,
    `c_j` the number of choices of expert `j` over all layers and `S_j` the
    sum of `probs[., j]` over all layers' tokens, the result is
    `n * sum_j (c_j / N) * (S_j / N)`: `k` times the Switch loss of the
    pooled tokens (not a sum of per-layer losses).

    ```mlir
    %aux = moe.pooled_aux_loss(%p0, %p1), (%i0, %i1)
        : (tensor<512x8xf32>, tensor<512x8xf32>), (tensor<512x2xi32>, tensor<512x2xi32>) -> tensor<f32>
    ```
  }];
  let arguments = (ins Variadic<Moe_FloatTensor>:$probs,
                       Variadic<Moe_IndexTensor>:$indices);
  let results = (outs Moe_FloatScalar:$result);
  let assemblyFormat = [{
    `(` $probs `)` `,` `(` $indices `)` attr-dict `:` `(` type($probs) `)` `,`
    `(` type($indices) `)` `->` type($result)
  }];
}

def Moe_ZLossOp : Moe_DiffOp<"z_loss"> {
  let summary = "router z-loss: mean over tokens of logsumexp(logits)^2";
  let description = [{
    ST-MoE's router z-loss on the `[T, n]` router logits:
    `(1/T) sum_i (log sum_j exp(logits[i, j]))^2`.

    ```mlir
    %z = moe.z_loss %logits : tensor<512x8xf32> -> tensor<f32>
    ```
  }];
  let arguments = (ins Moe_FloatTensor:$logits);
  let results = (outs Moe_FloatScalar:$result);
  let assemblyFormat = "$logits attr-dict `:` type($logits) `->` type($result)";
}

def Moe_AdaptiveAuxCoeffOp : Moe_Op<"adaptive_aux_coeff",
    [AllTypesMatch<["alpha", "result"]>]> {
  let summary = "Skywork-MoE adaptive auxiliary-loss coefficient update";
  let description = [{
    With the layer's drop rate `d = dropped / assignments`:
    `alpha_hat = min(xi * d, alpha_max)` and
    `result = beta * alpha + (1 - beta) * alpha_hat`.
    Paper values: `xi = 0.2`, `alpha_max = 0.01`, `beta = 0.99`.

    ```mlir
    %a1 = moe.adaptive_aux_coeff %a0, %dropped xi = 2.0e-01 alpha_max = 1.0e-02
        beta = 9.9e-01 assignments = 1024 : tensor<f32>, tensor<i64>
    ```
  }];
  let arguments = (ins Moe_FloatScalar:$alpha, Moe_CountScalar:$dropped,
                       F64Attr:$xi, F64Attr:$alpha_max, F64Attr:$beta,
                       ConfinedAttr<I64Attr, [IntPositive]>:$assignments);
  let results = (outs Moe_FloatScalar:$result);
  let assemblyFormat = [{
    $alpha `,` $dropped `xi` `=` $xi `alpha_max` `=` $alpha_max `beta` `=`
    $beta `assignments` `=` $assignments attr-dict `:` type($alpha) `,`
    type($dropped)
  }];
}

def Moe_ExpertLoadOp : Moe_Op<"expert_load"> {
  let summary = "how many of a layer's assignments chose each expert";
  let description = [{
    `result[e]` counts the entries of the gate's `indices` (`[T, k]`) equal
    to `e`, before any capacity drop: the load that DeepSeek-V3's
    auxiliary-loss-free balancing evens out. `result` is `[experts]`.

    ```mlir
    %load = moe.expert_load %i : tensor<512x2xi32> -> tensor<8xi64>
    ```
  }];
  let arguments = (ins Moe_IndexTensor:$indices);
  let results = (outs Moe_CountVector:$result);
  let assemblyFormat = [{
    $indices attr-dict `:` type($indices) `->` type($result)
  }];
}

def Moe_ExpertBiasUpdateOp : Moe_Op<"expert_bias_update",
    [AllTypesMatch<["bias", "result"]>]> {
  let summary = "DeepSeek-V3's auxiliary-loss-free balancing: the bias's step";
  let description = [{
    Moves each expert's selection bias (moe.gate's `bias`, `[experts]`)
    towards an even load: `result[e] = bias[e] + rate * sign(mean - load[e])`
    with `load` the step's moe.expert_load and `mean` its average, so an
    overloaded expert is chosen less often and an underloaded one more
    (Megatron-LM's `--moe-router-bias-update-rate`, DeepSeek-V3's gamma).

    ```mlir
    %b1 = moe.expert_bias_update %b0, %load rate = 1.0e-03 : tensor<8xf32>, tensor<8xi64>
    ```
  }];
  let arguments = (ins Moe_FloatTensor:$bias, Moe_CountVector:$load,
                       F64Attr:$rate);
  let results = (outs Moe_FloatTensor:$result);
  let assemblyFormat = [{
    $bias `,` $load `rate` `=` $rate attr-dict `:` type($bias) `,` type($load)
  }];
}

def Moe_RoutingMetricsOp : Moe_Op<"routing_metrics",
    [AllTypesMatch<["indices", "slots"]>,
     AllTypesMatch<["drop_rate", "max1_max2", "max2_max3"]>]> {
  let summary = "what the Skywork-MoE paper reads off one MoE layer's routing";
  let description = [{
    From the gate's `probs` (`[T, n]`, `n >= 3`), its `indices` (`[T, k]`)
    and the dispatch's `slots` (`[T, k]`, -1 for a dropped assignment):
    - `drop_rate`: dropped assignments / (T * k);
    - `max1_max2`, `max2_max3`: the means over tokens of p(1)/p(2) and
      p(2)/p(3), p(i) the token's i-th largest probability (a denominator
      is at least the smallest normal float);
    - `load` (`[n]`): the tokens each expert received (kept assignments).

    ```mlir
    %d, %r12, %r23, %load = moe.routing_metrics %p, %i, %slots
        : tensor<512x8xf32>, tensor<512x2xi32> -> tensor<f32>, tensor<8xi64>
    ```
  }];
  let arguments = (ins Moe_FloatTensor:$probs, Moe_IndexTensor:$indices,
                       Moe_IndexTensor:$slots);
  let results = (outs Moe_FloatScalar:$drop_rate, Moe_FloatScalar:$max1_max2,
                      Moe_FloatScalar:$max2_max3, Moe_CountVector:$load);
  let assemblyFormat = [{
    $probs `,` $indices `,` $slots attr-dict `:` type($probs) `,`
    type($indices) `->` type($drop_rate) `,` type($load)
  }];
}

def Moe_ExpertSimilarityOp : Moe_Op<"expert_similarity",
    [AllTypesMatch<["gate_proj", "up_proj"]>]> {
  let summary = "average pairwise cosine similarity of a layer's experts";
  let description = [{
    With expert `e`'s parameters `theta_e` the concatenation of
    `gate_proj[e]`, `up_proj[e]` and `down_proj[e]` (shapes as in
    moe.expert_ffn, at least 2 experts), the mean over pairs `e < f` of
    `<theta_e, theta_f> / (|theta_e| |theta_f|)` (a zero vector has
    similarity 0). Skywork-MoE reads it to tell how far upcycled experts
    have diverged.

    ```mlir
    %s = moe.expert_similarity %w1, %w3, %w2
        : tensor<8x352x128xf32>, tensor<8x128x352xf32> -> tensor<f32>
    ```
  }];
  let arguments = (ins Moe_FloatTensor:$gate_proj, Moe_FloatTensor:$up_proj,
                       Moe_FloatTensor:$down_proj);
  let results = (outs Moe_FloatScalar:$result);
  let assemblyFormat = [{
    $gate_proj `,` $up_proj `,` $down_proj attr-dict `:` type($gate_proj) `,`
    type($down_proj) `->` type($result)
  }];
}

#endif // MOE_LOSS_OPS_TD
