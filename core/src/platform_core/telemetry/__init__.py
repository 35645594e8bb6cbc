"""OpenTelemetry tracing and metrics for producers, workers and beat.

Nothing here is imported while ``PLATFORM_TRACING`` and ``PLATFORM_METRICS`` are off.
"""

from __future__ import annotations

from typing import Any

from celery import signals

from platform_core.settings import Settings

REQUEST_CLASS = "platform_core.telemetry.request:TelemetryRequest"
BEAT_SCHEDULER = "platform_core.telemetry.beat:TracedScheduler"


def wanted(settings: Settings) -> bool:
    return settings.tracing != "off" or settings.metrics != "off"


_stamping = False


def install(app: Any, settings: Settings) -> None:
    """Trace this process now; measure it if it becomes a worker."""
    global _stamping
    if not _stamping:
        from platform_core.telemetry.headers import PUBLISH_HANDLERS, stamp_sent_at

        signals.before_task_publish.connect(stamp_sent_at, weak=False)
        PUBLISH_HANDLERS.append(stamp_sent_at)
        _stamping = True
    if settings.tracing != "off":
        from platform_core.telemetry import tracing

        tracing.install(app, settings.tracing, settings.tracing_delayed,
                        settings.tracing_link_after)
    if settings.metrics != "off":
        _metrics_on_worker_start(app, settings)


def _metrics_on_worker_start(app: Any, settings: Settings) -> None:
    def on_init(sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", None) is None or sender.app is not app:
            return
        from platform_core.telemetry import metrics, queues

        def depth() -> dict[str, int]:
            consumed = app.amqp.queues.consume_from or app.amqp.queues
            return queues.depths(app, list(consumed))

        metrics.install(settings.metrics, settings.metrics_address, depth,
                        _backlog_reader(app, settings))
        from platform_core.worker import rate_limit

        if metrics.count_rate_limited not in rate_limit.listeners:
            rate_limit.listeners.append(metrics.count_rate_limited)
        from platform_core.worker import link_watchdog

        if metrics.count_stalled_link not in link_watchdog.listeners:
            link_watchdog.listeners.append(metrics.count_stalled_link)

    def on_ready(sender: Any = None, **_: Any) -> None:
        from platform_core.telemetry import metrics

        metrics.start()

    def on_shutdown(sender: Any = None, **_: Any) -> None:
        from platform_core.telemetry import metrics

        metrics.stop()

    signals.worker_init.connect(on_init, weak=False)
    signals.worker_ready.connect(on_ready, weak=False)
    signals.worker_shutdown.connect(on_shutdown, weak=False)


def _backlog_reader(app: Any, settings: Settings) -> Any:
    """The backlog of the queues the worker consumes, read once for the gauges of one
    collection (they ask one after the other)."""
    import threading
    import time

    lock = threading.Lock()
    last: list[Any] = [0.0, {}]

    def read() -> dict[str, dict[str, int]]:
        from platform_core.telemetry.backlog import measure

        with lock:
            if time.monotonic() - last[0] > 1.0:
                consumed = app.amqp.queues.consume_from or app.amqp.queues
                backlog = measure(app, list(consumed), settings.backlog_due_soon)
                last[:] = [time.monotonic(), {q: b.as_dict() for q, b in backlog.queues.items()}]
            return dict(last[1])

    return read
