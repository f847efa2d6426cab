"""First paint of the web page: the fleet, and one pair's 24 h view, for a fleet of 100 pairs.

Run: `.venv/bin/python bench/webpage.py [--lines 300000] [--runs 5] [--out FILE]`.
Starts `pairwatch serve` on a fresh embedded store (loopback ports), sends it bench/corpus.py's
fleet stream (100 pairs; `--lines` lines, dated so that its last line is a minute old) over
one TCP connection and waits until every line is stored; then opens the page in Debian's
headless Chromium through Playwright, a fresh browser context (no cache) per run:

The config declares the corpus' 100 pairs, so the fleet lists every one of them.

* fleet: `/`, from navigation start until the frame after the fleet table entered the DOM
  (the page's own `pairwatch:fleet:painted` mark);
* pair: `/pair/NAME?window=24h` for the fleet's first pair (problems first), until the frame
  after its bands, incidents and the first page of its log were drawn (`pairwatch:pair:painted`).

Prints each run and the medians, then one JSON object, also written to bench/results/webpage.json.
Figures only, never asserted. Needs `chromium` (Debian) and `playwright` (the test extra).
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).parent))
import corpus  # noqa: E402
from corpus import make_corpus, octet_counted, report  # noqa: E402
from ingest import http_getter, stored_rows, wait_ready  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--no-first-run", "--disable-quic", "--disable-sync"]
PAINT_TIMEOUT_MS = 60_000
PAIRS = 100
LEAD = 60.0
"""The corpus' last line is this many seconds old when it is made."""
STORE_DEADLINE = 600.0


def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _fleet_config(pairs: int) -> str:
    """Every pair of the corpus declared (as bench/corpus.py names them), so the fleet lists all
    of them, also those whose lines so far name no state."""
    out = []
    for i in range(pairs):
        if i >= round(pairs * (1 - corpus.KEA_SHARE)):
            a, b = f"kea{i:03d}a", f"kea{i:03d}b"
            out += ["[[pair]]", f'name = "{a}+{b}"', f'hosts = ["{a}", "{b}"]', 'implementation = "kea"', ""]
        else:
            a, b = f"dhcp{i:03d}a", f"dhcp{i:03d}b"
            out += ["[[pair]]", f'name = "failover-{i:03d}"', f'hosts = ["{a}", "{b}"]', 'implementation = "dhcpd"',
                    f'relationship = "failover-{i:03d}"', ""]
    return "\n".join(out)


def _paint(page: Any, url: str, view: str) -> float:
    """Milliseconds from navigation start to the page's `pairwatch:VIEW:painted` mark."""
    page.goto(url)
    mark = f"pairwatch:{view}:painted"
    page.wait_for_function(f"() => performance.getEntriesByName({json.dumps(mark)}).length > 0",
                           timeout=PAINT_TIMEOUT_MS)
    return float(page.evaluate(f"() => performance.getEntriesByName({json.dumps(mark)})[0].startTime"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lines", type=int, default=300_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", type=Path, default=RESULTS / "webpage.json")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    dated = corpus.START
    corpus.START = float(int(time.time() - LEAD - args.lines / corpus.RATE))  # type: ignore[misc]
    try:  # (make_corpus reads its module's START at each call; put back after this one)
        lines = make_corpus(args.lines, pairs=PAIRS).lines
    finally:
        corpus.START = dated  # type: ignore[misc]
    with tempfile.TemporaryDirectory(prefix="pairwatch-bench-webpage-") as tmp:
        http, tcp = _free_port(), _free_port()
        config = Path(tmp) / "pairwatch.toml"
        config.write_text(_fleet_config(PAIRS))
        log = Path(tmp) / "serve.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "collector.cli", "serve", "--tcp", f"127.0.0.1:{tcp}",
                 "--udp", f"127.0.0.1:{_free_port(socket.SOCK_DGRAM)}", "--http", f"127.0.0.1:{http}",
                 "--store", f"embedded:{tmp}/store", "--config", str(config)],
                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            get = http_getter(http)
            wait_ready(get, proc, log)
            started = time.monotonic()
            with socket.create_connection(("127.0.0.1", tcp)) as conn:
                conn.sendall(octet_counted(lines))
            while stored_rows(get) < len(lines):
                if time.monotonic() - started > STORE_DEADLINE or proc.poll() is not None:
                    raise SystemExit(f"not every line stored within {STORE_DEADLINE:.0f} s; see {log}")
                time.sleep(0.5)
            store_s = time.monotonic() - started
            fleet = json.loads(get("/api/v1/fleet"))["pairs"]
            pair = fleet[0]["name"]
            base = f"http://127.0.0.1:{http}"
            pair_url = f"{base}/pair/{quote(pair, safe='')}?window=24h"
            fleet_ms: list[float] = []
            pair_ms: list[float] = []
            lines_shown = 0
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
                try:
                    for run in range(args.runs):
                        context = browser.new_context(viewport={"width": 1400, "height": 1000})
                        page = context.new_page()
                        fleet_ms.append(_paint(page, f"{base}/", "fleet"))
                        pair_ms.append(_paint(page, pair_url, "pair"))
                        lines_shown = page.locator("#log .line").count()
                        context.close()
                        print(f"run {run + 1}: fleet {fleet_ms[-1]:.0f} ms, pair 24 h {pair_ms[-1]:.0f} ms")
                finally:
                    browser.close()
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
    result: dict[str, Any] = {
        "bench": "webpage",
        "lines_stored": args.lines,
        "pairs": len(fleet),
        "store_seconds": round(store_s, 1),
        "runs": args.runs,
        "fleet_first_paint_ms": round(statistics.median(fleet_ms)),
        "pair_24h_first_paint_ms": round(statistics.median(pair_ms)),
        "fleet_ms": [round(v) for v in fleet_ms],
        "pair_ms": [round(v) for v in pair_ms],
        "pair": pair,
        "pair_log_lines_first_page": lines_shown,
    }
    print(f"{args.lines:,} lines from {len(fleet)} pairs stored; first paint, median of {args.runs} "
          f"(a fresh browser context each): fleet {result['fleet_first_paint_ms']} ms, "
          f"pair {pair} 24 h view {result['pair_24h_first_paint_ms']} ms ({lines_shown} log lines on its first page)")
    report(result, args.out)


if __name__ == "__main__":
    main()
