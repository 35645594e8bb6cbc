"""The locked beat scheduler, each dispatch the root span of its own trace."""

from __future__ import annotations

from typing import Any

from opentelemetry import context as context_api
from opentelemetry.trace import SpanKind

from platform_core.beat.scheduler import LockedScheduler
from platform_core.telemetry import tracing
from platform_core.telemetry.attributes import BEAT_ENTRY, DESTINATION, PLUGIN, QUEUE, TASK


class TracedScheduler(LockedScheduler):
    def apply_async(self, entry: Any, producer: Any = None, advance: bool = True,
                    **kwargs: Any) -> Any:
        if not tracing.enabled():
            return super().apply_async(entry, producer=producer, advance=advance, **kwargs)
        with tracing.tracer().start_as_current_span(
            f"beat/{entry.name}", context=context_api.Context(), kind=SpanKind.PRODUCER,
            attributes=self._attributes(entry),
        ):
            return super().apply_async(entry, producer=producer, advance=advance, **kwargs)

    def _attributes(self, entry: Any) -> dict[str, Any]:
        """The entry, its task, and the plugin and queue a viewer filters traces by."""
        found: dict[str, Any] = {BEAT_ENTRY: entry.name, TASK: entry.task}
        task = self.app.tasks.get(entry.task)
        if getattr(task, "plugin", None):
            found[PLUGIN] = task.plugin
        routes = self.app.conf.task_routes
        route = routes.get(entry.task) if isinstance(routes, dict) else None
        queue = (entry.options or {}).get("queue") or (route or {}).get("queue")
        if queue:
            found[QUEUE] = found[DESTINATION] = queue
        return found
