#!/usr/bin/env python3
"""Checks a training binary's progress lines against its metrics file.

usage: check-progress-log.py STDOUT METRICS.jsonl COST SEQUENCES_PER_STEP
                             SEQ_LEN INTERVAL

STDOUT is the run's output (started at step 0), METRICS.jsonl its
--metrics, COST moe-cost-model's report of the same model and batch.
Every INTERVAL steps, and at the last, a progress line must show the means
of the steps since the line before: the loss, the aux loss and drop rate
(over MoE layers), the step time, tokens and model FLOPs a second; and the
last step's learning rate and gradient norm; each MoE layer's line its
drop rate and loads, means too, and the last step's coefficient. Every
step's metrics must hold the cost model's model FLOPs (GEMMs and
attention) over its time, the samples consumed so far and the time.
"""
import json
import re
import statistics
import sys
import time

out_path, metrics_path, cost_path, sequences, seq_len, interval = sys.argv[1:7]
sequences, seq_len, interval = int(sequences), int(seq_len), int(interval)
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)


def near(printed, value, digits):
    """Whether `printed` (a number with `digits` decimals) shows `value`."""
    return abs(printed - value) <= 0.5 * 10 ** -digits * (1 + 1e-6)


cost = open(cost_path).read()
flops = sum(int(g) + int(a) for g, a in re.findall(
    r" (?:forward|backward): gemm (\d+) flops, attention (\d+) flops", cost))
check(flops > 0, "no model flops in the cost report")

steps = [json.loads(line) for line in open(metrics_path)
         if '"step_seconds"' in line]
check([s["step"] for s in steps] == list(range(1, len(steps) + 1)),
      "the metrics' steps are not 1, 2, ...")
for s in steps:
    check(abs(s["model_flops_per_second"] * s["step_seconds"] - flops)
          <= 1e-9 * flops,
          f"step {s['step']}: model FLOPs "
          f"{s['model_flops_per_second'] * s['step_seconds']:.6g}, "
          f"the cost model {flops}")
    check(s["consumed_samples"] == s["step"] * sequences,
          f"step {s['step']}: {s['consumed_samples']} samples consumed")
    check(abs(s["time"] - time.time()) < 3600,
          f"step {s['step']}: time {s['time']} is not now")
check(all(a["time"] <= b["time"] for a, b in zip(steps, steps[1:])),
      "the steps' times go back")

NUMBER = r"([0-9.e+-]+)"
PROGRESS = re.compile(
    rf"step +(\d+)/(\d+) \| loss {NUMBER}(?: \| aux {NUMBER})?"
    rf"(?: \| drop {NUMBER}%)? \| lr {NUMBER} \| grad norm {NUMBER} \| "
    rf"{NUMBER} ms/step \| {NUMBER}k tok/s \| {NUMBER} ([GT])FLOP/s \| ETA ")
lines = open(out_path).read().splitlines()
shown = [(i, PROGRESS.match(line)) for i, line in enumerate(lines)]
shown = [(i, m) for i, m in shown if m]
last = len(steps)
expected = list(range(interval, last + 1, interval))
if not expected or expected[-1] != last:
    expected.append(last)
check([int(m.group(1)) for _, m in shown] == expected,
      f"progress lines at steps {[int(m.group(1)) for _, m in shown]}, "
      f"not {expected}")

# The last step's values are not the interval's means: so each shows.
distinct = {"lr": False, "grad_norm": False, "aux_loss_coeff": False}
first = 1
for index, m in shown:
    step = int(m.group(1))
    window = steps[first - 1:step]
    at = f"step {step}"
    mean = lambda key: statistics.fmean(s[key] for s in window)
    layer_keys = sorted({k for k in window[-1]
                         if k.endswith(".block_sparse_moe.drop_rate")})
    layer_mean = lambda metric: statistics.fmean(
        s[k.replace("drop_rate", metric)] for s in window for k in layer_keys)
    check(near(float(m.group(3)), mean("lm_loss"), 4),
          f"{at}: loss {m.group(3)}, the interval's mean {mean('lm_loss')}")
    if m.group(4) is not None:
        check(abs(float(m.group(4)) - layer_mean("aux_loss"))
              <= 5e-4 * layer_mean("aux_loss"), f"{at}: aux {m.group(4)}")
    check(m.group(5) is not None and layer_keys, f"{at}: no drop rate")
    if m.group(5) is not None:
        check(near(float(m.group(5)), 100 * layer_mean("drop_rate"), 2),
              f"{at}: drop {m.group(5)}%")
    for key in ("lr", "grad_norm"):
        distinct[key] |= abs(mean(key) - window[-1][key]) > 0.01 * window[-1][key]
    check(abs(float(m.group(6)) - window[-1]["lr"])
          <= 5e-3 * window[-1]["lr"], f"{at}: lr {m.group(6)}, not the last")
    check(near(float(m.group(7)), window[-1]["grad_norm"], 3),
          f"{at}: grad norm {m.group(7)}, not the last step's")
    seconds = mean("step_seconds")
    check(near(float(m.group(8)), 1e3 * seconds, 1),
          f"{at}: {m.group(8)} ms/step, the mean {1e3 * seconds}")
    tokens = sequences * seq_len / seconds / 1e3
    check(near(float(m.group(9)), tokens, 1),
          f"{at}: {m.group(9)}k tok/s, not {tokens}")
    rate = flops / seconds / (1e12 if m.group(11) == "T" else 1e9)
    check(near(float(m.group(10)), rate, 1),
          f"{at}: {m.group(10)} {m.group(11)}FLOP/s, not {rate}")
    # The layers' lines follow, in order.
    for layer, key in enumerate(layer_keys):
        row = lines[index + 1 + layer]
        prefix = key[:-len("drop_rate")]
        drop = re.search(rf"layer +{layer} \| drop +{NUMBER}%", row)
        check(drop and near(float(drop.group(1)), 100 * statistics.fmean(
            s[key] for s in window), 2), f"{at}: {row}")
        alpha = re.search(rf"alpha {NUMBER}", row)
        alphas = [s[prefix + "aux_loss_coeff"] for s in window
                  if prefix + "aux_loss_coeff" in s]
        if alphas:
            distinct["aux_loss_coeff"] |= (
                abs(statistics.fmean(alphas) - alphas[-1]) > 0.01 * alphas[-1])
            check(alpha, f"{at}: no alpha: {row}")
        if alpha:
            check(abs(float(alpha.group(1)) - window[-1][prefix + "aux_loss_coeff"])
                  <= 5e-4 * window[-1][prefix + "aux_loss_coeff"],
                  f"{at}: alpha not the last step's: {row}")
        load = re.search(r"\| load ([0-9 ]+)$", row)
        loads = [statistics.fmean(s[prefix + "expert_load"][e] for s in window)
                 for e in range(len(window[-1][prefix + "expert_load"]))]
        check(load and len(load.group(1).split()) == len(loads) and all(
            near(int(x), mean, 0) for x, mean in zip(load.group(1).split(), loads)),
            f"{at}: loads {row}, not {loads}")
    first = step + 1

check(all(distinct.values()),
      f"no interval whose last value is not its mean: {distinct}")
if failures:
    sys.exit("\n".join(failures))
print(f"{len(shown)} progress lines over {len(steps)} steps agree with the "
      f"metrics; {flops} model FLOPs a step")
