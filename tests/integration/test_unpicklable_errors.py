"""Retries used up on errors that cannot be pickled still leave a dead letter with the
error's own class and message (real worker, real pool processes, Redis)."""

from __future__ import annotations

import pytest

from platform_core import stores
from platform_core.stores.records import DeadLetter
from tests.support import PlatformEnv, wait_until

SECRET = "secret-ARG-5150"

SOURCE = '''
import io
import urllib.error

from platform_sdk import Queue, RetryPolicy, Route, hookimpl, task


class TwoArgs(Exception):
    """Its __init__ takes two arguments, its args hold one: unpickling it fails."""

    def __init__(self, code, detail):
        super().__init__(f"code {code}: {detail}")


class NoReduce(Exception):
    def __reduce__(self):
        raise TypeError("NoReduce cannot be pickled")


QUICK = RetryPolicy(name="quick", max_retries=2, backoff_base=1, backoff_cap=1, jitter=False,
                    retry_on=(urllib.error.HTTPError, TwoArgs, NoReduce))


@task(name="unpick.http", retry=QUICK)
def http(token):
    raise urllib.error.HTTPError("http://127.0.0.1:9/api", 503, "Service Unavailable", {},
                                 io.BytesIO(b"busy"))


@task(name="unpick.two", retry=QUICK)
def two(token):
    raise TwoArgs(7, "quota exceeded")


@task(name="unpick.noreduce", retry=QUICK)
def noreduce(token):
    raise NoReduce("no reduce for you")


@hookimpl
def register_tasks(register):
    for t in (http, two, noreduce):
        register(t)


@hookimpl
def register_queues(register):
    register(Queue(name="unpick"))


@hookimpl
def register_routes(register):
    register(Route(pattern="unpick.*", queue="unpick"))


@hookimpl
def register_retry_policies(register):
    register(QUICK)
'''


@pytest.fixture
def unpick_env(platform_env: PlatformEnv, redis_url: str) -> PlatformEnv:
    platform_env.set(PLATFORM_BROKER_URL=redis_url)
    platform_env.plugins.add("unpick", SOURCE)
    return platform_env


def test_exhausted_retries_on_unpicklable_errors_are_dead_lettered_with_the_error(
        unpick_env: PlatformEnv) -> None:
    worker = unpick_env.worker("--plugins", "unpick")
    host = unpick_env.host()
    sent = {name: host.app.tasks[f"unpick.{name}"].delay(SECRET)
            for name in ("http", "two", "noreduce")}
    for name, result in sent.items():
        wait_until(lambda r=result: r.state == "FAILURE", 60, f"unpick.{name} to fail")

    def all_letters() -> list[DeadLetter] | None:
        found = stores.for_app(host.app).dead_letters.list()
        return found if len(found) == len(sent) else None

    letters = wait_until(all_letters, 30, "a dead letter per task")
    assert {e.task: e.reason for e in letters} == {
        "unpick.http": "retries exhausted after 2 retries: "
                       "HTTPError: HTTP Error 503: Service Unavailable",
        "unpick.two": "retries exhausted after 2 retries: TwoArgs: code 7: quota exceeded",
        "unpick.noreduce": "retries exhausted after 2 retries: NoReduce: no reduce for you",
    }
    for entry in letters:
        assert entry.message.headers["retries"] == 2
        assert entry.task_id == sent[str(entry.task).removeprefix("unpick.")].id
    assert worker.alive()
    assert SECRET not in worker.output()
