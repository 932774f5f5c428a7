//===- MoeFusedOps.td - fused kernels of the moe dialect ---*- tablegen -*-===//
//
// Ops that moe-fuse-elementwise forms for code generation. Included from
// MoeOps.td.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_FUSED_OPS_TD
#define MOE_FUSED_OPS_TD

def Moe_YieldOp : Op<Moe_Dialect, "yield",
    [Pure, Terminator, HasParent<"FusedElementwiseOp">]> {
  let summary = "the element a fused elementwise body computes";
  let arguments = (ins AnyFloat:$value);
  let assemblyFormat = "$value attr-dict `:` type($value)";
}

def Moe_FusedElementwiseOp : Moe_Op<"fused_elementwise", [SingleBlock,
    DeclareOpInterfaceMethods<Moe_InPlaceOpInterface>]> {
  let summary = "a chain of elementwise ops as one loop over the elements";
  let description = [{
    Applies its body to every element: the block arguments are the elements
    of `inputs` at one position (one scalar per input, of the element type),
    the body computes with `arith.addf`, `subf`, `mulf`, `divf`, `negf`,
    `arith.constant` and `math.exp`, and `moe.yield` gives the result's
    element. All inputs and the result have one shape and element type;
    the result may take the storage of the first input (an accumulator that
    moe-accumulate-gradients updates in place).
    moe-fuse-elementwise builds it from chains of moe.add, moe.mul and
    moe.swiglu so that the chain reads and writes memory once.

    ```mlir
    %r = moe.fused_elementwise %a, %b, %c : tensor<8x16xf32>, tensor<8x16xf32>, tensor<8x16xf32> -> tensor<8x16xf32> {
    ^bb0(%x: f32, %y: f32, %z: f32):
      %s = arith.addf %x, %y : f32
      %p = arith.mulf %s, %z : f32
      moe.yield %p : f32
    }
    ```
  }];
  let arguments = (ins Variadic<Moe_FloatTensor>:$inputs);
  let results = (outs Moe_FloatTensor:$result);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = [{
    $inputs attr-dict `:` type($inputs) `->` type($result) $body
  }];
}

#endif // MOE_FUSED_OPS_TD
