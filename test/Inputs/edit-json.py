#!/usr/bin/env python3
"""Prints a JSON file with keys set or removed, for config error tests.

usage: edit-json.py FILE [KEY=JSON_VALUE | -KEY]...
"""
import json
import sys

config = json.load(open(sys.argv[1]))
for edit in sys.argv[2:]:
    if edit.startswith("-"):
        config.pop(edit[1:], None)
    else:
        key, value = edit.split("=", 1)
        config[key] = json.loads(value)
json.dump(config, sys.stdout, indent=2)
