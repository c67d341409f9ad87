"""
Wire codec benchmark: DATA frames encoded and decoded per second.

A frame of C{count} messages of C{payload} bytes is encoded the way the node
does it (the shared body once, then one head per peer) and decoded as a
receiving link does.  Printed and written to bench/results/wire.json.

Run:  python bench/wire_bench.py [--frames 20000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from results import write_results

from isis_twisted.core.engine import Frame
from isis_twisted.core.wire import data_head, decode, encode_body


def measure(frames: int, count: int, payload: int, peers: int) -> dict[str, float]:
    """
    Time encoding for C{peers} links and decoding of C{frames} frames.
    """
    frame = Frame(0, 10**6, tuple((10**5 + i, b"x" * payload) for i in range(count)))
    clock = time.perf_counter
    start = clock()
    encoded = b""
    for seq in range(frames):
        body = encode_body(frame)
        for _ in range(peers):
            encoded = data_head(seq, seq, frame) + body
    encode_s = clock() - start
    start = clock()
    for _ in range(frames):
        decode(encoded)
    decode_s = clock() - start
    messages = frames * count
    return {
        "messages_per_frame": count,
        "payload_bytes": payload,
        "peers": peers,
        "frame_bytes": len(encoded),
        "encode_messages_per_s": messages / encode_s,
        "decode_messages_per_s": messages / decode_s,
        "decode_mb_per_s": frames * len(encoded) / decode_s / 1e6,
    }


def main(argv: list[str] | None = None) -> int:
    """
    Run the codec benchmark for a few frame shapes, print and write JSON.
    """
    parser = argparse.ArgumentParser(description="Wire codec benchmark.")
    parser.add_argument("--frames", type=int, default=20000)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "wire.json"
    )
    args = parser.parse_args(argv)
    rows = []
    print(
        f"{'msgs/frame':>10} {'payload':>8} {'frame B':>8} {'encode msg/s':>13}"
        f" {'decode msg/s':>13} {'decode MB/s':>11}"
    )
    for count, payload in ((1, 100), (32, 100), (32, 16), (4, 1024), (1, 65536)):
        frames = max(200, args.frames * 32 // (count * max(1, payload // 100)))
        row = measure(frames, count, payload, peers=2)
        rows.append(row)
        print(
            f"{count:>10} {payload:>8} {row['frame_bytes']:>8,}"
            f" {row['encode_messages_per_s']:>13,.0f}"
            f" {row['decode_messages_per_s']:>13,.0f}"
            f" {row['decode_mb_per_s']:>11,.1f}",
            flush=True,
        )
    write_results(args.out, "wire", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
