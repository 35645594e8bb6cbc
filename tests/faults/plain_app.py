"""Plain Celery with its defaults, running the same task bodies as the platform plugin.

Only what a scenario needs is set: the broker and result store, the visibility timeout
(and kombu's sweep for messages past it) the scenarios shorten for both sides, and the
beat entry.
"""

from __future__ import annotations

import os

from celery import Celery

from tests.faults import bodies

url = os.environ["FAULTS_BROKER_URL"]
app = Celery("plain", broker=url, backend=os.environ.get("FAULTS_BACKEND_URL", url))
# Time compressed as on the platform side: a short visibility timeout, and kombu's
# sweep for unacknowledged messages every second instead of every 100 s.
app.conf.broker_transport_options = {
    "visibility_timeout": int(os.environ.get("FAULTS_VISIBILITY_TIMEOUT", "3600")),
    "unacked_restore_interval": 1,
    "unacked_restore_throttle": 1,
}
app.conf.task_default_queue = os.environ.get("FAULTS_QUEUE", "celery")
app.conf.beat_schedule = {"faults.tick": {"task": "faults.tick", "schedule": 1.0}}
if os.environ.get("FAULTS_MASTER_NAME"):  # Redis Sentinel (tests/faults/sentinel_failover.py)
    app.conf.broker_transport_options["master_name"] = os.environ["FAULTS_MASTER_NAME"]
    app.conf.result_backend_transport_options = {"master_name": os.environ["FAULTS_MASTER_NAME"]}


@app.task(name="faults.record")
def record(key: str) -> str:
    return bodies.record(key)


@app.task(name="faults.slow")
def slow(key: str, seconds: float) -> str:
    return bodies.slow(key, seconds)


@app.task(name="faults.suicide")
def suicide(key: str) -> None:
    bodies.suicide(key)


@app.task(name="faults.tick")
def tick() -> None:
    bodies.tick()


@app.task(name="faults.limited", rate_limit="60/m")
def limited(key: str) -> str:
    return bodies.stamp(key)


@app.task(name="faults.relay")
def relay(key: str) -> str:
    record.delay(key)
    return key
