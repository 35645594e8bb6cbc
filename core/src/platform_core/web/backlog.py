"""``/backlog`` and ``/backlog/{queue}``: each queue's work not yet done, in the shape
KEDA's ``metrics-api`` scaler reads (``valueLocation: backlog``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, HTTPException
from starlette.concurrency import run_in_threadpool

from platform_core.errors import PlatformError

if TYPE_CHECKING:
    from platform_core.host import Host
    from platform_core.web.auth import Authenticator


def add_backlog_routes(router: APIRouter, host: Host, guard: Authenticator) -> None:
    declared = sorted(host.registry.queue_map())

    async def measured(queues: list[str]) -> dict[str, Any]:
        from platform_core.telemetry.backlog import measure

        try:
            backlog = await run_in_threadpool(measure, host.app, queues,
                                              host.settings.backlog_due_soon)
        except PlatformError as exc:  # the broker or the store does not answer
            raise HTTPException(503, str(exc)) from None
        return backlog.as_dict()

    @router.get("/backlog", summary="Each queue's backlog: ready + reserved + running + held "
                                    "delays due soon, with the parts", tags=["platform"],
                dependencies=[guard.need("read")])
    async def backlog() -> dict[str, Any]:
        return await measured(declared)

    @router.get("/backlog/{queue}", summary="One queue's backlog, for an autoscaler "
                                            "(KEDA metrics-api: valueLocation `backlog`)",
                tags=["platform"], dependencies=[guard.need("read")])
    async def queue_backlog(queue: str) -> dict[str, Any]:
        if queue not in declared:
            raise HTTPException(404, f"no enabled plugin declares queue `{queue}`; declared: "
                                     f"{', '.join(declared) or 'none'}")
        data = await measured([queue])
        return {"queue": queue, **data.pop("queues")[queue], **data}
