"""Shared fixtures: root-only resources skip outside CI (with the reason printed) and fail in CI;
the session's embedded store.

chdb runs one engine per process and it cannot move to another directory once opened, so
every test that needs a store shares the session's directory (`store_target`) and gets its
own database (`store`), dropped afterwards. All store calls run on the one session
`StoreThread`, as in the service; `OnThread` makes those calls read like direct ones.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from collector.listeners import Intake, Received
from collector.store import Store
from collector.store_thread import StoreThread
from collector.store_url import StoreTarget, parse_store_url

IN_CI = bool(os.environ.get("CI"))


def need(condition: bool, reason: str) -> None:
    """Skip a test whose environment is missing, except in CI, where it must run."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


async def next_line(intake: Intake, timeout: float = 5.0) -> Received:
    """The next line the listeners queued; TimeoutError when none comes within `timeout`."""
    deadline = time.monotonic() + timeout
    while intake.empty():
        if time.monotonic() >= deadline:
            raise TimeoutError
        await intake.wait(deadline - time.monotonic())
    return intake.take(1)[0].lines()[0]


@dataclass(slots=True)
class Namespace:
    """A network namespace this test created, with one veth end `d0` at `address`."""

    name: str
    address: str

    def run(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]


@pytest.fixture
def netns() -> Iterator[Namespace]:
    need(os.geteuid() == 0, "needs root for network namespaces")
    need(shutil.which("ip") is not None, "needs iproute2 (ip)")
    name = f"pwt-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        for cmd in (
            ["ip", "-n", name, "link", "set", "lo", "up"],
            ["ip", "-n", name, "link", "add", "d0", "type", "veth", "peer", "name", "d1"],
            ["ip", "-n", name, "addr", "add", "198.18.5.1/24", "dev", "d0"],
            ["ip", "-n", name, "link", "set", "d0", "up"],
            ["ip", "-n", name, "link", "set", "d1", "up"],
        ):
            subprocess.run(cmd, check=True)
        yield Namespace(name=name, address="198.18.5.1")
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


KEEP_DAYS = 3_650


class OnThread:
    """Calls `obj`'s methods on `thread` and waits for the result (exceptions re-raised)."""

    def __init__(self, obj: Any, thread: StoreThread) -> None:
        self.obj = obj
        self._thread = thread

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.obj, name)
        if not callable(method):
            return method
        return lambda *args, **kwargs: self._thread.submit(method, *args, **kwargs).result(timeout=60)


@pytest.fixture(scope="session")
def store_thread() -> Iterator[StoreThread]:
    thread = StoreThread()
    yield thread
    thread.close()


@pytest.fixture(scope="session")
def store_target(tmp_path_factory: pytest.TempPathFactory) -> StoreTarget:
    return parse_store_url(f"embedded:{tmp_path_factory.mktemp('store')}")


@pytest.fixture(scope="session")
def store_admin(store_target: StoreTarget, store_thread: StoreThread) -> Iterator[Any]:
    """A raw clickhouse-connect client on the session directory (create / drop databases)."""
    import clickhouse_connect

    assert store_target.path is not None
    client = store_thread.submit(clickhouse_connect.get_client, interface="chdb", path=store_target.path).result()
    yield OnThread(client, store_thread)
    store_thread.submit(client.close).result()


@pytest.fixture
def store_database(store_admin: Any) -> Iterator[str]:
    """A fresh database name, dropped (with whatever was created in it) after the test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    yield name
    store_admin.command(f"DROP DATABASE IF EXISTS {name} SYNC")


@pytest.fixture
def store(store_target: StoreTarget, store_thread: StoreThread, store_database: str) -> Iterator[OnThread]:
    """A migrated `Store` on its own database, driven through the store thread.

    Its TTLs are ten years: test data is dated 2025 and must not expire as the years pass
    (ClickHouse applies a TTL already when a part is written).
    """
    opened = store_thread.submit(
        Store.open, store_target, store_database, messages_ttl_days=KEEP_DAYS, states_ttl_days=KEEP_DAYS
    ).result()
    proxy = OnThread(opened, store_thread)
    proxy.migrate()
    yield proxy
    proxy.close()
