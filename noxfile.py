"""Development sessions: nox -s tests | lint | typecheck | demo | bench | fuzz."""

from __future__ import annotations

import os

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
    """Worker and beat on the embedded broker; the bundled plugins' sample tasks and results."""
    install(session, "test")
    session.run("python", "scripts/demo.py", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Enqueue (bulk and loops, vs plain Celery, RQ, Dramatiq and the raw pipeline), worker
    throughput with and without tracing on Redis and on RabbitMQ (``BENCH_AMQP_URL``), the
    spans lost to recycled children, and the
    embedded broker vs Redis; results in bench-results/. ``-- --plot`` also redraws
    docs/performance.png from them."""
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
