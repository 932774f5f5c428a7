// RUN: moe-opt %s --moe-mixed-precision | FileCheck %s

// A reshaped activation's bf16 copy is the reshape of its source's copy,
// through a chain of reshapes too; the f32 reshapes that only GEMMs read
// are gone, so the source's copy is its only reader (each copy follows its
// f32 original, so one left behind would break the CHECK-NEXT chain).
// CHECK-LABEL: func.func @activation_chain
// CHECK: %[[Y:.*]] = moe.linear
// CHECK-NEXT: %[[YB:.*]] = arith.truncf %[[Y]] : tensor<1x3x4xf32> to tensor<1x3x4xbf16>
// CHECK-NEXT: %[[E:.*]] = tensor.expand_shape %[[YB]] {{.*}} into tensor<1x3x2x2xbf16>
// CHECK-NEXT: %[[C:.*]] = tensor.collapse_shape %[[E]] {{.*}} into tensor<3x4xbf16>
// CHECK: moe.linear %[[C]],
// CHECK-NEXT: return
func.func @activation_chain(%x: tensor<1x3x4xf32>, %w: tensor<4x4xf32>) -> tensor<3x4xf32> {
  %y = moe.linear %x, %w : tensor<1x3x4xf32>, tensor<4x4xf32> -> tensor<1x3x4xf32>
  %e = tensor.expand_shape %y [[0], [1], [2, 3]] output_shape [1, 3, 2, 2] : tensor<1x3x4xf32> into tensor<1x3x2x2xf32>
  %c = tensor.collapse_shape %e [[0, 1], [2, 3]] : tensor<1x3x2x2xf32> into tensor<3x4xf32>
  %z = moe.linear %c, %w : tensor<3x4xf32>, tensor<4x4xf32> -> tensor<3x4xf32>
  return %z : tensor<3x4xf32>
}

// A reshaped weight read by GEMMs after other ops: its copy follows the
// reshape (the copies of weights themselves go right before each reader).
ml_program.global private mutable @w : tensor<4x2x2xf32> {moe.init = #moe.init<normal, 1.0>, moe.trainable}
// CHECK-LABEL: func.func @reshaped_weight
// CHECK: %[[W:.*]] = ml_program.global_load @w
// CHECK-NEXT: %[[WF:.*]] = tensor.collapse_shape %[[W]]
// CHECK-NEXT: %[[WB:.*]] = arith.truncf %[[WF]] : tensor<4x4xf32> to tensor<4x4xbf16>
// CHECK: moe.linear %{{.*}}, %[[WB]]
// CHECK: moe.linear %{{.*}}, %[[WB]]
func.func @reshaped_weight(%x: tensor<1x3x4xf32>) -> tensor<1x3x4xf32> {
  %w = ml_program.global_load @w : tensor<4x2x2xf32>
  %wf = tensor.collapse_shape %w [[0], [1, 2]] : tensor<4x2x2xf32> into tensor<4x4xf32>
  %h = moe.add %x, %x : tensor<1x3x4xf32>
  %y = moe.linear %h, %wf : tensor<1x3x4xf32>, tensor<4x4xf32> -> tensor<1x3x4xf32>
  %z = moe.linear %y, %wf : tensor<1x3x4xf32>, tensor<4x4xf32> -> tensor<1x3x4xf32>
  return %z : tensor<1x3x4xf32>
}
