"""pytest fixtures for plugin authors; installed with the SDK (the ``pytest11`` entry point).

``platform_app`` starts the host in the test's process and runs tasks eagerly, sealed
from the environment: only the settings the test gives count, whatever ``PLATFORM_*``
variables the shell has::

    def test_greet(platform_app):
        platform_app("hello", settings={"hello": {"greeting": "Hi"}})
        assert greet.delay("Ada").get() == {"greeting": "Hi, Ada!", "name": "Ada"}

``platform_worker`` starts a real ``platform worker`` process for the plugins (the
embedded broker under the test's temporary home, or the broker given), waits until it
is ready, and stops it after the test; the test's process sends to it::

    def test_progress(platform_worker):
        worker = platform_worker("quant")
        result = process_data.delay([1, 2, 3])
        assert [p["progress"] for p in worker.progress(result)] == [1, 2, 3]
        assert worker.wait(result)["count"] == 3

A host that refuses to start raises :class:`platform_sdk.StartupError`, listing the
problems.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

from . import testing
from .exceptions import HostNotAvailable, StartupError

#: Seconds a worker may take to say it is ready.
READY_TIMEOUT = 90.0
#: Seconds between two looks at a result's state.
POLL = 0.02

Settings = Mapping[str, Mapping[str, Any]]


def _command() -> list[str]:
    """The ``platform`` command of the installed host, run with this interpreter."""
    found = [ep for ep in entry_points(group="console_scripts") if ep.name == "platform"]
    if not found:
        raise HostNotAvailable("no `platform` command is installed: install platform-core")
    module, _, attr = found[0].value.partition(":")
    return [sys.executable, "-c",
            f"import sys; from {module} import {attr} as main; sys.exit(main())"]


def _environment(home: Path, broker_url: str | None, settings: Settings) -> dict[str, str]:
    """The worker's environment: this one without ``PLATFORM_*``, then the test's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLATFORM_")}
    env["PLATFORM_HOME"] = str(home)
    if broker_url:
        env["PLATFORM_BROKER_URL"] = broker_url
    for plugin, values in settings.items():
        prefix = f"PLATFORM_{plugin.upper().replace('-', '_').replace('.', '_')}__"
        for name, value in values.items():
            env[prefix + name.upper()] = value if isinstance(value, str) else json.dumps(value)
    return env


@dataclass
class Worker:
    """A running ``platform worker`` process and the app the test sends with."""

    plugins: tuple[str, ...]
    app: Any
    process: subprocess.Popen[bytes]
    log: Path
    _stopped: bool = field(default=False, repr=False)

    def output(self) -> str:
        """Everything the worker printed so far."""
        return self.log.read_text(errors="replace")

    def wait(self, result: Any, timeout: float = 60.0) -> Any:
        """The task's return value (its error raised), waiting up to ``timeout`` s."""
        return result.get(timeout=timeout)

    def progress(self, result: Any, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Every PROGRESS update the task stored, in order, until it ended (updates
        written faster than the result store is read can be missed; each one seen is
        returned once)."""
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while True:
            state, info = result.state, result.info
            if state == "PROGRESS" and isinstance(info, dict) and (not seen or seen[-1] != info):
                seen.append(info)
            if result.ready():
                return seen
            if time.monotonic() > deadline:
                raise TimeoutError(f"task {result.id} did not end within {timeout:g}s; "
                                   f"last state {state}")
            time.sleep(POLL)

    def stop(self) -> None:
        """Warm shutdown; killed if it does not end within 30 s."""
        if self._stopped:
            return
        self._stopped = True
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


def _wait_ready(worker: Worker) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while " ready." not in worker.output():
        if worker.process.poll() is not None:
            raise StartupError([f"platform worker --plugins {','.join(worker.plugins)} "
                                f"exited with {worker.process.returncode} before it was "
                                f"ready:\n{worker.output()[-4000:]}"])
        if time.monotonic() > deadline:
            worker.stop()
            raise StartupError([f"platform worker --plugins {','.join(worker.plugins)} was "
                                f"not ready within {READY_TIMEOUT:g}s:\n"
                                f"{worker.output()[-4000:]}"])
        time.sleep(0.05)


@pytest.fixture
def platform_app(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """``platform_app(*plugins, settings=None)``: the host of exactly those plugins in this
    process, tasks run eagerly, nothing read from the environment; returns its app."""
    with contextlib.ExitStack() as stack:
        def start(*plugins: str, settings: Settings | None = None) -> Any:
            return stack.enter_context(testing.platform(
                *plugins, home=tmp_path / "platform-home", settings=settings))

        yield start


@pytest.fixture
def platform_worker(tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """``platform_worker(*plugins, broker_url=None, settings=None, concurrency=1)``: a real
    worker process for those plugins, ready; stopped after the test."""
    with contextlib.ExitStack() as stack:
        def start(*plugins: str, broker_url: str | None = None,
                  settings: Settings | None = None, concurrency: int = 1) -> Worker:
            if not plugins:
                raise ValueError("name at least one plugin: platform_worker('hello')")
            settings = settings or {}
            home = tmp_path / f"platform-home-{uuid.uuid4().hex[:6]}"
            app = stack.enter_context(testing.platform(
                *plugins, home=home, settings=settings, eager=False, sealed=True,
                broker_url=broker_url))
            log = tmp_path / f"worker-{uuid.uuid4().hex[:6]}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [*_command(), "worker", "--plugins", ",".join(plugins),
                     "-c", str(concurrency), "-n", f"test-{uuid.uuid4().hex[:8]}@%h",
                     "--without-gossip", "--without-mingle"],
                    env=_environment(home, broker_url, settings), stdout=out,
                    stderr=subprocess.STDOUT, start_new_session=True)
            worker = Worker(plugins=plugins, app=app, process=process, log=log)
            stack.callback(worker.stop)
            _wait_ready(worker)
            return worker

        yield start
