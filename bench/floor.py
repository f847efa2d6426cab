"""Calibration for bench/parse.py: the cost floor of any pure-Python line parser here.

Two regex matches and one slotted object per line, no dispatch, no timestamp
conversion, no fields beyond four: no real parser can be faster than this on
the same interpreter and machine, so it tells how much of a parse figure is the
machine. Run: `.venv/bin/python bench/floor.py` (same lines as bench/parse.py).
"""

from __future__ import annotations

import re
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from parse import make_lines  # noqa: E402

_HEADER = re.compile(r"(?:<(\d{1,3})>)?(?:1 )?(\S+(?: +\d+ \S+)?) +(\S+) +([^\s\[:]+)(?:\[(\d+)\])?:? ")
_BODY = re.compile(r"(\S+) (?:on|from|for) (\S+)")


@dataclass(slots=True)
class Minimal:
    ts: str | None
    host: str | None
    program: str | None
    pid: str | None
    word: str | None
    value: str | None


def run(lines: list[str]) -> None:
    for line in lines:
        m = _HEADER.match(line)
        if m:
            _pri, ts, host, prog, pid = m.groups()
            b = _BODY.match(line, m.end())
            Minimal(ts, host, prog, pid, b and b.group(1), b and b.group(2))


def main() -> None:
    lines = make_lines(200_000)
    rates = []
    for _ in range(5):
        start = time.perf_counter()
        run(lines)
        rates.append(len(lines) / (time.perf_counter() - start))
    print(f"floor (2 regex matches + 1 object per line): median of 5 {statistics.median(rates):,.0f} lines/s")


if __name__ == "__main__":
    main()
