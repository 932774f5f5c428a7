//===- Passes.td - moe passes ------------------------------*- tablegen -*-===//
//
// Every pass of the project, one file each under lib/Transforms.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_TRANSFORMS_PASSES_TD
#define MOE_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def ModelStats : Pass<"moe-model-stats", "::mlir::ModuleOp"> {
  let summary = "Report parameter counts of a moe-dialect model";
  let description = [{
    Prints, for the module, the number of MoE layers, experts and top-k, the
    total number of trainable parameters (globals marked `moe.trainable`), the
    parameters held by experts, the parameters active per token (all but the
    experts' share, plus `top_k / experts` of it) and the training-state
    globals. The module is not changed. It counts a whole model: one rank's
    SPMD program (after moe-expert-parallel), which holds its parts of the
    globals, is refused.
  }];
  let dependentDialects = ["::mlir::moe::MoeDialect",
                           "::mlir::ml_program::MLProgramDialect"];
}

def CostModel : Pass<"moe-cost-model", "::mlir::ModuleOp"> {
  let summary = "Report the flops, bytes and collectives of a train step";
  let description = [{
    Prints what the cost model (moe/Analysis/ProgramCost.h) counts in
    `function` (default `@train_step`), one rank's program: per pipeline
    slot (`embed` before the layers, `layer N`, `head` after them) and
    phase (forward, backward, optimizer), the GEMM flops (2 * m * n * k per
    product), attention flops, other flops, the bytes the bandwidth-bound
    ops move, and each collective's payload per rank with its group size;
    then the slot's trainable parameters and the bytes of activations the
    backward reads. moe-estimate prices layouts from the same counts. The
    module is not changed.
  }];
  let options = [
    Option<"functionName", "function", "std::string", "\"train_step\"",
           "Function to report">,
  ];
  let dependentDialects = ["::mlir::moe::MoeDialect"];
}

def Autodiff : Pass<"moe-autodiff", "::mlir::ModuleOp"> {
  let summary = "Differentiate a forward function into a gradient function";
  let description = [{
    Clones `function` (default `@forward`), whose first result is the
    output to differentiate (the loss), into `gradient-function` (default
    `@train_step`), which returns that output followed by the gradient of
    every trainable global (`moe.trainable`), in declaration order, named
    `<global>.grad` by `moe.output`. The backward is built in reverse from
    each op's DifferentiableOpInterface; gradients of values used several
    times add up; integer values (ids, routing indices, slots, counts) are
    not differentiated, so gradients follow the forward's routing choices and
    dropped assignments get none through the expert path. A trainable global
    the output does not depend on gets a zero gradient.

    The output's gradient is 1 for a scalar loss, or, with
    `cotangent-argument`, an extra last argument (a general vector-Jacobian
    product, as gradient checks use). The backward ops of an op with a
    `moe.layer` get the same layer. With `recompute`, each transformer
    layer's forward ops (those with the same `moe.layer`, which the importer
    sets) are recomputed just before that layer's backward instead of
    keeping their activations alive; the gradients are identical.

    In an SPMD program (see moe-expert-parallel), an output that is a sum
    `shard.all_reduce` of the ranks' parts is differentiated through each
    rank's part, and a function with `moe.spmd_grid` gets the gradient of
    each replicated trainable global (one without `moe.sharded`) summed
    over the grid's ranks; a sharded global's gradient is summed over the
    grid's replica axes (its copies' ranks), and stays the rank's on a
    grid without them.
  }];
  let options = [
    Option<"functionName", "function", "std::string", "\"forward\"",
           "Function to differentiate">,
    Option<"gradientFunctionName", "gradient-function", "std::string",
           "\"train_step\"", "Name of the function to create">,
    Option<"recompute", "recompute", "bool", "false",
           "Recompute each layer's forward in the backward pass">,
    Option<"cotangentArgument", "cotangent-argument", "bool", "false",
           "Take the output's gradient as an extra last argument">
  ];
  let dependentDialects = ["::mlir::moe::MoeDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::shard::ShardDialect",
                           "::mlir::tensor::TensorDialect"];
}

def GateNorm : Pass<"moe-gate-norm", "::mlir::ModuleOp"> {
  let summary = "Set the gating logit normalization of every MoE layer";
  let description = [{
    Overrides what the model says about Skywork-MoE's gating logit
    normalization: every moe.gate loses its normalization (a `norm_lambda`
    or a moe.gate_norm feeding it) and, with `lambda` > 0, gets a
    moe.gate_norm with that lambda in front of it (the expanded form, which
    `moe-fuse-router` folds back). `lambda=0` turns normalization off. Run it
    before moe-autodiff. The module's `moe.config` records the lambda
    (`moe_gate_norm_lambda`), so that checkpoints and moe-export's
    config.json say how the model routes.
  }];
  let options = [
    Option<"lambda", "lambda", "double", "1.0",
           "Normalization scale (the paper's lambda); 0 turns it off">,
    Option<"epsilon", "eps", "double", "1e-6",
           "Added to the std of each row of logits">
  ];
  let dependentDialects = ["::mlir::moe::MoeDialect"];
}

def MixedPrecision : Pass<"moe-mixed-precision", "::mlir::ModuleOp"> {
  let summary = "Run every GEMM on bf16 operands with f32 accumulation";
  let description = [{
    Mixed-precision training as in Megatron-Core: every GEMM of the
    differentiated program (moe.linear, moe.attention, moe.expert_ffn and
    their gradient ops, but not the router's) reads bf16 operands and
    accumulates and returns f32. Each f32 activation a GEMM reads is
    narrowed once, by an `arith.truncf` right after it is defined, and every
    GEMM that reads it, forward or backward, shares that bf16 copy: the
    activations kept for the backward are stored in bf16 (the experts'
    projections too). With `weight-copies=per-gemm` (the default) a weight
    (a global load) is narrowed right before each GEMM that reads it, so
    that no bf16 copy of the weights lives through the step; with
    `per-step` it is narrowed once, right before its first GEMM, and every
    later GEMM of the step reads that copy (the forward's and the
    backward's, a recomputed layer's too), which holds 2 bytes a parameter
    until the weight's last GEMM to save the weight's other conversions,
    6 bytes of traffic a parameter each (a store to the weight's global
    ends its copy). With `per-expert` the expert FFNs and their gradients
    read their f32 weights and their kernels round each expert's weights
    as its GEMMs read them (the same bf16 values), so that the experts'
    weights, most of an MoE's parameters, are not copied through memory;
    the other weights are narrowed as with `per-gemm`. The other
    activations the backward keeps (RMSNorm's input, SwiGLU's inputs, the
    experts' outputs) are kept as bf16 copies too, made after their
    definition and widened right before the gradient op that
    reads them; a value that a backward op also reads in f32 (a recomputed
    layer's input) is left alone. All computation other than the GEMMs stays
    f32: the master weights, gradients and Adam moments, norms, attention's
    softmax, residual adds, losses and the router (its GEMM and gradient
    GEMMs, normalization, softmax, top-k, capacity), so routing decisions do
    not flip from rounding.

    Run it after moe-autodiff, which differentiates the f32 program: the
    gradient GEMMs then read bf16 copies of the forward's values and of the
    f32 cotangents, and every gradient a GEMM returns is f32 (a gradient
    rounded to bf16 would lose the small updates AdamW accumulates). An f64
    program is refused: f64 is for gradient checks.
  }];
  let options = [
    Option<"dtype", "dtype", "std::string", "\"bf16\"",
           "The GEMM operands' type (bf16)">,
    Option<"weightCopies", "weight-copies", "std::string", "\"per-gemm\"",
           "bf16 weight copies: per-gemm (one before each GEMM), per-step "
           "(one shared by the step's GEMMs) or per-expert (none for the "
           "experts' weights, which their kernels round; per-gemm for the "
           "others)">
  ];
  let dependentDialects = ["::mlir::arith::ArithDialect"];
}

def FuseRouter : Pass<"moe-fuse-router", "::mlir::ModuleOp"> {
  let summary = "Fold gating logit normalization into the gate";
  let description = [{
    Rewrites each moe.gate whose logits come from a moe.gate_norm into one
    moe.gate with that `norm_lambda` and `norm_eps`, so that normalization,
    softmax and top-k run as one row-wise kernel (and its gradient as one).
    A gate that already normalizes is left alone. Run it before
    moe-autodiff.
  }];
  let dependentDialects = ["::mlir::moe::MoeDialect"];
}

def Upcycle : Pass<"moe-upcycle", "::mlir::ModuleOp"> {
  let summary = "Turn an imported dense model into a MoE model initialized from it";
  let description = [{
    Sparse upcycling (Komatsuzaki et al.): the dense model of the module's
    config (`moe.config`, as moe-import writes it) becomes the MoE model
    with `experts` copies of every layer's FFN and top-`top-k` routing. The
    module is rebuilt by the importer from the MoE config (so an upcycled
    model is exactly the model a MoE config imports to, with the same batch,
    sequence and dtype), which the module then records, and every new
    global gets a `moe.upcycle` rule saying where its initial value comes
    from in a checkpoint of the dense model (moert/Upcycle.h), which moe-run
    and the training binaries execute with `--init-from DENSE`:

    - `experts.w1` / `w3` / `w2` of layer L: copies of the dense
      `mlp.gate_proj` / `up_proj` / `down_proj` weights of layer L, with
      normal noise of std `noise-std` per element when it is not 0;
    - the router (`block_sparse_moe.gate.weight`): fresh, from its normal
      initializer;
    - every other trainable global: the dense tensor of the same name.

    Granular upcycling (`granularity` G > 1, as Megatron-Core's): each copy
    is split along the FFN axis into G experts of F/G (E * G experts, top
    k * G, `w2` scaled by G), and the router's rows are tied within each
    copy's G experts (virtual groups), so that a token picks whole copies.
    With `shared-expert`, each MoE layer also gets Qwen2-MoE's gated
    shared expert (Qwen1.5-MoE, itself upcycled, has one): a copy of the
    dense FFN
    (`mlp.shared_expert.*`), its gate (`mlp.shared_expert_gate.weight`)
    zero, so that sigmoid(0) = 1/2 scales it for every token, and the
    routed experts' `w2` halved: the two halves sum to the dense FFN.
    With `ungated-shared-expert`, DeepSeek's ungated shared experts instead
    (`n_shared_experts` = G, `mlp.shared_experts.*`): a copy of the dense FFN
    with its `down_proj` halved, beside routed experts whose `w2` is halved.
    `scoring = sigmoid` scores the experts by sigmoids (renormalized top-k
    weights, as before, sum to 1) and `expert-bias` adds DeepSeek-V3's
    balancing biases, from 0: with both and the ungated shared experts, a
    Qwen3 becomes transformers' Dots1.
    The upcycled MoE layer computes the dense FFN exactly when no token is
    dropped (dropless, the default), the top-k weights are renormalized,
    the experts are identical (no noise), and, with G > 1, the tied
    experts' probabilities tie in the gate (always in the interpreter; in
    f32 kernels when the router's GEMM rounds equal rows alike) and no
    other copy ties with the k-th.
  }];
  let options = [
    Option<"experts", "experts", "int64_t", "8", "Copies of each dense FFN (E)">,
    Option<"topK", "top-k", "int64_t", "2", "Copies each token is routed to (k)">,
    Option<"granularity", "granularity", "int64_t", "1",
           "Experts per copy, each 1/G of the FFN (G)">,
    Option<"noiseStd", "noise-std", "double", "0.0",
           "Std of the normal noise added to each expert's weights">,
    Option<"sharedExpert", "shared-expert", "bool", "false",
           "Add Qwen2-MoE's gated shared expert, a copy of the dense FFN">,
    Option<"ungatedSharedExpert", "ungated-shared-expert", "bool", "false",
           "Add DeepSeek's ungated shared experts, a copy of the dense FFN">,
    Option<"scoring", "scoring", "std::string", "\"softmax\"",
           "How the router scores the experts: softmax or sigmoid">,
    Option<"expertBias", "expert-bias", "bool", "false",
           "Add DeepSeek-V3's expert-selection biases (from 0)">,
    Option<"capacityFactor", "capacity-factor", "double", "0.0",
           "Expert capacity factor; 0 means dropless">,
    Option<"auxLossCoeff", "aux-loss-coeff", "double", "0.01",
           "The MoE config's aux-loss coefficient">,
    Option<"zLossCoeff", "z-loss-coeff", "double", "0.0",
           "The MoE config's router z-loss coefficient (a dense config's "
           "is dropped: it has no router)">
  ];
  let dependentDialects = ["::mlir::moe::MoeDialect",
                           "::mlir::ml_program::MLProgramDialect",
                           "::mlir::func::FuncDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::tensor::TensorDialect"];
}

def ExpertParallel : Pass<"moe-expert-parallel", "::mlir::ModuleOp"> {
  let summary = "Partition a model's experts and batch over ranks (SPMD)";
  let description = [{
    Turns every function of an imported model (before moe-autodiff) into
    the program of one rank of a group of `ranks` processes (P), the
    `shard.grid @ranks`, with upstream shard collectives. `expert-ranks`
    (Q, by default P) ranks share each layer's experts: the grid is `[P]`
    when Q = P, else `[P/Q, Q]`, consecutive ranks sharing the experts and
    its first axis holding P/Q replicas of them (Megatron-LM's expert data
    parallelism; Q = 1 is plain data parallelism):

    - Each rank holds E/Q experts of every MoE layer: the expert globals get
      their local shape `[E/Q, ...]` and `moe.sharded = 0`. Everything else
      is replicated.
    - Each rank gets its part of the batch: arguments and activations have
      `batch / P` sequences.
    - Routing does not depend on the layout: the gate's input is
      all-gathered and the gate evaluated on the whole batch on every rank,
      so that `moe.route` makes the capacity and drop decisions of the whole
      batch in global token order, exactly those of one process. An
      expert's queue keeps token order, so each rank's kept tokens form one
      run of the queue: the route gives every rank each run's length
      (`counts`, `[P, E]`) and each token's row within its run.
    - Tokens travel with a pair of `shard.all_to_all`s per MoE layer over
      the expert axis (none when Q = 1, where every rank holds every
      expert): each rank places its tokens in its runs (`moe.place`,
      `[E, R, H]` with R = min(capacity, local tokens)), block q of which
      goes to rank q of the ranks that share the experts;
      `moe.merge_runs` joins the runs received into the queues of the
      rank's experts (`[E/Q, C, H]`): the rows moe.dispatch would have
      filled, of the tokens of those Q ranks. After the experts,
      `moe.split_runs` and the second all-to-all
      take the rows back to their tokens' ranks, where moe.combine reads
      them. The backward runs the same the other way round.
    - The aux and z-losses and the routing metrics are computed from the
      whole batch's gate outputs, so every rank reports the values of one
      process, drop counts included.
    - A cross-entropy over counted targets (ignore index) divides by the
      whole batch's count: its divisor, a moe.count_targets of the rank's
      targets, is all-reduced.
    - The loss function (`loss-function`) returns the sum all-reduce of
      each rank's part (its loss divided by P); moe-autodiff differentiates
      the parts and all-reduces the gradients of replicated parameters over
      the grid, and those of the experts over its replica axis (functions
      get `moe.spmd_grid = @ranks`).
    - `@expert_similarity` all-gathers the expert weights.

    The batch must divide by `ranks`, `expert-ranks` must divide `ranks`,
    and every layer's experts by `expert-ranks`. With
    `report`, the pass prints, per training step and rank, how many bytes
    each kind of collective of the loss function's forward puts in (its
    input) and receives (its result), and the bytes of the replicated
    gradients that the backward all-reduces; the backward's other
    collectives carry what the forward's do, in reverse.
  }];
  let options = [
    Option<"ranks", "ranks", "int64_t", "2", "Ranks of the group (P)">,
    Option<"expertRanks", "expert-ranks", "int64_t", "0",
           "Ranks that share each layer's experts (Q, dividing P; 0: P)">,
    Option<"lossFunction", "loss-function", "std::string", "\"forward\"",
           "Function whose first result is the training loss">,
    Option<"report", "report", "bool", "false",
           "Print what the collectives of a training step carry">
  ];
  let dependentDialects = ["::mlir::moe::MoeDialect",
                           "::mlir::ml_program::MLProgramDialect",
                           "::mlir::shard::ShardDialect",
                           "::mlir::arith::ArithDialect"];
}

def AdaptiveAux : Pass<"moe-adaptive-aux", "::mlir::ModuleOp"> {
  let summary = "Skywork-MoE adaptive auxiliary-loss coefficients";
  let description = [{
    Makes each MoE layer's aux-loss coefficient (the non-trainable global
    that scales its moe.aux_loss) follow the layer's token drop rate: after
    every step, `alpha_hat = min(xi * d, alpha-max)` and
    `alpha = beta * alpha + (1 - beta) * alpha_hat`, with `d` the drop rate
    of that step's dispatch (moe.adaptive_aux_coeff, stored with
    ml_program.global_store). The coefficients start at `initial-alpha`
    (negative: keep the model's initial coefficient) and are training state:
    checkpoints carry them. Runs on `function` (default `@train_step`, after
    moe-autodiff). Without this pass the coefficients stay fixed.
  }];
  let options = [
    Option<"functionName", "function", "std::string", "\"train_step\"",
           "Train step to extend">,
    Option<"xi", "xi", "double", "0.2", "Drop-rate sensitivity">,
    Option<"alphaMax", "alpha-max", "double", "0.01",
           "Largest target coefficient">,
    Option<"beta", "beta", "double", "0.99", "Moving-average factor">,
    Option<"initialAlpha", "initial-alpha", "double", "-1.0",
           "Initial coefficient (negative: the model's)">
  ];
  let dependentDialects = ["::mlir::moe::MoeDialect",
                           "::mlir::ml_program::MLProgramDialect"];
}

def ExpertBias : Pass<"moe-expert-bias", "::mlir::ModuleOp"> {
  let summary = "DeepSeek-V3's auxiliary-loss-free balancing: bias updates";
  let description = [{
    Moves each MoE layer's expert-selection bias (the non-trainable global
    that a moe.gate takes as `bias`, which the importer declares for
    `moe_router_enable_expert_bias`) after every step: the step counts
    how many of the layer's assignments chose each expert before any
    capacity drop (moe.expert_load, over the whole batch, also in an
    expert-parallel program) and adds `rate * sign(mean - load)` to each
    expert's bias (moe.expert_bias_update, stored with
    ml_program.global_store), so that an overloaded expert is chosen less
    often. The bias only chooses experts and gets no gradient; it is
    training state, which checkpoints carry. With moe-accumulate-gradients
    the loads of a step's micro-batches are summed. Runs on `function`
    (default `@train_step`, after moe-autodiff); a model without biased
    gates is left as it is, and `rate = 0` keeps the biases fixed.
  }];
  let options = [
    Option<"functionName", "function", "std::string", "\"train_step\"",
           "Train step to extend">,
    Option<"rate", "rate", "double", "1.0e-3",
           "Bias step per update (DeepSeek-V3's gamma)">
  ];
  let dependentDialects = ["::mlir::moe::MoeDialect",
                           "::mlir::ml_program::MLProgramDialect"];
}

def Optimizer : Pass<"moe-optimizer", "::mlir::ModuleOp"> {
  let summary = "Apply AdamW to the gradients of a train step";
  let description = [{
    Turns `function` (default `@train_step`, as moe-autodiff makes it:
    output 0 the loss, then `<global>.grad` results) into a full training
    step. It adds the training state: `optimizer.step` (i64, from 0) and,
    for each parameter, `<name>.exp_avg` and `<name>.exp_avg_sq` (zeros).
    The step computes the learning rate (linear warmup, then `lr-decay`:
    cosine decay to `min-lr`, nanoGPT's schedule, linear decay, or the
    constant peak rate), the global gradient norm, and for each
    parameter one `moe.adamw` update (clipping to `max-grad-norm`, decoupled
    weight decay, bias correction), stores the new parameters, moments and
    step, and returns the loss, the gradient norm and the learning rate.
    Weight decay applies to parameters of rank >= 2 (not norms or biases)
    whose names contain none of the `no-decay` substrings.

    In an SPMD program (`moe.spmd_grid`), a sharded parameter's moments are
    sharded like it, and the gradient norm counts each replicated gradient
    once and the parts of the sharded ones of the ranks that share the
    experts (their norms are all-gathered over the grid's expert axis).
  }];
  let options = [
    Option<"functionName", "function", "std::string", "\"train_step\"",
           "Train step to complete">,
    Option<"maxLr", "lr", "double", "1e-3", "Peak learning rate (default 1e-3)">,
    Option<"minLr", "min-lr", "double", "1e-4", "Learning rate after decay (default 1e-4)">,
    Option<"warmupSteps", "warmup-steps", "int64_t", "100",
           "Steps of linear warmup (default 100)">,
    Option<"decaySteps", "decay-steps", "int64_t", "2000",
           "Step at which the decay reaches min-lr (default 2000)">,
    Option<"lrDecay", "lr-decay", "std::string", "\"cosine\"",
           "Decay after warmup: cosine (default), linear or constant (max lr)">,
    Option<"beta1", "beta1", "double", "0.9", "AdamW beta1 (default 0.9)">,
    Option<"beta2", "beta2", "double", "0.95", "AdamW beta2 (default 0.95)">,
    Option<"epsilon", "eps", "double", "1e-8", "AdamW epsilon (default 1e-8)">,
    Option<"weightDecay", "weight-decay", "double", "0.1",
           "Decoupled weight decay (default 0.1)">,
    Option<"maxGradNorm", "max-grad-norm", "double", "1.0",
           "Global gradient-norm clipping threshold (0: off; default 1.0)">,
    ListOption<"noDecay", "no-decay", "std::string",
               "Name substrings of parameters that get no weight decay">
  ];
  let dependentDialects = ["::mlir::moe::MoeDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::ml_program::MLProgramDialect",
                           "::mlir::shard::ShardDialect",
                           "::mlir::tensor::TensorDialect"];
}

def AccumulateGradients : Pass<"moe-accumulate-gradients",
                               "::mlir::ModuleOp"> {
  let summary = "Split an optimizer step over micro-batches (gradient "
                "accumulation)";
  let description = [{
    Megatron-LM's gradient accumulation: one optimizer step over
    `micro-batches` batches, whose activations are live one batch at a time.
    Runs on a complete train step (`function`, after moe-optimizer) and adds
    `@train_micro_step`, its forward and backward without any state update:
    it adds each gradient to an accumulator (a global
    `<parameter>.grad_accum`). A host calls it on micro-batches 1 to N-1,
    then the train step on micro-batch N, which adds its own gradients,
    divides the sums by N, updates the parameters from them and zeroes
    them. In an SPMD program a gradient that autodiff sums over ranks (a
    replicated parameter's, or an expert's over its replicas) accumulates
    the rank's part, summed over those ranks once a step. An adaptive aux-loss
    coefficient (moe-adaptive-aux) follows the drops of all N micro-batches
    (`<coefficient>.dropped_accum`), an expert bias (moe-expert-bias) their
    loads (`<bias>.load_accum`). Accumulators are `moe.transient`: zero
    between steps, not checkpointed. The module gets `moe.micro_batches`.
    The step's loss and metrics are a micro-batch's; a host reports their
    mean over the step. 1 leaves the module as it is.
  }];
  let options = [
    Option<"functionName", "function", "std::string", "\"train_step\"",
           "Train step to split">,
    Option<"microBatches", "micro-batches", "int64_t", "1",
           "Batches per optimizer step">
  ];
  let dependentDialects = ["::mlir::moe::MoeDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::ml_program::MLProgramDialect"];
}

def DistributedOptimizer : Pass<"moe-distributed-optimizer",
                                "::mlir::ModuleOp"> {
  let summary = "Split the Adam state over the copies of each parameter "
                "(ZeRO-1)";
  let description = [{
    Megatron-LM's distributed optimizer on a complete SPMD train step
    (`function`, after moe-optimizer and moe-accumulate-gradients): the R
    ranks that hold copies of a parameter (every rank for a replicated
    one, the replicas of an expert's rank under expert data parallelism)
    each keep 1/R of its Adam moments, as a flat 1-D part marked
    `moe.optimizer_part`. The gradient's sum over the copies
    (`shard.all_reduce`) becomes a `shard.reduce_scatter` of the flattened
    gradient, the update runs on the rank's part of the parameter
    (`shard.all_slice`), and a `shard.all_gather` makes every copy whole
    again: a reduce-scatter and an all-gather carry what a ring all-reduce
    does, and (R-1)/R of the moments' memory is saved. The gradient norm
    becomes the norm of the ranks' norms (each holds a part of every
    gradient).
    A parameter whose N elements on a rank R does not divide is padded with
    zeros to R parts of ceil(N / R) (Megatron-LM pads alike), which costs a
    copy of it and of its gradient a step. Checkpoints
    hold the moments whole and shaped like their parameters, so any layout
    resumes them.
  }];
  let options = [
    Option<"functionName", "function", "std::string", "\"train_step\"",
           "Train step to distribute">
  ];
  let dependentDialects = ["::mlir::moe::MoeDialect",
                           "::mlir::shard::ShardDialect",
                           "::mlir::tensor::TensorDialect"];
}

def NarrowResults : Pass<"moe-narrow-results", "::mlir::ModuleOp"> {
  let summary = "Fold bf16 conversions into the ops that compute their input";
  let description = [{
    A mixed-precision program narrows f32 activations to bf16 right after
    they are computed (`arith.truncf`). Where the conversion is the only
    reader of an f32 result and the op implements
    NarrowableResultOpInterface for that result (an op that computes it in
    f32, a GEMM over bf16 operands among them), the op's result becomes
    bf16 and the conversion goes: its kernel rounds as it stores (to
    nearest even, as `arith.truncf` does), so the values are those of the
    f32 result rounded, and the f32 result's write and the conversion's
    pass over it are gone.
    Runs for code generation, after differentiation and moe-mixed-precision.
  }];
  let dependentDialects = ["::mlir::moe::MoeDialect",
                           "::mlir::arith::ArithDialect"];
}

def WidenOperands : Pass<"moe-widen-operands", "::mlir::ModuleOp"> {
  let summary = "Fold bf16 -> f32 conversions into the ops that read them";
  let description = [{
    A mixed-precision program keeps some activations for the backward as
    bf16 and widens each right before the op that reads it (`arith.extf`).
    Where that op implements WidenableOperandOpInterface for the operand,
    it reads the bf16 value itself, widening each element as it loads it
    (exactly, as `arith.extf` does), so the values are the same and the
    conversion's pass over memory and its f32 copy are gone. A conversion
    that other ops still read stays for them. Runs for code generation,
    after differentiation and moe-mixed-precision.
  }];
  let dependentDialects = ["::mlir::moe::MoeDialect",
                           "::mlir::arith::ArithDialect"];
}

def FuseElementwise : Pass<"moe-fuse-elementwise", "::mlir::ModuleOp"> {
  let summary = "Fuse chains of elementwise ops into single loops";
  let description = [{
    Groups each chain of `moe.add`, `moe.mul` and `moe.swiglu` whose
    intermediate results have a single use by the next op of the chain (same
    type, same block) into one `moe.fused_elementwise`, whose body computes
    an element of the chain's result from the elements of its inputs. The
    chain then reads its inputs and writes its result once, and its
    intermediates need no memory. Runs after differentiation, for code
    generation. With `fuse-swiglu=false`, a `moe.swiglu` stays its own
    kernel (the CPU target's vectorized one) and ends the chain before it.
  }];
  let options = [
    Option<"fuseSwiglu", "fuse-swiglu", "bool", "true",
           "Compute moe.swiglu inside fused loops">
  ];
  let dependentDialects = ["::mlir::moe::MoeDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::math::MathDialect"];
}

def AttachTarget : Pass<"moe-attach-target", "::mlir::ModuleOp"> {
  let summary = "Attach the code-generation target to the module";
  let description = [{
    Sets the module's `moe.target` to `#moe.target<"NAME", alignment = A>`:
    the target's facts (the buffer alignment its kernels need) that
    moe-plan-memory and the target's emitter read, so that the plan and
    the code agree. `alignment=0` takes the target's own. Like upstream's
    `nvvm-attach-target`, it is the first step of a target's code-generation
    pipeline.
  }];
  let options = [
    Option<"targetName", "target", "std::string", "\"cpu\"",
           "Target name (cpu, cuda)">,
    Option<"alignment", "alignment", "int64_t", "0",
           "Buffer alignment in bytes (0: the target's)">
  ];
  let dependentDialects = ["::mlir::moe::MoeDialect"];
}

def PlanMemory : Pass<"moe-plan-memory", "::mlir::ModuleOp"> {
  let summary = "Static, liveness-based arena plan for every function";
  let description = [{
    Gives every tensor value of each function a place: function arguments
    are inputs, `ml_program.global_load` results live in the global's state
    storage, views (`ViewLikeOpInterface`: reshapes) alias their source,
    dense constants are static data, and every other result gets an offset
    in one arena, aligned as the module's `#moe.target` says (the CPU
    target's when it has none; the pass records it as `moe.target`), chosen
    first-fit over the blocks freed by values whose last use (through
    aliases) has passed. An op that may update its operands in place
    (`InPlaceOpInterface`: AdamW, the step counter's increment) whose every
    result is only stored back to the global its tied operand was loaded
    from writes those globals' storage in place, when no load of them is
    used later.

    The plan is recorded as attributes the emitters read:
    `moe.arena_offsets` (one offset per result, -1 where the result has no
    arena buffer) on each op, `moe.in_place` on an op that writes a global
    in place, and `moe.arena_bytes` on each function. The pass prints, per
    function, the peak arena bytes split into activations and gradients
    (values in the backward: results of backward ops, those with the
    `Backward` trait, and of what consumes them other than the optimizer's
    ops, those with the `OptimizerStep` trait), and the bytes of parameters (trainable globals) and of training
    state (the other globals, e.g. Adam moments).
  }];
  let options = [
    Option<"report", "report", "bool", "true",
           "Print the memory report to stdout">
  ];
  let dependentDialects = ["::mlir::moe::MoeDialect",
                           "::mlir::ml_program::MLProgramDialect"];
}

#endif // MOE_TRANSFORMS_PASSES_TD
