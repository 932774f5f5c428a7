#!/usr/bin/env python3
"""Turns the ablation runs' JSONL metrics into a CSV, a plot and a summary.

usage: plot.py gate-norm|adaptive-aux|expert-bias WORK_DIR VARIANT...

Reads WORK_DIR/VARIANT.jsonl (the training binaries' --metrics), writes
WORK_DIR/<ablation>.csv (one row per variant, step and MoE layer),
WORK_DIR/<ablation>.png, and prints per variant the last validation loss and
the means over the last 10% of steps.
"""
import csv
import json
import os
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

LAYER = re.compile(r"model\.layers\.(\d+)\.block_sparse_moe\.(\w+)$")
METRICS = ["drop_rate", "aux_loss_coeff", "aux_loss", "z_loss", "max1_max2",
           "max2_max3"]
PLOTTED_LAYER = 1  # the layer Figure 3 style panels show


def read_run(path):
    steps, val = [], []
    for line in open(path):
        record = json.loads(line)
        if "val_loss" in record:
            val.append((record["step"], record["val_loss"]))
        elif "loss" in record:
            layers = {}
            for name, value in record.items():
                match = LAYER.match(name)
                if match and match.group(2) in METRICS:
                    layers.setdefault(int(match.group(1)), {})[
                        match.group(2)] = value
            tokens = round(record["tokens_per_second"] * record["step_seconds"])
            steps.append({"step": record["step"], "tokens": tokens,
                          # The cross-entropy, as validation reports it.
                          "loss": record.get("lm_loss", record["loss"]),
                          "layers": layers})
    if not steps:
        sys.exit("%s: no training steps" % path)
    total = 0
    for step in steps:
        total += step["tokens"]
        step["tokens"] = total
    return steps, val


def smooth(values, window=50):
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def layer_series(steps, metric, layer=None):
    """One layer's metric per step, or the mean over layers."""
    series = []
    for step in steps:
        layers = step["layers"]
        if layer is not None:
            series.append(layers[layer][metric])
        else:
            series.append(sum(l[metric] for l in layers.values()) / len(layers))
    return series


def tail_mean(values):
    tail = values[-max(1, len(values) // 10):]
    return sum(tail) / len(tail)


def main():
    ablation, work, variants = sys.argv[1], sys.argv[2], sys.argv[3:]
    runs = {v: read_run(os.path.join(work, v + ".jsonl")) for v in variants}

    with open(os.path.join(work, ablation + ".csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["variant", "step", "tokens", "loss", "layer"] + METRICS)
        for variant, (steps, _) in runs.items():
            for step in steps:
                for layer, metrics in sorted(step["layers"].items()):
                    writer.writerow([variant, step["step"], step["tokens"],
                                     step["loss"], layer] +
                                    [metrics.get(m, "") for m in METRICS])

    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    if ablation == "gate-norm":
        panels = [("training loss", lambda s: [x["loss"] for x in s]),
                  ("token drop rate, layer %d" % PLOTTED_LAYER,
                   lambda s: layer_series(s, "drop_rate", PLOTTED_LAYER)),
                  ("Max1/Max2, layer %d" % PLOTTED_LAYER,
                   lambda s: layer_series(s, "max1_max2", PLOTTED_LAYER)),
                  ("Max2/Max3, layer %d" % PLOTTED_LAYER,
                   lambda s: layer_series(s, "max2_max3", PLOTTED_LAYER))]
    else:
        panels = [("training loss", lambda s: [x["loss"] for x in s]),
                  ("token drop rate (mean over layers)",
                   lambda s: layer_series(s, "drop_rate")),
                  ("aux loss (mean over layers)",
                   lambda s: layer_series(s, "aux_loss")),
                  (None, None)]
    colors = {v: "C%d" % i for i, v in enumerate(variants)}
    for axis, (title, series) in zip(axes.flat, panels):
        if title is None:
            continue
        tails = []
        for variant, (steps, _) in runs.items():
            tokens = [s["tokens"] for s in steps]
            values = smooth(series(steps))
            axis.plot(tokens, values, label=variant, color=colors[variant])
            tails += values[len(values) // 5:]
        if title == "training loss":
            # The first fifth (the steep start) would flatten the rest.
            spread = max(tails) - min(tails)
            axis.set_ylim(min(tails) - 0.05 * spread, max(tails) + 0.05 * spread)
        axis.set_title(title + " (moving average of 50 steps)")
        axis.set_xlabel("tokens")
        axis.legend()
    if ablation == "adaptive-aux":
        axis = axes.flat[3]
        styles = ["-", "--", ":", "-."]
        for variant, (steps, _) in runs.items():
            tokens = [s["tokens"] for s in steps]
            for layer in sorted(steps[0]["layers"]):
                axis.plot(tokens, layer_series(steps, "aux_loss_coeff", layer),
                          color=colors[variant],
                          linestyle=styles[layer % len(styles)],
                          label="%s, layer %d" % (variant, layer))
        axis.set_yscale("log")
        axis.set_title("alpha per layer (line style: layer)")
        axis.set_xlabel("tokens")
        axis.legend(fontsize="x-small", ncol=2)
    if ablation == "expert-bias":
        axes.flat[3].axis("off")  # no coefficient to follow
    fig.suptitle("MoE ablation: %s (16 experts, top-2, capacity 1.0)"
                 % ablation)
    fig.tight_layout()
    fig.savefig(os.path.join(work, ablation + ".png"), dpi=80)

    print("variant        val loss  train loss  drop rate  max1/max2  "
          "max2/max3  alpha (per layer, end)")
    for variant, (steps, val) in runs.items():
        alphas = " ".join("%.2e" % steps[-1]["layers"][l]["aux_loss_coeff"]
                          for l in sorted(steps[-1]["layers"]))
        print("%-13s  %8.4f  %10.4f  %8.2f%%  %9.3f  %9.3f  %s" % (
            variant, val[-1][1] if val else float("nan"),
            tail_mean([s["loss"] for s in steps]),
            100 * tail_mean(layer_series(steps, "drop_rate")),
            tail_mean(layer_series(steps, "max1_max2", PLOTTED_LAYER)),
            tail_mean(layer_series(steps, "max2_max3", PLOTTED_LAYER)),
            alphas))
    print("wrote %s.csv and %s.png in %s" % (ablation, ablation, work))


if __name__ == "__main__":
    main()
