"""``/health``, ``/plugins`` and ``/queues``: what ``platform doctor`` and
``platform plugins list`` say, as data."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

if TYPE_CHECKING:
    from platform_core.host import Host
    from platform_core.web.auth import Authenticator

HEALTH_TIMEOUT = 1.0  # seconds each worker round of /health waits for replies


def add_health_routes(router: APIRouter, host: Host, guard: Authenticator,
                      offered: dict[str, Any]) -> None:
    @router.get("/health", summary="Broker, result store and live workers: the doctor's checks "
                                   "(503 when one fails)",
                tags=["platform"], dependencies=[guard.need("read")])
    async def health() -> JSONResponse:
        from platform_core.ops.diagnosis import diagnose, report_data

        report = await run_in_threadpool(diagnose, host, HEALTH_TIMEOUT)
        data = report_data(host, report)
        # 503 only when nothing can run (an error: the broker or result store is down); a
        # warning (no beat, a queue nobody consumes) is reported with 200.
        failing = any(f["severity"] == "error" for f in data["findings"])
        return JSONResponse(data, 503 if failing else 200)

    @router.get("/plugins", summary="Enabled plugins and the tasks this API offers",
                tags=["platform"], dependencies=[guard.need("read")])
    async def plugins() -> list[dict[str, Any]]:
        rows = []
        for name, info in sorted(host.plugins.items()):
            rows.append({
                "name": name, "distribution": info.distribution, "version": info.version,
                "tasks": [{"name": task, "queue": host.queue_of(task)}
                          for task, c in sorted(offered.items()) if c.plugin.name == name],
                "queues": sorted(q.item.name for q in host.registry.queues
                                 if q.plugin.name == name),
            })
        return rows

    @router.get("/queues", summary="Messages waiting in each queue", tags=["platform"],
                dependencies=[guard.need("read")])
    async def queues() -> list[dict[str, Any]]:
        from platform_core.ops.diagnosis import broker_view

        declared = host.registry.queue_map()

        def depths() -> list[dict[str, Any]]:
            with broker_view(host) as view:
                return [{"name": name, "plugin": c.plugin.name, "waiting": view.depth(name)}
                        for name, c in sorted(declared.items())]

        return await run_in_threadpool(depths)
