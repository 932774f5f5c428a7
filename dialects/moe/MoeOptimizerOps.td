//===- MoeOptimizerOps.td - optimizer ops of the moe dialect -*- tablegen -*-===//
//
// The ops moe-optimizer builds: the learning-rate schedule, the global
// gradient norm and the AdamW update. Included from MoeOps.td.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_OPTIMIZER_OPS_TD
#define MOE_OPTIMIZER_OPS_TD

/// An op of the optimizer's update: it carries the OptimizerStep trait.
class Moe_OptimizerOp<string mnemonic, list<Trait> traits = []>
    : Moe_Op<mnemonic, !listconcat([Moe_OptimizerStep], traits)>;

def Moe_LrScheduleOp : Moe_OptimizerOp<"lr_schedule"> {
  let summary = "linear warmup, then a decay to a minimum learning rate";
  let description = [{
    For the 0-based optimizer `step` (nanoGPT's schedule with the default
    `cosine` decay; Megatron-LM's `--lr-decay-style` with the others):
    - `step < warmup_steps`: `max_lr * (step + 1) / (warmup_steps + 1)`;
    - `decay = constant`: `max_lr` from then on;
    - `step > decay_steps`: `min_lr`;
    - otherwise, with `r = (step - warmup_steps) / (decay_steps - warmup_steps)`:
      `min_lr + 0.5 * (1 + cos(pi * r)) * (max_lr - min_lr)` (`cosine`) or
      `min_lr + (1 - r) * (max_lr - min_lr)` (`linear`).

    `decay_steps` must exceed `warmup_steps`, but for a `constant` rate.

    ```mlir
    %lr = moe.lr_schedule %step max_lr = 1.0e-03 min_lr = 1.0e-04 warmup_steps = 100
        decay_steps = 2000 : tensor<i64> -> tensor<f32>
    %lr2 = moe.lr_schedule %step decay = linear max_lr = 1.0e-03 min_lr = 1.0e-04
        warmup_steps = 100 decay_steps = 2000 : tensor<i64> -> tensor<f32>
    ```
  }];
  let arguments = (ins Moe_CountScalar:$step,
                       DefaultValuedAttr<Moe_LrDecay,
                                         "::mlir::moe::LrDecay::cosine">:$decay,
                       F64Attr:$max_lr, F64Attr:$min_lr,
                       I64Attr:$warmup_steps, I64Attr:$decay_steps);
  let results = (outs Moe_FloatScalar:$lr);
  let assemblyFormat = [{
    $step (`decay` `=` $decay^)? `max_lr` `=` $max_lr `min_lr` `=` $min_lr
    `warmup_steps` `=` $warmup_steps `decay_steps` `=` $decay_steps attr-dict
    `:` type($step) `->` type($lr)
  }];
}

def Moe_GlobalNormOp : Moe_OptimizerOp<"global_norm"> {
  let summary = "the L2 norm of all given tensors taken together";
  let description = [{
    `sqrt(sum over tensors and elements of x^2)`: the norm that gradient
    clipping compares with its threshold.
  }];
  let arguments = (ins Variadic<Moe_FloatTensor>:$tensors);
  let results = (outs Moe_FloatScalar:$norm);
  let assemblyFormat = [{
    $tensors attr-dict `:` type($tensors) `->` type($norm)
  }];
}

def Moe_AdamWOp : Moe_OptimizerOp<"adamw",
    [AllTypesMatch<["param", "grad", "exp_avg", "exp_avg_sq", "new_param",
                    "new_exp_avg", "new_exp_avg_sq"]>,
     AllTypesMatch<["lr", "grad_norm"]>,
     DeclareOpInterfaceMethods<Moe_InPlaceOpInterface>]> {
  let summary = "one AdamW step with decoupled weight decay, bias correction and clipping";
  let description = [{
    With `t = step + 1` and the clipping factor
    `c = min(1, max_grad_norm / (grad_norm + 1e-6))` (1 when `max_grad_norm`
    is 0), as PyTorch's `clip_grad_norm_` and `AdamW`:
    ```
    g  = c * grad
    p  = param * (1 - lr * weight_decay)
    m  = beta1 * exp_avg + (1 - beta1) * g
    v  = beta2 * exp_avg_sq + (1 - beta2) * g^2
    new_param = p - lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
    ```

    ```mlir
    %p1, %m1, %v1 = moe.adamw %p, %g, %m, %v, %lr, %norm, %step beta1 = 0.9
        beta2 = 0.95 eps = 1.0e-08 weight_decay = 0.1 max_grad_norm = 1.0
        : tensor<128x128xf32>, tensor<f32>, tensor<i64>
    ```
  }];
  let arguments = (ins Moe_FloatTensor:$param, Moe_FloatTensor:$grad,
                       Moe_FloatTensor:$exp_avg, Moe_FloatTensor:$exp_avg_sq,
                       Moe_FloatScalar:$lr, Moe_FloatScalar:$grad_norm,
                       Moe_CountScalar:$step, F64Attr:$beta1, F64Attr:$beta2,
                       F64Attr:$eps, F64Attr:$weight_decay,
                       F64Attr:$max_grad_norm);
  let results = (outs Moe_FloatTensor:$new_param, Moe_FloatTensor:$new_exp_avg,
                      Moe_FloatTensor:$new_exp_avg_sq);
  let assemblyFormat = [{
    $param `,` $grad `,` $exp_avg `,` $exp_avg_sq `,` $lr `,` $grad_norm `,`
    $step `beta1` `=` $beta1 `beta2` `=` $beta2 `eps` `=` $eps `weight_decay`
    `=` $weight_decay `max_grad_norm` `=` $max_grad_norm attr-dict `:`
    type($param) `,` type($lr) `,` type($step)
  }];
}

#endif // MOE_OPTIMIZER_OPS_TD
