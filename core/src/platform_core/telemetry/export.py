"""Exporters and resource from the standard ``OTEL_*`` variables."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from platform_core.errors import ConfigurationError

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import MetricExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace.export import SpanExporter

DEFAULT_SERVICE_NAME = "platform"
PROTOCOLS = ("http/protobuf", "grpc")


def resource(role: str) -> Resource:
    """OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES, else service ``platform``."""
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource

    found = Resource.create({"platform.process.role": role, "process.pid": os.getpid()})
    if str(found.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        found = found.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    return found


def protocol(signal: str) -> str:
    """The OTLP protocol for ``signal`` (traces, metrics), checked."""
    variable = f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL"
    value = os.environ.get(variable) or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
    chosen = (value or "http/protobuf").strip()
    if chosen not in PROTOCOLS:
        raise ConfigurationError([
            f"OTLP protocol `{chosen}` (from {variable} or OTEL_EXPORTER_OTLP_PROTOCOL) is not "
            f"supported; use one of {', '.join(PROTOCOLS)}"
        ])
    return chosen


def exporter_module(chosen: str) -> str:
    """The module of the OTLP exporters for protocol ``chosen``."""
    return "opentelemetry.exporter.otlp.proto." + ("grpc" if chosen == "grpc" else "http")


def missing(signal: str, chosen: str, why: str) -> str:
    """The problem of an OTLP exporter that cannot be imported, and the fix."""
    package = exporter_module(chosen).replace(".", "-")
    return (f"OTLP {signal} export over {chosen} needs {package} ({why}); "
            f"pip install {package}, or choose the other OTEL_EXPORTER_OTLP_PROTOCOL")


def _missing(signal: str, chosen: str, exc: ImportError) -> ConfigurationError:
    return ConfigurationError([missing(signal, chosen, str(exc))])


def span_exporter(mode: str) -> SpanExporter:
    if mode == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    chosen = protocol("traces")
    try:
        if chosen == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[import-not-found]
                OTLPSpanExporter,
            )
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as exc:
        raise _missing("trace", chosen, exc) from None
    exporter: SpanExporter = OTLPSpanExporter()
    return exporter


def metric_exporter(mode: str) -> MetricExporter:
    if mode == "console":
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

        return ConsoleMetricExporter()
    chosen = protocol("metrics")
    try:
        if chosen == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (  # type: ignore[import-not-found]
                OTLPMetricExporter,
            )
        else:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
                OTLPMetricExporter,
            )
    except ImportError as exc:
        raise _missing("metric", chosen, exc) from None
    exporter: MetricExporter = OTLPMetricExporter()
    return exporter


def export_interval() -> float:
    """Seconds between metric exports (OTEL_METRIC_EXPORT_INTERVAL, milliseconds)."""
    raw: Any = os.environ.get("OTEL_METRIC_EXPORT_INTERVAL", "60000")
    try:
        millis = float(raw)
    except ValueError:
        raise ConfigurationError([
            f"OTEL_METRIC_EXPORT_INTERVAL={raw!r} is not a number of milliseconds; fix or unset it"
        ]) from None
    if millis <= 0:
        raise ConfigurationError([
            f"OTEL_METRIC_EXPORT_INTERVAL={raw!r} must be positive (milliseconds)"
        ])
    return millis / 1000
