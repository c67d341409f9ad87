"""
Where benchmarks put their figures: one JSON file per benchmark, with the
machine and the date, in bench/results/.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Any


def write_results(path: Path, benchmark: str, rows: list[dict[str, Any]]) -> None:
    """
    Write C{rows} as C{benchmark}'s figures to C{path}, and say so.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": benchmark,
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "results": rows,
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {path}")


def peak_rss_mb(pid: int | str = "self") -> float:
    """
    The peak resident set size of process C{pid}, in MiB.

    Read from Linux's VmHWM, which starts afresh when a process runs a new
    program; C{ru_maxrss} does not (a child reports its parent's peak until
    it grows past it).  Elsewhere, C{ru_maxrss} of this process.
    """
    status = f"/proc/{pid}/status"
    if os.path.exists(status):
        with open(status) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def all_finished(out: Path, names: list[str]) -> bool:
    """
    Whether every member in C{names} has written its figures beside
    C{out} (a member's own figures file): members stay up until then, so
    that none leaves while a peer still needs it.
    """
    return all((out.parent / f"{name}.json").exists() for name in names)
