#!/usr/bin/env python3
"""The Python half of scripts/gpu-check.sh.

usage: gpu_check.py kernel-tests BINARY RESULTS.json LOG_DIR JOBS
       gpu_check.py report REPORT_DIR TIMES BENCHMARK_STATUS
       gpu_check.py find-libraries NAME...

kernel-tests runs every test of a gtest BINARY in a process of its own
(as ctest does: a test that leaves the device unusable fails alone), JOBS at
a time, with MOE_REQUIRE_GPU=1 (no usable GPU fails, not skips; a test that
does not apply to this GPU still skips), and
writes {test: {"status", "seconds"}} to RESULTS.json; the first failures
run again under compute-sanitizer's memcheck where there is one. It exits
non-zero when a test failed. report writes REPORT_DIR/report.md from the
results found there (kernel-tests.json, cases.json, benchmark/gpu-train.md),
TIMES (what took how long) and BENCHMARK_STATUS, and prints it.
find-libraries prints "NAME PATH" for each file of one of these names
under the places a GPU machine keeps CUDA's libraries (its toolkit,
PyTorch's pip packages, /opt, /usr/lib), the likeliest places first.
"""
import concurrent.futures
import json
import os
import site
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "test", "Cuda"))
from gpu_cases import START_S, compute_sanitizer, seconds_left  # noqa

# A kernel test takes seconds. memcheck runs kernels many times slower: the
# first failures say where, a failure of every test (a broken installation)
# would take hours. Under GPU_CHECK_DEADLINE, a test starts only with
# START_S seconds left.
TEST_TIMEOUT_S = 120
MEMCHECK_RERUNS, MEMCHECK_TIMEOUT_S = 2, 60


def list_tests(binary):
    try:
        listing = subprocess.run([binary, "--gtest_list_tests"], check=True,
                                 capture_output=True, text=True,
                                 errors="replace").stdout
    except (OSError, subprocess.CalledProcessError) as error:
        sys.exit("gpu_check.py: error: cannot list the tests of %s: %s%s" % (
            binary, error, "\n" + error.stderr
            if getattr(error, "stderr", None) else ""))
    tests, suite = [], None
    for line in listing.splitlines():
        if not line.strip() or line.startswith("Running main()"):
            continue
        if not line.startswith(" "):
            suite = line.split()[0]
        else:
            tests.append(suite + line.split()[0])
    return tests


def run_logged(command, log, timeout):
    """Runs command with its output in log; returns a status."""
    env = dict(os.environ, MOE_REQUIRE_GPU="1")
    try:
        with open(log, "w") as out:
            code = subprocess.run(command, stdout=out,
                                  stderr=subprocess.STDOUT, env=env,
                                  timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        return "failed (over %d s)" % timeout
    if code != 0:
        return "failed (exit %d)" % code
    # A filter that matched nothing also exits 0. A test that does not
    # apply to this GPU (GTEST_SKIP) counts as skipped, not as passed.
    output = open(log, errors="replace").read()
    if "[  SKIPPED ] 1 test" in output:
        return "skipped"
    if "[  PASSED  ] 1 test." not in output:
        return "failed (ran no test)"
    return "passed"


class KernelTests:
    def __init__(self, binary, log_dir):
        self.binary, self.log_dir = binary, log_dir
        self.sanitizer = compute_sanitizer()
        self.reruns = 0
        self.lock = threading.Lock()

    def run(self, test):
        start = time.time()
        if seconds_left(START_S) < START_S:
            return test, {"status": "not run (out of time)", "seconds": 0}
        command = [self.binary, "--gtest_filter=" + test]
        status = run_logged(command, os.path.join(self.log_dir,
                                                  test + ".log"),
                            seconds_left(TEST_TIMEOUT_S))
        # memcheck, many times slower, would not finish a test that timed
        # out.
        if status.startswith("failed (exit") and self.take_rerun():
            # memcheck names the kernel and source line of a bad access.
            run_logged([self.sanitizer, "--tool", "memcheck",
                        "--print-limit", "20"] + command,
                       os.path.join(self.log_dir, test + ".memcheck.log"),
                       MEMCHECK_TIMEOUT_S)
            status += "; compute-sanitizer memcheck: %s.memcheck.log" % test
        return test, {"status": status,
                      "seconds": round(time.time() - start, 1)}

    def take_rerun(self):
        with self.lock:
            if not self.sanitizer or self.reruns >= MEMCHECK_RERUNS or \
                    seconds_left(2 * MEMCHECK_TIMEOUT_S) < \
                    2 * MEMCHECK_TIMEOUT_S:
                return False
            self.reruns += 1
            return True


def kernel_tests(binary, results_path, log_dir, jobs):
    os.makedirs(log_dir, exist_ok=True)
    tests = list_tests(binary)
    if not tests:
        sys.exit("gpu_check.py: error: %s lists no tests" % binary)
    runner = KernelTests(binary, log_dir)
    with concurrent.futures.ThreadPoolExecutor(int(jobs)) as pool:
        results = dict(pool.map(runner.run, tests))
    json.dump(results, open(results_path, "w"), indent=1)
    failed = [t for t, r in results.items()
              if r["status"] not in ("passed", "skipped")]
    print("%d kernel tests, %d failed%s" % (len(results), len(failed),
                                             ": " + ", ".join(failed)
                                             if failed else ""))
    sys.exit(1 if failed else 0)


def find_libraries(*names):
    roots = ["/usr/local"] + site.getsitepackages() + [
        site.getusersitepackages(), sys.prefix, "/opt", "/usr/lib",
        "/usr/lib64"]
    roots = list(dict.fromkeys(os.path.realpath(r) for r in roots
                               if os.path.isdir(r)))

    def rank(path):
        """The first root holding path (roots nest: /opt holds a venv)."""
        return next(i for i, root in enumerate(roots)
                    if path.startswith(root.rstrip("/") + "/"))
    # One walk over the outermost roots, however they nest: the trees of
    # PyTorch's packages are large, and walked once.
    outermost = [r for r in roots if not any(
        r != o and r.startswith(o.rstrip("/") + "/") for o in roots)]
    pattern = []
    for name in names:
        pattern += ["-o", "-name", name]
    found = subprocess.run(["find"] + outermost + ["("] + pattern[1:] +
                           [")"], capture_output=True, text=True,
                           errors="replace").stdout.splitlines()
    for path in sorted(found, key=lambda p: (names.index(
            os.path.basename(p)), rank(p))):
        print(os.path.basename(path), path)


def load(path):
    try:
        return json.load(open(path))
    except (OSError, ValueError) as error:
        return error


def report(report_dir, times, benchmark_status):
    lines = ["# gpu-check report", ""]
    lines.append(subprocess.run(
        ["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
         "--format=csv,noheader"], capture_output=True, text=True).stdout
        .strip())
    environment = os.path.join(report_dir, "environment.txt")
    if os.path.exists(environment):
        lines.append(open(environment).read().strip())
    lines.append(times)
    verdicts = []
    for title, name, log in (
            ("Kernel tests (every CUDA kernel against the CPU's)",
             "kernel-tests.json", "kernel-tests.log and kernel-tests/"),
            ("Train-step cases (test/Cuda/gpu_cases.py)", "cases.json",
             "cases.log and cases/")):
        lines += ["", "## " + title, ""]
        results = load(os.path.join(report_dir, name))
        if isinstance(results, Exception):
            lines.append("no results (see %s)" % log)
            verdicts.append("not run")
            continue
        for test, result in results.items():
            lines.append("- %s: %s (%ss)" % (test, result["status"],
                                             result["seconds"]))
        counts = {verdict: sum(r["status"].startswith(verdict)
                               for r in results.values())
                  for verdict in ("passed", "skipped", "failed", "not run")}
        verdicts.append("%(passed)d passed, %(skipped)d skipped, "
                        "%(failed)d failed, %(not run)d not run" % counts)
    lines += ["", "## Benchmark", ""]
    md = os.path.join(report_dir, "benchmark", "gpu-train.md")
    lines.append(open(md).read().strip() if os.path.exists(md)
                 else "no benchmark results (see benchmark.log)")
    lines += ["", "kernel tests: %s; cases: %s; benchmark: %s" % (
        verdicts[0], verdicts[1], benchmark_status)]
    open(os.path.join(report_dir, "report.md"), "w").write(
        "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    # Each command and its number of arguments (None: one or more).
    commands = {"kernel-tests": (kernel_tests, 4), "report": (report, 3),
                "find-libraries": (find_libraries, None)}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    function, count = commands[sys.argv[1]]
    arguments = sys.argv[2:]
    if len(arguments) != count if count else not arguments:
        sys.exit(__doc__)
    function(*arguments)
