"""Hostile feed documents: does the work grow linearly with the input?

For each hostile shape, the time to strip the DOCTYPE (tasks.feeds.strip_doctype) and to cap
the entries (tasks.feeds.cap_entries) on a document of 4 MiB against the same on 1 MiB.
Linear work gives a ratio near 4; the quadratic DOCTYPE regex of issue 9 gave about 16
(and hours at 5 MB). Target: every ratio <= 6.

Run from the project root with the venv active: `python bench/bench_hostile.py`.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tasks.feeds import cap_entries, strip_doctype  # noqa: E402

MiB = 1024 * 1024
SHAPES = {
    "doctype + comments": lambda n: b"<!DOCTYPE rss [" + b"<!--" * (n // 4),
    "prolog PIs": lambda n: b"<?" * (n // 2),
    "subset '<'": lambda n: b"<!DOCTYPE x [" + b"<" * n,
    "subset quotes": lambda n: b"<!DOCTYPE x [" + b"'" * n,
    "entries": lambda n: b"<rss><channel>" + b"<item><link>x</link></item>" * (n // 27) + b"</channel></rss>",
}


def best_of(fn, data: bytes, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn(data)
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> int:
    worst = 0.0
    print(f"{'shape':<20} {'1 MiB s':>9} {'4 MiB s':>9} {'ratio':>6}")
    for name, make in SHAPES.items():
        fn = (lambda d: cap_entries(d, 1000)) if name == "entries" else strip_doctype
        small, large = best_of(fn, make(MiB)), best_of(fn, make(4 * MiB))
        ratio = large / max(small, 1e-9)
        worst = max(worst, ratio)
        print(f"{name:<20} {small:9.4f} {large:9.4f} {ratio:6.2f}")
    print(f"worst ratio {worst:.2f} (target <= 6)")
    return 0 if worst <= 6 else 1


if __name__ == "__main__":
    sys.exit(main())
