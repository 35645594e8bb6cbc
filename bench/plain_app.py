"""Plain Celery, configured like the platform (JSON, one queue), for side-by-side runs."""

from __future__ import annotations

import os

from celery import Celery
from kombu import Exchange, Queue

from bench import noop as body

app = Celery("plain", broker=os.environ.get("BENCH_BROKER_URL", os.environ["BENCH_REDIS_URL"]),
             backend=os.environ["BENCH_REDIS_URL"])
app.conf.update(
    task_serializer="json", accept_content=["json"], result_serializer="json",
    task_queues=[Queue("bench", Exchange("bench", type="direct"), routing_key="bench")],
    task_default_queue="bench", worker_prefetch_multiplier=4,
)


@app.task(name="bench.noop")
def noop() -> None:
    body.noop()
