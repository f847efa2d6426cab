"""The lab: real network namespaces, real rsyslog, dhcpd, Kea, dhclient and `pairwatch serve`.

Layout (every name carries a per-run prefix, so crashed or parallel runs never collide):

* namespace LAN holds bridge `br0` with 198.18.0.254/24; `pairwatch serve` runs there and
  listens for syslog on 198.18.0.254 and for HTTP on 127.0.0.1 (of LAN).
* one namespace per host (`dhcp1`, `kea2`, `cl` for the clients), joined to the bridge by a
  veth pair: `e0` inside the host, `v-NAME` on the bridge.
* each DHCP server host also gets an *anchor*: a `sleep` process started with
  `unshare -m -u` inside the host's namespace. Its mount namespace carries the bind mount of
  the host's own rsyslog socket on `/dev/log` (dhcpd and Kea log through syslog(3), which
  only knows `/dev/log`); its UTS namespace carries the host name rsyslog puts in every
  header. rsyslog and the DHCP server are started with `nsenter` into the anchor, so either
  can be killed and restarted on its own, by pid.

Everything started is recorded in `Lab` and stopped by pid in `Lab.close` (reverse order),
then the namespaces are deleted; `close` runs from fixtures' `finally`, so a failed test
leaves nothing behind. Nothing here uses an address outside 198.18.0.0/24, and no such
address exists outside the namespaces created here.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import tomllib

from collector.config import parse_config
from collector.correlator import Correlator
from collector.domain import Incident
from collector.replay import replay
from parsers import ParseOptions
from tests.serving import metric_samples, wait_until

ROOT = Path(__file__).resolve().parents[2]
SUBNET = "198.18.0"
COLLECTOR = f"{SUBNET}.254"
SYSLOG_PORT = 5514
HTTP_PORT = 9874
STOP_DEADLINE = 10.0
DEV_LOG = Path("/dev/log")
CLONE_NEWNET = 0x40000000

T = TypeVar("T")


class LabError(AssertionError):
    """A lab step failed or a wait timed out (an AssertionError, so pytest shows it as a failure)."""


def run(*argv: str, timeout: float = 30.0, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a short command; its output is kept for the error message when it fails."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if check and done.returncode != 0:
        raise LabError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip() or done.stdout.strip()}")
    return done


def wait_for(condition: Callable[[], T], what: str, deadline: float, explain: Callable[[], str] = str) -> T:
    """Poll `condition` every 0.1 s until it is truthy and return it; fail after `deadline` s."""
    result = wait_until(condition, deadline)
    if not result:
        raise LabError(f"timed out after {deadline:.0f} s waiting for {what}\n{explain()}")
    return result


@dataclass
class Proc:
    """A process the lab started; its output goes to `log`."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, sig: int = signal.SIGTERM, deadline: float = STOP_DEADLINE) -> int | None:
        """Send `sig` and wait for the exit (SIGKILL after `deadline`); returns the exit status."""
        if self.popen.poll() is None:
            try:
                self.popen.send_signal(sig)
                self.popen.wait(deadline)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        return self.popen.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class Host:
    """A namespace on the bridge; DHCP servers also get an anchor (private /dev/log, own name)."""

    lab: Lab
    name: str
    ns: str
    address: str | None
    port: str  # the veth end on the bridge, in LAN
    dir: Path
    anchor: Proc | None = None

    def enter(self, *argv: str) -> list[str]:
        """argv run inside this host: its namespace, and the anchor's mounts and name if any."""
        if self.anchor is None:
            return ["ip", "netns", "exec", self.ns, *argv]
        return ["nsenter", "-t", str(self.anchor.pid), "-m", "-u", "-n", "--", *argv]

    def run(self, *argv: str, timeout: float = 30.0, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(*self.enter(*argv), timeout=timeout, check=check)

    def start(self, name: str, *argv: str, env: dict[str, str] | None = None) -> Proc:
        return self.lab.start(f"{self.name}-{name}", self.enter(*argv), env=env)


class NetnsClient:
    """HTTP to 127.0.0.1 inside a namespace: one thread entered into it (setns(2) moves only the
    calling thread; a socket keeps the namespace it was created in)."""

    def __init__(self, ns: str) -> None:
        self._ns = ns
        self._pool = ThreadPoolExecutor(max_workers=1, initializer=self._enter)

    def _enter(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(f"/run/netns/{self._ns}", os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"setns {self._ns}: {os.strerror(err)}")
        finally:
            os.close(fd)

    def get(self, url: str, timeout: float = 10.0) -> tuple[int, bytes]:
        return self._pool.submit(_http_get, url, timeout).result(timeout + 5)

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def _http_get(url: str, timeout: float) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


class Lab:
    """Namespaces, bridge and every process of one test; `close()` undoes all of it."""

    def __init__(self, root: Path) -> None:
        self.id = uuid.uuid4().hex[:6]
        self.root = root
        self.procs: list[Proc] = []
        self.namespaces: list[str] = []
        self.closers: list[Callable[[], None]] = []
        try:
            self.lan = self._netns("lan")
            for argv in (
                ("ip", "-n", self.lan, "link", "add", "br0", "type", "bridge"),
                ("ip", "-n", self.lan, "addr", "add", f"{COLLECTOR}/24", "dev", "br0"),
                ("ip", "-n", self.lan, "link", "set", "br0", "up"),
            ):
                run(*argv)
        except BaseException:
            self.close()
            raise

    def _netns(self, short: str) -> str:
        name = f"pwlab-{self.id}-{short}"
        run("ip", "netns", "add", name)
        self.namespaces.append(name)
        run("ip", "-n", name, "link", "set", "lo", "up")
        return name

    def add_host(self, name: str, address: str | None, anchored: bool) -> Host:
        """A namespace `name` on the bridge, `e0` addressed `address`/24 (None: no address)."""
        ns = self._netns(name)
        port = f"v-{name}"
        for argv in (  # made inside LAN: nothing is ever created in the root namespace
            ("ip", "-n", self.lan, "link", "add", port, "type", "veth", "peer", "name", "e0", "netns", ns),
            ("ip", "-n", self.lan, "link", "set", port, "master", "br0", "up"),
            ("ip", "-n", ns, "link", "set", "e0", "up"),
        ):
            run(*argv)
        if address is not None:
            run("ip", "-n", ns, "addr", "add", f"{address}/24", "dev", "e0")
        directory = self.root / name
        directory.mkdir()
        host = Host(self, name, ns, address, port, directory)
        if anchored:
            if not DEV_LOG.exists():
                raise LabError(f"{DEV_LOG} must exist as the mount point of each server's own log socket")
            host.anchor = self.start(f"{name}-anchor", ["ip", "netns", "exec", ns, "unshare", "-m", "-u",
                                                        "--propagation", "private", "sleep", "infinity"])
            wait_for(lambda: _ns_of(host.anchor, "uts") != _ns_of_self("uts"), f"{name}'s anchor namespaces", 10)
            host.run("hostname", name)
        return host

    def start(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> Proc:
        log = self.root / f"{name}.out"
        with open(log, "ab") as out:
            popen = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=None if env is None else {**os.environ, **env}, cwd=cwd)
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def isolate(self, host: Host, on: bool) -> None:
        """Bridge port isolation: isolated ports reach every other port but not each other."""
        run("ip", "netns", "exec", self.lan, "bridge", "link", "set", "dev", host.port, "isolated",
            "on" if on else "off")

    def close(self) -> None:
        """Stop every process (last started first), run closers, delete the namespaces."""
        errors = []
        for closer in reversed(self.closers):
            try:
                closer()
            except Exception as exc:  # teardown goes on; the first error is reported at the end
                errors.append(exc)
        for proc in reversed(self.procs):
            proc.stop()
        for ns in reversed(self.namespaces):
            done = run("ip", "netns", "del", ns, check=False)
            if done.returncode != 0:
                errors.append(LabError(f"ip netns del {ns}: {done.stderr.strip()}"))
        if errors:
            raise errors[0]


def _ns_of(proc: Proc | None, kind: str) -> str:
    try:
        return os.readlink(f"/proc/{proc.pid}/ns/{kind}") if proc else ""
    except OSError:
        return ""


def _ns_of_self(kind: str) -> str:
    return os.readlink(f"/proc/self/ns/{kind}")


# --- rsyslog -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Forwarding:
    """How an rsyslog peer forwards: `protocol` tcp or udp, TCP framing, template."""

    protocol: str = "tcp"
    framing: str = "octet-counted"
    template: str = "RSYSLOG_SyslogProtocol23Format"

    def action(self) -> str:
        framing = f' TCP_Framing="{self.framing}"' if self.protocol == "tcp" else ""
        return (f'action(type="omfwd" target="{COLLECTOR}" port="{SYSLOG_PORT}" protocol="{self.protocol}"{framing}'
                f' template="{self.template}" queue.type="LinkedList" action.resumeRetryCount="-1"'
                f' action.resumeInterval="1")')


class Rsyslog:
    """A host's own rsyslogd: imuxsock on DIR/log.sock (bound on the host's /dev/log), a local
    JSON-lines copy of every message (the ground truth) and the forward to pairwatch."""

    def __init__(self, host: Host, forwarding: Forwarding) -> None:
        self.host = host
        self.forwarding = forwarding
        self.dir = host.dir / "rsyslog"
        self.dir.mkdir()
        self.socket = self.dir / "log.sock"
        self.truth = self.dir / "truth.jsonl"
        self.conf = self.dir / "rsyslog.conf"
        self.conf.write_text(self._config())
        self.proc: Proc | None = None

    def _config(self) -> str:
        return f"""
global(workDirectory="{self.dir}" maxMessageSize="64k")
module(load="imuxsock" SysSock.Name="{self.socket}" SysSock.RateLimit.Interval="0" SysSock.Unlink="on")
template(name="truth" type="list" option.jsonf="on") {{
  property(outname="ts" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="host" name="hostname" format="jsonf")
  property(outname="program" name="programname" format="jsonf")
  property(outname="pid" name="procid" format="jsonf")
  property(outname="msg" name="msg" format="jsonf")
}}
*.* action(type="omfile" file="{self.truth}" template="truth")
*.* {self.forwarding.action()}
"""

    def start(self) -> None:
        """Start rsyslogd and (re)bind its socket on the host's /dev/log."""
        if self.socket.exists():
            self.socket.unlink()
        # TZ=UTC: RFC 3164 stamps carry no zone, and pairwatch reads them as UTC by default
        self.proc = self.host.start("rsyslogd", "rsyslogd", "-n", "-f", str(self.conf), "-i", str(self.dir / "pid"),
                                    env={"TZ": "UTC"})
        proc = self.proc
        wait_for(lambda: self.socket.exists() or not proc.alive(), "rsyslogd's socket", 15)
        if not proc.alive():
            raise LabError(f"rsyslogd on {self.host.name} exited:\n{proc.output()}")
        self.host.run("sh", "-c", "umount /dev/log 2>/dev/null; mount --bind \"$0\" /dev/log", str(self.socket))

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.stop(signal.SIGKILL)

    def lines(self) -> list[dict[str, str]]:
        """Every message this rsyslog wrote locally, in order (a torn last line is left out)."""
        if not self.truth.exists():
            return []
        out = []
        for raw in self.truth.read_text(errors="replace").splitlines():
            try:
                out.append(json.loads(raw))
            except json.JSONDecodeError:
                continue
        return out


# --- pairwatch ---------------------------------------------------------------------------


class Pairwatch:
    """`pairwatch serve` inside LAN, listening on the bridge address; its API through `NetnsClient`."""

    def __init__(self, lab: Lab, config: str) -> None:
        self.dir = lab.root / "pairwatch"
        self.dir.mkdir()
        self.config = self.dir / "pairwatch.toml"
        self.config.write_text(config)
        argv = [
            "ip", "netns", "exec", lab.lan, sys.executable, "-m", "collector.cli", "serve",
            "--udp", f"{COLLECTOR}:{SYSLOG_PORT}", "--tcp", f"{COLLECTOR}:{SYSLOG_PORT}",
            "--http", f"127.0.0.1:{HTTP_PORT}", "--store", f"embedded:{self.dir / 'store'}",
            "--config", str(self.config),
        ]
        self.client = NetnsClient(lab.lan)
        lab.closers.append(self.client.close)
        self.proc = lab.start("pairwatch", argv, cwd=ROOT)
        wait_for(self._ready, "pairwatch /readyz", 90, self.output)

    def _ready(self) -> bool:
        if not self.proc.alive():
            raise LabError(f"pairwatch serve exited {self.proc.popen.returncode}:\n{self.output()}")
        try:
            return self.get("/readyz")[0] == 200
        except OSError:
            return False

    def output(self) -> str:
        """For failure messages: the pairs as the API sees them, and the service's log."""
        try:
            pairs = json.dumps(self.json("/api/v1/pairs"), indent=1)
        except (OSError, LabError, ValueError) as exc:
            pairs = f"(no answer: {exc})"
        return f"--- /api/v1/pairs ---\n{pairs}\n--- pairwatch serve log ---\n{self.proc.output()[-20000:]}"

    def get(self, path: str) -> tuple[int, bytes]:
        return self.client.get(f"http://127.0.0.1:{HTTP_PORT}{path}")

    def json(self, path: str) -> Any:
        status, body = self.get(path)
        if status != 200:
            raise LabError(f"GET {path}: {status} {body[:500]!r}")
        return json.loads(body)

    def samples(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        status, body = self.get("/metrics")
        if status != 200:
            raise LabError(f"GET /metrics: {status}")
        return metric_samples(body)

    def value(self, name: str, **labels: str) -> float | None:
        return self.samples().get((name, tuple(sorted(labels.items()))))

    def incidents(self, every: bool = False) -> list[dict[str, Any]]:
        return list(self.json("/api/v1/incidents" + ("?all=1" if every else ""))["incidents"])

    def pair(self, name: str) -> dict[str, Any] | None:
        return next((p for p in self.json("/api/v1/pairs")["pairs"] if p["name"] == name), None)

    def timeline(self, host: str) -> list[dict[str, Any]]:
        """Every stored message of `host`, oldest first (following the `next` cursor)."""
        out: list[dict[str, Any]] = []
        after = ""
        while True:
            page = self.json(f"/api/v1/timeline?host={host}&limit=5000{after}")
            out.extend(page["messages"])
            if "next" not in page:
                return out
            after = f"&after={urllib.request.quote(page['next'])}"

    def wait(self, condition: Callable[[], T], what: str, deadline: float = 30.0) -> T:
        return wait_for(condition, what, deadline, self.output)

    def wait_closed(self, conditions: Iterable[str], deadline: float = 30.0) -> list[dict[str, Any]]:
        """Every incident of these conditions closed, in the correlator and in the store (which
        is written within about a second); returns every stored incident."""
        names = set(conditions)

        def closed() -> list[dict[str, Any]] | None:
            if any(i["condition"] in names for i in self.incidents()):
                return None
            rows = self.incidents(every=True)
            return rows if all(i["end"] for i in rows if i["condition"] in names) else None

        return self.wait(closed, f"every {sorted(names)} incident closed", deadline)

    def wait_incident(self, condition: str, pair: str, deadline: float = 30.0,
                      servers: Iterable[str] | None = None) -> dict[str, Any]:
        """The first open incident of `condition` on `pair` (involving `servers`, if given)."""
        wanted = set(servers or ())

        def found() -> dict[str, Any] | None:
            return next((i for i in self.incidents() if i["condition"] == condition and i["pair"] == pair
                         and wanted <= set(i["servers"])), None)

        return self.wait(found, f"open incident {condition} on {pair} {sorted(wanted)}", deadline)


KEA_PREFIX = re.compile(r"[A-Z]+ +\[[^\]]*\] ")
"""Kea's own `SEVERITY [logger.thread] ` layout, which pairwatch stores as a header (the
timeline `message` of a Kea line starts at the message id)."""


def _as_stored(program: str, msg: str) -> str:
    text = msg.lstrip(" ")
    prefix = KEA_PREFIX.match(text) if program.startswith("kea") else None
    return text[prefix.end():] if prefix else text


def ground_truth_problems(pairwatch: Pairwatch, syslogs: Sequence[Rsyslog]) -> str:
    """'' when pairwatch stored exactly the lines each rsyslog wrote locally (same multiset of
    (program, message) per host); else what is missing and what is extra."""
    problems = []
    for rs in syslogs:
        truth = [(line["program"], _as_stored(line["program"], line["msg"])) for line in rs.lines()]
        stored = [(row["program"] or "", row["message"]) for row in pairwatch.timeline(rs.host.name)]
        missing, extra = _multiset_diff(truth, stored), _multiset_diff(stored, truth)
        if missing or extra:
            problems.append(f"{rs.host.name}: {len(truth)} local lines, {len(stored)} stored; "
                            f"missing {missing[:5]} extra {extra[:5]}")
    return "\n".join(problems)


def _multiset_diff(a: list[tuple[str, str]], b: list[tuple[str, str]]) -> list[tuple[str, str]]:
    rest: dict[tuple[str, str], int] = {}
    for item in b:
        rest[item] = rest.get(item, 0) + 1
    out = []
    for item in a:
        if rest.get(item, 0) > 0:
            rest[item] -= 1
        else:
            out.append(item)
    return out


def line_time(rs: Rsyslog, text: str) -> float:
    """The local timestamp (epoch) of the first line of `rs` containing `text`."""
    from datetime import datetime

    for line in rs.lines():
        if text in line["msg"]:
            return datetime.fromisoformat(line["ts"]).timestamp()
    raise LabError(f"{rs.host.name} logged no line containing {text!r}")


def local_log(rs: Rsyslog) -> list[str]:
    """The host's local lines as a syslog file would hold them (`TIMESTAMP HOST PROGRAM: MSG`,
    RFC 3339 stamps as written), for `pairwatch analyze` and the replay."""
    return [f"{line['ts']} {line['host']} {line['program']}{_pid_tag(line.get('pid', '-'))}:{line['msg']}"
            for line in rs.lines()]


def _pid_tag(pid: str) -> str:
    """`[PID]` as syslog(3) writes it with LOG_PID, or nothing (rsyslog's procid is `-` without)."""
    return f"[{pid}]" if pid.isdigit() else ""


def analyze_local(syslogs: Sequence[Rsyslog], config: str) -> list[Incident]:
    """The incidents `pairwatch analyze` finds in the servers' local logs (the ground truth)."""
    correlator = Correlator(parse_config(tomllib.loads(config)))
    return replay([(local_log(rs), ParseOptions()) for rs in syslogs], correlator).incidents


def iso_epoch(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# --- ISC dhcpd ----------------------------------------------------------------------------

RELATIONSHIP = "pw-lab"
POOL = (f"{SUBNET}.20", f"{SUBNET}.199")


@dataclass(frozen=True)
class FailoverTimers:
    """dhcpd failover timers: short, so the lab's waits stay short."""

    mclt: int = 30
    max_response_delay: int = 6


class Dhcpd:
    """One ISC dhcpd failover peer (foreground, `-f`), logging to its host's rsyslog."""

    def __init__(self, host: Host, primary: bool, peer: str, timers: FailoverTimers) -> None:
        self.host = host
        self.primary = primary
        self.conf = host.dir / "dhcpd.conf"
        self.leases = host.dir / "dhcpd.leases"
        self.pidfile = host.dir / "dhcpd.pid"
        role = f"primary; mclt {timers.mclt}; split 128;" if primary else "secondary;"
        self.conf.write_text(f"""
authoritative;
ddns-update-style none;
log-facility local7;
default-lease-time 600;
max-lease-time 600;
omapi-port 7911;
failover peer "{RELATIONSHIP}" {{
  {role}
  address {host.address}; port 647;
  peer address {peer}; peer port 647;
  max-response-delay {timers.max_response_delay}; max-unacked-updates 10; load balance max seconds 3;
}}
subnet {SUBNET}.0 netmask 255.255.255.0 {{
  pool {{ failover peer "{RELATIONSHIP}"; range {POOL[0]} {POOL[1]}; }}
}}
""")
        self.proc: Proc | None = None

    def start(self, empty_leases: bool = False) -> None:
        """Start dhcpd; `empty_leases` (or no lease file yet) starts it with an empty one."""
        if empty_leases or not self.leases.exists():
            self.leases.write_text("")
            for stale in self.host.dir.glob("dhcpd.leases~"):
                stale.unlink()
        self.proc = self.host.start("dhcpd", "dhcpd", "-4", "-f", "-cf", str(self.conf), "-lf", str(self.leases),
                                    "-pf", str(self.pidfile), "e0")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop dhcpd and wait until the pid is gone (a restart before that refuses to run)."""
        assert self.proc is not None
        self.proc.stop(sig)

    def omshell_local_state(self, state: int) -> None:
        """Set this server's own failover state through OMAPI (4 partner-down, 1 startup)."""
        script = (f"server 127.0.0.1\nport 7911\nconnect\nnew failover-state\nset name = \"{RELATIONSHIP}\"\n"
                  f"open\nset local-state = {state}\nupdate\n")
        done = subprocess.run(self.host.enter("omshell"), input=script, capture_output=True, text=True, timeout=20)
        if done.returncode != 0 or "can't" in done.stdout.lower() or "error" in done.stdout.lower():
            raise LabError(f"omshell on {self.host.name}: rc {done.returncode}\n{done.stdout}\n{done.stderr}")


# --- clients ---------------------------------------------------------------------------------


class Clients:
    """dhclient processes, one per macvlan of the client namespace (each its own MAC)."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.count = 0
        self.conf = host.dir / "dhclient.conf"
        self.conf.write_text("timeout 60;\nretry 5;\n")
        host.run("ip", "link", "set", "e0", "up")

    def ask(self, n: int) -> list[Path]:
        """Start `n` new clients asking for a lease; returns their lease files."""
        files = []
        for _ in range(n):
            name = f"c{self.count}"
            self.count += 1
            self.host.run("ip", "link", "add", name, "link", "e0", "type", "macvlan", "mode", "bridge")
            self.host.run("ip", "link", "set", name, "up")
            lease = self.host.dir / f"{name}.leases"
            self.host.start(f"dhclient-{name}", "dhclient", "-4", "-d", "-1", "-sf", "/bin/true", "-cf",
                            str(self.conf), "-lf", str(lease), "-pf", str(self.host.dir / f"{name}.pid"), name)
            files.append(lease)
        return files


def leased(files: Iterable[Path]) -> list[str]:
    """The address each lease file holds ('' while it holds none yet)."""
    out = []
    for f in files:
        text = f.read_text() if f.exists() else ""
        address = ""
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("fixed-address "):
                address = line.split()[1].rstrip(";")
        out.append(address)
    return out


class DhcpdPair:
    """A dhcpd failover pair on two anchored hosts with their rsyslogs running: the first host
    primary, the second secondary; `start()` starts both servers."""

    def __init__(self, syslogs: tuple[Rsyslog, Rsyslog], timers: FailoverTimers) -> None:
        h1, h2 = (rs.host for rs in syslogs)
        assert h1.address is not None and h2.address is not None
        self.syslogs = syslogs
        self.primary = Dhcpd(h1, True, h2.address, timers)
        self.secondary = Dhcpd(h2, False, h1.address, timers)

    def start(self) -> None:
        self.primary.start()
        self.secondary.start()


@dataclass(frozen=True)
class PairDecl:
    """A `[[pair]]` of the pairwatch configuration."""

    name: str
    hosts: tuple[str, str]
    implementation: str
    relationship: str | None = None
    mclt: float | None = None


def pairwatch_config(pairs: Sequence[PairDecl], limits: dict[str, float]) -> str:
    """The TOML text for `pairwatch serve --config` (durations in seconds)."""
    out = ["[limits]", *(f"{k} = {v}" for k, v in limits.items())]
    for p in pairs:
        out += ["[[pair]]", f"name = {json.dumps(p.name)}", f"hosts = {json.dumps(list(p.hosts))}",
                f"implementation = {json.dumps(p.implementation)}"]
        if p.relationship is not None:
            out.append(f"relationship = {json.dumps(p.relationship)}")
        if p.mclt is not None:
            out.append(f"mclt = {p.mclt}")
    return "\n".join(out) + "\n"


DHCPD_PAIR = "lab"
KEA_PAIR = "kea-lab"


def dhcpd_decl(mclt: float) -> PairDecl:
    return PairDecl(DHCPD_PAIR, ("dhcp1", "dhcp2"), "dhcpd", RELATIONSHIP, mclt)


def kea_decl() -> PairDecl:
    return PairDecl(KEA_PAIR, ("kea1", "kea2"), "kea")


def assert_timeline_complete(pw: Pairwatch, syslogs: Sequence[Rsyslog], deadline: float = 30.0) -> None:
    """pairwatch stored exactly what each server's rsyslog wrote locally: nothing lost, nothing
    twice (polled: the last lines may still be on their way)."""
    wait_for(lambda: not ground_truth_problems(pw, syslogs), "pairwatch's timeline to equal the local files",
             deadline, lambda: ground_truth_problems(pw, syslogs))


def address_in_pool(address: str) -> bool:
    first, last = (int(a.rsplit(".", 1)[1]) for a in POOL)
    prefix, _, tail = address.rpartition(".")
    return prefix == SUBNET and tail.isdigit() and first <= int(tail) <= last


# --- Kea -------------------------------------------------------------------------------------

KEA_HOOKS = Path("/usr/lib/x86_64-linux-gnu/kea/hooks")
KEA_MODES = {"load-balancing": ("primary", "secondary"), "hot-standby": ("primary", "standby")}


def ha_name(host: str) -> str:
    """Kea's `this-server-name` of a lab host: deliberately not its host name (metrics must
    carry the syslog host, never this)."""
    return f"ha-{host}"


class Kea:
    """One kea-dhcp4 of an HA pair (HA hook with its own HTTP listener, memfile leases)."""

    def __init__(self, host: Host, mode: str, peers: Sequence[Host]) -> None:
        self.host = host
        self.dir = host.dir / "kea"
        self.dir.mkdir()
        self.conf = self.dir / "kea-dhcp4.conf"
        roles = KEA_MODES[mode]
        ha = {
            "this-server-name": ha_name(host.name),
            "mode": mode,
            "heartbeat-delay": 1000,
            "max-response-delay": 3000,
            "max-ack-delay": 2000,
            "max-unacked-clients": 0,
            "sync-timeout": 30000,
            "multi-threading": {"enable-multi-threading": True, "http-dedicated-listener": True,
                                "http-listener-threads": 1, "http-client-threads": 1},
            "peers": [{"name": ha_name(p.name), "url": f"http://{p.address}:8000/", "role": role,
                       "auto-failover": True} for p, role in zip(peers, roles)],
        }
        config = {"Dhcp4": {
            "interfaces-config": {"interfaces": ["e0"]},
            "lease-database": {"type": "memfile", "persist": True, "name": str(self.dir / "leases4.csv"),
                               "lfc-interval": 0},
            "control-socket": {"socket-type": "unix", "socket-name": str(self.dir / "control.sock")},
            "multi-threading": {"enable-multi-threading": True, "thread-pool-size": 2, "packet-queue-size": 16},
            "valid-lifetime": 600,
            "hooks-libraries": [
                {"library": str(KEA_HOOKS / "libdhcp_lease_cmds.so")},
                {"library": str(KEA_HOOKS / "libdhcp_ha.so"), "parameters": {"high-availability": [ha]}},
            ],
            "subnet4": [{"id": 1, "subnet": f"{SUBNET}.0/24", "pools": [{"pool": f"{POOL[0]} - {POOL[1]}"}]}],
            "loggers": [{"name": "kea-dhcp4", "output_options": [{"output": "syslog"}], "severity": "INFO"}],
        }}
        self.conf.write_text(json.dumps(config, indent=1))
        self.proc: Proc | None = None

    def start(self) -> None:
        env = {"KEA_PIDFILE_DIR": str(self.dir), "KEA_LOCKFILE_DIR": str(self.dir)}
        self.proc = self.host.start("kea", "kea-dhcp4", "-c", str(self.conf), env=env)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        assert self.proc is not None
        self.proc.stop(sig)


class KeaPair:
    """A Kea HA pair in `mode` on two anchored hosts with their rsyslogs running (the first
    host primary); `start()` starts both servers."""

    def __init__(self, syslogs: tuple[Rsyslog, Rsyslog], mode: str) -> None:
        hosts = tuple(rs.host for rs in syslogs)
        self.syslogs = syslogs
        self.servers = tuple(Kea(h, mode, hosts) for h in hosts)

    def start(self) -> None:
        for kea in self.servers:
            kea.start()


# --- the shipped forwarder, cut off from the collector ------------------------------------------

SHIPPED_SNIPPET = ROOT / "deploy" / "rsyslog" / "60-pairwatch.conf"
"""The rsyslog snippet operators install on each server; `ShippedForwarding` forwards with its
action, so a lab test follows the shipped queue settings (not the lab's own short ones)."""


def shipped_action(target: str = COLLECTOR, port: int = SYSLOG_PORT, snippet: Path = SHIPPED_SNIPPET) -> str:
    """The `action(...)` of the shipped snippet, exactly as shipped (its queue.* and action.*
    settings included) but for the two lines marked CHANGE: `target` and `port`. Comments
    are left out (RainerScript would accept them; this keeps the generated config readable)."""
    text = snippet.read_text()
    # the active action: the first `action(` that is not on a comment line (the variants below
    # it are all commented out)
    match = re.search(r"^[ \t]*action\((.*?)^[ \t]*\)", text, re.S | re.M)
    if match is None:
        raise LabError(f"{snippet}: no action(...) found")
    body = re.sub(r'("[^"]*")|#[^\n]*', lambda m: m.group(1) or "", match.group(1))
    params = re.findall(r'([\w.]+)="([^"]*)"', body)
    names = [name for name, _ in params]
    if names.count("target") != 1 or names.count("port") != 1:
        raise LabError(f"{snippet}: expected one target= and one port= in the action, got {names}")
    replaced = {"target": target, "port": str(port)}
    return "action(" + " ".join(f'{name}="{replaced.get(name, value)}"' for name, value in params) + ")"


def shipped_parameters(snippet: Path = SHIPPED_SNIPPET) -> dict[str, str]:
    """The shipped action's parameters (name -> value), e.g. for asserting the queue settings."""
    return dict(re.findall(r'([\w.]+)="([^"]*)"', shipped_action(snippet=snippet)))


@dataclass(frozen=True)
class ShippedForwarding(Forwarding):
    """Forward with deploy/rsyslog/60-pairwatch.conf's action (disk-assisted LinkedList queue,
    retry forever every `action.resumeInterval` s) instead of the lab's `Forwarding.action`.
    Only the action is taken: the lab's rsyslog forwards `*.*` (so the local copy and the
    stored timeline can be compared line for line), not just the DHCP programs."""

    def action(self) -> str:
        return shipped_action()


def forwarding_connections(host: Host) -> list[str]:
    """The TCP connections (any state but listening) from `host` to the collector's syslog port."""
    done = run("ip", "netns", "exec", host.ns, "ss", "-H", "-tn", "state", "all", "dst", f"{COLLECTOR}:{SYSLOG_PORT}")
    return [line.split()[0] for line in done.stdout.splitlines() if line.strip()]


def cut_off_from_collector(host: Host) -> None:
    """Route the collector's address into a blackhole in `host`'s namespace, and abort the
    forwarder's established TCP connection (`ss -K`).

    The blackhole alone does not break an established connection: the kernel fails the
    route lookup on every transmit but `send()` keeps succeeding into the socket buffer (seen
    on this machine: 20 s of sends all `ok`, `notsent` growing, TCP's probe backoff climbing),
    so rsyslog would never suspend its action and its queue would stay empty; the lines would
    sit in the kernel until the route comes back (or TCP gives up after tcp_retries2, ~15
    min). Aborting the socket right after the route is gone is what a long outage ends in: the
    next send fails (ECONNABORTED), omfwd suspends the action, every reconnect fails at once
    (connect: EINVAL, the blackhole), and lines wait in rsyslog's action queue. Done while the
    pair is quiet, so no line is written into the socket between the two steps (a line there
    would be lost with the socket, and the timeline comparison would show it missing)."""
    run("ip", "-n", host.ns, "route", "replace", "blackhole", f"{COLLECTOR}/32")
    run("ip", "netns", "exec", host.ns, "ss", "-K", "-tn", "dst", f"{COLLECTOR}:{SYSLOG_PORT}")
    left = [state for state in forwarding_connections(host) if state not in ("CLOSED", "UNCONN")]
    if any(state == "ESTAB" for state in left):
        raise LabError(f"{host.name}: `ss -K` left the forwarding connection open ({left}): "
                       "the kernel needs CONFIG_INET_DIAG_DESTROY")


def reconnect_to_collector(host: Host) -> None:
    """Undo `cut_off_from_collector`: the collector's address is routed again."""
    run("ip", "-n", host.ns, "route", "del", "blackhole", f"{COLLECTOR}/32")


def logged(rs: Rsyslog, text: str, after: int = 0) -> int | None:
    """The index of the first local line of `rs` at or after line `after` containing `text`."""
    return next((i for i, line in enumerate(rs.lines()) if i >= after and text in line["msg"]), None)


def wait_logged(rs: Rsyslog, text: str, deadline: float, after: int = 0) -> int:
    """Wait until `rs` wrote a line containing `text` locally (at or after line `after`)."""
    found = wait_for(lambda: logged(rs, text, after), f"{rs.host.name} to log {text!r}", deadline,
                     lambda: "\n".join(line["msg"] for line in rs.lines()[-30:]))
    return found


I_MOVE = re.compile(r"\bI move from (\S+) to (\S+)")
PEER_MOVES = re.compile(r"\bpeer moves from (\S+) to (\S+)")
PEER_DISCONNECTED = re.compile(r"\bpeer \S+: disconnected")


def last_logged_states(rs: Rsyslog) -> dict[str, str | None]:
    """A dhcpd server's current failover states as its last local lines say: `self` from the
    last `I move from X to Y`, `peer` from the last `peer moves from X to Y` (None when a
    `peer ...: disconnected` came after it, or none was logged)."""
    states: dict[str, str | None] = {"self": None, "peer": None}
    for line in rs.lines():
        if line["program"] != "dhcpd":
            continue
        msg = line["msg"]
        if m := I_MOVE.search(msg):
            states["self"] = m.group(2)
        elif m := PEER_MOVES.search(msg):
            states["peer"] = m.group(2)
        elif PEER_DISCONNECTED.search(msg):
            states["peer"] = None
    return states


def incident_key(condition: str, pair: str, servers: Iterable[str]) -> tuple[str, str, tuple[str, ...]]:
    return condition, pair, tuple(sorted(servers))


def incidents_diff(expected: Sequence[Incident], stored: Sequence[dict[str, Any]], tolerance: float = 1.0,
                   origin: float | None = None) -> str:
    """'' when `stored` (API rows, ISO times) are `expected` (analyze's incidents) one for one:
    same condition, pair and servers, start and end each within `tolerance` s (open on both
    sides counts as the same end). Else both lists and what is missing and extra, times in
    seconds after `origin` (the first expected start, if not given)."""
    want = [(incident_key(i.condition, i.pair, i.servers), i.start, i.end) for i in expected]
    have = [(incident_key(r["condition"], r["pair"], r["servers"]), iso_epoch(r["start"]),
             iso_epoch(r["end"]) if r.get("end") else None) for r in stored]

    def close(a: float | None, b: float | None) -> bool:
        return (a is None and b is None) or (a is not None and b is not None and abs(a - b) <= tolerance)

    unmatched = list(range(len(have)))
    missing = []
    for w in sorted(want, key=lambda x: x[1]):
        hit = next((j for j in unmatched if have[j][0] == w[0] and close(have[j][1], w[1]) and close(have[j][2], w[2])),
                   None)
        if hit is None:
            missing.append(w)
        else:
            unmatched.remove(hit)
    extra = [have[j] for j in unmatched]
    if not missing and not extra:
        return ""
    t0 = origin if origin is not None else min((x[1] for x in want + have), default=0.0)

    def show(rows: Iterable[tuple[tuple[str, str, tuple[str, ...]], float, float | None]]) -> str:
        out = []
        for (cond, pair, servers), start, end in sorted(rows, key=lambda x: x[1]):
            span = f"{start - t0:+8.3f} .. {'open' if end is None else f'{end - t0:+8.3f}'}"
            length = "" if end is None else f" ({end - start:.3f} s)"
            out.append(f"    {cond:<28} {pair} {','.join(servers):<12} {span}{length}")
        return "\n".join(out) or "    (none)"

    return (f"times in s after {epoch_text(t0)}\n"
            f"  analyze of the local logs ({len(want)}):\n{show(want)}\n"
            f"  stored by serve ({len(have)}):\n{show(have)}\n"
            f"  missing from the store ({len(missing)}):\n{show(missing)}\n"
            f"  extra in the store ({len(extra)}):\n{show(extra)}")


def epoch_text(ts: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds")
