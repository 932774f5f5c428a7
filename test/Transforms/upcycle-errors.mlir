// RUN: moe-opt %s -split-input-file --moe-upcycle=experts=4 -verify-diagnostics

// @forward's interface is what moe-import writes: the token ids first,
// [batch, seq], and the loss first.

module attributes {moe.config = "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"vocab_size\": 64, \"hidden_size\": 32, \"intermediate_size\": 48, \"num_hidden_layers\": 2, \"num_attention_heads\": 2, \"num_key_value_heads\": 1, \"max_position_embeddings\": 16, \"rope_theta\": 10000.0, \"rms_norm_eps\": 1e-05, \"initializer_range\": 0.02, \"tie_word_embeddings\": false, \"moe_batch_size\": 2, \"moe_seq_len\": 8}"} {
  // expected-error @+1 {{moe-upcycle: @forward must take the token ids first (a static tensor<BATCHxSEQxi32>) and return the f32 or f64 loss first (a scalar tensor), as moe-import writes it; it is '(tensor<8xi32>) -> tensor<f32>'}}
  func.func @forward(%ids: tensor<8xi32>) -> tensor<f32> {
    %c = arith.constant dense<0.0> : tensor<f32>
    return %c : tensor<f32>
  }
}

// -----

module attributes {moe.config = "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"vocab_size\": 64, \"hidden_size\": 32, \"intermediate_size\": 48, \"num_hidden_layers\": 2, \"num_attention_heads\": 2, \"num_key_value_heads\": 1, \"max_position_embeddings\": 16, \"rope_theta\": 10000.0, \"rms_norm_eps\": 1e-05, \"initializer_range\": 0.02, \"tie_word_embeddings\": false, \"moe_batch_size\": 2, \"moe_seq_len\": 8}"} {
  // expected-error @+1 {{moe-upcycle: @forward must take the token ids first (a static tensor<BATCHxSEQxi32>) and return the f32 or f64 loss first (a scalar tensor), as moe-import writes it; it is '(i32) -> tensor<f32>'}}
  func.func @forward(%ids: i32) -> tensor<f32> {
    %c = arith.constant dense<0.0> : tensor<f32>
    return %c : tensor<f32>
  }
}

// -----

module attributes {moe.config = "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"vocab_size\": 64, \"hidden_size\": 32, \"intermediate_size\": 48, \"num_hidden_layers\": 2, \"num_attention_heads\": 2, \"num_key_value_heads\": 1, \"max_position_embeddings\": 16, \"rope_theta\": 10000.0, \"rms_norm_eps\": 1e-05, \"initializer_range\": 0.02, \"tie_word_embeddings\": false, \"moe_batch_size\": 2, \"moe_seq_len\": 8}"} {
  // expected-error @+1 {{moe-upcycle: @forward must take the token ids first (a static tensor<BATCHxSEQxi32>) and return the f32 or f64 loss first (a scalar tensor), as moe-import writes it; it is '(tensor<?x8xi32>) -> tensor<f32>'}}
  func.func @forward(%ids: tensor<?x8xi32>) -> tensor<f32> {
    %c = arith.constant dense<0.0> : tensor<f32>
    return %c : tensor<f32>
  }
}

// -----

module attributes {moe.config = "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"vocab_size\": 64, \"hidden_size\": 32, \"intermediate_size\": 48, \"num_hidden_layers\": 2, \"num_attention_heads\": 2, \"num_key_value_heads\": 1, \"max_position_embeddings\": 16, \"rope_theta\": 10000.0, \"rms_norm_eps\": 1e-05, \"initializer_range\": 0.02, \"tie_word_embeddings\": false, \"moe_batch_size\": 2, \"moe_seq_len\": 8}"} {
  // expected-error @+1 {{moe-upcycle: @forward must take the token ids first (a static tensor<BATCHxSEQxi32>) and return the f32 or f64 loss first (a scalar tensor), as moe-import writes it; it is '(tensor<2x8xi32>) -> tensor<i32>'}}
  func.func @forward(%ids: tensor<2x8xi32>) -> tensor<i32> {
    %c = arith.constant dense<0> : tensor<i32>
    return %c : tensor<i32>
  }
}
