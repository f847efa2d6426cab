"""The store's one thread: chdb is synchronous and allows one store directory per process, so a
`Store` is used from the thread that opened it, and the asyncio service reaches it only here."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from collector.store_errors import StoreError

__all__ = ["StoreThread"]

T = TypeVar("T")


class StoreThread:
    """The one worker thread every store call runs on (`pairwatch-store`).

    `submit` for threads, `await call(...)` for the asyncio service: the event loop never
    blocks on the store. Open the `Store` through it too, so the store belongs to it.
    """

    def __init__(self, name: str = "pairwatch-store") -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._pending = 0  # calls submitted and not finished (a store that does not answer holds them)
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
        try:
            future = self._executor.submit(fn, *args, **kwargs)
        except RuntimeError as exc:  # shut down
            raise StoreError("store thread is closed") from exc
        with self._lock:
            self._pending += 1
        future.add_done_callback(self._done)
        return future

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.wrap_future(self.submit(fn, *args, **kwargs))

    def busy(self) -> bool:
        """A call is still running or waiting (after `close(wait=False)`: the thread is stuck)."""
        with self._lock:
            return self._pending > 0

    def close(self, wait: bool = True) -> None:
        """Finish the calls already submitted (when `wait`) and stop the thread."""
        self._executor.shutdown(wait=wait)

    def _done(self, _future: Future[Any]) -> None:
        with self._lock:
            self._pending -= 1

    def __enter__(self) -> StoreThread:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
