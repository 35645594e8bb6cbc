"""One real worker per broker for the whole module: the mutants share it, as a queue would."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.receive.lab import Lab


@pytest.fixture(scope="module", params=["redis", "amqp", "embedded"])
def lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
        worker_id: str) -> Iterator[Lab]:
    from tests.conftest import AMQP_URL, REDIS_URL

    broker = request.param
    url: str | None = None
    if broker == "redis":
        import redis

        # a database of its own, apart from the ones other tests empty as they start
        index = int(worker_id[2:]) if worker_id.startswith("gw") else 0
        url = f"{REDIS_URL.rstrip('/')}/{8 + index % 8}"
        redis.Redis.from_url(url).flushdb()
    elif broker == "amqp":
        from kombu import Connection

        try:
            with Connection(AMQP_URL, connect_timeout=3) as conn:
                conn.ensure_connection(max_retries=0)
        except Exception as exc:
            pytest.skip(f"RabbitMQ at {AMQP_URL} does not answer ({exc})")
        url = AMQP_URL
    root: Path = tmp_path_factory.mktemp(f"fuzz-{broker}")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("PLATFORM_HOME", str(root / "home"))
        lab = Lab(broker, root, url)
        lab.start()
        yield lab
        lab.close()
