"""Test helpers: real `platform` processes and throwaway plugin distributions."""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from platform_core.host import Host, build
from platform_core.loading import discovery

READY_TIMEOUT = 60.0


# Read once at import: each test's isolation removes every PLATFORM_* variable.
REDIS_DB_OFFSET = int(os.environ.get("PLATFORM_TEST_REDIS_DB_OFFSET", "0"))


def redis_db_url(base: str, worker_id: str) -> str:
    """Database 1 + the xdist worker's index: parallel test processes never share one.

    ``PLATFORM_TEST_REDIS_DB_OFFSET`` shifts the range, so two test sessions on one
    Redis server can run side by side.
    """
    index = int(worker_id[2:]) + 2 if worker_id.startswith("gw") else 1
    index += REDIS_DB_OFFSET
    return f"{base.rstrip('/')}/{index % 16}"


def wait_until(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def one_task_plugin(name: str, task_options: str) -> str:
    """Source of plugin ``name``: task ``NAME.job`` on its own queue ``NAME``."""
    return f"""
        from platform_sdk import Queue, hookimpl, task

        @task(name="{name}.job", queue="{name}", {task_options})
        def job():
            return 1

        @hookimpl
        def register_tasks(register):
            register(job)

        @hookimpl
        def register_queues(register):
            register(Queue(name="{name}"))
    """


@dataclass
class PluginFactory:
    """Writes a plugin module plus a dist-info with a real ``platform.plugins`` entry point."""

    site: Path
    written: list[str] = field(default_factory=list)

    def add(self, name: str, source: str, *, distribution: str | None = None,
            version: str = "0.0.1", module: str | None = None) -> str:
        module = module or f"throwaway_{name}_{uuid.uuid4().hex[:6]}"
        dist = distribution or f"throwaway-{name}"
        self.site.mkdir(parents=True, exist_ok=True)
        (self.site / f"{module}.py").write_text(textwrap.dedent(source))
        info = self.site / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(f"[platform.plugins]\n{name} = {module}\n")
        self.written.append(module)
        return module


@dataclass
class Process:
    popen: subprocess.Popen[bytes]
    log: Path
    node: str = ""

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def alive(self) -> bool:
        return self.popen.poll() is None

    def wait_for_log(self, text: str, timeout: float = READY_TIMEOUT) -> None:
        def seen() -> bool:
            if not self.alive() and text not in self.output():
                raise AssertionError(
                    f"process exited with {self.popen.returncode} before printing {text!r}:\n"
                    + self.output()[-4000:]
                )
            return text in self.output()

        try:
            wait_until(seen, timeout, repr(text))
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- log ---\n{self.output()[-4000:]}") from None

    def stop(self, timeout: float = 15.0) -> int:
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)  # warm shutdown, as a supervisor does
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(10)
        else:
            with contextlib.suppress(ProcessLookupError):  # children a crashed parent left
                os.killpg(self.popen.pid, signal.SIGKILL)
        return self.popen.returncode


class PlatformEnv:
    """One isolated platform installation: home, environment, processes."""

    def __init__(self, home: Path, logs: Path, plugins: PluginFactory) -> None:
        self.home = home
        self.logs = logs
        self.plugins = plugins
        self.vars: dict[str, str] = {"PLATFORM_HOME": str(home)}
        self.processes: list[Process] = []
        logs.mkdir(parents=True, exist_ok=True)

    def set(self, **values: str) -> PlatformEnv:
        self.vars.update(values)
        for key, value in values.items():
            os.environ[key] = value
        return self

    @property
    def environ(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PLATFORM_", "OTEL_"))}
        env.update(self.vars)
        paths = [str(self.plugins.site), env.get("PYTHONPATH", "")]
        env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "platform_core", *args]

    def run(self, *args: str, timeout: float = 60, input: str | None = None
            ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(*args), env=self.environ, capture_output=True,
                              text=True, timeout=timeout, input=input, cwd=self.home.parent)

    def spawn(self, *args: str, name: str) -> Process:
        log = self.logs / f"{name}-{uuid.uuid4().hex[:6]}.log"
        with log.open("wb") as fh:
            popen = subprocess.Popen(self.command(*args), env=self.environ, stdout=fh,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     cwd=self.home.parent)
        process = Process(popen, log)
        self.processes.append(process)
        return process

    def worker(self, *args: str, ready: bool = True) -> Process:
        """``platform worker`` with a unique node name, waited for until it is ready."""
        node = f"w{uuid.uuid4().hex[:8]}@{socket.gethostname()}"
        process = self.spawn("worker", "-n", node, "-c", "2", "--without-gossip",
                             "--without-mingle", *args, name="worker")
        process.node = node
        if ready:
            process.wait_for_log(" ready.")
        return process

    def prepare(self) -> None:
        """Make this process see the throwaway plugins and the settings set so far."""
        if self.plugins.site.exists() and str(self.plugins.site) not in sys.path:
            sys.path.insert(0, str(self.plugins.site))
        importlib.invalidate_caches()
        discovery.rescan()
        for key, value in self.vars.items():
            os.environ[key] = value

    def host(self, **kwargs: Any) -> Host:
        """An in-process host (a producer) seeing the same plugins and settings."""
        self.prepare()
        return build(**kwargs)

    def close(self) -> None:
        for process in self.processes:
            process.stop()
        for key in self.vars:
            if key != "PLATFORM_HOME":
                os.environ.pop(key, None)
        if str(self.plugins.site) in sys.path:
            sys.path.remove(str(self.plugins.site))
        for module in self.plugins.written:
            sys.modules.pop(module, None)


def output_of(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"


__all__ = ["PlatformEnv", "PluginFactory", "Process", "output_of", "pytest", "wait_until"]


def free_port() -> int:
    """A TCP port nothing listens on now, for a server the test starts."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_serving(url: str, process: Process, what: str,
                       timeout: float = READY_TIMEOUT) -> None:
    """Until ``GET url`` answers 200; ``process`` exiting first fails with its output."""
    import httpx

    def answers() -> bool:
        if not process.alive():
            raise AssertionError(f"{what} exited:\n{process.output()[-3000:]}")
        try:
            return httpx.get(url, timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(answers, timeout, f"{what} to answer")


def sse_events(response: Any) -> Iterator[dict[str, Any]]:
    """The Server-Sent Events of a streamed httpx response, as ``{"event", "id", "data"}``
    with ``data`` decoded from JSON (comment lines, such as keep-alive pings, dropped)."""
    event: dict[str, Any] = {}
    for line in response.iter_lines():
        if not line:
            if "data" in event:
                event["data"] = json.loads(event["data"])
                yield event
            event = {}
        elif not line.startswith(":"):
            field, _, value = line.partition(":")
            event[field] = value.removeprefix(" ")


class Inbox:
    """An aiosmtpd handler that keeps every message it is given."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 Message accepted for delivery"
