"""Tracing and metrics settings that cannot work, found before anything is built."""

from __future__ import annotations

from platform_core.errors import ConfigurationError
from platform_core.settings import Settings


def check(settings: Settings, problems: list[str]) -> None:
    """Fail at start-up, in the operator's terminal, rather than inside the worker."""
    if settings.metrics == "prometheus":
        try:
            import opentelemetry.exporter.prometheus  # noqa: F401
            import prometheus_client  # noqa: F401
        except ImportError as exc:
            problems.append(
                f"PLATFORM_METRICS=prometheus needs the prometheus extra ({exc}); "
                "pip install 'platform-core[prometheus]' or choose PLATFORM_METRICS=otlp"
            )
        host, _, port = settings.metrics_address.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            problems.append(
                f"PLATFORM_METRICS_ADDRESS={settings.metrics_address!r} is not host:port; "
                "use e.g. 127.0.0.1:9464"
            )
    signals = [s for s, mode in (("traces", settings.tracing), ("metrics", settings.metrics))
               if mode == "otlp"]
    if not signals:
        return
    from importlib.util import find_spec

    from platform_core.telemetry.export import export_interval, exporter_module, missing, protocol

    for signal in signals:
        try:
            chosen = protocol(signal)
        except ConfigurationError as exc:
            problems.extend(exc.problems)
            continue
        try:
            found = find_spec(exporter_module(chosen)) is not None
        except ImportError:
            found = False
        if not found:
            problems.append(missing(signal.removesuffix("s"), chosen, "not installed"))
    if "metrics" in signals:
        try:
            export_interval()
        except ConfigurationError as exc:
            problems.extend(exc.problems)
