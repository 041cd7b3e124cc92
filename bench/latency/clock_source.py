#!/usr/bin/env python3
"""Writes raw 640x360 gray frames to stdout in real time, each carrying the wall clock at the
moment it was made, for ffmpeg to encode and publish (`-f rawvideo -pix_fmt gray -s 640x360
-r FPS -i -`). A player reads the clock back from the decoded frame, so Date.now() minus it is
the glass-to-glass latency: capture, encoding, RTMP, packaging, delivery and the player's buffer.

The clock is a 12 x 4 grid of 48 px blocks at the top left, white (1) or black (0), most
significant bit first: 44 bits of Unix time in milliseconds, then a 4-bit check (the sum of the
eleven 4-bit groups, mod 16). web/static/player.html decodes it with ?clock=1. A bar moves across
the rest of the frame so the encoder has motion to code.

Usage: clock_source.py [--fps 30] [--seconds N]   (runs until stdout closes without --seconds)
"""
import argparse
import sys
import time

WIDTH, HEIGHT, BLOCK, COLS, ROWS = 640, 360, 48, 12, 4
WHITE, BLACK, GREY = 235, 16, 96


def clock_rows(ms):
    nibbles = [(ms >> (4 * (10 - i))) & 0xF for i in range(11)]
    bits = []
    for n in nibbles + [sum(nibbles) % 16]:
        bits += [(n >> 3) & 1, (n >> 2) & 1, (n >> 1) & 1, n & 1]
    rows = []
    for r in range(ROWS):
        line = bytearray([GREY]) * WIDTH
        for c in range(COLS):
            line[c * BLOCK:(c + 1) * BLOCK] = bytes([WHITE if bits[r * COLS + c] else BLACK]) * BLOCK
        rows.append(bytes(line) * BLOCK)
    return b"".join(rows)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=0)
    args = parser.parse_args()
    if args.fps <= 0:
        sys.exit("clock_source.py: --fps must be positive")
    out = sys.stdout.buffer
    lower_h = HEIGHT - ROWS * BLOCK
    background = bytearray([GREY]) * (WIDTH * lower_h)
    start = time.time()
    frame = 0
    while not args.seconds or frame < args.seconds * args.fps:
        due = start + frame / args.fps
        delay = due - time.time()
        if delay > 0:
            time.sleep(delay)
        lower = bytearray(background)
        x = (frame * 8) % (WIDTH - 32)
        for y in range(lower_h):
            lower[y * WIDTH + x:y * WIDTH + x + 32] = b"\xeb" * 32
        try:
            out.write(clock_rows(int(time.time() * 1000)) + bytes(lower))
            out.flush()
        except BrokenPipeError:
            return 0
        frame += 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
