"""The effective configuration as TOML, every key with its value (`pairwatch check-config`)."""

from __future__ import annotations

import json
from dataclasses import replace

from collector.config import (
    LIMIT_KEYS,
    PAIR_LIMIT_KEYS,
    SIZE_UNITS,
    Config,
    Listener,
    Network,
)
from collector.domain import LISTENER_TRANSPORTS

__all__ = ["render_config", "size_text"]


def render_config(config: Config) -> str:
    """The effective configuration as TOML: every key with its value, defaults included.

    `pairwatch check-config` prints it, so an operator sees what the service will really
    do. Loading the text again gives the same `Config`, except that a password in
    `store.url` is shown as `****`.
    """
    lines = ["[hosts]", f"strip_domain = {_toml(config.hosts.strip_domain)}", "", "[limits]"]
    lines += [f"{key} = {_toml_duration(getattr(config.limits, key))}" for key in LIMIT_KEYS]
    store = config.store
    lines += [
        "", "[store]",
        f"url = {_toml(_mask_password(store.url))}",
        f'messages_ttl = "{store.messages_ttl_days}d"',
        f'states_ttl = "{store.states_ttl_days}d"',
        f'memory_limit = "{size_text(store.memory_limit)}"',
        "", "[serve]",
    ]
    serve = config.serve
    for transport in LISTENER_TRANSPORTS:
        items = [_toml_listener(lis) for lis in serve.listeners if lis.transport == transport]
        lines.append(f"{transport} = [{', '.join(items)}]")
    lines += [
        f"http = {_toml(str(serve.http))}",
        f"allow = {_toml_cidrs(serve.allow)}",
        f"max_message = {serve.max_message}",
        f"queue_size = {serve.queue_size}",
        f"udp_receive_buffer = {serve.udp_receive_buffer}",
        f"batch_rows = {serve.batch_rows}",
        f"batch_interval = {_toml_duration(serve.batch_interval)}",
        f"memory_rows = {serve.memory_rows}",
        f"spool_max_bytes = {serve.spool_max_bytes}",
        f"max_connections = {serve.max_connections}",
        f"max_connections_per_sender = {serve.max_connections_per_sender}",
        f"shutdown_timeout = {_toml_duration(serve.shutdown_timeout)}",
    ]
    if serve.idle_timeout is not None:
        lines.append(f"idle_timeout = {_toml_duration(serve.idle_timeout)}")
    if serve.spool_directory is not None:
        lines.append(f"spool_directory = {_toml(serve.spool_directory)}")
    if serve.tls is not None:
        lines += [f"tls_cert = {_toml(serve.tls.cert)}", f"tls_key = {_toml(serve.tls.key)}"]
        if serve.tls.client_ca is not None:
            lines.append(f"tls_client_ca = {_toml(serve.tls.client_ca)}")
    for pair in config.pairs:
        lines += ["", "[[pair]]", f"name = {_toml(pair.name)}",
                  f"hosts = [{_toml(pair.hosts[0])}, {_toml(pair.hosts[1])}]"]
        for key in ("relationship", "implementation"):
            if getattr(pair, key) is not None:
                lines.append(f"{key} = {_toml(getattr(pair, key))}")
        base = config.limits
        if pair.mclt is not None:
            lines.append(f"mclt = {_toml_duration(pair.mclt)}")
            base = replace(base, mclt=pair.mclt)
        own = [key for key in PAIR_LIMIT_KEYS if getattr(pair.limits, key) != getattr(base, key)]
        if own:
            lines.append("[pair.limits]")
            lines += [f"{key} = {_toml_duration(getattr(pair.limits, key))}" for key in own]
    return "\n".join(lines) + "\n"


def _toml(value: str | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string


def _toml_duration(seconds: float) -> str:
    """The shortest exact spelling: "2d", "1h", "5m", "90s", or a number of seconds."""
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0), ("s", 1.0)):
        count = seconds / size
        if count >= 1 and count == int(count):
            return f'"{int(count)}{unit}"'
    return repr(seconds)


def _toml_cidrs(networks: tuple[Network, ...]) -> str:
    return "[" + ", ".join(_toml(str(n)) for n in networks) + "]"


def _toml_listener(listener: Listener) -> str:
    if not listener.allow:
        return _toml(str(listener.endpoint))
    return f"{{ address = {_toml(str(listener.endpoint))}, allow = {_toml_cidrs(listener.allow)} }}"


def _mask_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    userinfo, at, location = rest.partition("@")
    if not sep or not at or ":" not in userinfo:
        return url
    return f"{scheme}://{userinfo.split(':', 1)[0]}:****@{location}"


def size_text(size: int) -> str:
    """The largest binary unit that writes `size` whole ("1GiB", "1536MiB")."""
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        if size % SIZE_UNITS[unit] == 0:
            return f"{size // SIZE_UNITS[unit]}{unit}"
    return f"{size}B"
