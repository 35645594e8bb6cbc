"""``platform inspect`` against a real worker shows running tasks without their arguments."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support import PlatformEnv, output_of, wait_until

SECRET = "card-4111-1111-1111-1111"

PLUGIN = '''
import os, time
from platform_sdk import Queue, hookimpl, task

@task(name="peek.hold", queue="peek")
def hold(card: str, until: str) -> str:
    while not os.path.exists(until):
        time.sleep(0.05)
    return "done"

@hookimpl
def register_tasks(register):
    register(hold)

@hookimpl
def register_queues(register):
    register(Queue(name="peek"))
'''


def test_inspect_active_shows_the_types_of_a_running_tasks_arguments(
    platform_env: PlatformEnv, tmp_path: Path,
) -> None:
    platform_env.plugins.add("peek", PLUGIN)
    platform_env.worker("--plugins", "peek", "-c", "1")
    release = tmp_path / "release"
    result = platform_env.host().app.tasks["peek.hold"].delay(SECRET, str(release))

    def running() -> list[dict[str, object]] | None:
        answer = platform_env.run("inspect", "active", "--timeout", "2")
        if answer.returncode != 0:
            return None
        return [t for tasks in json.loads(answer.stdout).values() for t in tasks] or None

    (task,) = wait_until(running, 60, "the task to run")
    assert task["id"] == result.id
    assert task["args"] == "(<str>, <str>)" and task["kwargs"] == "{}"
    answer = platform_env.run("inspect", "active", "--timeout", "2")
    assert SECRET not in answer.stdout + answer.stderr, output_of(answer)
    release.touch()
    assert result.get(timeout=60) == "done"
