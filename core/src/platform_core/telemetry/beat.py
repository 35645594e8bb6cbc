"""The locked beat scheduler, each dispatch the root span of its own trace."""

from __future__ import annotations

from typing import Any

from opentelemetry import context as context_api
from opentelemetry.trace import SpanKind

from platform_core.beat.scheduler import LockedScheduler
from platform_core.telemetry import tracing
from platform_core.telemetry.attributes import BEAT_ENTRY, TASK


class TracedScheduler(LockedScheduler):
    def apply_async(self, entry: Any, producer: Any = None, advance: bool = True,
                    **kwargs: Any) -> Any:
        if not tracing.enabled():
            return super().apply_async(entry, producer=producer, advance=advance, **kwargs)
        with tracing.tracer().start_as_current_span(
            f"beat/{entry.name}", context=context_api.Context(), kind=SpanKind.PRODUCER,
            attributes={BEAT_ENTRY: entry.name, TASK: entry.task},
        ):
            return super().apply_async(entry, producer=producer, advance=advance, **kwargs)
