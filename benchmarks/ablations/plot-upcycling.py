#!/usr/bin/env python3
"""Plots and summarizes benchmarks/ablations/upcycling.sh's runs.

usage: plot-upcycling.py WORK_DIR DENSE_STEPS SHORT_STEPS LONG_STEPS

Reads WORK_DIR/<run>.jsonl (the training binaries' --metrics) of the dense
run and, for both MoE budgets, the from-scratch and the two upcycled runs;
writes WORK_DIR/upcycling.csv (run, step, tokens, training loss, mean
expert similarity over the layers where measured) and WORK_DIR/upcycling.png
(training loss and expert similarity against the MoE's tokens), and prints
a Markdown table: the last validation loss, the training loss over the last
10% of steps and the first and last mean expert similarity.
"""
import csv
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from plot import smooth  # noqa: E402  (the other ablations' moving average)

TOKENS_PER_STEP = 12 * 64


def read_run(path):
    losses, val, similarity = [], [], []
    for line in open(path):
        record = json.loads(line)
        values = [v for k, v in record.items()
                  if k.endswith(".expert_similarity")]
        if "val_loss" in record:
            val.append((record["step"], record["val_loss"]))
        elif values:
            similarity.append((record["step"], sum(values) / len(values)))
        elif "loss" in record:
            # The cross-entropy, as validation reports it.
            losses.append((record["step"], record.get("lm_loss",
                                                      record["loss"])))
    if not losses:
        sys.exit("%s: no training steps" % path)
    return losses, val, similarity


def main():
    work, dense_steps, short, long_ = sys.argv[1], *map(int, sys.argv[2:5])
    runs = ["dense"] + ["%s-%d" % (kind, steps) for steps in (short, long_)
                        for kind in ("scratch", "upcycled-lr1e-3",
                                     "upcycled-lr3e-4")]
    data = {run: read_run(os.path.join(work, run + ".jsonl")) for run in runs}

    with open(os.path.join(work, "upcycling.csv"), "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["run", "step", "tokens", "loss", "expert_similarity"])
        for run in runs:
            losses, _, similarity = data[run]
            measured = dict(similarity)
            for step, loss in losses:
                writer.writerow([run, step, step * TOKENS_PER_STEP, loss,
                                 measured.get(step, "")])

    figure, (loss_axes, sim_axes) = plt.subplots(1, 2, figsize=(12, 4.5))
    styles = {"dense": ("black", "-"), "scratch": ("tab:blue", "-"),
              "upcycled-lr1e-3": ("tab:red", "-"),
              "upcycled-lr3e-4": ("tab:orange", "-")}
    for run in runs:
        kind = run.rsplit("-", 1)[0] if run != "dense" else "dense"
        color, _ = styles[kind]
        dashed = run.endswith("-%d" % short)
        losses, _, similarity = data[run]
        tokens = [step * TOKENS_PER_STEP / 1e6 for step, _ in losses]
        label = ("dense (C = %d steps)" % dense_steps if run == "dense"
                 else "%s, %s" % (kind, "C/3" if dashed else "2C"))
        loss_axes.plot(tokens, smooth([loss for _, loss in losses]),
                       color=color, linestyle="--" if dashed else "-",
                       label=label)
        if similarity and run != "dense":
            sim_axes.plot([s * TOKENS_PER_STEP / 1e6 for s, _ in similarity],
                          [v for _, v in similarity], color=color,
                          linestyle="--" if dashed else "-", label=label)
    loss_axes.set(xlabel="tokens trained by this model (M)",
                  ylabel="training loss (moving average of 50 steps)",
                  ylim=(1.3, 2.6), title="loss")
    sim_axes.set(xlabel="tokens trained by this model (M)",
                 ylabel="mean pairwise cosine similarity of experts",
                 title="expert similarity (mean over layers)")
    loss_axes.legend(fontsize=8)
    sim_axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(os.path.join(work, "upcycling.png"), dpi=110)

    print("| Run | Steps | Validation loss (last) | Training loss (last 10%) "
          "| Expert similarity (first / last) |")
    print("| --- | --- | --- | --- | --- |")
    for run in runs:
        losses, val, similarity = data[run]
        tail = [loss for _, loss in losses[-max(1, len(losses) // 10):]]
        sim = ("%.3f / %.3f" % (similarity[0][1], similarity[-1][1])
               if similarity and run != "dense" else "-")
        print("| %s | %d | %.4f | %.4f | %s |" % (
            run, len(losses), val[-1][1] if val else float("nan"),
            sum(tail) / len(tail), sim))


if __name__ == "__main__":
    main()
