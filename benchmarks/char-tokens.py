#!/usr/bin/env python3
"""Writes a text file's characters as an llm.c token file.

usage: char-tokens.py TEXT OUT.bin

The vocabulary is the sorted set of characters, as nanoGPT's
shakespeare_char; the llm.c header is 256 int32 (magic 20240520, version 1,
token count) followed by uint16 tokens. Prints the vocabulary size.
"""
import struct
import sys

text = open(sys.argv[1], encoding="utf-8").read()
chars = sorted(set(text))
if len(chars) > 65535:
    sys.exit("%s: %d distinct characters do not fit uint16 tokens"
             % (sys.argv[1], len(chars)))
index = {c: i for i, c in enumerate(chars)}
tokens = [index[c] for c in text]
with open(sys.argv[2], "wb") as f:
    f.write(struct.pack("<256i", 20240520, 1, len(tokens), *([0] * 253)))
    f.write(struct.pack("<%dH" % len(tokens), *tokens))
print(len(chars))
