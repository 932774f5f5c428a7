#!/usr/bin/env python3
"""Interrupts a command while it writes a temporary file and checks that
the signal removed it.

usage: interrupt-while-writing.py TEMPORARY_GLOB COMMAND...

Runs COMMAND, sends it SIGINT as soon as a file matching TEMPORARY_GLOB
exists, and fails if any such file is left after it ended. A run that ends
before the file is seen is tried again, up to 5 times; the script fails if
none was caught.
"""
import glob
import os
import signal
import subprocess
import sys
import time

pattern, command = sys.argv[1], sys.argv[2:]
for attempt in range(5):
    for leftover in glob.glob(pattern):
        os.remove(leftover)
    # lit's workers ignore SIGINT, which their children would inherit.
    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    caught = False
    while process.poll() is None:
        if glob.glob(pattern):
            process.send_signal(signal.SIGINT)
            caught = True
            break
        time.sleep(0.0005)
    process.wait()
    if caught:
        left = glob.glob(pattern)
        print("interrupted, status", process.returncode, "; left:", left)
        sys.exit(1 if left or process.returncode == 0 else 0)
print("the command ended before its temporary file was seen")
sys.exit(1)
