"""/metrics bodies: prometheus_client's two text formats, written with less work per sample.

A fleet's scrape has thousands of samples (one `dhcp_lease_messages_total` per server and
message type), and prometheus_client's writers escape and validate every label name and
metric name again on every sample (its OpenMetrics writer walks sample names character by
character). Under load that cost comes out of the GIL the pipeline needs, and a state
change waits for it on its way to /metrics.

`render(registry, openmetrics)` writes exactly what `prometheus_client.exposition.generate_latest`
(text format 0.0.4) or `prometheus_client.openmetrics.exposition.generate_latest` (OpenMetrics
1.0.0) write with the default escaping (tests/collector/test_metrics.py compares them on a
populated registry), but escapes each distinct name once, label values only when they hold a
character that needs it, and keeps each series' rendered `name{labels}` for the next scrape.
The `dhcp_*` families (`SeriesFamily`) are written from their rows, and not again while their
rows stay the same; of a family whose rows changed, each series' line is written again only
when its value did (the figures: README "Performance", bench/README.md). What pairwatch
never exports (exemplars, native histograms) and Accept headers asking for another escaping
or version are left to prometheus_client:
`render` returns None and `exposition` calls the library.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Final, Literal, TypeVar

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.registry import RestrictedRegistry
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

__all__ = ["Registry", "SeriesFamily", "render"]

T = TypeVar("T")
Registry = CollectorRegistry | RestrictedRegistry
"""What a scrape renders: the registry, or only the families a `name[]` query asks for."""

_OPENMETRICS_SUFFIXES: Final = ("_created", "_gsum", "_gcount")
"""Samples the 0.0.4 text format moves into a gauge family of their own, after the family."""
_TEXT_TYPES: Final = {"counter": "counter", "info": "gauge", "stateset": "gauge", "gaugehistogram": "histogram",
                      "unknown": "untyped"}
_TEXT_NAME_SUFFIX: Final = {"counter": "_total", "info": "_info"}
MAX_SERIES_REMEMBERED: Final = 100_000
"""Rendered series names kept per cache (one per format, and per format and `SeriesFamily`);
forgotten all at once beyond this (label values that churn cannot grow memory)."""


class _Unsupported(Exception):
    """A sample this writer does not handle (an exemplar, a native histogram)."""


class SeriesFamily(Metric):
    """A gauge or counter family of plain series: rows of (label values, value), in the order
    added, with no timestamps, exemplars or `_created` series.

    `render` writes the rows straight out, without a `Sample` and a labels dict per series
    (a fleet's `dhcp_*` families are most of a scrape); `samples`, which prometheus_client's
    writers and `get_sample_value` read, are built from the rows when asked for.
    """

    def __init__(self, name: str, documentation: str, typ: Literal["gauge", "counter"], labels: Sequence[str]) -> None:
        if typ == "counter":
            name = name.removesuffix("_total")
        super().__init__(name, documentation, typ)
        self.labelnames = tuple(labels)
        self.sample_name = name + "_total" if typ == "counter" else name
        self.rows: list[tuple[tuple[str, ...], float]] = []

    def add(self, values: tuple[str, ...], value: float) -> None:
        self.rows.append((values, value))

    @property
    def samples(self) -> list[Sample]:
        names = self.labelnames
        return [Sample(self.sample_name, dict(zip(names, values)), value, None, None) for values, value in self.rows]

    @samples.setter
    def samples(self, value: list[Sample]) -> None:  # (Metric.__init__ sets an empty list)
        if value:
            raise TypeError("a SeriesFamily takes rows (add), not samples")


def _memo(escape: Callable[[str], str]) -> Callable[[str], str]:
    """`escape` remembered per distinct name (metric and label names are a small fixed set)."""
    known: dict[str, str] = {}

    def cached(name: str) -> str:
        value = known.get(name)
        if value is None:
            value = known[name] = escape(name)
        return value

    return cached


_metric_name = _memo(lambda name: openmetrics.escape_metric_name(name, openmetrics.UNDERSCORES))
_label_name = _memo(lambda name: openmetrics.escape_label_name(name, openmetrics.UNDERSCORES))
# the OpenMetrics writer escapes sample names with the label-name character set
_om_sample_name = _memo(
    lambda name: openmetrics._escape(name, openmetrics.UNDERSCORES, openmetrics._is_legacy_labelname_rune)
)


def _label_value(value: str) -> str:
    if "\\" in value or "\n" in value or '"' in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return value


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join([f'{_label_name(k)}="{_label_value(v)}"' for k, v in sorted(labels.items())]) + "}"


def _remember(known: dict[Hashable, T], key: Hashable, text: T) -> T:
    """`text` kept as `known[key]` (what its caller just wrote for a series): a fleet's series
    are the same scrape after scrape, and escaping and sorting their labels was half of a
    scrape's cost. Forgotten all at once past `MAX_SERIES_REMEMBERED` (label values that churn
    cannot grow memory)."""
    if len(known) >= MAX_SERIES_REMEMBERED:
        known.clear()
    known[key] = text
    return text


def _series(sample_name: Callable[[str], str]) -> Callable[[Sample], str]:
    """A sample's `name{labels}`, remembered per series."""
    known: dict[Hashable, str] = {}

    def series(sample: Sample) -> str:
        labels = sample.labels
        key = (sample.name, *labels, *labels.values())  # (1 + 2n items: names and values never mix)
        text = known.get(key)
        if text is None:
            text = _remember(known, key, sample_name(sample.name) + _labels(labels))
        return text

    return series


_text_series = _series(_metric_name)
_om_series = _series(_om_sample_name)


def _value_text(value: float) -> str:
    """`floatToGoString(value)`, without the float round trip for the small integers that
    counts and one-hot gauges are (it writes 1e6 and above with an exponent)."""
    if type(value) is int and value < 1_000_000:
        return f"{value}.0"
    return floatToGoString(value)


@dataclass(slots=True)
class _Written:
    """What one `SeriesFamily` (per format) was written as: by each row's label values, its
    `name{labels}`, and the value and line it was last written with (under load a scrape
    finds most counters where the last one left them: their lines are reused); and the rows
    and lines of the last scrape (a family whose rows did not change since, states and
    conditions mostly, is not written again)."""

    series: dict[Hashable, tuple[str, float, str]] = field(default_factory=dict)
    rows: list[tuple[tuple[str, ...], float]] | None = None
    lines: list[str] = field(default_factory=list)


_WRITTEN: Final[dict[tuple[bool, str, tuple[str, ...]], _Written]] = {}
"""By (OpenMetrics?, sample name, label names)."""


def _row_lines(family: SeriesFamily, openmetrics_format: bool) -> list[str]:
    key = (openmetrics_format, family.sample_name, family.labelnames)
    written = _WRITTEN.get(key) or _WRITTEN.setdefault(key, _Written())
    if written.rows == family.rows:  # (equal values write alike; -0.0 is never a row's)
        return written.lines
    labelnames = family.labelnames
    escaped = (_om_sample_name if openmetrics_format else _metric_name)(family.sample_name)
    known = written.series
    lines: list[str] = []
    append = lines.append
    for values, value in family.rows:
        last = known.get(values)
        if last is not None and last[1] == value:  # (equal values write alike; -0.0 is never a row's)
            line = last[2]
        else:
            series = escaped + _labels(dict(zip(labelnames, values))) if last is None else last[0]
            line = f"{series} {_value_text(value)}\n"
            _remember(known, values, (series, value, line))
        append(line)
    written.rows, written.lines = family.rows, lines
    return lines


def _text_line(sample: Sample) -> str:
    if sample.exemplar is not None or sample.native_histogram is not None:
        raise _Unsupported
    stamp = "" if sample.timestamp is None else f" {int(float(sample.timestamp) * 1000):d}"
    return f"{_text_series(sample)} {floatToGoString(sample.value)}{stamp}\n"


def _om_line(sample: Sample) -> str:
    if sample.exemplar is not None or sample.native_histogram is not None:
        raise _Unsupported
    value = "" if sample.value is None else floatToGoString(sample.value)
    stamp = "" if sample.timestamp is None else f" {sample.timestamp}"
    return f"{_om_series(sample)} {value}{stamp}\n"


def _help_text(documentation: str) -> str:
    return documentation.replace("\\", r"\\").replace("\n", r"\n")


def _text(registry: Registry) -> str:
    out: list[str] = []
    append = out.append
    for metric in registry.collect():
        name = metric.name + _TEXT_NAME_SUFFIX.get(metric.type, "")
        escaped = _metric_name(name)
        append(f"# HELP {escaped} {_help_text(metric.documentation)}\n")
        append(f"# TYPE {escaped} {_TEXT_TYPES.get(metric.type, metric.type)}\n")
        if type(metric) is SeriesFamily:
            out.extend(_row_lines(metric, False))
            continue
        moved: dict[str, list[str]] = {}
        suffixes = {metric.name + suffix: suffix for suffix in _OPENMETRICS_SUFFIXES}
        for sample in metric.samples:
            suffix = suffixes.get(sample.name)
            if suffix is None:
                append(_text_line(sample))
            else:
                moved.setdefault(suffix, []).append(_text_line(sample))
        for suffix, lines in sorted(moved.items()):
            gauge = _metric_name(metric.name + suffix)
            append(f"# HELP {gauge} {_help_text(metric.documentation)}\n")
            append(f"# TYPE {gauge} gauge\n")
            out.extend(lines)
    return "".join(out)


def _openmetrics(registry: Registry) -> str:
    out: list[str] = []
    append = out.append
    for metric in registry.collect():
        escaped = _metric_name(metric.name)
        append(f"# HELP {escaped} {_label_value(metric.documentation)}\n")  # (the same escapes)
        append(f"# TYPE {escaped} {metric.type}\n")
        if metric.unit:
            append(f"# UNIT {escaped} {metric.unit}\n")
        if type(metric) is SeriesFamily:
            out.extend(_row_lines(metric, True))
        else:
            out.extend([_om_line(sample) for sample in metric.samples])
    append("# EOF\n")
    return "".join(out)


def render(registry: Registry, openmetrics_format: bool) -> bytes | None:
    """The registry in text format 0.0.4, or OpenMetrics 1.0.0 with `openmetrics_format`;
    None when a sample needs what only prometheus_client writes (the caller uses it)."""
    try:
        return (_openmetrics(registry) if openmetrics_format else _text(registry)).encode("utf-8")
    except _Unsupported:
        return None


def exposition(registry: CollectorRegistry, accept_header: str | None, names: Sequence[str] = ()) -> tuple[bytes, str]:
    """The /metrics body and its Content-Type for a request's Accept header (text format
    0.0.4 unless the scraper asks for OpenMetrics), written by `render`
    when it can, else by prometheus_client. `names`: only those series (prometheus_client's
    `name[]` query: each a sample name such as `pairwatch_store_rows_total`)."""
    encoder, content_type = choose_encoder(accept_header or "")
    chosen: Registry = registry.restricted_registry(names) if names else registry
    body = None
    if encoder is generate_latest:
        body = render(chosen, openmetrics_format=False)
    elif (isinstance(encoder, partial) and encoder.func is openmetrics.generate_latest
          and encoder.keywords == {"escaping": openmetrics.UNDERSCORES, "version": "1.0.0"}):
        body = render(chosen, openmetrics_format=True)
    return encoder(chosen) if body is None else body, content_type
