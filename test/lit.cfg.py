# lit configuration of the moe compiler's tests.
import os
import shutil
import subprocess
import tempfile

import lit.formats
from lit.llvm import llvm_config

config.name = "MOE"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test"]
config.excludes = ["Inputs", "Unit", "Fuzz", "CMakeLists.txt", "lit.cfg.py",
                   "lit.site.cfg.py"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.moe_obj_root, "test")

config.substitutions.append(("%moe_src", config.moe_src_root))
config.substitutions.append(("%moe_obj", config.moe_obj_root))
config.substitutions.append(("%python", "python3"))
# Multi-rank runs on one machine: more ranks than cores, and as root in CI.
mpirun = "mpirun --oversubscribe --bind-to none"
if hasattr(os, "geteuid") and os.geteuid() == 0:
    mpirun += " --allow-run-as-root"
config.substitutions.append(("%mpirun", mpirun))

# The CUDA target: tests that compile CUDA need the toolkit ("cuda-toolkit");
# tests that run it need a GPU too ("gpu"; "multi-gpu": 2 or more, and
# mpirun, since NCCL takes one GPU per rank), else lit reports them
# UNSUPPORTED.
if config.moe_have_cuda:
    config.available_features.add("cuda-toolkit")
    cuda_bin = os.path.dirname(config.cuda_compiler)
    config.substitutions.append(("%nvcc", config.cuda_compiler))
    config.substitutions.append(("%ptxas", os.path.join(cuda_bin, "ptxas")))
smi = shutil.which("nvidia-smi")
listing = subprocess.run([smi, "-L"], capture_output=True,
                         text=True) if smi else None
if listing and listing.returncode == 0:
    config.available_features.add("gpu")
    gpus = sum(line.startswith("GPU ") for line in listing.stdout.splitlines())
    if gpus >= 2 and shutil.which("mpirun"):
        config.available_features.add("multi-gpu")

# Tests that mount a small file system (a private tmpfs) need to be allowed
# a mount namespace (root, usually).
probe_dir = tempfile.mkdtemp()
if shutil.which("unshare") and subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount -t tmpfs none " + probe_dir],
        capture_output=True).returncode == 0:
    config.available_features.add("mount-namespaces")
# Tests of append-only files need a file system that keeps the attribute
# (ext4 does; overlay and tmpfs file systems may not) and the right to set
# it (root).
probe_file = os.path.join(probe_dir, "append-only")
open(probe_file, "w").close()
if shutil.which("chattr") and subprocess.run(
        ["chattr", "+a", probe_file], capture_output=True).returncode == 0:
    config.available_features.add("append-only-files")
    subprocess.run(["chattr", "-a", probe_file], capture_output=True)
os.remove(probe_file)
os.rmdir(probe_dir)

llvm_config.use_default_substitutions()
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)
llvm_config.with_environment("PATH", config.moe_tools_dir, append_path=True)
llvm_config.add_tool_substitutions(
    ["moe-opt", "moe-import", "moe-run", "moe-translate", "moe-compile",
     "moe-estimate", "moe-export"],
    [config.moe_tools_dir])
