"""Shared fixtures: root-only resources skip outside CI (with the reason printed) and fail in CI."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

IN_CI = bool(os.environ.get("CI"))


def need(condition: bool, reason: str) -> None:
    """Skip a test whose environment is missing, except in CI, where it must run."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


@dataclass(slots=True)
class Namespace:
    """A network namespace this test created, with one veth end `d0` at `address`."""

    name: str
    address: str

    def run(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]


@pytest.fixture
def netns() -> Iterator[Namespace]:
    need(os.geteuid() == 0, "needs root for network namespaces")
    need(shutil.which("ip") is not None, "needs iproute2 (ip)")
    name = f"pwt-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        for cmd in (
            ["ip", "-n", name, "link", "set", "lo", "up"],
            ["ip", "-n", name, "link", "add", "d0", "type", "veth", "peer", "name", "d1"],
            ["ip", "-n", name, "addr", "add", "198.18.5.1/24", "dev", "d0"],
            ["ip", "-n", name, "link", "set", "d0", "up"],
            ["ip", "-n", name, "link", "set", "d1", "up"],
        ):
            subprocess.run(cmd, check=True)
        yield Namespace(name=name, address="198.18.5.1")
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)
