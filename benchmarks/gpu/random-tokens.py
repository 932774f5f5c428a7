#!/usr/bin/env python3
"""Writes COUNT uniformly random tokens below VOCAB as an llm.c token file
(the format of char-tokens.py): for benchmarks whose step time does not
depend on the text.

usage: random-tokens.py VOCAB COUNT OUT.bin
"""
import random
import struct
import sys

vocab, count, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
if not 0 < vocab <= 65536:
    sys.exit("vocabulary %d does not fit uint16 tokens" % vocab)
rng = random.Random(0)
with open(path, "wb") as f:
    f.write(struct.pack("<256i", 20240520, 1, count, *([0] * 253)))
    f.write(struct.pack("<%dH" % count, *(rng.randrange(vocab) for _ in range(count))))
