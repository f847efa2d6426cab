"""Issue 19's acceptance: the web page at `/`, in real headless Chromium (Debian's `chromium`,
driven by Playwright for Python), against a real `serve` fed a real pair's lab logs.

The lab fixture (tests/fixtures/lab/dhcpd-split-brain: two dhcpd servers that both went to
partner-down) is sent over TCP as RFC 5424 frames, both servers merged in time order, its
header times moved as one so that its last line lies ten minutes ago (the page's default
window is the last 24 h); one extra line of dhcp1 carries `<img src=x onerror=...>`.
Screenshots of the fleet and the pair go to a fresh temporary directory, named in the output.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.collector.test_late_delivery import (
    FIXTURES,
    LINE,
    SETTLE,
    Copy,
    Scenario,
    config_text,
    counters,
    wait_stored,
)
from tests.conftest import need
from tests.serving import Serve, rfc5424_frame, serving

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--no-first-run", "--disable-quic", "--disable-sync"]
SCENARIO = Scenario.load(FIXTURES / "dhcpd-split-brain")
TOKEN = "web-s3cret"
HOSTILE = "DHCPINFORM from <img src=x onerror=\"document.title='pwned';window.pwned=1\"> via eth0"
TIMEOUT_MS = 20_000

playwright_api = pytest.importorskip("playwright.sync_api", reason="needs Playwright for Python (pip install '.[test]')")


@dataclass(frozen=True)
class Fed:
    """A running service with the scenario stored: its pair's name and the time shift applied."""

    serve: Serve
    copy: Copy
    shift: float  # seconds added to every header time


def shifted_frames(copy: Copy, shift: float) -> list[tuple[float, bytes]]:
    """(new time, frame) for every line of both servers, merged in time order (host order on
    ties, as `analyze` reads them), each header time plus `shift`; and the hostile line a
    second after the first."""
    out: list[tuple[float, bytes]] = []
    for lines in copy.logs.values():
        for line in lines:
            m = LINE.fullmatch(line)
            assert m is not None, line
            at = datetime.fromisoformat(m["stamp"]) + timedelta(seconds=shift)
            out.append((at.timestamp(), rfc5424_frame(at.isoformat(), m["host"], m["program"], m["pid"] or "-",
                                                      m["msg"] + "\n")))
    out.sort(key=lambda item: item[0])
    first = out[0][0]
    host = next(iter(copy.logs))
    stamp = datetime.fromtimestamp(first + 1.0, UTC).isoformat()
    out.append((first + 1.0, rfc5424_frame(stamp, host, "dhcpd", "4242", HOSTILE + "\n")))
    out.sort(key=lambda item: item[0])
    return out


def feed(factory: pytest.TempPathFactory, tag: str) -> Iterator[Fed]:
    copy = Copy(SCENARIO, "web", tag)
    config = factory.mktemp("web") / "pairwatch.toml"
    config.write_text(config_text([copy]))
    last = max(datetime.fromisoformat(LINE.fullmatch(lines[-1])["stamp"]).timestamp()  # type: ignore[index]
               for lines in copy.logs.values())
    shift = time.time() - 600.0 - last
    frames = shifted_frames(copy, shift)
    with serving(factory, ["--config", str(config)]) as serve:
        before = counters(serve)
        with socket.create_connection(("127.0.0.1", serve.tcp), timeout=10) as conn:
            conn.sendall(b"".join(frame for _, frame in frames))
        wait_stored(serve, len(frames), before)
        time.sleep(SETTLE)  # incidents and states are written with the next batch
        yield Fed(serve, copy, shift)


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fed]:
    yield from feed(tmp_path_factory, "w")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    need(os.path.exists(CHROMIUM), f"needs Debian's chromium at {CHROMIUM} (make deps)")
    with playwright_api.sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def shots() -> Path:
    return Path(tempfile.mkdtemp(prefix="pairwatch-screenshots-"))


def screenshot(page: Any, path: Path, capsys: pytest.CaptureFixture[str], record_property: Any) -> None:
    page.screenshot(path=str(path), full_page=True)
    record_property("screenshot", str(path))
    with capsys.disabled():
        print(f"\nscreenshot: {path}")


def api(serve: Serve, path: str, **params: str) -> Any:
    from urllib.parse import urlencode

    return serve.json(f"{path}?{urlencode(params)}")


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


@pytest.mark.integration
def test_fleet_pair_bands_incidents_and_log(fed: Fed, browser: Any, shots: Path, capsys: pytest.CaptureFixture[str],
                                            record_property: Any) -> None:
    serve, pair = fed.serve, fed.copy.pair
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

    # the fleet shows the pair and each server's state, as the API has it
    page.goto(serve.url("/"))
    page.wait_for_selector(f"tr.pair-head[data-pair='{pair}']", timeout=TIMEOUT_MS)
    (expected,) = [p for p in serve.json("/api/v1/pairs")["pairs"] if p["name"] == pair]  # type: ignore[index]
    for server in expected["servers"]:
        cell = page.locator(f"tr.server[data-host='{server['host']}'] .state[data-state]").first
        assert cell.get_attribute("data-state") == server["state"]
        assert cell.inner_text() == server["state"]
    badges = page.locator(f"tr.pair-head[data-pair='{pair}'] .badge").all_inner_texts()
    assert sorted(badges) == sorted(c for c, on in expected["conditions"].items() if on)
    screenshot(page, shots / "fleet.png", capsys, record_property)

    # into the pair: bands from the stored states
    page.click(f"tr.pair-head[data-pair='{pair}'] a")
    page.wait_for_selector("main[data-view='pair']", timeout=TIMEOUT_MS)
    assert "/pair/" in page.url and "window=24h" in page.url
    bands = page.locator("#bands")
    since, until = bands.get_attribute("data-since"), bands.get_attribute("data-until")
    left, width = float(bands.get_attribute("data-plot-left")), float(bands.get_attribute("data-plot-width"))
    assert since and until
    t0, t1 = epoch(since), epoch(until)
    pixel = (t1 - t0) / width  # seconds per pixel
    stored = api(serve, "/api/v1/states", pair=pair, since=since, until=until)["states"]
    inside = sorted((r["server"], r["side"], epoch(r["ts"]), r["state"]) for r in stored if epoch(r["ts"]) >= t0)
    assert len(inside) >= 4, stored
    segments = page.locator("#bands rect.seg").evaluate_all(
        "rects => rects.map(r => [r.dataset.server, r.dataset.side, r.dataset.start, r.dataset.state, +r.getAttribute('x')])")
    drawn = sorted((s, side, epoch(start), state) for s, side, start, state, _ in segments if epoch(start) >= t0)
    assert [(s, side, state) for s, side, _, state in drawn] == [(s, side, state) for s, side, _, state in inside]
    for (_, _, shown, _), (_, _, kept, _) in zip(drawn, inside, strict=True):
        assert abs(shown - kept) <= pixel, (shown, kept)
    for server, side, start, state, x in segments:  # each boundary drawn where its time is
        at = max(epoch(start), t0)
        assert abs(left + (at - t0) / pixel - x) <= 1.0, (server, side, start, state, x)
    # and they are what `analyze` finds in the same files (states from the same correlator)
    analyzed = sorted((s.server, s.side, s.ts + fed.shift, s.state) for s in fed.copy.analyzed.states)
    assert [(s, side, state) for s, side, _, state in inside] == [(s, side, state) for s, side, _, state in analyzed]
    assert all(abs(a[2] - b[2]) < 0.001 for a, b in zip(inside, analyzed, strict=True))

    # incidents listed; clicking one scrolls the log to its evidence
    incidents = [i for i in api(serve, "/api/v1/incidents", all="1", pair=pair)["incidents"] if not i["retracted"]]
    assert incidents
    listed = page.locator("#incidents li[data-incident]")
    assert sorted(listed.evaluate_all("items => items.map(i => i.dataset.incident)")) == sorted(i["id"] for i in incidents)
    assert page.locator("#bands rect.incident").count() == len(incidents)
    last = max(incidents, key=lambda i: i["start"])
    assert page.locator("#log").evaluate("box => box.scrollTop") == 0
    page.click(f"#incidents li[data-incident='{last['id']}']")
    page.wait_for_selector(f"#log[data-scrolled-to='{last['id']}']", timeout=TIMEOUT_MS)
    target = page.locator("#log .line.target")
    assert abs(epoch(target.get_attribute("data-at")) - epoch(last["start"])) <= 1.0
    box, line = page.locator("#log").bounding_box(), target.bounding_box()
    assert page.locator("#log").evaluate("box => box.scrollTop") > 0
    assert box["y"] <= line["y"] and line["y"] + line["height"] <= box["y"] + box["height"], "the line is in view"
    assert target.locator(".msg").inner_text().strip() in "\n".join(last["evidence"])

    # the hostile line shows as text and runs nothing
    hostile = page.locator("#log .line .msg", has_text="onerror")
    assert hostile.count() == 1
    assert hostile.inner_text() == HOSTILE
    assert page.locator("#log img").count() == 0
    assert page.evaluate("() => window.pwned") is None
    assert page.title() == f"pairwatch: {pair}"
    screenshot(page, shots / "pair.png", capsys, record_property)

    # the filters narrow the log; a state change is highlighted
    assert page.locator("#log .line.change").count() >= 1
    page.fill(".filters input[name='text']", "partner-down")
    shown = page.locator("#log .line:not([hidden])")
    assert shown.count() >= 1
    assert all("partner-down" in t.lower() for t in shown.all_inner_texts())
    assert errors == [], errors


@pytest.mark.integration
def test_history_says_what_analyze_says(fed: Fed, browser: Any) -> None:
    page = browser.new_page()
    page.goto(fed.serve.url(f"/incidents?pair={fed.copy.pair}"))
    page.wait_for_selector("main[data-view='history']", timeout=TIMEOUT_MS)
    rows = api(fed.serve, "/api/v1/history", pair=fed.copy.pair)["incidents"]
    assert rows and all(r["end"] and r["diagnosis"] for r in rows)
    assert page.locator("#history tbody tr").count() == len(rows)
    assert page.locator("#history tbody tr td").nth(5).inner_text() == rows[0]["diagnosis"]


@pytest.mark.integration
def test_with_a_token_the_page_shows_nothing_until_it_is_entered(tmp_path_factory: pytest.TempPathFactory,
                                                                 monkeypatch: pytest.MonkeyPatch, browser: Any) -> None:
    monkeypatch.setenv("PAIRWATCH_API_TOKEN", TOKEN)  # the subprocess inherits it
    fed = feed(tmp_path_factory, "t")
    secured = next(fed)
    try:
        pair = secured.copy.pair
        page = browser.new_page()
        page.goto(secured.serve.url("/"))
        page.wait_for_selector("#token:not([hidden])", timeout=TIMEOUT_MS)
        assert page.locator("#fleet").count() == 0
        assert pair not in page.locator("body").inner_text()
        page.fill("#token-input", "wrong")
        page.click("#token button[type=submit]")
        page.wait_for_selector("#token:not([hidden])", timeout=TIMEOUT_MS)
        assert page.locator("#fleet").count() == 0
        page.fill("#token-input", TOKEN)
        page.click("#token button[type=submit]")
        page.wait_for_selector(f"tr.pair-head[data-pair='{pair}']", timeout=TIMEOUT_MS)
        assert page.locator("#token").is_hidden()
        page.click(f"tr.pair-head[data-pair='{pair}'] a")  # the rest of the page sends it too
        page.wait_for_selector("main[data-view='pair']", timeout=TIMEOUT_MS)
        assert page.locator("#bands rect.seg").count() >= 4
    finally:
        fed.close()


@pytest.mark.integration
def test_page_headers_forbid_inline_script(fed: Fed) -> None:
    import urllib.request

    with urllib.request.urlopen(fed.serve.url("/"), timeout=5) as response:
        policy = response.headers["Content-Security-Policy"]
        body = response.read().decode()
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "<script>" not in body and "<script src=\"/static/app.js\"" in body
    with urllib.request.urlopen(fed.serve.url(f"/pair/{fed.copy.pair}?window=1h"), timeout=5) as response:
        assert response.read().decode() == body  # a pair's URL is the same page, routed by its script


@pytest.mark.integration
def test_pair_link_survives_a_reload(fed: Fed, browser: Any) -> None:
    page = browser.new_page()
    page.goto(fed.serve.url(f"/pair/{fed.copy.pair}?window=7d"))
    page.wait_for_selector("main[data-view='pair']", timeout=TIMEOUT_MS)
    assert page.locator(".windows a.current").inner_text() == "7d"
    since, until = (epoch(page.locator("#bands").get_attribute(a)) for a in ("data-since", "data-until"))
    assert abs((until - since) - 7 * 86400) < 1


@pytest.mark.integration
@pytest.mark.parametrize("query", [
    "/api/v1/states",  # no pair
    "/api/v1/states?pair=p&since=soon",
    "/api/v1/states?pair=p&since=1h&until=2h",  # since after until
    "/api/v1/states?pair=p&since=1969-12-31T00:00:00Z",
    "/api/v1/states?pair=p&since=3000d",  # before 1970
    "/api/v1/timeline?since=99999999999999d",  # beyond any date
    "/api/v1/timeline?after=99999999999999999999-1-1",
    "/api/v1/history?limit=0",
])
def test_bad_queries_are_a_clear_400(fed: Fed, query: str) -> None:
    status, body = fed.serve.get(query)
    assert status == 400, (status, body)
    assert json.loads(body)["error"]


def test_fleet_lists_problems_first_and_classes_states_by_meaning() -> None:
    from collector.domain import PairView, ServerView
    from collector.http import fleet_json

    def pair(name: str, states: tuple[str, str], open_condition: str | None = None) -> PairView:
        servers = tuple(ServerView(host=f"{name}{n}", state=s, since=1.0, peer_state=None, peer_since=None, serving=None,
                                   last_seen=2.0, ha_name=None) for n, s in enumerate(states))
        return PairView(name=name, implementation="dhcpd", relationship=name, servers=servers,
                        conditions=(("stuck", open_condition == "stuck"),))

    fleet = fleet_json([pair("a", ("normal", "normal")), pair("b", ("recover-wait", "partner-down")),
                        pair("c", ("normal", "normal"), "stuck"), pair("d", ("communications-interrupted", "normal"))])
    assert [(p["name"], p["class"]) for p in fleet] == [("b", "bad"), ("c", "bad"), ("d", "warn"), ("a", "ok")]
    assert [(s["state"], s["class"], s["peer_class"]) for s in fleet[0]["servers"]] == [
        ("recover-wait", "warn", "unknown"), ("partner-down", "bad", "unknown")]


@pytest.mark.integration
def test_the_fleet_refreshes_itself(fed: Fed, browser: Any) -> None:
    """A new state shows in the open fleet without a reload (runs last: it changes the pair)."""
    host = next(iter(fed.copy.logs))
    relationship = fed.copy.rename("pw-lab")
    page = browser.new_page()
    page.goto(fed.serve.url("/"))
    cell = f"tr.server[data-host='{host}'] .state[data-state]"
    page.wait_for_selector(cell, timeout=TIMEOUT_MS)
    assert page.locator(cell).first.get_attribute("data-state") == "normal"
    page.evaluate("() => { window.sameDocument = true; }")
    frame = rfc5424_frame(datetime.now(UTC).isoformat(), host, "dhcpd", "31045",
                          f"failover peer {relationship}: I move from normal to communications-interrupted\n")
    with socket.create_connection(("127.0.0.1", fed.serve.tcp), timeout=10) as conn:
        conn.sendall(frame)
    page.wait_for_selector(f"tr.server[data-host='{host}'] .state[data-state='communications-interrupted']",
                           timeout=TIMEOUT_MS)
    assert page.evaluate("() => window.sameDocument") is True
