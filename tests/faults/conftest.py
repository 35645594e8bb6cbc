"""Each fault scenario gets a redis-server of its own and a platform lab on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.harness import Lab
from tests.faults.scenarios import OwnedRedis


@pytest.fixture
def owned_redis(tmp_path: Path) -> Iterator[OwnedRedis]:
    server = OwnedRedis(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[OwnedRedis]:
    server = OwnedRedis(tmp_path, "ledger")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def lab(tmp_path: Path, owned_redis: OwnedRedis, ledger: OwnedRedis) -> Iterator[Lab]:
    found = Lab.create("platform", tmp_path / "lab", owned_redis.url, ledger.url)
    found.owned_redis = owned_redis
    yield found
    found.kill_all()
    found.close()
