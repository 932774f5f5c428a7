//===- MoeBase.td - moe dialect, enums and attributes ------*- tablegen -*-===//
//
// The dialect definition, its enums and its attributes. Ops live in MoeOps.td.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_BASE_TD
#define MOE_BASE_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"

def Moe_Dialect : Dialect {
  let name = "moe";
  let cppNamespace = "::mlir::moe";
  let summary = "Mixture-of-Experts transformer training at the tensor level";
  let description = [{
    The `moe` dialect describes Llama-style Mixture-of-Experts transformers on
    ranked, static-shape tensors with value semantics: the transformer ops
    (embedding, RMSNorm, linear, RoPE, attention, SwiGLU, cross-entropy), the
    routing ops of the Skywork-MoE paper (router, normalized gate, dispatch
    with capacity, grouped expert FFN, combine) and the auxiliary losses and
    their adaptive coefficients. Parameters and training state are
    `ml_program.global`s named like Hugging Face tensors; the `#moe.init`
    attribute on a global says how a fresh run initializes it.
  }];
  let useDefaultAttributePrinterParser = 1;
  // moe.init / moe.trainable on globals, moe.input / moe.output on functions.
  let hasOperationAttrVerify = 1;
  let hasRegionArgAttrVerify = 1;
  let hasRegionResultAttrVerify = 1;
}

//===----------------------------------------------------------------------===//
// Enums
//===----------------------------------------------------------------------===//

def Moe_AuxLossKind : I32EnumAttr<"AuxLossKind",
    "load-balancing auxiliary loss formula", [
      I32EnumAttrCase<"skywork", 0>,
      I32EnumAttrCase<"switch_", 1, "switch">
    ]> {
  let cppNamespace = "::mlir::moe";
}

def Moe_GateScoring : I32EnumAttr<"GateScoring",
    "how a gate scores the experts from a token's logits", [
      I32EnumAttrCase<"softmax", 0>,
      I32EnumAttrCase<"sigmoid", 1>
    ]> {
  let cppNamespace = "::mlir::moe";
}

def Moe_LrDecay : I32EnumAttr<"LrDecay",
    "how the learning rate falls after warmup", [
      I32EnumAttrCase<"cosine", 0>,
      I32EnumAttrCase<"linear", 1>,
      I32EnumAttrCase<"constant", 2>
    ]> {
  let cppNamespace = "::mlir::moe";
}

def Moe_InitKind : I32EnumAttr<"InitKind", "parameter initializer", [
      I32EnumAttrCase<"normal", 0>,
      I32EnumAttrCase<"constant", 1>
    ]> {
  let cppNamespace = "::mlir::moe";
  let genSpecializedAttr = 0;
}

def Moe_RopeKind : I32EnumAttr<"RopeKind", "how RoPE's frequencies are scaled", [
      I32EnumAttrCase<"linear", 1>,
      I32EnumAttrCase<"llama3", 2>,
      I32EnumAttrCase<"yarn", 3>
    ]> {
  let cppNamespace = "::mlir::moe";
  let genSpecializedAttr = 0;
}

//===----------------------------------------------------------------------===//
// Attributes
//===----------------------------------------------------------------------===//

// A double (as APFloat, which hashes) written as a plain float literal.
def Moe_DoubleParameter : APFloatParameter<"a double"> {
  let parser = [{[&]() -> ::mlir::FailureOr<::llvm::APFloat> {
    double value;
    if ($_parser.parseFloat(value))
      return ::mlir::failure();
    return ::llvm::APFloat(value);
  }()}];
  let printer = "$_printer.printFloat($_self)";
}

// moe.attention's sliding window: the positions a query sees, its own
// included.
def Moe_AttentionWindowAttr : ConfinedAttr<I64Attr, [IntPositive]>;

def Moe_InitAttr : AttrDef<Moe_Dialect, "Init"> {
  let mnemonic = "init";
  let summary = "how a global is initialized for a fresh training run";
  let description = [{
    Attached to an `ml_program.global` as the discardable attribute
    `moe.init`. `#moe.init<normal, 0.02>` draws every element from
    N(0, 0.02^2) with the project's seeded generator (the stream is keyed by
    the seed and the global's name, so the order of globals does not matter);
    `#moe.init<constant, 1.0>` fills every element with 1.0.
  }];
  let parameters = (ins EnumParameter<Moe_InitKind>:$kind,
                        Moe_DoubleParameter:$value);
  let assemblyFormat = "`<` $kind `,` $value `>`";
  let genVerifyDecl = 1;
}

class Moe_DefaultDouble<string value> : DefaultValuedParameter<
    "::llvm::APFloat", "::llvm::APFloat(" # value # ")", "a double"> {
  let parser = Moe_DoubleParameter.parser;
  let printer = Moe_DoubleParameter.printer;
}

def Moe_RopeScalingAttr : AttrDef<Moe_Dialect, "RopeScaling"> {
  let mnemonic = "rope_scaling";
  let summary = "how moe.rope scales its frequencies (transformers' rope_type)";
  let description = [{
    The frequencies `f_i = theta^(-2i / head_dim)` of `moe.rope`, scaled as
    transformers' `modeling_rope_utils` does for its `rope_type`:
    - `linear`: every `f_i / factor`.
    - `llama3`: with the wavelength `w = 2 pi / f_i` and the original
      context `original_positions`, `f_i` where `w` is below
      `original_positions / high_freq_factor`, `f_i / factor` where it is
      above `original_positions / low_freq_factor`, and between them
      `(1 - s) f_i / factor + s f_i` with
      `s = (original_positions / w - low_freq_factor) /
      (high_freq_factor - low_freq_factor)`.
    - `yarn`: `f_i / factor` and `f_i` blended over a ramp of the pair
      index between the dimensions that turn `beta_fast` and `beta_slow`
      times over `original_positions` (rounded out with `truncate`), and
      the rotated values scaled by `attention_factor`.
    Parameters a kind does not read must keep their defaults (the verifier
    checks it), which the printer leaves out.

    ```mlir
    #moe.rope_scaling<llama3, factor = 8.0, original_positions = 8192.0>
    #moe.rope_scaling<yarn, factor = 4.0, original_positions = 32768.0, attention_factor = 1.1386294361119891>
    ```
  }];
  let parameters = (ins EnumParameter<Moe_RopeKind>:$kind,
                        Moe_DoubleParameter:$factor,
                        Moe_DefaultDouble<"1.0">:$low_freq_factor,
                        Moe_DefaultDouble<"4.0">:$high_freq_factor,
                        Moe_DefaultDouble<"0.0">:$original_positions,
                        Moe_DefaultDouble<"32.0">:$beta_fast,
                        Moe_DefaultDouble<"1.0">:$beta_slow,
                        DefaultValuedParameter<"bool", "true">:$truncate,
                        Moe_DefaultDouble<"1.0">:$attention_factor);
  let assemblyFormat = [{
    `<` $kind `,` struct($factor, $low_freq_factor, $high_freq_factor,
                          $original_positions, $beta_fast, $beta_slow,
                          $truncate, $attention_factor) `>`
  }];
  let genVerifyDecl = 1;
}

def Moe_TargetAttr : AttrDef<Moe_Dialect, "Target"> {
  let mnemonic = "target";
  let summary = "the code-generation target of a module";
  let description = [{
    Attached to a module as `moe.target` (by `moe-attach-target`): the
    target the module is compiled for and the facts that the memory planner
    and the emitters share, so that they cannot disagree. `alignment` is the
    byte alignment of every buffer in the state region and the arena; it
    must be a power of two and at least what the target's kernels need
    (`cpu`: 64, a cache line and one AVX-512 vector; `cuda`: 256, what
    cudaMalloc guarantees). A module without the
    attribute is planned and emitted for `#moe.target<"cpu", alignment = 64>`.
  }];
  let parameters = (ins StringRefParameter<"the target's name">:$name,
                        "int64_t":$alignment);
  let assemblyFormat = "`<` $name `,` `alignment` `=` $alignment `>`";
  let genVerifyDecl = 1;
}

#endif // MOE_BASE_TD
