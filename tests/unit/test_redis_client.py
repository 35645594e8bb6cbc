"""The platform's own Redis client: Sentinel URLs, the master name, replica waits."""

from __future__ import annotations

import pytest

from platform_core.app.hardening import app_config
from platform_core.broker.config import broker_config
from platform_core.checks.store_url import sentinel_problems
from platform_core.settings import Settings
from platform_core.stores.redis_client import RedisUrlError, parse_sentinel, redis_client

URL = "sentinel://:s3cret@s1:26380/2;sentinel://s2;sentinel://s3:26381"


def test_a_sentinel_url_lists_its_sentinels_database_and_password() -> None:
    found = parse_sentinel(URL)
    assert found.sentinels == (("s1", 26380), ("s2", 26379), ("s3", 26381))
    assert (found.db, found.username, found.password) == (2, None, "s3cret")


@pytest.mark.parametrize(("url", "says"), [
    ("sentinel://:pw@s1:26379;redis://s2:6379", "redis://s2:6379 in the Sentinel URL"),
    ("sentinel://:pw@s1:26379/x", "the database in sentinel://:***@s1:26379/x is not a number"),
    ("sentinel://:pw@s1:port", "is not a valid Sentinel URL"),
])
def test_a_bad_sentinel_url_is_named_without_its_password(url: str, says: str) -> None:
    with pytest.raises(RedisUrlError) as caught:
        parse_sentinel(url)
    assert says in str(caught.value) and "pw" not in str(caught.value)


def test_a_sentinel_client_needs_a_master_name() -> None:
    with pytest.raises(RedisUrlError) as caught:
        redis_client(URL)
    assert "PLATFORM_REDIS_MASTER_NAME" in str(caught.value)
    assert "s3cret" not in str(caught.value)


def test_every_sentinel_setting_without_a_master_name_is_a_problem() -> None:
    settings = Settings(broker_url=URL, result_backend=URL)
    problems = sentinel_problems(settings)
    assert [p.split(" (")[0] for p in problems] == ["setting `broker_url`",
                                                    "setting `result_backend`"]
    assert sentinel_problems(Settings(broker_url=URL, redis_master_name="main")) == []


def test_a_sentinel_broker_gives_celery_and_kombu_the_master_name() -> None:
    settings = Settings(broker_url=URL, redis_master_name="main")
    connection = broker_config(settings)
    assert connection["result_backend"] == URL  # results follow the broker, as on Redis
    conf = app_config(settings, connection)
    assert conf["broker_transport_options"]["master_name"] == "main"
    assert conf["result_backend_transport_options"]["master_name"] == "main"
    assert conf["platform_redis_master_name"] == "main"


def test_the_replica_wait_reaches_the_redis_transport_only_when_set() -> None:
    plain = Settings(broker_url="redis://h/0")
    assert "platform_wait_replicas" not in app_config(plain, broker_config(plain))[
        "broker_transport_options"]
    waiting = Settings(broker_url="redis://h/0", redis_wait_replicas=1, redis_wait_timeout=0.5)
    options = app_config(waiting, broker_config(waiting))["broker_transport_options"]
    assert (options["platform_wait_replicas"], options["platform_wait_timeout"]) == (1, 0.5)
