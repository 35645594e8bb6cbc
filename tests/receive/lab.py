"""A real worker on a real broker, fed mutated envelopes straight onto its queue.

One :class:`Lab` per broker (``redis``, ``amqp``, ``embedded``): a throwaway plugin
with one task that records every run, a ``platform worker --plugins NAME`` process,
and a producer host. :meth:`Lab.run` pushes a batch of :class:`~.mutants.Mutant`,
sends a canary task after it, and accounts for every mutant: it ran (the task
recorded it, or its result says it finished), it was discarded as expired (Celery's
own rule), or it is in the dead-letter store. Anything else is dropped. A worker
that exits is a crash; the lab notes it and starts another.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from platform_core import stores
from tests.receive.mutants import MARK_HEADER, Mutant, build, plain
from tests.support import PlatformEnv, PluginFactory, Process, wait_until

BROKERS = ("redis", "amqp", "embedded")
# A result without a recorded run counts only where Celery ends a run by the message's
# own options: a revoke (expired), or the time limits it asked for. Any other FAILURE
# without a run means Celery dropped the message, which the receive path must prevent.
OWN_OUTCOMES = ("TimeLimitExceeded", "SoftTimeLimitExceeded", "WorkerLostError")
SETTLE = 30.0  # seconds a batch may take after its canary is back

PLUGIN = """
import os

from platform_sdk import Queue, hookimpl, task


@task(name="{name}.record", queue="{queue}", bind=True)
def record(self, *args, **kwargs):
    seen = vars(self.request)
    line = f"{{self.request.id}} {{seen.get('{mark}')}} {{self.request.correlation_id}}\\n"
    with open(os.environ["FUZZ_RUNS"], "a") as fh:
        fh.write(line)


@hookimpl
def register_tasks(register):
    register(record)


@hookimpl
def register_queues(register):
    register(Queue(name="{queue}"))
"""


@dataclass
class Outcome:
    mark: str
    mutant: Mutant
    result: str = "dropped"  # ran | dead-lettered | expired | unsendable | dropped
    reason: str = ""
    task: Any = None  # the task header as sent


@dataclass
class Report:
    broker: str
    outcomes: list[Outcome] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)  # the log tail of each dead worker
    canary_failures: int = 0

    def count(self) -> Counter[str]:
        return Counter(o.result for o in self.outcomes)

    @property
    def dropped(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.result == "dropped"]

    def ok(self) -> bool:
        return not self.crashes and not self.dropped and not self.canary_failures

    def explain(self) -> str:
        lines = [f"{self.broker}: {dict(self.count())}, crashes {len(self.crashes)}, "
                 f"canary failures {self.canary_failures}"]
        lines += [f"  DROPPED {o.mark}: {o.mutant.describe()}" for o in self.dropped]
        lines += [f"  CRASH:\n{tail}" for tail in self.crashes]
        return "\n".join(lines)

    def merge(self, other: Report) -> None:
        self.outcomes += other.outcomes
        self.crashes += other.crashes
        self.canary_failures += other.canary_failures


class Lab:
    def __init__(self, broker: str, root: Path, url: str | None) -> None:
        assert broker in BROKERS, broker
        self.broker = broker
        self.root = root
        suffix = uuid.uuid4().hex[:6]
        self.name = f"fz{suffix}"
        self.queue = f"fz{suffix}"
        self.task = f"{self.name}.record"
        self.env = PlatformEnv(home=root / "home", logs=root / "logs",
                               plugins=PluginFactory(root / "site"))
        self.runs = root / "runs.log"
        self.env.vars["FUZZ_RUNS"] = str(self.runs)
        # a body over 16 × this is refused: small, so a case over the limit stays small too
        self.env.set(PLATFORM_MAX_PAYLOAD_BYTES="65536")
        if url is not None:
            self.env.set(PLATFORM_BROKER_URL=url)
        self.url = url
        self.env.plugins.add(self.name, PLUGIN.format(name=self.name, queue=self.queue,
                                                      mark=MARK_HEADER))
        self.host = self.env.host()
        self.app = self.host.app
        self.worker: Process | None = None
        self.captured = self._capture()
        self._serial = 0
        self._unmarked: set[str] = set()  # dead letters that carry no mark, already counted

    # -- the worker ---------------------------------------------------------------

    def start(self) -> None:
        self.worker = self.env.worker("--plugins", self.name, "-l", "info")

    def alive(self) -> bool:
        return self.worker is not None and self.worker.alive()

    def close(self) -> None:
        self.env.close()
        if self.broker == "amqp":
            with self.app.connection_for_write() as conn, contextlib.suppress(Exception):
                conn.default_channel.queue_delete(self.queue)

    # -- a real envelope, as this broker holds it ---------------------------------

    def _capture(self) -> dict[str, Any]:
        """Send a real task with no worker running and take its message off the queue."""
        self.app.tasks[self.task].apply_async(args=[1, "two"], kwargs={"k": [3]})
        if self.broker == "redis":
            import redis

            client = redis.Redis.from_url(self.url or "")
            raw = wait_until(lambda: client.rpop(self.queue), 10, "the captured message")
            client.close()
            return dict(json.loads(raw))
        if self.broker == "embedded":
            folder = self.queue_folder()
            files = wait_until(lambda: sorted(folder.glob(f"*.{self.queue}.msg")), 10,
                               "the captured message file")
            data = files[0].read_bytes()
            files[0].unlink()
            return dict(json.loads(data))
        with self.app.connection_for_write() as conn:
            channel = conn.default_channel
            message = wait_until(lambda: channel.basic_get(self.queue, no_ack=True), 10,
                                 "the captured message")
            properties = {k: v for k, v in message.properties.items()
                          if k in ("correlation_id", "reply_to", "priority", "delivery_mode")}
            properties.update(body_encoding="base64", delivery_tag=str(message.delivery_tag),
                              delivery_info={"exchange": "", "routing_key": self.queue})
            body = message.body if isinstance(message.body, bytes) else message.body.encode()
            return {"body": base64.b64encode(body).decode(),
                    "content-type": message.content_type,
                    "content-encoding": message.content_encoding,
                    "headers": dict(message.headers), "properties": properties}

    def queue_folder(self) -> Path:
        return self.env.home / "broker" / "queue"

    # -- pushing mutants ----------------------------------------------------------

    def mark(self) -> str:
        self._serial += 1
        return f"{self.name}n{self._serial:06d}q"

    def push(self, items: list[tuple[str, dict[str, Any] | None, bytes]]) -> set[str]:
        """Put the items on the worker's queue as they are; the marks that could not be sent."""
        if self.broker == "redis":
            import redis

            client = redis.Redis.from_url(self.url or "")
            for _, _, data in items:
                client.lpush(self.queue, data)
            client.close()
            return set()
        if self.broker == "embedded":
            folder = self.queue_folder()
            for _, _, data in items:
                name = f"{int(time.time() * 1000)}_{uuid.uuid4()}.{self.queue}.msg"
                temporary = folder / f".{name}.tmp"
                temporary.write_bytes(data)
                os.replace(temporary, folder / name)
            return set()
        return self._push_amqp(items)

    def _push_amqp(self, items: list[tuple[str, dict[str, Any] | None, bytes]]) -> set[str]:
        import amqp

        unsendable = set()
        with self.app.connection_for_write() as conn:
            channel = conn.default_channel
            for mark, envelope, data in items:
                frame = to_amqp(envelope, data)
                if frame is None:
                    unsendable.add(mark)
                    continue
                body, props = frame
                try:
                    channel.basic_publish(amqp.Message(body, **props), exchange="",
                                          routing_key=self.queue)
                except Exception:  # a client refuses it: nobody can send this shape
                    unsendable.add(mark)
                    conn.close()
                    conn.connect()
                    channel = conn.default_channel
        return unsendable

    # -- one batch ------------------------------------------------------------------

    def run(self, batch: list[Mutant]) -> Report:
        report = Report(self.broker)
        if not self.alive():
            self.start()
        items = []
        for mutant in batch:
            mark = self.mark()
            envelope, data = build(self.captured, mutant, mark)
            items.append((mark, envelope, data))
            headers = envelope.get("headers") if envelope else None
            task = headers.get("task") if isinstance(headers, dict) else None
            report.outcomes.append(Outcome(mark, mutant, task=task))
        unsendable = self.push(items)
        for outcome in report.outcomes:
            if outcome.mark in unsendable:
                outcome.result = "unsendable"
        canary_ok = self._canary()
        self._account(report, deadline=time.monotonic() + SETTLE)
        if not canary_ok:
            report.canary_failures += 1
        assert self.worker is not None
        if not self.worker.alive():
            report.crashes.append(self.worker.output()[-4000:])
            self.worker = None
        return report

    def _canary(self) -> bool:
        if not self.alive():
            return False
        result = self.app.tasks[self.task].apply_async(args=["canary"])
        try:
            result.get(timeout=60, propagate=False)
        except Exception:
            return False
        return result.state == "SUCCESS"

    def _account(self, report: Report, deadline: float) -> None:
        pending = {o.mark: o for o in report.outcomes if o.result == "dropped"}
        pattern = re.compile(rf"{self.name}n\d{{6}}q")
        while pending:
            unmarked = []
            for entry in stores.for_app(self.app).dead_letters.list():
                stored = entry.message
                haystack = stored.body_bytes.decode("utf-8", "replace") + json.dumps(
                    [stored.headers, stored.properties], default=str)
                marks = set(pattern.findall(haystack))
                if not marks:
                    unmarked.append(entry)
                for mark in marks & pending.keys():
                    pending.pop(mark).result, report_reason = "dead-lettered", entry.reason
                    _set_reason(report, mark, report_reason)
            runs = self.runs.read_text() if self.runs.exists() else ""
            for mark in set(pattern.findall(runs)) & pending.keys():
                pending.pop(mark).result = "ran"
            log = self.worker.output() if self.worker is not None else ""
            for line in log.splitlines():
                if "Discarding revoked task" in line or "expired" in line:
                    for mark in set(pattern.findall(line)) & pending.keys():
                        pending.pop(mark).result = "expired"
            for mark in list(pending):
                with contextlib.suppress(Exception):
                    # another task (a built-in) records no run: its failure is its run
                    own = pending[mark].task == self.task
                    meta = self.app.backend.get_task_meta(mark)
                    if finished_as_asked(meta) or (not own and meta.get("status") == "FAILURE"):
                        pending.pop(mark).result = "ran"
            if pending:
                self._match_unmarked(pending, unmarked)
            if not pending or time.monotonic() > deadline or not self.alive():
                return
            time.sleep(0.2)

    def _match_unmarked(self, pending: dict[str, Outcome], unmarked: list[Any]) -> None:
        """A mutant whose every mark was unreadable (AMQP properties py-amqp could not
        decode keep only the body) is matched to a dead letter that carries no mark."""
        for entry in unmarked:
            if not pending or entry.id in self._unmarked:
                continue
            self._unmarked.add(entry.id)
            outcome = pending.pop(sorted(pending)[0])
            outcome.result, outcome.reason = "dead-lettered", f"(unmarked) {entry.reason}"


def finished_as_asked(meta: dict[str, Any]) -> bool:
    status = meta.get("status")
    if status in ("SUCCESS", "REVOKED"):
        return True
    result = meta.get("result")
    kind = result.get("exc_type") if isinstance(result, dict) else type(result).__name__
    return status == "FAILURE" and kind in OWN_OUTCOMES


def _set_reason(report: Report, mark: str, reason: str) -> None:
    for outcome in report.outcomes:
        if outcome.mark == mark:
            outcome.reason = reason


def amqp_values(headers: dict[str, Any]) -> Any:
    """kombu's typed-JSON markers as the Python values AMQP tables carry natively (bytes,
    datetime, Decimal); a marker kombu cannot read stays a plain mapping."""
    from kombu.utils.json import loads

    try:
        return loads(json.dumps(headers))
    except Exception:
        return headers


def to_amqp(envelope: dict[str, Any] | None, data: bytes) -> tuple[bytes, dict[str, Any]] | None:
    """The same message as an AMQP frame: body bytes and properties; None if AMQP cannot
    carry it (a queue item that is not an envelope, headers that are not a table)."""
    if envelope is None:
        return data, {}  # raw bytes: a message with no properties at all
    headers = envelope.get("headers")
    properties = envelope.get("properties")
    if not isinstance(headers, (dict, type(None))) or not isinstance(properties, dict):
        return None
    body = envelope.get("body")
    if isinstance(body, str) and properties.get("body_encoding") == "base64":
        try:
            raw = base64.b64decode(body)
        except ValueError:
            raw = body.encode()
    elif isinstance(body, str):
        raw = body.encode("utf-8", "surrogatepass")
    else:
        return None
    props: dict[str, Any] = {"application_headers": amqp_values(plain(headers or {})),
                             "delivery_mode": 2}
    for source, target in (("content-type", "content_type"),
                           ("content-encoding", "content_encoding")):
        if envelope.get(source) is not None:
            props[target] = envelope[source]
    for key in ("correlation_id", "reply_to", "priority"):
        if properties.get(key) is not None:
            props[key] = properties[key]
    return raw, props
