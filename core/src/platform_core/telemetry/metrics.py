"""Worker metrics, recorded in the worker's main process.

The main process sees every outcome (it receives each child's result), so no pool child
holds a meter and nothing is lost when a child is recycled. Exports run on a thread of
this module's own rather than the SDK's periodic reader, whose fork hook would restart
its thread in every pool child and export the parent's copied counters from there.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader

from platform_core.telemetry.export import export_interval, metric_exporter, resource

logger = logging.getLogger(__name__)

METER_NAME = "platform_core"
SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)


@dataclass
class Instruments:
    duration: Any
    queue_wait: Any
    outcomes: Any
    retries: Any
    redeliveries: Any
    rate_limited: Any = None
    stalled_links: Any = None


@dataclass
class _State:
    provider: MeterProvider | None = None
    reader: MetricReader | None = None
    instruments: Instruments | None = None
    pump: threading.Thread | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    depth: Callable[[], dict[str, int]] | None = None
    #: queue -> its backlog parts and ``backlog`` (telemetry.backlog.QueueBacklog.as_dict)
    backlog: Callable[[], dict[str, dict[str, int]]] | None = None


state = _State()


def _observe_depth(options: CallbackOptions) -> Iterable[Observation]:
    if state.depth is None:
        return []
    try:
        depths = state.depth()
    except Exception as exc:  # noqa: BLE001 - a broker hiccup must not break export
        logger.warning("queue depth not measured: %s: %s", type(exc).__name__, exc)
        return []
    return [Observation(n, {"queue": queue}) for queue, n in depths.items()]


def _backlog_reading() -> dict[str, dict[str, int]]:
    if state.backlog is None:
        return {}
    try:
        return state.backlog()
    except Exception as exc:  # noqa: BLE001 - a broker hiccup must not break export
        logger.warning("queue backlog not measured: %s: %s", type(exc).__name__, exc)
        return {}


def _observe_backlog(options: CallbackOptions) -> Iterable[Observation]:
    return [Observation(parts["backlog"], {"queue": queue})
            for queue, parts in _backlog_reading().items()]


def _observe_backlog_parts(options: CallbackOptions) -> Iterable[Observation]:
    return [Observation(n, {"queue": queue, "part": part})
            for queue, parts in _backlog_reading().items()
            for part, n in parts.items() if part != "backlog"]


def install(mode: str, address: str, depth: Callable[[], dict[str, int]] | None,
            backlog: Callable[[], dict[str, dict[str, int]]] | None = None) -> None:
    """Create the meter provider (once per process); exports start with :func:`start`."""
    if state.provider is not None:
        state.depth = depth
        state.backlog = backlog
        return
    from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View

    reader: MetricReader
    if mode == "prometheus":
        from opentelemetry.exporter.prometheus import PrometheusMetricReader

        reader = PrometheusMetricReader()
    else:
        reader = PeriodicExportingMetricReader(
            metric_exporter(mode), export_interval_millis=float("inf")
        )
    views = [View(instrument_name="platform.task.*",
                  aggregation=ExplicitBucketHistogramAggregation(SECONDS_BUCKETS),
                  instrument_type=Histogram)]
    state.provider = MeterProvider(metric_readers=[reader], resource=resource("worker"),
                                   views=views)
    state.reader = reader
    state.depth = depth
    state.backlog = backlog
    meter = state.provider.get_meter(METER_NAME)
    state.instruments = Instruments(
        duration=meter.create_histogram(
            "platform.task.duration", unit="s", description="Run time of a task attempt."),
        queue_wait=meter.create_histogram(
            "platform.task.queue_wait", unit="s",
            description="From when a task was due (sent, or its eta) to when a worker started it."),
        outcomes=meter.create_counter(
            "platform.task.outcomes", unit="{task}",
            description="Finished attempts by state (SUCCESS, FAILURE, RETRY, LOST, TIMEOUT)."),
        retries=meter.create_counter(
            "platform.task.retries", unit="{retry}", description="Retries scheduled."),
        redeliveries=meter.create_counter(
            "platform.task.redeliveries", unit="{message}",
            description="Messages the broker delivered again (a worker died or lost them)."),
        stalled_links=meter.create_counter(
            "platform.broker.stalled_links", unit="{reconnection}",
            description="Broker links the worker found silent while they owed an answer, "
                        "and reconnected (a half-open link: NAT, load balancer)."),
        rate_limited=meter.create_counter(
            "platform.task.rate_limited", unit="{message}",
            description="Runs over their global rate limit, sent again for later."),
    )
    meter.create_observable_gauge(
        "platform.queue.depth", callbacks=[_observe_depth], unit="{message}",
        description="Messages waiting in each queue the worker consumes.")
    meter.create_observable_gauge(
        "platform.queue.backlog", callbacks=[_observe_backlog], unit="{task}",
        description="Work not yet done in each queue the worker consumes: ready + reserved "
                    "+ running + held delays due soon (the scaling number).")
    meter.create_observable_gauge(
        "platform.queue.backlog.parts", callbacks=[_observe_backlog_parts], unit="{task}",
        description="The backlog's parts by queue: ready, reserved, running, held_due_soon, "
                    "held_later.")
    if mode == "prometheus":
        _serve_prometheus(address)


def _serve_prometheus(address: str) -> None:
    from prometheus_client import start_http_server

    host, _, port = address.rpartition(":")
    start_http_server(int(port), addr=host)
    logger.info("prometheus metrics on http://%s/metrics", address)


def start() -> None:
    """Start exporting from this process (the worker's main process, after it started)."""
    if state.reader is None or state.pump is not None:
        return
    if not isinstance(state.reader, PeriodicExportingMetricReader):
        return  # prometheus is scraped
    interval = export_interval()
    reader = state.reader

    def pump() -> None:
        while not state.stop.wait(interval):
            try:
                reader.collect()
            except Exception as exc:  # noqa: BLE001 - keep exporting after a failure
                logger.warning("metrics export failed: %s: %s", type(exc).__name__, exc)

    state.pump = threading.Thread(target=pump, name="platform-metrics", daemon=True)
    state.pump.start()


def stop() -> None:
    """Final export at worker shutdown."""
    state.stop.set()
    if state.reader is not None and isinstance(state.reader, PeriodicExportingMetricReader):
        state.reader.collect()


def instruments() -> Instruments | None:
    return state.instruments


def count_rate_limited(task: Any, wait: float) -> None:
    """One run over its global rate limit (``worker.rate_limit.listeners``)."""
    found = state.instruments
    if found is not None and found.rate_limited is not None:
        found.rate_limited.add(1, {"task": task.name,
                                   "plugin": getattr(task, "plugin", "") or ""})


def count_stalled_link(broker: str) -> None:
    """One half-open broker link the worker dropped and reconnected (link_watchdog)."""
    found = state.instruments
    if found is not None and found.stalled_links is not None:
        found.stalled_links.add(1, {"broker": broker})
