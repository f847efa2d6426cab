"""Store fixtures: one embedded store directory for the whole test process, a database per test.

chdb runs one engine per process and it cannot move to another directory once opened, so
every test that needs a store shares the session's directory (`store_target`) and gets its
own database (`store`), dropped afterwards. All store calls run on the one session
`StoreThread`, as in the service; `OnThread` makes those calls read like direct ones.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from collector.store import Store, StoreTarget, StoreThread, parse_store_url


KEEP_DAYS = 3_650


class OnThread:
    """Calls `obj`'s methods on `thread` and waits for the result (exceptions re-raised)."""

    def __init__(self, obj: Any, thread: StoreThread) -> None:
        self._obj = obj
        self._thread = thread

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._obj, name)
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
