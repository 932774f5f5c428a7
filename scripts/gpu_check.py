#!/usr/bin/env python3
"""The Python half of scripts/gpu-check.sh.

usage: gpu_check.py kernel-tests BINARY RESULTS.json LOG_DIR JOBS
       gpu_check.py report REPORT_DIR BUILD_S PREPARE_S TESTS_S BENCH_S

kernel-tests runs every test of a gtest BINARY in a process of its own
(as ctest does: a test that leaves the device unusable fails alone), JOBS at
a time, with MOE_REQUIRE_GPU=1 (no usable GPU fails, not skips), and
writes {test: {"status", "seconds"}} to RESULTS.json; it exits non-zero
when a test failed. report writes REPORT_DIR/report.md from the results
found there (kernel-tests.json, cases.json, benchmark/gpu-train.md) and
prints it.
"""
import concurrent.futures
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "test", "Cuda"))
from gpu_cases import compute_sanitizer  # noqa: E402

TEST_TIMEOUT_S = 300


def list_tests(binary):
    listing = subprocess.run([binary, "--gtest_list_tests"], check=True,
                             capture_output=True, text=True).stdout
    tests, suite = [], None
    for line in listing.splitlines():
        if not line.strip():
            continue
        if not line.startswith(" "):
            suite = line.split()[0]
        else:
            tests.append(suite + line.split()[0])
    return tests


def run_logged(command, log):
    """Runs command with its output in log; returns a status."""
    env = dict(os.environ, MOE_REQUIRE_GPU="1")
    try:
        with open(log, "w") as out:
            code = subprocess.run(command, stdout=out,
                                  stderr=subprocess.STDOUT, env=env,
                                  timeout=TEST_TIMEOUT_S).returncode
        return "passed" if code == 0 else "failed (exit %d)" % code
    except subprocess.TimeoutExpired:
        return "failed (over %d s)" % TEST_TIMEOUT_S


def run_test(binary, test, log_dir):
    start = time.time()
    command = [binary, "--gtest_filter=" + test]
    status = run_logged(command, os.path.join(log_dir, test + ".log"))
    sanitizer = compute_sanitizer()
    if status != "passed" and sanitizer:
        # memcheck names the kernel and source line of a bad access.
        run_logged([sanitizer, "--tool", "memcheck", "--print-limit", "20"] +
                   command, os.path.join(log_dir, test + ".memcheck.log"))
        status += "; compute-sanitizer memcheck: %s.memcheck.log" % test
    return test, {"status": status, "seconds": round(time.time() - start, 1)}


def kernel_tests(binary, results_path, log_dir, jobs):
    os.makedirs(log_dir, exist_ok=True)
    tests = list_tests(binary)
    if not tests:
        sys.exit("gpu_check.py: error: %s lists no tests" % binary)
    with concurrent.futures.ThreadPoolExecutor(int(jobs)) as pool:
        results = dict(pool.map(lambda t: run_test(binary, t, log_dir),
                                tests))
    json.dump(results, open(results_path, "w"), indent=1)
    failed = [t for t, r in results.items() if r["status"] != "passed"]
    print("%d kernel tests, %d failed%s" % (len(results), len(failed),
                                             ": " + ", ".join(failed)
                                             if failed else ""))
    sys.exit(1 if failed else 0)


def load(path):
    try:
        return json.load(open(path))
    except (OSError, ValueError) as error:
        return error


def report(report_dir, build_s, prepare_s, tests_s, bench_s):
    lines = ["# gpu-check report", ""]
    lines.append(subprocess.run(
        ["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
         "--format=csv,noheader"], capture_output=True, text=True).stdout
        .strip())
    lines.append("build %s s, prepare %s s, tests %s s, benchmark %s" % (
        build_s, prepare_s, tests_s,
        bench_s if not bench_s.isdigit() else bench_s + " s"))
    verdicts = []
    for title, name, log in (
            ("Kernel tests (every CUDA kernel against the CPU's)",
             "kernel-tests.json", "kernel-tests/"),
            ("Train-step cases (test/Cuda/gpu_cases.py)", "cases.json",
             "cases.log and cases/")):
        lines += ["", "## " + title, ""]
        results = load(os.path.join(report_dir, name))
        if isinstance(results, Exception):
            lines.append("no results: %s (see %s)" % (results, log))
            verdicts.append("not run")
            continue
        for test, result in results.items():
            lines.append("- %s: %s (%ss)" % (test, result["status"],
                                             result["seconds"]))
        counts = {verdict: sum(r["status"].startswith(verdict)
                               for r in results.values())
                  for verdict in ("passed", "skipped", "failed")}
        verdicts.append("%(passed)d passed, %(skipped)d skipped, "
                        "%(failed)d failed" % counts)
    lines += ["", "## Benchmark", ""]
    md = os.path.join(report_dir, "benchmark", "gpu-train.md")
    lines.append(open(md).read().strip() if os.path.exists(md)
                 else "no benchmark results (see benchmark.log)")
    lines += ["", "kernel tests: %s; cases: %s" % tuple(verdicts)]
    open(os.path.join(report_dir, "report.md"), "w").write(
        "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    commands = {"kernel-tests": (kernel_tests, 4), "report": (report, 5)}
    if len(sys.argv) < 2 or sys.argv[1] not in commands or \
            len(sys.argv) != 2 + commands[sys.argv[1]][1]:
        sys.exit(__doc__)
    commands[sys.argv[1]][0](*sys.argv[2:])
