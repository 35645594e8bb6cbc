"""SDK declaration models and how the host routes tasks to queues."""

from __future__ import annotations

import fnmatch
import smtplib
from datetime import timedelta
from typing import Any

import pytest
from celery.schedules import crontab
from pydantic import ValidationError

from platform_core.checks.routing import Router
from platform_core.host import Host
from platform_core.loading.registry import Contribution, PluginInfo
from platform_sdk import BeatEntry, Crontab, Every, Queue, RetryPolicy, Route, WorkerHints
from tests.support import PlatformEnv

# --- RetryPolicy ----------------------------------------------------------------------


def test_retry_on_accepts_classes_and_dotted_names() -> None:
    policy = RetryPolicy(name="p", retry_on=[ConnectionError, "smtplib.SMTPException",
                                             smtplib.SMTPServerDisconnected])
    assert policy.retry_on == ("builtins.ConnectionError", "smtplib.SMTPException",
                               "smtplib.SMTPServerDisconnected")


def test_retry_on_accepts_a_single_class_or_name() -> None:
    assert RetryPolicy(name="p", retry_on=KeyError).retry_on == ("builtins.KeyError",)
    assert RetryPolicy(name="p", retry_on="socket.timeout").retry_on == ("socket.timeout",)


def test_retry_on_names_nested_classes_by_qualified_name() -> None:
    class Outer:
        class Boom(Exception):
            pass

    (dotted,) = RetryPolicy(name="p", retry_on=Outer.Boom).retry_on
    assert dotted == f"{__name__}.{Outer.Boom.__qualname__}"
    assert dotted.endswith("<locals>.Outer.Boom")


def test_retry_on_rejects_undotted_names() -> None:
    with pytest.raises(ValidationError) as caught:
        RetryPolicy(name="p", retry_on=("ConnectionError",))
    assert ("retry_on entry 'ConnectionError' must be a dotted name such as "
            "'builtins.ConnectionError' or the exception class itself") in str(caught.value)


def test_backoff_cap_below_base_is_rejected() -> None:
    with pytest.raises(ValidationError) as caught:
        RetryPolicy(name="p", backoff_base=10, backoff_cap=5)
    assert "backoff_cap (5) is below backoff_base (10)" in str(caught.value)
    assert RetryPolicy(name="p", backoff_base=10, backoff_cap=10).backoff_cap == 10


@pytest.mark.parametrize("field", [{"max_retries": -1}, {"backoff_base": 0}, {"backoff_cap": 0}])
def test_retry_policy_bounds(field: dict[str, int]) -> None:
    with pytest.raises(ValidationError):
        RetryPolicy(name="p", **field)


def test_retry_policy_defaults_and_immutability() -> None:
    policy = RetryPolicy(name="p")
    assert (policy.max_retries, policy.backoff_base, policy.backoff_cap, policy.jitter,
            policy.retry_on) == (3, 2, 600, True, ())
    with pytest.raises(ValidationError):
        policy.max_retries = 5  # type: ignore[misc]
    with pytest.raises(ValidationError) as caught:
        RetryPolicy(name="p", retries=3)  # type: ignore[call-arg]
    assert "retries" in str(caught.value)


# --- BeatEntry and schedules -----------------------------------------------------------


@pytest.mark.parametrize("seconds", [30, 2.5])
def test_beat_schedule_given_as_a_number_becomes_every(seconds: float) -> None:
    entry = BeatEntry(name="e", task="a.b", schedule=seconds)
    assert entry.schedule == Every(seconds=float(seconds))
    assert entry.schedule.describe() == f"every {seconds:g}s"


def test_beat_schedule_from_a_dict_uses_the_kind() -> None:
    entry = BeatEntry(name="e", task="a.b", schedule={"kind": "crontab", "minute": "*/15"})
    assert entry.schedule == Crontab(minute="*/15")
    every = BeatEntry(name="e", task="a.b", schedule={"kind": "every", "seconds": 5})
    assert every.schedule == Every(seconds=5)


@pytest.mark.parametrize("schedule", [0, -1, True, "30", {"kind": "hourly"}])
def test_beat_schedule_rejects_nonsense(schedule: Any) -> None:
    with pytest.raises(ValidationError):
        BeatEntry(name="e", task="a.b", schedule=schedule)


def test_crontab_ints_become_strings() -> None:
    cron = Crontab(minute=0, hour=8, day_of_week=1, day_of_month=15, month_of_year=6)
    assert (cron.minute, cron.hour, cron.day_of_week, cron.day_of_month,
            cron.month_of_year) == ("0", "8", "1", "15", "6")
    assert cron.describe() == "crontab(0 8 15 6 1)"
    assert Crontab().describe() == "crontab(* * * * *)"


def test_beat_entry_name_and_expires_are_validated() -> None:
    with pytest.raises(ValidationError) as caught:
        BeatEntry(name="every day!", task="a.b", schedule=5)
    assert "beat entry 'every day!' is not a valid name" in str(caught.value)
    with pytest.raises(ValidationError):
        BeatEntry(name="e", task="a.b", schedule=5, expires=0)


# --- Queue, Route, WorkerHints --------------------------------------------------------


@pytest.mark.parametrize("name", ["default", "quant.data", "a:b", "x-1", "_private", "Q9"])
def test_queue_accepts_names(name: str) -> None:
    queue = Queue(name=name)
    assert queue.name == name
    assert queue.key == name


@pytest.mark.parametrize("name", ["bad name!", "", "-leading", ".dot", "a/b", "ü"])
def test_queue_rejects_names(name: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Queue(name=name)
    assert f"queue {name!r} is not a valid name" in str(caught.value)


def test_queue_routing_key_and_limits() -> None:
    assert Queue(name="q", routing_key="rk").key == "rk"
    with pytest.raises(ValidationError):
        Queue(name="q", max_priority=256)
    with pytest.raises(ValidationError):
        Queue(name="q", max_length=0)


def test_route_validation() -> None:
    with pytest.raises(ValidationError) as caught:
        Route(pattern="  ", queue="q")
    assert "route pattern must not be empty" in str(caught.value)
    with pytest.raises(ValidationError) as caught:
        Route(pattern="a.*", queue="not a queue")
    assert "queue 'not a queue' is not a valid name" in str(caught.value)


def test_route_specificity() -> None:
    assert Route(pattern="quant.process_data", queue="q").specificity == (1, 18)
    assert Route(pattern="quant.sync_*", queue="q").specificity == (0, 11)
    assert Route(pattern="quant.*", queue="q").specificity == (0, 6)
    assert Route(pattern="quant.job?", queue="q").is_glob


def test_worker_hints_validation() -> None:
    assert WorkerHints(pool="threads").pool == "threads"
    with pytest.raises(ValidationError):
        WorkerHints(pool="gevent")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        WorkerHints(max_tasks_per_child=0)


# --- Router ---------------------------------------------------------------------------

OWNER = PluginInfo("p", "throwaway-p", "0.0.1", "mod")


def router(*routes: tuple[str, str], default: str = "default") -> Router:
    return Router([Contribution(Route(pattern=p, queue=q), OWNER) for p, q in routes], default)


def test_exact_name_beats_any_glob() -> None:
    r = router(("a.*", "globbed"), ("a.job*", "longer-glob"), ("a.job", "exact"))
    assert r.queue_of("a.job") == "exact"
    assert r.queue_of("a.jobs") == "longer-glob"


def test_longer_glob_beats_shorter_regardless_of_order() -> None:
    for routes in ([("quant.*", "quant"), ("quant.sync_*", "data")],
                   [("quant.sync_*", "data"), ("quant.*", "quant")]):
        r = router(*routes)
        assert r.queue_of("quant.sync_stock_list") == "data"
        assert r.queue_of("quant.heavy_task") == "quant"


def test_question_mark_and_star_globs_and_the_default() -> None:
    r = router(("job?", "single"), ("*", "everything"), default="fallback")
    assert r.queue_of("job1") == "single"
    assert r.queue_of("job12") == "everything"
    assert router(("a.*", "a"), default="fallback").queue_of("b.job") == "fallback"


def test_router_matching_is_case_sensitive() -> None:
    r = router(("Admin.*", "admin"))
    assert r.queue_of("admin.print_hello") == "default"
    assert r.match("Admin.x") is not None
    assert r.match("Admin.x").plugin == OWNER  # type: ignore[union-attr]


# --- routing on a real host with admin and quant --------------------------------------

EXPECTED = {
    "admin.send_email": "admin.email",
    "admin.print_hello": "admin",
    "admin.weekly_report": "admin",
    "quant.sync_stock_list": "quant.data",
    "quant.heavy_task": "quant",
    "quant.process_data": "quant.data",
}


@pytest.fixture
def bundled(platform_env: PlatformEnv) -> Host:
    return platform_env.set(PLATFORM_PLUGINS="admin,quant").host()


def test_bundled_tasks_go_to_their_queues(bundled: Host) -> None:
    for name, queue in EXPECTED.items():
        assert bundled.queue_of(name) == queue, name
        assert bundled.app.conf.task_routes[name] == {"queue": queue}, name


def test_celery_routes_bundled_tasks_the_same_way(bundled: Host) -> None:
    """Celery's own router, as used by ``apply_async``, reaches the same decision."""
    celery_router = bundled.app.amqp.router
    for name, queue in EXPECTED.items():
        assert celery_router.route({}, name)["queue"].name == queue, name


def test_globs_also_route_names_sent_by_string(bundled: Host) -> None:
    routes = bundled.app.conf.task_routes
    globs = {key.pattern: value for key, value in routes.items() if not isinstance(key, str)}
    assert globs[fnmatch.translate("quant.sync_*")] == {"queue": "quant.data"}
    celery_router = bundled.app.amqp.router
    assert celery_router.route({}, "quant.sync_prices")["queue"].name == "quant.data"
    assert celery_router.route({}, "quant.other")["queue"].name == "quant"
    assert celery_router.route({}, "admin.other")["queue"].name == "admin"
    assert celery_router.route({}, "nobody.task")["queue"].name == "default"


def test_declared_queues_become_kombu_queues(bundled: Host) -> None:
    queues = {q.name: q for q in bundled.app.conf.task_queues}
    assert set(queues) == {"default", "admin", "admin.email", "quant", "quant.data"}
    assert queues["quant.data"].routing_key == "quant.data"
    assert queues["quant.data"].exchange.name == "quant.data"
    assert bundled.app.conf.task_default_queue == "default"


def test_beat_schedule_of_bundled_plugins(bundled: Host) -> None:
    schedule = bundled.app.conf.beat_schedule
    assert set(schedule) == {"admin.hello-every-30s", "admin.weekly-report",
                             "quant.sync-stock-list-daily"}
    hello = schedule["admin.hello-every-30s"]
    assert hello["task"] == "admin.print_hello"
    assert hello["schedule"] == timedelta(seconds=30)
    assert hello["options"] == {"expires": 30}
    weekly = schedule["admin.weekly-report"]["schedule"]
    assert isinstance(weekly, crontab)
    assert weekly == crontab(minute="0", hour="8", day_of_week="1")
    daily = schedule["quant.sync-stock-list-daily"]
    assert daily["schedule"] == crontab(minute="0", hour="2")
    assert daily["args"] == () and daily["kwargs"] == {} and daily["options"] == {}


def test_task_queue_option_beats_routes(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("r", """
        from platform_sdk import BeatEntry, Queue, Route, hookimpl, task

        @task(name="r.pinned", queue="r.slow")
        def pinned():
            pass

        @task(name="r.routed")
        def routed():
            pass

        @hookimpl
        def register_tasks(register):
            register(pinned)
            register(routed)

        @hookimpl
        def register_queues(register):
            register(Queue(name="r.fast"))
            register(Queue(name="r.slow"))

        @hookimpl
        def register_routes(register):
            register(Route(pattern="r.pinned", queue="r.fast"))
            register(Route(pattern="r.*", queue="r.fast"))

        @hookimpl
        def register_beat_entries(register):
            register(BeatEntry(name="r.tick", task="r.routed", schedule=9, queue="r.slow"))
    """)
    host = platform_env.set(PLATFORM_PLUGINS="r").host()
    assert host.router.queue_of("r.pinned") == "r.fast"  # what the routes alone would say
    assert host.queue_of("r.pinned") == "r.slow"
    assert host.app.conf.task_routes["r.pinned"] == {"queue": "r.slow"}
    assert host.app.amqp.router.route({}, "r.pinned")["queue"].name == "r.slow"
    assert host.queue_of("r.routed") == "r.fast"
    assert host.app.conf.beat_schedule["r.tick"]["options"] == {"queue": "r.slow"}


def test_queue_options_reach_kombu(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("q", """
        from platform_sdk import Queue, hookimpl

        @hookimpl
        def register_queues(register):
            register(Queue(name="q.prio", routing_key="prio.key", max_priority=10,
                           message_ttl=1.5, max_length=100))
    """)
    host = platform_env.set(PLATFORM_PLUGINS="q").host()
    (queue,) = host.app.conf.task_queues
    assert queue.routing_key == "prio.key"
    assert (queue.max_priority, queue.message_ttl, queue.max_length) == (10, 1.5, 100)
