"""Tracing and metrics configuration, and the pieces that do not need a worker."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from platform_core.errors import ConfigurationError
from platform_core.settings import load_settings
from platform_core.telemetry import export, tracing
from platform_core.telemetry.tracing import SwitchableTracerProvider


def _memory_provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def test_tracers_handed_out_before_a_fork_follow_the_new_delegate() -> None:
    switchable = SwitchableTracerProvider()
    early = switchable.get_tracer("plugin.module")
    early.start_span("dropped").end()  # no delegate yet: a no-op, not an error

    first, first_spans = _memory_provider()
    switchable.delegate = first
    early.start_span("one").end()
    second, second_spans = _memory_provider()
    switchable.delegate = second  # what a pool child does after fork
    with early.start_as_current_span("two"):
        pass

    assert [s.name for s in first_spans.get_finished_spans()] == ["one"]
    assert [s.name for s in second_spans.get_finished_spans()] == ["two"]


@pytest.fixture
def link_policy() -> Iterator[None]:
    saved = (tracing.state.delayed, tracing.state.link_after)
    yield
    tracing.state.delayed, tracing.state.link_after = saved


@pytest.mark.usefixtures("link_policy")
def test_only_runs_delayed_past_the_threshold_link_to_their_producer() -> None:
    tracing.state.delayed, tracing.state.link_after = "link", 300.0
    sent = time.time()
    hour_later = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(sent + 3600))
    minute_later = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(sent + 60))
    assert tracing.links_to_producer(hour_later, sent)
    assert not tracing.links_to_producer(minute_later, sent)  # a retry backoff stays a child
    assert not tracing.links_to_producer(None, sent)
    assert not tracing.links_to_producer(hour_later, None)  # a producer without the header
    tracing.state.delayed = "child"
    assert not tracing.links_to_producer(hour_later, sent)


def test_unsupported_otlp_protocol_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
    with pytest.raises(ConfigurationError, match="OTEL_EXPORTER_OTLP_PROTOCOL"):
        export.span_exporter("otlp")


def test_bad_metric_interval_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "soon")
    with pytest.raises(ConfigurationError, match="OTEL_METRIC_EXPORT_INTERVAL"):
        export.export_interval()


def test_service_name_defaults_to_platform_unless_otel_says_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert export.resource("worker").attributes["service.name"] == "platform"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "billing-workers")
    found = export.resource("worker").attributes
    assert found["service.name"] == "billing-workers"
    assert found["platform.process.role"] == "worker"


def test_unknown_tracing_mode_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLATFORM_TRACING", "jaeger")
    with pytest.raises(ConfigurationError, match="PLATFORM_TRACING"):
        load_settings()


def test_bad_prometheus_address_fails_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    from platform_core.host import build

    monkeypatch.setenv("PLATFORM_METRICS", "prometheus")
    monkeypatch.setenv("PLATFORM_METRICS_ADDRESS", "9464")
    with pytest.raises(ConfigurationError, match="PLATFORM_METRICS_ADDRESS"):
        build(plugins=["admin"], bind=False)


def test_every_telemetry_problem_is_listed_at_start_before_the_app_is_built(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.util import find_spec

    from platform_core.host import build

    if find_spec("opentelemetry.exporter.otlp.proto.grpc") is not None:
        pytest.skip("the gRPC exporter is installed here, so nothing is missing")
    monkeypatch.setenv("PLATFORM_TRACING", "otlp")
    monkeypatch.setenv("PLATFORM_METRICS", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "-5")
    with pytest.raises(ConfigurationError) as caught:
        build(plugins=["admin"], bind=False)
    assert caught.value.problems == [
        "OTLP trace export over grpc needs opentelemetry-exporter-otlp-proto-grpc (not "
        "installed); pip install opentelemetry-exporter-otlp-proto-grpc, or choose the other "
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTLP metric export over grpc needs opentelemetry-exporter-otlp-proto-grpc (not "
        "installed); pip install opentelemetry-exporter-otlp-proto-grpc, or choose the other "
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_METRIC_EXPORT_INTERVAL='-5' must be positive (milliseconds)",
    ]


def test_tracing_off_imports_no_opentelemetry() -> None:
    code = (
        "import sys\n"
        "from platform_core.host import build\n"
        "host = build(bind=False)\n"
        "host.app.tasks['admin.print_hello']\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('opentelemetry'))\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
