"""Traces over the real wire: workers on Redis export OTLP/HTTP to a receiver in the test."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections import Counter

import pytest

from tests.otlp import Receiver, Span
from tests.support import PlatformEnv, output_of

pytestmark = [pytest.mark.redis, pytest.mark.slow]

SECRET = "hunter2-do-not-trace"

PLUGIN = '''
import os, signal, time
from opentelemetry import trace
from platform_sdk import BeatEntry, Every, Queue, RetryPolicy, Route, hookimpl, task

AGAIN = RetryPolicy(name="again", max_retries=3, backoff_base=1, backoff_cap=1,
                    jitter=False, retry_on=(ConnectionError,))

tracer = trace.get_tracer("traced")  # at import, before any fork

@task(name="traced.add", queue="traced")
def add(x: int, y: int, token: str = "") -> int:
    with tracer.start_as_current_span("traced.compute"):
        return x + y

@task(name="traced.flaky", queue="traced", retry=AGAIN)
def flaky(path: str, failures: int) -> int:
    with open(path, "a") as fh:
        fh.write("x")
    attempt = len(open(path).read())
    if attempt <= failures:
        raise ConnectionError(f"attempt {attempt} refused")
    return attempt

@task(name="traced.broken", queue="traced")
def broken() -> None:
    raise ValueError("no such ledger")

@task(name="traced.slow", queue="traced", time_limit=1, soft_time_limit=None)
def slow() -> None:
    time.sleep(30)

@task(name="traced.die", queue="traced")
def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)

@hookimpl
def register_tasks(register):
    for t in (add, flaky, broken, slow, die):
        register(t)

@hookimpl
def register_queues(register):
    register(Queue(name="traced"))

@hookimpl
def register_retry_policies(register):
    register(AGAIN)

@hookimpl
def register_beat_entries(register):
    register(BeatEntry(name="traced.tick", task="traced.add", args=[1, 2],
                       schedule=Every(seconds=1)))
'''


@pytest.fixture
def traced(platform_env: PlatformEnv, redis_url: str, otlp: Receiver) -> PlatformEnv:
    platform_env.plugins.add("traced", PLUGIN, distribution="platform-traced")
    platform_env.set(PLATFORM_BROKER_URL=redis_url, PLATFORM_TRACING="otlp",
                     OTEL_SERVICE_NAME="traced-test",
                     **otlp.env(OTEL_BSP_SCHEDULE_DELAY="200"))
    return platform_env


def send(env: PlatformEnv, task: str, *args: object, **options: str) -> str:
    argv = ["send", task, "--args", json.dumps(list(args)), "--wait", "--timeout", "60"]
    for key, value in options.items():
        argv += [f"--{key}", value]
    result = env.run(*argv, timeout=90)
    assert result.returncode == 0, output_of(result)
    return result.stdout


def produce(env: PlatformEnv, task: str, calls: list[list[object]]) -> list[object]:
    """Send from a separate producer process (tracing is per process) and wait for results."""
    code = (
        "import json, sys\n"
        "from platform_core.host import build\n"
        "app = build().app\n"
        "calls = json.loads(sys.argv[2])\n"
        "results = [app.send_task(sys.argv[1], args=a) for a in calls]\n"
        "print(json.dumps([r.get(timeout=120) for r in results]))\n"
    )
    result = subprocess.run([sys.executable, "-c", code, task, json.dumps(calls)],
                            env=env.environ, capture_output=True, text=True, timeout=180,
                            cwd=env.home.parent)
    assert result.returncode == 0, output_of(result)
    return json.loads(result.stdout.strip().splitlines()[-1])


def by_id(spans: list[Span]) -> dict[str, Span]:
    return {s.span_id: s for s in spans}


def test_producer_and_run_spans_form_one_trace_with_platform_attributes(
    traced: PlatformEnv, otlp: Receiver
) -> None:
    traced.worker()
    send(traced, "traced.add", 2, 3, SECRET)

    runs = otlp.wait_for(lambda spans: [s for s in spans if s.name == "run/traced.add"],
                         "the run span")
    run = runs[0]
    producer = by_id(otlp.snapshot())[run.parent_id]
    assert producer.name == "apply_async/traced.add"
    assert producer.kind == "PRODUCER" and run.kind == "CONSUMER"
    assert producer.trace_id == run.trace_id
    assert producer.resource["platform.process.role"] == "producer"
    assert run.resource["platform.process.role"] == "worker-child"
    assert run.resource["service.name"] == "traced-test"
    for span in (producer, run):
        assert span.attributes["platform.plugin"] == "traced"
        assert span.attributes["platform.queue"] == "traced"
        assert span.attributes["platform.task.name"] == "traced.add"
        assert span.attributes["platform.task.attempt"] == 1
        assert SECRET not in repr(span.attributes) + repr(span.events)
    assert run.status != 2
    assert run.attributes["celery.state"] == "SUCCESS"
    assert run.attributes["celery.action"] == "run"
    assert "@" in run.attributes["celery.hostname"]
    assert 0 <= run.attributes["platform.task.queue_wait_ms"] < 60_000
    assert "platform.task.queue_wait_ms" not in producer.attributes
    custom = otlp.wait_for(lambda spans: [s for s in spans if s.name == "traced.compute"],
                           "the plugin's own span")[0]
    assert custom.parent_id == run.span_id and custom.trace_id == run.trace_id


def test_retries_are_attempts_of_one_task_with_exception_events(
    traced: PlatformEnv, otlp: Receiver, tmp_path
) -> None:
    traced.worker()
    send(traced, "traced.flaky", str(tmp_path / "attempts"), 2)

    runs = otlp.wait_for(
        lambda spans: (found := [s for s in spans if s.name == "run/traced.flaky"])
        and len(found) == 3 and found, "three attempts")
    runs.sort(key=lambda s: s.attributes["platform.task.attempt"])
    assert [s.attributes["platform.task.attempt"] for s in runs] == [1, 2, 3]
    assert len({s.attributes["platform.task.id"] for s in runs}) == 1
    assert len({s.trace_id for s in runs}) == 1
    for failed in runs[:2]:
        names = [name for name, _ in failed.events]
        assert "exception" in names, failed.events
        event = dict(failed.events)["exception"]
        assert event["exception.type"].endswith("ConnectionError")
    assert runs[2].status != 2 and "exception" not in dict(runs[2].events)
    # each retry is published beside the first attempt, linked to the attempt it follows
    spans = by_id(otlp.snapshot())
    first_publish = spans[runs[0].parent_id]
    assert first_publish.name == "apply_async/traced.flaky" and not first_publish.parent_id
    for earlier, later in itertools.pairwise(runs):
        publish = spans[later.parent_id]
        assert publish.name == "apply_async/traced.flaky"
        assert publish.parent_id == first_publish.span_id
        assert publish.links == [(earlier.trace_id, earlier.span_id)]


def depth(span: Span, spans: dict[str, Span]) -> int:
    found = 0
    while span.parent_id:
        span, found = spans[span.parent_id], found + 1
    return found


def test_a_task_whose_retries_run_out_is_findable_and_does_not_staircase(
    traced: PlatformEnv, otlp: Receiver, tmp_path
) -> None:
    traced.worker()
    result = traced.run("send", "traced.flaky", "--args",
                        json.dumps([str(tmp_path / "attempts"), 99]),
                        "--wait", "--timeout", "90", timeout=120)
    assert result.returncode != 0 and "ConnectionError" in result.stdout + result.stderr

    runs = otlp.wait_for(
        lambda spans: (found := [s for s in spans if s.name == "run/traced.flaky"])
        and len(found) == 4 and found, "four attempts")
    runs.sort(key=lambda s: s.attributes["platform.task.attempt"])
    spans = by_id(otlp.snapshot())
    # every attempt sits at the same depth, however many there were
    assert [depth(run, spans) for run in runs] == [1, 2, 2, 2]
    assert len({s.trace_id for s in runs}) == 1
    for run in runs:
        assert run.status == 2
        assert run.attributes["error.type"] == "builtins.ConnectionError"
    final = runs[-1]
    assert final.attributes["celery.state"] == "FAILURE"
    assert final.attributes["platform.task.dead_lettered"] is True
    assert all("platform.task.dead_lettered" not in r.attributes for r in runs[:-1])
    reason = dict(final.events)["platform.task.dead_lettered"]["platform.dead_letter.reason"]
    assert reason == "retries exhausted after 3 retries: ConnectionError: attempt 4 refused"
    assert dict(final.events)["exception"]["exception.type"].endswith("ConnectionError")


def test_a_failed_run_ends_with_an_error_status_and_its_exception(
    traced: PlatformEnv, otlp: Receiver
) -> None:
    traced.worker()
    result = traced.run("send", "traced.broken", "--wait",
                        "--timeout", "60", timeout=90)
    assert result.returncode != 0 and "ValueError" in result.stdout + result.stderr

    run = otlp.wait_for(lambda spans: [s for s in spans if s.name == "run/traced.broken"],
                        "the failed run's span")[0]
    assert run.status == 2
    assert run.attributes["celery.state"] == "FAILURE"
    event = dict(run.events)["exception"]
    assert event["exception.type"].endswith("ValueError")
    assert event["exception.message"] == "no such ledger"


@pytest.mark.parametrize("recycle", [["--max-tasks-per-child", "1"],
                                     ["--max-memory-per-child", "1"]],
                         ids=["max-tasks-per-child", "max-memory-per-child"])
def test_recycled_children_lose_no_span(
    traced: PlatformEnv, otlp: Receiver, recycle: list[str]
) -> None:
    # A long batch delay: only the flush before a child exits can deliver the spans.
    traced.set(OTEL_BSP_SCHEDULE_DELAY="600000")
    count = 20 if recycle[0] == "--max-tasks-per-child" else 6
    traced.worker(*recycle)
    assert produce(traced, "traced.add", [[i, i] for i in range(count)]) == [
        2 * i for i in range(count)]

    runs = otlp.wait_for(
        lambda spans: len([s for s in spans if s.name == "run/traced.add"]) >= count
        and [s for s in spans if s.name == "run/traced.add"], f"{count} run spans")
    assert len(runs) == count
    assert len({s.resource["process.pid"] for s in runs}) > 1  # children really were replaced


def test_hard_time_limit_and_lost_child_end_with_error_spans_from_the_main_process(
    traced: PlatformEnv, otlp: Receiver
) -> None:
    worker = traced.worker()
    for task in ("traced.slow", "traced.die"):
        result = traced.run("send", task, "--wait", "--timeout", "60", timeout=90)
        assert result.returncode != 0, output_of(result)

    def errors(spans: list[Span]) -> dict[str, Span]:
        return {s.name: s for s in spans if s.status == 2 and s.name.startswith("run/")}

    found = otlp.wait_for(lambda spans: len(errors(spans)) == 2 and errors(spans),
                          "error spans for the timed-out and the killed run")
    slow, die = found["run/traced.slow"], found["run/traced.die"]
    assert dict(slow.events)["exception"]["exception.type"].endswith("TimeLimitExceeded")
    assert dict(die.events)["exception"]["exception.type"].endswith("WorkerLostError")
    for span in (slow, die):
        assert span.resource["platform.process.role"] == "worker"
        assert span.attributes["platform.plugin"] == "traced"
        producer = by_id(otlp.snapshot())[span.parent_id]
        assert producer.name == f"apply_async/{span.attributes['platform.task.name']}"
    worker.stop()


def test_delayed_run_links_to_its_producer_instead_of_joining_its_trace(
    traced: PlatformEnv, otlp: Receiver
) -> None:
    traced.set(PLATFORM_TRACING_LINK_AFTER="0.5")
    traced.worker()
    send(traced, "traced.add", 1, 1, countdown="2")

    run = otlp.wait_for(lambda spans: next(
        (s for s in spans if s.name == "run/traced.add"), None), "the delayed run")
    producer = otlp.named("apply_async/traced.add")[0]
    assert run.trace_id != producer.trace_id and run.parent_id == ""
    assert run.links == [(producer.trace_id, producer.span_id)]


def test_each_beat_dispatch_is_a_root_span_named_after_its_entry(
    traced: PlatformEnv, otlp: Receiver
) -> None:
    traced.worker()
    traced.spawn("beat", name="beat")

    def ticks(spans: list[Span]) -> list[Span]:
        return [s for s in spans if s.name == "beat/traced.tick"]

    roots = otlp.wait_for(lambda spans: len(ticks(spans)) >= 2 and ticks(spans),
                          "two beat dispatches")
    spans = otlp.snapshot()
    for root in roots:
        assert root.parent_id == "" and root.attributes["platform.beat.entry"] == "traced.tick"
        assert root.attributes["platform.plugin"] == "traced"
        assert root.attributes["platform.queue"] == "traced"
    runs = [s for s in spans if s.name == "run/traced.add"]
    publishes = by_id([s for s in spans if s.name == "apply_async/traced.add"])
    traced_runs = [r for r in runs if r.parent_id in publishes
                   and publishes[r.parent_id].parent_id in {root.span_id for root in roots}]
    assert traced_runs, "no run descends from a beat root span"


def test_warm_shutdown_flushes_spans(traced: PlatformEnv, otlp: Receiver) -> None:
    traced.set(OTEL_BSP_SCHEDULE_DELAY="600000")
    worker = traced.worker()
    assert produce(traced, "traced.add", [[i, 0] for i in range(5)]) == list(range(5))
    assert worker.stop() == 0
    runs = otlp.wait_for(lambda spans: len([s for s in spans if s.name == "run/traced.add"])
                         == 5, "five run spans after shutdown", timeout=10)
    assert runs
    assert Counter(s.name for s in otlp.snapshot())["run/traced.add"] == 5


@pytest.mark.parametrize("pool", ["solo", "threads"])
def test_solo_and_threads_pools_trace_from_the_worker_process(
    traced: PlatformEnv, otlp: Receiver, pool: str
) -> None:
    worker = traced.worker("-P", pool)
    send(traced, "traced.add", 4, 5)
    run = otlp.wait_for(lambda spans: next(
        (s for s in spans if s.name == "run/traced.add"), None), "the run span")
    assert run.resource["platform.process.role"] == "worker"
    assert run.resource["process.pid"] == worker.popen.pid
    assert by_id(otlp.snapshot())[run.parent_id].name == "apply_async/traced.add"


def test_a_bulk_send_is_one_producer_span_and_each_message_a_traced_run_under_it(
    traced: PlatformEnv, otlp: Receiver
) -> None:
    traced.worker()
    code = (
        "from platform_core.host import build\n"
        "app = build().app\n"
        f"sent = app.send_many('traced.add', [(i, 1, {SECRET!r}) for i in range(5)], {{}})\n"
        "print([r.get(timeout=120) for r in sent])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], env=traced.environ,
                            capture_output=True, text=True, timeout=180, cwd=traced.home.parent)
    assert result.returncode == 0, output_of(result)
    assert result.stdout.split("\n")[-2] == "[1, 2, 3, 4, 5]"
    runs = otlp.wait_for(
        lambda spans: len(r := [s for s in spans if s.name == "run/traced.add"]) >= 5 and r,
        "five run spans")
    (batch,) = otlp.named("apply_many/traced.add")
    assert batch.kind == "PRODUCER"
    assert batch.attributes["messaging.batch.message_count"] == 5
    assert batch.attributes["platform.plugin"] == "traced"
    assert {run.parent_id for run in runs} == {batch.span_id}
    assert {run.trace_id for run in runs} == {batch.trace_id}
    assert otlp.named("apply_async/traced.add") == []  # one span for the batch, not one each
    assert SECRET not in repr(batch.attributes) + repr([r.attributes for r in runs])
