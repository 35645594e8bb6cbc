"""``platform doctor --task-id``: why one task is in the state it is in."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from platform_core.broker.view import Located
from platform_core.host import Host
from platform_core.ops.diagnosis import (
    Diagnosis,
    Finding,
    Live,
    Severity,
    broker_view,
    check_broker,
    observe,
    queue_owner,
    task_label,
    worker_fix,
)
from platform_core.redaction import redact
from platform_core.stores.base import Delayed
from platform_core.stores.records import DeadLetter

_DONE_STATES: dict[str, Severity] = {"SUCCESS": "info", "FAILURE": "warning", "REVOKED": "warning"}


def when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def explain_task(host: Host, task_id: str, timeout: float) -> Diagnosis:
    """Why ``task_id`` is in its state: stored state, a worker holding it, or its queue."""
    report = Diagnosis(broker=redact(host.app.conf.broker_url))
    report.findings += check_broker(host, timeout)
    if not report.healthy:
        return report
    subject = f"task id {task_id}"
    try:
        meta = host.app.backend.get_task_meta(task_id)
    except Exception as exc:  # noqa: BLE001 - any backend failure is the finding
        report.findings.append(Finding(
            "task", "error",
            f"cannot read the task's state from the result backend ({type(exc).__name__}: "
            f"{exc})", f"result backend {redact(str(host.app.conf.result_backend))}",
            "start the result backend or fix PLATFORM_RESULT_BACKEND"))
        return report
    state = str(meta.get("status", "PENDING"))
    name = meta.get("name")
    who = task_label(host, name) if name else subject
    if state != "PENDING":
        severity = _DONE_STATES.get(state, "info")
        detail = f": {meta.get('result')!r}" if state in ("FAILURE", "REVOKED") else ""
        fix = (f"see `platform result {task_id} --traceback`" if state == "FAILURE" else "")
        report.findings.append(Finding("task", severity, f"{subject} is {state}{detail}",
                                       who, fix))
        return report

    with broker_view(host) as view:
        live = observe(host, view, timeout, task_id)
        report.live = live
        for worker, tasks in sorted(live.held.items()):
            if task_id in (tasks or {}):
                where, info = tasks[task_id]
                label = task_label(host, info.get("name") or info.get("type") or "?")
                text = {"active": "is running on",
                        "reserved": "is reserved (waiting for a free pool process) by",
                        "scheduled": "waits for its ETA on"}.get(where, f"is {where} on")
                report.findings.append(Finding(
                    "task", "info", f"{subject} {text} worker {worker}", label))
                return report
        found = view.find(task_id, [q for q in live.depths if live.depths[q]])
        if found is None:
            found = view.find_unacked(task_id)
        if found is not None:
            report.findings.append(_queued(host, subject, found, live))
            return report
        searched = view.searchable
    kept = _kept(host, task_id, subject, live)
    if kept is not None:
        report.findings.append(kept)
        return report
    if searched:
        problem = (f"{subject} is unknown: no stored state, no live worker holds it and no "
                   "queue contains it")
        fix = ("check the id; it may have been sent to another broker or PLATFORM_HOME, or "
               f"have finished with ignore_result, or its result expired after "
               f"{host.app.conf.result_expires}s (result_expires)")
    else:
        problem = (f"{subject} has no stored state and no live worker holds it; this broker "
                   "cannot be searched without consuming messages, so it is either queued or "
                   "unknown")
        fix = ("run `platform doctor` without --task-id to see queues with messages and no "
               "worker")
    report.findings.append(Finding("task", "warning", problem, subject, fix))
    return report


def kept(app: Any, task_id: str) -> tuple[Delayed | None, DeadLetter | None]:
    """Where the platform keeps ``task_id`` outside the broker: held for a long delay, or
    in the dead-letter store; ``(None, None)`` if in neither or the stores cannot be read
    (they are a last place to look, not a check)."""
    from platform_core import stores

    try:
        store = stores.for_app(app)
        held = next((d for d in store.delays.pending() if d.task_id == task_id), None)
        letter = None if held else next(
            (e for e in store.dead_letters.list() if e.task_id == task_id), None)
    except Exception:  # noqa: BLE001 - any store failure: nothing found
        return None, None
    return held, letter


def _kept(host: Host, task_id: str, subject: str, live: Live) -> Finding | None:
    """The task held for a long delay, or in the dead-letter store; None if in neither."""
    held, letter = kept(host.app, task_id)
    if held is not None:
        queue = held.message.queue or "?"
        label = task_label(host, str(held.message.headers.get("task") or subject))
        return Finding(
            "task", "info",
            f"{subject} is held until {when(held.due)}: its countdown or eta is beyond the "
            f"visibility timeout, so a running worker sends it to queue `{queue}` when due",
            label,
            "" if live.consumers(queue) else worker_fix(host, queue),
        )
    if letter is not None:
        return Finding(
            "task", "error",
            f"{subject} is in the dead-letter store: {letter.reason}",
            task_label(host, letter.task) if letter.task else subject,
            f"see `platform dlq show {letter.id}`; `platform dlq replay {letter.id}` sends it "
            "again once the cause is fixed",
        )
    return None


def _queued(host: Host, subject: str, found: Located, live: Live) -> Finding:
    label = task_label(host, found.task) if found.task else subject
    consumers = live.consumers(found.queue)
    if found.unacked_since is not None:
        restore = found.unacked_since + (found.restore_after or 0)
        return Finding(
            "task", "warning",
            f"{subject} was delivered to a worker at {when(found.unacked_since)} and never "
            f"acknowledged, and no live worker holds it now (the worker died or was killed); "
            f"Redis puts it back on queue `{found.queue}` after the visibility timeout, "
            f"from {when(restore)}",
            f"{label}, {queue_owner(host, found.queue)}",
            "keep a worker consuming that queue running; it picks the message up again then"
            if consumers else worker_fix(host, found.queue),
        )
    eta = f" (ETA {found.eta})" if found.eta else ""
    ahead = f" behind {found.ahead} other message(s)" if found.ahead else ""
    if consumers:
        return Finding(
            "task", "info",
            f"{subject} is queued in `{found.queue}`{ahead}{eta}; worker(s) "
            f"{', '.join(consumers)} consume that queue and will run it",
            f"{label}, {queue_owner(host, found.queue)}",
        )
    return Finding(
        "task", "error",
        f"{subject} is queued in `{found.queue}`{ahead}{eta}, but no live worker consumes "
        "that queue, so it stays PENDING",
        f"{label}, {queue_owner(host, found.queue)}",
        worker_fix(host, found.queue),
    )
