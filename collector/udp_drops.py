"""The kernel's own drop count of each UDP listener's socket: the loss no counter of ours can see.

Read from /proc/net/udp(6) at scrape time, as `pairwatch_udp_receive_drops_total{listener}`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

from prometheus_client.metrics_core import CounterMetricFamily, Metric

from collector.metric_names import PAIRWATCH_UDP_RECEIVE_DROPS

__all__ = ["UdpDropsCollector", "read_proc_net_udp", "udp_drops"]


def udp_drops(proc_net_udp: str) -> dict[int, int]:
    """Socket inode -> datagrams the kernel dropped, from the text of /proc/net/udp(6).

    The kernel counts a datagram as dropped when the socket's receive buffer is full: the
    loss that no counter of ours can see. Columns: `sl local rem st queues tr when retr uid
    timeout inode ref pointer drops`."""
    out: dict[int, int] = {}
    for line in proc_net_udp.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 13 and fields[9].isdigit() and fields[-1].isdigit():
            out[int(fields[9])] = int(fields[-1])
    return out


def read_proc_net_udp() -> str:
    """/proc/self/net/udp and udp6 (this process's network namespace), "" where absent."""
    parts = []
    for name in ("udp", "udp6"):
        try:
            with open(f"/proc/self/net/{name}", encoding="ascii", errors="replace") as f:
                parts.append(f.read())
        except OSError:
            pass
    return "".join(parts)


class UdpDropsCollector:
    """`pairwatch_udp_receive_drops_total{listener}`: the kernel's drop count of each UDP
    listener's socket, read at scrape time (`read` returns /proc/net/udp text; injectable).

    `sockets` holds (listener label, socket inode) pairs; listeners sharing a label add up."""

    def __init__(self, sockets: Sequence[tuple[str, int]], read: Callable[[], str] = read_proc_net_udp) -> None:
        self._sockets = tuple(sockets)
        self._read = read

    def describe(self) -> Iterable[Metric]:
        return [self._family()]

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        drops = udp_drops(self._read()) if self._sockets else {}
        totals: dict[str, int] = {}
        for label, inode in self._sockets:
            totals[label] = totals.get(label, 0) + drops.get(inode, 0)
        for label, total in totals.items():
            family.add_metric([label], total)
        yield family

    @staticmethod
    def _family() -> CounterMetricFamily:
        return CounterMetricFamily(PAIRWATCH_UDP_RECEIVE_DROPS.removesuffix("_total"), _UDP_DROPS_HELP,
                                   labels=["listener"])


_UDP_DROPS_HELP = "Datagrams the kernel dropped on a UDP listener's socket (receive buffer full)."
