"""Plain Celery traced the way the contrib instrumentation's documentation shows.

Providers are created in ``worker_process_init`` (after fork) and the producer
instruments itself at import; nothing flushes a child before it exits.
"""

from __future__ import annotations

from typing import Any

from celery.signals import worker_process_init
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.celery import CeleryInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from bench.plain_app import app, noop

__all__ = ["app", "noop"]


def _provider() -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": "plain-celery"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


@worker_process_init.connect(weak=False)
def init_celery_tracing(*args: Any, **kwargs: Any) -> None:
    trace.set_tracer_provider(_provider())
    CeleryInstrumentor().instrument()

