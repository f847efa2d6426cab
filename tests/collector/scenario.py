"""Helpers for correlator scenarios: short synthetic log excerpts, replayed for real."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from collector.config import Config, parse_config
from collector.correlator import Correlator
from collector.replay import Replay, replay
from parsers import ParseOptions

DAY = datetime(2025, 3, 3, tzinfo=UTC)
OPTIONS = ParseOptions(reference=datetime(2025, 3, 10, tzinfo=UTC))
REL = "failover-ab"


def at(clock: str) -> float:
    """'HH:MM:SS' (optionally '+Nd HH:MM:SS') on the scenario day -> epoch seconds."""
    days = 0
    if clock.startswith("+"):
        head, clock = clock.split(" ", 1)
        days = int(head[1:-1])
    h, m, s = (int(x) for x in clock.split(":"))
    return (DAY + timedelta(days=days, hours=h, minutes=m, seconds=s)).timestamp()


def line(clock: str, host: str, message: str, program: str = "dhcpd") -> str:
    ts = datetime.fromtimestamp(at(clock), UTC)
    return f"{ts:%b} {ts.day:2d} {ts:%H:%M:%S} {host} {program}: {message}"


def kea(clock: str, host: str, message: str, severity: str = "INFO") -> str:
    return line(clock, host, f"{severity:<5} [kea-dhcp4.ha-hooks.139887825118784] {message}", "kea-dhcp4")


def ack(clock: str, host: str, n: int = 1) -> str:
    return line(clock, host, f"DHCPACK on 192.0.2.{10 + n % 200} to 00:00:5e:00:53:{n % 256:02x} via eth0")


def every(start: str, end: str, step: int, make) -> list[str]:
    """Lines from `make(clock, i)` every `step` seconds from start to end inclusive."""
    out, t, i = [], at(start), 0
    while t <= at(end):
        ts = datetime.fromtimestamp(t, UTC)
        days = (ts.date() - DAY.date()).days
        clock = (f"+{days}d " if days else "") + f"{ts:%H:%M:%S}"
        out.append(make(clock, i))
        t += step
        i += 1
    return out


def run(lines: list[str], config: dict | None = None) -> Replay:
    cfg: Config = parse_config(config or {})
    return replay([(lines, OPTIONS)], Correlator(cfg))


def incidents(result: Replay) -> list[tuple[str, tuple[str, ...], float, float | None]]:
    """(condition, servers, start, end) of every incident, by start."""
    return [(i.condition, i.servers, i.start, i.end) for i in result.incidents]
