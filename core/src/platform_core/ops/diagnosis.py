"""The checks behind ``platform doctor``: each returns findings naming culprit and fix.

Every broker call is bounded: the doctor's app is built with timeouts on its connections
(``AppOptions.io_timeout``), and
the command runs the checks under an overall deadline (:func:`run_bounded`).
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from platform_core.beat import locks as beatlock
from platform_core.beat.locks import LOCK_FILE, LOCK_KEY, LOCK_QUEUE
from platform_core.broker.view import BrokerView, is_internal
from platform_core.host import Host
from platform_core.redaction import redact
from platform_core.urls import kind

Severity = Literal["error", "warning", "info"]


@dataclass(frozen=True)
class Finding:
    check: str
    severity: Severity
    problem: str
    culprit: str = ""
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass
class Live:
    """What the running workers and the broker said."""

    workers: dict[str, list[str]]  # worker name → queues it consumes
    registered: dict[str, set[str]]  # worker name → task names it knows
    depths: dict[str, int]  # queue → messages waiting
    held: dict[str, Any] = field(default_factory=dict)  # worker → query_task reply
    links: dict[str, dict[str, Any]] = field(default_factory=dict)  # worker → link watchdog

    def consumers(self, queue: str) -> list[str]:
        return sorted(w for w, queues in self.workers.items() if queue in queues)


@dataclass
class Diagnosis:
    broker: str
    findings: list[Finding] = field(default_factory=list)
    live: Live | None = None

    @property
    def healthy(self) -> bool:
        return all(f.severity == "info" for f in self.findings)


class _Call(threading.Thread):
    """``fn`` running in a daemon thread: one left hanging ends with the process."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        super().__init__(name="platform-doctor", daemon=True)
        self.fn = fn
        self.value: Any = None
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self.value = self.fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            self.error = exc

    def outcome(self, timeout: float | None = None) -> tuple[bool, Any]:
        self.join(timeout)
        if self.is_alive():
            return False, None
        if self.error is not None:
            raise self.error
        return True, self.value


def run_bounded(fn: Callable[[], Any], deadline: float) -> tuple[bool, Any]:
    """(True, fn()) or, if ``fn`` is not done within ``deadline`` s, (False, None).

    kombu retries some publishes forever when the broker vanishes mid-call, so the
    command gives up on the checks instead of waiting for them.
    """
    return _Call(fn).outcome(deadline)


def together(*calls: Callable[[], Any]) -> list[Any]:
    """Run ``calls`` at once (broadcast rounds each wait their whole timeout)."""
    started = [_Call(call) for call in calls]
    return [call.outcome()[1] for call in started]


@contextmanager
def broker_view(host: Host) -> Iterator[BrokerView]:
    with host.app.connection_for_read() as conn:
        view = BrokerView(conn)
        try:
            yield view
        finally:
            view.close()


# --- culprits ---------------------------------------------------------------------------


def queue_owner(host: Host, queue: str) -> str:
    c = host.registry.queue_map().get(queue)
    return f"queue `{queue}` of {c.plugin.label}" if c else f"queue `{queue}`"


def task_label(host: Host, name: str) -> str:
    c = host.registry.task_map().get(name)
    return f"task `{name}` of {c.plugin.label}" if c else f"task `{name}`"


def worker_fix(host: Host, queue: str) -> str:
    c = host.registry.queue_map().get(queue)
    if c is None:
        return (f"declare queue `{queue}` in the plugin whose tasks belong there and start a "
                f"worker for it, or drop the messages: `celery -A platform_core.celery_app "
                f"purge -Q {queue}`; send only to declared queues (`platform queues`)")
    return (f"start a worker that consumes it: `platform worker -Q {queue}` (or "
            f"`platform worker --plugins {c.plugin.name}` for all of plugin "
            f"`{c.plugin.name}`'s queues)")


def _senders(host: Host, queue: str) -> list[str]:
    """What sends to ``queue``: tasks routed there, routes and beat entries naming it."""
    out = [f"task `{c.item.name}`" for c in host.registry.tasks
           if host.queue_of(c.item.name) == queue]
    out += [f"route `{c.item.pattern}` ({c.plugin.name})" for c in host.registry.routes
            if c.item.queue == queue]
    out += [f"beat entry `{c.item.name}` ({c.plugin.name})" for c in host.registry.beat_entries
            if c.item.queue == queue]
    return out


# --- the checks -------------------------------------------------------------------------


def check_broker(host: Host, timeout: float) -> list[Finding]:
    url = redact(host.app.conf.broker_url)
    try:
        with host.app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - kombu raises many kinds here
        return [Finding(
            "broker", "error",
            f"cannot reach the broker ({type(exc).__name__}: {exc}); nothing can be sent "
            "or run, and every task stays PENDING",
            f"broker {url} (PLATFORM_BROKER_URL)",
            "start the broker, or point PLATFORM_BROKER_URL at a running one (unset it for "
            "the embedded broker)",
        )]
    return [Finding("broker", "info", f"broker {url} answers")]


def check_result_backend(host: Host) -> list[Finding]:
    conf = host.app.conf
    url = str(conf.result_backend)
    if kind(url) != "redis":
        return []
    try:
        host.app.backend.client.ping()
    except Exception as exc:  # noqa: BLE001 - redis-py raises many kinds here
        return [Finding(
            "result-backend", "error",
            f"cannot reach the result backend ({type(exc).__name__}: {exc}); task states "
            "and results are not stored, so callers see PENDING forever",
            f"result backend {redact(url)} (PLATFORM_RESULT_BACKEND)",
            "start it, or fix PLATFORM_RESULT_BACKEND (unset: the broker's Redis)",
        )]
    return []


def observe(host: Host, view: BrokerView, timeout: float, task_id: str | None = None) -> Live:
    """Ask the live workers (broadcast rounds in parallel) and count the queues."""
    inspector = host.app.control.inspect(timeout=timeout)
    calls = (inspector.active_queues, inspector.registered,
             (lambda: inspector.query_task(task_id)) if task_id else dict, inspector.stats)
    # On the embedded broker, two first-time reply bindings race on kombu's exchange
    # file, so its rounds go one at a time.
    asked = [call() for call in calls] if view.kind == "filesystem" else together(*calls)
    queues_by_worker, registered, held, stats = (reply or {} for reply in asked)
    links = {w: s["platform_link"] for w, s in stats.items()
             if isinstance(s, dict) and isinstance(s.get("platform_link"), dict)}
    workers = {
        name: sorted(q["name"] for q in queues or [] if isinstance(q, dict) and "name" in q)
        for name, queues in queues_by_worker.items()
    }
    names = set(host.registry.queue_map())
    for queues in workers.values():
        names.update(queues)
    names.update(host.queue_of(c.item.name) for c in host.registry.tasks)
    names.update(view.queues() or ())
    depths = {q: view.depth(q) for q in sorted(names) if not is_internal(q)}
    return Live(workers, {w: set(t or []) for w, t in registered.items()}, depths, held,
                links)


RECENT_STALL = 900.0  # seconds during which a recovered stall is a warning, then news


def check_links(live: Live, now: float | None = None) -> list[Finding]:
    """Workers that found their broker link half-open and reconnected (link_watchdog)."""
    now = time.time() if now is None else now
    findings = []
    for worker, link in sorted(live.links.items()):
        count, last = link.get("stalled_link_recoveries") or 0, link.get("last_recovery")
        if not count or not isinstance(last, (int, float)):
            continue
        ago = max(0.0, now - last)
        findings.append(Finding(
            "broker links", "warning" if ago < RECENT_STALL else "info",
            f"worker {worker} found its broker link silent while it owed an answer and "
            f"reconnected, {count} time(s), last {ago:.0f} s ago",
            worker,
            "something between the worker and the broker drops idle or long flows (a NAT, "
            "a cloud load balancer, a firewall): raise its idle timeout, or connect directly",
        ))
    return findings


def check_workers(host: Host, live: Live, timeout: float) -> list[Finding]:
    if not live.workers:
        declared = ", ".join(host.registry.queue_map()) or "none"
        return [Finding(
            "workers", "error",
            f"no live worker answered within {timeout:g}s, so nothing consumes any queue "
            f"({declared}); tasks sent now stay PENDING",
            "workers",
            "start one: `platform worker` (or raise --timeout if workers are busy or far away)",
        )]
    listed = "; ".join(f"{w} ({', '.join(q) or 'no queues'})" for w, q in
                       sorted(live.workers.items()))
    return [Finding("workers", "info", f"{len(live.workers)} live worker(s): {listed}")]


def check_waiting_queues(host: Host, view: BrokerView, live: Live) -> list[Finding]:
    """Queues holding messages that no live worker consumes: those tasks sit PENDING."""
    findings = []
    declared = host.registry.queue_map()
    for queue, waiting in live.depths.items():
        if waiting == 0 or live.consumers(queue):
            continue
        names = view.task_names(queue)
        tasks = ", ".join(f"{task_label(host, n)} ×{k}" for n, k in names.most_common(5))
        culprit = queue_owner(host, queue) + (f"; messages of {tasks}" if tasks else "")
        if queue in declared:
            problem = (f"queue `{queue}` holds {waiting} waiting message(s) but no live "
                       "worker consumes it, so those tasks stay PENDING")
        else:
            problem = (f"queue `{queue}` holds {waiting} waiting message(s) but no enabled "
                       "plugin declares it and no live worker consumes it; they were sent "
                       "with an explicit queue name that matches nothing")
        findings.append(Finding("queue-without-worker", "error", problem, culprit,
                                worker_fix(host, queue)))
    return findings


def check_unconsumed_queues(host: Host, live: Live) -> list[Finding]:
    """Declared queues that tasks, routes or beat entries send to, with no live consumer."""
    if not live.workers:
        return []  # check_workers already says nothing consumes anything
    findings = []
    for c in host.registry.queues:
        queue = c.item.name
        if live.consumers(queue) or live.depths.get(queue):
            continue  # consumed, or already reported with its waiting messages
        senders = _senders(host, queue)
        if not senders:
            continue
        findings.append(Finding(
            "route-without-worker", "warning",
            f"no live worker consumes queue `{queue}`; what is sent there now stays PENDING",
            f"{queue_owner(host, queue)}, fed by {', '.join(senders)}",
            worker_fix(host, queue),
        ))
    return findings


def check_unregistered(host: Host, live: Live) -> list[Finding]:
    """A queue's consumers that do not know a task routed there discard its messages."""
    findings = []
    for c in host.registry.tasks:
        name = c.item.name
        queue = host.queue_of(name)
        consumers = [w for w in live.consumers(queue) if w in live.registered]
        strangers = [w for w in consumers if name not in live.registered[w]]
        if not strangers:
            continue
        severity: Severity = "error" if len(strangers) == len(consumers) else "warning"
        findings.append(Finding(
            "unregistered-task", severity,
            f"worker(s) {', '.join(strangers)} consume queue `{queue}` but do not know task "
            f"`{name}`; a worker discards such a message as unregistered, and the task is lost",
            f"{task_label(host, name)}, routed to {queue_owner(host, queue)}",
            f"restart those workers with plugin `{c.plugin.name}` loaded and at the same "
            f"version (`platform worker --plugins ...,{c.plugin.name}`), or stop them "
            f"consuming `{queue}`",
        ))
    return findings


def beat_lock_holder(host: Host, view: BrokerView | None) -> tuple[bool, str]:
    """(running, who) from the beat lock: a Redis key, a RabbitMQ exclusive queue, or a
    file lock under home (probed here for both kinds of file lock)."""
    if view is not None and view.kind != "filesystem":
        holder = beatlock.holder(host.app)
        return holder is not None, holder or ""
    path = host.settings.resolved_home / LOCK_FILE
    if not _file_locked(path):
        return False, ""
    try:
        who = path.read_text(errors="replace").strip()
    except OSError:
        who = ""
    return True, who or f"a process on {socket.gethostname()}"


def _file_locked(path: Path) -> bool:
    """Whether another process holds a lock on ``path`` (flock or POSIX record lock)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        # Shared probes conflict with the holder's exclusive lock and are released at once.
        for take, release in ((lambda: fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB),
                               lambda: fcntl.flock(fd, fcntl.LOCK_UN)),
                              (lambda: fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB),
                               lambda: fcntl.lockf(fd, fcntl.LOCK_UN))):
            try:
                take()
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    return True
                raise
            release()
        return False
    finally:
        os.close(fd)


def check_beat(host: Host, view: BrokerView | None) -> list[Finding]:
    entries = host.registry.beat_entries
    if not entries:
        return []
    running, who = beat_lock_holder(host, view)
    if running:
        return [Finding("beat", "info", f"beat is running ({who})")]
    names = ", ".join(f"`{c.item.name}` ({c.plugin.name})" for c in entries)
    if view is not None and view.kind == "redis":
        where = f"Redis key `{LOCK_KEY}`"
    elif view is not None and view.kind != "filesystem":
        where = f"holder of the RabbitMQ queue `{LOCK_QUEUE}`"
    else:
        where = f"lock on {host.settings.resolved_home / LOCK_FILE}"
    return [Finding(
        "beat", "warning",
        f"no beat is running (no {where}), so {len(entries)} periodic entr"
        f"{'y' if len(entries) == 1 else 'ies'} never run",
        f"beat entries {names}",
        "start exactly one scheduler: `platform beat`",
    )]


def diagnose(host: Host, timeout: float) -> Diagnosis:
    """Every check, in order; stops after the broker check when the broker is down."""
    report = Diagnosis(broker=redact(host.app.conf.broker_url))
    report.findings += check_broker(host, timeout)
    if not report.healthy:
        return report
    report.findings += check_result_backend(host)
    with broker_view(host) as view:
        live = observe(host, view, timeout)
        report.live = live
        report.findings += check_workers(host, live, timeout)
        report.findings += check_waiting_queues(host, view, live)
        report.findings += check_unconsumed_queues(host, live)
        report.findings += check_unregistered(host, live)
        report.findings += check_links(live)
        report.findings += check_beat(host, view)
    return report


def report_data(host: Host, report: Diagnosis) -> dict[str, Any]:
    """The report as data: what `platform doctor --json` prints and `/health` returns."""
    queues = []
    if report.live is not None:
        declared = host.registry.queue_map()
        for queue, waiting in report.live.depths.items():
            owner = declared.get(queue)
            queues.append({"name": queue, "plugin": owner.plugin.name if owner else None,
                           "waiting": waiting, "consumers": report.live.consumers(queue)})
    return {
        "healthy": report.healthy,
        "broker": report.broker,
        "workers": report.live.workers if report.live else None,
        "queues": queues,
        "findings": [f.as_dict() for f in report.findings],
    }
