"""`pairwatch` command line: parse arguments, call library functions, return an exit code.

Exit codes (DESIGN.md): 0 ok, 1 runtime failure, 2 usage or config error, each
with one line on stderr naming what is wrong.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import ssl
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, BinaryIO, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from collector import __version__
from collector.client import (
    TOKEN_ENV,
    ApiError,
    get_json,
    render_status,
    render_timeline_line,
    timeline_pages,
)
from collector.config import (
    DEFAULT_HTTP_PORT,
    Config,
    ConfigError,
    Endpoint,
    Listener,
    check_serve,
    load_config,
    parse_duration,
    parse_endpoint,
)
from collector.config_render import render_config
from collector.correlator import Correlator
from collector.domain import LISTENER_TRANSPORTS
from collector.replay import replay
from collector.report import json_objects, render_table
from parsers import LineParser, ParseOptions, event_to_dict

_to_json = json.JSONEncoder(ensure_ascii=False).encode
"""One encoder for every line printed (json.dumps with options builds one per call)."""


class UsageError(Exception):
    """A bad argument: exit 2 with the message."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pairwatch",
        description="Syslog correlation for DHCP failover pairs (ISC dhcpd, Kea HA).",
    )
    parser.add_argument("--version", action="version", version=f"pairwatch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = sub.add_parser("serve", help="receive syslog, correlate, store and export metrics")
    serve.add_argument("--config", metavar="FILE", help="TOML configuration file")
    serve.add_argument("--udp", action="append", metavar="HOST:PORT", default=[], help="UDP listener (repeatable)")
    serve.add_argument("--tcp", action="append", metavar="HOST:PORT", default=[], help="TCP listener (repeatable)")
    serve.add_argument("--tls", action="append", metavar="HOST:PORT", default=[], help="TLS listener (repeatable)")
    serve.add_argument("--http", metavar="HOST:PORT", help="HTTP API and /metrics address")
    serve.add_argument("--store", metavar="URL", help="embedded:PATH or clickhouse://USER:PASS@HOST:8123/DB")

    parse = sub.add_parser("parse", help="print one JSON object per input line (no store)")
    _add_input_options(parse)

    analyze = sub.add_parser("analyze", help="replay logs through the correlator; print states and incidents")
    _add_input_options(analyze)
    analyze.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    analyze.add_argument("--config", metavar="FILE", help="TOML configuration file (pairs, limits)")

    ingest = sub.add_parser("ingest", help="backfill old logs into the store")
    _add_input_options(ingest)
    ingest.add_argument("--store", metavar="URL",
                        help="default: the config's store.url, else embedded:./pairwatch-data")
    ingest.add_argument("--config", metavar="FILE", help="TOML configuration file (pairs, limits, store)")

    status = sub.add_parser("status", help="current state of every pair, from a running service")
    status.add_argument("--api", metavar="URL")
    status.add_argument("--json", action="store_true")

    timeline = sub.add_parser("timeline", help="the merged timeline of a pair or of hosts")
    timeline.add_argument("--pair", metavar="NAME")
    timeline.add_argument("--host", action="append", metavar="NAME", default=[])
    timeline.add_argument("--since", metavar="DURATION")
    timeline.add_argument("--json", action="store_true")
    timeline.add_argument("--api", metavar="URL")
    timeline.add_argument("--store", metavar="URL")

    check = sub.add_parser("check-config", help="validate a configuration file")
    check.add_argument("--config", metavar="FILE")
    return parser


def _add_input_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="*", metavar="FILE|-", help="log files; '-' or none for standard input")
    p.add_argument(
        "--tz",
        metavar="ZONE",
        default="UTC",
        help="IANA zone of timestamps that carry none (RFC 3164, Kea); default UTC",
    )
    p.add_argument(
        "--reference",
        metavar="ISO8601",
        help="instant that fixes the year of yearless timestamps; default: the file's mtime (stdin: now)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "check-config":
        return run_check_config(args)
    if args.command == "serve":
        return run_serve(args)
    try:
        if args.command == "analyze":
            return run_analyze(args, sys.stdout)
        if args.command == "status":
            return run_status(args, sys.stdout)
        if args.command == "timeline":
            return run_timeline(args, sys.stdout)
        if args.command == "ingest":
            return run_ingest(args, sys.stdout, sys.stderr)
        return run_parse(args, sys.stdout)
    except ApiError as exc:
        print(f"pairwatch {args.command}: {exc}", file=sys.stderr)
        return 1
    except (UsageError, ConfigError) as exc:
        print(f"pairwatch {args.command}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"pairwatch {args.command}: {exc}", file=sys.stderr)
        return 1


def run_status(args: argparse.Namespace, out: TextIO) -> int:
    """The current state of every pair, from a running service's API."""
    doc = get_json(args.api or _default_api(), "/api/v1/pairs")
    if args.json:
        out.write(json.dumps(doc, ensure_ascii=False) + "\n")
    else:
        out.write(render_status(doc.get("pairs", []), time.time()))
    return 0


def run_timeline(args: argparse.Namespace, out: TextIO) -> int:
    """Stored messages and their events in event-time order, from the API (or the store
    itself); `--since` bounds the event time (what happened in that time)."""
    if args.api and args.store:
        raise UsageError("--api and --store: give one")
    if args.since is not None:
        try:
            parse_duration(args.since)
        except ValueError as exc:
            raise UsageError(f"--since: {exc}") from exc
    if args.store:
        rows = _timeline_from_store(args)
    else:
        params = [("host", h) for h in args.host]
        if args.pair:
            params.append(("pair", args.pair))
        if args.since:
            params.append(("since", args.since))
        rows = timeline_pages(args.api or _default_api(), params)
    for row in rows:
        out.write(_to_json(row) if args.json else render_timeline_line(row))
        out.write("\n")
    return 0


def _timeline_from_store(args: argparse.Namespace) -> Iterator[dict]:
    """Read the store directly (no service may hold an embedded store meanwhile)."""
    from collector.store import Store, TimelineCursor  # heavy: only when asked

    store = _open_store(Store.open, args.store, "then use --api")
    try:
        if store.pending_migrations():  # (a store of an older version: read it in today's order)
            store.migrate()
        hosts = list(args.host) + (store.pair_hosts(args.pair) if args.pair else [])
        if args.pair and not hosts:
            return
        since = datetime.now(UTC) - timedelta(seconds=parse_duration(args.since)) if args.since else None
        after = None
        while True:
            rows = store.timeline(hosts or None, since, None, 5000, after)
            yield from rows
            if len(rows) < 5000:
                return
            after = TimelineCursor.after(rows[-1])
    finally:
        store.close()


def _open_store(opener: Callable[..., Any], url: str, hint: str, **kwargs: Any) -> Any:
    """`opener(target, **kwargs)` (Store.open, maybe through the store's thread), with the
    embedded store's one-process rule explained when it fails."""
    from collector.store_errors import StoreError
    from collector.store_url import parse_store_url

    try:
        return opener(parse_store_url(url), **kwargs)
    except StoreError as exc:
        raise ApiError(f"{exc} (an embedded store belongs to one process: is `pairwatch serve` using it? "
                       f"{hint})") from exc


def run_ingest(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Backfill files into the store: the same parse, correlate and store steps as `serve`."""
    from collector.ingest import Source, ingest, progress_line
    from collector.store import Store
    from collector.store_errors import StoreError
    from collector.store_thread import StoreThread

    config = load_config(args.config)
    url = args.store or config.store.url
    ttl = {"messages_ttl_days": config.store.messages_ttl_days, "states_ttl_days": config.store.states_ttl_days}
    sources: list[Source] = []
    thread = StoreThread()
    try:
        store = _open_store(lambda target, **kw: thread.submit(Store.open, target, **kw).result(), url,
                            "stop it first, or ingest into a ClickHouse server it shares", **ttl)
        try:
            thread.submit(store.migrate).result()
            with contextlib.ExitStack() as files:
                progress = _Progress(err if err.isatty() else None, progress_line)
                for name, stream, options in _opened_inputs(args):
                    if name != "-":
                        files.enter_context(stream)
                    assert options.reference is not None  # (`_opened_inputs` always gives one)
                    sources.append(Source(name, progress.count(stream), options, options.reference.timestamp()))
                done = ingest(sources, Correlator(config), thread, store, on_line=progress.line,
                              strip_domain=config.hosts.strip_domain, **ttl)
                progress.close()
        except StoreError as exc:
            raise ApiError(str(exc)) from exc
        finally:
            thread.submit(store.close).result()
    finally:
        thread.close()
    names = len(sources)
    out.write(
        f"ingested {done.lines} lines from {names} input{'s' if names != 1 else ''} into {store.target}: "
        f"{done.stored} sent to the store, "
        f"{done.expired} older than the {ttl['messages_ttl_days']}-day retention skipped, "
        f"{done.states} state changes, {done.incidents} incidents ({done.still_open} still open at the end)\n"
    )
    return 0


class _Progress:
    """`ingest: 42% (1,234 lines)` on a terminal's stderr, redrawn at most every 0.2 s."""

    def __init__(self, tty: TextIO | None, render: Callable[[int, int | None, int], str]) -> None:
        self._tty = tty
        self._render = render
        self._read = 0
        self._lines = 0
        self._drawn = 0.0
        self.total: int | None = None

    def count(self, stream: BinaryIO) -> Iterator[str]:
        """The stream's lines (as `read_lines`), counting the bytes read; its size adds to `total`."""
        try:
            size = os.fstat(stream.fileno()).st_size
        except (OSError, ValueError):
            size = 0
        self.total = (self.total or 0) + size
        return self._lines_of(stream)

    def _lines_of(self, stream: BinaryIO) -> Iterator[str]:
        for raw in stream:
            self._read += len(raw)
            yield _decode_line(raw)

    def line(self) -> None:
        self._lines += 1
        if self._tty is not None and self._lines % 4096 == 0 and time.monotonic() - self._drawn >= 0.2:
            self._drawn = time.monotonic()
            self._tty.write("\r" + self._render(self._read, self.total or None, self._lines))
            self._tty.flush()

    def close(self) -> None:
        if self._tty is not None and self._drawn:
            self._tty.write("\r" + self._render(self._read, self.total or None, self._lines) + "\n")
            self._tty.flush()


def _default_api() -> str:
    return f"http://127.0.0.1:{DEFAULT_HTTP_PORT}"


def run_check_config(args: argparse.Namespace) -> int:
    """Load the configuration as `serve` would; print it with every default filled in
    (TOML, a summary comment first), or one line naming the wrong key (exit 2)."""
    try:
        config = load_config(args.config)
        if config.serve.tls is not None:
            _tls_context(config)
    except ConfigError as exc:
        print(f"pairwatch check-config: {exc}", file=sys.stderr)
        return 2
    count = len(config.pairs)
    summary = f"{count} pair" if count == 1 else f"{count} pairs"
    if config.pairs:
        summary += f" ({', '.join(pair.name for pair in config.pairs)})"
    strip_domain = "true" if config.hosts.strip_domain else "false"
    print(f"# config ok: {summary}, strip_domain={strip_domain}")
    print(render_config(config), end="")
    return 0


def _endpoint(text: str, flag: str) -> Endpoint:
    try:
        return parse_endpoint(text)
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}") from None


def _with_serve_flags(config: Config, args: argparse.Namespace) -> Config:
    """Flags override the file: any of --udp/--tcp/--tls replaces all its listeners."""
    serve = config.serve
    flagged = tuple(Listener(t, _endpoint(text, f"--{t}")) for t in LISTENER_TRANSPORTS for text in getattr(args, t))
    if flagged:
        serve = replace(serve, listeners=flagged)
    if args.http:
        serve = replace(serve, http=_endpoint(args.http, "--http"))
    store = replace(config.store, url=args.store) if args.store else config.store
    config = replace(config, serve=serve, store=store)
    check_serve(config.serve)
    return config


def _tls_context(config: Config) -> ssl.SSLContext:
    from collector.listeners import tls_context

    assert config.serve.tls is not None
    try:
        return tls_context(config.serve.tls)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError("serve.tls_cert", f"cannot load the certificate, key or CA: {exc}") from None


def run_serve(args: argparse.Namespace) -> int:
    """Receive syslog, correlate, store and export metrics until SIGTERM/SIGINT."""
    import logging

    from collector.service import run
    from collector.store_url import parse_store_url

    try:
        config = _with_serve_flags(load_config(args.config), args)
        target = parse_store_url(config.store.url)
        uses_tls = any(lis.transport == "tls" for lis in config.serve.listeners)
        tls = _tls_context(config) if uses_tls else None
    except (UsageError, ConfigError) as exc:
        print(f"pairwatch serve: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    return run(config, target, tls, os.environ.get(TOKEN_ENV) or None)


def run_parse(args: argparse.Namespace, out: TextIO) -> int:
    for stream, options in _inputs(args):
        _emit(stream, options, out)
    out.flush()
    return 0


def run_analyze(args: argparse.Namespace, out: TextIO) -> int:
    """Replay the files through the correlator with the logs' own clock."""
    correlator = Correlator(load_config(args.config))
    sources = [(list(read_lines(stream)), options) for stream, options in _inputs(args)]
    result = replay(sources, correlator)
    if args.json:
        for obj in json_objects(result):
            out.write(_to_json(obj))
            out.write("\n")
    else:
        out.write(render_table(result, tz=_zone(args.tz)))
    out.flush()
    return 0


def _inputs(args: argparse.Namespace) -> Iterator[tuple[BinaryIO, ParseOptions]]:
    """Each input with its parse options; files are opened one at a time and closed after use."""
    for name, stream, options in _opened_inputs(args):
        if name == "-":
            yield stream, options
            continue
        with stream:
            yield stream, options


def _opened_inputs(args: argparse.Namespace) -> Iterator[tuple[str, BinaryIO, ParseOptions]]:
    """(name, open stream, parse options) of each input, opened as they are asked for; the
    caller closes every stream but standard input. The reference instant of a file is its
    mtime (it fixes the year of RFC 3164 timestamps) unless --reference gives one."""
    zone = _zone(args.tz)
    fixed = _instant(args.reference) if args.reference else None
    for name in args.files or ["-"]:
        if name == "-":
            yield name, sys.stdin.buffer, ParseOptions(reference=fixed or datetime.now(UTC), tz=zone)
            continue
        f = open(name, "rb")
        reference = fixed or datetime.fromtimestamp(os.fstat(f.fileno()).st_mtime, UTC)
        yield name, f, ParseOptions(reference=reference, tz=zone)


def read_lines(stream: BinaryIO) -> Iterator[str]:
    """Lines split on LF only (a CR, VT or FF inside a message is not a line break),
    trailing CR removed, invalid UTF-8 replaced."""
    return map(_decode_line, stream)


def _decode_line(raw: bytes) -> str:
    if raw.endswith(b"\n"):
        raw = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1]
    return raw.decode("utf-8", errors="replace")


def _emit(stream: BinaryIO, options: ParseOptions, out: TextIO) -> None:
    parser = LineParser(options)
    write = out.write
    dumps = _to_json
    for line in read_lines(stream):
        write(dumps(event_to_dict(parser.parse(line))))
        write("\n")


def _zone(name: str) -> tzinfo:
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UsageError(f"--tz: unknown time zone {name!r}") from exc


def _instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise UsageError(f"--reference: not an ISO 8601 instant: {text!r}") from exc
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


if __name__ == "__main__":
    sys.exit(main())
