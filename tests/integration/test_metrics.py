"""Worker metrics over the real wire: OTLP/HTTP to the test's receiver, and Prometheus."""

from __future__ import annotations

import json
import urllib.request

import pytest

from tests.otlp import Receiver
from tests.support import PlatformEnv, free_port, output_of, wait_until

pytestmark = [pytest.mark.redis, pytest.mark.slow]

PLUGIN = '''
from platform_sdk import Queue, hookimpl, task

@task(name="measured.ok", queue="measured")
def ok(x: int) -> int:
    return x

@task(name="measured.boom", queue="measured")
def boom() -> None:
    raise ValueError("boom")

@hookimpl
def register_tasks(register):
    register(ok)
    register(boom)

@hookimpl
def register_queues(register):
    register(Queue(name="measured"))
'''


@pytest.fixture
def measured(platform_env: PlatformEnv, redis_url: str) -> PlatformEnv:
    platform_env.plugins.add("measured", PLUGIN, distribution="platform-measured")
    platform_env.set(PLATFORM_BROKER_URL=redis_url)
    return platform_env


def run_tasks(env: PlatformEnv) -> None:
    for task, args, code in (("measured.ok", [1], 0), ("measured.ok", [2], 0),
                             ("measured.boom", [], 1)):
        result = env.run("send", task, "--args", json.dumps(args), "--wait", "--timeout", "60",
                         timeout=90)
        assert (result.returncode != 0) == bool(code), output_of(result)


def test_worker_exports_task_metrics_over_otlp(measured: PlatformEnv, otlp: Receiver) -> None:
    measured.set(PLATFORM_METRICS="otlp", OTEL_METRIC_EXPORT_INTERVAL="300", **otlp.env())
    measured.worker()
    run_tasks(measured)

    def latest(name: str, **labels: str) -> float | None:
        with otlp.lock:
            values = [p.value for p in otlp.points if p.metric == name
                      and all(p.attributes.get(k) == v for k, v in labels.items())]
        return values[-1] if values else None

    wait_until(lambda: latest("platform.task.outcomes", state="FAILURE") == 1, 60,
               "a FAILURE outcome")
    assert latest("platform.task.outcomes", state="SUCCESS", task="measured.ok",
                  plugin="measured", queue="measured") == 2
    assert latest("platform.task.duration", state="SUCCESS", task="measured.ok") == 2
    assert latest("platform.task.queue_wait", task="measured.ok") == 2
    assert latest("platform.queue.depth", queue="measured") == 0
    with otlp.lock:
        assert not [s for s in otlp.spans], "tracing is off: no spans"


def test_worker_serves_prometheus_metrics(measured: PlatformEnv) -> None:
    port = free_port()
    measured.set(PLATFORM_METRICS="prometheus", PLATFORM_METRICS_ADDRESS=f"127.0.0.1:{port}")
    measured.worker()
    run_tasks(measured)

    def scrape() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            return str(reply.read().decode())

    text = wait_until(lambda: 'state="FAILURE"' in (body := scrape()) and body, 30,
                      "the FAILURE outcome on /metrics")
    lines = [line for line in text.splitlines() if line.startswith("platform_task_outcomes")]
    success = [line for line in lines if 'state="SUCCESS"' in line]
    assert success and success[0].endswith(" 2.0"), lines
    assert "platform_task_duration_seconds_bucket" in text
    assert 'platform_queue_depth{' in text
