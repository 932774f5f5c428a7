#!/usr/bin/env python3
"""Prints benchmarks/gpu-train.sh's summary (Markdown).

usage: summary.py CONFIG.json GROUPED_GEMM.txt ATTENTION.txt GPU_NAME
                  [PRECISION[:VARIANT] METRICS.jsonl EAGER COMPILED]...

METRICS.jsonl is a compiled run's --metrics (VARIANT, where there is one,
says which other kernels it ran, for its heading); EAGER and COMPILED are
PyTorch's median step in ms, or a word that says why there is none.
GROUPED_GEMM.txt and ATTENTION.txt are the kernel benchmarks' reports,
printed at the end.
"""
import json
import os
import statistics
import sys

config, gemm, attention, gpu = sys.argv[1:5]
runs = sys.argv[5:]
c = json.load(open(config))
h, f, L = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"]
E, k, V = c["num_local_experts"], c["num_experts_per_tok"], c["vocab_size"]
s, b = c["moe_seq_len"], c["moe_batch_size"]
tokens = b * s
# Forward FLOPs per token: q, k, v, o projections; causal attention's two
# products (half the square); the router; top-k SwiGLU experts; the head.
forward = L * (4 * 2 * h * h + 2 * 2 * h * s / 2 + 2 * h * E
               + k * 3 * 2 * h * f) + 2 * h * V
step_flops = 3 * forward * tokens
# Dense peaks without sparsity, TFLOP/s.
peaks = {"H200": {"f32": 67, "bf16": 989}, "H100": {"f32": 67, "bf16": 989},
         "A100": {"f32": 19.5, "bf16": 312}}
peak = next((p for name, p in peaks.items() if name in gpu), None)
print("# GPU train step: %s\n" % gpu)
print("model: %s, %d tokens per step, %.1f TFLOP per step" %
      (config, tokens, step_flops / 1e12))
for i in range(0, len(runs), 4):
    precision, metrics, eager, compiled = runs[i:i + 4]
    precision, _, variant = precision.partition(":")
    print("\n## %s%s\n" % (precision, ", " + variant if variant else ""))
    lines = []
    try:
        for text in open(metrics):
            try:
                lines.append(json.loads(text))
            except ValueError:  # a run killed mid-line
                pass
    except OSError:
        pass
    # The first call runs eagerly, the second captures the graph.
    times = [l["step_seconds"] for l in lines if "step_seconds" in l][2:]
    if not times:
        print("compiled (CUDA target): failed (see %s)" %
              os.path.basename(metrics).replace("metrics-", "train-")
              .replace(".jsonl", ".log"))
        continue
    step = statistics.median(times)
    rate = step_flops / step / 1e12
    print("compiled (CUDA target): median step %.1f ms, %.0f tokens/s, "
          "%.1f TFLOP/s" % (1000 * step, tokens / step, rate))
    if peak:
        print("MFU: %.1f%% of the dense %s peak (%g TFLOP/s)%s" %
              (100 * rate / peak[precision], precision, peak[precision],
               "; target >= 40%" if precision == "bf16" else ""))
    torch = "PyTorch" + (" (bf16 autocast)" if precision == "bf16" else "")
    for name, value in (("eager", eager), ("torch.compile", compiled)):
        try:
            ms = float(value)
        except ValueError:
            print("%s %s: %s" % (torch, name, value))
            continue
        print("%s %s: median step %.1f ms (compiled is %.2fx faster)" %
              (torch, name, ms, ms / (1000 * step)))
for report, name in ((gemm, "grouped GEMM"), (attention, "attention")):
    try:
        print("\n" + open(report).read().strip())
    except OSError:
        print("\n%s: not run" % name)
