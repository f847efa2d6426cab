"""`[store] memory_limit`: the budget reaches the embedded engine (read back from the engine),
a bad value is a config error naming the key, and `/metrics` shows the process's memory and
CPU, the engine's memory and the budget (issue 20, first slice; the alert on it is in
tests/deploy)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from collector.cli import main
from collector.config import DEFAULT_MEMORY_LIMIT, ConfigError, parse_config
from collector.store_engine import engine_options
from tests.serving import ROOT, serving

MIB = 1 << 20

# run in a process of its own: the engine takes its server settings when it starts, once per process
READ_BACK = """
import json, sys
from collector.store import Store
store = Store.open("embedded:" + sys.argv[1], memory_limit=int(sys.argv[2]))
names = sorted(json.loads(sys.argv[3]))
rows = store._client.query(
    "SELECT name, value FROM system.server_settings WHERE name IN %(names)s", parameters={"names": names}
).result_rows
print(json.dumps({"settings": {name: int(value) for name, value in rows}, "tracked": store.engine_memory()}))
store.close()
"""


@pytest.mark.parametrize("text, size", [("512MiB", 512 * MIB), ("2GiB", 2048 * MIB), ("1TiB", 1 << 40),
                                        (268435456, 256 * MIB), (" 300 MiB", 300 * MIB)])
def test_sizes_are_read(text: object, size: int) -> None:
    assert parse_config({"store": {"memory_limit": text}}).store.memory_limit == size


def test_the_default_is_one_gib() -> None:
    assert parse_config({}).store.memory_limit == DEFAULT_MEMORY_LIMIT == 1 << 30


@pytest.mark.parametrize("text", ["512", "512MB", "100MiB", "2TiB", "lots", 5.5, True, -1, ["1GiB"]])
def test_a_bad_size_names_the_key(text: object) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"store": {"memory_limit": text}})
    assert caught.value.key == "store.memory_limit"


def test_check_config_exits_2_on_a_bad_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "pairwatch.toml"
    path.write_text('[store]\nmemory_limit = "half"\n')
    assert main(["check-config", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "store.memory_limit" in err and len(err.strip().splitlines()) == 1


@pytest.mark.integration
def test_the_budget_reaches_the_embedded_engine(tmp_path: Path) -> None:
    limit = 512 * MIB
    wanted = engine_options(limit)
    assert wanted["max_server_memory_usage"] == 256 * MIB
    done = subprocess.run([sys.executable, "-c", READ_BACK, str(tmp_path / "store"), str(limit), json.dumps(list(wanted))],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["settings"] == wanted
    assert isinstance(found["tracked"], int) and 0 <= found["tracked"] < limit


@pytest.mark.integration
def test_metrics_show_process_and_engine_memory(tmp_path_factory: pytest.TempPathFactory) -> None:
    config = tmp_path_factory.mktemp("budget") / "pairwatch.toml"
    config.write_text('[store]\nmemory_limit = "256MiB"\n')
    with serving(tmp_path_factory, ["--config", str(config)]) as serve:
        def exported() -> dict[str, float] | None:
            samples = {name: value for (name, labels), value in serve.samples().items() if not labels}
            wanted = ("process_resident_memory_bytes", "process_cpu_seconds_total", "pairwatch_store_engine_memory_bytes")
            return samples if all(samples.get(name, 0) > 0 for name in wanted) else None

        samples = serve.poll(exported, "process and engine memory on /metrics")
    assert samples["pairwatch_store_engine_memory_bytes"] < samples["process_resident_memory_bytes"]
    assert samples["pairwatch_memory_limit_bytes"] == 256 * MIB  # what the alert compares with
