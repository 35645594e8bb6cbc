"""The one URL classifier: what each broker, backend and store URL points to."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from platform_core.errors import ConfigurationError
from platform_core.settings import Settings
from platform_core.stores import locate
from platform_core.urls import database_url, kind, redis_client_url, scheme
from tests.support import PlatformEnv


@pytest.mark.parametrize(("url", "expected"), [
    ("redis://localhost:6379/0", "redis"),
    ("REDISS://:secret@cache:6380/1", "redis"),
    ("redis+socket:///run/redis.sock", "redis"),
    ("sentinel://s1:26379;sentinel://s2:26379", "redis"),
    ("amqp://guest:guest@rabbit//", "amqp"),
    ("pyamqp://rabbit", "amqp"),
    ("amqps://rabbit", "amqp"),
    ("filesystem://localhost/", "embedded"),
    ("db+postgresql+psycopg://db/results", "database"),
    ("postgresql+psycopg://db/dlq", "database"),
    ("sqlite:////var/lib/platform/dlq.sqlite3", "database"),
    ("sqs://", "sqs"),
    ("unix:///run/redis.sock", "unix"),  # redis-py's name; no broker or backend takes it
    ("", ""),
])
def test_kind(url: str, expected: str) -> None:
    assert kind(url) == expected


@pytest.mark.parametrize(("url", "expected"), [
    ("redis://h:6379/2", "redis://h:6379/2"),
    ("rediss://h:6380/0;redis://other", "rediss://h:6380/0"),
    ("redis+socket:///run/redis.sock?db=3", "unix:///run/redis.sock?db=3"),
    ("unix:///run/redis.sock", "unix:///run/redis.sock"),
    ("sentinel://s1:26379", None),
    ("amqp://rabbit", None),
    ("db+sqlite:///x.sqlite3", None),
])
def test_redis_client_url(url: str, expected: str | None) -> None:
    assert redis_client_url(url) == expected


def test_database_url() -> None:
    assert database_url("db+postgresql://db/r") == "postgresql://db/r"
    assert database_url("postgresql://db/r") is None
    assert database_url(None) is None


@given(st.text())
def test_any_text_is_classified_without_raising(url: str) -> None:
    found = kind(url)
    assert found in {"redis", "amqp", "embedded", "database"} or found == scheme(url)
    if redis_client_url(url) is not None:
        assert kind(url) == "redis" or scheme(url) == "unix"


def test_the_store_follows_a_redis_broker_sentinel_too() -> None:
    assert locate(Settings(broker_url="redis://h:6379/4")).url == "redis://h:6379/4"
    sentinel = locate(Settings(broker_url="sentinel://s1:26379;sentinel://s2:26379",
                               redis_master_name="main",
                               result_backend="db+postgresql://db/r"))
    assert (sentinel.url, sentinel.source) == ("sentinel://s1:26379;sentinel://s2:26379",
                                               "default: the broker's Redis")


def test_a_sentinel_url_without_a_master_name_is_refused_at_start(
        platform_env: PlatformEnv) -> None:
    env = platform_env.set(PLATFORM_DEAD_LETTER_URL="sentinel://:pw@s1:26379/0")
    with pytest.raises(ConfigurationError) as caught:
        env.host(bind=False)
    (problem,) = caught.value.problems
    assert problem.startswith("setting `dead_letter_url` (sentinel://:***@s1:26379/0) names "
                              "Redis Sentinel but no master name is set; set "
                              "PLATFORM_REDIS_MASTER_NAME")
    assert "pw" not in problem


def test_a_sentinel_url_with_a_master_name_starts(platform_env: PlatformEnv) -> None:
    env = platform_env.set(PLATFORM_DEAD_LETTER_URL="sentinel://:pw@s1:26379/0",
                           PLATFORM_REDIS_MASTER_NAME="main")
    env.host(bind=False)
