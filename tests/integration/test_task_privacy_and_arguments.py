"""Real workers: arguments and results stay out of the log, arguments are checked and
converted where the task runs, and a broken plugin leaves the others running."""

from __future__ import annotations

from datetime import date

import pytest
from celery import Celery

from platform_admin.tasks import print_hello
from platform_sdk.exceptions import InvalidTaskCall
from tests.support import PlatformEnv

SECRET = "tok-Secret-8d41f0"

VAULT = """
from datetime import date

from pydantic import BaseModel
from platform_sdk import Queue, RetryPolicy, Route, hookimpl, task


class Order(BaseModel):
    sku: str
    qty: int


@task(name="vault.echo")
def echo(token):
    return {"token": token}


@task(name="vault.fail")
def fail(token):
    raise ValueError("the token was refused")


@task(name="vault.typed", retry=RetryPolicy(
    name="vault.eager", max_retries=3, backoff_base=1, jitter=False,
    retry_on=("builtins.ValueError", "builtins.TypeError")))
def typed(day: date, order: Order, count: int = 1) -> dict:
    return {"day": type(day).__name__, "iso": day.isoformat(), "order": type(order).__name__,
            "qty": order.qty, "count": count}


@hookimpl
def register_tasks(register):
    for t in (echo, fail, typed):
        register(t)


@hookimpl
def register_queues(register):
    register(Queue(name="vault"))


@hookimpl
def register_routes(register):
    register(Route(pattern="vault.*", queue="vault"))
"""


@pytest.fixture
def vault(platform_env: PlatformEnv, redis_url: str) -> PlatformEnv:
    platform_env.plugins.add("vault", VAULT)
    return platform_env.set(PLATFORM_BROKER_URL=redis_url, PLATFORM_PLUGINS="vault")


def unchecked(app: Celery, name: str, *args: object) -> object:
    """Send as a plain Celery producer would: no platform checks, real argsrepr."""
    return Celery.send_task(app, name, args=list(args))


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
def test_worker_log_never_shows_arguments_or_results(vault: PlatformEnv, level: str) -> None:
    worker = vault.worker("--plugins", "vault", "-l", level)
    app = vault.host().app
    echoed = app.tasks["vault.echo"].delay(SECRET)
    assert echoed.get(timeout=30) == {"token": SECRET}
    failed = app.tasks["vault.fail"].delay(token=SECRET)
    with pytest.raises(ValueError, match="the token was refused"):
        failed.get(timeout=30)
    plain: object = unchecked(app, "vault.echo", SECRET)
    assert plain.get(timeout=30) == {"token": SECRET}  # type: ignore[attr-defined]
    worker.wait_for_log(f"Task vault.echo[{plain.id}] succeeded in")  # type: ignore[attr-defined]
    worker.stop()
    log = worker.output()
    # The lines are there (so the test would see a leak) ...
    for task_id in (echoed.id, plain.id):  # type: ignore[attr-defined]
        assert f"Task vault.echo[{task_id}] received" in log
        assert f"Task vault.echo[{task_id}] succeeded in" in log
    assert (f"Task vault.fail[{failed.id}] raised unexpected: "
            "ValueError('the token was refused')") in log
    if level == "DEBUG":
        assert "TaskPool: Apply" in log
    # ... and the secret, passed as an argument and returned as a result, is not.
    assert SECRET not in log


def test_worker_checks_and_converts_arguments(vault: PlatformEnv) -> None:
    worker = vault.worker("--plugins", "vault")
    app = vault.host().app
    typed = app.tasks["vault.typed"]
    converted = typed.delay(date(2026, 1, 31), {"sku": "a", "qty": "2"}, count="3")
    assert converted.get(timeout=30) == {"day": "date", "iso": "2026-01-31", "order": "Order",
                                         "qty": 2, "count": 3}
    # A message the platform did not check (a plain Celery producer) fails in the worker,
    # with the same kind of error, and is not retried although the policy retries
    # TypeError and ValueError.
    bad = unchecked(app, "vault.typed", SECRET, {"sku": "a"})
    with pytest.raises(InvalidTaskCall) as caught:
        bad.get(timeout=30)  # type: ignore[attr-defined]
    assert str(caught.value) == (
        "task `vault.typed` received invalid arguments: `day`: Input should be a valid date or "
        "datetime, invalid character in year (expected a date (YYYY-MM-DD), got a string); `order`.qty: Field required "
        "(expected an object with the fields of Order, got an object)"
    )
    assert bad.state == "FAILURE"  # type: ignore[attr-defined]
    worker.stop()
    log = worker.output()
    assert f"Task vault.typed[{bad.id}] raised unexpected: InvalidTaskCall(" in log  # type: ignore[attr-defined]
    assert f"Task vault.typed[{bad.id}] retry" not in log  # type: ignore[attr-defined]
    assert SECRET not in log


def test_a_broken_plugin_is_left_out_and_the_others_run(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("bad", "raise ImportError('missing dependency xyz')\n")
    worker = platform_env.worker("--plugins", "admin,quant", ready=False)
    worker.wait_for_log(" ready.")
    assert "broken plugin" not in worker.output()  # control: only the named plugins are loaded
    everything = platform_env.worker()  # every installed plugin, the broken one left out
    log = everything.output()
    assert ("broken plugin left out: plugin `bad` (throwaway-bad 0.0.1) failed to import "
            in log)
    assert "ImportError: missing dependency xyz" in log
    row = next(line for line in log.splitlines() if "plugin bad" in line)
    assert "BROKEN" in row
    platform_env.host()
    assert print_hello.apply_async(queue="admin").get(timeout=30) == {"status": "success"}
