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
        from platform_core.telemetry.headers import stamp_sent_at

        signals.before_task_publish.connect(stamp_sent_at, weak=False)
        _stamping = True
    if settings.tracing != "off":
        from platform_core.telemetry import tracing

        tracing.install(app, settings.tracing, settings.tracing_delayed,
                        settings.tracing_link_after)
    if settings.metrics != "off":
        _check_metrics(settings)
        _metrics_on_worker_start(app, settings)


def _check_metrics(settings: Settings) -> None:
    """Fail at start-up, in the operator's terminal, rather than inside the worker."""
    from platform_core.errors import ConfigurationError
    from platform_core.telemetry.export import export_interval, protocol

    if settings.metrics == "prometheus":
        try:
            import opentelemetry.exporter.prometheus  # noqa: F401
            import prometheus_client  # noqa: F401
        except ImportError as exc:
            raise ConfigurationError([
                f"PLATFORM_METRICS=prometheus needs the prometheus extra ({exc}); "
                "pip install 'platform-core[prometheus]' or choose PLATFORM_METRICS=otlp"
            ]) from None
        host, _, port = settings.metrics_address.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigurationError([
                f"PLATFORM_METRICS_ADDRESS={settings.metrics_address!r} is not host:port; "
                "use e.g. 127.0.0.1:9464"
            ])
    elif settings.metrics == "otlp":
        protocol("metrics")
        export_interval()


def _metrics_on_worker_start(app: Any, settings: Settings) -> None:
    def on_init(sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", None) is None or sender.app is not app:
            return
        from platform_core.telemetry import metrics, queues

        def depth() -> dict[str, int]:
            consumed = app.amqp.queues.consume_from or app.amqp.queues
            return queues.depths(app, list(consumed))

        metrics.install(settings.metrics, settings.metrics_address, depth)

    def on_ready(sender: Any = None, **_: Any) -> None:
        from platform_core.telemetry import metrics

        metrics.start()

    def on_shutdown(sender: Any = None, **_: Any) -> None:
        from platform_core.telemetry import metrics

        metrics.stop()

    signals.worker_init.connect(on_init, weak=False)
    signals.worker_ready.connect(on_ready, weak=False)
    signals.worker_shutdown.connect(on_shutdown, weak=False)
