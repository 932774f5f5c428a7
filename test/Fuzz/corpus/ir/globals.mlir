module attributes {moe.micro_batches = 2 : i64} {
  ml_program.global private mutable @w(dense<0.0> : tensor<2x4xf32>) : tensor<2x4xf32> {moe.init = #moe.init<normal, 2.0e-02>, moe.sharded = 0 : i64, moe.trainable}
  ml_program.global private mutable @w.exp_avg(dense<0.0> : tensor<4xf32>) : tensor<4xf32> {moe.optimizer_part = @w, moe.sharded = 0 : i64}
  ml_program.global private mutable @tokens(dense<0> : tensor<2xi64>) : tensor<2xi64> {moe.transient}
  func.func @train_micro_step(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
    return %x : tensor<2x4xf32>
  }
}
