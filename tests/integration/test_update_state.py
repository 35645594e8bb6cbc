"""A task that stores SUCCESS itself with update_state() loses its return value: warned."""

from __future__ import annotations

import pytest

from tests.support import PlatformEnv, wait_until

pytestmark = [pytest.mark.redis]

SECRET = "meta-value-9c1e"

PLUGIN = f'''
from platform_sdk import Queue, hookimpl, task

@task(name="early.done", queue="early", bind=True)
def done(self) -> int:
    self.update_state(state="SUCCESS", meta={{"token": "{SECRET}"}})
    return 42

@task(name="early.progress", queue="early", bind=True)
def progress(self) -> int:
    self.update_state(state="PROGRESS", meta={{"progress": 1, "total": 1}})
    return 7

@hookimpl
def register_tasks(register):
    register(done)
    register(progress)

@hookimpl
def register_queues(register):
    register(Queue(name="early"))
'''

WARNING = "Task early.done set its own state to SUCCESS with update_state()"


def test_a_task_storing_its_own_success_is_warned_once(platform_env: PlatformEnv,
                                                       redis_url: str) -> None:
    platform_env.plugins.add("early", PLUGIN, distribution="platform-early")
    platform_env.set(PLATFORM_BROKER_URL=redis_url)
    worker = platform_env.worker("-c", "1")
    app = platform_env.host().app
    first = app.tasks["early.done"].delay()
    second = app.tasks["early.done"].delay()
    # what the warning is about: the stored SUCCESS wins over the value returned
    assert first.get(timeout=60) == second.get(timeout=60) == {"token": SECRET}
    assert app.tasks["early.progress"].delay().get(timeout=60) == 7

    wait_until(lambda: WARNING in worker.output(), 30, "the worker's warning")
    output = worker.output()
    assert output.count(WARNING) == 1
    assert "Return the final value from the task" in output
    assert "early.progress set its own state" not in output
    assert SECRET not in output
