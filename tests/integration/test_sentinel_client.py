"""The platform's own Redis clients on Redis Sentinel follow a failover without a restart:
the dead-letter store and the beat lock (a master, a replica, three sentinels of the
test's own)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from platform_core.stores.redis_client import redis_client
from platform_core.stores.redis_store import RedisStore
from tests.faults.sentinel_cluster import MASTER_NAME, SentinelCluster
from tests.support import wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[SentinelCluster]:
    found = SentinelCluster(tmp_path / "sentinel")
    found.start()
    yield found
    found.stop()


def _works(call: object) -> bool:
    try:
        return bool(call())  # type: ignore[operator]
    except Exception:  # connection errors until the client follows
        return False


def test_the_store_follows_the_promoted_replica(cluster: SentinelCluster) -> None:
    store = RedisStore(cluster.url, MASTER_NAME)
    assert store.deliveries.increment("t:0", 60) == 1
    wait_until(lambda: cluster.client(cluster.data_ports[1]).get("platform:dlq:deliveries:t:0"),
               10, "the replica to have the counter")
    old, _ = cluster.kill_master()
    cluster.wait_for_failover(old)
    # The first command after the failover may meet the dead master; the next ones
    # reach the new one, which kept the replicated counter.
    wait_until(lambda: _works(lambda: store.deliveries.get("t:0") == 1), 30,
               "the store to read from the new master")
    assert store.deliveries.increment("t:0", 60) == 2
    new = cluster.master_port()
    assert new != old and cluster.client(new).get("platform:dlq:deliveries:t:0") == b"2"


def test_a_demoted_master_sends_the_client_to_the_new_one(cluster: SentinelCluster) -> None:
    client = redis_client(cluster.url, MASTER_NAME)
    client.set("k", "before")
    old, _ = cluster.kill_master()
    cluster.wait_for_failover(old)
    cluster.restart_as_replica(old)  # the old master is back, read-only
    wait_until(lambda: _works(lambda: client.set("k", "after")), 30, "a write to the master")
    assert client.connection_pool.get_master_address()[1] == cluster.master_port() != old
