// RUN: moe-opt %s -split-input-file -verify-diagnostics

// The dialect's discardable attributes (MoeDialect.cpp) and #moe.init.

// moe.init must hold a #moe.init.
// expected-error @+1 {{'moe.init' must be a #moe.init on an ml_program.global}}
ml_program.global private mutable @w : tensor<4xf32> {moe.init = 2.0e-02 : f64, moe.trainable}

// -----

// moe.init belongs on an ml_program.global.
// expected-error @+1 {{'moe.init' must be a #moe.init on an ml_program.global}}
func.func private @f() attributes {moe.init = #moe.init<normal, 2.0e-02>}

// -----

// moe.trainable is a unit attribute.
// expected-error @+1 {{'moe.trainable' must be a unit attribute on an ml_program.global}}
ml_program.global private mutable @w : tensor<4xf32> {moe.init = #moe.init<normal, 2.0e-02>, moe.trainable = true}

// -----

// moe.trainable belongs on an ml_program.global.
// expected-error @+1 {{'moe.trainable' must be a unit attribute on an ml_program.global}}
func.func private @f() attributes {moe.trainable}

// -----

// Unknown moe.* attribute on an op.
// expected-error @+1 {{unknown moe dialect attribute 'moe.param'}}
ml_program.global private mutable @w : tensor<4xf32> {moe.init = #moe.init<normal, 2.0e-02>, moe.param}

// -----

// moe.input is an argument attribute, not an op attribute.
// expected-error @+1 {{unknown moe dialect attribute 'moe.input'}}
func.func private @f(tensor<4xi32>) attributes {moe.input = "input_ids"}

// -----

// moe.input must be a string.
// expected-error @+1 {{'moe.input' must be a string}}
func.func private @f(tensor<4xi32> {moe.input = 0 : i64})

// -----

// Unknown moe.* argument attribute.
// expected-error @+1 {{unknown moe dialect attribute 'moe.output' (expected 'moe.input')}}
func.func private @f(tensor<4xi32> {moe.output = "loss"})

// -----

// moe.output must be a string.
// expected-error @+1 {{'moe.output' must be a string}}
func.func private @f() -> (tensor<f32> {moe.output = unit})

// -----

// Unknown moe.* result attribute.
// expected-error @+1 {{unknown moe dialect attribute 'moe.input' (expected 'moe.output')}}
func.func private @f() -> (tensor<f32> {moe.input = "loss"})

// -----

// #moe.init<normal, std>: the std cannot be negative.
// expected-error @+1 {{#moe.init<normal> std must be >= 0, got -1.000000e+00}}
ml_program.global private mutable @w : tensor<4xf32> {moe.init = #moe.init<normal, -1.0>, moe.trainable}

// -----

// #moe.init: the value must be finite (+inf written as hex).
// expected-error @+1 {{#moe.init value must be finite, got INF}}
ml_program.global private mutable @w : tensor<4xf32> {moe.init = #moe.init<constant, 0x7FF0000000000000>}

// -----

// #moe.init: the value must be one the global's type holds.
// expected-error @+1 {{'moe.init' value 1.000000e+39 is beyond the range of 'tensor<4xf32>'}}
ml_program.global private mutable @w : tensor<4xf32> {moe.init = #moe.init<constant, 1.0e+39>}

// -----

// #moe.init: the value must be finite (NaN written as hex).
// expected-error @+1 {{#moe.init value must be finite, got nan}}
ml_program.global private mutable @w : tensor<4xf32> {moe.init = #moe.init<normal, 0x7FF8000000000000>}

// -----

// #moe.init (syntax): unknown initializer kind.
// expected-error @+2 {{expected ::mlir::moe::InitKind to be one of: normal, constant}}
// expected-error @+1 {{failed to parse Moe_InitAttr parameter 'kind'}}
ml_program.global private mutable @w : tensor<4xf32> {moe.init = #moe.init<uniform, 1.0>}

// -----

// moe.input names bind arguments, so each may appear once.
// expected-error @+1 {{arguments #0 and #1 share the moe.input name "input_ids"}}
func.func @duplicate_input_names(%a: tensor<2xi32> {moe.input = "input_ids"}, %b: tensor<2xi32> {moe.input = "input_ids"}) {
  return
}

// -----

// A parameter gets gradients and moments of its type: a float one.
// expected-error @+1 {{'moe.trainable' needs a tensor of f32 or f64, not 'tensor<4xi32>'}}
ml_program.global private mutable @counts : tensor<4xi32> {moe.init = #moe.init<constant, 1.0>, moe.trainable}

// -----

// So do moe.output names: a second "loss" was reported as the loss.
// expected-error @+1 {{results #0 and #1 share the moe.output name "loss"}}
func.func @duplicate_output_names(%a: tensor<f32>) -> (tensor<f32> {moe.output = "loss"}, tensor<f32> {moe.output = "loss"}) {
  return %a, %a : tensor<f32>, tensor<f32>
}

// -----

// moe.layer is a layer index.
func.func @negative_layer(%a: tensor<2xf32>) -> tensor<2xf32> {
  // expected-error @+1 {{'moe.layer' must be an i64 layer index in [0, 4096)}}
  %0 = moe.add %a, %a {moe.layer = -1 : i64} : tensor<2xf32>
  return %0 : tensor<2xf32>
}

// -----

// Analyses size per-layer tables by the largest index (a 2^31 index made
// moe-cost-model run out of memory).
func.func @layer_too_large(%a: tensor<2xf32>) -> tensor<2xf32> {
  // expected-error @+1 {{'moe.layer' must be an i64 layer index in [0, 4096)}}
  %0 = moe.add %a, %a {moe.layer = 4096 : i64} : tensor<2xf32>
  return %0 : tensor<2xf32>
}

// -----

func.func @layer_not_integer(%a: tensor<2xf32>) -> tensor<2xf32> {
  // expected-error @+1 {{'moe.layer' must be an i64 layer index in [0, 4096)}}
  %0 = moe.add %a, %a {moe.layer = "3"} : tensor<2xf32>
  return %0 : tensor<2xf32>
}

// -----

// moe.target belongs on a module.
// expected-error @+1 {{'moe.target' must be a #moe.target on a module}}
func.func private @f() attributes {moe.target = #moe.target<"cpu", alignment = 64>}

// -----

// #moe.target: only known targets.
// expected-error @+1 {{unknown target 'tpu' (known: cpu, cuda)}}
module attributes {moe.target = #moe.target<"tpu", alignment = 64>} {}

// -----

// #moe.target: the kernels need at least the target's alignment.
// expected-error @+1 {{target 'cpu' needs an alignment that is a power of two and at least 64, got 32}}
module attributes {moe.target = #moe.target<"cpu", alignment = 32>} {}

// -----

// expected-error @+1 {{target 'cpu' needs an alignment that is a power of two and at least 64, got 96}}
module attributes {moe.target = #moe.target<"cpu", alignment = 96>} {}

// -----

// Past a huge page, alignments would only overflow the memory plan.
// expected-error @+1 {{target 'cpu' alignment 2305843009213693952 exceeds 2097152 bytes (2 MiB, a huge page)}}
module attributes {moe.target = #moe.target<"cpu", alignment = 2305843009213693952>} {}

// -----

// moe.training maps pass names to their options, as strings.
// expected-error @+1 {{'moe.training' must be a dictionary of strings on a module}}
module attributes {moe.training = {"moe-optimizer" = 3 : i64}} {}

// -----

// moe.training belongs on a module.
// expected-error @+1 {{'moe.training' must be a dictionary of strings on a module}}
func.func private @f() attributes {moe.training = {"moe-optimizer" = "lr=1.0"}}

// -----

// moe.in_place (set by moe-plan-memory) needs each result stored, by its
// only use, to the global its in-place operand was loaded from: the emitted
// code writes the result straight into that global's storage.
ml_program.global private mutable @step(dense<0> : tensor<i64>) : tensor<i64>
func.func @unstored() {
  %0 = ml_program.global_load @step : tensor<i64>
  %one = arith.constant dense<1> : tensor<i64>
  // expected-error @+1 {{'moe.in_place' needs an in-place op each of whose results has one use, storing it to the global its in-place operand was loaded from}}
  %1 = arith.addi %0, %one {moe.in_place} : tensor<i64>
  return
}

// -----

ml_program.global private mutable @step(dense<0> : tensor<i64>) : tensor<i64>
ml_program.global private mutable @other(dense<0> : tensor<i64>) : tensor<i64>
func.func @storedElsewhere() {
  %0 = ml_program.global_load @step : tensor<i64>
  %one = arith.constant dense<1> : tensor<i64>
  // expected-error @+1 {{'moe.in_place' needs an in-place op}}
  %1 = arith.addi %0, %one {moe.in_place} : tensor<i64>
  ml_program.global_store @other = %1 : tensor<i64>
  return
}

// -----

// A constant cannot update anything in place.
func.func @notInPlace() -> tensor<i64> {
  // expected-error @+1 {{'moe.in_place' needs an in-place op}}
  %0 = arith.constant {moe.in_place} dense<1> : tensor<i64>
  return %0 : tensor<i64>
}

// -----

// An op missing the operand its interface names is refused, not read past
// its operands (the attribute is verified before the op itself).
ml_program.global private mutable @step(dense<0> : tensor<i64>) : tensor<i64>
func.func @noOperands() {
  // expected-error @+1 {{'moe.in_place' needs an in-place op}}
  %0 = "arith.addi"() {moe.in_place} : () -> tensor<i64>
  ml_program.global_store @step = %0 : tensor<i64>
  return
}

// -----

// moe.config: the config.json that passes, binaries and checkpoints read.
// expected-error @+1 {{'moe.config' must be a config.json text (a JSON object)}}
module attributes {moe.config = "[1, 2]"} {}

// -----

// expected-error @+1 {{'moe.config':1:21: invalid JSON: syntax error while parsing object key - unexpected end of input}}
module attributes {moe.config = "{\"hidden_size\": 128,"} {}

// -----

// JSON's parser would stop at a NUL byte and keep one of two equal keys.
// expected-error @+1 {{'moe.config':1:21: invalid JSON: a NUL byte}}
module attributes {moe.config = "{\"hidden_size\": 128}\00garbage"} {}

// -----

// expected-error @+1 {{'moe.config': 'vocab_size' appears twice}}
module attributes {moe.config = "{\"vocab_size\": 256, \"vocab_size\": 999}"} {}

// -----

// Printing or comparing JSON recurses: deep nesting is refused.
// expected-error @+1 {{'moe.config': JSON nests deeper than 64 levels}}
module attributes {moe.config = "{\"vocab_size\": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}"} {}

// -----

// moe.optimizer_part: the distributed optimizer's flat part of a
// parameter's state.
// expected-error @+1 {{'moe.optimizer_part' must be a parameter's symbol on a 1-D tensor ml_program.global}}
ml_program.global private mutable @w.exp_avg(dense<0.0> : tensor<2x2xf32>) : tensor<2x2xf32> {moe.optimizer_part = @w}

// -----

// expected-error @+1 {{'moe.optimizer_part' must be a parameter's symbol on a 1-D tensor ml_program.global}}
ml_program.global private mutable @w.exp_avg(dense<0.0> : tensor<2xf32>) : tensor<2xf32> {moe.optimizer_part = "w"}

// -----

// A part must be one of equal parts of its parameter padded with zeros (2
// parts of 3 elements, 3 of 2, 6 of 1: no count of parts makes 4), in its
// element type, sharded like it.
ml_program.global private mutable @w(dense<0.0> : tensor<2x3xf32>) : tensor<2x3xf32> {moe.trainable}
// expected-error @+1 {{'moe.optimizer_part': 'tensor<4xf32>' is no equal part of @w's 'tensor<2x3xf32>' (padded with zeros to a multiple of the parts), sharded like it, of the same element type}}
ml_program.global private mutable @w.exp_avg(dense<0.0> : tensor<4xf32>) : tensor<4xf32> {moe.optimizer_part = @w}

// -----

ml_program.global private mutable @w(dense<0.0> : tensor<2x4xf32>) : tensor<2x4xf32> {moe.sharded = 0 : i64, moe.trainable}
// expected-error @+1 {{is no equal part of @w's}}
ml_program.global private mutable @w.exp_avg(dense<0.0> : tensor<4xf32>) : tensor<4xf32> {moe.optimizer_part = @w}

// -----

// A parameter whose element count wraps int64 is no parameter to divide.
ml_program.global private mutable @w : tensor<4611686018427387904x4xf32> {moe.trainable}
// expected-error @+1 {{'moe.optimizer_part': 'tensor<4xf32>' or @w's 'tensor<4611686018427387904x4xf32>' has more elements than an int64 holds}}
ml_program.global private mutable @w.exp_avg(dense<0.0> : tensor<4xf32>) : tensor<4xf32> {moe.optimizer_part = @w}

// -----

// A part of a parameter the module lacks.
// expected-error @+1 {{'moe.optimizer_part': no parameter global @w}}
ml_program.global private mutable @w.exp_avg(dense<0.0> : tensor<4xf32>) : tensor<4xf32> {moe.optimizer_part = @w}

// -----

// Transient globals are not saved: a parameter never is one.
// expected-error @+1 {{'moe.transient' on a 'moe.trainable' global: a parameter is saved}}
ml_program.global private mutable @w(dense<0.0> : tensor<4xf32>) : tensor<4xf32> {moe.trainable, moe.transient}

// -----

// A config's value (a loss coefficient) is neither learned nor transient.
// expected-error @+1 {{'moe.config_constant' on a 'moe.trainable' global}}
ml_program.global private mutable @w(dense<0.0> : tensor<4xf32>) : tensor<4xf32> {moe.trainable, moe.config_constant}

// -----

// expected-error @+1 {{'moe.config_constant' on a 'moe.transient' global}}
ml_program.global private mutable @c(dense<0.0> : tensor<f32>) : tensor<f32> {moe.config_constant, moe.transient}

// -----

// expected-error @+1 {{'moe.config_constant' must be a unit attribute on an ml_program.global}}
ml_program.global private mutable @c(dense<0.0> : tensor<f32>) : tensor<f32> {moe.config_constant = 1 : i64}

// -----

// Only a global holds a config's value.
// expected-error @+1 {{'moe.config_constant' must be a unit attribute on an ml_program.global}}
func.func private @f() attributes {moe.config_constant}

// -----

// moe.micro_batches counts the calls of @train_micro_step, plus one.
// expected-error @+1 {{'moe.micro_batches' needs the function @train_micro_step that runs every micro-batch but the last}}
module attributes {moe.micro_batches = 2 : i64} {
  func.func private @train_step()
}

// -----

// A step built for 2 micro-batches scales its gradients by 1/2: another
// count, or none, would train wrongly.
// expected-error @+1 {{'moe.micro_batches' is 3, but the step was built for 2 micro-batches (as 'moe.training' records)}}
module attributes {moe.micro_batches = 3 : i64, moe.training = {"moe-accumulate-gradients" = "function=train_step micro-batches=2"}} {
  func.func private @train_micro_step()
}

// -----

// expected-error @+1 {{'moe.micro_batches' is absent, but the step was built for 2 micro-batches (as 'moe.training' records)}}
module attributes {moe.training = {"moe-accumulate-gradients" = "function=train_step micro-batches=2"}} {
  func.func private @train_micro_step()
}

// -----

// moe.spmd_grid names a shard.grid, not any symbol.
ml_program.global private mutable @w(dense<0.0> : tensor<4xf32>) : tensor<4xf32> {moe.trainable}
// expected-error @+1 {{'moe.spmd_grid' must name a shard.grid on a function}}
func.func private @train_step() attributes {moe.spmd_grid = @w}

// -----

// #moe.rope_scaling follows transformers' validation of its kinds.
func.func @f(%q: tensor<1x2x1x4xf32>) -> tensor<1x2x1x4xf32> {
  // expected-error @+1 {{#moe.rope_scaling<linear> needs a finite factor >= 1, got 5.000000e-01}}
  %y = moe.rope %q theta = 1.0e+04 scaling = <linear, factor = 0.5> : tensor<1x2x1x4xf32>
  return %y : tensor<1x2x1x4xf32>
}

// -----

func.func @f(%q: tensor<1x2x1x4xf32>) -> tensor<1x2x1x4xf32> {
  // expected-error @+1 {{#moe.rope_scaling<llama3> needs original_positions > 0, got 0.000000e+00}}
  %y = moe.rope %q theta = 1.0e+04 scaling = <llama3, factor = 8.0> : tensor<1x2x1x4xf32>
  return %y : tensor<1x2x1x4xf32>
}

// -----

func.func @f(%q: tensor<1x2x1x4xf32>) -> tensor<1x2x1x4xf32> {
  // expected-error @+1 {{#moe.rope_scaling<llama3> needs 0 < low_freq_factor < high_freq_factor, got 4.000000e+00 and 1.000000e+00}}
  %y = moe.rope %q theta = 1.0e+04 scaling = <llama3, factor = 8.0, low_freq_factor = 4.0, high_freq_factor = 1.0, original_positions = 64.0> : tensor<1x2x1x4xf32>
  return %y : tensor<1x2x1x4xf32>
}

// -----

func.func @f(%q: tensor<1x2x1x4xf32>) -> tensor<1x2x1x4xf32> {
  // expected-error @+1 {{#moe.rope_scaling<yarn> needs 0 < beta_slow < beta_fast, got 1.000000e+00 and 1.000000e+00}}
  %y = moe.rope %q theta = 1.0e+04 scaling = <yarn, factor = 4.0, original_positions = 64.0, beta_fast = 1.0> : tensor<1x2x1x4xf32>
  return %y : tensor<1x2x1x4xf32>
}

// -----

func.func @f(%q: tensor<1x2x1x4xf32>) -> tensor<1x2x1x4xf32> {
  // expected-error @+1 {{#moe.rope_scaling<yarn> needs a finite attention_factor > 0, got 0.000000e+00}}
  %y = moe.rope %q theta = 1.0e+04 scaling = <yarn, factor = 4.0, original_positions = 64.0, attention_factor = 0.0> : tensor<1x2x1x4xf32>
  return %y : tensor<1x2x1x4xf32>
}

// -----

// A parameter the kind does not read keeps its default: linear scaling
// takes no attention factor.
func.func @f(%q: tensor<1x2x1x4xf32>) -> tensor<1x2x1x4xf32> {
  // expected-error @+1 {{#moe.rope_scaling<linear> does not read beta_fast, beta_slow, truncate and attention_factor: leave them at their defaults}}
  %y = moe.rope %q theta = 1.0e+04 scaling = <linear, factor = 2.0, attention_factor = 1.2> : tensor<1x2x1x4xf32>
  return %y : tensor<1x2x1x4xf32>
}
