"""platform_sdk.testing: a plugin's tests run its tasks in-process through the real host."""

from __future__ import annotations

from pathlib import Path

import pytest

from platform_sdk import StartupError, hosting
from platform_sdk.testing import platform
from tests.support import PlatformEnv

PLUGIN = """
    from pydantic import BaseModel
    from platform_sdk import Queue, RetryPolicy, hookimpl, settings, task

    class Config(BaseModel):
        factor: int = 2

    @task(name="calc.scale", queue="calc")
    def scale(x: int) -> int:
        return x * settings(Config).factor

    @task(name="calc.steps", queue="calc", bind=True)
    def steps(self, n: int) -> int:
        for i in range(n):
            self.update_state(state="PROGRESS", meta={"progress": i + 1, "total": n})
        return n

    ATTEMPTS = []

    @task(name="calc.flaky", queue="calc",
          retry=RetryPolicy(name="now", max_retries=2, backoff_base=1, jitter=False,
                            retry_on=(ConnectionError,)))
    def flaky() -> int:
        ATTEMPTS.append(1)
        if len(ATTEMPTS) < 3:
            raise ConnectionError("not yet")
        return len(ATTEMPTS)

    @hookimpl
    def register_tasks(register):
        for t in (scale, steps, flaky):
            register(t)

    @hookimpl
    def register_queues(register):
        register(Queue(name="calc"))

    @hookimpl
    def register_settings(register):
        register(Config)
"""


@pytest.fixture
def calc(platform_env: PlatformEnv) -> object:
    module = platform_env.plugins.add("calc", PLUGIN)
    platform_env.prepare()
    return __import__(module)


def test_tasks_run_eagerly_with_plugin_settings(calc: object, tmp_path: Path) -> None:
    with platform("calc", home=tmp_path, settings={"calc": {"factor": 5}}) as app:
        result = calc.scale.delay(3)  # type: ignore[attr-defined]
        assert result.get() == 15
        assert app.tasks["calc.scale"].plugin == "calc"
        assert calc.steps.apply_async((4,)).get() == 4  # type: ignore[attr-defined]


def test_retry_policy_applies_in_eager_runs(calc: object, tmp_path: Path) -> None:
    with platform("calc", home=tmp_path):
        assert calc.flaky.delay().get() == 3  # type: ignore[attr-defined]


def test_invalid_plugin_settings_fail_like_the_worker(calc: object, tmp_path: Path) -> None:
    with pytest.raises(StartupError, match=r"plugin `calc` .* setting `factor`"), \
            platform("calc", home=tmp_path, settings={"calc": {"factor": "many"}}):
        pass


def test_a_plugin_test_catches_start_up_problems_with_the_sdk_type(
    platform_env: PlatformEnv, tmp_path: Path,
) -> None:
    """A plugin's tests import only the SDK, even to expect that its plugin is refused."""
    platform_env.plugins.add("oops", """
        from platform_sdk import Queue, hookimpl

        @hookimpl
        def register_queues(register):
            register(Queue(name="hello"))
    """)
    platform_env.prepare()
    with pytest.raises(StartupError) as caught, platform("oops", home=tmp_path):
        pass
    (problem,) = caught.value.problems
    assert problem.startswith("plugin `oops` (throwaway-oops 0.0.1) declares queue `hello` "
                              "outside its namespace")
    assert str(caught.value) == f"the platform cannot start: {problem}"
    assert hosting.bound() is None


def test_only_the_named_plugins_are_loaded(calc: object, tmp_path: Path) -> None:
    with platform("calc", home=tmp_path) as app:
        assert not any(name.startswith("admin.") for name in app.tasks)
    assert hosting.bound() is None  # unbound on exit
