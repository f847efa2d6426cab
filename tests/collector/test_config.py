"""`collector.config`: defaults, durations, every validation error (one line, exact key path),
pair limit inheritance, `host_key`, and `pairwatch check-config` end to end in-process."""

from __future__ import annotations

import dataclasses
import textwrap
import tomllib
from pathlib import Path

import pytest

from collector.cli import main
from collector.config import (
    DEFAULT_CONFIG,
    DEFAULT_LIMITS,
    LIMIT_KEYS,
    Config,
    ConfigError,
    HostsConfig,
    Limits,
    PairConfig,
    load_config,
    parse_config,
    parse_duration,
)
from collector.domain import host_key

# The defaults the issue specifies, in seconds; `Limits()` must match them exactly.
SPECIFIED_DEFAULTS = {
    "mclt": 3600.0,
    "recover_wait_grace": 60.0,
    "startup": 120.0,
    "recover": 900.0,
    "recover_done": 300.0,
    "potential_conflict": 300.0,
    "resolution_interrupted": 300.0,
    "conflict_done": 300.0,
    "kea_waiting": 300.0,
    "kea_syncing": 300.0,
    "kea_ready": 300.0,
    "views_disagree": 60.0,
    "server_silent": 600.0,
    "not_serving_window": 60.0,
    "sync_slow": 600.0,
    "pool_exhausted_window": 300.0,
    "split_brain_hold": 5.0,
    "max_lateness": 3600.0,  # the event-time issue: a late line re-decides its pair within 1 h
}

TWO_PAIRS = """
[[pair]]
name = "campus"
hosts = ["dhcp1", "dhcp2"]

[[pair]]
name = "lab"
hosts = ["lab-a", "lab-b"]
"""


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "pairwatch.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path)


def load_text(tmp_path: Path, text: str) -> Config:
    return load_config(write(tmp_path, text))


def config_error(tmp_path: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_text(tmp_path, text)
    return info.value


# --- defaults ---------------------------------------------------------------------------


def test_no_file_means_defaults_without_reading_anything():
    assert load_config(None) is DEFAULT_CONFIG
    assert DEFAULT_CONFIG == Config(hosts=HostsConfig(strip_domain=False), limits=Limits(), pairs=())


@pytest.mark.parametrize("key, seconds", SPECIFIED_DEFAULTS.items(), ids=list(SPECIFIED_DEFAULTS))
def test_default_limits_are_the_specified_ones(key, seconds):
    assert getattr(DEFAULT_LIMITS, key) == seconds


def test_limits_has_exactly_the_specified_keys():
    assert [f.name for f in dataclasses.fields(Limits)] == list(SPECIFIED_DEFAULTS)


@pytest.mark.parametrize("text", ["", "# only a comment\n", "[hosts]\n[limits]\n", "pair = []\n"])
def test_empty_documents_give_defaults(tmp_path, text):
    assert load_text(tmp_path, text) == DEFAULT_CONFIG


def test_the_readmes_configuration_reference_is_valid_and_repeats_the_defaults():
    """README "Configuration" is the schema reference (the module docstring points there); its
    TOML blocks must stay loadable and truthful."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    blocks = [block.split("```", 1)[0] for block in section.split("```toml\n")[1:]]
    assert len(blocks) == 2
    config = parse_config(tomllib.loads("\n".join(blocks)))
    assert config.limits == DEFAULT_LIMITS
    (pair,) = config.pairs
    assert (pair.name, pair.hosts, pair.relationship, pair.implementation) == (
        "campus",
        ("dhcp1", "dhcp2"),
        "campus-failover",
        "dhcpd",
    )
    assert pair.mclt == 1800.0 and pair.limits.mclt == 1800.0 and pair.limits.server_silent == 300.0


def test_config_values_take_keywords_only():
    with pytest.raises(TypeError):
        Limits(3600.0)  # type: ignore[misc]


# --- durations --------------------------------------------------------------------------

DURATIONS = [
    (90, 90.0),
    (1.5, 1.5),
    ("90s", 90.0),
    ("5m", 300.0),
    ("1h", 3600.0),
    ("2d", 172800.0),
    ("1.5h", 5400.0),
    ("0.5s", 0.5),
    ("007m", 420.0),
]


@pytest.mark.parametrize("value, seconds", DURATIONS, ids=[repr(v) for v, _ in DURATIONS])
def test_duration_forms(value, seconds):
    assert parse_duration(value) == seconds
    assert parse_config({"limits": {"startup": value}}).limits.startup == seconds


def test_duration_forms_from_toml_text(tmp_path):
    config = load_text(
        tmp_path,
        """
        [limits]
        startup = 30
        recover = 2.5
        recover_done = "45s"
        sync_slow = "20m"
        mclt = "2h"
        server_silent = "1d"
        """,
    )
    limits = config.limits
    assert (limits.startup, limits.recover, limits.recover_done) == (30.0, 2.5, 45.0)
    assert (limits.sync_slow, limits.mclt, limits.server_silent) == (1200.0, 7200.0, 86400.0)
    assert all(isinstance(getattr(limits, f.name), float) for f in dataclasses.fields(Limits))


# --- validation errors ------------------------------------------------------------------

PAIR = 'name = "campus"\nhosts = ["dhcp1", "dhcp2"]\n'

# (id, TOML text, key path, what the message must say); the error's text must be
# exactly "<key path>: <message>" on one line.
ERRORS = [
    # top level
    ("top-level unknown", "bogus = 1\n", "bogus", "unknown key"),
    ("top-level typo", "[limit]\nstartup = 1\n", "limit", "unknown key (did you mean limits?)"),
    ("hosts not a table", "hosts = 1\n", "hosts", "expected a table, got 1"),
    ("limits not a table", 'limits = "5m"\n', "limits", 'expected a table, got "5m"'),
    ("pair as a single table", f"[pair]\n{PAIR}", "pair", "expected an array of tables ([[pair]]), got a table"),
    ("pair entry not a table", "pair = [1]\n", "pair[0]", "expected a table, got 1"),
    # [hosts]
    ("hosts unknown", "[hosts]\nstrip_domian = true\n", "hosts.strip_domian", "unknown key (did you mean strip_domain?)"),
    ("strip_domain string", '[hosts]\nstrip_domain = "yes"\n', "hosts.strip_domain", 'expected true or false, got "yes"'),
    ("strip_domain number", "[hosts]\nstrip_domain = 1\n", "hosts.strip_domain", "expected true or false, got 1"),
    # [limits]
    ("limits unknown", "[limits]\nbogus = 1\n", "limits.bogus", "unknown key"),
    ("limits typo", "[limits]\nserver_silen = 1\n", "limits.server_silen", "unknown key (did you mean server_silent?)"),
    ("limits quoted key", '[limits]\n"a.b\\nc" = 1\n', 'limits."a.b\\nc"', "unknown key"),
    ("duration word", '[limits]\nstartup = "soon"\n', "limits.startup", 'expected a duration (seconds or "5m"), got "soon"'),
    ("duration bool", "[limits]\nstartup = true\n", "limits.startup", 'expected a duration (seconds or "5m"), got true'),
    ("duration unitless string", '[limits]\nstartup = "90"\n', "limits.startup", 'expected a duration (seconds or "5m"), got "90"'),
    ("duration space", '[limits]\nstartup = "5 m"\n', "limits.startup", 'expected a duration (seconds or "5m"), got "5 m"'),
    ("duration upper unit", '[limits]\nstartup = "5M"\n', "limits.startup", 'expected a duration (seconds or "5m"), got "5M"'),
    ("duration negative string", '[limits]\nstartup = "-5m"\n', "limits.startup", 'expected a duration (seconds or "5m"), got "-5m"'),
    ("duration array", "[limits]\nstartup = [1]\n", "limits.startup", 'expected a duration (seconds or "5m"), got an array of 1'),
    ("duration date", "[limits]\nstartup = 1979-05-27\n", "limits.startup", "got a date/time (1979-05-27)"),
    ("duration zero", "[limits]\nstartup = 0\n", "limits.startup", "expected a duration greater than 0, got 0"),
    ("duration zero string", '[limits]\nstartup = "0s"\n', "limits.startup", 'expected a duration greater than 0, got "0s"'),
    ("duration negative", "[limits]\nstartup = -5\n", "limits.startup", "expected a duration greater than 0, got -5"),
    ("duration inf", "[limits]\nstartup = inf\n", "limits.startup", "expected a finite duration, got inf"),
    ("duration nan", "[limits]\nstartup = nan\n", "limits.startup", "expected a finite duration, got nan"),
    ("duration beyond float", f"[limits]\nstartup = 1{'0' * 400}\n", "limits.startup", "expected a finite duration, got 1000"),
    ("duration string beyond float", f'[limits]\nstartup = "1{"0" * 400}s"\n', "limits.startup", "expected a finite duration"),
    # one [[pair]]
    ("pair unknown beats missing", '[[pair]]\nnmae = "x"\n', "pair[0].nmae", "unknown key (did you mean name?)"),
    ("pair name missing", '[[pair]]\nhosts = ["a", "b"]\n', "pair[0].name", "required key is missing"),
    ("pair name space", '[[pair]]\nname = "my pair"\nhosts = ["a", "b"]\n', "pair[0].name", 'got "my pair"'),
    ("pair name empty", '[[pair]]\nname = ""\nhosts = ["a", "b"]\n', "pair[0].name", "expected 1-64 of A-Z a-z 0-9 _ . : + -"),
    ("pair name too long", f'[[pair]]\nname = "{"n" * 65}"\nhosts = ["a", "b"]\n', "pair[0].name", "expected 1-64"),
    ("pair name number", '[[pair]]\nname = 5\nhosts = ["a", "b"]\n', "pair[0].name", "got 5"),
    ("hosts missing", '[[pair]]\nname = "p"\n', "pair[0].hosts", "required key is missing"),
    ("hosts string", '[[pair]]\nname = "p"\nhosts = "dhcp1"\n', "pair[0].hosts", 'expected an array of exactly 2 host names, got "dhcp1"'),
    ("hosts one", '[[pair]]\nname = "p"\nhosts = ["dhcp1"]\n', "pair[0].hosts", "got an array of 1"),
    ("hosts three", '[[pair]]\nname = "p"\nhosts = ["a", "b", "c"]\n', "pair[0].hosts", "got an array of 3"),
    ("host empty", '[[pair]]\nname = "p"\nhosts = ["a", ""]\n', "pair[0].hosts[1]", 'expected a host name (non-empty, no spaces), got ""'),
    ("host space", '[[pair]]\nname = "p"\nhosts = ["a b", "c"]\n', "pair[0].hosts[0]", 'got "a b"'),
    ("host tab", '[[pair]]\nname = "p"\nhosts = ["a", "b\\tc"]\n', "pair[0].hosts[1]", 'got "b\\tc"'),
    ("host number", '[[pair]]\nname = "p"\nhosts = ["a", 7]\n', "pair[0].hosts[1]", "got 7"),
    ("hosts same ignoring case", '[[pair]]\nname = "p"\nhosts = ["dhcp1", "DHCP1"]\n', "pair[0].hosts",
     '"dhcp1" and "DHCP1" are the same host (ignoring case)'),
    ("hosts same without domain", '[hosts]\nstrip_domain = true\n[[pair]]\nname = "p"\nhosts = ["dhcp1.example.net", "dhcp1"]\n',
     "pair[0].hosts", '"dhcp1.example.net" and "dhcp1" are the same host (with strip_domain)'),
    ("relationship empty", f'[[pair]]\n{PAIR}relationship = ""\n', "pair[0].relationship", 'got ""'),
    ("relationship padded", f'[[pair]]\n{PAIR}relationship = " ab"\n', "pair[0].relationship",
     'expected a failover peer name without leading or trailing spaces, got " ab"'),
    ("relationship number", f"[[pair]]\n{PAIR}relationship = 1\n", "pair[0].relationship", "got 1"),
    ("implementation unknown", f'[[pair]]\n{PAIR}implementation = "isc"\n', "pair[0].implementation",
     'expected "dhcpd" or "kea", got "isc"'),
    ("implementation case", f'[[pair]]\n{PAIR}implementation = "Kea"\n', "pair[0].implementation", 'got "Kea"'),
    ("pair mclt", f'[[pair]]\n{PAIR}mclt = "soon"\n', "pair[0].mclt", 'expected a duration (seconds or "5m"), got "soon"'),
    ("pair limits not a table", f"[[pair]]\n{PAIR}limits = 5\n", "pair[0].limits", "expected a table, got 5"),
    ("pair limits unknown", f"[[pair]]\n{PAIR}[pair.limits]\nbogus = 1\n", "pair[0].limits.bogus", "unknown key"),
    ("pair limits mclt", f"[[pair]]\n{PAIR}[pair.limits]\nmclt = 60\n", "pair[0].limits.mclt",
     "a pair sets its MCLT with its own mclt key, not in its limits"),
    # several [[pair]]s
    ("second pair limit", f'[[pair]]\n{PAIR}[[pair]]\nname = "lab"\nhosts = ["a", "b"]\n[pair.limits]\nserver_silent = "soon"\n',
     "pair[1].limits.server_silent", 'expected a duration (seconds or "5m"), got "soon"'),
    ("duplicate name", f'[[pair]]\n{PAIR}[[pair]]\nname = "campus"\nhosts = ["a", "b"]\n', "pair[1].name", 'duplicate pair name "campus"'),
    ("shared host, no relationships", f'[[pair]]\n{PAIR}[[pair]]\nname = "lab"\nhosts = ["x", "dhcp2"]\n', "pair[1].relationship",
     'host "dhcp2" is also in pair "campus"; pairs sharing a host must each name a different relationship'),
    ("shared host, same relationship",
     f'[[pair]]\n{PAIR}relationship = "r"\n[[pair]]\nname = "lab"\nhosts = ["dhcp1", "x"]\nrelationship = "r"\n',
     "pair[1].relationship", 'host "dhcp1" is also in pair "campus"'),
    ("shared host, one relationship", f'[[pair]]\n{PAIR}[[pair]]\nname = "lab"\nhosts = ["dhcp1", "x"]\nrelationship = "r"\n',
     "pair[1].relationship", 'host "dhcp1" is also in pair "campus"'),
    ("shared host differs only in case", f'[[pair]]\n{PAIR}[[pair]]\nname = "lab"\nhosts = ["x", "DHCP2"]\n', "pair[1].relationship",
     'host "DHCP2" is also in pair "campus"'),
    ("shared host without domain", f'[hosts]\nstrip_domain = true\n[[pair]]\n{PAIR}[[pair]]\nname = "lab"\nhosts = ["x", "dhcp2.lan"]\n',
     "pair[1].relationship", 'host "dhcp2.lan" is also in pair "campus"'),
]


@pytest.mark.parametrize("text, key, message", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_validation_errors_name_the_key_on_one_line(tmp_path, text, key, message):
    error = config_error(tmp_path, text)
    line = str(error)
    assert len(line.splitlines()) == 1
    assert error.key == key
    assert line.startswith(f"{key}: ")
    assert message in error.message
    assert line == f"{key}: {error.message}"


def test_brief_examples_verbatim(tmp_path):
    assert str(config_error(tmp_path, "[limits]\nbogus = 1\n")) == "limits.bogus: unknown key"
    text = f'[[pair]]\n{PAIR}[[pair]]\nname = "lab"\nhosts = ["a", "b"]\n[pair.limits]\nserver_silent = "soon"\n'
    assert str(config_error(tmp_path, text)) == 'pair[1].limits.server_silent: expected a duration (seconds or "5m"), got "soon"'


def test_parse_config_reports_the_source_beside_the_error():
    with pytest.raises(ConfigError) as info:
        parse_config({"limits": {"startup": "soon"}}, source="site.toml")
    assert info.value.source == "site.toml"
    assert str(info.value).startswith("limits.startup: ")


def test_parse_config_describes_values_toml_cannot_produce():
    with pytest.raises(ConfigError) as info:
        parse_config({"limits": {"startup": None}})
    assert str(info.value) == 'limits.startup: expected a duration (seconds or "5m"), got NoneType'


# --- accepted pair layouts --------------------------------------------------------------

ACCEPTED = [
    ("two pairs", TWO_PAIRS),
    ("shared host, different relationships",
     f'[[pair]]\n{PAIR}relationship = "r1"\n[[pair]]\nname = "lab"\nhosts = ["dhcp1", "x"]\nrelationship = "r2"\n'),
    ("same relationship name, different hosts",
     f'[[pair]]\n{PAIR}relationship = "dhcp-failover"\n[[pair]]\nname = "lab"\nhosts = ["a", "b"]\nrelationship = "dhcp-failover"\n'),
    ("same first label, domains kept", '[[pair]]\nname = "p"\nhosts = ["dhcp1.site-a.net", "dhcp1.site-b.net"]\n'),
    ("kea with a relationship", f'[[pair]]\n{PAIR}implementation = "kea"\nrelationship = "server1"\n'),
    ("name with every allowed character", '[[pair]]\nname = "A-z_0.9:+"\nhosts = ["a", "b"]\n'),
    ("name of 64 characters", f'[[pair]]\nname = "{"n" * 64}"\nhosts = ["a", "b"]\n'),
    ("IP literal hosts with strip_domain", '[hosts]\nstrip_domain = true\n[[pair]]\nname = "p"\nhosts = ["192.0.2.1", "192.0.2.2"]\n'),
]


@pytest.mark.parametrize("text", [a[1] for a in ACCEPTED], ids=[a[0] for a in ACCEPTED])
def test_accepted_layouts(tmp_path, text):
    assert load_text(tmp_path, text).pairs


def test_pair_fields_are_kept_as_written(tmp_path):
    config = load_text(
        tmp_path,
        """
        [[pair]]
        name = "campus"
        hosts = ["DHCP1.example.net", "dhcp2"]
        relationship = "campus-failover"
        implementation = "dhcpd"
        mclt = 1800
        """,
    )
    assert config.pairs == (
        PairConfig(
            name="campus",
            hosts=("DHCP1.example.net", "dhcp2"),
            relationship="campus-failover",
            implementation="dhcpd",
            mclt=1800.0,
            limits=dataclasses.replace(DEFAULT_LIMITS, mclt=1800.0),
        ),
    )


# --- limits inheritance -----------------------------------------------------------------


def test_pair_limits_override_and_inherit_the_rest(tmp_path):
    config = load_text(
        tmp_path,
        """
        [limits]
        mclt = "2h"
        startup = "3m"
        server_silent = "20m"

        [[pair]]
        name = "campus"
        hosts = ["dhcp1", "dhcp2"]
        mclt = "30m"
        [pair.limits]
        server_silent = "5m"
        kea_ready = 30

        [[pair]]
        name = "lab"
        hosts = ["lab-a", "lab-b"]
        """,
    )
    campus, lab = config.pairs
    assert config.limits == dataclasses.replace(DEFAULT_LIMITS, mclt=7200.0, startup=180.0, server_silent=1200.0)
    assert campus.mclt == 1800.0
    assert campus.limits == dataclasses.replace(config.limits, mclt=1800.0, server_silent=300.0, kea_ready=30.0)
    assert lab.mclt is None
    assert lab.limits == config.limits


# --- TOML and file errors ---------------------------------------------------------------


def test_toml_syntax_error_names_file_and_line(tmp_path):
    path = write(tmp_path, '[limits]\nstartup = "5m"\nrecover = soon\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.key == path and info.value.source == path
    assert str(info.value) == f"{path}: TOML syntax error at line 3, column 11: invalid value"


def test_toml_error_at_end_of_file_names_the_last_line(tmp_path):
    path = write(tmp_path, "[limits]\nstartup = [1,\n\n\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: TOML syntax error at line 2 (end of file): invalid value"


def test_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[[pair]]\nname = "caf\xe9"\n')
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert str(info.value) == f"{path}: not UTF-8 text (byte 20); TOML files are UTF-8"


@pytest.mark.parametrize("name, reason", [("absent.toml", "No such file or directory"), (".", "Is a directory")])
def test_unreadable_file_is_a_config_error(tmp_path, name, reason):
    path = str(tmp_path / name)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: cannot read: {reason}"


# --- host_key ---------------------------------------------------------------------------

HOST_KEYS = [
    ("dhcp1", False, "dhcp1"),
    ("DHCP1", False, "dhcp1"),
    ("Dhcp1.Example.NET", False, "dhcp1.example.net"),
    ("Dhcp1.Example.NET", True, "dhcp1"),
    ("dhcp1.example.net.", True, "dhcp1"),
    ("dhcp1", True, "dhcp1"),
    ("192.0.2.1", True, "192.0.2.1"),
    ("192.0.2.1", False, "192.0.2.1"),
    ("2001:DB8::1", True, "2001:db8::1"),
    ("::ffff:192.0.2.1", True, "::ffff:192.0.2.1"),
    ("fe80::1%eth0.5", True, "fe80::1%eth0.5"),
    ("10.1", True, "10"),
]


@pytest.mark.parametrize("name, strip_domain, key", HOST_KEYS, ids=[f"{n}-{s}" for n, s, _ in HOST_KEYS])
def test_host_key(name, strip_domain, key):
    assert host_key(name, strip_domain) == key


# --- pairwatch check-config ---------------------------------------------------------------

CLI_OK = [
    ("two pairs", TWO_PAIRS, "config ok: 2 pairs (campus, lab), strip_domain=false"),
    ("one pair", f"[hosts]\nstrip_domain = true\n[[pair]]\n{PAIR}", "config ok: 1 pair (campus), strip_domain=true"),
    ("no pairs", "[limits]\nstartup = 10\n", "config ok: 0 pairs, strip_domain=false"),
]


@pytest.mark.parametrize("text, line", [c[1:] for c in CLI_OK], ids=[c[0] for c in CLI_OK])
def test_check_config_ok_prints_the_effective_config(tmp_path, capsys, text, line):
    path = write(tmp_path, text)
    assert main(["check-config", "--config", path]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[0] == f"# {line}" and err == ""
    assert parse_config(tomllib.loads(out)) == load_config(path)  # the printout is the same config


def test_check_config_without_file_prints_every_default(capsys):
    assert main(["check-config"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "# config ok: 0 pairs, strip_domain=false"
    printed = tomllib.loads(out)
    assert printed["serve"]["udp"] == ["0.0.0.0:5514"] and printed["serve"]["tcp"] == ["0.0.0.0:5514"]
    assert printed["serve"]["http"] == "127.0.0.1:9874" and printed["serve"]["tls"] == []
    assert printed["store"] == {"url": "embedded:./pairwatch-data", "messages_ttl": "90d", "states_ttl": "400d",
                                "memory_limit": "1GiB"}
    assert printed["limits"]["server_silent"] == "10m" and set(printed["limits"]) == set(LIMIT_KEYS)
    assert parse_config(printed) == Config()


def test_check_config_error_exits_2_with_one_line(tmp_path, capsys):
    text = f'[[pair]]\n{PAIR}[[pair]]\nname = "lab"\nhosts = ["a", "b"]\n[pair.limits]\nserver_silent = "soon"\n'
    assert main(["check-config", "--config", write(tmp_path, text)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == 'pairwatch check-config: pair[1].limits.server_silent: expected a duration (seconds or "5m"), got "soon"\n'


def test_check_config_syntax_error_exits_2(tmp_path, capsys):
    path = write(tmp_path, "[limits\n")
    assert main(["check-config", "--config", path]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith(f"pairwatch check-config: {path}: TOML syntax error at line 1")


def test_check_config_missing_file_exits_2_naming_it(tmp_path, capsys):
    path = str(tmp_path / "absent.toml")
    assert main(["check-config", "--config", path]) == 2
    assert capsys.readouterr().err == f"pairwatch check-config: {path}: cannot read: No such file or directory\n"


@pytest.mark.parametrize("limit, queue_size, memory_rows", [
    ('"1GiB"', 100_000, 200_000), ('"512MiB"', 50_000, 100_000), ('"4GiB"', 400_000, 800_000),
])
def test_the_queue_and_the_kept_rows_default_to_their_share_of_the_memory_budget(limit, queue_size, memory_rows):
    """Lines queued and rows kept behind a slow insert are the process's own memory: under a
    smaller budget there are fewer of them, unless set."""
    serve = parse_config(tomllib.loads(f"[store]\nmemory_limit = {limit}\n")).serve
    assert (serve.queue_size, serve.memory_rows) == (queue_size, memory_rows)
    chosen = parse_config(tomllib.loads(f"[store]\nmemory_limit = {limit}\n[serve]\nqueue_size = 7\nmemory_rows = 9\n"))
    assert (chosen.serve.queue_size, chosen.serve.memory_rows) == (7, 9)
