"""`[store]` and `[serve]` configuration: values, every error with its key, the effective-config
printout (it must load back to the same config), and how `serve` flags override the file."""

from __future__ import annotations

import ipaddress
import tomllib
from pathlib import Path

import pytest

from collector.cli import main
from collector.config import (
    Config,
    ConfigError,
    Endpoint,
    Listener,
    ServeConfig,
    StoreConfig,
    TlsConfig,
    load_config,
    parse_config,
)
from collector.config_render import render_config

FULL = """
[store]
url = "clickhouse://pw@ch.example.net:8123/dhcp"
messages_ttl = "30d"
states_ttl = "2000d"

[serve]
udp = ["0.0.0.0:514"]
tcp = ["0.0.0.0:5514", { address = "[::]:5515", allow = ["2001:db8::/32"] }]
tls = ["0.0.0.0:6514"]
http = "[::1]:9874"
allow = ["198.51.100.0/24", "203.0.113.7"]
max_message = 8192
queue_size = 5000
udp_receive_buffer = 0
batch_rows = 500
batch_interval = 0.25
tls_cert = "/etc/pairwatch/server.pem"
tls_key = "/etc/pairwatch/server.key"
tls_client_ca = "/etc/pairwatch/ca.pem"
"""


def load(text: str) -> Config:
    return parse_config(tomllib.loads(text))


def test_full_serve_and_store_tables() -> None:
    config = load(FULL)
    assert config.store == StoreConfig(url="clickhouse://pw@ch.example.net:8123/dhcp", messages_ttl_days=30,
                                       states_ttl_days=2000)
    net = ipaddress.ip_network
    assert config.serve == ServeConfig(
        listeners=(
            Listener("udp", Endpoint("0.0.0.0", 514)),
            Listener("tcp", Endpoint("0.0.0.0", 5514)),
            Listener("tcp", Endpoint("::", 5515), (net("2001:db8::/32"),)),
            Listener("tls", Endpoint("0.0.0.0", 6514)),
        ),
        http=Endpoint("::1", 9874),
        allow=(net("198.51.100.0/24"), net("203.0.113.7/32")),
        tls=TlsConfig(cert="/etc/pairwatch/server.pem", key="/etc/pairwatch/server.key",
                      client_ca="/etc/pairwatch/ca.pem"),
        max_message=8192,
        queue_size=5000,
        udp_receive_buffer=0,
        batch_rows=500,
        batch_interval=0.25,
    )


def test_naming_one_transport_leaves_the_others_empty() -> None:
    serve = load('[serve]\ntcp = ["127.0.0.1:5514"]\n').serve
    assert serve.listeners == (Listener("tcp", Endpoint("127.0.0.1", 5514)),)
    assert load("").serve.listeners == (Listener("udp", Endpoint("0.0.0.0", 5514)),
                                        Listener("tcp", Endpoint("0.0.0.0", 5514)))


ERRORS = [
    ('[serve]\nudp = ["nope"]', 'serve.udp[0]: expected HOST:PORT or [IPV6]:PORT, got "nope"'),
    ('[serve]\ntcp = "0.0.0.0:5514"', 'serve.tcp: expected an array, got "0.0.0.0:5514"'),
    ('[serve]\ntcp = ["127.0.0.1:1", { address = "127.0.0.1:2", allow = ["10.0.0.1/8"] }]',
     'serve.tcp[1].allow: not a CIDR: "10.0.0.1/8" (10.0.0.1/8 has host bits set)'),
    ('[serve]\ntcp = [{ allow = [] }]', "serve.tcp[0].address: required key is missing"),
    ('[serve]\ntcp = [{ address = "127.0.0.1:2", alow = [] }]', "serve.tcp[0].alow: unknown key (did you mean allow?)"),
    ('[serve]\nallow = "10.0.0.0/8"', 'serve.allow: expected an array of CIDRs, got "10.0.0.0/8"'),
    ('[serve]\nallow = [10]', 'serve.allow: expected a CIDR such as "192.0.2.0/24", got 10'),
    ('[serve]\nqueue_size = 0', "serve.queue_size: expected a whole number from 1 to 10000000, got 0"),
    ('[serve]\nmax_message = true', "serve.max_message: expected a whole number from 480 to 16777216, got true"),
    ('[serve]\nbatch_interval = "soon"', 'serve.batch_interval: expected a duration (seconds or "5m"), got "soon"'),
    ('[serve]\nbogus = 1', "serve.bogus: unknown key"),
    ('[serve]\ntcp = ["0.0.0.0:5514", "0.0.0.0:5514"]', "serve.tcp: 0.0.0.0:5514 is listed twice"),
    ('[serve]\ntcp = ["0.0.0.0:6514"]\ntls = ["0.0.0.0:6514"]', "serve.tls: 0.0.0.0:6514 is listed twice"),
    ('[serve]\ntcp = ["127.0.0.1:9874"]', "serve.http: 127.0.0.1:9874 is also a syslog listener"),
    ('[serve]\ntls = ["0.0.0.0:6514"]', "serve.tls_cert: the TLS listener tls 0.0.0.0:6514 needs serve.tls_cert and serve.tls_key"),
    ('[serve]\ntls_cert = "a.pem"', "serve.tls_key: required key is missing (TLS needs tls_cert and tls_key)"),
    ('[serve]\ntls_cert = ""\ntls_key = "k"', 'serve.tls_cert: expected a file path, got ""'),
    ("[store]\nurl = 5", "store.url: expected a store URL string, got 5"),
    ('[store]\nurl = "ftp://x"', "store.url: unsupported store URL 'ftp': expected embedded:PATH, clickhouse://... or clickhouses://..."),
    ('[store]\nmessages_ttl = "36h"', 'store.messages_ttl: expected whole days from 1 to 10000 ("90d"), got "36h"'),
    ('[store]\nstates_ttl = "30000d"', 'store.states_ttl: expected whole days from 1 to 10000 ("90d"), got "30000d"'),
    ("[store]\nttl = 1", "store.ttl: unknown key"),
]


@pytest.mark.parametrize(("text", "message"), ERRORS, ids=[e[1].split(":")[0] + str(i) for i, e in enumerate(ERRORS)])
def test_errors_name_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(text)
    assert str(caught.value) == message


def test_render_loads_back_to_the_same_config() -> None:
    text = FULL.replace("pw@", "pw:secret@") + """
[limits]
mclt = "2h"
server_silent = 90.5
[[pair]]
name = "campus"
hosts = ["dhcp1", "dhcp2"]
relationship = "campus \\"failover\\""
mclt = "30m"
[pair.limits]
startup = "45s"
[[pair]]
name = "kea"
hosts = ["kea-a", "kea-b"]
implementation = "kea"
"""
    config = load(text)
    printed = render_config(config)
    assert "secret" not in printed and "pw:****@" in printed
    again = load(printed)
    assert again == Config(hosts=config.hosts, limits=config.limits, pairs=config.pairs, serve=config.serve,
                           store=StoreConfig(url="clickhouse://pw:****@ch.example.net:8123/dhcp",
                                             messages_ttl_days=30, states_ttl_days=2000))


def test_check_config_loads_the_tls_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "pairwatch.toml"
    path.write_text(f'[serve]\ntls = ["127.0.0.1:6514"]\ntls_cert = "{tmp_path}/absent.pem"\ntls_key = "{tmp_path}/absent.key"\n')
    assert main(["check-config", "--config", str(path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("pairwatch check-config: serve.tls_cert: cannot load the certificate")


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[Config]:
    """The configurations `pairwatch serve` hands to the service, in order: `collector.service.run`
    is replaced by a recorder, so the command returns 0 instead of starting a service."""
    ran: list[Config] = []

    def record(config: Config, store: object, tls: object = None, api_token: object = None) -> int:
        ran.append(config)
        return 0

    monkeypatch.setattr("collector.service.run", record)
    return ran


def test_serve_flags_replace_the_files_listeners_http_and_store(tmp_path: Path, served: list[Config]) -> None:
    path = tmp_path / "pairwatch.toml"
    path.write_text('[serve]\nudp = ["0.0.0.0:514"]\ntcp = ["0.0.0.0:5514"]\nallow = ["10.0.0.0/8"]\n'
                    '[store]\nurl = "embedded:/var/lib/pairwatch"\n')
    config = load_config(str(path))
    assert main(["serve", "--config", str(path)]) == 0
    assert served == [config]
    assert main(["serve", "--config", str(path), "--tcp", "127.0.0.1:6000", "--tcp", "[::1]:6000",
                 "--http", "127.0.0.1:9999", "--store", "embedded:/tmp/x"]) == 0
    flagged = served[-1]
    assert flagged.serve.listeners == (Listener("tcp", Endpoint("127.0.0.1", 6000)), Listener("tcp", Endpoint("::1", 6000)))
    assert flagged.serve.http == Endpoint("127.0.0.1", 9999)
    assert flagged.serve.allow == config.serve.allow  # what flags do not name stays
    assert flagged.store.url == "embedded:/tmp/x"


def test_serve_flag_errors_exit_2_naming_the_flag_or_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--udp", "127.0.0.1:6000", "--tcp", "127.0.0.1:x"]) == 2
    assert capsys.readouterr().err == "pairwatch serve: --tcp: expected HOST:PORT or [IPV6]:PORT, got \"127.0.0.1:x\"\n"
    assert main(["serve", "--tcp", "127.0.0.1:6000", "--http", "127.0.0.1:6000"]) == 2
    assert capsys.readouterr().err == "pairwatch serve: serve.http: 127.0.0.1:6000 is also a syslog listener\n"
