"""Shared fixtures: isolated platform homes, real brokers, real worker processes."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from platform_core import host
from platform_core.loading import discovery
from tests.support import PlatformEnv, PluginFactory, redis_db_url

REDIS_URL = os.environ.get("PLATFORM_TEST_REDIS_URL", "redis://127.0.0.1:6379")
AMQP_URL = os.environ.get("PLATFORM_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
POSTGRES_URL = os.environ.get(
    "PLATFORM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No outside PLATFORM_* variable or platform.toml leaks into a test."""
    for key in list(os.environ):
        if key.startswith(("PLATFORM_", "OTEL_")):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PLATFORM_HOME", str(tmp_path / "home"))
    host.reset()
    yield
    host.reset()
    discovery.rescan()


@pytest.fixture
def redis_url(worker_id: str) -> str:
    """A Redis database of its own for each xdist worker, emptied before the test."""
    url = redis_db_url(REDIS_URL, worker_id)
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    except redis.ConnectionError as exc:
        pytest.fail(f"Redis at {REDIS_URL} is not reachable ({exc}); start redis-server")
    finally:
        client.close()
    return url


@pytest.fixture
def amqp_url() -> str:
    """RabbitMQ at PLATFORM_TEST_AMQP_URL; tests use queue names of their own."""
    from kombu import Connection

    try:
        with Connection(AMQP_URL, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=0)
    except Exception as exc:
        pytest.skip(f"RabbitMQ at {AMQP_URL} does not answer ({type(exc).__name__}: {exc}); "
                    "start it or set PLATFORM_TEST_AMQP_URL")
    return AMQP_URL


@pytest.fixture
def postgres_url(worker_id: str) -> Iterator[str]:
    """A schema-less database URL; the test's tables are dropped afterwards."""
    sqlalchemy = pytest.importorskip("sqlalchemy")
    engine = sqlalchemy.create_engine(POSTGRES_URL)
    try:
        with engine.connect():
            pass
    except sqlalchemy.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {POSTGRES_URL} is not reachable ({exc})")
    name = f"platform_test_{worker_id}".replace("-", "_")
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    engine.dispose()


@pytest.fixture
def plugins(tmp_path: Path) -> PluginFactory:
    """Write throwaway plugin distributions (real entry points) under tmp_path."""
    return PluginFactory(tmp_path / "site")


@pytest.fixture
def platform_env(tmp_path: Path, plugins: PluginFactory) -> Iterator[PlatformEnv]:
    env = PlatformEnv(home=tmp_path / "home", logs=tmp_path / "logs", plugins=plugins)
    yield env
    env.close()


@pytest.fixture(params=["embedded", "redis"])
def broker_env(request: pytest.FixtureRequest, platform_env: PlatformEnv) -> PlatformEnv:
    """The same test on the embedded broker and on Redis."""
    if request.param == "redis":
        platform_env.set(PLATFORM_BROKER_URL=request.getfixturevalue("redis_url"))
    return platform_env


def pytest_report_header() -> str:
    return (f"python {sys.version.split()[0]}; redis {REDIS_URL}; rabbitmq {AMQP_URL}; "
            f"postgresql {POSTGRES_URL}")


@pytest.fixture
def otlp() -> Iterator[Any]:
    """An OTLP/HTTP receiver on a free loopback port."""
    from tests.otlp import start_receiver

    receiver = start_receiver()
    yield receiver
    assert receiver.server is not None
    receiver.server.shutdown()
    receiver.server.server_close()
