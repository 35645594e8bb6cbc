"""Global rate limits at start-up: the text parses, a Redis holds the buckets, the
worker's tasks carry the limit."""

from __future__ import annotations

import pytest

from platform_core.checks.rate_limits import parse
from platform_core.errors import ConfigurationError
from platform_core.stores.rate_buckets import Rate
from tests.support import PlatformEnv, one_task_plugin

LABEL = "plugin `x` (throwaway-x 0.0.1)"


@pytest.mark.parametrize(("text", "rate"), [
    ("100/m", Rate(100, 60.0)),
    ("20/s", Rate(20, 1.0)),
    ("5/h", Rate(5, 3600.0)),
    ("30/10s", Rate(30, 10.0)),
    (" 3 / 2m ", Rate(3, 120.0)),
    ("1/0.5s", Rate(1, 0.5)),
])
def test_rates_parse(text: str, rate: Rate) -> None:
    assert parse(text) == rate


@pytest.mark.parametrize("text", ["100", "100/d", "ten/m", "0/m", "5/0s", "-1/s", "1/m/s", ""])
def test_bad_rates_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse(text)


def test_the_interval_never_lets_one_run_too_many_through() -> None:
    rate = Rate(7, 60.0)
    assert rate.interval_us * 7 >= 60_000_000


@pytest.mark.parametrize("value", ['"100/d"', '"fast"', "100"])
def test_an_unreadable_limit_names_plugin_task_field_and_fix(
        platform_env: PlatformEnv, value: str) -> None:
    platform_env.plugins.add("x", one_task_plugin("x", f"global_rate_limit={value}"))
    platform_env.set(PLATFORM_BROKER_URL="redis://127.0.0.1:6379/9")
    with pytest.raises(ConfigurationError) as caught:
        platform_env.host(plugins=["x"])
    message = str(caught.value)
    assert LABEL in message
    assert "task `x.job`" in message
    assert "global_rate_limit" in message
    assert '"N/m"' in message  # the form to use


@pytest.mark.parametrize("broker", [None, "amqp://guest@127.0.0.1:5672//"])
def test_no_redis_to_share_the_limit_stops_start_up(platform_env: PlatformEnv,
                                                    broker: str | None) -> None:
    platform_env.plugins.add("x", one_task_plugin("x", 'global_rate_limit="10/m"'))
    if broker:
        platform_env.set(PLATFORM_BROKER_URL=broker)
    with pytest.raises(ConfigurationError) as caught:
        platform_env.host(plugins=["x"])
    message = str(caught.value)
    assert f"{LABEL} task `x.job` has global_rate_limit '10/m'" in message
    assert "no Redis is configured" in message
    assert "PLATFORM_RESULT_BACKEND" in message and "PLATFORM_DEAD_LETTER_URL" in message


def test_a_redis_result_backend_or_store_holds_the_buckets(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("x", one_task_plugin("x", 'global_rate_limit="10/m"'))
    platform_env.set(PLATFORM_BROKER_URL="amqp://guest@127.0.0.1:5672//",
                     PLATFORM_RESULT_BACKEND="redis://127.0.0.1:6379/9")
    app = platform_env.host(plugins=["x"]).app
    assert app.conf.platform_rate_limit_url == "redis://127.0.0.1:6379/9"
    assert app.tasks["x.job"].global_rate_limit == Rate(10, 60.0)


def test_eager_test_hosts_need_no_redis(platform_env: PlatformEnv) -> None:
    from platform_core.app.builder import AppOptions

    platform_env.plugins.add("x", one_task_plugin("x", 'global_rate_limit="10/m"'))
    app = platform_env.host(plugins=["x"], options=AppOptions(eager=True)).app
    assert app.tasks["x.job"].delay().get(timeout=5) == 1


def test_tasks_without_a_limit_carry_none(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("x", one_task_plugin("x", 'rate_limit="10/m"'))
    app = platform_env.host(plugins=["x"]).app
    assert getattr(app.tasks["x.job"], "global_rate_limit", None) is None
    assert app.conf.platform_rate_limit_url is None
