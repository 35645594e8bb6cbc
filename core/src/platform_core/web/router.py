"""``platform_router()``: the task API as a FastAPI router, generated from the registry.

Every route is a client of the host's Celery app: a submit is ``apply_async`` with the
same argument checks, routing, payload limit and tracing as ``task.delay()``; a status
is the result store's state, with the platform's delay and dead-letter stores.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from platform_core.redaction import scrub
from platform_core.web.auth import Authenticator, authenticator
from platform_core.web.backlog import add_backlog_routes
from platform_core.web.events import changes, subscriber_for
from platform_core.web.health import add_health_routes
from platform_core.web.keys import SCOPES
from platform_core.web.schemas import body_schema, many_schema
from platform_core.web.status import STATUS_ROUTE, Place, Submitted, event_id, read
from platform_sdk.exceptions import InvalidTaskCall, PayloadTooLarge

if TYPE_CHECKING:
    from platform_core.host import Host

logger = logging.getLogger("platform.api")

ENVELOPE_BYTES = 4096  # what a submit's body may add to its arguments (options, keys)
MANY_FACTOR = 16  # a bulk submit may be this many payload limits, as the receive path allows


class SendOptions(BaseModel):
    """The ``apply_async`` options a request may give."""

    model_config = ConfigDict(extra="forbid")

    countdown: float | None = Field(default=None, ge=0)
    eta: datetime | None = None
    priority: int | None = Field(default=None, ge=0, le=255)

    def send_options(self) -> dict[str, Any]:
        return {k: v for k, v in (("countdown", self.countdown), ("eta", self.eta),
                                  ("priority", self.priority)) if v is not None}


class Call(BaseModel):
    """One call's arguments."""

    model_config = ConfigDict(extra="forbid")

    args: list[Any] = Field(default_factory=list)
    kwargs: dict[str, Any] = Field(default_factory=dict)


class Options(Call, SendOptions):
    """A submit's body: the arguments and the options."""


class Many(SendOptions):
    """A bulk submit's body: the calls, and the options they share."""

    calls: list[Call] = Field(min_length=1)


class Problem(Exception):
    """An error response: ``detail`` is FastAPI's shape, never holding a submitted value."""

    def __init__(self, status: int, detail: Any, headers: dict[str, str] | None = None) -> None:
        self.status, self.detail, self.headers = status, detail, headers


class _Logged(APIRoute):
    """Each request logged as one line: method, route (never the query or body), status,
    time and the key's position; errors turned into their response."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        path = self.path_format

        async def logged(request: Request) -> Response:
            started = time.perf_counter()
            try:
                response = await handler(request)
            except Problem as problem:
                response = (Response(status_code=204) if problem.status == 204 else
                            JSONResponse({"detail": problem.detail}, problem.status,
                                         headers=problem.headers))
            except HTTPException as exc:
                response = JSONResponse({"detail": exc.detail}, exc.status_code,
                                        headers=exc.headers)
            key = getattr(request.state, "api_key", None)
            logger.info("%s %s %s %.1fms%s", request.method, path, response.status_code,
                        (time.perf_counter() - started) * 1000, f" {key}" if key else "")
            return response

        return logged


def _loc(problem: str) -> list[str]:
    """``["body", "kwargs", "data_id"]`` for a problem that starts with `` `data_id` ``."""
    if problem.startswith("`"):
        name = problem[1:].split("`", 1)[0].lstrip("*")
        return ["body", "kwargs", name]
    return ["body"]


def _invalid(exc: InvalidTaskCall) -> Problem:
    """422, one entry per problem; in a bulk submit, located in its call (``calls[i]``)."""
    problems = exc.problems or (str(exc),)
    index = getattr(exc, "index", None)
    entries = []
    for problem in problems:
        loc: list[str | int] = list(_loc(problem))
        text = problem
        if index is not None:
            loc, text = ["body", "calls", index, *loc[1:]], f"call {index}: {problem}"
        entries.append({"loc": loc, "msg": text, "type": "invalid_task_call"})
    return Problem(422, entries)


def _validation(exc: ValidationError) -> Problem:
    return Problem(422, [{"loc": ["body", *map(str, err["loc"])], "msg": err["msg"],
                          "type": err["type"]}
                         for err in exc.errors(include_url=False, include_input=False,
                                               include_context=False)])


async def _body(request: Request, limit: int) -> Any:
    too_large = Problem(413, f"the request body is larger than {limit} bytes "
                             "(max_payload_bytes and the request's envelope)")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Problem(422, [{"loc": ["body"], "msg": f"the body is not JSON ({type(exc).__name__})",
                             "type": "json_invalid"}]) from None


@contextlib.contextmanager
def _sending() -> Iterator[None]:
    """A send's errors as responses: 413, 422, or 503 when the broker did not take it."""
    try:
        yield
    except PayloadTooLarge as exc:
        raise Problem(413, str(exc)) from None
    except InvalidTaskCall as exc:
        raise _invalid(exc) from None
    except Exception as exc:
        if isinstance(exc, ConnectionError | OSError | TimeoutError) or \
                type(exc).__module__.startswith(("kombu", "redis", "amqp")):
            raise Problem(503, f"the broker did not take the task ({type(exc).__name__}: "
                               f"{scrub(str(exc))}); nothing was sent: try again") from None
        raise


def api_tasks(host: Host) -> dict[str, Any]:
    """The tasks the API offers: every registered task whose spec allows it."""
    return {c.item.name: c for c in host.registry.tasks if getattr(c.item.spec, "api", True)}


class TaskRouter(APIRouter):
    """The API's router. ``requires(scope)`` puts an application's own routes behind the
    same keys: ``@app.post("/reports", dependencies=[router.requires("submit")])``."""

    authenticator: Authenticator
    submitted: Submitted

    def requires(self, scope: str) -> Any:
        """A dependency: a key of ``PLATFORM_API_KEYS`` with ``scope`` (read, submit, revoke)."""
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}; scopes are {', '.join(SCOPES)}")
        return self.authenticator.need(scope)


def platform_router(host: Host | None = None, *, auth: bool = True,
                    tracebacks: bool | None = None, prefix: str = "") -> TaskRouter:
    """The task API for ``app.include_router(...)``.

    :param host: the platform host; default: the process's host, from the environment.
    :param auth: require an API key from ``PLATFORM_API_KEYS`` (refused when none is
        set); ``False`` leaves authentication to the application.
    :param tracebacks: show a failed task's traceback (default: ``api_tracebacks``).
    """
    from platform_core.host import current

    host = host or current()
    guard = authenticator(host, auth)
    show_tracebacks = host.settings.api_tracebacks if tracebacks is None else tracebacks
    limit = host.settings.max_payload_bytes + ENVELOPE_BYTES
    submitted = Submitted()
    places = {c.item.name: Place(c.plugin.name, host.queue_of(c.item.name))
              for c in host.registry.tasks}
    offered = api_tasks(host)
    checks = host.app.enqueue_checks
    specs = checks.calls if checks is not None else {}
    subscriber = subscriber_for(host)
    router = TaskRouter(prefix=prefix, route_class=_Logged)
    router.authenticator, router.submitted = guard, submitted

    def location(request: Request, task_id: str) -> str:
        """The status route's path, wherever the application mounted the router."""
        return request.url_for(STATUS_ROUTE, task_id=task_id).path

    def send(name: str, options: Options) -> dict[str, Any]:
        with _sending():
            result = host.app.tasks[name].apply_async(options.args, options.kwargs,
                                                      **options.send_options())
        submitted.add(result.id, name)
        return {"id": result.id, "task": name}

    def submitter(name: str) -> Callable[..., Awaitable[Response]]:
        async def submit(request: Request) -> Response:
            try:
                options = Options.model_validate(await _body(request, limit))
            except ValidationError as exc:
                raise _validation(exc) from None
            sent = await run_in_threadpool(send, name, options)
            sent["status"] = location(request, sent["id"])
            return JSONResponse(sent, 202, headers={"Location": sent["status"]})
        return submit

    def many_submitter(name: str) -> Callable[..., Awaitable[Response]]:
        async def submit_many(request: Request) -> Response:
            try:
                many = Many.model_validate(await _body(request, limit * MANY_FACTOR))
            except ValidationError as exc:
                raise _validation(exc) from None

            def send_all() -> list[Any]:
                with _sending():
                    return list(host.app.send_many(
                        name, [(c.args, c.kwargs) for c in many.calls], many.send_options()))

            results = await run_in_threadpool(send_all)
            for result in results:
                submitted.add(result.id, name)
            return JSONResponse({"task": name, "ids": [r.id for r in results],
                                 "status": [location(request, r.id) for r in results]}, 202)
        return submit_many

    for name, contribution in sorted(offered.items()):
        spec = specs.get(name)
        doc = (contribution.item.spec.fn.__doc__ or "").strip()
        described = (f"{doc}\n\n" if doc else "") + (
            f"Provided by plugin `{contribution.plugin.name}` "
            f"({contribution.plugin.distribution}); sent to queue `{host.queue_of(name)}`.")
        router.add_api_route(
            f"/tasks/{name}", submitter(name), methods=["POST"], status_code=202,
            summary=f"Submit {name}", description=described, tags=[contribution.plugin.name],
            operation_id=f"submit_{name}", dependencies=[guard.need("submit")],
            openapi_extra={"requestBody": {"required": False, "content": {
                "application/json": {"schema": body_schema(spec)}}}},
            responses={202: {"description": "Sent; `Location` is its status."},
                       422: {"description": "The arguments do not fit the task."}})
        router.add_api_route(
            f"/tasks/{name}/many", many_submitter(name), methods=["POST"], status_code=202,
            summary=f"Submit many {name}", tags=[contribution.plugin.name],
            operation_id=f"submit_many_{name}", dependencies=[guard.need("submit")],
            openapi_extra={"requestBody": {"required": True, "content": {
                "application/json": {"schema": many_schema(spec)}}}})

    @router.post("/tasks/{task_name}/many", include_in_schema=False,
                 dependencies=[guard.need("submit")])
    @router.post("/tasks/{task_name}", include_in_schema=False,
                 dependencies=[guard.need("submit")])
    def unknown_task(task_name: str) -> Response:
        raise Problem(404, f"no task `{task_name}` is offered by this API: the tasks are "
                           f"{', '.join(sorted(offered)) or 'none'} (see /openapi.json)")

    def status_of(task_id: str, look_further: bool = True) -> dict[str, Any]:
        return read(host, task_id, submitted=submitted, places=places,
                    tracebacks=show_tracebacks, look_further=look_further)

    @router.get("/tasks/{task_id}", summary="A task's state, progress, result or error",
                name=STATUS_ROUTE, tags=["tasks"], dependencies=[guard.need("read")])
    async def task_status(task_id: str) -> dict[str, Any]:
        return await run_in_threadpool(status_of, task_id)

    @router.delete("/tasks/{task_id}", summary="Revoke a task", status_code=202,
                   tags=["tasks"], dependencies=[guard.need("revoke")])
    async def revoke(task_id: str, request: Request, terminate: bool = False) -> dict[str, Any]:
        def do() -> None:
            host.app.control.revoke(task_id, terminate=terminate)
        await run_in_threadpool(do)
        return {"id": task_id, "revoked": True, "terminate": terminate,
                "status": location(request, task_id)}

    async def finished(task_id: str, request: Request) -> None:
        """A client that saw the final event is told to stop reconnecting (HTTP 204)."""
        last = request.headers.get("last-event-id")
        if last:
            status = await run_in_threadpool(status_of, task_id)
            if status["ready"] and event_id(status) == last:
                raise Problem(204, None)

    @router.get("/tasks/{task_id}/events", response_class=EventSourceResponse,
                summary="Server-Sent Events: the task's state and progress until it is ready",
                tags=["tasks"], dependencies=[guard.need("read"), Depends(finished)])
    async def task_events(task_id: str, request: Request) -> Any:
        last = request.headers.get("last-event-id")
        looked = [0.0]

        def current() -> dict[str, Any]:
            now = time.monotonic()
            further = now - looked[0] > 2.0
            if further:
                looked[0] = now
            return status_of(task_id, look_further=further)

        async for ident, status in changes(current, host=host, subscriber=subscriber,
                                           task_id=task_id, last_event_id=last):
            yield ServerSentEvent(data=status, event="status", id=ident, retry=2000)

    add_health_routes(router, host, guard, offered)
    add_backlog_routes(router, host, guard)
    return router
