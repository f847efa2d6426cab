"""The embedded engine (chdb) inside this process: its memory settings, its threads' priority,
pandas kept out of clickhouse-connect, and the lock that says another process holds a store."""

from __future__ import annotations

import os
import sys
import threading
from typing import Final

from collector.store_errors import StoreUnavailable
from collector.store_url import StoreTarget

__all__ = ["ENGINE_NICE", "EngineThreads", "check_unlocked", "engine_options", "without_pandas"]

ENGINE_NICE: Final = 10
"""How much lower (Linux nice steps) the embedded engine's own threads run than the process.
On two cores its insert and merge threads took the CPU from the event loop's thread, which
then waited on the run queue with lines and scrapes behind it; the merges only need to keep
up on average."""
_TASKS: Final = "/proc/self/task"


def engine_options(memory_limit: int) -> dict[str, int]:
    """The embedded engine's server settings for a process budget of `memory_limit` bytes.

    Left alone, the engine takes server defaults: a memory limit of 90 % of the machine's RAM
    and caches of 5 GiB each, which a collector that shares its box for months cannot have.
    It gets half the budget (the rest is the Python side's: the queue, the rows kept while the
    store is down, the history's journal), and its mark, uncompressed and index caches share
    a quarter of that half."""
    return {
        "max_server_memory_usage": memory_limit // 2,
        "mark_cache_size": memory_limit // 16,
        "uncompressed_cache_size": memory_limit // 32,
        "index_mark_cache_size": memory_limit // 64,
        "primary_index_cache_size": memory_limit // 64,
    }


def without_pandas(embedded: bool) -> None:
    """Tell clickhouse-connect, and with the `embedded` engine pyarrow, that pandas is not to be used.

    Every insert asks clickhouse-connect's options module whether the rows are a pandas
    DataFrame, and pyarrow (which the embedded engine loads, and the embedded store's inserts
    use) asks on its first conversion of a list whether it is a pandas array; each question
    imports pandas (installed with chdb-core): tens of MiB of resident memory, for a library
    the store never uses. clickhouse-connect's module takes a `pd` it already holds as the
    answer (None: no pandas). pyarrow asks once and remembers the answer, so it is asked here
    while `import pandas` fails; a ClickHouse server's store does not load pyarrow at all.
    Both are private to those libraries: tests/collector/test_store.py::
    test_the_store_never_imports_pandas fails when they move."""
    from clickhouse_connect.driver import options

    options.pd = None
    if embedded and "pandas" not in sys.modules:
        import pyarrow  # type: ignore[import-untyped]

        shim = getattr(pyarrow.lib, "_pandas_api", None)
        if shim is None:  # (moved in a later pyarrow: pandas may be imported, nothing worse)
            return
        sys.meta_path.insert(0, _NoPandas)
        try:
            shim.have_pandas  # noqa: B018  # (the question, asked once)
        finally:
            sys.meta_path.remove(_NoPandas)


class _NoPandas:
    """An import finder that fails `import pandas` (see `without_pandas`)."""

    @staticmethod
    def find_spec(name: str, *args: object) -> None:
        if name == "pandas":
            raise ImportError("pandas is kept out of the store")


def check_unlocked(target: StoreTarget) -> None:
    """Refuse, in one line, an embedded directory another process's engine holds.

    The engine locks `DIR/status` (flock) while it runs; opening it anyway fails deep inside
    chdb after it printed its own error to stderr. Trying the lock first says it plainly. When
    the holder is this very process (its engine is already up), opening again is fine."""
    import fcntl

    try:
        fd = os.open(os.path.join(str(target.path), "status"), os.O_RDONLY)
    except FileNotFoundError:
        return  # never opened: nobody holds it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        if _lock_holders(os.fstat(fd).st_ino) != {os.getpid()}:
            raise StoreUnavailable(f"open {target}: another process is using this store") from None
    finally:
        os.close(fd)  # closing releases the lock, if we took it


def _lock_holders(inode: int) -> set[int]:
    """Pids holding a lock on a file with this inode, from /proc/locks (empty when unknown)."""
    holders = set()
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as f:
            for line in f:
                fields = line.split()
                # "1: FLOCK  ADVISORY  WRITE 16024 fe:00:2540929 0 EOF" (a "->" marks a waiter)
                if len(fields) >= 6 and fields[1] != "->" and fields[5].rsplit(":", 1)[-1] == str(inode):
                    holders.add(int(fields[4]))
    except (OSError, ValueError):
        pass
    return holders


class EngineThreads:
    """Lowers the CPU priority of the threads the embedded engine starts (`ENGINE_NICE`).

    chdb starts its pools when it needs them, so `lower` is called after every insert. It
    looks at the process's thread count first (one `stat`); only when that changed does it
    read the thread ids (a directory listing, which lets go of the GIL once per thread, and
    each time the store thread waited to get it back while the event loop's thread was busy)
    and touch the threads it has not seen, leaving every Python thread (the event loop's, the
    store thread that holds the GIL while it serialises a batch) at the process's own
    priority. A thread that starts just as another ends goes unseen until the count moves
    again. Linux only; elsewhere, and where the kernel refuses, threads keep their priority."""

    def __init__(self) -> None:
        self._seen: set[int] = set()
        self._count = 0

    def lower(self) -> None:
        try:
            count = os.stat(_TASKS).st_nlink  # (a /proc directory's links: its subdirectories + 2)
            if count == self._count:
                return
            self._count = count
            tids = {int(name) for name in os.listdir(_TASKS)}
        except OSError:
            return
        new = tids - self._seen
        self._seen = tids  # (threads that ended are forgotten: the set stays the size of the process)
        if not new:
            return
        new -= {t.native_id for t in threading.enumerate()}
        target = min(19, os.getpriority(os.PRIO_PROCESS, threading.main_thread().native_id or 0) + ENGINE_NICE)
        for tid in new:
            try:
                if os.getpriority(os.PRIO_PROCESS, tid) < target:
                    os.setpriority(os.PRIO_PROCESS, tid, target)
            except OSError:  # it ended meanwhile, or the kernel says no: it keeps its priority
                pass
