"""Spans for producers, pool children, the worker's main process and beat.

The contrib Celery instrumentation creates the publish spans and the platform's task
class the run spans (:func:`traced_run`); this module decides where their provider
lives. A process gets one :class:`SwitchableTracerProvider` as its global provider. Its
SDK delegate is created in the process that exports: a pool child makes a fresh one at
``worker_process_init`` (the one inherited from the parent is shut down there, its
queue already emptied by the SDK's fork hook) and flushes it in
``worker_process_shutdown``, which billiard runs before a recycled child exits.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from celery import signals
from celery.exceptions import Ignore, MaxRetriesExceededError, Reject, Retry
from opentelemetry import context as context_api
from opentelemetry import trace
from opentelemetry.instrumentation.celery import CeleryInstrumentor, celery_getter, utils
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.propagate import extract, inject
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from platform_core.telemetry import attributes as attrs
from platform_core.telemetry.export import resource, span_exporter
from platform_core.telemetry.headers import PUBLISH_HANDLERS, eta_timestamp, sent_at
from platform_core.worker import task as task_base

logger = logging.getLogger(__name__)

TRACER_NAME = "platform_core"
#: The traceparent of a task's first producer span, carried by each retry it publishes.
ORIGIN_HEADER = "platform_trace_origin"
FLUSH_MILLIS = 10_000


class _SwitchingTracer(trace.Tracer):
    """A tracer that always uses its provider's current SDK delegate."""

    def __init__(self, owner: SwitchableTracerProvider, key: tuple[Any, ...]) -> None:
        self._owner = owner
        self._key = key
        self._for: SdkTracerProvider | None = None
        self._tracer: trace.Tracer = trace.NoOpTracer()

    def _current(self) -> trace.Tracer:
        delegate = self._owner.delegate
        if delegate is not self._for:
            self._tracer = delegate.get_tracer(*self._key) if delegate else trace.NoOpTracer()
            self._for = delegate
        return self._tracer

    def start_span(self, *args: Any, **kwargs: Any) -> trace.Span:
        return self._current().start_span(*args, **kwargs)

    def start_as_current_span(  # type: ignore[override]
        self, *args: Any, **kwargs: Any
    ) -> AbstractContextManager[trace.Span]:
        return self._current().start_as_current_span(*args, **kwargs)


class SwitchableTracerProvider(trace.TracerProvider):
    """Global provider whose SDK delegate can be replaced after fork.

    Tracers handed out earlier (plugin modules imported before the fork, the
    instrumentation) follow the replacement.
    """

    def __init__(self) -> None:
        self.delegate: SdkTracerProvider | None = None

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Any = None,
    ) -> trace.Tracer:
        key = (instrumenting_module_name, instrumenting_library_version, schema_url, attributes)
        return _SwitchingTracer(self, key)


@dataclass
class _State:
    mode: str = "off"
    role: str = "producer"
    delayed: str = "link"
    link_after: float = 300.0
    app: Any = None
    queues: dict[str, str] = field(default_factory=dict)
    provider: SwitchableTracerProvider = field(default_factory=SwitchableTracerProvider)
    signals_connected: bool = False
    main_pid: int = 0


state = _State()


_tracer = state.provider.get_tracer(TRACER_NAME)


def tracer() -> trace.Tracer:
    return _tracer


def _new_delegate(role: str) -> SdkTracerProvider:
    provider = SdkTracerProvider(resource=resource(role))
    exporter = span_exporter(state.mode)
    processor = SimpleSpanProcessor(exporter) if state.mode == "console" else BatchSpanProcessor(
        exporter
    )
    provider.add_span_processor(processor)
    return provider


def links_to_producer(eta: Any, sent_at: float | None) -> bool:
    """True when a run should start its own trace, linked to the producer's."""
    if state.delayed != "link" or sent_at is None:
        return False
    due = eta_timestamp(eta)
    return due is not None and due - sent_at > state.link_after


def start_run_span(
    name: str, carrier: Any, getter: Any, eta: Any, attributes: dict[str, Any],
    start_time: int | None = None,
) -> tuple[trace.Span, context_api.Context]:
    """A consumer span for one run, and the context it belongs in (its producer's, or a
    new trace linked to the producer's: see :func:`links_to_producer`)."""
    parent = extract(carrier, getter=getter) if getter else extract(carrier)
    parent_span = trace.get_current_span(parent).get_span_context()
    if not parent_span.is_valid:
        parent = context_api.Context()
    elif links_to_producer(eta, sent_at(carrier)):
        span = _tracer.start_span(
            name, context=context_api.Context(), links=[Link(parent_span)],
            kind=SpanKind.CONSUMER, attributes=attributes, start_time=start_time,
        )
        return span, context_api.Context()
    span = _tracer.start_span(name, context=parent, kind=SpanKind.CONSUMER,
                              attributes=attributes, start_time=start_time)
    return span, parent


def _record_error(span: trace.Span, exc: BaseException) -> None:
    """The error as an ``exception`` event, ``error.type`` and an ERROR status whose
    description is ``Type: message``; never the task's arguments, which the message of
    Celery's ``MaxRetriesExceededError`` holds (so it is recorded without one)."""
    cls = type(exc)
    described = task_base.describe(exc)
    extra: dict[str, Any] = {}
    if _quotes_arguments(exc):
        extra = {"exception.message": "" if isinstance(exc, MaxRetriesExceededError) else
                 str(exc), "exception.stacktrace": _frames_only(exc)}
    span.record_exception(exc, attributes=extra)
    span.set_attribute(attrs.ERROR_TYPE, f"{cls.__module__}.{cls.__qualname__}")
    span.set_status(Status(StatusCode.ERROR, described))


def _quotes_arguments(exc: BaseException) -> bool:
    """Whether ``exc`` or an error in its chain is Celery's ``MaxRetriesExceededError``."""
    seen: set[int] = set()
    found: BaseException | None = exc
    while found is not None and id(found) not in seen:
        if isinstance(found, MaxRetriesExceededError):
            return True
        seen.add(id(found))
        found = found.__cause__ or found.__context__
    return False


def _frames_only(exc: BaseException) -> str:
    """The traceback of ``exc`` alone: its frames and its class, no chained messages."""
    cls = type(exc)
    return ("Traceback (most recent call last):\n" + "".join(
        traceback.format_tb(exc.__traceback__)) + f"{cls.__module__}.{cls.__qualname__}\n")


def _mark_dead_lettered(span: trace.Span, reason: str) -> None:
    """The final attempt of a task that goes to the dead-letter store, findable by
    attribute and by event."""
    span.set_attribute(attrs.DEAD_LETTERED, True)
    span.add_event(attrs.DEAD_LETTERED, {"platform.dead_letter.reason": reason})


def _exhausted(exc: BaseException) -> bool:
    return bool(getattr(exc, task_base.EXHAUSTED, False)) or isinstance(
        exc, MaxRetriesExceededError)


@dataclass(frozen=True)
class _Run:
    """The run in progress in this context, for the retries it publishes."""

    task_id: str
    retries: int
    span: trace.Span
    origin: context_api.Context  # where every attempt's publish span hangs
    origin_header: str  # the origin as a traceparent, carried by each retry


_current_run: ContextVar[_Run | None] = ContextVar("platform_run", default=None)


def _origin(request: Any, span: trace.Span, parent: context_api.Context) -> _Run:
    """Where a retry's publish span goes: under the first attempt's producer span (the
    header a retry carries), so an attempt's depth never grows with its number; a task
    run with no producer span (its own trace) hangs its retries under its first run."""
    raw = attrs.carried(request, ORIGIN_HEADER)
    if isinstance(raw, str) and raw:
        found = extract({"traceparent": raw})
        if trace.get_current_span(found).get_span_context().is_valid:
            return _Run(str(request.id), int(request.retries or 0), span, found, raw)
    origin = parent if trace.get_current_span(parent).get_span_context().is_valid else \
        trace.set_span_in_context(span)
    carrier: dict[str, str] = {}
    inject(carrier, context=origin)
    return _Run(str(request.id), int(request.retries or 0), span, origin,
                carrier.get("traceparent", ""))


def traced_run(task: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Run a task's body inside its ``run/<task>`` span, current while the body runs.

    Called by the platform's task class in the process that runs the task, instead of
    the contrib instrumentation's four signal handlers per run: one span start, one
    attribute set and one end. The span's ``celery.state`` is the run's outcome.
    """
    request = task.request
    span, parent = start_run_span(
        f"run/{task.name}", request, celery_getter, getattr(request, "eta", None),
        attrs.run(task, request, state.queues),
    )
    token = context_api.attach(trace.set_span_in_context(span, parent))
    run_token = _current_run.set(_origin(request, span, parent))
    outcome = "SUCCESS"
    try:
        return task.run(*args, **kwargs)
    except Retry as exc:
        outcome = "RETRY"
        span.set_attribute("celery.retry.reason", str(exc))
        cause = exc.exc if isinstance(exc.exc, BaseException) else exc
        _record_error(span, cause)
        raise
    except Ignore:
        outcome = "IGNORED"
        raise
    except Reject:
        outcome = "REJECTED"
        raise
    except Exception as exc:
        outcome = "FAILURE"
        if not isinstance(exc, task.throws or ()):
            _record_error(span, exc)
        if _exhausted(exc):  # the worker's main process dead-letters it (worker.request)
            _mark_dead_lettered(span, f"retries exhausted after {request.retries or 0} "
                                      f"retries: {task_base.describe(exc)}")
        raise
    except BaseException:
        outcome = ""  # the process is being ended (a hard time limit): the main process
        raise         # records the attempt (record_lost_run), so this span is not ended
    finally:
        _current_run.reset(run_token)
        context_api.detach(token)
        if outcome:
            span.set_attribute("celery.state", outcome)
            span.end()


class PlatformCeleryInstrumentor(CeleryInstrumentor):
    """The contrib instrumentation for publishing, resolving tasks in the platform's app.

    Contrib looks tasks up in Celery's *current* app, which the platform never sets,
    so its publish spans would never end. Runs are traced by :func:`traced_run`, so
    contrib's run handlers are disconnected: they cost more per run than the span.
    """

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        if not hasattr(self, "_publishing"):
            self._publishing: dict[str, Any] = {}

    def _instrument(self, **kwargs: Any) -> None:
        super()._instrument(**kwargs)  # type: ignore[no-untyped-call]
        for signal, handler in ((signals.task_prerun, self._trace_prerun),
                                (signals.task_postrun, self._trace_postrun),
                                (signals.task_failure, self._trace_failure),
                                (signals.task_retry, self._trace_retry)):
            signal.disconnect(handler)

    def _task(self, sender: Any) -> Any:
        if isinstance(sender, str):
            return state.app.tasks.get(sender) if state.app is not None else None
        return sender

    def _trace_before_publish(self, *args: Any, **kwargs: Any) -> None:
        task_id = utils.retrieve_task_id_from_message(kwargs)
        if task_id is None:
            return
        if _in_bulk.get():  # the batch's span is current: its context goes in the message
            headers = kwargs.get("headers")
            if headers is not None:
                inject(headers)
            return
        sender = kwargs.get("sender")
        task = self._task(sender)
        name = task.name if task is not None else str(sender)
        headers = kwargs.get("headers")
        run = _current_run.get()
        # a retry: the running task's id, one retry more (``replace()`` keeps the id too)
        retry = run is not None and run.task_id == task_id and headers is not None and \
            int(headers.get("retries") or 0) > run.retries
        span = _tracer.start_span(
            f"apply_async/{name}", kind=SpanKind.PRODUCER,
            attributes=attrs.publish(name, task_id, task, kwargs, state.queues),
            # a retry of the running task: beside the first attempt, linked to this one
            context=run.origin if retry and run is not None else None,
            links=[Link(run.span.get_span_context(), {attrs.LINK_KIND: "previous attempt"})]
            if retry and run is not None else None,
        )
        activation = trace.use_span(span, end_on_exit=True)
        activation.__enter__()
        self._publishing[task_id] = activation
        if headers is not None:
            if retry and run is not None and run.origin_header:
                headers[ORIGIN_HEADER] = run.origin_header
            inject(headers)

    def _trace_after_publish(  # type: ignore[override]
        self, *args: Any, **kwargs: Any
    ) -> None:
        task_id = utils.retrieve_task_id_from_message(kwargs)
        activation = self._publishing.pop(task_id, None) if task_id else None
        if activation is not None:
            activation.__exit__(None, None, None)


_instrumentor: PlatformCeleryInstrumentor | None = None
_in_bulk: ContextVar[bool] = ContextVar("platform_in_bulk", default=False)


@contextmanager
def bulk_span(name: str, count: int) -> Iterator[trace.Span]:
    """The producer span of a bulk send; every message sent inside carries its context."""
    task = state.app.tasks.get(name) if state.app is not None else None
    span = _tracer.start_span(f"apply_many/{name}", kind=SpanKind.PRODUCER,
                              attributes=attrs.bulk_publish(name, task, count))
    token = _in_bulk.set(True)
    try:
        with trace.use_span(span, end_on_exit=True):
            yield span
    finally:
        _in_bulk.reset(token)


def _on_worker_init(**_: Any) -> None:
    state.main_pid = os.getpid()
    renew("worker")


def _on_child_start(**_: Any) -> None:
    renew("worker" if os.getpid() == state.main_pid else "worker-child")


def _on_exit(**_: Any) -> None:
    shutdown()


def install(app: Any, mode: str, delayed: str, link_after: float) -> None:
    """Trace this process: producer spans now, worker spans as pool children start."""
    global _instrumentor
    state.mode, state.delayed, state.link_after, state.app = mode, delayed, link_after, app
    state.queues = {q.routing_key: q.name for q in app.conf.task_queues or ()}
    if state.provider.delegate is None:
        state.provider.delegate = _new_delegate(state.role)
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        trace.set_tracer_provider(state.provider)
    if _instrumentor is None:
        _instrumentor = PlatformCeleryInstrumentor()
        _instrumentor.instrument(tracer_provider=state.provider,
                                 meter_provider=NoOpMeterProvider())
        PUBLISH_HANDLERS.extend((_instrumentor._trace_before_publish,
                                           _instrumentor._trace_after_publish))
    app.bulk_span = bulk_span
    task_base.traced_run = traced_run
    if not state.signals_connected:
        signals.worker_init.connect(_on_worker_init, weak=False)
        signals.worker_process_init.connect(_on_child_start, weak=False)
        signals.worker_process_shutdown.connect(_on_exit, weak=False)
        signals.worker_shutdown.connect(_on_exit, weak=False)
        state.signals_connected = True


def renew(role: str) -> None:
    """Replace the delegate inherited across fork with one owned by this process."""
    old = state.provider.delegate
    state.role = role
    state.provider.delegate = _new_delegate(role)
    if old is not None:
        old.shutdown()


def shutdown() -> None:
    """Export what is queued; called before a pool child or the worker exits."""
    delegate = state.provider.delegate
    if delegate is not None:
        delegate.force_flush(FLUSH_MILLIS)


def enabled() -> bool:
    return state.mode != "off" and state.provider.delegate is not None


def record_lost_run(request: Any, exc: BaseException, requeued: bool,
                    dead_lettered: bool = False) -> None:
    """Main-process error span for a run whose child died or hit its hard time limit."""
    if not enabled():
        return
    headers = request.request_dict
    span, _ = start_run_span(
        f"run/{request.name}", headers, None, headers.get("eta"),
        {**attrs.run(request.task, headers, state.queues), attrs.REQUEUED: requeued},
        start_time=int(request.time_start * 1e9) if request.time_start else None,
    )
    try:
        _record_error(span, exc)
        if dead_lettered:
            _mark_dead_lettered(span, task_base.describe(exc))
    finally:
        span.end()
