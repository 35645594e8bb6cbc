"""What plugin authors write passes the type checker, and what is wrong does not.

mypy runs on small samples with the project's configuration (strict, pydantic's plugin).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def mypy(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    sample = tmp_path / "sample.py"
    sample.write_text(textwrap.dedent(source))
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
         "--cache-dir", str(tmp_path / ".mypy_cache"), "--no-incremental", str(sample)],
        capture_output=True, text=True, timeout=240, cwd=ROOT, check=False)


def test_crontab_takes_the_integers_the_docs_show(tmp_path: Path) -> None:
    result = mypy(tmp_path, """
        from platform_sdk import BeatEntry, Crontab

        nightly = Crontab(minute=0, hour=3)
        weekdays = Crontab(minute="*/15", day_of_week="1-5")
        entry = BeatEntry(name="acme.nightly", task="acme.job", schedule=nightly)
        text: str = nightly.minute
    """)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("source", "error"), [
    ("Crontab(minute=[0])", 'Argument "minute" to "Crontab" has incompatible type "list[int]"'),
    ("Crontab(minutes=0)", 'Unexpected keyword argument "minutes" for "Crontab"'),
])
def test_crontab_refuses_what_it_cannot_take(tmp_path: Path, source: str, error: str) -> None:
    result = mypy(tmp_path, f"from platform_sdk import Crontab\n\n{source}\n")
    assert result.returncode == 1
    assert error in result.stdout, result.stdout


TASKS = """
    from typing import Any
    from platform_sdk import task

    @task(name="acme.add")
    def add(x: int, y: int = 0) -> int:
        return x + y

    @task(name="acme.count", bind=True)
    def count(self: Any, total: int) -> str:
        return str(total)
"""


def test_a_task_keeps_its_functions_signature(tmp_path: Path) -> None:
    result = mypy(tmp_path, TASKS + """
    add.delay(1, y=2)
    add.s(1).apply_async()
    add.si(2, 3)
    total: int = add(1, 2)
    count.delay(5)           # a bound task is sent without its `self`
    text: str = count(5)
    value: int = add.delay(1, 2).get(timeout=10)
    label: str = count.apply_async((5,), countdown=1).get()
    state: str = add.AsyncResult("some-id").state
    parent = add.delay(1).parent       # the rest of Celery's AsyncResult, untyped
    """)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("call", "error"), [
    ('add.delay("1")', 'Argument 1 to "delay" of "Task" has incompatible type "str"; '
                       'expected "int"'),
    ("add.delay(1, z=2)", 'Unexpected keyword argument "z" for "delay" of "Task"'),
    ("add.s()", 'Missing positional argument "x" in call to "s" of "Task"'),
    ('add.si(1, "2")', 'Argument 2 to "si" of "Task" has incompatible type "str"; '
                       'expected "int"'),
    ("count.delay()", 'Missing positional argument "total" in call to "delay" of "Task"'),
    ("wrong: str = add(1)", 'Incompatible types in assignment (expression has type "int", '
                            'variable has type "str")'),
    ("wrong: str = add.delay(1).get()", 'Incompatible types in assignment (expression has '
                                        'type "int", variable has type "str")'),
    ("wrong: int = count.AsyncResult('x').get()", 'Incompatible types in assignment '
                                                  '(expression has type "str", variable has '
                                                  'type "int")'),
])
def test_a_wrong_call_of_a_task_fails_the_type_checker(tmp_path: Path, call: str,
                                                      error: str) -> None:
    result = mypy(tmp_path, TASKS + f"\n    {call}\n")
    assert result.returncode == 1, result.stdout + result.stderr
    assert error in result.stdout, result.stdout
