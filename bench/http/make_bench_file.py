#!/usr/bin/env python3
"""Writes web/static/bench/100k.bin: exactly 102400 deterministic, incompressible bytes (SHA-256 in
counter mode), the file bench/http/run fetches from hawker (embedded in the binary) and from
nginx (a copy on disk). Incompressible like the media parts hawker serves, and with a `.bin`
name, so neither server gzips it.

Usage: bench/http/make_bench_file.py [--output PATH]
"""
import argparse
import hashlib
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIZE = 100 * 1024


def content():
    out = bytearray()
    counter = 0
    while len(out) < SIZE:
        out += hashlib.sha256(b"hawker bench/http 100k " + counter.to_bytes(8, "big")).digest()
        counter += 1
    return bytes(out[:SIZE])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--output", default=os.path.join(ROOT, "web", "static", "bench", "100k.bin"))
    args = ap.parse_args()
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "wb") as f:
        f.write(content())


if __name__ == "__main__":
    main()
