func.func @f(%q: tensor<1x4x2x8xf32>) -> tensor<1x4x2x8xf32> {
  %a = moe.rope %q theta = 5.0e+05 scaling = <llama3, factor = 8.0, original_positions = 8192.0> : tensor<1x4x2x8xf32>
  %b = moe.rope %a theta = 1.0e+06 scaling = <yarn, factor = 4.0, original_positions = 32768.0, beta_fast = 16.0, truncate = false, attention_factor = 1.2> inverse : tensor<1x4x2x8xf32>
  %c = moe.rope %b theta = 1.0e+04 scaling = <linear, factor = 2.0> : tensor<1x4x2x8xf32>
  return %c : tensor<1x4x2x8xf32>
}
