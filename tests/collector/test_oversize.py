"""Issue 16 end to end: an oversize octet-counted frame in a long-lived TCP connection costs
only itself, against a real `pairwatch serve` (tests/serving.py) and its embedded chdb store.

The connection that lost data in the field: 500 good octet-counted frames, one frame of
300,037 bytes (a count of 6 digits, over the 64 KiB `max_message`), 1,500 more good frames,
none of them ending in LF, and the sender (rsyslog) keeping the connection open for hours.
Every good frame must be stored while the connection is still open (no reconnect, no EOF
flushing anything), and the big one counted once as `oversize`.
"""

from __future__ import annotations

import re
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests.serving import Serve, serving

pytestmark = pytest.mark.integration

BEFORE, AFTER = 500, 1500
OVERSIZE = 300_037


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    with serving(tmp_path_factory) as started:  # default max_message: 65536
        yield started


def _header(host: str) -> bytes:
    """An RFC 5424 header stamped now (a sane event time for `since=`)."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return f"<13>1 {now} {host} oversize-test - - - ".encode()


def _counted(message: bytes) -> bytes:
    return b"%d %s" % (len(message), message)


def test_an_oversize_frame_between_2000_good_ones_costs_only_itself(serve: Serve) -> None:
    host = f"ov-{uuid.uuid4().hex[:8]}"
    header = _header(host)
    good = [_counted(header + b"good frame %d" % n) for n in range(BEFORE + AFTER)]
    big = header + b"x" * (OVERSIZE - len(header))
    assert len(big) == OVERSIZE

    def stored() -> list[int]:
        rows = serve.json(f"/api/v1/timeline?host={host}&since=1h&limit=10000")["messages"]  # type: ignore[index]
        numbers = [int(m.group(1)) for r in rows if (m := re.fullmatch(r"good frame (\d+)", r["message"]))]
        assert len(numbers) == len(rows), [r["message"][:80] for r in rows if not r["message"].startswith("good")]
        return numbers if len(numbers) >= BEFORE + AFTER else []

    with socket.create_connection(("127.0.0.1", serve.tcp), timeout=10) as conn:
        conn.sendall(b"".join(good[:BEFORE]))
        conn.sendall(_counted(big))
        conn.sendall(b"".join(good[BEFORE:]))
        numbers = serve.poll(stored, "all 2,000 good frames while the connection is open")
        conn.setblocking(False)
        with pytest.raises(BlockingIOError):
            conn.recv(1)  # no data and no EOF: the service kept the connection

    assert sorted(numbers) == list(range(BEFORE + AFTER))  # each exactly once
    assert serve.value("pairwatch_syslog_errors_total", reason="oversize") == 1.0
    assert serve.value("pairwatch_syslog_messages_total", transport="tcp") == BEFORE + AFTER
    assert not serve.value("pairwatch_syslog_errors_total", reason="bad_length")
    assert f"framing error oversize (octet count {OVERSIZE} above 65536)" in serve.logs()
