"""The SDK's pytest plugin, as a plugin author uses it: pytest in a subprocess, on a plugin
installed for it, with the fixtures the SDK registers (``platform_app``, ``platform_worker``)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.support import PlatformEnv, output_of

PLUGIN = '''
from pydantic import BaseModel, Field
from platform_sdk import Queue, hookimpl, settings, task

class GreetSettings(BaseModel):
    greeting: str = "Hello"
    times: int = Field(default=1, ge=1)

@task(name="greet.hello", queue="greet")
def hello(name: str) -> str:
    config = settings(GreetSettings)
    return " ".join([f"{config.greeting}, {name}!"] * config.times)

@task(name="greet.count", queue="greet", bind=True)
def count(self, total: int) -> int:
    for done in range(1, total + 1):
        self.update_state(state="PROGRESS", meta={"progress": done, "total": total})
        import time; time.sleep(0.3)
    return total

@task(name="greet.shout", queue="greet")
def shout(text: str) -> str:
    return text.upper()

@task(name="greet.join", queue="greet")
def join(parts: list[str]) -> str:
    return " ".join(parts)

@hookimpl
def register_tasks(register):
    for t in (hello, count, shout, join):
        register(t)

@hookimpl
def register_queues(register):
    register(Queue(name="greet"))

@hookimpl
def register_settings(register):
    register(GreetSettings)
'''

TESTS = '''
import pytest
from platform_sdk import InvalidTaskCall, StartupError
from celery import chain, chord, group
from {module} import count, hello, join, shout

def test_eager_settings_given_by_the_test_win(platform_app):
    platform_app("greet", settings={{"greet": {{"greeting": "Hi"}}}})
    assert hello.delay("Ada").get() == "Hi, Ada!"

def test_nothing_leaks_in_from_the_shell(platform_app):
    platform_app("greet")
    assert hello.delay("Ada").get() == "Hello, Ada!"

def test_a_bad_setting_is_an_sdk_error(platform_app):
    with pytest.raises(StartupError) as caught:
        platform_app("greet", settings={{"greet": {{"times": 0}}}})
    assert "setting `times`" in str(caught.value)

def test_a_canvas_runs_eagerly(platform_app):
    platform_app("greet")
    assert chain(hello.s("Ada"), shout.s()).delay().get() == "HELLO, ADA!"
    assert group(hello.s("Ada"), hello.s("Bob")).delay().get() == ["Hello, Ada!", "Hello, Bob!"]
    assert chord([hello.s("Ada"), shout.s("b")], join.s()).delay().get() == "Hello, Ada! B"

def test_a_failing_link_raises_its_error_eagerly(platform_app):
    platform_app("greet")
    with pytest.raises(InvalidTaskCall, match="total"):
        chain(hello.s("Ada"), count.s()).delay().get()

def test_a_real_worker_reports_progress_in_order(platform_worker):
    worker = platform_worker("greet", settings={{"greet": {{"greeting": "Salut"}}}})
    result = count.delay(3)
    updates = worker.progress(result, timeout=60)
    assert [u["progress"] for u in updates] == sorted({{u["progress"] for u in updates}})
    assert updates and updates[-1]["total"] == 3
    assert worker.wait(result) == 3
    assert worker.wait(hello.delay("Ada")) == "Salut, Ada!"
    assert worker.wait(chord([hello.s("Ada"), shout.s("b")], join.s()).delay()) == "Salut, Ada! B"
    assert " ready." in worker.output()
'''


def test_the_fixtures_as_a_plugin_author_uses_them(platform_env: PlatformEnv) -> None:
    module = platform_env.plugins.add("greet", PLUGIN, distribution="platform-greet")
    tests = platform_env.home.parent / "test_greet.py"
    tests.write_text(textwrap.dedent(TESTS.format(module=module)))
    # the shell's values must not reach the tests: a bad one would fail them all
    env = {**platform_env.environ, "PLATFORM_GREET__GREETING": "Shell",
           "PLATFORM_GREET__TIMES": "not a number", "PLATFORM_BROKER_URL": "redis://nowhere:1/0"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         str(tests)], env=env, capture_output=True, text=True, timeout=300,
        cwd=tests.parent)
    assert result.returncode == 0, output_of(result)
    assert "6 passed" in result.stdout, result.stdout
