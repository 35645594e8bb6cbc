"""Development sessions: nox -s tests | lint | typecheck | demo | bench | fuzz."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.default_venv_backend = "venv"
nox.options.error_on_missing_interpreters = True

PYPROJECT = nox.project.load_toml("pyproject.toml")
PACKAGES = ["-e", "sdk", "-e", "core[web]", "-e", "plugins/admin",
            "-e", "plugins/quant[postgresql]"]


def install(session: nox.Session, *groups: str) -> None:
    session.install("--upgrade", "pip")
    session.install(*PACKAGES)
    for group in groups:
        session.install(*nox.project.dependency_groups(PYPROJECT, group))


@nox.session
def tests(session: nox.Session) -> None:
    """The whole suite: unit tests and real workers on the embedded broker, Redis, PostgreSQL."""
    install(session, "test")
    args = session.posargs or ["-n", "2", "--durations=15"]
    session.run("pytest", *args)


@nox.session
def lint(session: nox.Session) -> None:
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    install(session, "typecheck")
    session.run("mypy")


@nox.session
def demo(session: nox.Session) -> None:
    """Worker and beat on the embedded broker; the bundled plugins' sample tasks and results;
    then ``platform api`` next to a worker and beat: one quant.process_data sent over HTTP,
    its progress followed over Server-Sent Events."""
    install(session, "test")
    session.run("python", "scripts/demo.py", *session.posargs)
    api_demo(session)


def api_demo(session: nox.Session) -> None:
    """The task API on loopback with a generated key, a client of it with urllib."""
    home = Path(tempfile.mkdtemp(prefix="platform-api-demo-"))
    key, port = secrets.token_urlsafe(32), _free_port()
    env = {**os.environ, "PLATFORM_HOME": str(home), "PLATFORM_API_KEYS": key,
           "PLATFORM_QUANT__PROCESS_STEP_DELAY": "0.2", "PYTHONUNBUFFERED": "1"}
    platform = str(Path(session.bin) / "platform")
    session.log(f"task API demo: embedded broker under {home}")
    logs = {name: home / f"{name}.log" for name in ("worker", "beat", "api")}
    commands = {"worker": ["worker", "-c", "2", "-n", "api-demo@%h"], "beat": ["beat"],
                "api": ["api", "--host", "127.0.0.1", "--port", str(port)]}
    processes = {}
    for name, args in commands.items():
        with logs[name].open("wb") as fh:
            processes[name] = subprocess.Popen([platform, *args], env=env, stdout=fh,
                                               stderr=subprocess.STDOUT,
                                               start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    headers = {"X-API-Key": key, "Content-Type": "application/json"}
    try:
        _wait_for(session, processes["worker"], logs["worker"], " ready.")
        _wait_for(session, processes["beat"], logs["beat"], "beat: Starting")
        _wait_for(session, processes["api"], logs["api"], "Uvicorn running on")
        session.log(f"worker, beat and platform api on {base} are running")
        sent = _request(f"{base}/tasks/quant.process_data", headers,
                        {"kwargs": {"data_id": 42}})
        print(f"POST /tasks/quant.process_data -> {sent['id']}, events at "
              f"{sent['status']}/events", flush=True)
        last: dict[str, Any] = {}
        events = urllib.request.Request(f"{base}{sent['status']}/events",
                                        headers={**headers, "Accept": "text/event-stream"})
        with urllib.request.urlopen(events, timeout=60) as stream:
            for raw in stream:
                line = raw.decode().rstrip("\r\n")
                if not line.startswith("data:"):
                    continue
                last = json.loads(line.removeprefix("data:"))
                progress = last["progress"] or {}
                shown = (f" {progress['progress']}/{progress['total']}"
                         if "progress" in progress and "total" in progress else "")
                print(f"  event: {last['state']}{shown}", flush=True)
        if last.get("state") != "SUCCESS":
            session.error(f"quant.process_data ended {last.get('state')}: {last.get('error')}")
        print(f"result: {json.dumps(last['result'])}", flush=True)
    finally:
        for process in processes.values():
            process.send_signal(signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        session.log(f"logs: {', '.join(str(log) for log in logs.values())}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(session: nox.Session, process: subprocess.Popen[bytes], log: Path, text: str,
              timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            session.error(f"no {text!r} in {log}:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.2)


def _request(url: str, headers: dict[str, str], body: dict[str, Any]) -> Any:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers,
                                     method="POST")
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


@nox.session
def bench(session: nox.Session) -> None:
    """Enqueue (bulk and loops, vs plain Celery, RQ, Dramatiq and the raw pipeline), worker
    throughput with and without tracing on Redis and on RabbitMQ (``BENCH_AMQP_URL``), the
    spans lost to recycled children, the embedded broker vs Redis, and the task API vs
    delay(); results in bench-results/. ``-- --plot`` also redraws docs/performance.png."""
    install(session, "test", "bench")
    plot = "--plot" in session.posargs
    out = "bench-results"
    session.run("python", "-c", f"import pathlib; pathlib.Path({out!r}).mkdir(exist_ok=True)")
    session.run("python", "-m", "bench.enqueue", "--json", f"{out}/enqueue.json")
    session.run("python", "-m", "bench.throughput", "--json", f"{out}/throughput.json")
    amqp = os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
    session.run("python", "-m", "bench.throughput", "--broker", amqp,
                "--json", f"{out}/throughput-amqp.json")
    session.run("python", "-m", "bench.tracing_loss")
    session.run("python", "-m", "bench.embedded", "--json", f"{out}/embedded.json")
    session.run("python", "-m", "bench.api", "--json", f"{out}/api.json")
    if plot:
        session.run("python", "-m", "bench.plot", "--results", out)


@nox.session
def fuzz(session: nox.Session) -> None:
    """The receive path on real workers: thousands of mutated messages per broker
    (``python -m tests.receive``, which takes the posargs, e.g. ``-- --cases 5000 --seed 7``),
    then the load run: 20,000 valid tasks with 1% poison on two workers, on Redis
    (``python -m bench.poison``). Uses the test suite's Redis and RabbitMQ
    (``PLATFORM_TEST_REDIS_URL``, ``PLATFORM_TEST_AMQP_URL``)."""
    install(session, "test")
    session.run("python", "-m", "tests.receive", *session.posargs)
    session.run("python", "-m", "bench.poison")
