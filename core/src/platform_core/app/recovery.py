"""Wire dead letters, bounded redelivery and held long delays into an app
(the reasons are in docs/reliability.md)."""

from __future__ import annotations

from typing import Any

from platform_core import stores
from platform_core.app.hold import horizon
from platform_core.settings import Settings
from platform_core.worker.release import ReleaseDelayed


def configure(app: Any, settings: Settings, problems: list[str]) -> None:
    location = stores.locate(settings)
    problem = stores.url_problem(location)
    if problem:
        problems.append(problem)
    app.conf.update(
        worker_consumer="platform_core.worker.consumer:PlatformConsumer",
        # "DATABASE" in the key makes Celery mask the value (it may hold the broker's
        # password) in `celery inspect conf` and Flower's configuration view.
        platform_dead_letter_database=location.url,
        platform_dead_letter_source=location.source,
        platform_dead_letter_note=location.note,
        platform_max_redeliveries=settings.max_redeliveries,
        platform_max_payload_bytes=settings.max_payload_bytes,
        platform_delay_horizon=horizon(settings.visibility_timeout),
    )
    app.steps["worker"].add(ReleaseDelayed)
