#!/usr/bin/env python3
"""The GPU checks of the compiled CUDA train step, in two halves.

`prepare` needs the toolchain (moe-import, moe-opt, moe-run and moe-compile
on PATH, nvcc), not a GPU: it writes into WORK/CASE the reference runs of
moe-run and the CUDA binaries. `check` needs a GPU and nothing of the
toolchain: it runs the prepared binaries and compares them with the
references. `run` does both. So the checks run where the toolchain is
(lit: test/Cuda/*.test) and on a GPU machine that has only a driver
(scripts/gpu-check.sh --prepare here, --run there), from one definition.
Without CASE arguments, every case. A failed case names its failed command
and log; the others still run, and the exit status is then non-zero.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
INPUTS = os.path.join(os.path.dirname(HERE), "Inputs")
SOURCE_ROOT = os.path.dirname(os.path.dirname(HERE))
TINY = os.path.join(SOURCE_ROOT, "examples", "tiny-moe", "config.json")
# Each command's limit: the tiny models' runs take seconds, memcheck's
# many times longer; the first failure's memcheck rerun says where, more
# would only spend a GPU machine's short lease (a systematic failure fails
# every case).
COMMAND_TIMEOUT_S, MEMCHECK_TIMEOUT_S, MEMCHECK_RERUNS = 120, 60, 1
# Under GPU_CHECK_DEADLINE, a command starts only with this much time left.
START_S = 10
memcheck_reruns = 0
# The binaries read the whole text (their own 90/10 train/validation
# split); moe-run reads the first 90%.
TEXT = "english.txt"


class Failure(Exception):
    pass


class TimedOut(Failure):
    """A command over its time limit: memcheck, many times slower, would
    not finish either."""


class Skipped(Exception):
    """A check that this machine cannot run (too few GPUs)."""


class OutOfTime(Exception):
    """A command that GPU_CHECK_DEADLINE leaves no time to start."""


class Case:
    """One folder of WORK: the commands run there, logged to its log.txt."""

    def __init__(self, work, name, target):
        self.work = work
        self.target = target
        self.dir = os.path.join(work, name)
        self.name = name
        os.makedirs(self.dir, exist_ok=True)
        self.log = os.path.join(self.dir, "log.txt")

    def path(self, name):
        return os.path.join(self.dir, name)

    def run(self, *args, env=None, timeout=COMMAND_TIMEOUT_S):
        """Runs args in the case's folder; returns stdout, fails on error."""
        command = [str(a) for a in args]
        timeout = seconds_left(timeout)
        if timeout < START_S:
            raise OutOfTime()
        with open(self.log, "a") as log:
            log.write("$ " + " ".join(command) + "\n")
            log.flush()
            try:
                result = subprocess.run(
                    command, cwd=self.dir, capture_output=True, text=True,
                    errors="replace", env=dict(os.environ, **(env or {})),
                    timeout=timeout)
            except OSError as error:
                raise Failure("%s: cannot run `%s`: %s" % (
                    self.name, " ".join(command), error.strerror))
            except subprocess.TimeoutExpired:
                raise TimedOut("%s: `%s` did not finish in %d s" % (
                    self.name, " ".join(command), timeout))
            log.write(result.stdout + result.stderr)
        if result.returncode != 0:
            tail = "\n".join(
                (result.stdout + result.stderr).splitlines()[-20:])
            raise Failure("%s: `%s` exited with %d (log: %s)\n%s" % (
                self.name, " ".join(command), result.returncode,
                os.path.relpath(self.log, self.work), tail))
        return result.stdout

    def python(self, script, *args):
        return self.run(sys.executable, os.path.join(INPUTS, script), *args)

    def compile(self, model, *args):
        """moe-compile for the case's target."""
        return self.run("moe-compile", model, "--target", self.target, *args)

    def train(self, binary, steps, *args, env=None, launcher=()):
        """Trains with `binary` (started by `launcher`, e.g. mpirun)."""
        command = ["./" + binary, "--data", TEXT, "--steps", steps,
                   "--sample-tokens", 0, "--eval-interval", 0, *args]
        try:
            return self.run(*launcher, *command, env=env)
        except Failure as failure:
            global memcheck_reruns
            sanitizer = compute_sanitizer() if self.target == "cuda" else None
            if not sanitizer or isinstance(failure, TimedOut) or \
                    memcheck_reruns >= MEMCHECK_RERUNS or \
                    seconds_left(2 * MEMCHECK_TIMEOUT_S) < 2 * MEMCHECK_TIMEOUT_S:
                raise
            memcheck_reruns += 1
            # memcheck names the kernel and source line of a bad access,
            # which the binary's own error (at the next synchronization)
            # cannot.
            try:
                self.run(*launcher, sanitizer, "--tool", "memcheck",
                         "--print-limit", 20, *command, env=env,
                         timeout=MEMCHECK_TIMEOUT_S)
            except Failure:
                pass
            raise Failure("%s\n(compute-sanitizer's memcheck reran it: see "
                          "the log)" % failure)


def seconds_left(most):
    """`most` seconds, or fewer (at least 1) where GPU_CHECK_DEADLINE (set
    by scripts/gpu-check.sh, in seconds since the epoch) comes sooner."""
    deadline = os.environ.get("GPU_CHECK_DEADLINE")
    if not deadline:
        return most
    return max(1, min(most, int(float(deadline) - time.time())))


def compute_sanitizer():
    """compute-sanitizer's path (on PATH or in the toolkit), or None."""
    for candidate in (shutil.which("compute-sanitizer"),
                      "/usr/local/cuda/bin/compute-sanitizer"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def remove(path):
    if os.path.exists(path):
        os.remove(path)


def read_if_present(path):
    return open(path).read() if os.path.exists(path) else ""


def prepare_text(case):
    shutil.copyfile(os.path.join(INPUTS, TEXT), case.path(TEXT))
    data = open(case.path(TEXT), "rb").read()
    open(case.path("train.txt"), "wb").write(data[:len(data) - len(data) // 10])


# The compared cases train a narrower and shallower tiny MoE (hidden 64 in 2
# heads, expert hidden 128, 2 layers): every kernel of the step runs, and
# the references that go to a GPU machine stay small (5.5 MB of parameters
# and Adam moments each, against 56 MB for the tiny MoE).
COMPACT = ["hidden_size=64", "num_attention_heads=2", "num_key_value_heads=2",
           "intermediate_size=128", "num_hidden_layers=2"]


def compact_config(case, name, *edits):
    """Writes the compact tiny MoE's config.json, with `edits`, as `name`."""
    open(case.path(name), "w").write(
        case.python("edit-json.py", TINY, *COMPACT, *edits))
    return name


def reference(case, config, passes, steps, prefix=""):
    """moe-run's steps of `config` (tiny: batch 2 x 32) after `passes`."""
    case.run("moe-import", config, "--batch-size", 2, "--seq-len", 32,
             "-o", prefix + "model.mlir")
    case.run("moe-opt", prefix + "model.mlir", *passes,
             "-o", prefix + "train.mlir")
    remove(case.path(prefix + "reference.jsonl"))  # moe-run appends
    case.run("moe-run", prefix + "train.mlir", "--entry", "train_step",
             "--steps", steps, "--seed", 5, "--data", "train.txt",
             "--data-seed", 5, "--save-params",
             prefix + "reference.safetensors", "--metrics",
             prefix + "reference.jsonl")


def compare(case, steps, binary, prefix, *tolerances, env=None, run=""):
    """The binary's steps (in environment `env`; its files named
    prefix + run) against moe-run's (prefix), as compare-runs.py says."""
    metrics = prefix + run + "metrics.jsonl"
    compiled = prefix + run + "compiled.safetensors"
    remove(case.path(metrics))  # the binary appends
    case.train(binary, steps, "--seed", 5, "--metrics", metrics,
               "--checkpoint", compiled, env=env)
    case.python("compare-runs.py", prefix + "reference.jsonl", metrics,
                prefix + "reference.safetensors", compiled, *tolerances)


def graph_replay(case, binary, steps):
    """Graph replay equals eager launches bit for bit: the same steps with
    every call eager (MOE_CUDA_GRAPHS=0) leave the same checkpoint, byte for
    byte, as the first call eager and the others replayed from a graph."""
    case.train(binary, steps, "--seed", 5, "--checkpoint",
               "graph.safetensors")
    case.train(binary, steps, "--seed", 5, "--checkpoint",
               "eager.safetensors", env={"MOE_CUDA_GRAPHS": "0"})
    if (open(case.path("graph.safetensors"), "rb").read() !=
            open(case.path("eager.safetensors"), "rb").read()):
        raise Failure("%s: graph replay and eager launches left different "
                      "checkpoints (graph.safetensors, eager.safetensors)" %
                      case.name)


# train-step: the compiled CUDA train step matches the reference
# interpreter for 3 AdamW steps of the compact MoE in f32 (every step's loss
# and metrics, every tensor of the final state within 1e-4 relative), as
# the C++ target does in Target/compiled-matches-interpreter.test; then the
# Skywork-MoE techniques (normalized gating, drops by probability at
# capacity 1.0, z-loss, adaptive aux coefficients), with Qwen2-MoE's gated
# shared expert (moe.sigmoid_scale) and YaRN's scaled RoPE over an original
# context of 8, over 5 steps; then graph
# replay against eager launches; DeepSeek-V3's routing (sigmoid scores, a
# balancing bias that moe-expert-bias moves) over 5 steps too. At a
# learning rate of 1e-2 (the C++
# target's test) Adam's first steps move each weight of the compact model by
# half its initial scale, which turns f32 summation-order differences
# into up to 2.2e-4 between the C++ target and the interpreter (Skywork, 5
# steps); at 1e-3 they stay under 1e-5, and a wrong gradient still moves
# the Adam moments far past the tolerance. Then the same for gradient
# accumulation (2 micro-batches a step: the fused loops that update the
# sums in place, and the micro step's own graph); muP's multipliers
# (Granite's keys: moe.scale as a kernel and in fused loops) with attention
# within a sliding window of 12 of the 32 positions; and
# DeepSeek-V3's multi-head latent attention (moe.slice, moe.pad, moe.concat
# and its gradient), 3 steps each.
F32_OPTIMIZER = "lr=1e-3 warmup-steps=1 decay-steps=10"
ADAPTIVE = "xi=1.0 initial-alpha=0.001"


def prepare_train_step(case):
    prepare_text(case)
    reference(case, compact_config(case, "config.json"),
              ["--moe-autodiff", "--moe-optimizer=" + F32_OPTIMIZER], 3)
    case.compile("model.mlir", "--optimizer", F32_OPTIMIZER, "-o",
                 "train-bin")
    compact_config(case, "skywork.json", "moe_gate_norm_lambda=1.0",
                   "moe_capacity_factor=1.0", 'moe_drop_policy="probability"',
                   "router_z_loss_coef=0.001",
                   "shared_expert_intermediate_size=64",
                   'rope_scaling={"rope_type": "yarn", "factor": 4.0, '
                   '"original_max_position_embeddings": 8, "beta_fast": 8}')
    reference(case, "skywork.json",
              ["--moe-fuse-router", "--moe-autodiff",
               "--moe-adaptive-aux=" + ADAPTIVE,
               "--moe-optimizer=" + F32_OPTIMIZER], 5, "skywork.")
    case.compile("skywork.json", "--batch-size", 2, "--seq-len", 32,
                 "--adaptive-aux=" + ADAPTIVE, "--optimizer", F32_OPTIMIZER,
                 "-o", "skywork-bin")
    compact_config(case, "deepseek.json",
                   'moe_router_score_function="sigmoid"',
                   "moe_router_enable_expert_bias=true")
    reference(case, "deepseek.json",
              ["--moe-autodiff", "--moe-expert-bias=rate=0.01",
               "--moe-optimizer=" + F32_OPTIMIZER], 5, "deepseek.")
    case.compile("deepseek.json", "--batch-size", 2, "--seq-len", 32,
                 "--expert-bias-rate", 0.01, "--optimizer", F32_OPTIMIZER,
                 "-o", "deepseek-bin")
    reference(case, "skywork.json",
              ["--moe-fuse-router", "--moe-autodiff",
               "--moe-adaptive-aux=" + ADAPTIVE,
               "--moe-optimizer=" + F32_OPTIMIZER,
               "--moe-accumulate-gradients=micro-batches=2"], 3, "micro.")
    case.compile("skywork.json", "--batch-size", 2, "--seq-len", 32,
                 "--adaptive-aux=" + ADAPTIVE, "--optimizer", F32_OPTIMIZER,
                 "--micro-batches", 2, "-o", "micro-bin")
    # Our keys (transformers' Mixtral, the tiny model's model_type, has
    # neither multipliers nor a latent attention).
    compact_config(case, "mup.json", "-model_type", "-architectures",
                   "embedding_multiplier=4.0", "attention_multiplier=0.1",
                   "residual_multiplier=0.5", "logits_scaling=3.0",
                   "sliding_window=12")
    compact_config(case, "mla.json", "-model_type", "-architectures",
                   "q_lora_rank=24", "kv_lora_rank=16", "qk_nope_head_dim=24",
                   "qk_rope_head_dim=8", "v_head_dim=16", "rope_interleave=true")
    for name in ("mup", "mla"):
        reference(case, name + ".json",
                  ["--moe-autodiff", "--moe-optimizer=" + F32_OPTIMIZER], 3,
                  name + ".")
        case.compile(name + ".json", "--batch-size", 2, "--seq-len", 32,
                     "--optimizer", F32_OPTIMIZER, "-o", name + "-bin")


def check_train_step(case):
    compare(case, 3, "train-bin", "", 1e-4)
    compare(case, 5, "skywork-bin", "skywork.", 1e-4)
    compare(case, 5, "deepseek-bin", "deepseek.", 1e-4)
    compare(case, 3, "micro-bin", "micro.", 1e-4)
    compare(case, 3, "mup-bin", "mup.", 1e-4)
    compare(case, 3, "mla-bin", "mla.", 1e-4)
    graph_replay(case, "train-bin", 5)
    graph_replay(case, "micro-bin", 4)


# train-step-bf16: the compiled CUDA bf16 mixed-precision train step
# matches the reference interpreter on the same mixed-precision IR for 3
# AdamW steps, with the tolerances of the C++ target's bf16 test
# (Target/compiled-matches-interpreter-bf16.test, which says why they are
# wider than f32's): losses within 1e-3, drop counts and expert loads
# equal, the aux losses, the other metrics and the final state within 2e-2.
# Unlike the C++ target's, whose kernels sum as the interpreter's do but
# for oneDNN's GEMMs, cuBLAS and the CUDA kernels sum everything in other
# orders, and bf16 rounding makes that a routing flip now and then (the
# first H200 run: layer 1 dropped 35 tokens at step 1, the interpreter
# 34, and that layer's Adam moments ended up to 4.5e-2 apart): a layer
# that flips is reported and held to 1e-1 (compare-runs.py
# --flipped-rtol), the others to the tolerances above. The 3 steps run
# again with the experts' GEMMs on cuBLAS over whole capacities
# (MOE_CUDA_GROUPED_GEMM=cublas: the empty rows' products, which nothing
# may read, are computed, and the weight gradients sum rows zeroed past
# the counts), and on an sm_90 GPU with them on
# the wgmma kernel fed by TMA (=wgmma.tma) and with attention on wgmma
# (MOE_CUDA_ATTENTION=wgmma), each to the same tolerances.
BF16_OPTIMIZER = "lr=1e-5 min-lr=1e-6 warmup-steps=1 decay-steps=10"


def prepare_train_step_bf16(case):
    prepare_text(case)
    reference(case, compact_config(case, "config.json"),
              ["--moe-autodiff", "--moe-mixed-precision",
               "--moe-optimizer=" + BF16_OPTIMIZER], 3)
    # Not vacuous: tokens were dropped.
    dropped = sum(v for line in open(case.path("reference.jsonl"))
                  for k, v in json.loads(line).items()
                  if k.endswith(".dropped"))
    if dropped <= 0:
        raise Failure("%s: the reference dropped no token" % case.name)
    case.compile("model.mlir", "--precision", "bf16", "--optimizer",
                 BF16_OPTIMIZER, "-o", "train-bin")


def check_train_step_bf16(case):
    tolerances = (2e-2, "aux_loss=2e-2", "loss=1e-3", "--flipped-rtol=1e-1")
    compare(case, 3, "train-bin", "", *tolerances)
    graph_replay(case, "train-bin", 4)
    if case.target != "cuda":
        return
    variants = [("cublas.", {"MOE_CUDA_GROUPED_GEMM": "cublas"})]
    if compute_capability() == "9.0":
        variants += [("tma.", {"MOE_CUDA_GROUPED_GEMM": "wgmma.tma"}),
                     ("wgmma-attention.", {"MOE_CUDA_ATTENTION": "wgmma"})]
    for run, env in variants:
        compare(case, 3, "train-bin", "", *tolerances, run=run, env=env)


# profile: moe-compile --target cuda --profile times every kernel call with
# CUDA events around its launches (a profiled function runs eagerly, not as
# a graph, and waits for its kernels) and reports as the C++ target does
# (Target/profile.test, whose checks of the metrics record this shares), in
# f32 and in bf16, where the tensor-core kernels are timed too.
NUMBER = r"[0-9.]+"


def expect(case, output, *patterns):
    for pattern in patterns:
        if not re.search(pattern, output, re.MULTILINE):
            raise Failure("%s: no line matches %r in the output:\n%s" % (
                case.name, pattern, output))


def kernel_row(kernel, calls=r"[0-9]+"):
    """A row of the profile's table: kernel, calls, ms/step, share, GFLOP/s
    and GB/s, in columns."""
    return r"^%s +%s +%s +%s%% +%s +%s$" % (kernel, calls, NUMBER, NUMBER,
                                            NUMBER, NUMBER)


def prepare_profile(case):
    prepare_text(case)
    case.run("moe-import", TINY, "--batch-size", 2, "--seq-len", 32,
             "-o", "model.mlir")
    case.compile("model.mlir", "--profile", "-o", "train-bin")
    case.compile("model.mlir", "--precision", "bf16", "--profile", "-o",
                 "bf16-bin")


def check_profile(case):
    remove(case.path("metrics.jsonl"))
    output = case.train("train-bin", 3, "--metrics", "metrics.jsonl")
    expect(case, output, r"step +3/3",
           r"^profile of train_step over 2 steps \(the first one left out\): "
           r"[0-9.]+ ms/step, [0-9.]+ ms of it in [0-9]+ kernel calls\n"
           r"^kernel +calls +ms/step +share +GFLOP/s +GB/s$",
           kernel_row("attention", 4), kernel_row("attentionGrad", 4),
           kernel_row("expertFfnGrad", 4))
    case.run(sys.executable, os.path.join(HERE, "..", "Target",
                                          "profile.test.py"), "metrics.jsonl")
    output = case.train("bf16-bin", 2)
    expect(case, output,
           r"^profile of train_step over 1 step \(the first one left out\)",
           kernel_row("attention", 4), kernel_row("convert"))


# expert-parallel: the compact MoE (batch 4 x 32, capacity factor 1.0 so
# that tokens are dropped, gating logit normalization, adaptive aux
# coefficients) trained by 2 ranks, one GPU each (NCCL's all-to-all and
# all-reduce inside the step's graph), as by 1 for 10 steps, and by 2 ranks
# that each hold every expert (a [2, 1] grid: the communicators that NCCL
# splits per grid axis), also with the distributed optimizer (NCCL's
# reduce-scatter and all-gather around the update): every step's
# results within 1e-4 relative (the adaptive coefficients 1e-6), drop
# counts and expert loads equal, and the final checkpoints (gathered by
# rank 0), as Target/expert-parallel-binary.test checks the C++ target's
# MPI ranks. NCCL takes one GPU per rank: a machine with fewer than 2
# skips it.
PARALLEL_OPTIONS = ["--batch-size", 4, "--seq-len", 32, "--gate-norm", 1,
                    "--adaptive-aux=xi=1 alpha-max=1", "--optimizer",
                    "lr=1e-3 warmup-steps=2 decay-steps=40"]


def prepare_expert_parallel(case):
    prepare_text(case)
    # The binaries link this machine's MPI, whose mpirun must start them.
    open(case.path("mpirun-version.txt"), "w").write(mpirun_version())
    compact_config(case, "config.json", "moe_capacity_factor=1.0")
    case.compile("config.json", *PARALLEL_OPTIONS, "-o", "p1-bin")
    case.compile("config.json", *PARALLEL_OPTIONS, "--expert-parallel", 2,
                 "-o", "p2-bin")
    case.compile("config.json", *PARALLEL_OPTIONS, "--expert-parallel", 2,
                 "--expert-ranks", 1, "-o", "p2x1-bin")
    case.compile("config.json", *PARALLEL_OPTIONS, "--expert-parallel", 2,
                 "--expert-ranks", 1, "--distributed-optimizer", "-o",
                 "p2x1-zero-bin")


def mpirun(ranks):
    """The command that starts `ranks` processes here, or None."""
    found = shutil.which("mpirun")
    if not found:
        return None
    command = [found, "-np", ranks, "--oversubscribe", "--bind-to", "none"]
    if os.geteuid() == 0:
        command.append("--allow-run-as-root")
    return command


def mpirun_version():
    """The first line of `mpirun --version` ("mpirun (Open MPI) 4.1.4"),
    or "" without an mpirun."""
    found = shutil.which("mpirun")
    if not found:
        return ""
    try:
        output = subprocess.run([found, "--version"], capture_output=True,
                                text=True, errors="replace",
                                timeout=seconds_left(30)).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (output.splitlines() or [""])[0].strip()


def compute_capability():
    """The first GPU's compute capability ("9.0"), or "" where nvidia-smi
    does not say."""
    try:
        output = subprocess.run(["nvidia-smi", "--query-gpu=compute_cap",
                                 "--format=csv,noheader"],
                                capture_output=True, text=True).stdout
    except OSError:
        return ""
    return (output.split() or [""])[0]


def gpu_count():
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True,
                                 text=True).stdout
    except OSError:
        return 0
    return sum(line.startswith("GPU ") for line in listing.splitlines())


def check_expert_parallel(case):
    launcher = mpirun(2)
    if not launcher:
        raise Skipped("no mpirun here")
    if case.target == "cuda" and gpu_count() < 2:
        raise Skipped("NCCL needs a GPU per rank, and this machine has %d" %
                      gpu_count())
    # A bundle carries the MPI library it was built with, not the MPI
    # installation (its components and launcher) that it needs around it.
    built = read_if_present(case.path("mpirun-version.txt")).strip()
    here = mpirun_version()
    if built and here != built:
        raise Skipped("the binaries were built with %s, and this machine "
                      "has %s" % (built, here or "no mpirun"))
    for name in ("p1", "p2", "p2x1", "p2x1-zero"):
        remove(case.path(name + ".jsonl"))
    case.train("p1-bin", 10, "--metrics", "p1.jsonl", "--checkpoint",
               "p1.safetensors")
    for name in ("p2", "p2x1", "p2x1-zero"):
        output = case.train(name + "-bin", 10, "--metrics", name + ".jsonl",
                            "--checkpoint", name + ".safetensors",
                            launcher=launcher)
        case.python("compare-runs.py", "p1.jsonl", name + ".jsonl",
                    "p1.safetensors", name + ".safetensors", 1e-4,
                    "aux_loss_coeff=1e-6")
    # The host times MPI's collectives; NCCL's run inside the step's graph.
    expect(case, output, COLLECTIVE_TIME[case.target])


COLLECTIVE_TIME = {
    "cpu": r"^%s s of %s s of training steps in collectives$" % (NUMBER,
                                                                 NUMBER),
    "cuda": r"^%s s of training steps; this target does not time its "
            r"collectives apart" % NUMBER,
}


CASES = {
    "train-step": (prepare_train_step, check_train_step),
    "train-step-bf16": (prepare_train_step_bf16, check_train_step_bf16),
    "profile": (prepare_profile, check_profile),
    "expert-parallel": (prepare_expert_parallel, check_expert_parallel),
}


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("mode", choices=("prepare", "check", "run"))
    parser.add_argument("work")
    parser.add_argument("cases", nargs="*", metavar="CASE",
                        help="of: " + ", ".join(CASES))
    parser.add_argument("--target", choices=("cuda", "cpu"), default="cuda",
                        help="what prepare compiles for (cpu: the C++ "
                        "target, which tests the checks without a GPU)")
    parser.add_argument("--results", metavar="FILE",
                        help="also write {case: {status, seconds}} here")
    args = parser.parse_args()
    unknown = [n for n in args.cases if n not in CASES]
    if unknown:
        parser.error("unknown case %s" % ", ".join(unknown))
    results = {}
    # Every case runs, also after one failed: a GPU machine's time is short.
    for name in args.cases or list(CASES):
        prepare, check = CASES[name]
        case = Case(args.work, name, args.target)
        start = time.time()
        try:
            if args.mode in ("prepare", "run"):
                prepare(case)
            if args.mode in ("check", "run"):
                check(case)
            status = "prepared" if args.mode == "prepare" else "passed"
        except Failure as failure:
            print("gpu_cases.py: error: %s" % failure, file=sys.stderr)
            status = "failed: " + str(failure).splitlines()[0]
        except Skipped as reason:
            status = "skipped: %s" % reason
        except OutOfTime:
            status = "not run (out of time)"
        except Exception as error:  # a bug here must not hide the others
            print("gpu_cases.py: error: %s: %r" % (name, error),
                  file=sys.stderr)
            status = "failed: %s: %r" % (name, error)
        results[name] = {"status": status,
                         "seconds": round(time.time() - start, 1)}
        print("%s: %s" % (name, status))
        if args.results:  # after each case, for a run cut short
            json.dump(results, open(args.results, "w"), indent=1)
    sys.exit(0 if all(r["status"].startswith(("passed", "prepared",
                                              "skipped"))
                      for r in results.values()) else 1)


if __name__ == "__main__":
    main()
