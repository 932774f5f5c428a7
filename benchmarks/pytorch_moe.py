#!/usr/bin/env python3
"""A straightforward PyTorch implementation of the MoE models this project
compiles (a Mixtral-style config.json), for the baseline step time: on the
CPU or a CUDA GPU, eager or through torch.compile (Inductor).

Llama-style decoder: RMSNorm, causal attention with rotate-half RoPE,
residuals; each layer's FFN is a Mixtral-style MoE (linear router, softmax,
top-k, renormalized weights, capacity ceil(cf * T * k / E) filled in
token-major order, dropped assignments contribute nothing), SwiGLU experts;
loss = cross-entropy + coefficient * Skywork aux loss per layer; AdamW with
decoupled weight decay on 2-D parameters, global-norm clipping, nanoGPT's
warmup + cosine schedule.

usage: pytorch_moe.py --tokens TOKENS.bin --config CONFIG.json
                      [--threads N] [--steps N] [--device cpu|cuda]
                      [--compile] [--batch N] [--seq N]
Prints one line: the median step time in milliseconds.
"""
import argparse
import json
import math
import statistics
import struct
import sys
import time

import torch
import torch.nn.functional as F

LAYERS = HEADS = HIDDEN = FFN = EXPERTS = TOP_K = 0
CAPACITY_FACTOR = AUX_COEFF = 0.0


def configure(config):
    """Sets the model's dimensions from a config.json."""
    global LAYERS, HEADS, HIDDEN, FFN, EXPERTS, TOP_K, CAPACITY_FACTOR
    global AUX_COEFF
    LAYERS = config["num_hidden_layers"]
    HEADS = config["num_attention_heads"]
    HIDDEN = config["hidden_size"]
    FFN = config["intermediate_size"]
    EXPERTS = config["num_local_experts"]
    TOP_K = config["num_experts_per_tok"]
    CAPACITY_FACTOR = config.get("moe_capacity_factor", 1.25)
    AUX_COEFF = config.get("router_aux_loss_coef", 0.01)


def rms_norm(x, weight, eps=1e-5):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def rope(x, theta=10000.0):
    seq, dim = x.shape[1], x.shape[-1]
    arange = lambda n: torch.arange(n, dtype=torch.float32, device=x.device)
    freqs = theta ** (-arange(dim // 2) * 2 / dim)
    angles = arange(seq)[:, None] * freqs[None, :]
    cos = angles.cos()[None, :, None, :].repeat(1, 1, 1, 2)
    sin = angles.sin()[None, :, None, :].repeat(1, 1, 1, 2)
    half = dim // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


class Model(torch.nn.Module):
    def __init__(self, vocab):
        super().__init__()
        def param(*shape, std=0.02):
            return torch.nn.Parameter(torch.randn(*shape) * std)
        self.embed = param(vocab, HIDDEN)
        self.layers = torch.nn.ModuleList()
        for _ in range(LAYERS):
            layer = torch.nn.Module()
            layer.norm1 = torch.nn.Parameter(torch.ones(HIDDEN))
            layer.wq, layer.wk, layer.wv, layer.wo = (param(HIDDEN, HIDDEN)
                                                      for _ in range(4))
            layer.norm2 = torch.nn.Parameter(torch.ones(HIDDEN))
            layer.router = param(EXPERTS, HIDDEN)
            layer.w1 = param(EXPERTS, FFN, HIDDEN)
            layer.w3 = param(EXPERTS, FFN, HIDDEN)
            layer.w2 = param(EXPERTS, HIDDEN, FFN)
            self.layers.append(layer)
        self.norm = torch.nn.Parameter(torch.ones(HIDDEN))
        self.head = param(vocab, HIDDEN)

    def moe(self, layer, x):
        tokens = x.shape[0]
        probs = F.softmax(x @ layer.router.t(), dim=-1)
        weights, indices = probs.topk(TOP_K, dim=-1)
        weights = weights / weights.sum(-1, keepdim=True)
        capacity = math.ceil(CAPACITY_FACTOR * tokens * TOP_K / EXPERTS)
        flat = indices.reshape(-1)  # token-major (token, choice) order
        out = torch.zeros_like(x)
        for e in range(EXPERTS):
            assignments = (flat == e).nonzero().squeeze(-1)[:capacity]
            if assignments.numel() == 0:
                continue
            rows = assignments // TOP_K
            h = x[rows]
            y = (F.silu(h @ layer.w1[e].t()) * (h @ layer.w3[e].t())) @ layer.w2[e].t()
            # Under autocast y is bf16 and the residual stream f32.
            out.index_add_(0, rows, (y * weights.reshape(-1)[assignments, None])
                           .to(out.dtype))
        aux = ((1.0 / EXPERTS - probs.mean(0)) ** 2).sum()
        return out, aux

    def forward(self, ids, targets):
        batch, seq = ids.shape
        h = self.embed[ids]
        aux_total = 0.0
        for layer in self.layers:
            x = rms_norm(h, layer.norm1)
            q = rope((x @ layer.wq.t()).view(batch, seq, HEADS, -1))
            k = rope((x @ layer.wk.t()).view(batch, seq, HEADS, -1))
            v = (x @ layer.wv.t()).view(batch, seq, HEADS, -1)
            a = F.scaled_dot_product_attention(
                q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                is_causal=True)
            h = h + a.transpose(1, 2).reshape(batch, seq, HIDDEN) @ layer.wo.t()
            x = rms_norm(h, layer.norm2).reshape(batch * seq, HIDDEN)
            y, aux = self.moe(layer, x)
            h = h + y.view(batch, seq, HIDDEN)
            aux_total = aux_total + AUX_COEFF * aux
        logits = rms_norm(h, self.norm) @ self.head.t()
        return F.cross_entropy(logits.view(-1, logits.shape[-1]),
                               targets.view(-1)) + aux_total


def learning_rate(step, max_lr=1e-3, min_lr=1e-4, warmup=100, decay=2000):
    if step < warmup:
        return max_lr * (step + 1) / (warmup + 1)
    if step > decay:
        return min_lr
    ratio = (step - warmup) / (decay - warmup)
    return min_lr + 0.5 * (1 + math.cos(math.pi * ratio)) * (max_lr - min_lr)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the forward and backward")
    parser.add_argument("--autocast", choices=["bf16"],
                        help="mixed precision: the step under torch.autocast "
                             "to bf16 (f32 master weights and AdamW)")
    parser.add_argument("--batch", type=int, help="default: the config's")
    parser.add_argument("--seq", type=int, help="default: the config's")
    args = parser.parse_args()
    config = json.load(open(args.config))
    configure(config)
    batch = args.batch or config["moe_batch_size"]
    seq = args.seq or config["moe_seq_len"]
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    with open(args.tokens, "rb") as f:
        header = struct.unpack("<256i", f.read(1024))
        data = torch.frombuffer(bytearray(f.read()), dtype=torch.int16).long() & 0xFFFF
    train = data[: len(data) - len(data) // 10]
    # Made on the device: a GPU model's 2.6B parameters take many seconds
    # to initialize on one CPU thread.
    with device:
        model = Model(config["vocab_size"])
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                                   {"params": no_decay, "weight_decay": 0.0}],
                                  lr=1e-3, betas=(0.9, 0.99))
    loss_fn = torch.compile(model) if args.compile else model

    def synchronize():
        if device.type == "cuda":
            torch.cuda.synchronize()

    times = []
    for step in range(args.steps):
        starts = torch.randint(len(train) - seq - 1, (batch,))
        x = torch.stack([train[s:s + seq] for s in starts]).to(device)
        y = torch.stack([train[s + 1:s + seq + 1] for s in starts]).to(device)
        synchronize()
        begin = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step)
        # Before the forward, so that the last step's gradients do not
        # share the memory with this step's activations.
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16,
                            enabled=args.autocast == "bf16"):
            loss = loss_fn(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        synchronize()
        times.append(time.perf_counter() - begin)
    # The first steps warm up allocators, caches and torch.compile.
    print("%.3f" % (1000 * statistics.median(times[5:])))


if __name__ == "__main__":
    main()
