"""
Where benchmarks put their figures: one JSON file per benchmark, with the
machine and the date, in bench/results/.
"""

from __future__ import annotations

import json
import platform
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
