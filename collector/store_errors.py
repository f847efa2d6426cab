"""What the store raises: clickhouse-connect's and chdb's errors mapped to two classes.

    StoreError                 anything the store could not do (bad SQL, missing database,
     |                         a second chdb directory in one process, a closed store, ...)
     +-- StoreUnavailable      the store cannot be reached now and a retry may succeed:
                               connection refused or reset, timeouts, a store directory
                               that cannot be created or written

Each mapped exception is chained (`raise ... from exc`) to the original, and its text is one line.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["StoreError", "StoreUnavailable", "map_store_errors"]

# chdb's refusal to open a second directory: a misuse, not an outage
_SECOND_ENGINE = "already initialized with path"
_ENGINE_OPEN_FAILED = "Unable to open the chdb engine"


class StoreError(Exception):
    """The store could not do what was asked; `str()` is one line."""


class StoreUnavailable(StoreError):
    """The store cannot be reached or written now; retrying later may succeed."""


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


@contextmanager
def map_store_errors(action: str) -> Iterator[None]:
    """Turn clickhouse-connect / chdb / socket errors raised inside into `StoreError` classes.

    `action` names what was being done ("insert into messages"); it starts the message.
    """
    from clickhouse_connect.driver.exceptions import ClickHouseError, OperationalError

    try:
        yield
    except StoreError:
        raise
    except OperationalError as exc:  # HTTP: refused, reset, timed out; chdb: engine gone
        raise StoreUnavailable(f"{action}: {_one_line(exc)}") from exc
    except OSError as exc:  # ConnectionError, TimeoutError, PermissionError, disk full
        raise StoreUnavailable(f"{action}: {_one_line(exc)}") from exc
    except ClickHouseError as exc:
        text = _one_line(exc)
        if _ENGINE_OPEN_FAILED in text and _SECOND_ENGINE not in text:
            raise StoreUnavailable(f"{action}: {text}") from exc
        raise StoreError(f"{action}: {text}") from exc
