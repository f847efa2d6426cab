"""The error every part raises for a configuration it cannot use: `pairwatch` exits 2 with its one line.

A leaf module, so the configuration, the store's URL grammar and the listeners can all raise it
without importing each other."""

from __future__ import annotations

__all__ = ["ConfigError"]

class ConfigError(Exception):
    """The configuration is wrong; `str()` is one line, `key: message`.

    `key` is the path of the offending key (`pair[1].limits.server_silent`), or the file name
    when the file itself cannot be read or is not TOML. `source` names the document the
    error was found in, for callers that report several files.
    """

    def __init__(self, key: str, message: str, source: str | None = None) -> None:
        super().__init__(key, message)
        self.key = key
        self.message = message
        self.source = source

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"
